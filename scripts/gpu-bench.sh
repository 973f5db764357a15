#!/usr/bin/env bash
# Training images/s of the default config on an NVIDIA GPU: diffusion-train on wgpu
# (Vulkan) and the user's UNet in PyTorch (bench/unet_torch.py, same shapes, same loss,
# Adam), in one run on the same GPU, with their ratio. Meant for the device machine of
# ../shared/device/README.md, from a carried release binary:
#
#   here:   cargo build --release --features train --bin diffusion-train
#           strip -o .gpu/diffusion-train target/release/diffusion-train && gzip -f .gpu/diffusion-train
#           (plus the Vulkan loader .debs in .gpu/, see ../shared/device/README.md)
#   there:  scripts/gpu-bench.sh            (writes to $OUT, or ./gpu-bench-out)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-bench-out}"
mkdir -p "$out"
steps="${STEPS:-50}"

if ls .gpu/*.deb >/dev/null 2>&1; then
  for f in .gpu/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
bin=.gpu/diffusion-train
if [ -f "$bin.gz" ]; then gunzip -kf "$bin.gz"; fi
[ -x "$bin" ] || chmod +x "$bin" 2>/dev/null || bin=target/release/diffusion-train
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.csv"

peak() { # peak NAME CMD...: run CMD while sampling GPU memory into mem.NAME.log
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$out/mem.$1.log" &
  local sampler=$!
  shift
  "$@"
  kill "$sampler" 2>/dev/null || true
}

peak burn "$bin" bench --config configs/diffusion.yaml --device wgpu --batch 8 64 \
  --steps "$steps" --warmup 10 2> "$out/burn.stderr" | tee "$out/burn.jsonl"
peak torch python3 bench/unet_torch.py --device cuda --batch 8 64 --steps "$steps" \
  2> "$out/torch.stderr" | tee "$out/torch.jsonl"

python3 - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(name):
    rows = [json.loads(l) for l in (out / name).read_text().splitlines() if l.strip()]
    return {r["batch"]: r for r in rows}
burn, torch = load("burn.jsonl"), load("torch.jsonl")
mem = {k: max((int(x) for x in (out / f"mem.{k}.log").read_text().split() if x.isdigit()), default=0) for k in ("burn", "torch")}
print(f"| batch | burn-wgpu img/s | PyTorch img/s | burn / PyTorch |")
print(f"|---|---|---|---|")
for b in sorted(burn):
    r = burn[b]["images_per_s"] / torch[b]["images_per_s"]
    print(f"| {b} | {burn[b]['images_per_s']:.0f} | {torch[b]['images_per_s']:.0f} | {r:.2f}x |")
print(f"peak GPU memory used (MiB, whole GPU, sampled every 200 ms): burn {mem['burn']}, PyTorch {mem['torch']}")
PY
