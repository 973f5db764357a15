#!/usr/bin/env python3
"""PyTorch reference for the diffusion trainer's step time.

(Copied unchanged in substance from ../shared/bench/python/unet_ref.py so it travels with
the project to the GPU machine; `diffusion-train bench` runs the same model, loss and
optimizer.)

The user's class-conditional DDPM UNet (as their config describes it), trained with the
class-weighted MSE on epsilon prediction, timed for a fixed number of steps on random data of the
configured shape. Prints one JSON line per batch size: device, images/s, ms/step.

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

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / max(half - 1, 1))
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, conditional, dropout=0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.time = nn.Linear(emb, cout)
        self.cls = nn.Linear(emb, cout) if conditional else None
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t, c):
        h = self.norm1(self.conv1(x))
        e = self.time(F.silu(t))
        if c is not None and self.cls is not None:
            e = e + self.cls(F.silu(c))
        h = F.silu(h + e[:, :, None, None])
        h = self.drop(self.norm2(self.conv2(h)))
        return F.silu(h + self.skip(x))


class Attention(nn.Module):
    def __init__(self, ch, heads=4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(8, ch)
        self.qkv = nn.Conv2d(ch, ch * 3, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.permute(1, 0, 2, 4, 3)
        a = torch.softmax(q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5, dim=-1)
        out = (a @ v).permute(0, 1, 3, 2).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    def __init__(self, cin=3, base=64, mult=(1, 2, 4), attn=(False, False, True),
                 num_classes=2, emb=256, blocks=2):
        super().__init__()
        cond = num_classes is not None
        self.time_mlp = nn.Sequential(nn.Linear(emb, emb * 4), nn.SiLU(), nn.Linear(emb * 4, emb))
        self.emb = emb
        self.class_emb = nn.Embedding(num_classes + 1, emb) if cond else None
        self.conv_in = nn.Conv2d(cin, base, 3, padding=1)
        self.downs = nn.ModuleList()
        chans, now = [base], base
        for i, m in enumerate(mult):
            out = base * m
            layers = nn.ModuleList([ResBlock(now if j == 0 else out, out, emb, cond) for j in range(blocks)])
            self.downs.append(nn.ModuleDict({
                "res": layers,
                "attn": Attention(out) if attn[i] else nn.Identity(),
                "down": nn.Conv2d(out, out, 3, stride=2, padding=1) if i != len(mult) - 1 else nn.Identity(),
            }))
            now = out
            chans.append(now)
        self.mid1 = ResBlock(now, now, emb, cond)
        self.mid_attn = Attention(now)
        self.mid2 = ResBlock(now, now, emb, cond)
        self.ups = nn.ModuleList()
        for i, m in enumerate(reversed(mult)):
            out = base * m
            cin_up = now + chans.pop()
            layers = nn.ModuleList([ResBlock(cin_up if j == 0 else out, out, emb, cond) for j in range(blocks)])
            last = i == len(mult) - 1
            self.ups.append(nn.ModuleDict({
                "res": layers,
                "attn": Attention(out) if attn[len(mult) - 1 - i] else nn.Identity(),
                "up": nn.Identity() if last else nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                    nn.Conv2d(out, out, 3, padding=1)),
            }))
            now = out
        self.out = nn.Sequential(nn.GroupNorm(8, base), nn.SiLU(), nn.Conv2d(base, cin, 3, padding=1))

    def forward(self, x, t, y):
        te = self.time_mlp(timestep_embedding(t, self.emb))
        ce = self.class_emb(y) if self.class_emb is not None and y is not None else None
        h = self.conv_in(x)
        skips = []
        for d in self.downs:
            for r in d["res"]:
                h = r(h, te, ce)
            h = d["attn"](h)
            skips.append(h)
            h = d["down"](h)
        h = self.mid2(self.mid_attn(self.mid1(h, te, ce)), te, ce)
        for u in self.ups:
            s = skips.pop()
            if s.shape[-2:] != h.shape[-2:]:
                h = F.interpolate(h, size=s.shape[-2:], mode="bilinear", align_corners=True)
            h = torch.cat([h, s], dim=1)
            for r in u["res"]:
                h = r(h, te, ce)
            h = u["attn"](h)
            h = u["up"](h)
        return self.out(h)


def cosine_alphas_cumprod(T, s=0.008):
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos(((steps / T) + s) / (1 + s) * math.pi / 2) ** 2
    ac = f / f[0]
    betas = torch.clip(1 - ac[1:] / ac[:-1], 0, 0.999)
    return torch.cumprod(1 - betas, 0).float()


def bench(args, batch):
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = UNet(args.in_channels, args.channels, tuple(args.mult), tuple(bool(a) for a in args.attn),
                 args.num_classes).to(dev)
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
