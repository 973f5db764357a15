#!/usr/bin/env python3
"""How well `check-leaks` finds disguised copies, and how often it calls distinct images
copies: the measurement behind its defaults (docs/check-leaks.md has the table this prints).

Three kinds of distinct images:
  photos  64x64 patches cut (without overlap) from the two photographs scikit-learn ships
          (sklearn.datasets.load_sample_images: china.jpg, flower.jpg): 120 real photos;
  scenes  ../shared/bench/python/make_images.py's generated scenes (gradient, ellipses,
          noise), 40x40: 400;
  scans   the embedded example (splits/example): 250 distinct 40x40 images of one
          structure in small variations, much like the user's scans; and the same in
          grayscale (scans_gray), where their tint no longer tells them apart.
Disguises (each applied to every third image, the copy put in another list): JPEG at
quality 90 and 70; resized down (to 3/4 and to 1/2) and back (bilinear); brighter (+12);
lower contrast (x 0.85); shifted by one pixel; cropped by 2 pixels a side and resized back.

`balance-split check-leaks --hash-only --threshold 16 --within --json` gives every
candidate pair with its pHash distance and pixel residual once per set; a setting
(threshold T, residual R) is then a filter over them: recall = copies found, false = the
share of distinct images with at least one false match. The same sets are hashed with
imagehash's phash (and imagededup's PHash when installed) at their thresholds.

Usage (from the repository root):
  /tmp/bench-venv/bin/pip install numpy scipy pillow scikit-learn imagehash
  cargo build --release
  /tmp/bench-venv/bin/python bench/leaks_quality.py
Writes bench/results/leaks_quality.json.
"""
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("SHARED_BENCH", str(REPO.parent / "shared" / "bench" / "python")))
BIN = Path(os.environ.get("BALANCE_SPLIT_BIN", REPO / "target" / "release" / "balance-split"))
SETTINGS = [(t, r) for t in (6, 8, 10, 12, 14) for r in (None, 2.0, 3.0, 4.0)]


def photos():
    from sklearn.datasets import load_sample_images
    out = []
    for im in load_sample_images().images:
        h, w, _ = im.shape
        for y in range(0, h - 63, 64):
            for x in range(0, w - 63, 64):
                out.append(Image.fromarray(im[y:y + 64, x:x + 64]))
    return out


def scenes():
    from make_images import synth
    rng = np.random.default_rng(1)
    return [Image.fromarray(synth(rng, 40)) for _ in range(400)]


def scans(gray=False):
    split = json.load(open(REPO / "splits/example/train_val_split.json"))
    imgs = [Image.open(REPO / e["path"]).convert("RGB") for e in split["train"] + split["val"]]
    return [i.convert("L").convert("RGB") for i in imgs] if gray else imgs


def jpeg(img, q):
    b = io.BytesIO()
    img.save(b, "JPEG", quality=q)
    return b.getvalue()


def png(img):
    b = io.BytesIO()
    img.save(b, "PNG")
    return b.getvalue()


def back(img, f):
    w, h = img.size
    return img.resize((int(w * f), int(h * f)), Image.BILINEAR).resize((w, h), Image.BILINEAR)


def level(img, f):
    a = np.asarray(img, dtype=np.float64)
    return Image.fromarray(np.clip(f(a), 0, 255).astype(np.uint8))


DISGUISES = {
    "JPEG q90": lambda i: jpeg(i, 90),
    "JPEG q70": lambda i: jpeg(i, 70),
    "resized to 3/4 and back": lambda i: png(back(i, 0.75)),
    "resized to 1/2 and back": lambda i: png(back(i, 0.5)),
    "brighter (+12)": lambda i: png(level(i, lambda a: a + 12)),
    "contrast x0.85": lambda i: png(level(i, lambda a: (a - a.mean()) * 0.85 + a.mean())),
    "shifted 1 px": lambda i: png(Image.fromarray(np.roll(np.asarray(i), 1, axis=1))),
    "cropped 2 px": lambda i: png(i.crop((2, 2, i.size[0] - 2, i.size[1] - 2)).resize(i.size, Image.BILINEAR)),
}


def candidates(root, train, val):
    """Every pair within 16 bits, with distance and residual, from our binary."""
    split = {"metadata": {"classes": {"x": 0}},
             "train": [{"path": p, "label": 0} for p in train],
             "val": [{"path": p, "label": 0} for p in val]}
    (root / "split.json").write_text(json.dumps(split))
    done = subprocess.run([str(BIN), "check-leaks", "split.json", "--hash-only", "--threshold", "16",
                           "--within", "--json"], cwd=root, capture_output=True, text=True)
    assert done.returncode in (0, 4), done.stderr
    r = json.loads(done.stdout)
    assert r["pairs_found"] == len(r["pairs"]), "more pairs than a report keeps"
    return [(p["a"]["path"], p["b"]["path"], (p["distance"], p["featureless"]), p["residual"])
            for p in r["pairs"]]


def keep(pair, t, r):
    """Reported at threshold t and residual r: within the bits, or a featureless pair (one
    colour, found whatever the hash), and confirmed by its pixels; r None is the hash alone,
    which has no colour path."""
    d, featureless = pair[2]
    if r is None:
        return d <= t
    return (d <= t or featureless) and pair[3] <= r


def measure(name, imgs, tmp):
    root = tmp / name
    (root / "img").mkdir(parents=True)
    paths = []
    for k, im in enumerate(imgs):
        p = f"img/{k:05}.png"
        (root / p).write_bytes(png(im))
        paths.append(p)
    distinct = candidates(root, paths[0::2], paths[1::2])
    false = {f"T{t} R{r}": len({x for a, b, d, res in distinct if keep((a, b, d, res), t, r) for x in (a, b)}) / len(imgs)
             for t, r in SETTINGS}
    recall = {}
    copied = list(range(0, len(imgs), 3))
    for dname, f in DISGUISES.items():
        cpaths = []
        for k in copied:
            data = f(imgs[k])
            p = f"img/copy_{dname[:4].strip()}_{k:05}" + (".jpg" if data[:2] == b"\xff\xd8" else ".png")
            (root / p).write_bytes(data)
            cpaths.append(p)
        pairs = candidates(root, [paths[k] for k in copied], cpaths)
        best = {}
        for a, b, d, res in pairs:
            best.setdefault((a, b), []).append((d, res))
        recall[dname] = {f"T{t} R{r}": sum(any(keep((0, 0, d, res), t, r) for d, res in best.get((paths[k], c), []))
                                          for k, c in zip(copied, cpaths)) / len(copied)
                         for t, r in SETTINGS}
    return {"images": len(imgs), "distinct_false": false, "recall": recall, "anchors": anchors(imgs)}


def anchors(imgs):
    """imagehash's phash at thresholds 6, 8, 10 (and imagededup's PHash at its default 10):
    the share of distinct images with a false match, and recall per disguise."""
    import imagehash
    out = {}
    hashes = [imagehash.phash(i) for i in imgs]
    H = np.array([h.hash.flatten() for h in hashes])
    for t in (6, 8, 10):
        d = (H[:, None, :] != H[None, :, :]).sum(-1)
        np.fill_diagonal(d, 99)
        false = float((d <= t).any(axis=1).mean())
        rec = {}
        for dname, f in DISGUISES.items():
            ks = range(0, len(imgs), 3)
            hits = sum(int((imagehash.phash(Image.open(io.BytesIO(f(imgs[k]))).convert("RGB")) - hashes[k]) <= t) for k in ks)
            rec[dname] = hits / len(ks)
        out[f"imagehash T{t}"] = {"distinct_false": false, "recall": rec}
    return out


def main():
    if not BIN.is_file():
        sys.exit(f"{BIN} not found: cargo build --release first")
    results = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for name, make in [("photos", photos), ("scenes", scenes), ("scans", scans), ("scans_gray", lambda: scans(True))]:
            results[name] = measure(name, make(), tmp)
            print(f"{name}: done", file=sys.stderr)
    out = REPO / "bench" / "results" / "leaks_quality.json"
    out.write_text(json.dumps(results, indent=1))
    for name, r in results.items():
        print(f"\n{name} ({r['images']} images)")
        print("| setting | " + " | ".join(DISGUISES) + " | distinct images with a false match |")
        print("|---" * (len(DISGUISES) + 2) + "|")
        for t, res in SETTINGS:
            key = f"T{t} R{res}"
            cells = [f"{100 * r['recall'][d][key]:.0f}%" for d in DISGUISES]
            label = f"{t} bits" + ("" if res is None else f", residual {res}")
            print(f"| {label} | " + " | ".join(cells) + f" | {100 * r['distinct_false'][key]:.1f}% |")
        for a, v in r["anchors"].items():
            cells = [f"{100 * v['recall'][d]:.0f}%" for d in DISGUISES]
            print(f"| {a} | " + " | ".join(cells) + f" | {100 * v['distinct_false']:.1f}% |")


if __name__ == "__main__":
    main()
