#!/usr/bin/env python3
"""One training step of the user's pretrained-transfer model (OpenAI's ImageNet-64 ADM,
296M parameters, at 40x40): diffusion-train against PyTorch in the same run, with the
backbone frozen (their default: label_emb* and out.* train) and fully fine-tuned, and
each side's peak resident memory.

    cargo build --release --features train --bin diffusion-train
    ~/.cache/balance-split/venv-*/bin/python bench/adm.py --batch 8 --steps 3 --warmup 1

The PyTorch side is guided-diffusion's UNet at the ImageNet-64 flags as
tests/python/adm_reference.py writes it from the published definitions (the parity tests
load our weights into it strictly and compare forwards), trained as the user's
AdmDdpmModel trains it: the hybrid loss (their training_losses), class-weighted here with
weights [1, 9] as ours, AdamW at 1e-5 over the trainable tensors only, gradients clipped to
norm 1, label dropout 0.1. Random weights on both sides (no checkpoint is downloaded);
the time does not depend on their values. Each measurement runs in a process of its own
so its peak RSS (getrusage) is its own. Rows go to bench/results/adm_cpu.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIG = os.path.join(ROOT, "configs", "diffusion-pretrained.yaml")


def torch_side(args):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
    import adm_reference as ref

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ref.build("imagenet64", rows=3).train()
    heads = ("label_emb.", "out.")
    for name, p in model.named_parameters():
        p.requires_grad_(args.mode == "full" or name.startswith(heads))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    steps = 1000
    tb = ref.tables(ref.cosine_betas(steps))
    class_w = torch.tensor([1.0, 9.0])
    b = args.batch
    x0 = torch.rand(b, 3, 40, 40) * 2 - 1
    labels = torch.randint(0, 2, (b,))

    def step():
        t = torch.randint(0, steps, (b,))
        noise = torch.randn_like(x0)
        y = torch.where(torch.rand(b) < 0.1, torch.full_like(labels, 2), labels)
        x_t = ref.at(tb["sqrt_ac"], t, x0) * x0 + ref.at(tb["sqrt_1m_ac"], t, x0) * noise
        out = model(x_t, t.float(), y)
        terms = ref.hybrid_terms(tb, steps, x0, noise, t, out)
        loss = (terms["loss"] * class_w[labels]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    dt = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "mode": args.mode,
                      "batch": b, "steps": args.steps,
                      "trainable": sum(p.numel() for p in params),
                      "ms_per_step": 1000 * dt / args.steps}))


def measured(cmd):
    """The child's JSON rows and its peak RSS in MiB."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{cmd[0]} failed ({status})")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rows[-1], usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--torch-side", choices=["frozen", "full"])
    a = ap.parse_args()
    if a.torch_side:
        a.mode = a.torch_side
        return torch_side(a)
    binary = os.path.join(ROOT, "target", "release", "diffusion-train")
    results = []
    for mode in ("frozen", "full"):
        ours_cmd = [binary, "bench", "--config", CONFIG, "--device", "cpu", "--batch",
                    str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup), "-q"]
        if mode == "full":
            ours_cmd += ["--model.initialization.freeze_backbone", "false"]
        theirs_cmd = [sys.executable, __file__, "--torch-side", mode, "--batch", str(a.batch),
                      "--steps", str(a.steps), "--warmup", str(a.warmup),
                      "--threads", str(a.threads)]
        ours, ours_mib = measured(ours_cmd)
        theirs, theirs_mib = measured(theirs_cmd)
        row = {"mode": mode, "batch": a.batch, "steps": a.steps,
               "ours_ms": ours["ms_per_step"], "pytorch_ms": theirs["ms_per_step"],
               "speed_ratio": theirs["ms_per_step"] / ours["ms_per_step"],
               "ours_peak_mib": ours_mib, "pytorch_peak_mib": theirs_mib,
               "trainable_parameters": theirs["trainable"],
               "ours_phases_ms": ours.get("phases_ms"), "torch": theirs["torch"]}
        print(json.dumps(row), flush=True)
        results.append(row)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "adm_cpu.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
