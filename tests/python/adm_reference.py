#!/usr/bin/env python3
"""PyTorch reference of guided-diffusion's UNet and Gaussian process, for the ADM parity
tests (tests/train_adm.rs runs this file).

Written by us from the published definitions (Dhariwal and Nichol 2021, "Diffusion Models
Beat GANs", and Nichol and Dhariwal 2021, "Improved DDPM"; guided-diffusion's README gives
the ImageNet-64 flags), with guided-diffusion's parameter names, so a state dict saved here is
in OpenAI's format (a plain dict, torch.save) and the user's AdmDdpmModel loads its keys under
`unet.`. Each subcommand prints one JSON line.

    adm_reference.py model DIR --flags tiny|imagenet64 [--rows N] [--batch B]
        random weights (OpenAI's format, DIR/weights.pt), an input and the forward's output
        (DIR/case.safetensors)
    adm_reference.py process DIR
        for fixed x0, noise, t and model outputs: each term of the hybrid loss, the weighted
        loss, one respaced sampling step and respacings (DIR/process.safetensors, JSON)
    adm_reference.py check-export WEIGHTS.safetensors CASE.safetensors --flags F --rows N
        our export loaded into the reference with strict=True; its forward on the case
    adm_reference.py files DIR --flags F --rows N
        beside DIR/weights.pt (from `model`): the same dict wrapped (DIR/wrapped.pt), with one
        tensor of another shape (DIR/reshaped.pt), with a NaN in one (DIR/nan.pt), and a checkpoint of the user's trainer for
        their AdmDdpmModel of N label rows (DIR/theirs.pt: model_state_dict under `unet.`,
        ema_state_dict.shadow of the heads it trains)
    adm_reference.py check-trained EXPORT.safetensors WEIGHTS.pt --flags F --rows N
        our export loaded with strict=True; which tensors are bit-identical to WEIGHTS.pt
"""
import argparse
import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

FLAGS = {
    # The public class-conditional ImageNet-64 model: 192 channels, multipliers 1,2,3,4,
    # 3 residual blocks, attention at downsampling factors 2, 4 and 8 with 64-channel heads
    # and the new attention order, scale-shift norm, residual up/downsampling, learned sigma.
    "imagenet64": dict(model_channels=192, channel_mult=(1, 2, 3, 4), num_res_blocks=3,
                       attention_ds=(2, 4, 8), head_channels=64, rows=1000),
    # The same structure, small: every kind of block, three levels, two heads per attention.
    "tiny": dict(model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1,
                 attention_ds=(2, 4), head_channels=16, rows=5),
}


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def norm(ch):
    return nn.GroupNorm(32, ch)


class ResBlock(nn.Module):
    """in_layers (norm, SiLU, conv), resampling between the norm and the conv when the block
    moves resolution; emb_layers (SiLU, linear to scale and shift); out_layers (norm, scaled
    and shifted, SiLU, dropout, conv); a 1x1 skip where the width changes."""

    def __init__(self, ch, emb, out, up=False, down=False, dropout=0.1):
        super().__init__()
        self.in_layers = nn.Sequential(norm(ch), nn.SiLU(), nn.Conv2d(ch, out, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, 2 * out))
        self.out_layers = nn.Sequential(norm(out), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out, out, 3, padding=1))
        self.skip_connection = nn.Identity() if out == ch else nn.Conv2d(ch, out, 1)
        self.up, self.down = up, down

    def resample(self, x):
        if self.up:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.down:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x

    def forward(self, x, emb):
        h = self.in_layers[1](self.in_layers[0](x))
        h = self.in_layers[2](self.resample(h))
        x = self.resample(x)
        scale, shift = self.emb_layers(emb)[..., None, None].chunk(2, dim=1)
        h = self.out_layers[0](h) * (1 + scale) + shift
        for layer in self.out_layers[1:]:
            h = layer(h)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over the pixels, heads of `head_channels`, q, k and v split before the
    heads (the new order), each scaled by ch^-1/4 before the product."""

    def __init__(self, ch, head_channels):
        super().__init__()
        self.heads = ch // head_channels
        self.norm = norm(ch)
        self.qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.proj_out = nn.Conv1d(ch, ch, 1)

    def forward(self, x):
        b, c, hh, ww = x.shape
        x = x.reshape(b, c, -1)
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=1)
        ch = c // self.heads
        scale = 1 / math.sqrt(math.sqrt(ch))
        q = (q * scale).reshape(b * self.heads, ch, -1)
        k = (k * scale).reshape(b * self.heads, ch, -1)
        w = torch.softmax(torch.einsum("bct,bcs->bts", q, k), dim=-1)
        a = torch.einsum("bts,bcs->bct", w, v.reshape(b * self.heads, ch, -1))
        return (x + self.proj_out(a.reshape(b, c, -1))).reshape(b, c, hh, ww)


class Seq(nn.ModuleList):
    def forward(self, h, emb):
        for layer in self:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h


class UNet(nn.Module):
    def __init__(self, model_channels, channel_mult, num_res_blocks, attention_ds,
                 head_channels, rows, in_channels=3, out_channels=6):
        super().__init__()
        mc, emb = model_channels, 4 * model_channels
        self.model_channels = mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label_emb = nn.Embedding(rows, emb)
        self.input_blocks = nn.ModuleList([Seq([nn.Conv2d(in_channels, mc, 3, padding=1)])])
        chans, ch, ds = [mc], mc, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, emb, mult * mc)]
                ch = mult * mc
                if ds in attention_ds:
                    layers.append(AttentionBlock(ch, head_channels))
                self.input_blocks.append(Seq(layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Seq([ResBlock(ch, emb, ch, down=True)]))
                chans.append(ch)
                ds *= 2
        self.middle_block = Seq([ResBlock(ch, emb, ch), AttentionBlock(ch, head_channels),
                                 ResBlock(ch, emb, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + chans.pop(), emb, mc * mult)]
                ch = mc * mult
                if ds in attention_ds:
                    layers.append(AttentionBlock(ch, head_channels))
                if level and i == num_res_blocks:
                    layers.append(ResBlock(ch, emb, ch, up=True))
                    ds //= 2
                self.output_blocks.append(Seq(layers))
        self.out = nn.Sequential(norm(ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))

    def forward(self, x, t, y):
        emb = self.time_embed(timestep_embedding(t, self.model_channels)) + self.label_emb(y)
        hs, h = [], x
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


def build(flags, rows=None):
    f = dict(FLAGS[flags])
    if rows is not None:
        f["rows"] = rows
    return UNet(**f)


def randomize(model, seed):
    """Every tensor random, scaled by its fan-in (zero-initialised layers too, or half the
    network would be a constant), norms near one, so activations stay near unit scale."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.startswith("label_emb"):
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))


def model_case(args):
    torch.manual_seed(0)
    model = build(args.flags, args.rows).eval()
    randomize(model, 1)
    torch.save(model.state_dict(), f"{args.dir}/weights.pt")
    g = torch.Generator().manual_seed(2)
    b = args.batch
    x = torch.randn((b, 3, 40, 40), generator=g)
    t = torch.tensor([999, 0, 500, 17][:b], dtype=torch.float32)
    y = torch.tensor([3, 0, 1, 4][:b]) % model.label_emb.num_embeddings
    with torch.no_grad():
        out = model(x, t, y)
    save_file({"x": x, "t": t, "y": y.float(), "out": out.contiguous()},
              f"{args.dir}/case.safetensors")
    print(json.dumps({"parameters": sum(p.numel() for p in model.parameters()),
                      "tensors": len(model.state_dict())}))


# --- The Gaussian process, from the definitions --------------------------------------------

def cosine_betas(steps):
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.array([min(1 - f((i + 1) / steps) / f(i / steps), 0.999) for i in range(steps)])


def tables(betas):
    ac = np.cumprod(1.0 - betas)
    prev = np.append(1.0, ac[:-1])
    pv = betas * (1.0 - prev) / (1.0 - ac)
    return {
        "sqrt_ac": np.sqrt(ac), "sqrt_1m_ac": np.sqrt(1.0 - ac),
        "sqrt_recip": np.sqrt(1.0 / ac), "sqrt_recipm1": np.sqrt(1.0 / ac - 1),
        "pv": pv, "plv": np.log(np.append(pv[1], pv[1:])),
        "c1": betas * np.sqrt(prev) / (1.0 - ac),
        "c2": (1.0 - prev) * np.sqrt(1.0 - betas) / (1.0 - ac),
        "log_betas": np.log(betas),
    }


def space(steps, spec):
    if spec.startswith("ddim"):
        n = int(spec[4:])
        for i in range(1, steps):
            if len(range(0, steps, i)) == n:
                return sorted(range(0, steps, i))
        raise ValueError(spec)
    counts = [int(c) for c in spec.split(",")]
    per, extra = divmod(steps, len(counts))
    kept, start = [], 0
    for i, n in enumerate(counts):
        size = per + (1 if i < extra else 0)
        stride = 1 if n <= 1 else (size - 1) / (n - 1)
        at = 0.0
        for _ in range(n):
            kept.append(start + round(at))
            at += stride
        start += size
    return sorted(set(kept))


def respaced_betas(betas, kept):
    ac, last, new = np.cumprod(1.0 - betas), 1.0, []
    for i in kept:
        new.append(1 - ac[i] / last)
        last = ac[i]
    return np.array(new)


def at(table, t, like):
    return torch.from_numpy(table)[t].float().reshape(-1, *([1] * (like.dim() - 1)))


def normal_kl(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + torch.exp(lv1 - lv2) + (m1 - m2) ** 2 * torch.exp(-lv2))


def approx_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_log_likelihood(x, mean, log_scale):
    c, inv = x - mean, torch.exp(-log_scale)
    cdf_plus, cdf_min = approx_cdf(inv * (c + 1 / 255)), approx_cdf(inv * (c - 1 / 255))
    log_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_min = torch.log((1 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_plus, torch.where(x > 0.999, log_one_minus_min, log_delta))


def mean_variance(tb, x_t, t, out, clip):
    eps, v = out.chunk(2, dim=1)
    min_log, max_log = at(tb["plv"], t, x_t), at(tb["log_betas"], t, x_t)
    frac = (v + 1) / 2
    log_var = frac * max_log + (1 - frac) * min_log
    x0 = at(tb["sqrt_recip"], t, x_t) * x_t - at(tb["sqrt_recipm1"], t, x_t) * eps
    if clip:
        x0 = x0.clamp(-1, 1)
    mean = at(tb["c1"], t, x_t) * x0 + at(tb["c2"], t, x_t) * x_t
    return mean, log_var


def hybrid_terms(tb, steps, x0, noise, t, out):
    x_t = at(tb["sqrt_ac"], t, x0) * x0 + at(tb["sqrt_1m_ac"], t, x0) * noise
    eps, v = out.chunk(2, dim=1)
    mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
    true_mean = at(tb["c1"], t, x0) * x0 + at(tb["c2"], t, x0) * x_t
    true_lv = at(tb["plv"], t, x0)
    mean, lv = mean_variance(tb, x_t, t, torch.cat([eps.detach(), v], dim=1), clip=False)
    kl = normal_kl(true_mean, true_lv, mean, lv).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = -discretized_log_likelihood(x0, mean, 0.5 * lv).mean(dim=(1, 2, 3)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl) * (steps / 1000.0)
    return {"x_t": x_t, "mse": mse, "kl": kl, "nll": nll, "vb": vb, "loss": mse + vb}


def process_case(args):
    steps = 1000
    betas = cosine_betas(steps)
    tb = tables(betas)
    g = torch.Generator().manual_seed(5)
    b = 4
    x0 = (torch.rand((b, 3, 6, 6), generator=g) * 2 - 1)
    x0[0, 0, 0, :2] = torch.tensor([-1.0, 1.0])  # the likelihood's edge bins
    noise = torch.randn(x0.shape, generator=g)
    out = torch.randn((b, 6, 6, 6), generator=g).clamp(-3, 3)
    out[:, 3:] = out[:, 3:].clamp(-1, 1)
    t = torch.tensor([0, 1, 250, 999])
    weights = torch.tensor([0.5, 2.0, 0.5, 1.0])
    out_grad = out.clone().requires_grad_(True)
    terms = hybrid_terms(tb, steps, x0, noise, t, out_grad)
    weighted = (weights * terms["loss"]).mean()
    weighted.backward()
    # One step of the "250" respacing at its index 100 (original timestep kept[100]).
    kept = space(steps, "250")
    stb = tables(respaced_betas(betas, kept))
    i = torch.full((b,), 100)
    step_noise = torch.randn(x0.shape, generator=g)
    mean, lv = mean_variance(stb, terms["x_t"], i, out, clip=True)
    sample = mean + torch.exp(0.5 * lv) * step_noise
    mean0, _ = mean_variance(stb, terms["x_t"], torch.zeros(b, dtype=torch.long), out, clip=True)
    tensors = {"x0": x0, "noise": noise, "out": out, "t": t.float(), "weights": weights,
               "step_noise": step_noise, "sample": sample, "sample_at_0": mean0,
               "weighted": weighted.detach().reshape(1), "grad": out_grad.grad}
    for k in ("mse", "kl", "nll", "vb", "loss"):
        tensors[k] = terms[k].detach()
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{args.dir}/process.safetensors")
    specs = ["250", "10,20,30", "ddim50", "7", "ddim25"]
    print(json.dumps({"kept_100": kept[100],
                      "respacings": {s: space(steps, s) for s in specs}}))


def check_export(args):
    model = build(args.flags, args.rows).eval()
    state = {k[len("unet."):]: v for k, v in load_file(args.weights).items()}
    model.load_state_dict(state, strict=True)
    case = load_file(args.case)
    with torch.no_grad():
        out = model(case["x"], case["t"], case["y"].long())
    ours = case["out"]
    print(json.dumps({"max_abs_diff": (out - ours).abs().max().item(),
                      "scale": out.abs().max().item()}))


HEADS = ("label_emb.weight", "out.0.weight", "out.0.bias", "out.2.weight", "out.2.bias")


def files(args):
    sd = torch.load(f"{args.dir}/weights.pt")
    torch.save({"model_state_dict": sd, "epoch": 3}, f"{args.dir}/wrapped.pt")
    reshaped = dict(sd)
    w = reshaped["out.2.weight"]
    reshaped["out.2.weight"] = torch.zeros((w.shape[0], w.shape[1] // 2, 3, 3))
    torch.save(reshaped, f"{args.dir}/reshaped.pt")
    damaged = dict(sd)
    damaged["out.2.weight"] = sd["out.2.weight"].clone()
    damaged["out.2.weight"][0, 0, 0, 0] = float("nan")
    torch.save(damaged, f"{args.dir}/nan.pt")
    model = build(args.flags, args.rows)
    randomize(model, 7)
    theirs = {f"unet.{k}": v for k, v in model.state_dict().items()}
    shadow = {f"unet.{k}": v + 0.5 for k, v in model.state_dict().items() if k in HEADS}
    torch.save({"epoch": 10, "model_state_dict": theirs,
                "ema_state_dict": {"decay": 0.9999, "shadow": shadow}},
               f"{args.dir}/theirs.pt")
    print(json.dumps({"tensors": len(sd), "theirs": len(theirs), "shadow": len(shadow)}))


def check_trained(args):
    model = build(args.flags, args.rows)
    state = {k[len("unet."):]: v for k, v in load_file(args.export).items()}
    model.load_state_dict(state, strict=True)
    original = torch.load(args.weights)
    identical, changed, other = [], [], []
    for name, value in model.state_dict().items():
        if original[name].shape != value.shape:
            other.append(name)
        elif torch.equal(original[name], value):
            identical.append(name)
        else:
            changed.append(name)
    print(json.dumps({"identical": len(identical), "changed": sorted(changed),
                      "other_shape": sorted(other)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("dir")
    m.add_argument("--flags", choices=FLAGS, required=True)
    m.add_argument("--rows", type=int)
    m.add_argument("--batch", type=int, default=2)
    pr = sub.add_parser("process")
    pr.add_argument("dir")
    c = sub.add_parser("check-export")
    c.add_argument("weights")
    c.add_argument("case")
    c.add_argument("--flags", choices=FLAGS, required=True)
    c.add_argument("--rows", type=int, required=True)
    f = sub.add_parser("files")
    f.add_argument("dir")
    f.add_argument("--flags", choices=FLAGS, required=True)
    f.add_argument("--rows", type=int, required=True)
    ct = sub.add_parser("check-trained")
    ct.add_argument("export")
    ct.add_argument("weights")
    ct.add_argument("--flags", choices=FLAGS, required=True)
    ct.add_argument("--rows", type=int, required=True)
    args = p.parse_args()
    torch.set_num_threads(2)
    {"model": model_case, "process": process_case, "check-export": check_export,
     "files": files, "check-trained": check_trained}[args.cmd](args)


if __name__ == "__main__":
    main()
