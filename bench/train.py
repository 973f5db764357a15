#!/usr/bin/env python3
"""Training throughput of the configured UNet: diffusion-train against PyTorch, same run.

    cargo build --release --features train --bin diffusion-train
    ~/.cache/balance-split/venv-*/bin/python bench/train.py --device cpu --batch 8 64 --steps 10

(the tests' environment, which has torch, PyYAML and safetensors)

Runs `diffusion-train bench` and bench/unet_torch.py (the user's own UNet, built as their
create_ddpm builds it, with --config's architecture; the same
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


def architecture(config):
    """The model of `config` as unet_torch.py's arguments, with the defaults diffusion-train
    takes for keys the file leaves out."""
    import yaml
    with open(config) as f:
        c = yaml.safe_load(f)
    m = c.get("model", {})
    arch, cond = m.get("architecture", {}), m.get("conditioning", {})
    mult = arch.get("channel_multipliers", [1, 2, 4])
    attn = arch.get("use_attention", [i == len(mult) - 1 for i in range(len(mult))])
    return (["--image-size", str(arch.get("image_size", 40)),
             "--in-channels", str(arch.get("in_channels", 3)),
             "--channels", str(arch.get("model_channels", 64)),
             "--mult", *map(str, mult), "--attn", *(str(int(x)) for x in attn)]
            + (["--num-classes", str(cond["num_classes"])] if cond.get("type") == "class" else []))


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
    ap.add_argument("--ops", action="store_true",
                    help="also time each kind of operation, on both sides (table per batch)")
    a = ap.parse_args()
    binary = os.path.join(ROOT, "target", "release", "diffusion-train")
    torch_device = "cpu" if a.device == "cpu" else "cuda"
    results = []
    print("| batch | diffusion-train img/s | PyTorch img/s | ratio (ours / PyTorch) |")
    print("|---|---|---|---|")
    arch = architecture(a.config)
    for b in a.batch:
        common = ["--batch", str(b), "--steps", str(a.steps), "--warmup", str(a.warmup)]
        common += ["--ops"] if a.ops else []
        ours = rows([binary, "bench", "--config", a.config, "--device", a.device, "-q"] + common)[0]
        theirs = rows([sys.executable, os.path.join(HERE, "unet_torch.py"), "--device", torch_device]
                      + arch + common)[0]
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
    if a.ops:
        print_ops(results)
    path = os.path.join(HERE, "results", f"train_{a.device}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


def print_ops(results):
    """Per batch: our forward and backward per kind of layer (each layer timed alone), and
    PyTorch's profiler time of the same kind (forward and backward together)."""
    for ours, theirs in zip(results[0::2], results[1::2]):
        torch_ms = {o["kind"]: o["ms"] for o in theirs["ops"]}
        # Our three convolution kinds are one for PyTorch's profiler.
        conv = sum(o["forward_ms"] + o["backward_ms"] for o in ours["ops"] if o["kind"].startswith("conv"))
        print()
        print(f"batch {ours['batch']}, ms per step by kind of operation:")
        print("| kind | calls | ours forward | ours backward | ours total | PyTorch (fwd + bwd) |")
        print("|---|---|---|---|---|---|")
        covered = 0.0
        for o in ours["ops"]:
            total = o["forward_ms"] + o["backward_ms"]
            covered += total
            ref = torch_ms.get(o["kind"])
            print(f"| {o['kind']} | {o['calls']} | {o['forward_ms']:.1f} | {o['backward_ms']:.1f} "
                  f"| {total:.1f} | {'' if ref is None else f'{ref:.1f}'} |")
        print(f"| all convolutions | | | | {conv:.1f} | {torch_ms.get('conv', 0.0):.1f} |")
        p = ours["phases_ms"]
        step = p["forward"] + p["backward"]
        print(f"| rest of forward + backward (additions, concatenation, loss) | | | | {step - covered:.1f} | |")
        print(f"| optimizer | | | | {p['optimizer']:.1f} | (in other) |")
        print(f"| other (PyTorch: the optimizer's in-place updates, additions, loss) | | | | | "
              f"{torch_ms.get('other', 0.0):.1f} |")


if __name__ == "__main__":
    main()
