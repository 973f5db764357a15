#!/usr/bin/env python3
"""End-to-end benchmark of `balance-split balance` against the Python reference.

For each size N (two classes 90:10, the layout of shared/bench/python/make_split.py) and
each strategy, times in the same run:
  - rust:   target/release/balance-split balance (writes a full manifest),
  - floor:  the same binary with no strategy (reads, parses and writes the same split with
            no balancing: the cost of the I/O alone),
  - python: shared/bench/python/balance_ref.py --impl vectorized (the user's design with
            torch's RNG, the faster of the two reference implementations).
Wall time from the parent's clock, peak RSS from GNU time -v; medians of --runs (Python) and
of --rust-runs after one untimed warm-up (ours: a second is cheap, and this VM's disk makes
single runs noisy). Outputs of both go to --out-dir (tmpfs by default): on this VM's disk
(ext4 with discard) the same run varied by up to 0.8 s with the writeback and TRIM of the
previous run's gigabyte. Before every timed run the previous output is deleted and `sync`
is called.

Usage (from the repository root):
  python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install numpy torch
  cargo build --release
  /tmp/bench-venv/bin/python bench/balance.py --sizes 100000,1000000,10000000 --runs 3
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STRATEGIES = {  # ours -> balance_ref.py's name
    "downsampling": "downsample",
    "upsampling": "upsample",
    "weighted_sampler": "weighted",
}


def timed(cmd, out):
    if os.path.exists(out):
        os.remove(out)
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    secs = time.perf_counter() - start  # GNU time's own wall clock has only 10 ms resolution
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    return secs, rss, os.path.getsize(out)


def median_run(cmd, out, runs, warmup=False):
    if warmup:
        timed(cmd, out)  # page cache and allocator in their steady state; not counted
    results = [timed(cmd, out) for _ in range(runs)]
    return (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results),
            results[-1][2])


def config(work, strategy):
    path = os.path.join(work, f"{strategy}.yaml")
    flags = {s: str(s == strategy).lower() for s in STRATEGIES}
    with open(path, "w") as f:
        f.write("compute:\n  seed: 42\ndata:\n  balancing:\n")
        for s, on in flags.items():
            f.write(f"    {s}:\n      enabled: {on}\n")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--runs", type=int, default=3, help="timed runs of the Python reference")
    ap.add_argument("--rust-runs", type=int, default=5, help="timed runs of ours (after one warm-up)")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "bench", "python"))
    ap.add_argument("--work", default="/tmp/balance-split-bench", help="where the generated splits go")
    ap.add_argument("--out-dir", default="/dev/shm/balance-split-bench",
                    help="where outputs go (tmpfs by default: this VM's disk adds seconds of noise)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "balance-split"))
    ap.add_argument("--results", default=os.path.join(HERE, "results", "balance.json"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    py = sys.executable
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        split = os.path.join(a.work, f"binary_{n}.json")
        if not os.path.exists(split):
            subprocess.run([py, os.path.join(a.shared, "make_split.py"), "--n", str(n), "--dist", "binary:90,10",
                            "--seed", "42", "-o", split], check=True, capture_output=True)
        os.makedirs(a.out_dir, exist_ok=True)
        out = os.path.join(a.out_dir, "out.json")
        none_cfg = os.path.join(a.work, "none.yaml")
        with open(none_cfg, "w") as f:
            f.write("compute:\n  seed: 42\n")
        floor = median_run([a.binary, "balance", "--config", none_cfg, "--split", split, "--out", out], out,
                           a.rust_runs, warmup=True)
        for ours, theirs in STRATEGIES.items():
            cmd = [a.binary, "balance", "--config", config(a.work, ours), "--split", split, "--out", out]
            rust = median_run(cmd, out, a.rust_runs, warmup=True)
            python = median_run([py, os.path.join(a.shared, "balance_ref.py"), split, out, "--strategy", theirs,
                                 "--impl", "vectorized", "--target-ratio", "1.0", "--seed", "42"], out, a.runs)
            row = {"n": n, "strategy": ours,
                   "rust_s": rust[0], "rust_rss_mib": rust[1], "rust_out_bytes": rust[2],
                   "floor_s": floor[0], "floor_rss_mib": floor[1],
                   "python_s": python[0], "python_rss_mib": python[1], "python_out_bytes": python[2]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(a.results, "w") as f:
                json.dump(rows, f, indent=1)
    print()
    print("| N | strategy | balance-split s | floor s | Python s | speed-up vs Python | vs floor | peak RSS MiB (ours / Python) | output MB (ours / Python) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['strategy']} | {r['rust_s']:.3f} | {r['floor_s']:.3f} | {r['python_s']:.2f} | "
              f"{r['python_s'] / r['rust_s']:.1f}x | {r['rust_s'] / r['floor_s']:.2f}x | "
              f"{r['rust_rss_mib']:.0f} / {r['python_rss_mib']:.0f} ({r['rust_rss_mib'] / r['python_rss_mib']:.2f}) | "
              f"{r['rust_out_bytes'] / 1e6:.0f} / {r['python_out_bytes'] / 1e6:.0f} |")


if __name__ == "__main__":
    main()
