"""The Python package under hostile use: a cache truncated while a loader reads it, bounds on
what a loader may allocate, Ctrl-C during work, and objects shared between threads. Each
promise is the CLI's: a one-line `balance_split.Error` (or `BadInput`), never a crash, a
`PanicException` or a hang.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import balance_split as bs
from test_package import REPO, cli


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copytree(REPO / "splits", tmp_path / "splits")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_cache_truncated_while_a_loader_reads_it_is_an_error_not_sigbus(project):
    cli(project, "balance", "--config", "configs/examples/upsampling.yaml", "--out", "m.json")
    cli(project, "cache", "m.json", "--out", "m.cache")
    m = bs.Manifest.open("m.json")
    loader = bs.Loader(m, "train", root=".", image_size=40, batch_size=16, cache="m.cache")
    with open("m.cache", "r+b") as f:
        f.truncate(6000)
    with pytest.raises(bs.BadInput, match=r"truncated: the cache m\.cache no longer holds this image"):
        for _ in loader:
            pass


def test_a_hand_edited_cache_header_is_refused(project):
    cli(project, "balance", "--config", "configs/examples/upsampling.yaml", "--out", "m.json")
    cli(project, "cache", "m.json", "--out", "m.cache")
    data = open("m.cache", "rb").read().replace(b'"channels":3', b'"channels":7')
    open("m.cache", "wb").write(data)
    m = bs.Manifest.open("m.json")
    with pytest.raises(bs.BadInput, match=r"header: channels is 7; a cache holds RGB images \(3\)"):
        bs.Loader(m, "train", root=".", image_size=40, cache="m.cache")


@pytest.mark.parametrize("prefetch", [65, 10**8, 2**62])
def test_prefetch_is_bounded(project, prefetch):
    cli(project, "balance", "--config", "configs/examples/upsampling.yaml", "--out", "m.json")
    m = bs.Manifest.open("m.json")
    with pytest.raises(bs.BadInput, match=f"Loader: prefetch: expected 0 to 64 batches decoded ahead, found {prefetch}"):
        bs.Loader(m, "train", root=".", prefetch=prefetch)


def test_ctrl_c_during_work_is_keyboard_interrupt(project):
    """SIGINT while an epoch of 2^27 weighted draws is being drawn (the GIL released):
    Python's KeyboardInterrupt, as for any Python code, never a PanicException."""
    cfg = open("configs/examples/weighted_sampler.yaml").read().replace(
        "num_samples: null", "num_samples: 134217728")
    open("big.yaml", "w").write(cfg)
    cli(project, "balance", "--config", "big.yaml", "--out", "big.json")
    script = (
        "import balance_split as bs, sys\n"
        "m = bs.Manifest.open('big.json')\n"
        "s = bs.EpochSampler(m)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    s.indices()\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt', flush=True); sys.exit(0)\n"
        "except BaseException as e:\n"
        "    print(type(e).__name__, e, flush=True); sys.exit(1)\n"
        "print('finished before the signal', flush=True); sys.exit(2)\n"
    )
    # The child gets Ctrl-C's default disposition whatever this process inherited: started
    # in the background of a non-interactive shell (`cmd &` in a script), SIGINT is ignored,
    # children inherit that, and Python then installs no KeyboardInterrupt handler at all.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                         cwd=project, preexec_fn=restore)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert out.strip() == "KeyboardInterrupt"


def test_a_sampler_and_a_loader_shared_between_threads_work(project):
    cli(project, "balance", "--config", "configs/examples/weighted_sampler.yaml", "--out", "m.json")
    m = bs.Manifest.open("m.json")
    sampler = bs.EpochSampler(m)
    loader = bs.Loader(m, "train", root=".", batch_size=50)
    errors = []

    def work(k):
        try:
            for e in range(20):
                sampler.set_epoch(k * 100 + e)
                assert len(list(sampler)) == len(sampler)
                loader.set_epoch(e)
            assert sum(len(labels) for _, labels in loader) == 200
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # And the result is still a pure function of the epoch.
    sampler.set_epoch(3)
    assert list(sampler) == json.loads(cli(project, "sample", "m.json", "--epoch", "3", "--format", "json").stdout)
