"""Stage 1 of SEED-ALGORITHM.md: blur-simulation training data from natural photos.

Every source photo is converted to grayscale and blurred with a Gaussian of sigma 9 whose kernel
(9, 11, 13 or 15 px) depends on the image's subset. Intensity, Sobel Gx and Sobel Gy (replicate
border, clipped to 0..255, uint8) are computed for the sharp and the blurred image, and 32x32
blocks are cut at the same place from both. Each block gives two samples of shape (3, 64, 32):
sharp over blurred (label 0 = top block sharp) and blurred over sharp (label 1). The photos are
split into train and test BY SOURCE IMAGE, so no photo contributes to both.

Two recipes (``--recipe``):

* ``product`` (default): kernels cycle 9/11/13/15 over the images of each split, blocks whose sharp
  intensity is nearly flat are skipped, random overlapping positions top up the grid blocks, optional
  augmentations, lossless samples.
* ``paper``: ``create_training_dataset.m`` — MATLAB ``rgb2gray``; each split's images in four
  consecutive quarters blurred with kernels 15, 11, 13, 15 (train) or 9, 11, 13, 15 (test), sigma 9;
  every non-overlapping 32x32 grid block kept (flat ones too); each stacked sample goes through a
  JPEG encode/decode at quality 75 (MATLAB ``imwrite``'s default; channels intensity, Gx, Gy as
  R, G, B), so the stored arrays are what the authors' JPEG files decode to.

On disk (``ivif-make-dataset --out DIR``)::

    DIR/manifest.json             counts, parameters, seed, source-list hash, per-image records
    DIR/<split>_<k>_x.npy          uint8 (n, 3, 64, 32) samples   (np.load(..., mmap_mode="r"))
    DIR/<split>_<k>_y.npy          uint8 (n,) labels
    DIR/<split>_<k>_src.npy        int32 (n,) index into manifest["splits"][split]["sources"]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from ivif_ros import data
from ivif_ros.core.errors import FusionInputError

__all__ = [
    "DatasetConfig", "DatasetError", "PatchDataset", "block_features", "jpeg_roundtrip", "list_images", "make_dataset",
    "manifest_hash", "matlab_gaussian_blur", "paper_kernel", "split_sources", "main",
]

FORMAT = "ivif-blur-pairs/1"
RECIPES = ("product", "paper")
#: Kernel sizes of the four consecutive quarters of each split in ``create_training_dataset.m``.
PAPER_KERNELS = {"train": (15, 11, 13, 15), "test": (9, 11, 13, 15)}
#: JPEG quality MATLAB's ``imwrite`` uses when none is given.
MATLAB_JPEG_QUALITY = 75
BLOCK = 32


class DatasetError(RuntimeError):
    """Dataset creation or reading failed; the message names the file or value at fault."""


@dataclass
class DatasetConfig:
    """Parameters of one dataset; every field is an ``ivif-make-dataset`` flag.

    Sample counts are micro-patches (both stacking orders count), so they must be even.
    Augmentations apply to the train split only unless ``augment_test`` is set; all are off by
    default. ``recipe="paper"`` follows ``create_training_dataset.m`` instead (module docstring).
    """

    src: str = "../shared/data/natural"
    out: str = "data_cache/blur"
    train: int = 200_000
    test: int = 40_000
    test_fraction: float = 0.2
    seed: int = 0
    sigma: float = 9.0
    kernels: tuple[int, ...] = (9, 11, 13, 15)
    min_contrast: float = 2.0
    shard_size: int = 65_536
    aug_sigma: tuple[float, float] | None = None
    aug_noise: float = 0.0
    aug_gamma: float = 1.0
    aug_invert: float = 0.0
    augment_test: bool = False
    deg_noise: float = 0.0
    deg_contrast: float = 0.0
    deg_halo: float = 0.0
    recipe: str = "product"
    jpeg_quality: int = MATLAB_JPEG_QUALITY
    overwrite: bool = False

    def validate(self) -> None:
        """Raise :class:`DatasetError` naming the first bad field."""
        if self.recipe not in RECIPES:
            raise DatasetError(f"recipe={self.recipe!r}: use one of {', '.join(RECIPES)}")
        if self.recipe == "paper" and (self.aug_sigma is not None or self.aug_noise > 0 or self.aug_gamma > 1
                                       or self.aug_invert > 0):
            raise DatasetError("recipe=paper: the paper's dataset has no augmentation; drop the --aug-* flags")
        if not 0 <= self.jpeg_quality <= 100:
            raise DatasetError(f"jpeg_quality={self.jpeg_quality}: must lie in 0..100")
        for name in ("train", "test"):
            value = getattr(self, name)
            if value < 0 or value % 2:
                raise DatasetError(f"{name}={value}: sample counts must be even and >= 0 (both orders per block)")
        if not 0.0 < self.test_fraction < 1.0:
            raise DatasetError(f"test_fraction={self.test_fraction}: must lie in (0, 1)")
        if self.sigma <= 0 or any(k < 3 or k % 2 == 0 for k in self.kernels) or not self.kernels:
            raise DatasetError(f"sigma={self.sigma}, kernels={self.kernels}: need sigma > 0 and odd kernels >= 3")
        if self.aug_sigma is not None and not 0 < self.aug_sigma[0] <= self.aug_sigma[1]:
            raise DatasetError(f"aug_sigma={self.aug_sigma}: need 0 < min <= max")
        if self.aug_noise < 0 or self.aug_gamma < 1 or not 0 <= self.aug_invert <= 1:
            raise DatasetError(f"aug_noise={self.aug_noise}, aug_gamma={self.aug_gamma}, aug_invert={self.aug_invert}: "
                               "need noise >= 0, gamma >= 1, 0 <= invert <= 1")
        degradations = (self.deg_noise, self.deg_contrast, self.deg_halo)
        if min(degradations) < 0 or sum(degradations) > 1:
            raise DatasetError(f"deg_noise={self.deg_noise}, deg_contrast={self.deg_contrast}, "
                               f"deg_halo={self.deg_halo}: "
                               "need each >= 0 and a sum <= 1 (the rest of the images keep the blur)")
        if self.shard_size < 2 or self.min_contrast < 0:
            raise DatasetError(f"shard_size={self.shard_size}, min_contrast={self.min_contrast}: out of range")


def list_images(src: str | Path) -> list[Path]:
    """Image files under ``src`` (recursive), sorted by relative path.

    Raises:
        DatasetError: ``src`` is not a folder or holds no images.
    """
    root = Path(src)
    if not root.is_dir():
        raise DatasetError(f"{root}: source folder not found")
    paths = data.list_images(root)
    if not paths:
        raise DatasetError(f"{root}: no images ({', '.join(data.IMAGE_SUFFIXES)})")
    return paths


def _source_hash(root: Path, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.relative_to(root).as_posix()}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def split_sources(n_images: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split image indices into (train, test) by source image, reproducibly from ``seed``.

    Raises:
        DatasetError: fewer than two images.
    """
    if n_images < 2:
        raise DatasetError(f"need at least 2 source images to split by image, got {n_images}")
    order = np.random.default_rng(seed).permutation(n_images)
    n_test = min(n_images - 1, max(1, round(test_fraction * n_images)))
    return order[n_test:], order[:n_test]


def block_features(gray: np.ndarray) -> np.ndarray:
    """Intensity, Sobel Gx and Sobel Gy (replicate border, clipped to 0..255) as uint8.

    Shape:
        (H, W) uint8 -> (3, H, W) uint8.
    """
    f = gray.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return np.stack([gray, np.clip(gx, 0, 255).astype(np.uint8), np.clip(gy, 0, 255).astype(np.uint8)])


def _simulate(gray: np.ndarray, kernel: int, cfg: DatasetConfig, augment: bool,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Return (sharp, blurred) uint8 images and the per-image record of what was applied."""
    sigma, record = cfg.sigma, {"kernel": kernel}
    img = gray.astype(np.float32)
    if augment and cfg.aug_gamma > 1:
        gamma = float(np.exp(rng.uniform(-np.log(cfg.aug_gamma), np.log(cfg.aug_gamma))))
        img = 255.0 * (img / 255.0) ** gamma
        record["gamma"] = round(gamma, 4)
    if augment and rng.random() < cfg.aug_invert:
        img = 255.0 - img
        record["inverted"] = True
    if augment and cfg.aug_sigma is not None:
        sigma = float(rng.uniform(*cfg.aug_sigma))
    record["sigma"] = round(sigma, 4)
    sharp = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(sharp, (kernel, kernel), sigma, borderType=cv2.BORDER_REPLICATE)
    if augment and cfg.aug_noise > 0:  # independent noise on both: noise must not signal sharpness
        std = float(rng.uniform(0, cfg.aug_noise))
        sharp, blurred = (np.clip(np.rint(x + rng.normal(0, std, x.shape)), 0, 255).astype(np.uint8)
                          for x in (sharp, blurred))
        record["noise"] = round(std, 3)
    if cfg.deg_noise or cfg.deg_contrast or cfg.deg_halo:
        blurred = _degrade(sharp, blurred, cfg, rng, record)
    return sharp, blurred, record


def _degrade(sharp: np.ndarray, blurred: np.ndarray, cfg: DatasetConfig, rng: np.random.Generator,
             record: dict) -> np.ndarray:
    """The worse member of the pair for one image: the blur, or (with the configured
    probabilities) heavy sensor noise, a contrast collapse, or a glare halo over the sharp image —
    the ways a visible or thermal source loses information at night."""
    draw = rng.random()
    img = sharp.astype(np.float32)
    if draw < cfg.deg_noise:
        std = float(rng.uniform(8.0, 25.0))
        record["degraded"] = f"noise {std:.1f}"
        out = img + rng.normal(0.0, std, img.shape)
    elif draw < cfg.deg_noise + cfg.deg_contrast:
        gain = float(rng.uniform(0.15, 0.4))
        record["degraded"] = f"contrast x{gain:.2f}"
        out = img.mean() * float(rng.uniform(0.3, 1.0)) + gain * (img - img.mean()) + rng.normal(0.0, 2.0, img.shape)
    elif draw < cfg.deg_noise + cfg.deg_contrast + cfg.deg_halo:
        height, width = img.shape
        sigma = float(rng.uniform(0.3, 0.8)) * min(height, width)
        centre_y, centre_x = rng.uniform(0, height), rng.uniform(0, width)
        ys, xs = np.ogrid[:height, :width]
        glow = np.exp(-((ys - centre_y) ** 2 + (xs - centre_x) ** 2) / (2.0 * sigma * sigma))
        amplitude = float(rng.uniform(150.0, 300.0))
        record["degraded"] = f"halo {amplitude:.0f}"
        out = img + amplitude * glow
    else:
        return blurred
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _cut_blocks(sharp: np.ndarray, blurred: np.ndarray, quota: int, min_contrast: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``quota`` co-located blocks: non-overlapping grid blocks first, then random positions.

    Returns:
        (sharp_blocks, blurred_blocks), each uint8 (n, 3, 32, 32), n <= quota.
    """
    fs, fb = block_features(sharp), block_features(blurred)
    h, w = sharp.shape
    view = np.lib.stride_tricks.sliding_window_view(sharp, (BLOCK, BLOCK))  # (h-31, w-31, 32, 32)

    def keep(ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = view[ys, xs].reshape(len(ys), -1).std(axis=1) >= min_contrast if min_contrast > 0 else slice(None)
        return ys[ok], xs[ok]

    gy, gx = np.meshgrid(np.arange(0, h - BLOCK + 1, BLOCK), np.arange(0, w - BLOCK + 1, BLOCK), indexing="ij")
    order = rng.permutation(gy.size)
    ys, xs = keep(gy.ravel()[order], gx.ravel()[order])
    ys, xs = [ys[:quota]], [xs[:quota]]
    have, tries = len(ys[0]), 0
    while have < quota and tries < 20:
        n = 2 * (quota - have) + 16
        ry, rx = keep(rng.integers(0, h - BLOCK + 1, n), rng.integers(0, w - BLOCK + 1, n))
        ys.append(ry[: quota - have])
        xs.append(rx[: quota - have])
        have += len(ys[-1])
        tries += 1
    y, x = np.concatenate(ys), np.concatenate(xs)

    def cut(f: np.ndarray) -> np.ndarray:
        blocks = np.lib.stride_tricks.sliding_window_view(f, (BLOCK, BLOCK), axis=(1, 2))[:, y, x]
        return np.ascontiguousarray(blocks.transpose(1, 0, 2, 3))

    return cut(fs), cut(fb)


def paper_kernel(split: str, index: int, count: int) -> int:
    """Kernel size of image ``index`` of ``count`` in ``split`` under the paper recipe (four quarters)."""
    return PAPER_KERNELS[split][min(3, (4 * index) // count)]


def matlab_gaussian_blur(gray: np.ndarray, sigma: float, kernel: int) -> np.ndarray:
    """``imgaussfilt(gray, sigma, 'FilterSize', kernel)`` on uint8: replicate border, rounded back to uint8."""
    blurred = cv2.GaussianBlur(gray.astype(np.float32), (kernel, kernel), sigma, borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.floor(blurred + 0.5), 0, 255).astype(np.uint8)


def jpeg_roundtrip(samples: np.ndarray, quality: int = MATLAB_JPEG_QUALITY) -> np.ndarray:
    """Encode each (3, H, W) uint8 sample as an RGB JPEG (channel 0 = R) and decode it again.

    Shape:
        (N, 3, H, W) uint8 -> (N, 3, H, W) uint8.
    """
    out = np.empty_like(samples)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for i, sample in enumerate(samples):
        bgr = np.ascontiguousarray(sample[::-1].transpose(1, 2, 0))  # OpenCV wants B, G, R
        ok, buf = cv2.imencode(".jpg", bgr, params)
        if not ok:
            raise DatasetError("JPEG encoding failed")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR).transpose(2, 0, 1)[::-1]
    return out


def _grid_blocks(sharp: np.ndarray, blurred: np.ndarray, quota: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The non-overlapping grid blocks (raster order); a random subset of ``quota`` when there are more."""
    fs, fb = block_features(sharp), block_features(blurred)
    rows, cols = sharp.shape[0] // BLOCK, sharp.shape[1] // BLOCK
    keep = np.arange(rows * cols)
    if quota < len(keep):
        keep = np.sort(rng.choice(len(keep), size=max(quota, 0), replace=False))

    def cut(f: np.ndarray) -> np.ndarray:
        grid = f[:, : rows * BLOCK, : cols * BLOCK].reshape(3, rows, BLOCK, cols, BLOCK)
        return np.ascontiguousarray(grid.transpose(1, 3, 0, 2, 4).reshape(rows * cols, 3, BLOCK, BLOCK)[keep])

    return cut(fs), cut(fb)


class _ShardWriter:
    """Buffers samples and writes shuffled shards of ``shard_size`` samples."""

    def __init__(self, out: Path, split: str, shard_size: int, rng: np.random.Generator) -> None:
        self.out, self.split, self.shard_size, self.rng = out, split, shard_size, rng
        self.buf: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.buffered = 0
        self.shards: list[dict] = []

    def add(self, x: np.ndarray, y: np.ndarray, src: np.ndarray) -> None:
        self.buf.append((x, y, src))
        self.buffered += len(y)
        while self.buffered >= self.shard_size:
            self._flush(self.shard_size)

    def close(self) -> list[dict]:
        if self.buffered:
            self._flush(self.buffered)
        return self.shards

    def _flush(self, n: int) -> None:
        x, y, src = (np.concatenate(parts) for parts in zip(*self.buf, strict=True))
        rest = (x[n:], y[n:], src[n:])
        self.buf, self.buffered = ([rest] if len(rest[1]) else []), len(rest[1])
        perm = self.rng.permutation(n)
        stem = f"{self.split}_{len(self.shards):04d}"
        for suffix, arr in (("x", x[:n][perm]), ("y", y[:n][perm]), ("src", src[:n][perm])):
            np.save(self.out / f"{stem}_{suffix}.npy", arr)
        self.shards.append({"stem": stem, "count": int(n)})


def _read_gray(path: Path, matlab: bool) -> np.ndarray | None:
    """8-bit gray image, or ``None`` if unreadable; ``matlab`` uses ``rgb2gray``'s weights and rounding."""
    from .metrics import to_gray_u8

    try:
        return to_gray_u8(data.read_image(path, "vis")) if matlab else data.read_image(path, "gray")
    except FusionInputError:
        return None


def _make_split(name: str, paths: list[Path], samples: int, cfg: DatasetConfig, out: Path,
                rng: np.random.Generator, progress: bool) -> dict:
    from tqdm import tqdm

    augment = name == "train" or cfg.augment_test
    target_blocks = samples // 2
    writer = _ShardWriter(out, name, cfg.shard_size, rng)
    sources, produced = [], 0
    bar = tqdm(total=samples, desc=f"{name:5s}", unit="patch", disable=not progress, dynamic_ncols=True)
    paper = cfg.recipe == "paper"
    for i, path in enumerate(paths):
        gray = _read_gray(path, paper)
        record = {"name": path.name, "path": str(path)}
        due = (target_blocks * (i + 1)) // len(paths) - produced  # carries any earlier shortfall forward
        if gray is None or min(gray.shape) < BLOCK:
            record["skipped"] = "unreadable" if gray is None else f"smaller than {BLOCK}x{BLOCK}"
            sources.append(record)
            continue
        if paper:
            kernel = paper_kernel(name, i, len(paths))
            sharp, blurred = gray, matlab_gaussian_blur(gray, cfg.sigma, kernel)
            record.update(kernel=kernel, sigma=cfg.sigma)
            s, b = _grid_blocks(sharp, blurred, max(due, 0), rng)
        else:
            sharp, blurred, sim = _simulate(gray, cfg.kernels[i % len(cfg.kernels)], cfg, augment, rng)
            record.update(sim)
            s, b = _cut_blocks(sharp, blurred, max(due, 0), cfg.min_contrast, rng)
        n = len(s)
        if n:
            x = np.concatenate([np.concatenate([s, b], 2), np.concatenate([b, s], 2)])
            if paper:
                x = jpeg_roundtrip(x, cfg.jpeg_quality)
            y = np.repeat(np.array([0, 1], np.uint8), n)
            writer.add(x, y, np.full(2 * n, len(sources), np.int32))
        record["blocks"] = int(n)
        sources.append(record)
        produced += n
        bar.update(2 * n)
    bar.close()
    per_kernel: dict[str, int] = {}
    for rec in sources:
        if "kernel" in rec:
            per_kernel[str(rec["kernel"])] = per_kernel.get(str(rec["kernel"]), 0) + 2 * rec["blocks"]
    return {
        "samples": 2 * produced, "blocks": produced, "requested": samples, "shortfall": samples - 2 * produced,
        "images": len(paths), "augmented": augment and not paper, "per_kernel": per_kernel,
        "shards": writer.close(), "sources": sources,
    }


def make_dataset(cfg: DatasetConfig, progress: bool = True) -> dict:
    """Create a dataset under ``cfg.out`` and return its manifest.

    Raises:
        DatasetError: bad parameters, no images, or an existing dataset without ``overwrite``.
    """
    cfg.validate()
    out = Path(cfg.out)
    if (out / "manifest.json").exists() and not cfg.overwrite:
        raise DatasetError(f"{out}: a dataset already exists (pass --overwrite to replace it)")
    root = Path(cfg.src)
    paths = list_images(root)
    out.mkdir(parents=True, exist_ok=True)
    for stale in list(out.glob("*_x.npy")) + list(out.glob("*_y.npy")) + list(out.glob("*_src.npy")):
        stale.unlink()
    (out / "manifest.json").unlink(missing_ok=True)
    train_idx, test_idx = split_sources(len(paths), cfg.test_fraction, cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    splits = {
        name: _make_split(name, [paths[i] for i in idx], n, cfg, out, rng, progress)
        for name, idx, n in (("train", train_idx, cfg.train), ("test", test_idx, cfg.test))
    }
    for split in splits.values():
        for rec in split["sources"]:
            rec["path"] = Path(rec.pop("path")).relative_to(root).as_posix()
    manifest = {
        "format": FORMAT,
        "sample_shape": [3, 2 * BLOCK, BLOCK], "dtype": "uint8", "channels": ["intensity", "gx", "gy"],
        "labels": {"0": "top block sharp", "1": "bottom block sharp"},
        "config": _jsonable(asdict(cfg)),
        "source_dir": str(root.resolve()), "source_count": len(paths), "source_hash": _source_hash(root, paths),
        "splits": splits,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def manifest_hash(root: str | Path) -> str:
    """SHA-256 of a dataset's ``manifest.json`` (identifies the data a model was trained on)."""
    return hashlib.sha256((Path(root) / "manifest.json").read_bytes()).hexdigest()


class PatchDataset:
    """Memory-mapped view of one split, with fast batched gathers.

    Args:
        root: dataset folder (holds ``manifest.json``).
        split: ``"train"`` or ``"test"``.
        limit: use a fixed random subset of this many samples (seeded by ``subset_seed``).
        subset_seed: seed of that subset.

    Raises:
        DatasetError: missing/corrupt manifest or shards, or unknown split.
    """

    def __init__(self, root: str | Path, split: str, limit: int | None = None, subset_seed: int = 0) -> None:
        self.root = Path(root)
        try:
            self.manifest = json.loads((self.root / "manifest.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{self.root / 'manifest.json'}: cannot read dataset manifest ({exc})") from exc
        if self.manifest.get("format") != FORMAT:
            raise DatasetError(f"{self.root}: format {self.manifest.get('format')!r} is not {FORMAT!r}")
        if split not in self.manifest["splits"]:
            raise DatasetError(f"{self.root}: no split {split!r} (have {', '.join(self.manifest['splits'])})")
        self.split = split
        self.x, self.y, self.src = [], [], []
        for shard in self.manifest["splits"][split]["shards"]:
            try:
                x, y, s = (np.load(self.root / f"{shard['stem']}_{k}.npy", mmap_mode="r") for k in ("x", "y", "src"))
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{self.root / shard['stem']}_*.npy: cannot map shard ({exc})") from exc
            if x.shape != (shard["count"], 3, 2 * BLOCK, BLOCK) or len(y) != shard["count"] or len(s) != shard["count"]:
                raise DatasetError(f"{self.root / shard['stem']}_x.npy: shape {x.shape} does not match the manifest")
            self.x.append(x)
            self.y.append(y)
            self.src.append(s)
        counts = [len(y) for y in self.y]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        total = int(self.offsets[-1])
        self.index = (np.sort(np.random.default_rng(subset_seed).permutation(total)[:limit])
                      if limit is not None and limit < total else np.arange(total))

    def __len__(self) -> int:
        return len(self.index)

    def get_batch(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gather samples by position in ``range(len(self))``.

        Returns:
            ``(x, y, src)``: uint8 (B, 3, 64, 32), int64 (B,), int32 (B,) in the order given.
        """
        flat = self.index[np.asarray(positions, dtype=np.int64)]
        shard = np.searchsorted(self.offsets, flat, side="right") - 1
        x = np.empty((len(flat), 3, 2 * BLOCK, BLOCK), np.uint8)
        y = np.empty(len(flat), np.int64)
        src = np.empty(len(flat), np.int32)
        for k in np.unique(shard):
            sel = np.nonzero(shard == k)[0]
            local = flat[sel] - self.offsets[k]
            order = np.argsort(local)  # sorted reads are kinder to the page cache
            x[sel[order]] = self.x[k][local[order]]
            y[sel[order]] = self.y[k][local[order]]
            src[sel[order]] = self.src[k][local[order]]
        return x, y, src

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        x, y, _ = self.get_batch(np.array([i]))
        return x[0], int(y[0])

    def source_names(self) -> list[str]:
        """Relative paths of this split's source images (index = the ``src`` values)."""
        return [rec["path"] for rec in self.manifest["splits"][self.split]["sources"]]


def _parser() -> argparse.ArgumentParser:
    defaults = DatasetConfig()
    p = argparse.ArgumentParser(prog="ivif-make-dataset", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    helps = {
        "src": "folder of natural photos (searched recursively)",
        "out": "output dataset folder",
        "train": "train micro-patches (both orders count; paper: 1000000)",
        "test": "test micro-patches from held-out images (paper: 300000)",
        "test_fraction": "share of source images held out for the test split",
        "seed": "random seed (split, block positions, augmentations)",
        "sigma": "Gaussian blur sigma (paper: 9)",
        "kernels": "kernel sizes, assigned to image subsets in turn (paper: 9 11 13 15)",
        "min_contrast": "skip blocks whose sharp intensity std (grey levels) is below this; 0 = keep all",
        "shard_size": "samples per .npy shard",
        "aug_sigma": "train augmentation: per-image sigma drawn uniformly from [MIN, MAX]",
        "aug_noise": "train augmentation: Gaussian noise, std drawn per image from [0, this] grey levels",
        "aug_gamma": "train augmentation: gamma drawn log-uniformly from [1/G, G]; 1 = off",
        "aug_invert": "train augmentation: probability of contrast inversion (thermal polarity)",
        "augment_test": "apply the augmentations to the test split as well",
        "deg_noise": "share of images whose worse member is the sharp image plus heavy noise (std 8-25), "
                     "not the blur",
        "deg_contrast": "share of images whose worse member is the sharp image with its contrast collapsed to 15-40 %%",
        "deg_halo": "share of images whose worse member is the sharp image under a glare halo",
        "recipe": "product (default) or paper (create_training_dataset.m: kernels 15/11/13/15 train, "
                  "9/11/13/15 test by quarter, every grid block, JPEG samples; ignores --kernels/--min-contrast)",
        "jpeg_quality": "paper recipe: JPEG quality of the samples (MATLAB imwrite default: 75)",
        "overwrite": "replace an existing dataset in --out",
    }
    for f in fields(DatasetConfig):
        flag, value = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(value, bool):
            p.add_argument(flag, action="store_true", help=helps[f.name])
        elif f.name == "recipe":
            p.add_argument(flag, choices=RECIPES, default=value, help=helps[f.name])
        elif f.name == "kernels":
            p.add_argument(flag, type=int, nargs="+", default=list(value), help=helps[f.name])
        elif f.name == "aug_sigma":
            p.add_argument(flag, type=float, nargs=2, metavar=("MIN", "MAX"), default=None, help=helps[f.name])
        else:
            p.add_argument(flag, type=type(value), default=value, help=helps[f.name])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """``ivif-make-dataset``: create a sharded blur-pair dataset. Returns the exit status."""
    args = vars(_parser().parse_args(argv))
    quiet = args.pop("quiet")
    args["kernels"] = tuple(args["kernels"])
    args["aug_sigma"] = tuple(args["aug_sigma"]) if args["aug_sigma"] else None
    config = DatasetConfig(**args)
    try:
        config.validate()
    except DatasetError as exc:
        print(f"ivif-make-dataset: error: {exc}", file=sys.stderr)
        return 2
    try:
        manifest = make_dataset(config, progress=not quiet)
    except DatasetError as exc:
        print(f"ivif-make-dataset: error: {exc}", file=sys.stderr)
        return 1
    for name, split in manifest["splits"].items():
        note = f" (short by {split['shortfall']})" if split["shortfall"] else ""
        print(f"{name}: {split['samples']} patches from {split['images']} images{note}")
    print(f"wrote {Path(args['out']) / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
