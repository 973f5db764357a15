#!/usr/bin/env python3
"""PyTorch itself, for the trainer's parity tests (tests/train_torch.rs runs this file).

The user's DDPMModel rebuilt with their module names, so its state_dict has exactly their keys
(../shared/seed/user-unet-state-dict.tsv): the layers and forward pass of
bench/unet_torch.py (the reference the trainer's UNet follows), named as in their model.py,
plus their noise-schedule buffers computed in float32 from the written formulas. Each
subcommand prints one JSON line.

    torch_reference.py check-export MODEL.safetensors CASE.safetensors LABELS.safetensors
    torch_reference.py make-pth OUT.pth CASE.safetensors --config JSON [--wrong-shape]
    torch_reference.py plateau --losses JSON --lr 0.001 [--options JSON]
    torch_reference.py quantile CASE.safetensors --q 0.995
    torch_reference.py grid DIR --cases JSON        (their model per case: weights, a forward)
    torch_reference.py check-grid DIR --cases JSON  (ours loaded into theirs, strictly)
"""
import argparse
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


class SinusoidalPositionEmbeddings(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / max(half - 1, 1)))
        args = t.float()[:, None] * freqs[None, :]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class ResidualBlock(nn.Module):
    def __init__(self, cin, cout, emb, conditional, dropout=0.1):
        super().__init__()
        self.time_mlp = nn.Linear(emb, cout)
        self.class_mlp = nn.Linear(emb, cout) if conditional else None
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.dropout = nn.Dropout(dropout)
        self.residual_conv = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t, c):
        h = self.norm1(self.conv1(x))
        e = self.time_mlp(F.silu(t))
        if c is not None and self.class_mlp is not None:
            e = e + self.class_mlp(F.silu(c))
        h = F.silu(h + e[:, :, None, None])
        h = self.dropout(self.norm2(self.conv2(h)))
        return F.silu(h + self.residual_conv(x))


class AttentionBlock(nn.Module):
    def __init__(self, ch, heads=4):
        super().__init__()
        assert ch % heads == 0
        self.heads = heads
        self.norm = nn.GroupNorm(8, ch)
        self.qkv = nn.Conv2d(ch, ch * 3, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.permute(1, 0, 2, 4, 3)
        a = torch.softmax(q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5, dim=-1)
        return x + self.proj((a @ v).permute(0, 1, 3, 2).reshape(b, c, h, w))


class DownBlock(nn.Module):
    """Their DownBlock: residual blocks, optional attention, a strided conv except at the
    lowest resolution; the skip is the input of that conv."""

    def __init__(self, cin, cout, emb, conditional, downsample, attention):
        super().__init__()
        self.resblocks = nn.ModuleList(
            [ResidualBlock(cin if j == 0 else cout, cout, emb, conditional) for j in range(2)])
        self.attention = AttentionBlock(cout) if attention else None
        self.downsample_conv = nn.Conv2d(cout, cout, 3, stride=2, padding=1) if downsample else None

    def forward(self, x, t, c):
        for r in self.resblocks:
            x = r(x, t, c)
        if self.attention is not None:
            x = self.attention(x)
        if self.downsample_conv is None:
            return x, x
        return self.downsample_conv(x), x


class UpBlock(nn.Module):
    """Their UpBlock: the skip concatenated as it is (no resize: at sizes that do not halve
    evenly their model fails, and diffusion-train refuses those sizes), residual blocks,
    optional attention, then bilinear (align_corners) x2 and a conv except at the top."""

    def __init__(self, cin, cout, emb, conditional, upsample, attention):
        super().__init__()
        self.resblocks = nn.ModuleList(
            [ResidualBlock(cin if j == 0 else cout, cout, emb, conditional) for j in range(2)])
        self.attention = AttentionBlock(cout) if attention else None
        self.upsample_conv = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(cout, cout, 3, padding=1),
        ) if upsample else None

    def forward(self, x, skip, t, c):
        h = torch.cat([x, skip], dim=1)
        for r in self.resblocks:
            h = r(h, t, c)
        if self.attention is not None:
            h = self.attention(h)
        return h if self.upsample_conv is None else self.upsample_conv(h)


class UNet(nn.Module):
    """Their UNet as `create_ddpm` builds it: the time embedding is 256 wide whatever
    model_channels is (their `time_emb_dim` default, which nothing passes)."""

    def __init__(self, in_channels, model_channels, channel_multipliers, use_attention, num_classes,
                 time_emb_dim=256):
        super().__init__()
        emb, base, n = time_emb_dim, model_channels, len(channel_multipliers)
        cond = num_classes is not None
        self.time_mlp = nn.Sequential(
            SinusoidalPositionEmbeddings(emb), nn.Linear(emb, emb * 4), nn.SiLU(), nn.Linear(emb * 4, emb)
        )
        self.class_emb = nn.Embedding(num_classes + 1, emb) if cond else None
        self.conv_in = nn.Conv2d(in_channels, base, 3, padding=1)
        self.downs = nn.ModuleList()
        chans, now = [base], base
        for i, m in enumerate(channel_multipliers):
            out = base * m
            self.downs.append(DownBlock(now, out, emb, cond, i != n - 1, use_attention[i]))
            now = out
            chans.append(now)
        self.mid = nn.ModuleList(
            [ResidualBlock(now, now, emb, cond), AttentionBlock(now), ResidualBlock(now, now, emb, cond)]
        )
        self.ups = nn.ModuleList()
        for i, m in enumerate(reversed(channel_multipliers)):
            out = base * m
            self.ups.append(UpBlock(now + chans.pop(), out, emb, cond, i != n - 1, use_attention[n - 1 - i]))
            now = out
        self.conv_out = nn.Sequential(nn.GroupNorm(8, base), nn.SiLU(), nn.Conv2d(base, in_channels, 3, padding=1))

    def forward(self, x, t, y):
        te = self.time_mlp(t)
        ce = self.class_emb(y) if self.class_emb is not None and y is not None else None
        h = self.conv_in(x)
        skips = []
        for d in self.downs:
            h, skip = d(h, te, ce)
            skips.append(skip)
        h = self.mid[2](self.mid[1](self.mid[0](h, te, ce)), te, ce)
        for u in self.ups:
            h = u(h, skips.pop(), te, ce)
        return self.conv_out(h)


def betas_for(d):
    """Their _get_beta_schedule, from its written formulas (float32, as torch's defaults)."""
    T, kind = d["num_timesteps"], d["beta_schedule"]
    if kind == "linear":
        return torch.linspace(d["beta_start"], d["beta_end"], T)
    if kind == "quadratic":
        return torch.linspace(d["beta_start"] ** 0.5, d["beta_end"] ** 0.5, T) ** 2
    if kind == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, T)) * (d["beta_end"] - d["beta_start"]) + d["beta_start"]
    x = torch.linspace(0, T, T + 1)
    ac = torch.cos(((x / T) + 0.008) / 1.008 * math.pi * 0.5) ** 2
    ac = ac / ac[0]
    return torch.clip(1 - ac[1:] / ac[:-1], 0.0001, 0.9999)


class DDPMModel(nn.Module):
    def __init__(self, arch, diffusion, num_classes):
        super().__init__()
        self.model = UNet(
            arch["in_channels"], arch["model_channels"], arch["channel_multipliers"], arch["use_attention"], num_classes
        )
        b = betas_for(diffusion)
        a = 1.0 - b
        ac = torch.cumprod(a, dim=0)
        prev = F.pad(ac[:-1], (1, 0), value=1.0)
        denom = torch.clamp(1.0 - ac, min=1e-20)
        pv = b * (1.0 - prev) / denom
        for name, value in [
            ("betas", b),
            ("alphas", a),
            ("alphas_cumprod", ac),
            ("alphas_cumprod_prev", prev),
            ("sqrt_alphas_cumprod", torch.sqrt(ac)),
            ("sqrt_one_minus_alphas_cumprod", torch.sqrt(1.0 - ac)),
            ("log_one_minus_alphas_cumprod", torch.log(torch.clamp(1.0 - ac, min=1e-20))),
            ("sqrt_recip_alphas_cumprod", torch.sqrt(1.0 / ac)),
            ("sqrt_recipm1_alphas_cumprod", torch.sqrt(1.0 / ac - 1)),
            ("posterior_variance", pv),
            ("posterior_log_variance_clipped", torch.log(torch.clamp(pv, min=1e-20))),
            ("posterior_mean_coef1", b * torch.sqrt(prev) / denom),
            ("posterior_mean_coef2", (1.0 - prev) * torch.sqrt(a) / denom),
        ]:
            self.register_buffer(name, value)


def model_from_config(meta_config):
    """A DDPMModel for the architecture, schedule and classes of the checkpoint's config (JSON
    written by the Rust test into the case file's metadata)."""
    c = json.loads(meta_config)
    return DDPMModel(c["architecture"], c["diffusion"], c["num_classes"]).eval()


def check_export(args):
    case = load_file(args.case)
    from safetensors import safe_open

    with safe_open(args.case, "pt") as f:
        meta = f.metadata()
    ddpm = model_from_config(meta["model"])
    theirs = model_from_config(meta["model"])
    exported = load_file(args.model)
    ddpm.load_state_dict(exported, strict=True)
    with torch.no_grad():
        eps = ddpm.model(case["x"], case["t"], load_file(args.labels)["y"])
    # Relative to each buffer's largest value: theirs are computed in float32 step by step,
    # ours in float64 and rounded once, so values near zero differ by float32 rounding.
    buffer_rel = max(
        ((exported[n] - b).abs().max() / b.abs().max()).item() for n, b in theirs.named_buffers()
    )
    print(json.dumps({
        "keys": len(exported),
        "max_abs_diff": (eps - case["eps"]).abs().max().item(),
        "max_abs_eps": case["eps"].abs().max().item(),
        "buffer_max_rel_diff": buffer_rel,
    }))


def make_pth(args):
    c = json.loads(args.config)
    torch.manual_seed(7)
    ddpm = DDPMModel(c["architecture"], c["diffusion"], c["num_classes"]).eval()
    shadow = {n: p.detach().clone() * 0.5 for n, p in ddpm.named_parameters()}
    state = ddpm.state_dict()
    if args.wrong_shape:
        key = "model.downs.0.resblocks.0.conv1.weight"
        w = state[key]
        state[key] = torch.zeros(w.shape[0] + 1, *w.shape[1:])
    opt = torch.optim.Adam(ddpm.parameters(), lr=1e-4)
    torch.save({
        "epoch": 3,
        "model_state_dict": state,
        "optimizer_state_dict": opt.state_dict(),
        "ema_state_dict": {"decay": 0.999, "shadow": shadow},
        "config": c,
    }, args.out)
    g = torch.Generator().manual_seed(11)
    size, cin = c["architecture"]["image_size"], c["architecture"]["in_channels"]
    x = torch.randn(3, cin, size, size, generator=g)
    t = torch.tensor([0.0, 17.0, float(c["diffusion"]["num_timesteps"] - 1)])
    y = torch.tensor([0, 1, c["num_classes"]])
    with torch.no_grad():
        eps = ddpm.model(x, t, y)
        for n, p in ddpm.named_parameters():
            p.copy_(shadow[n])
        eps_ema = ddpm.model(x, t, y)
    save_file({"x": x, "t": t, "y": y, "eps": eps, "eps_ema": eps_ema}, args.case_out)
    print(json.dumps({"params": sum(p.numel() for p in ddpm.parameters())}))


def grid_arch(case):
    return {k: case[k] for k in ("image_size", "in_channels", "model_channels", "channel_multipliers", "use_attention")}


GRID_DIFFUSION = {"num_timesteps": 100, "beta_schedule": "cosine", "beta_start": 0.0001, "beta_end": 0.02}


def grid(args):
    """For each case: their DDPMModel (seeded), its state_dict as theirs{i}.safetensors, and a
    forward on fixed inputs as io{i}.safetensors (labels as floats, for the Rust reader)."""
    out = []
    for i, case in enumerate(json.loads(args.cases)):
        torch.manual_seed(100 + i)
        ddpm = DDPMModel(grid_arch(case), GRID_DIFFUSION, case["num_classes"]).eval()
        save_file({k: v.contiguous() for k, v in ddpm.state_dict().items()}, f"{args.dir}/theirs{i}.safetensors")
        x, t, y = grid_inputs(case, i)
        with torch.no_grad():
            eps = ddpm.model(x, t, y)
        io = {"x": x, "t": t, "eps": eps}
        if y is not None:
            io["y"] = y.float()
        save_file(io, f"{args.dir}/io{i}.safetensors")
        out.append({"params": sum(p.numel() for p in ddpm.parameters()), "keys": len(ddpm.state_dict())})
    print(json.dumps({"cases": out}))


def grid_inputs(case, i):
    g = torch.Generator().manual_seed(1000 + i)
    size, cin = case["image_size"], case["in_channels"]
    x = torch.randn(2, cin, size, size, generator=g)
    t = torch.tensor([3.0, 97.0])
    y = None if case["num_classes"] is None else torch.tensor([0, case["num_classes"]])
    return x, t, y


def check_grid(args):
    """Loads each ours{i}.safetensors into their DDPMModel with strict=True and runs it on
    io{i}'s inputs; the largest difference from ours_eps in ours{i}, relative to its scale."""
    out = []
    for i, case in enumerate(json.loads(args.cases)):
        ddpm = DDPMModel(grid_arch(case), GRID_DIFFUSION, case["num_classes"]).eval()
        ours = load_file(f"{args.dir}/ours{i}.safetensors")
        eps_ours = ours.pop("ours_eps")
        ddpm.load_state_dict(ours, strict=True)
        io = load_file(f"{args.dir}/io{i}.safetensors")
        y = io["y"].long() if "y" in io else None
        with torch.no_grad():
            eps = ddpm.model(io["x"], io["t"], y)
        out.append(((eps - eps_ours).abs().max() / eps.abs().max()).item())
    print(json.dumps({"max_rel_diff": out}))


def plateau(args):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=args.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **json.loads(args.options))
    lrs = []
    for loss in json.loads(args.losses):
        sched.step(loss)
        lrs.append(opt.param_groups[0]["lr"])
    print(json.dumps({"lrs": lrs}))


def quantile(args):
    x = load_file(args.case)["x"]
    q = torch.quantile(x.abs().flatten(start_dim=1), args.q, dim=1)
    print(json.dumps({"quantiles": q.tolist()}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("check-export")
    a.add_argument("model")
    a.add_argument("case")
    a.add_argument("labels")
    a.set_defaults(run=check_export)
    a = sub.add_parser("make-pth")
    a.add_argument("out")
    a.add_argument("case_out")
    a.add_argument("--config", required=True)
    a.add_argument("--wrong-shape", action="store_true")
    a.set_defaults(run=make_pth)
    a = sub.add_parser("grid")
    a.add_argument("dir")
    a.add_argument("--cases", required=True)
    a.set_defaults(run=grid)
    a = sub.add_parser("check-grid")
    a.add_argument("dir")
    a.add_argument("--cases", required=True)
    a.set_defaults(run=check_grid)
    a = sub.add_parser("plateau")
    a.add_argument("--losses", required=True)
    a.add_argument("--lr", type=float, required=True)
    a.add_argument("--options", default="{}")
    a.set_defaults(run=plateau)
    a = sub.add_parser("quantile")
    a.add_argument("case")
    a.add_argument("--q", type=float, required=True)
    a.set_defaults(run=quantile)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.run(args)


if __name__ == "__main__":
    main()
