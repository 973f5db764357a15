"""`balance-split split` against its independent Python reference (examples/python/split_reference.py).

The reference re-derives the user's split files from the written rules with CPython's own
`random.Random`, `pathlib` globs and `json.dump`; the binary's files must be the same bytes.
Trees here include what trips reimplementations: hidden files, upper-case extensions,
folders named like images, non-ASCII names, classes of 1 to 7 images, odd class paths.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_reference import REPO, binary

sys.path.insert(0, str(REPO / "examples" / "python"))

import split_reference as ref  # noqa: E402


def split(cwd, config, *extra):
    done = subprocess.run([binary(), "split", "--config", config, *extra],
                          cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def check(cwd, config):
    """The reference's verdict on every file the config names, run in `cwd`."""
    with open(cwd / config, encoding="utf-8") as f:
        parsed = yaml.safe_load(f)
    here = Path.cwd()
    try:
        import os
        os.chdir(cwd)
        return ref.check(parsed)
    finally:
        os.chdir(here)


@pytest.fixture
def example(tmp_path):
    shutil.copytree(REPO / "splits", tmp_path / "splits")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    return tmp_path


@pytest.mark.parametrize("config", ["data_preparation", "data_preparation_kfold"])
def test_example_configs_match_the_reference(example, config):
    name = f"configs/examples/{config}.yaml"
    split(example, name)
    assert check(example, name) == 0


def test_the_users_unchanged_configs_match_the_reference(tmp_path):
    images = REPO / "splits" / "example" / "images" / "train"
    shutil.copytree(images / "0.Normal", tmp_path / "data" / "0.Normal")
    shutil.copytree(images / "1.Abnormal", tmp_path / "data" / "1.Abnormal")
    for name in ["data-preparation.yaml", "data-preparation-kfold.yaml"]:
        shutil.copy(REPO / "tests" / "fixtures" / name, tmp_path / name)
        split(tmp_path, name)
        assert check(tmp_path, name) == 0


def tricky_tree(root):
    """Three classes, odd names and paths; returns the classes section."""
    names = {
        "a": ["x.png", ".hidden.png", "UP.PNG", "mixed.Png", "b.jpeg", "c.TIFF", "d.tif",
              "é-ü.png", "z.webp", "y.bmp", "n.txt", "w.pgm", "v.ppm"],
        "b": ["only.jpg"],
        "c": [f"{i:02}.JPG" for i in range(7)],
    }
    for cls, files in names.items():
        for f in files:
            (root / "img" / cls).mkdir(parents=True, exist_ok=True)
            (root / "img" / cls / f).write_bytes(b"")
    (root / "img" / "a" / "folder.png").mkdir()
    return {
        "a": {"path": "./img//a/", "label": 2},
        "b": {"path": "img/b", "label": 0},
        "c": {"path": "img/./c", "label": 1},
    }


@pytest.mark.parametrize("split_section", [
    {"seed": 7, "train_ratio": 0.5, "val_ratio": 0.25, "test_ratio": 0.25},
    {"seed": 2**40 + 5, "train_ratio": 0.34, "val_ratio": 0.66, "test_ratio": 0},
    {"seed": -12, "train_ratio": 0.8, "val_ratio": 0.1, "test_ratio": 0.1},
    {"seed": None, "train_ratio": 0.6, "val_ratio": 0.2, "test_ratio": 0.2},
    {"mode": "kfold", "n_folds": 3, "n_repeats": 2, "repeat_seeds": [0, 99],
     "val_fraction": 0.25},
    {"mode": "kfold", "n_folds": 8, "n_repeats": 1, "repeat_seeds": [5], "val_fraction": 0.5},
])
def test_tricky_trees_match_the_reference(tmp_path, split_section):
    config = {
        "experiment": "data_preparation",
        "classes": tricky_tree(tmp_path),
        "split": {**split_section, "save_dir": "out",
                  "split_file": "s_{index}.json" if "mode" in split_section else "s.json"},
    }
    (tmp_path / "prep.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    split(tmp_path, "prep.yaml")
    assert check(tmp_path, "prep.yaml") == 0
    first = json.loads(next((tmp_path / "out").iterdir()).read_text())
    assert first["metadata"]["class_samples"]["a"]["total"] == 12


def test_created_at_is_the_only_difference(example):
    name = "configs/examples/data_preparation.yaml"
    split(example, name, "--created-at")
    assert check(example, name) == 0
    written = json.loads((example / "outputs/splits/train_val_test_split.json").read_text())
    assert list(written["metadata"])[0] == "created_at"
