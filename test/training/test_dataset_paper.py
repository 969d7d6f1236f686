"""ivif-make-dataset --recipe paper: create_training_dataset.m's kernels, grid blocks and JPEG samples."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ivif_ros.training.dataset import (
    DatasetConfig,
    DatasetError,
    PatchDataset,
    block_features,
    jpeg_roundtrip,
    main,
    make_dataset,
    matlab_gaussian_blur,
    paper_kernel,
)
from ivif_ros.training.metrics import to_gray_u8


def _photos(folder: Path, n: int = 8, size: tuple[int, int] = (70, 100)) -> Path:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        base = cv2.resize(rng.uniform(30, 220, (5, 7, 3)), size[::-1], interpolation=cv2.INTER_CUBIC)
        img = np.clip(base + rng.normal(0, 15, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"p{i}.png"), img)
    return folder


@pytest.fixture(scope="module")
def paper(tmp_path_factory) -> tuple[Path, Path, dict]:
    photos = _photos(tmp_path_factory.mktemp("photos"))
    out = tmp_path_factory.mktemp("ds") / "paper"
    cfg = DatasetConfig(src=str(photos), out=str(out), train=1000, test=1000, test_fraction=0.5, seed=1,
                        recipe="paper")
    return photos, out, make_dataset(cfg, progress=False)


def test_kernel_quarters_per_split():
    assert [paper_kernel("train", i, 8) for i in range(8)] == [15, 15, 11, 11, 13, 13, 15, 15]
    assert [paper_kernel("test", i, 8) for i in range(8)] == [9, 9, 11, 11, 13, 13, 15, 15]
    assert [paper_kernel("train", i, 3) for i in range(3)] == [15, 11, 13]


def test_every_grid_block_in_both_orders(paper):
    _, out, manifest = paper
    for split in ("train", "test"):
        info = manifest["splits"][split]
        # 70x100 -> 2 x 3 non-overlapping blocks per image, 4 images per split, two orders each
        assert info["blocks"] == 4 * 6 and info["samples"] == 48 and info["shortfall"] == 1000 - 48
        assert [r["kernel"] for r in info["sources"]] == [paper_kernel(split, i, 4) for i in range(4)]
        assert not info["augmented"]


def test_samples_are_the_jpeg_decoded_blocks(paper):
    photos, out, manifest = paper
    ds = PatchDataset(out, "train")
    x, y, src = ds.get_batch(np.arange(len(ds)))
    record = manifest["splits"]["train"]["sources"][0]
    gray = to_gray_u8(cv2.imread(str(photos / record["path"]), cv2.IMREAD_COLOR))
    sharp, blurred = block_features(gray), block_features(matlab_gaussian_blur(gray, 9.0, record["kernel"]))
    expected = []
    for r in range(2):
        for c in range(3):
            s = sharp[:, 32 * r:32 * r + 32, 32 * c:32 * c + 32]
            b = blurred[:, 32 * r:32 * r + 32, 32 * c:32 * c + 32]
            expected += [(0, np.concatenate([s, b], 1)), (1, np.concatenate([b, s], 1))]
    stored = [(int(label), sample) for label, sample, index in zip(y, x, src, strict=True) if index == 0]
    assert len(stored) == len(expected) == 12
    decoded = jpeg_roundtrip(np.stack([e[1] for e in expected]))
    for (label, raw), jpeg in zip(expected, decoded, strict=True):
        assert any(lab == label and np.array_equal(sample, jpeg) for lab, sample in stored)
        assert not np.array_equal(raw, jpeg)  # the JPEG round trip is lossy


def test_jpeg_roundtrip_encodes_channels_as_rgb_at_quality_75():
    rng = np.random.default_rng(0)
    sample = cv2.GaussianBlur(rng.uniform(0, 255, (64, 32, 3)), (0, 0), 1.5).astype(np.uint8).transpose(2, 0, 1)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(sample.transpose(1, 2, 0)[:, :, ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, 75])
    reference = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].transpose(2, 0, 1)
    got = jpeg_roundtrip(sample[None])[0]
    assert ok and np.array_equal(got, reference)
    assert not np.array_equal(got, jpeg_roundtrip(sample[None], quality=100)[0])
    assert np.abs(got.astype(int) - sample).mean() < 8


def test_matlab_blur_rounds_half_away_from_zero():
    img = np.zeros((9, 9), np.uint8)
    img[4, 4] = 255
    kernel = cv2.getGaussianKernel(5, 9.0)
    expected = np.floor(255 * (kernel @ kernel.T) + 0.5)
    np.testing.assert_array_equal(matlab_gaussian_blur(img, 9.0, 5)[2:7, 2:7], expected)


def test_paper_recipe_refuses_augmentation(tmp_path):
    with pytest.raises(DatasetError, match="no augmentation"):
        make_dataset(DatasetConfig(src=str(tmp_path), out=str(tmp_path / "o"), recipe="paper", aug_noise=2.0),
                     progress=False)
    with pytest.raises(DatasetError, match="recipe"):
        make_dataset(DatasetConfig(src=str(tmp_path), out=str(tmp_path / "o"), recipe="coco"), progress=False)


def test_cli_recipe_paper(tmp_path, capsys):
    photos = _photos(tmp_path / "photos", n=4)
    assert main(["--recipe", "paper", "--src", str(photos), "--out", str(tmp_path / "o"), "--train", "24",
                 "--test", "24", "--test-fraction", "0.5", "--quiet"]) == 0
    assert "train: 24 patches from 2 images" in capsys.readouterr().out
