#!/usr/bin/env python3
"""Distributed data-parallel training on a balance-split manifest, runnable on CPU.

    pip install ./python
    balance-split balance --config configs/examples/weighted_sampler.yaml
    torchrun --nproc-per-node 2 examples/python/ddp_train.py splits/example/train_val_split.balanced.json

Where WeightedRandomSampler cannot go (it has no rank; pytorch/pytorch#77154): each rank
draws its own share of the same weighted epoch, a pure function of (manifest, epoch, rank,
world size), so no rank talks to another about indices. The loader decodes only the
rank's share and keeps every sample's augmentation of its place in the whole epoch. The
backend is gloo (CPU); on GPUs use nccl and move the batches with .to(device).
"""
import argparse

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import balance_split as bs
from balance_split.torch import TensorLoader, weighted_loss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest")
    ap.add_argument("--root", default=".")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()

    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
    rank = dist.get_rank()
    m = bs.Manifest.open(a.manifest)
    # rank and world_size default to the process group's.
    loader = TensorLoader(bs.Loader(m, root=a.root, image_size=40, batch_size=a.batch_size,
                                    augmentation=dict(horizontal_flip=True, rotation_degrees=15)))
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(16, 3, 3, padding=1)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(a.epochs):
        loader.set_epoch(epoch)  # as DistributedSampler.set_epoch
        total, seen = torch.zeros(2), torch.zeros(len(m.classes))
        for x, y in loader:
            noise = torch.randn_like(x)
            loss = weighted_loss(model(x + noise), noise, y, m.loss_weights)
            opt.zero_grad()
            loss.backward()  # gradients are averaged across ranks here
            opt.step()
            total += torch.tensor([loss.item(), 1.0])
            seen += torch.bincount(y, minlength=len(m.classes))
        dist.all_reduce(total)
        dist.all_reduce(seen)
        if rank == 0:
            print(f"epoch {epoch}: mean loss {total[0] / total[1]:.4f}; samples per class over all ranks "
                  f"{dict(zip(m.classes, seen.int().tolist()))}")
    # Every rank done before the group goes: without the barrier a rank may tear gloo down
    # while its peer's last message is in flight, and torch 2.15 then aborts at exit
    # ("terminate called without an active exception"), in 1 of 8 runs of a bare gloo
    # loop (no balance-split involved) on our 2-core machines.
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
