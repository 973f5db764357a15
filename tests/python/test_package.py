"""The Python package (python/) against the CLI and against independent computations.

Every function must give what the `balance-split` command gives for the same input (the
same manifest bytes, the same epoch order for every rank), and the loader what Pillow and
torchvision's arithmetic give for the same files. torch is required: a missing torch fails.

BALANCE_SPLIT_BIN names the binary (scripts/test sets it to the one it just built).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import balance_split as bs
from balance_split.torch import TensorLoader, weighted_loss

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ["weighted_sampler", "downsampling", "upsampling", "class_weights_with_upsampling"]


def binary():
    path = os.environ.get("BALANCE_SPLIT_BIN")
    if not path or not Path(path).is_file():
        pytest.fail(f"BALANCE_SPLIT_BIN={path!r} is not the built binary: run scripts/test")
    return path


def cli(cwd, *args, code=0):
    done = subprocess.run([binary(), *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == code, done.stderr
    return done


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copytree(REPO / "splits", tmp_path / "splits")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def manifest_for(project, config, seed=42):
    out = project / f"{config}.json"
    cli(project, "balance", "--config", f"configs/examples/{config}.yaml", "--seed", str(seed), "--out", str(out))
    return bs.Manifest.open(out)


# --- balance and Manifest ----------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
def test_balance_writes_the_clis_bytes(project, config):
    cli(project, "balance", "--config", f"configs/examples/{config}.yaml", "--seed", "7", "--out", "cli.json")
    m = bs.balance(f"configs/examples/{config}.yaml", seed=7, out="py.json")
    assert (project / "py.json").read_bytes() == (project / "cli.json").read_bytes()
    assert isinstance(m, bs.Manifest) and m.seed == 7


def test_balance_takes_the_split_argument_and_defaults_the_output(project):
    m = bs.balance("configs/examples/upsampling.yaml", split="splits/example/train_val_split.json", seed=3)
    assert Path(m.path) == Path("splits/example/train_val_split.balanced.json")
    assert (project / m.path).is_file()


@pytest.mark.parametrize("config", CONFIGS)
def test_manifest_fields_are_the_files(project, config):
    m = manifest_for(project, config)
    raw = json.loads(Path(m.path).read_text())
    b = raw["balancing"]
    assert m.strategy == b["strategy"]
    assert m.seed == 42
    by_label = sorted(raw["metadata"]["classes"].items(), key=lambda kv: kv[1])
    assert m.classes == [name for name, _ in by_label]
    assert m.train_labels.dtype == np.int64
    assert m.train_labels.tolist() == [e["label"] for e in raw["train"]]
    assert not m.train_labels.flags.writeable
    assert m.train_paths == [e["path"] for e in raw["train"]]
    assert m.paths("val") == [e["path"] for e in raw["val"]]
    assert m.labels("val").tolist() == [e["label"] for e in raw["val"]]
    assert len(m) == len(raw["train"])
    if b.get("loss"):
        assert m.loss_weights.dtype == np.float64
        assert m.loss_weights.tolist() == b["loss"]["class_weights"]
    else:
        assert m.loss_weights is None
    if b.get("sampler"):
        assert m.sampler_weights.tolist() == b["sampler"]["class_weights"]
    else:
        assert m.sampler_weights is None


# --- EpochSampler ------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
def test_the_sampler_is_the_clis_sample(project, config):
    m = manifest_for(project, config)
    for epoch in (0, 1, 5):
        for rank, world in ((0, 1), (0, 2), (1, 2), (2, 3)):
            printed = cli(project, "sample", m.path, "--epoch", str(epoch), "--rank", str(rank),
                          "--world-size", str(world)).stdout
            expected = [int(x) for x in printed.split()]
            s = bs.EpochSampler(m, rank=rank, world_size=world)
            s.set_epoch(epoch)
            assert list(s) == expected, (epoch, rank, world)
            assert len(s) == len(expected)
            assert s.indices().tolist() == expected
    unshuffled = bs.EpochSampler(m, shuffle=False)
    unshuffled.set_epoch(2)
    printed = cli(project, "sample", m.path, "--epoch", "2", "--no-shuffle").stdout
    assert list(unshuffled) == [int(x) for x in printed.split()]


def test_the_sampler_is_a_torch_sampler_for_a_dataloader(project):
    m = manifest_for(project, "weighted_sampler")
    s = bs.EpochSampler(m)
    s.set_epoch(4)
    dataset = torch.utils.data.TensorDataset(torch.arange(len(m)))
    seen = torch.cat([b[0] for b in torch.utils.data.DataLoader(dataset, batch_size=7, sampler=s)]).tolist()
    assert seen == list(s)


# --- Loader ------------------------------------------------------------------------------

def pillow_batch(root, paths, size):
    """torchvision's Resize((s, s)) (Pillow bilinear), ToTensor, Normalize(0.5, 0.5) in f32."""
    out = []
    for p in paths:
        img = Image.open(root / p).convert("RGB").resize((size, size), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
        out.append((x - np.float32(0.5)) / np.float32(0.5))
    return np.stack(out)


def epoch_images(loader, epoch):
    loader.set_epoch(epoch)
    batches = list(loader)
    assert len(batches) == len(loader)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def test_unaugmented_batches_are_pillows_pixels_bit_for_bit(project):
    m = manifest_for(project, "upsampling")
    loader = bs.Loader(m, "val", image_size=40, batch_size=16)
    images, labels = epoch_images(loader, 0)
    assert images.dtype == np.float32 and images.shape == (50, 3, 40, 40)
    assert [b[0].shape[0] for b in loader] == [16, 16, 16, 2]
    assert labels.tolist() == m.labels("val").tolist()
    assert np.array_equal(images, pillow_batch(project, m.paths("val"), 40))


def test_resized_batches_are_within_one_level_of_pillows_pixels(project):
    """Downscaled (40 to 24), about 6% of values are one level off Pillow 13's bilinear
    resize (measured: fast_image_resize's rounding is not Pillow's), none more."""
    m = manifest_for(project, "upsampling")
    images, _ = epoch_images(bs.Loader(m, "val", image_size=24, batch_size=16), 0)
    levels = np.abs(images - pillow_batch(project, m.paths("val"), 24)) * 127.5
    assert levels.max() < 1.001
    assert (levels > 0.5).mean() < 0.1


def test_train_batches_follow_the_sampler(project):
    m = manifest_for(project, "weighted_sampler")
    loader = bs.Loader(m, image_size=40, batch_size=32, drop_last=True)
    s = bs.EpochSampler(m)
    s.set_epoch(3)
    order = list(s)
    images, labels = epoch_images(loader, 3)
    assert len(loader) == len(order) // 32
    assert labels.tolist() == [int(m.train_labels[i]) for i in order[: len(loader) * 32]]
    plain = pillow_batch(project, [m.train_paths[i] for i in order[:8]], 40)
    assert np.array_equal(images[:8], plain)


def test_flips_are_the_mirror_image_and_epochs_differ(project):
    m = manifest_for(project, "upsampling")
    flip = bs.Loader(m, image_size=16, batch_size=64, augmentation=dict(horizontal_flip=True))
    plain = bs.Loader(m, image_size=16, batch_size=64)
    a, _ = epoch_images(flip, 1)
    p, _ = epoch_images(plain, 1)
    same = [np.array_equal(x, y) for x, y in zip(a, p)]
    mirrored = [np.array_equal(x, y[:, :, ::-1]) for x, y in zip(a, p)]
    assert all(s or f for s, f in zip(same, mirrored))
    assert 0.3 < sum(mirrored) / len(a) < 0.7
    again, _ = epoch_images(flip, 1)
    assert np.array_equal(a, again)
    other, _ = epoch_images(flip, 2)
    assert not np.array_equal(a, other)


AUGMENT = dict(horizontal_flip=True, rotation_degrees=15, color_jitter=dict(enabled=True, strength=0.2))


def test_ranks_together_load_what_one_process_loads(project):
    m = manifest_for(project, "upsampling")
    kw = dict(image_size=16, batch_size=10, augmentation=AUGMENT)
    whole, _ = epoch_images(bs.Loader(m, **kw), 2)
    for rank in range(3):
        mine, _ = epoch_images(bs.Loader(m, rank=rank, world_size=3, **kw), 2)
        padded = np.concatenate([whole, whole])[: -(-len(whole) // 3) * 3]
        assert np.array_equal(mine, padded[rank::3]), rank


def test_the_cache_gives_the_same_batches(project):
    m = manifest_for(project, "upsampling")
    cli(project, "cache", m.path, "--image-size", "16", "--out", "cache.bin")
    for split, aug in (("train", AUGMENT), ("val", None)):
        kw = dict(split=split, image_size=16, batch_size=32, augmentation=aug)
        a, la = epoch_images(bs.Loader(m, **kw), 1)
        b, lb = epoch_images(bs.Loader(m, cache="cache.bin", **kw), 1)
        assert np.array_equal(a, b) and np.array_equal(la, lb)


def test_from_config_reads_the_pipeline_settings(project):
    m = manifest_for(project, "upsampling")
    loader = bs.Loader.from_config(m, "configs/diffusion.yaml")
    assert (loader.batch_size, len(loader)) == (8, -(-len(m) // 8))
    images, _ = next(iter(loader))
    assert images.shape == (8, 3, 40, 40)


def test_tensor_loader_shares_the_buffers(project):
    m = manifest_for(project, "upsampling")
    loader = bs.Loader(m, "val", image_size=40, batch_size=50)
    (x, y), = list(TensorLoader(loader))
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (50, 3, 40, 40)
    assert np.array_equal(x.numpy(), pillow_batch(project, m.paths("val"), 40))


# --- Errors ------------------------------------------------------------------------------

def cli_message(project, *args):
    done = cli(project, *args, code=2)
    line = done.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    return line[len("error: "):]


def test_errors_carry_the_clis_message(project):
    (project / "bad.yaml").write_text("data:\n  balancing:\n    downsampling: {enabled: yes, target_ratio: -1}\n")
    with pytest.raises(bs.BadInput) as e:
        bs.balance("bad.yaml")
    assert str(e.value) == cli_message(project, "balance", "--config", "bad.yaml")

    with pytest.raises(bs.BadInput) as e:
        bs.Manifest.open("splits/example/train_val_split.json")
    assert str(e.value) == cli_message(project, "sample", "splits/example/train_val_split.json", "--epoch", "0")

    m = manifest_for(project, "upsampling")
    with pytest.raises(bs.BadInput) as e:
        bs.EpochSampler(m, rank=2, world_size=2)
    assert str(e.value) == cli_message(project, "sample", m.path, "--epoch", "0", "--rank", "2", "--world-size", "2")

    with pytest.raises(bs.BadInput, match=r'^split must be "train", "val" or "test", found "tset"$'):
        bs.Loader(m, "tset")
    with pytest.raises(bs.BadInput, match=r"has no test list$"):
        bs.Loader(m, "test")
    with pytest.raises(bs.BadInput, match=r"^Loader: augmentation.rotation_degrees: expected a number in \[0, 180\], found 200$"):
        bs.Loader(m, augmentation=dict(rotation_degrees=200))
    with pytest.raises(bs.BadInput, match=r'unknown key "vertical_flip"'):
        bs.Loader(m, augmentation=dict(vertical_flip=True))
    with pytest.raises(bs.BadInput, match=r"^Loader: in_channels: expected 1 or 3, found 2$"):
        bs.Loader(m, in_channels=2)
    with pytest.raises(bs.BadInput, match=r"augmentation applies to train only"):
        bs.Loader(m, "val", augmentation=dict(horizontal_flip=True))
    assert issubclass(bs.BadInput, bs.Error) and issubclass(bs.Error, Exception)


def test_an_unreadable_image_names_the_entry(project):
    m = manifest_for(project, "upsampling")
    victim = Path(m.paths("val")[3])
    victim.write_bytes(b"not a png")
    with pytest.raises(bs.BadInput, match=rf"entry 3 \(.*{victim.name}\)"):
        list(bs.Loader(m, "val", batch_size=8))


# --- The installed command ----------------------------------------------------------------

def test_the_installed_command_is_the_cli(project):
    m = manifest_for(project, "weighted_sampler")
    command = Path(sys.executable).parent / "balance-split"
    assert command.is_file(), "pip install did not install the balance-split command"
    ours = subprocess.run([str(command), "sample", m.path, "--epoch", "2"], capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == cli(project, "sample", m.path, "--epoch", "2").stdout
    bad = subprocess.run([str(command), "sample", "nope.json", "--epoch", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: nope.json")


# --- Training with torch ------------------------------------------------------------------

def test_weighted_loss_is_the_trainers_formula():
    pred = torch.zeros(2, 1, 2, 2)
    target = torch.stack([torch.ones(1, 2, 2), torch.full((1, 2, 2), 2.0)])
    labels = torch.tensor([0, 1])
    assert weighted_loss(pred, target, labels, [1.0, 3.0]).item() == 6.5  # mean(1*1, 3*4)
    assert weighted_loss(pred, target, labels, None).item() == 2.5
    assert torch.equal(weighted_loss(pred, target, labels, None), torch.nn.MSELoss()(pred, target))


class PathDataset(torch.utils.data.Dataset):
    """The user's dataset shape: (image tensor, label) by train position, via Pillow."""

    def __init__(self, m, size):
        self.paths, self.labels, self.size = m.train_paths, m.train_labels, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        x = pillow_batch(Path("."), [self.paths[i]], self.size)[0]
        return torch.from_numpy(x), int(self.labels[i])


def train_one_epoch(batches, weights):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 3, padding=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for x, y in batches:
        noise = torch.randn_like(x)
        loss = weighted_loss(model(x + noise), noise, y, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and len(losses) > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return len(losses)


def test_a_training_epoch_through_dataloader_and_through_loader(project):
    m = manifest_for(project, "class_weights_with_upsampling")
    assert m.loss_weights is not None
    sampler = bs.EpochSampler(m)
    sampler.set_epoch(0)
    dl = torch.utils.data.DataLoader(PathDataset(m, 16), batch_size=32, sampler=sampler)
    steps = train_one_epoch(dl, m.loss_weights)
    loader = TensorLoader(bs.Loader(m, image_size=16, batch_size=32, augmentation=AUGMENT))
    assert train_one_epoch(loader, m.loss_weights) == steps == -(-len(sampler) // 32)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank, world, port, manifest_path, out_dir):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    m = bs.Manifest.open(manifest_path)
    sampler = bs.EpochSampler(m)  # rank and world size from the process group
    sampler.set_epoch(1)
    torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
    model = DistributedDataParallel(torch.nn.Linear(3 * 8 * 8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = bs.Loader(m, image_size=8, batch_size=16)
    loader.set_epoch(1)
    x, y = next(iter(loader))
    out = model(torch.from_numpy(x).flatten(1))
    loss = weighted_loss(out, torch.zeros_like(out), torch.from_numpy(y), m.loss_weights)
    opt.zero_grad()
    loss.backward()
    opt.step()
    weights = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
        {"rank": sampler.rank, "world": sampler.world_size, "indices": list(sampler), "weights": weights}))
    dist.barrier()  # as examples/python/ddp_train.py: torch's gloo may abort at exit without it
    dist.destroy_process_group()


def test_ddp_ranks_share_the_padded_epoch_and_sync_gradients(project):
    m = manifest_for(project, "class_weights_with_upsampling")
    torch.multiprocessing.spawn(ddp_worker, args=(2, free_port(), m.path, str(project)), nprocs=2, join=True)
    r = [json.loads((project / f"rank{k}.json").read_text()) for k in range(2)]
    assert [(x["rank"], x["world"]) for x in r] == [(0, 2), (1, 2)]
    whole = [int(v) for v in cli(project, "sample", m.path, "--epoch", "1").stdout.split()]
    padded = (whole + whole)[: -(-len(whole) // 2) * 2]
    assert r[0]["indices"] == padded[0::2] and r[1]["indices"] == padded[1::2]
    assert len(r[0]["indices"]) == len(r[1]["indices"])
    assert r[0]["weights"] == r[1]["weights"]


# --- Reference counts ---------------------------------------------------------------------

def rss_bytes():
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_no_leak_across_a_thousand_loader_epochs(project):
    m = manifest_for(project, "upsampling")
    cli(project, "cache", m.path, "--image-size", "8", "--out", "cache.bin")
    loader = bs.Loader(m, "val", image_size=8, batch_size=16, cache="cache.bin")
    sampler = bs.EpochSampler(m)

    def epoch(k):
        loader.set_epoch(k)
        sampler.set_epoch(k)
        for images, labels in loader:
            torch.from_numpy(images).sum()
        list(sampler)

    for k in range(100):
        epoch(k)
    start = rss_bytes()
    for k in range(100, 1100):
        epoch(k)
    grown = rss_bytes() - start
    assert grown < 8 << 20, f"RSS grew by {grown} bytes over 1,000 epochs"
