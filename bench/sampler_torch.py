#!/usr/bin/env python3
"""torch's weighted sampling, timed like examples/sampler_bench.rs (for bench/sampler.py).

For each size N: two classes 90:10 (interleaved), per-sample weight = inverse class
frequency, one epoch of N draws:
  - torch.multinomial(weights, N, replacement=True/False, generator=g)
  - list(WeightedRandomSampler(weights, N, replacement=True, generator=g)) (what a
    DataLoader iterates), only with replacement and only up to --wrs-max entries (it is slow).
Best of --runs after a warm-up; one JSON line per measurement; errors are reported, not
raised (torch refuses more than 2**24 categories).
"""
import argparse
import json
import time

import torch
from torch.utils.data import WeightedRandomSampler


def timed(fn, runs):
    fn()  # warm-up
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="+", type=int)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--wrs-max", type=int, default=10_000_000)
    a = ap.parse_args()
    torch.set_num_threads(2)
    for n in a.sizes:
        labels = (torch.arange(n) % 10 == 9).long()
        minority = int(labels.sum())
        cw = torch.tensor([n / (n - minority), n / minority], dtype=torch.double)
        w = cw[labels]
        g = torch.Generator().manual_seed(42)
        jobs = [("torch.multinomial", True, lambda: torch.multinomial(w, n, True, generator=g)),
                ("torch.multinomial", False, lambda: torch.multinomial(w, n, False, generator=g))]
        if n <= a.wrs_max or n > 2**24:  # above 2**24 it fails at once; show how
            jobs.append(("WeightedRandomSampler", True,
                         lambda: list(WeightedRandomSampler(w, num_samples=n, replacement=True, generator=g))))
        for name, replacement, fn in jobs:
            row = {"impl": name, "n": n, "replacement": replacement}
            try:
                secs = timed(fn, a.runs)
                row.update(seconds=round(secs, 6), draws_per_s=round(n / secs))
            except RuntimeError as e:
                row["error"] = str(e).splitlines()[0]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
