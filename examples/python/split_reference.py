"""An independent re-derivation of `balance-split split` for the user's own configs.

Written from the rules docs/split.md states (ratio and repeated k-fold mode), with CPython's
own `random.Random`, `pathlib` and `json`: if balance-split's Rust reimplementation of the
generator, the globs or the JSON layout drifted, the files would differ here.

    python3 split_reference.py CONFIG            # print the expected files' names
    python3 split_reference.py CONFIG --check    # compare with the files balance-split wrote

`--check` compares byte for byte and, parsed, key for key; `created_at` is ignored when
the written file has one (pass --created-at to balance-split). Exit 0 when every file
agrees, 1 otherwise. Needs PyYAML (the user's config reader).
"""

import json
import random
import sys
from pathlib import Path

import yaml

EXTENSIONS = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"]


def scan(folder):
    """Every name matching *.ext or *.EXT, as str(Path(folder) / name), sorted."""
    base = Path(folder)
    found = []
    for ext in EXTENSIONS:
        for pattern in (f"*.{ext}", f"*.{ext.upper()}"):
            found.extend(str(p) for p in base.glob(pattern))
    return sorted(found)


def ratio_cut(n, train_ratio, val_ratio):
    t = int(n * train_ratio)
    v = t + int(n * val_ratio)
    if n > 1:
        if t == 0:
            t = 1
        if v <= t:
            v = min(t + 1, n)
    return t, v


def chunk_bounds(n, k):
    bounds, start = [], 0
    for f in range(k):
        size = n // k + (1 if f < n % k else 0)
        bounds.append((start, start + size))
        start += size
    return bounds


def document(classes, lists, extra, source):
    """The split file: common metadata keys, then the mode's."""
    train, val, test = lists
    class_samples = {}
    for name, label in sorted(classes.items(), key=lambda kv: kv[1]):
        counts = [sum(1 for e in lst if e["label"] == label) for lst in lists]
        class_samples[name] = {"total": sum(counts), "train": counts[0],
                               "val": counts[1], "test": counts[2]}
    metadata = {
        "total_samples": len(train) + len(val) + len(test),
        "train_samples": len(train),
        "val_samples": len(val),
        "test_samples": len(test),
        "classes": dict(classes),
        "class_samples": class_samples,
        "source_paths": {name: source[name]
                         for name, _ in sorted(classes.items(), key=lambda kv: kv[1])},
    }
    metadata.update(extra)
    return {"metadata": metadata, "train": train, "val": val, "test": test}


def expected_files(config):
    """{output path: document} for a data-preparation config."""
    classes = {name: entry["label"] for name, entry in config["classes"].items()}
    source = {name: entry["path"] for name, entry in config["classes"].items()}
    by_label = sorted(classes, key=lambda name: classes[name])
    files = {name: scan(source[name]) for name in by_label}
    split = config["split"]
    save_dir = Path(split["save_dir"])
    out = {}
    if split.get("mode", "ratio") == "ratio":
        rng = random.Random(split.get("seed"))
        lists = ([], [], [])
        for name in by_label:
            items = list(files[name])
            rng.shuffle(items)
            t, v = ratio_cut(len(items), split["train_ratio"], split["val_ratio"])
            for lst, part in zip(lists, (items[:t], items[t:v], items[v:])):
                lst.extend({"path": p, "label": classes[name]} for p in part)
        extra = {"seed": split.get("seed"), "train_ratio": split["train_ratio"],
                 "val_ratio": split["val_ratio"], "test_ratio": split["test_ratio"]}
        out[str(save_dir / split["split_file"])] = document(classes, lists, extra, source)
        return out
    k = split["n_folds"]
    for repeat, seed in enumerate(split["repeat_seeds"]):
        rng = random.Random(seed)
        shuffled = {}
        for name in by_label:
            items = list(files[name])
            rng.shuffle(items)
            shuffled[name] = items
        for fold in range(k):
            lists = ([], [], [])
            for name in by_label:
                items = shuffled[name]
                bounds = chunk_bounds(len(items), k)
                test = items[bounds[fold][0]:bounds[fold][1]]
                pool = [p for f, (a, b) in enumerate(bounds) if f != fold for p in items[a:b]]
                val_n = round(len(items) * split["val_fraction"])
                val_n = max(1, min(val_n, len(pool) - 1)) if len(pool) > 1 else 0
                for lst, part in zip(lists, (pool[val_n:], pool[:val_n], test)):
                    lst.extend({"path": p, "label": classes[name]} for p in part)
            index = repeat * k + fold
            extra = {"mode": "kfold", "split_index": index, "repeat": repeat, "fold": fold,
                     "n_folds": k, "n_repeats": split["n_repeats"], "repeat_seed": seed,
                     "val_fraction": split["val_fraction"]}
            name = split["split_file"].replace("{index}", str(index))
            out[str(save_dir / name)] = document(classes, lists, extra, source)
    return out


def check(config):
    split = config["split"]
    if split.get("mode", "ratio") == "ratio" and split.get("seed") is None:
        # A null seed was drawn from the OS; the file records which.
        written = json.loads(Path(split["save_dir"], split["split_file"]).read_bytes())
        split["seed"] = written["metadata"]["seed"]
    bad = 0
    for path, doc in expected_files(config).items():
        written = Path(path).read_bytes()
        parsed = json.loads(written)
        stamped = parsed["metadata"].pop("created_at", None) is not None
        want = json.dumps(doc, indent=2, ensure_ascii=False)
        if not stamped and written != want.encode():
            print(f"{path}: bytes differ from the reference")
            bad += 1
        elif parsed != json.loads(want):
            print(f"{path}: content differs from the reference")
            bad += 1
        else:
            print(f"{path}: identical")
    return bad


def main(argv):
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--check"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if len(argv) == 3:
        return 1 if check(config) else 0
    for path in expected_files(config):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
