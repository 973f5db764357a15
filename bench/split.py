#!/usr/bin/env python3
"""Benchmark of `balance-split split` against what the user would otherwise run.

Three parts, each timed or compared in the same run:

1. speed, their rules: a generated tree of N empty files in two classes (90:10), split in
   ratio mode (0.7/0.15/0.15, seed 42) by
     - rust:   target/release/balance-split split (scan, shuffle, write the JSON),
     - python: examples/python/split_reference.py's derivation, which is the user's step
               (Path.glob per extension, random.Random, json.dump indent=2) plus the write;
   both end to end, wall time, median of --runs.
2. speed, groups: N images in G groups, 5 grouped folds: our whole command (scan, place,
   write five files) against scikit-learn's StratifiedGroupKFold(shuffle=True).split on the
   labels and groups alone (it neither scans nor writes).
3. quality, groups: synthetic sets (2,000 groups of 1-20 images, 5-10% of the groups
   minority), and the embedded example with its made-up patients (splits/example/
   patients.csv): the largest per-class deviation of a test fold's share from 1/k, ours
   against StratifiedGroupKFold's, on 10 seeds each.

Usage (from the repository root):
  python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install numpy scikit-learn pyyaml
  cargo build --release
  /tmp/bench-venv/bin/python bench/split.py --files 1000000 --runs 3
Writes bench/results/split.json and prints the tables.
"""
import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "python"))
import split_reference as ref  # noqa: E402

BIN = Path(os.environ.get("BALANCE_SPLIT_BIN", REPO / "target" / "release" / "balance-split"))


def make_tree(root, names_by_class):
    for cls, names in names_by_class.items():
        d = root / cls
        d.mkdir(parents=True)
        for n in names:
            (d / n).touch()


def timed(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_ours(cwd, config):
    subprocess.run([str(BIN), "split", "--config", config, "--force"], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


def python_step(cwd, config):
    here = os.getcwd()
    os.chdir(cwd)
    try:
        import yaml
        with open(config) as f:
            cfg = yaml.safe_load(f)
        for path, doc in ref.expected_files(cfg).items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2, ensure_ascii=False)
    finally:
        os.chdir(here)


def speed_ratio(files, runs, work):
    root = work / "ratio"
    n_min = files // 10
    make_tree(root / "data", {
        "0.Normal": [f"img_{i:07}.png" for i in range(files - n_min)],
        "1.Abnormal": [f"img_{i:07}.png" for i in range(n_min)],
    })
    (root / "prep.yaml").write_text(
        "experiment: data_preparation\nclasses:\n"
        "  normal: {path: data/0.Normal, label: 0}\n  abnormal: {path: data/1.Abnormal, label: 1}\n"
        "split:\n  seed: 42\n  train_ratio: 0.7\n  val_ratio: 0.15\n  test_ratio: 0.15\n"
        "  save_dir: out\n  split_file: s.json\n")
    rust = timed(lambda: run_ours(root, "prep.yaml"), runs)
    ours = (root / "out" / "s.json").read_bytes()
    python = timed(lambda: python_step(root, "prep.yaml"), runs)
    same = ours == (root / "out" / "s.json").read_bytes()
    shutil.rmtree(root)
    return {"files": files, "rust_s": rust, "python_s": python, "speedup": python / rust,
            "identical_bytes": same}


def grouped_tree(root, rng, n_groups, sizes, minority):
    """Groups g0..: each one label; returns (labels, groups) per file in scan order."""
    names = {"0.Normal": [], "1.Abnormal": []}
    for g in range(n_groups):
        cls = "1.Abnormal" if rng.random() < minority else "0.Normal"
        for i in range(rng.randint(*sizes)):
            names[cls].append(f"g{g:06}_{i:02}.png")
    make_tree(root / "data", names)
    return names


def grouped_config(root, seed, k=5):
    (root / "prep.yaml").write_text(
        "experiment: data_preparation\nclasses:\n"
        "  normal: {path: data/0.Normal, label: 0}\n  abnormal: {path: data/1.Abnormal, label: 1}\n"
        f"split:\n  mode: kfold\n  n_folds: {k}\n  n_repeats: 1\n  repeat_seeds: [{seed}]\n"
        "  val_fraction: 0.15\n  save_dir: out\n  split_file: cv_{index}.json\n"
        "  group_by: {regex: \"^(?P<group>g[0-9]+)_\"}\n")


def deviation(test_counts, totals, k):
    """Largest |count / total - 1/k| over classes and folds."""
    return max(abs(test_counts[f][c] / totals[c] - 1 / k)
               for f in range(k) for c in range(len(totals)))


def our_deviation(root, k):
    counts, totals = [], None
    for f in range(k):
        m = json.loads((root / "out" / f"cv_{f}.json").read_text())
        counts.append([m["metadata"]["class_samples"][c]["test"] for c in ("normal", "abnormal")])
        totals = [m["metadata"]["class_samples"][c]["total"] for c in ("normal", "abnormal")]
    return deviation(counts, totals, k)


def sklearn_deviation(labels, groups, seed, k):
    y = np.array(labels)
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    totals = [int((y == c).sum()) for c in (0, 1)]
    counts = [[int((y[test] == c).sum()) for c in (0, 1)]
              for _, test in sgkf.split(np.zeros(len(y)), y, np.array(groups))]
    return deviation(counts, totals, k)


def labels_groups(names):
    labels, groups = [], []
    for label, cls in enumerate(("0.Normal", "1.Abnormal")):
        for n in sorted(names[cls]):
            labels.append(label)
            groups.append(n.split("_")[0])
    return labels, groups


def floor(labels, k):
    """The best any assignment can do: class sizes rarely divide by k."""
    worst = 0.0
    for c in (0, 1):
        n = labels.count(c)
        r = n % k
        # r folds hold ceil(n / k), the others floor(n / k).
        worst = max(worst, 0.0 if r == 0 else max(r, k - r) / k / n)
    return worst


def quality(work, seeds):
    rows = []
    # The sets (2,000 groups of 1-20 images), and harder ones: fewer, larger groups.
    for kind, n_groups, sizes in (("synthetic", 2000, (1, 20)), ("large-groups", 300, (1, 40))):
        for seed in seeds:
            root = work / f"q{seed}"
            rng = random.Random(1000 + seed)
            names = grouped_tree(root, rng, n_groups, sizes, rng.uniform(0.05, 0.10))
            grouped_config(root, seed)
            run_ours(root, "prep.yaml")
            labels, groups = labels_groups(names)
            rows.append({"set": f"{kind}-{seed}", "seed": seed,
                         "minority_images": labels.count(1), "images": len(labels),
                         "floor": floor(labels, 5), "ours": our_deviation(root, 5),
                         "sklearn": sklearn_deviation(labels, groups, seed, 5)})
            shutil.rmtree(root)
    # The embedded example with its made-up patients.
    with open(REPO / "splits" / "example" / "patients.csv") as f:
        table = {row["path"]: row["patient_id"] for row in csv.DictReader(f)}
    for seed in seeds:
        root = work / f"e{seed}"
        shutil.copytree(REPO / "splits" / "example", root / "splits" / "example")
        text = (REPO / "configs" / "examples" / "data_preparation_grouped.yaml").read_text()
        text = text.replace("n_repeats: 2", "n_repeats: 1").replace("[42, 43]", f"[{seed}]")
        text = text.replace('"outputs/splits/grouped"', "out").replace('"cv_split_{index}.json"', "cv_{index}.json")
        (root / "prep.yaml").write_text(text)
        run_ours(root, "prep.yaml")
        labels, groups = [], []
        for label, cls in enumerate(("0.Normal", "1.Abnormal")):
            d = f"splits/example/images/train/{cls}"
            for n in sorted(os.listdir(REPO / d)):
                labels.append(label)
                groups.append(table[f"{d}/{n}"])
        rows.append({"set": f"example-{seed}", "seed": seed, "minority_images": labels.count(1),
                     "images": len(labels), "floor": floor(labels, 5), "ours": our_deviation(root, 5),
                     "sklearn": sklearn_deviation(labels, groups, seed, 5)})
        shutil.rmtree(root)
    return rows


def speed_groups(images, groups, runs, work):
    root = work / "groups"
    rng = random.Random(7)
    mean = images / groups
    names = grouped_tree(root, rng, groups, (1, int(2 * mean - 1)), 0.08)
    grouped_config(root, 0)
    labels, gids = labels_groups(names)
    rust = timed(lambda: run_ours(root, "prep.yaml"), runs)
    y = np.array(labels)
    g = np.array(gids)

    def sk():
        list(StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
             .split(np.zeros(len(y)), y, g))
    sklearn = timed(sk, runs)
    shutil.rmtree(root)
    return {"images": len(labels), "groups": groups, "rust_s": rust, "sklearn_s": sklearn,
            "speedup": sklearn / rust}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=1_000_000)
    p.add_argument("--group-images", type=int, default=100_000)
    p.add_argument("--groups", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seeds", type=int, default=10)
    a = p.parse_args()
    if not BIN.is_file():
        sys.exit(f"{BIN} not found: cargo build --release first")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {"ratio": speed_ratio(a.files, a.runs, work)}
        r = result["ratio"]
        print(f"ratio split of {r['files']} files: rust {r['rust_s']:.2f} s, python "
              f"{r['python_s']:.2f} s ({r['speedup']:.1f}x); same bytes: {r['identical_bytes']}")
        result["groups_speed"] = speed_groups(a.group_images, a.groups, a.runs, work)
        g = result["groups_speed"]
        print(f"grouped 5-fold, {g['images']} images / {g['groups']} groups: rust (whole command) "
              f"{g['rust_s']:.2f} s, StratifiedGroupKFold (split only) {g['sklearn_s']:.2f} s "
              f"({g['speedup']:.1f}x)")
        rows = quality(work, range(a.seeds))
        result["groups_quality"] = rows
    print("largest per-class deviation of a test fold's share from 1/5, in points")
    print(f"{'set':<16} {'images':>6} {'minority':>8} {'floor':>8} {'ours':>8} {'sklearn':>8}")
    for row in rows:
        print(f"{row['set']:<16} {row['images']:>6} {row['minority_images']:>8} "
              f"{100 * row['floor']:>8.4f} {100 * row['ours']:>8.4f} {100 * row['sklearn']:>8.4f}")
    for kind in ("synthetic", "large-groups", "example"):
        sel = [r for r in rows if r["set"].startswith(kind)]
        wins = sum(r["ours"] <= r["sklearn"] + 1e-12 for r in sel)
        print(f"{kind}: ours no worse on {wins} of {len(sel)} seeds")
        result[f"{kind}_no_worse"] = f"{wins}/{len(sel)}"
    out = REPO / "bench" / "results" / "split.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
