import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.models import sobel_features
from ivif_ros.training.dataset import (
    DatasetConfig,
    DatasetError,
    PatchDataset,
    block_features,
    list_images,
    main,
    make_dataset,
    manifest_hash,
    split_sources,
)


def synthetic_photos(folder: Path, n: int = 8, seed: int = 0, size: tuple[int, int] = (96, 128)) -> Path:
    """Write ``n`` textured grayscale/colour photos with sharp edges."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = cv2.resize(rng.uniform(40, 200, (6, 8)), size[::-1], interpolation=cv2.INTER_CUBIC)
        for _ in range(6):
            y, x = rng.integers(0, size[0] - 20), rng.integers(0, size[1] - 20)
            img[y:y + rng.integers(8, 40), x:x + rng.integers(8, 40)] = rng.uniform(0, 255)
        img = np.clip(img + rng.normal(0, 12, size), 0, 255).astype(np.uint8)
        if i % 2:
            img = np.dstack([img, img, img])
        cv2.imwrite(str(folder / f"photo_{i:02d}.png"), img)
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return synthetic_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def built(photos, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ds") / "blur"
    cfg = DatasetConfig(src=str(photos), out=str(out), train=600, test=200, test_fraction=0.25, seed=3, shard_size=128)
    return out, make_dataset(cfg, progress=False)


def _load_all(root: Path, split: str):
    ds = PatchDataset(root, split)
    return ds.get_batch(np.arange(len(ds))), ds


def test_counts_shapes_and_shards(built):
    out, manifest = built
    for split, n in (("train", 600), ("test", 200)):
        info = manifest["splits"][split]
        assert info["samples"] == n and info["shortfall"] == 0
        assert sum(s["count"] for s in info["shards"]) == n and all(s["count"] <= 128 for s in info["shards"])
        (x, y, src), ds = _load_all(out, split)
        assert len(ds) == n and x.shape == (n, 3, 64, 32) and x.dtype == np.uint8
        assert set(np.unique(y)) == {0, 1} and (y == 0).sum() == n // 2
        shard = np.load(out / f"{info['shards'][0]['stem']}_x.npy", mmap_mode="r")
        assert isinstance(shard, np.memmap)


def test_both_orders_of_every_block(built):
    (x, y, _), _ = _load_all(built[0], "train")
    top_sharp = {s.tobytes() for s in x[y == 0]}
    swapped = {np.concatenate([s[:, 32:], s[:, :32]], 1).tobytes() for s in x[y == 1]}
    assert top_sharp == swapped


def test_labels_point_at_the_sharp_block(built):
    (x, y, _), _ = _load_all(built[0], "test")
    energy = x[:, 1:].astype(np.float64)
    top, bottom = energy[:, :, :32].sum((1, 2, 3)), energy[:, :, 32:].sum((1, 2, 3))
    assert np.all((top > bottom) == (y == 0))


def test_blocks_come_from_their_source_image(built, photos):
    out, manifest = built
    (x, y, src), ds = _load_all(out, "train")
    names = ds.source_names()
    for i in range(0, len(y), 37):
        gray = cv2.imread(str(photos / names[src[i]]), cv2.IMREAD_GRAYSCALE)
        sharp = x[i, 0, :32] if y[i] == 0 else x[i, 0, 32:]
        windows = np.lib.stride_tricks.sliding_window_view(gray, (32, 32))
        assert np.any(np.all(windows == sharp, axis=(2, 3))), f"sample {i} not found in {names[src[i]]}"


def test_split_by_source_image_without_leakage(built):
    out, manifest = built
    train = {r["path"] for r in manifest["splits"]["train"]["sources"]}
    test = {r["path"] for r in manifest["splits"]["test"]["sources"]}
    assert train and test and not train & test and len(train | test) == manifest["source_count"] == 8
    for split, names in (("train", train), ("test", test)):
        (_, _, src), ds = _load_all(out, split)
        assert {ds.source_names()[i] for i in np.unique(src)} <= names


def test_split_sources_is_a_seeded_partition():
    tr, te = split_sources(50, 0.2, seed=1)
    assert len(te) == 10 and sorted(np.concatenate([tr, te])) == list(range(50))
    assert np.array_equal(te, split_sources(50, 0.2, seed=1)[1])
    assert not np.array_equal(te, split_sources(50, 0.2, seed=2)[1])
    with pytest.raises(DatasetError, match="at least 2"):
        split_sources(1, 0.2, 0)


def test_kernels_assigned_to_image_subsets(built):
    manifest = built[1]
    kernels = [r["kernel"] for r in manifest["splits"]["train"]["sources"]]
    assert kernels == [9, 11, 13, 15, 9, 11]
    assert all(r["sigma"] == 9.0 for r in manifest["splits"]["train"]["sources"])


def test_manifest_records_parameters_and_sources(built, photos):
    out, manifest = built
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest and len(manifest_hash(out)) == 64
    assert manifest["config"]["seed"] == 3 and manifest["config"]["kernels"] == [9, 11, 13, 15]
    assert len(manifest["source_hash"]) == 64
    (photos / "photo_00.png").touch()  # same bytes: same hash
    assert make_dataset(DatasetConfig(src=str(photos), out=str(out.parent / "again"), train=600, test=200,
                                      test_fraction=0.25, seed=3, shard_size=128),
                        progress=False)["source_hash"] == manifest["source_hash"]
    for split in ("train", "test"):  # same seed: same samples
        (xa, ya, _), _ = _load_all(out, split)
        (xb, yb, _), _ = _load_all(out.parent / "again", split)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


def test_dataset_features_match_the_network_input():
    img = np.random.default_rng(0).integers(0, 256, (40, 50), dtype=np.uint8)
    ours = block_features(img).astype(np.float32) / 255.0
    net = sobel_features(torch.from_numpy(img).float().div(255).view(1, 1, 40, 50))[0].numpy()
    np.testing.assert_allclose(net, ours, atol=1e-6)


def test_augmentations_apply_to_train_only(photos, tmp_path):
    cfg = DatasetConfig(src=str(photos), out=str(tmp_path / "aug"), train=80, test=40, test_fraction=0.25,
                        aug_sigma=(2.0, 4.0), aug_noise=3.0, aug_gamma=1.5, aug_invert=1.0)
    manifest = make_dataset(cfg, progress=False)
    train, test = manifest["splits"]["train"]["sources"], manifest["splits"]["test"]["sources"]
    assert all(r["inverted"] and 2 <= r["sigma"] <= 4 and "gamma" in r and "noise" in r for r in train)
    assert not any("inverted" in r or "noise" in r for r in test) and all(r["sigma"] == 9 for r in test)


def test_degradations_replace_the_blur_for_their_share_of_images(photos, tmp_path):
    cfg = DatasetConfig(src=str(photos), out=str(tmp_path / "deg"), train=80, test=40, test_fraction=0.25,
                        deg_noise=0.5, deg_contrast=0.5)
    manifest = make_dataset(cfg, progress=False)
    records = manifest["splits"]["train"]["sources"] + manifest["splits"]["test"]["sources"]
    kinds = {r["degraded"].split()[0] for r in records}
    assert kinds == {"noise", "contrast"}  # the two shares add up to 1: no image keeps the plain blur
    x, y, _ = PatchDataset(tmp_path / "deg", "train").get_batch(np.arange(4))
    worse = np.where(y[:, None, None, None] == 0, x[:, :, 32:], x[:, :, :32])  # label 0: sharp on top
    better = np.where(y[:, None, None, None] == 0, x[:, :, :32], x[:, :, 32:])
    assert not np.array_equal(worse, better)


def test_flat_images_give_a_recorded_shortfall(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"flat{i}.png"), np.full((64, 64), 128, np.uint8))
    manifest = make_dataset(DatasetConfig(src=str(tmp_path), out=str(tmp_path / "o"), train=8, test=4,
                                          test_fraction=0.34), progress=False)
    assert manifest["splits"]["train"]["samples"] == 0 and manifest["splits"]["train"]["shortfall"] == 8


def test_patch_dataset_limit_and_getitem(built):
    ds = PatchDataset(built[0], "train", limit=50, subset_seed=1)
    assert len(ds) == 50
    x, y, _ = ds.get_batch(np.array([3, 0, 3]))
    assert np.array_equal(x[0], x[2]) and np.array_equal(ds[0][0], x[1]) and ds[3][1] == y[0]


@pytest.mark.parametrize("kwargs, match", [
    ({"train": 7}, "even"), ({"test_fraction": 1.0}, "test_fraction"), ({"kernels": (8,)}, "odd"),
    ({"aug_gamma": 0.5}, "gamma"), ({"aug_sigma": (3.0, 1.0)}, "aug_sigma"),
    ({"deg_noise": 0.7, "deg_halo": 0.5}, "sum <= 1"), ({"deg_contrast": -0.1}, "deg_contrast"),
])
def test_bad_parameters(photos, tmp_path, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        make_dataset(DatasetConfig(src=str(photos), out=str(tmp_path / "x"), **kwargs), progress=False)


def test_missing_source_and_existing_output(built, tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        list_images(tmp_path / "none")
    with pytest.raises(DatasetError, match="already exists"):
        make_dataset(DatasetConfig(src=str(tmp_path), out=str(built[0])), progress=False)
    with pytest.raises(DatasetError, match="manifest"):
        PatchDataset(tmp_path, "train")


def test_cli(photos, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--src", str(photos), "--out", str(out), "--train", "40", "--test", "20", "--kernels", "9", "15",
                 "--aug-sigma", "3", "9", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["kernels"] == [9, 15] and manifest["config"]["aug_sigma"] == [3.0, 9.0]
    assert "train: 40 patches" in capsys.readouterr().out
    assert main(["--src", str(tmp_path / "nope"), "--out", str(tmp_path / "other"), "--quiet"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["--src", str(photos), "--out", str(tmp_path / "other"), "--train", "3", "--quiet"]) == 2  # usage
    assert "must be even" in capsys.readouterr().err
