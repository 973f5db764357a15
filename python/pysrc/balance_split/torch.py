"""PyTorch helpers: the trainer's class-weighted loss and a loader yielding tensors.

Importing this module imports torch; ``import balance_split`` alone never does.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ._native import Loader

__all__ = ["weighted_loss", "TensorLoader"]


def weighted_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    weights: Optional[Union[Sequence[float], np.ndarray, torch.Tensor]],
) -> torch.Tensor:
    """The trainer's objective: ``mean_i(w[labels_i] * mse_i)``.

    ``mse_i`` is sample i's squared error averaged over every other dimension; the weight
    is that of the sample's true label. With ``weights=None`` it is ``nn.MSELoss()``.
    Weights are cast to float32 first, as the Rust trainer does, so both give the same
    value for the same batch.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)} but target has {tuple(target.shape)}")
    per_sample = (pred - target).pow(2).reshape(pred.shape[0], -1).mean(dim=1)
    if weights is None:
        return per_sample.mean()
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32), device=pred.device)
    return (per_sample * w[labels.to(device=pred.device, dtype=torch.long)].to(per_sample.dtype)).mean()


class TensorLoader:
    """A :class:`balance_split.Loader` whose batches are torch tensors.

    ``torch.from_numpy`` shares the loader's buffers (no copy); ``pin_memory=True`` copies
    each batch into page-locked memory for a fast, asynchronous ``.to("cuda",
    non_blocking=True)``. No ``DataLoader`` and no worker processes: the decoding already
    runs on Rust threads.
    """

    def __init__(self, loader: Loader, pin_memory: bool = False) -> None:
        self.loader = loader
        self.pin_memory = pin_memory

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            x, y = torch.from_numpy(images), torch.from_numpy(labels)
            if self.pin_memory:
                x, y = x.pin_memory(), y.pin_memory()
            yield x, y
