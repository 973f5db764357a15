#!/usr/bin/env python3
"""PyTorch reference for the diffusion trainer's step time: the user's own model.

The user's class-conditional DDPM UNet exactly as their `create_ddpm` builds it (the
`UNet` of tests/python/torch_reference.py, which the parity tests load our weights into
strictly and compare forward passes with: their module names, their 256-wide time
embedding, their DownBlock/UpBlock), trained with the class-weighted MSE on epsilon
prediction, timed for a fixed number of steps on random data of the configured shape;
`diffusion-train bench` runs the same model, loss and optimizer. (Until 2026-12-07 this
file held a stand-in UNet of ../shared/bench/python/unet_ref.py, whose time embedding was
4 x model_channels and whose decoder resized; the user's model is 1.6x faster on the CPU.)
Prints one JSON line per batch size: device, images/s, ms/step.

    python3 unet_ref.py [--device cuda|cpu] [--image-size 40] [--channels 64]
                        [--mult 1 2 4] [--attn 0 0 1] [--batch 8 64] [--steps 50] [--amp]
                        [--ops]

With --ops, torch.profiler then records `steps` more steps and "ops" gives the time per
step of each kind of operation (the kinds of `diffusion-train bench --ops`), forward and
backward together: the self time of the aten operators, summed by kind.
"""
import argparse
import json
import math
import time

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from torch_reference import UNet  # noqa: E402  (the user's UNet; see the docstring)


def cosine_alphas_cumprod(T, s=0.008):
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos(((steps / T) + s) / (1 + s) * math.pi / 2) ** 2
    ac = f / f[0]
    betas = torch.clip(1 - ac[1:] / ac[:-1], 0, 0.999)
    return torch.cumprod(1 - betas, 0).float()


def bench(args, batch):
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = UNet(args.in_channels, args.channels, list(args.mult), [bool(a) for a in args.attn],
                 args.num_classes).to(dev)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ac = cosine_alphas_cumprod(1000).to(dev)
    class_w = torch.tensor([1.0, 9.0][: args.num_classes], device=dev)
    x0 = torch.randn(batch, args.in_channels, args.image_size, args.image_size, device=dev)
    labels = torch.randint(0, args.num_classes, (batch,), device=dev)
    scaler = torch.amp.GradScaler(enabled=args.amp)

    def step():
        t = torch.randint(0, 1000, (batch,), device=dev)
        noise = torch.randn_like(x0)
        a = ac[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        y = torch.where(torch.rand(batch, device=dev) < 0.1, torch.full_like(labels, args.num_classes), labels)
        with torch.autocast(dev.type, enabled=args.amp):
            pred = model(xt, t, y)
            per = F.mse_loss(pred.float(), noise, reduction="none").mean(dim=(1, 2, 3))
            loss = (per * class_w[labels]).mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    for _ in range(args.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    ops = profile_ops(step, args.steps, dev) if args.ops else None
    return {**({"ops": ops} if ops else {}), "impl": "pytorch", "torch": torch.__version__, "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
            "batch": batch, "steps": args.steps, "amp": args.amp, "image_size": args.image_size,
            "ms_per_step": 1000 * dt / args.steps, "images_per_s": batch * args.steps / dt}


# aten operator -> kind, by the first pattern its name contains; the rest (on the CPU
# also Adam's in-place updates, aten::mul_, addcdiv_ and so on) is "other". The linear layers' and
# attention's matrix products are both `mm`/`bmm`; `bmm` is attention's alone (its QK^T
# and AV), `addmm`/`mm` the linear layers' (forward and backward).
KINDS = [
    ("convolution_backward", "conv"), ("convolution", "conv"),
    ("group_norm", "group norm"),
    ("silu", "SiLU"),
    ("bmm", "attention (QK^T, softmax, AV)"), ("softmax", "attention (QK^T, softmax, AV)"),
    ("addmm", "linear"), ("aten::mm", "linear"),
    ("upsample_bilinear", "bilinear upsample"),
    ("dropout", "dropout"), ("bernoulli", "dropout"),
]


def profile_ops(step, steps, dev):
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
    totals = {}
    for e in prof.key_averages():
        # On CUDA the kernels are events of their own besides the aten operators that
        # launched them, which carry their time: count the operators' only.
        if dev.type == "cuda" and e.device_type != DeviceType.CPU:
            continue
        us = e.self_device_time_total if dev.type == "cuda" else e.self_cpu_time_total
        kind = next((k for pat, k in KINDS if pat in e.key), "other")
        totals[kind] = totals.get(kind, 0.0) + us / 1000.0 / steps
    return [{"kind": k, "ms": v} for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--image-size", type=int, default=40)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--mult", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--attn", type=int, nargs="+", default=[0, 0, 1])
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument("--batch", type=int, nargs="+", default=[8, 64])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--ops", action="store_true")
    args = p.parse_args()
    for b in args.batch:
        print(json.dumps(bench(args, b)), flush=True)


if __name__ == "__main__":
    main()
