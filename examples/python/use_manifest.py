#!/usr/bin/env python3
"""Single-process PyTorch training from a balance-split manifest, with the package.

    pip install ./python
    balance-split balance --config configs/diffusion.yaml
    python examples/python/use_manifest.py splits/example/train_val_split.balanced.json

What replaces the user's WeightedRandomSampler and DataLoader:
  - bs.EpochSampler(m): the manifest's exact epoch order (weighted draws, or a shuffle of
    the down/upsampled list), the same as `balance-split sample` and the Rust trainer;
    it plugs into their DataLoader as `sampler=` (their own Dataset stays);
  - or bs.Loader(m): the whole pipeline (decode, resize, augment, normalise, batch) on
    Rust threads, no DataLoader and no worker processes;
  - balance_split.torch.weighted_loss with m.loss_weights: the trainer's class-weighted MSE.
"""
import argparse

import torch

import balance_split as bs
from balance_split.torch import TensorLoader, weighted_loss


class PathDataset(torch.utils.data.Dataset):
    """Stand-in for the user's SplitFileDataset: (path, label) by train position."""

    def __init__(self, m):
        self.paths, self.labels = m.train_paths, m.train_labels

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.paths[i], int(self.labels[i])  # the real dataset opens and transforms it


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest")
    ap.add_argument("--root", default=".", help="directory the image paths are relative to")
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    m = bs.Manifest.open(a.manifest)
    print(m)

    # 1. Their DataLoader, our order.
    sampler = bs.EpochSampler(m)
    dl = torch.utils.data.DataLoader(PathDataset(m), batch_size=8, sampler=sampler)
    sampler.set_epoch(0)
    counts = torch.bincount(torch.cat([labels for _, labels in dl]), minlength=len(m.classes))
    print(f"epoch 0 through DataLoader: {len(sampler)} samples, per class {dict(zip(m.classes, counts.tolist()))}")

    # 2. Our loader, a tiny denoiser trained with the class-weighted loss.
    loader = TensorLoader(bs.Loader(m, root=a.root, image_size=40, batch_size=32,
                                    augmentation=dict(horizontal_flip=True, rotation_degrees=15)))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(16, 3, 3, padding=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(a.epochs):
        loader.set_epoch(epoch)
        total = 0.0
        for x, y in loader:
            noise = torch.randn_like(x)
            loss = weighted_loss(model(x + noise), noise, y, m.loss_weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch {epoch}: mean loss {total / len(loader):.4f} over {len(loader)} batches")


if __name__ == "__main__":
    main()
