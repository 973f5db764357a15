#!/usr/bin/env bash
# Training images/s of the default config on an NVIDIA GPU, in one run on the same GPU:
# diffusion-train on burn's CUDA backend (when the binary was built with the `cuda`
# feature) and on wgpu (Vulkan), and the user's UNet in PyTorch (bench/unet_torch.py, same
# shapes, same loss, Adam) in fp32 and with AMP; images/s, the ratio to PyTorch fp32, and
# the peak GPU memory of each. Meant for the device machine of ../shared/device/README.md,
# from a carried release binary:
#
#   here:   cargo build --release --features cuda --bin diffusion-train   (or train: no CUDA row)
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

# Without the `cuda` feature `--device cuda` means wgpu; the row is then left out.
peak cuda "$bin" bench --config configs/diffusion.yaml --device cuda --batch 8 64 \
  --steps "$steps" --warmup 10 2> "$out/cuda.stderr" > "$out/cuda.jsonl" || true
if ! grep -q '"device":"CUDA' "$out/cuda.jsonl"; then
  why=$(tail -n 1 "$out/cuda.stderr" 2>/dev/null || true)
  echo "no CUDA row: ${why:-the binary was built without the cuda feature}" >&2
  : > "$out/cuda.jsonl"
fi
peak wgpu "$bin" bench --config configs/diffusion.yaml --device wgpu --batch 8 64 \
  --steps "$steps" --warmup 10 2> "$out/wgpu.stderr" > "$out/wgpu.jsonl"
peak torch python3 bench/unet_torch.py --device cuda --batch 8 64 --steps "$steps" \
  2> "$out/torch.stderr" > "$out/torch.jsonl"
peak amp python3 bench/unet_torch.py --device cuda --batch 8 64 --steps "$steps" --amp \
  2> "$out/amp.stderr" > "$out/amp.jsonl"

python3 - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(name):
    rows = [json.loads(l) for l in (out / f"{name}.jsonl").read_text().splitlines() if l.startswith("{")]
    return {r["batch"]: r for r in rows}
def peak(name):
    return max((int(x) for x in (out / f"mem.{name}.log").read_text().split() if x.isdigit()), default=0)
runs = [("burn, CUDA", "cuda"), ("burn, wgpu (Vulkan)", "wgpu"), ("PyTorch fp32", "torch"), ("PyTorch AMP", "amp")]
rows = {key: load(key) for _, key in runs}
ref = rows["torch"]
print("| run | batch | img/s | / PyTorch fp32 | peak GPU memory (MiB) | device |")
print("|---|---|---|---|---|---|")
for label, key in runs:
    for b, r in sorted(rows[key].items()):
        ratio = r["images_per_s"] / ref[b]["images_per_s"] if b in ref else float("nan")
        print(f"| {label} | {b} | {r['images_per_s']:.0f} | {ratio:.2f}x | {peak(key)} | {r['device']} |")
print("(peak memory: whole GPU, sampled every 200 ms over both batch sizes of a run)")
PY
