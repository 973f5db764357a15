#!/usr/bin/env python3
"""Weighted-sampler throughput: balance-split's epoch sampler against torch, same run.

    cargo build --release --example sampler_bench
    /tmp/bench-venv/bin/python bench/sampler.py            # sizes 1e6, 1e7, 2**24 + 1

Runs target/release/examples/sampler_bench and bench/sampler_torch.py on the same sizes
(two classes 90:10, inverse-frequency weights, one epoch of N draws) and prints a table of
draws per second; raw rows go to bench/results/sampler.json.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rows(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=f"1000000,10000000,{2**24 + 1}")
    ap.add_argument("--results", default=os.path.join(HERE, "results", "sampler.json"))
    a = ap.parse_args()
    sizes = a.sizes.split(",")
    ours = rows([os.path.join(ROOT, "target", "release", "examples", "sampler_bench")] + sizes)
    theirs = rows([sys.executable, os.path.join(HERE, "sampler_torch.py")] + sizes)
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    with open(a.results, "w") as f:
        json.dump(ours + theirs, f, indent=1)

    def find(impl, n, replacement):
        for r in theirs:
            if r["impl"] == impl and r["n"] == n and r["replacement"] == replacement:
                return r
        return None

    def show(r):
        if r is None:
            return "not run"
        if "error" in r:
            return r["error"]
        return f"{r['draws_per_s'] / 1e6:.2f} M/s ({r['seconds']:.3f} s)"

    print("| N | replacement | balance-split | torch.multinomial | WeightedRandomSampler | vs multinomial | vs WeightedRandomSampler |")
    print("|---|---|---|---|---|---|---|")
    for r in ours:
        m = find("torch.multinomial", r["n"], r["replacement"])
        wrs = find("WeightedRandomSampler", r["n"], r["replacement"])
        ratio = lambda t: f"{r['draws_per_s'] / t['draws_per_s']:.1f}x" if t and "draws_per_s" in t else "-"
        print(f"| {r['n']:,} | {r['replacement']} | {r['draws_per_s'] / 1e6:.2f} M/s ({r['seconds']:.3f} s) | "
              f"{show(m)} | {show(wrs)} | {ratio(m)} | {ratio(wrs)} |")


if __name__ == "__main__":
    main()
