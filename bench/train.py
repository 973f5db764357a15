#!/usr/bin/env python3
"""Training throughput of the configured UNet: diffusion-train against PyTorch, same run.

    cargo build --release --features train --bin diffusion-train
    /tmp/bench-venv/bin/python bench/train.py --device cpu --batch 8 64 --steps 10

Runs `diffusion-train bench` and bench/unet_torch.py (the user's UNet, the same
class-weighted MSE with weights [1, 9], Adam at 1e-4, timesteps, label dropout and noise
drawn every step) on the shapes of --config, alternating the two per batch size so both
see the same machine state, and prints images/s and their ratio; raw rows go to
bench/results/train_<device>.json. On a GPU machine scripts/gpu-bench.sh does the same
from a carried binary.
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
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "diffusion.yaml"))
    ap.add_argument("--device", default="cpu", help="cpu, or wgpu for ours / cuda for torch")
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    binary = os.path.join(ROOT, "target", "release", "diffusion-train")
    torch_device = "cpu" if a.device == "cpu" else "cuda"
    results = []
    print("| batch | diffusion-train img/s | PyTorch img/s | ratio (ours / PyTorch) |")
    print("|---|---|---|---|")
    for b in a.batch:
        common = ["--batch", str(b), "--steps", str(a.steps), "--warmup", str(a.warmup)]
        ours = rows([binary, "bench", "--config", a.config, "--device", a.device, "-q"] + common)[0]
        theirs = rows([sys.executable, os.path.join(HERE, "unet_torch.py"), "--device", torch_device] + common)[0]
        results += [ours, theirs]
        ratio = ours["images_per_s"] / theirs["images_per_s"]
        print(f"| {b} | {ours['images_per_s']:.1f} ({ours['ms_per_step']:.0f} ms/step) "
              f"| {theirs['images_per_s']:.1f} ({theirs['ms_per_step']:.0f} ms/step) | {ratio:.2f}x |",
              flush=True)
    print()
    print("diffusion-train per phase (ms per step, device synchronised after each phase):")
    print("| batch | data | forward | backward | optimizer | EMA |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if r["impl"] == "burn":
            p = r["phases_ms"]
            print(f"| {r['batch']} | {p['data']:.1f} | {p['forward']:.1f} | {p['backward']:.1f} "
                  f"| {p['optimizer']:.1f} | {p['ema']:.1f} |")
    path = os.path.join(HERE, "results", f"train_{a.device}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
