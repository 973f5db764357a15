"""balance-split from Python: balanced manifests, the epoch sampler and the image loader.

Everything here is the Rust library the ``balance-split`` command runs, so a manifest,
an epoch's order and a batch are the same in Python as from the command line::

    import balance_split as bs
    m = bs.balance("configs/diffusion.yaml")          # writes the manifest, as the CLI does
    sampler = bs.EpochSampler(m)                        # torch.utils.data.Sampler protocol
    loader = bs.Loader(m, "train", image_size=40, batch_size=64)
    for images, labels in loader: ...                   # float32 [B, C, H, W] in [-1, 1]

``balance_split.torch`` (imported on demand, needs torch) has the class-weighted loss and a
loader that yields torch tensors.
"""

from ._native import (
    BadInput,
    Batches,
    EpochSampler,
    Error,
    Loader,
    Manifest,
    __version__,
    balance,
)

__all__ = [
    "BadInput",
    "Batches",
    "EpochSampler",
    "Error",
    "Loader",
    "Manifest",
    "__version__",
    "balance",
]
