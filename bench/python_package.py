#!/usr/bin/env python3
"""The Python package against what a PyTorch user runs otherwise, in the same run.

    python3 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install torch torchvision pillow numpy
    /tmp/bench-venv/bin/pip install ./python                 # the package, release build
    /tmp/bench-venv/bin/python ../shared/bench/python/make_images.py --root /tmp/bench-images
    /tmp/bench-venv/bin/python bench/python_package.py [--sizes 1000000,10000000]

Sampler: one epoch of N weighted draws (two classes 90:10, inverse-frequency weights, with
replacement) consumed from Python, as `list(...)` and as a `for` loop, from
`balance_split.EpochSampler` and from torch's `WeightedRandomSampler`; plus
`torch.multinomial(...).tolist()`. Epochs are timed after the manifest (ours) or the weight
tensor (theirs) exists: what a training loop pays per epoch. Best of --runs after a warm-up.

Loading: one epoch of the 40x40 PNG and 256x256 JPEG sets of make_images.py delivered to
the Python loop as torch tensors [64, 3, 40, 40] in [-1, 1]: `balance_split.torch.TensorLoader`
over `balance_split.Loader` (from the files, and from the decoded cache), against
`torch.utils.data.DataLoader` with torchvision's Resize (JPEG set), ToTensor and Normalize
on Pillow, `num_workers` 0, 1 and 2. Worker start-up is inside the timed epoch, as a
training loop without persistent workers pays it. Median of at least 9 epochs after a warm-up.

Every measurement runs in a fresh process of its own (this script with --one), so its peak
memory is its own (VmHWM); for the DataLoader, the workers' peaks are added up at the last
batch (each counts the pages it shares with the main process). Rows go to
bench/results/python_package.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def hwm_mib(pid="self"):
    """Peak resident memory of one process (VmHWM: its own, from exec on)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_hwm_mib():
    """Summed peak memory of this process's live children (DataLoader workers)."""
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids += f.read().split()
        except OSError:
            pass
    return sum(hwm_mib(p) for p in pids)


# --- sampler -----------------------------------------------------------------------------

def write_split(path, n):
    """N train entries, every tenth in the minority class; a small val list."""
    with open(path, "w") as f:
        f.write('{"metadata": {"classes": {"normal": 0, "abnormal": 1}},\n"train": [\n')
        f.write(",\n".join(f'{{"path": "t/{i}.png", "label": {int(i % 10 == 9)}}}' for i in range(n)))
        f.write('],\n"val": [{"path": "v/0.png", "label": 0}, {"path": "v/1.png", "label": 1}]}\n')


def sampler_config(path, split):
    with open(path, "w") as f:
        f.write(f"""data:
  split_file: "{split}"
  balancing:
    weighted_sampler:
      enabled: true
      method: inverse_frequency
      replacement: true
      num_samples: null
""")


def timed(fn, runs, median=False):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) if median else min(times)


def one_sampler(impl, n, work, runs):
    if impl.startswith("balance_split"):
        import balance_split as bs

        manifest = os.path.join(work, f"weighted_{n}.balanced.json")
        s = bs.EpochSampler(bs.Manifest.open(manifest))
        epoch = [0]

        def next_epoch():
            epoch[0] += 1
            s.set_epoch(epoch[0])
            return s

        def loop():
            for _ in next_epoch():
                pass

        fns = {
            "balance_split list": lambda: list(next_epoch()),
            "balance_split loop": loop,
            "balance_split indices": lambda: next_epoch().indices(),
        }
    else:
        import torch
        from torch.utils.data import WeightedRandomSampler

        torch.set_num_threads(2)
        labels = (torch.arange(n) % 10 == 9).long()
        minority = int(labels.sum())
        w = torch.tensor([n / (n - minority), n / minority], dtype=torch.double)[labels]
        g = torch.Generator().manual_seed(42)
        wrs = WeightedRandomSampler(w, num_samples=n, replacement=True, generator=g)

        def loop():
            for _ in wrs:
                pass

        fns = {
            "WeightedRandomSampler list": lambda: list(wrs),
            "WeightedRandomSampler loop": loop,
            "torch.multinomial tolist": lambda: torch.multinomial(w, n, True, generator=g).tolist(),
        }
    secs = timed(fns[impl], runs)
    return {"bench": "sampler", "impl": impl, "n": n, "seconds": round(secs, 4),
            "draws_per_s": round(n / secs)}


SAMPLER_IMPLS = ["balance_split list", "balance_split loop", "balance_split indices",
                 "WeightedRandomSampler list", "WeightedRandomSampler loop",
                 "torch.multinomial tolist"]


# --- loading -----------------------------------------------------------------------------

SETS = {"png40": "png", "jpg256": "jpg"}


def image_paths(images, name):
    folder = os.path.join(images, name)
    files = sorted(f for f in os.listdir(folder) if f.endswith("." + SETS[name]))
    if not files:
        raise SystemExit(f"no images in {folder}; run make_images.py")
    return [os.path.join(folder, f) for f in files]


def write_image_split(path, paths):
    entries = [{"path": p, "label": int(i % 10 == 9)} for i, p in enumerate(paths)]
    with open(path, "w") as f:
        json.dump({"metadata": {"classes": {"normal": 0, "abnormal": 1}},
                   "train": entries, "val": entries[:2]}, f)


def one_load(impl, name, work, images, runs):
    import torch

    torch.set_num_threads(2)
    paths = image_paths(images, name)
    for p in paths:  # page cache warm, as for the baseline
        with open(p, "rb") as f:
            f.read()
    if impl.startswith("balance_split"):
        import balance_split as bs
        from balance_split.torch import TensorLoader

        m = bs.Manifest.open(os.path.join(work, f"{name}.balanced.json"))
        cache = os.path.join(work, f"{name}.cache") if impl.endswith("cache") else None
        loader = TensorLoader(bs.Loader(m, "train", root="/", image_size=40, batch_size=64,
                                        shuffle=False, cache=cache))
    else:
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset
        from torchvision import transforms

        tfs = [transforms.Resize((40, 40))] if name == "jpg256" else []
        tf = transforms.Compose(tfs + [transforms.ToTensor(), transforms.Normalize(0.5, 0.5)])

        class Images(Dataset):
            def __len__(self):
                return len(paths)

            def __getitem__(self, i):
                with Image.open(paths[i]) as im:
                    return tf(im.convert("RGB")), int(i % 10 == 9)

        num_workers = int(impl.rsplit(" ", 1)[1])
        loader = DataLoader(Images(), batch_size=64, num_workers=num_workers, shuffle=False)
    count = [0]
    workers = [0.0]

    def epoch():
        n = 0
        for x, y in loader:
            assert x.dtype == torch.float32 and x.shape[1:] == (3, 40, 40), (x.dtype, x.shape)
            n += x.shape[0]
            if n == len(paths):  # the last batch: the workers are still alive
                workers[0] = max(workers[0], children_hwm_mib())
        count[0] = n

    # An epoch from the cache takes about 10 ms: a median of 3 was at the mercy of one
    # slow epoch, so loading takes the median of at least 9.
    secs = timed(epoch, max(runs, 9), median=True)
    assert count[0] == len(paths), (count[0], len(paths))
    return {"bench": "load", "impl": impl, "set": name, "images": count[0],
            "seconds": round(secs, 4), "images_per_s": round(count[0] / secs, 1),
            "workers_peak_mib": round(workers[0], 1)}


LOAD_IMPLS = ["balance_split Loader", "balance_split Loader cache",
              "DataLoader num_workers 0", "DataLoader num_workers 1", "DataLoader num_workers 2"]


# --- driver ------------------------------------------------------------------------------

def prepare(work, sizes, images, sets):
    import balance_split as bs

    for n in sizes:
        split = os.path.join(work, f"weighted_{n}.json")
        config = os.path.join(work, f"weighted_{n}.yaml")
        write_split(split, n)
        sampler_config(config, split)
        bs.balance(config, seed=42, out=os.path.join(work, f"weighted_{n}.balanced.json"))
    for name in sets:
        split = os.path.join(work, f"{name}.json")
        config = os.path.join(work, f"{name}.yaml")
        write_image_split(split, image_paths(images, name))
        with open(config, "w") as f:
            f.write(f'data:\n  split_file: "{split}"\n')
        out = os.path.join(work, f"{name}.balanced.json")
        bs.balance(config, seed=0, out=out)
        # The package installs the same command-line program.
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "balance-split"), "cache", out,
                        "--out", os.path.join(work, f"{name}.cache"), "--root", "/",
                        "--image-size", "40"], check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--images", default="/tmp/bench-images")
    ap.add_argument("--sets", default="png40,jpg256")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--results", default=os.path.join(HERE, "results", "python_package.json"))
    ap.add_argument("--one", nargs=4, metavar=("KIND", "IMPL", "ARG", "WORK"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        kind, impl, arg, work = a.one
        row = (one_sampler(impl, int(arg), work, a.runs) if kind == "sampler"
               else one_load(impl, arg, work, a.images, a.runs))
        row["peak_mib"] = round(hwm_mib(), 1)
        print(json.dumps(row), flush=True)
        return
    sizes = [int(s) for s in a.sizes.split(",") if s]
    sets = [s for s in a.sets.split(",") if s]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-python-package-") as work:
        prepare(work, sizes, a.images, sets)
        jobs = [("sampler", impl, str(n)) for n in sizes for impl in SAMPLER_IMPLS]
        jobs += [("load", impl, name) for name in sets for impl in LOAD_IMPLS]
        for kind, impl, arg in jobs:
            out = subprocess.run([sys.executable, __file__, "--runs", str(a.runs), "--images", a.images,
                                  "--one", kind, impl, arg, work],
                                 check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    with open(a.results, "w") as f:
        json.dump(rows, f, indent=1)
    report(rows)


def report(rows):
    def find(bench, impl, key, value):
        return next(r for r in rows if r["bench"] == bench and r["impl"] == impl and r[key] == value)

    print("| N | consumed as | balance_split.EpochSampler | WeightedRandomSampler | ratio | peak MiB (ours / theirs) |")
    print("|---|---|---|---|---|---|")
    for n in sorted({r["n"] for r in rows if r["bench"] == "sampler"}):
        for how in ("list", "loop"):
            o, t = find("sampler", f"balance_split {how}", "n", n), find("sampler", f"WeightedRandomSampler {how}", "n", n)
            print(f"| {n:,} | `{how}` | {o['seconds']:.3f} s | {t['seconds']:.3f} s | "
                  f"{t['seconds'] / o['seconds']:.1f}x | {o['peak_mib']:.0f} / {t['peak_mib']:.0f} |")
        o, t = find("sampler", "balance_split indices", "n", n), find("sampler", "torch.multinomial tolist", "n", n)
        print(f"| {n:,} | `indices()` vs `torch.multinomial(...).tolist()` | {o['seconds']:.3f} s | "
              f"{t['seconds']:.3f} s | {t['seconds'] / o['seconds']:.1f}x | {o['peak_mib']:.0f} / {t['peak_mib']:.0f} |")
    print()
    print("| set | loader | images/s | vs best DataLoader | peak MiB (process + workers) |")
    print("|---|---|---|---|---|")
    for name in [s for s in SETS if any(r.get("set") == s for r in rows)]:
        mine = [r for r in rows if r.get("set") == name]
        best = max((r for r in mine if r["impl"].startswith("DataLoader")), key=lambda r: r["images_per_s"])
        for r in mine:
            print(f"| {name} | {r['impl']} | {r['images_per_s']:,.0f} | "
                  f"{r['images_per_s'] / best['images_per_s']:.1f}x | {r['peak_mib']:.0f} + {r['workers_peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
