#!/usr/bin/env python3
"""Image-loading throughput: balance-split's pipeline against the Python baseline, same run.

    python3 ../shared/bench/python/make_images.py --root /tmp/bench-images   # once
    cargo build --release --example load_bench
    /tmp/bench-venv/bin/python bench/load.py

Runs examples/load_bench.rs (decode + RGB + resize to 40x40 + normalise, on all cores, from
the files and from a decoded cache; gathered into one array as the baseline does, and
streamed batch by batch as the trainer consumes them) and shared/bench/python/load_ref.py
(Pillow, single process and multiprocessing Pool(2); the DataLoader mode needs torchvision)
on the same image sets; prints images per second and ratios against the best Python mode.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def lines(cmd, cwd=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="/tmp/bench-images")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "bench", "python"))
    ap.add_argument("--modes", default="single,pool2")
    ap.add_argument("--results", default=os.path.join(HERE, "results", "load.json"))
    a = ap.parse_args()
    sets = ["png40", "jpg256"]
    ours = lines([os.path.join(ROOT, "target", "release", "examples", "load_bench")]
                 + [os.path.join(a.images, s) for s in sets])
    theirs = []
    for s in sets:
        for mode in a.modes.split(","):
            theirs += lines([sys.executable, "load_ref.py", "--set", s, "--mode", mode, "--runs", "3"], cwd=a.shared)
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    with open(a.results, "w") as f:
        json.dump({"balance_split": ours, "python": theirs}, f, indent=1)

    def ips(r):
        for k in ("images_per_s", "img_per_s", "median_img_per_s"):
            if k in r:
                return float(r[k])
        return r["n"] / r["median_s"] if "median_s" in r else float("nan")

    print("| set | measurement | images/s | vs best Python (same run) | cache vs decode |")
    print("|---|---|---|---|---|")
    for s in sets:
        py = [r for r in theirs if r.get("set") == s]
        best = max(py, key=ips)
        for r in py:
            print(f"| {s} | Python {r.get('mode')} | {ips(r):,.0f} | {ips(r) / ips(best):.2f}x | |")
        mine = {(r["mode"], r["output"]): r["images_per_s"] for r in ours if r["set"] == s}
        for output in ("array", "stream"):
            for source in ("decode", "cache"):
                v = mine[(source, output)]
                vs_decode = f"{v / mine[('decode', output)]:.1f}x" if source == "cache" else ""
                print(f"| {s} | balance-split {source}, {output} | {v:,.0f} | {v / ips(best):.1f}x | {vs_decode} |")

if __name__ == "__main__":
    main()
