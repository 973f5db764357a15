#!/usr/bin/env python3
"""Consume a balance-split manifest from PyTorch.

    python examples/python/use_manifest.py splits/example/train_val_split.balanced.json [--exact]

Builds what the user's training script needs from a manifest:
  - the training dataset: the manifest is a split file, so the project's own
    SplitFileDataset(manifest, split="train") reads it; here a minimal stand-in with the same
    contract (list of {"path", "label"}) so the example runs without the project;
  - the sampler: a torch WeightedRandomSampler from balancing.sampler (weight of each entry
    = the class weight of its label), or plain shuffling for down/upsampled manifests;
  - the loss weights: balancing.loss.class_weights as a tensor, for the class-weighted MSE.

With --exact, the sampler is instead the exact order balance-split defines for each epoch
(`balance-split sample MANIFEST --epoch K [--rank R --world-size W]`), so a Python run and
the Rust trainer see the same samples in the same order, with or without several GPUs.
"""
import argparse
import json
import subprocess

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler


class ManifestDataset(Dataset):
    """Stand-in for the user's SplitFileDataset: (path, label) pairs of one list."""

    def __init__(self, manifest_path, split="train"):
        with open(manifest_path) as f:
            self.entries = json.load(f)[split]

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        e = self.entries[i]
        return e["path"], e["label"]  # the real dataset opens and transforms the image


class BalanceSplitSampler(Sampler):
    """Epoch k's positions exactly as `balance-split sample` prints them."""

    def __init__(self, manifest_path, rank=0, world_size=1, binary="balance-split"):
        self.manifest_path, self.rank, self.world_size, self.binary = manifest_path, rank, world_size, binary
        self.epoch = 0

    def set_epoch(self, epoch):  # same protocol as DistributedSampler
        self.epoch = epoch

    def _positions(self):
        out = subprocess.run(
            [self.binary, "sample", self.manifest_path, "--epoch", str(self.epoch),
             "--rank", str(self.rank), "--world-size", str(self.world_size), "--format", "json"],
            check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def __iter__(self):
        return iter(self._positions())

    def __len__(self):
        return len(self._positions())


def build(manifest_path, exact=False, batch_size=8):
    with open(manifest_path) as f:
        manifest = json.load(f)
    b = manifest["balancing"]
    train = ManifestDataset(manifest_path, "train")
    if exact:
        sampler = BalanceSplitSampler(manifest_path)
    elif b["sampler"] is not None:
        class_w = b["sampler"]["class_weights"]
        sample_w = [class_w[e["label"]] for e in manifest["train"]]
        g = torch.Generator().manual_seed(b["seed"])
        sampler = WeightedRandomSampler(sample_w, num_samples=b["sampler"]["num_samples"],
                                        replacement=b["sampler"]["replacement"], generator=g)
    else:
        sampler = None  # down/upsampled: train already is the balanced set
    loader = DataLoader(train, batch_size=batch_size, sampler=sampler, shuffle=sampler is None)
    loss_weights = None if b["loss"] is None else torch.tensor(b["loss"]["class_weights"])
    return loader, loss_weights


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest")
    ap.add_argument("--exact", action="store_true", help="use balance-split's own epoch order")
    ap.add_argument("--binary", default="balance-split")
    a = ap.parse_args()
    loader, loss_weights = build(a.manifest, a.exact)
    if a.exact:
        loader.sampler.binary = a.binary
    counts = {}
    for _, labels in loader:
        for l in labels.tolist():
            counts[l] = counts.get(l, 0) + 1
    print(f"one epoch: {sum(counts.values())} samples, per label {dict(sorted(counts.items()))}")
    print(f"loss weights: {None if loss_weights is None else loss_weights.tolist()}")


if __name__ == "__main__":
    main()
