"""Type stubs of the extension module (the Rust library through PyO3)."""

from os import PathLike
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, PathLike[str]]

__version__: str

class Error(Exception):
    """Any failure of balance-split; the message is the CLI's one-line message."""

class BadInput(Error):
    """Bad input (a file, a field, an argument): where the CLI exits with status 2."""

class Manifest:
    """A balanced manifest, validated as the CLI validates it."""

    @staticmethod
    def open(path: _Path) -> Manifest: ...
    @property
    def path(self) -> Path: ...
    @property
    def sha256(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def classes(self) -> list[str]: ...
    @property
    def warnings(self) -> list[str]: ...
    @property
    def split_file(self) -> str: ...
    @property
    def train_labels(self) -> npt.NDArray[np.int64]: ...
    @property
    def train_paths(self) -> list[str]: ...
    @property
    def loss_weights(self) -> Optional[npt.NDArray[np.float64]]: ...
    @property
    def sampler_weights(self) -> Optional[npt.NDArray[np.float64]]: ...
    @property
    def synthetic_count(self) -> int: ...
    def paths(self, split: str) -> list[str]: ...
    def labels(self, split: str) -> npt.NDArray[np.int64]: ...
    def __len__(self) -> int: ...

def balance(
    config: _Path,
    split: Optional[_Path] = None,
    seed: Optional[int] = None,
    out: Optional[_Path] = None,
    overrides: Optional[dict[str, object]] = None,
) -> Manifest: ...

class EpochSampler:
    """The manifest's training order, one epoch and one rank at a time."""

    def __init__(
        self,
        manifest: Manifest,
        shuffle: bool = True,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ) -> None: ...
    def set_epoch(self, epoch: int) -> None: ...
    @property
    def epoch(self) -> int: ...
    @property
    def rank(self) -> int: ...
    @property
    def world_size(self) -> int: ...
    @property
    def shuffle(self) -> bool: ...
    def indices(self) -> npt.NDArray[np.int64]: ...
    def __iter__(self) -> Iterator[int]: ...
    def __len__(self) -> int: ...

class Batches:
    def __iter__(self) -> Batches: ...
    def __next__(self) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...

class Loader:
    """Batches of one list of a manifest, decoded in parallel and prefetched."""

    def __init__(
        self,
        manifest: Manifest,
        split: str = "train",
        root: _Path = ".",
        image_size: int = 40,
        batch_size: int = 64,
        drop_last: bool = False,
        augmentation: Optional[dict] = None,
        in_channels: int = 3,
        cache: Optional[_Path] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        prefetch: int = 2,
        shuffle: bool = True,
    ) -> None: ...
    @staticmethod
    def from_config(
        manifest: Manifest,
        config: _Path,
        split: str = "train",
        root: _Path = ".",
        cache: Optional[_Path] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        prefetch: int = 2,
    ) -> Loader: ...
    def set_epoch(self, epoch: int) -> None: ...
    @property
    def epoch(self) -> int: ...
    @property
    def rank(self) -> int: ...
    @property
    def world_size(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    def __iter__(self) -> Batches: ...
    def __len__(self) -> int: ...

def main(argv: Sequence[str]) -> int: ...
