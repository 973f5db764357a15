"""`balance-split balance` with synthetic augmentation against its independent reference
(examples/python/synthetic_reference.py), which composes the training list from the written
rules with CPython's own `random.Random(seed).sample`.

The cases cover both modes, every limit, seeds, both of `sample`'s algorithms (a pool when
the candidates are few for the draw, a set when they are many), and the embedded example's
configs as committed.
"""

import json
import random
import shutil
import subprocess
import sys

import pytest
import yaml

from test_reference import REPO, binary

sys.path.insert(0, str(REPO / "examples" / "python"))

import synthetic_reference as ref  # noqa: E402


def run(cwd, *args):
    return subprocess.run([binary(), *args], cwd=cwd, capture_output=True, text=True)


def write_case(tmp, n_real, n_selection, labels_real, labels_selection, seed_data):
    """A real split (3 classes) and a selection file with scores, in `tmp`: the labels cycle
    through the patterns given (fixed counts per class), in an order shuffled by `seed_data`."""
    rng = random.Random(seed_data)
    classes = {"normal": 0, "abnormal": 1, "other": 2}

    def labels(pattern, n):
        out = [pattern[i % len(pattern)] for i in range(n)]
        rng.shuffle(out)
        return out
    real = [{"path": f"real/{i:04d}.png", "label": l}
            for i, l in enumerate(labels(labels_real, n_real))]
    split = {"metadata": {"classes": classes}, "train": real,
             "val": [{"path": "val/0.png", "label": 0}]}
    (tmp / "split.json").write_text(json.dumps(split, indent=2))
    selection = [{"path": f"gen/{i:04d}.png", "label": l, "score": round(rng.uniform(1, 9), 2)}
                 for i, l in enumerate(labels(labels_selection, n_selection))]
    (tmp / "sel.json").write_text(json.dumps({"metadata": {"classes": {"abnormal": 1}},
                                              "train": selection}, indent=2))


def config(tmp, mode, limit, seed, replace_class=1):
    with open(REPO / "configs" / "classifier.yaml", encoding="utf-8") as f:
        c = yaml.safe_load(f)
    c["compute"]["seed"] = seed
    c["data"]["split_file"] = "split.json"
    c["data"]["synthetic_augmentation"] = {
        "enabled": True, "split_file": "sel.json", "mode": mode,
        "replace_class": replace_class if mode == "replace_minority" else None,
        "limit": limit,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(c, sort_keys=False))
    return path


LIMITS = [
    {"mode": None, "max_ratio": None, "max_samples": None},
    {"mode": "max_samples", "max_ratio": None, "max_samples": 7},
    {"mode": "max_samples", "max_ratio": None, "max_samples": 500},
    {"mode": "max_ratio", "max_ratio": 0.35, "max_samples": None},
    {"mode": "max_ratio", "max_ratio": 0.5, "max_samples": None},
    {"mode": "max_ratio", "max_ratio": 0.1, "max_samples": None},
    {"mode": "max_ratio", "max_ratio": 3, "max_samples": None},
]
# 60 real entries (36 / 12 / 12 by class) and 140 selection entries (28 / 84 / 28).
REAL, SELECTION = [0, 0, 0, 1, 2], [1, 1, 1, 0, 2]


@pytest.mark.parametrize("mode", ["augment", "replace_minority"])
@pytest.mark.parametrize("limit", range(len(LIMITS)))
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 17])
def test_lists_match_the_reference(tmp_path, mode, limit, seed):
    write_case(tmp_path, 60, 140, REAL, SELECTION, seed_data=seed ^ limit)
    cfg = config(tmp_path, mode, LIMITS[limit], seed)
    done = run(tmp_path, "balance", "--config", cfg.name)
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "split.balanced.json"
    assert ref.check(str(manifest), str(cfg), str(tmp_path)) == 0
    # verify recomputes it.
    done = run(tmp_path, "verify", manifest.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_cases_reach_both_of_samples_algorithms():
    """CPython's `sample` takes a pool when n <= 21 + 4 ** ceil(log(3k, 4)) (k > 5), else a
    set; the ratio cases above must reach both, in each mode, or the comparison would
    leave one algorithm unchecked."""
    import math

    def pool(n, k):
        return n <= 21 + (4 ** math.ceil(math.log(k * 3, 4)) if k > 5 else 0)
    # (kept real entries, candidates) in augment and replace_minority (class 1) mode.
    sizes = {"augment": (60, 140), "replace_minority": (48, 84)}
    for mode, (real, n) in sizes.items():
        ks = [int(real * l["max_ratio"]) for l in LIMITS if l["mode"] == "max_ratio"]
        kinds = {pool(n, k) for k in ks if 0 < k < n}
        assert kinds == {True, False}, (mode, ks)


def test_the_example_configs_match_the_reference(tmp_path):
    shutil.copytree(REPO / "splits", tmp_path / "splits")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    for name in ["dose_ladder", "tstr"]:
        cfg = f"configs/examples/{name}.yaml"
        done = run(tmp_path, "balance", "--config", cfg)
        assert done.returncode == 0, done.stderr
        manifest = tmp_path / "splits/example/train_val_split.balanced.json"
        assert ref.check(str(manifest), str(tmp_path / cfg), str(tmp_path)) == 0, name


def test_dose_ladders_nest(tmp_path):
    write_case(tmp_path, 30, 50, [0, 1], [1], seed_data=5)
    lists = []
    for n in [5, 10, 20]:
        cfg = config(tmp_path, "augment", {"mode": "max_samples", "max_samples": n}, 0)
        done = run(tmp_path, "balance", "--config", cfg.name, "--out", f"dose{n}.json")
        assert done.returncode == 0, done.stderr
        train = json.loads((tmp_path / f"dose{n}.json").read_text())["train"]
        lists.append([e["path"] for e in train if e.get("synthetic")])
    assert lists[0] == lists[1][:5] and lists[1] == lists[2][:10]


def test_overrides_give_the_edited_configs_lists(tmp_path):
    import balance_split as bs

    write_case(tmp_path, 60, 140, REAL, SELECTION, seed_data=9)
    edited = config(tmp_path, "replace_minority",
                    {"mode": "max_ratio", "max_ratio": 0.1, "max_samples": None}, 5)
    done = run(tmp_path, "balance", "--config", edited.name, "--out", "edited.json")
    assert done.returncode == 0, done.stderr
    base = config(tmp_path, "augment", LIMITS[0], 0)
    args = ["--compute.seed", "5",
            "--data.synthetic_augmentation.mode", "replace_minority",
            "--data.synthetic_augmentation.replace_class", "1",
            "--data.synthetic_augmentation.limit",
            "{'mode': 'max_ratio', 'max_ratio': 0.1}"]
    done = run(tmp_path, "balance", "--config", base.name, "--out", "overridden.json", *args)
    assert done.returncode == 0, done.stderr
    a = json.loads((tmp_path / "edited.json").read_text())
    b = json.loads((tmp_path / "overridden.json").read_text())
    recorded = b["balancing"].pop("overrides")
    assert recorded == [[args[i][2:], args[i + 1]] for i in range(0, len(args), 2)]
    assert a == b
    # The Python package takes the same overrides, typed.
    import os
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        m = bs.balance(base.name, out="python.json", overrides={
            "compute.seed": 5,
            "data.synthetic_augmentation.mode": "replace_minority",
            "data.synthetic_augmentation.replace_class": 1,
            "data.synthetic_augmentation.limit": {"mode": "max_ratio", "max_ratio": 0.1},
        })
        assert m.synthetic_count == sum(1 for e in a["train"] if e.get("synthetic"))
        with pytest.raises(bs.BadInput, match="unknown config key"):
            bs.balance(base.name, out="x.json", overrides={"compute.sed": 1})
    finally:
        os.chdir(here)
    c = json.loads((tmp_path / "python.json").read_text())
    assert c["train"] == a["train"]
    assert c["balancing"]["overrides"][3] == [
        "data.synthetic_augmentation.limit", "{'mode': 'max_ratio', 'max_ratio': 0.1}"]
