"""balance-split against its independent Python reference (examples/python/rng_reference.py).

The reference re-derives, from the documented algorithms alone, which training samples a
manifest keeps or duplicates and the order of every epoch. Here the real binary balances
each example config and prints epochs; the reference must agree to the last index.

BALANCE_SPLIT_BIN names the binary (scripts/test sets it to the one it just built).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples" / "python"))

import rng_reference as ref  # noqa: E402


def binary():
    path = os.environ.get("BALANCE_SPLIT_BIN")
    if not path:
        pytest.fail("BALANCE_SPLIT_BIN is not set: run the tests through scripts/test")
    if not Path(path).is_file():
        pytest.fail(f"BALANCE_SPLIT_BIN={path} does not exist: build it first")
    return path


@pytest.fixture
def project(tmp_path):
    shutil.copytree(REPO / "splits", tmp_path / "splits")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    return tmp_path


def run(cwd, *args):
    done = subprocess.run([binary(), *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def balance(project, config, seed):
    out = project / "manifest.json"
    run(project, "balance", "--config", f"configs/examples/{config}.yaml",
        "--seed", str(seed), "--out", str(out))
    manifest = json.loads(out.read_text())
    source = json.loads((project / manifest["balancing"]["source"]["split_file"]).read_text())
    return out, manifest, source


def sample(project, manifest_path, epoch, rank=0, world_size=1):
    printed = run(project, "sample", str(manifest_path), "--epoch", str(epoch),
                  "--rank", str(rank), "--world-size", str(world_size))
    return [int(line) for line in printed.split()]


def labels_of(entries):
    return [e["label"] for e in entries]


@pytest.mark.parametrize("seed", [0, 42, 2**64 - 1])
@pytest.mark.parametrize("config,strategy", [
    ("downsampling", "downsampling"),
    ("upsampling", "upsampling"),
    ("class_weights_with_upsampling", "upsampling"),
])
def test_the_kept_and_duplicated_samples_are_the_references(project, config, strategy, seed):
    _, manifest, source = balance(project, config, seed)
    b = manifest["balancing"]
    assert b["strategy"] == strategy
    assert b["seed"] == seed
    labels = labels_of(source["train"])
    k = len(source["metadata"]["classes"])
    ratio = b["config"][strategy]["target_ratio"]
    pick = ref.downsample if strategy == "downsampling" else ref.upsample
    expected = pick(labels, k, ratio, seed)
    assert b["source_index"] == expected
    assert manifest["train"] == [source["train"][i] for i in expected]


@pytest.mark.parametrize("epoch", [0, 1, 7])
@pytest.mark.parametrize("config", ["downsampling", "upsampling"])
def test_shuffled_epochs_are_the_references(project, config, epoch):
    path, manifest, _ = balance(project, config, 3)
    labels = labels_of(manifest["train"])
    expected = ref.epoch_stream(labels, 2, 3, epoch)
    assert sorted(expected) == list(range(len(labels)))
    assert sample(project, path, epoch) == expected


@pytest.mark.parametrize("epoch", [0, 5])
def test_weighted_epochs_are_the_references(project, epoch):
    path, manifest, _ = balance(project, "weighted_sampler", 11)
    s = manifest["balancing"]["sampler"]
    labels = labels_of(manifest["train"])
    weighted = (s["class_weights"], s["replacement"], s["num_samples"])
    expected = ref.epoch_stream(labels, 2, 11, epoch, weighted)
    assert len(expected) == s["num_samples"] == 200
    assert sample(project, path, epoch) == expected


@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_ranks_take_strided_shares_of_the_padded_epoch(project, world_size):
    # DistributedSampler's rule: pad by wrap-around to a multiple of the world size,
    # then rank r takes positions r, r + W, r + 2W, ...
    path, manifest, _ = balance(project, "upsampling", 5)
    full = ref.epoch_stream(labels_of(manifest["train"]), 2, 5, 2)
    total = -(-len(full) // world_size) * world_size
    padded = (full * 2)[:total]
    for rank in range(world_size):
        assert sample(project, path, 2, rank, world_size) == padded[rank::world_size]
