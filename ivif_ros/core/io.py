"""Reading images and matching infrared/visible pairs on disk."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from .errors import FusionInputError

__all__ = ["IMAGE_SUFFIXES", "read_image", "find_pairs", "default_data_root"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


def default_data_root() -> Path | None:
    """``$IVIF_DATA``, else ``../shared/data`` beside the repository or the working folder, if present."""
    import os

    candidates = []
    if os.environ.get("IVIF_DATA"):
        candidates.append(Path(os.environ["IVIF_DATA"]))
    candidates += [Path(__file__).resolve().parents[3] / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def read_image(path: str | Path, role: str = "vis") -> np.ndarray:
    """Read an image file keeping its bit depth.

    Infrared: one channel (a 3-channel file with equal channels, as LLVIP stores it, is collapsed;
    other colour files are converted to gray). Visible: gray H×W or BGR H×W×3 (alpha dropped).

    Raises:
        FusionInputError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise FusionInputError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise FusionInputError(f"{path}: not a readable image")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim == 3 and role == "ir":
        if np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 0], image[:, :, 2]):
            image = image[:, :, 0]
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim == 3 and role == "vis":
        channels = image
        if np.array_equal(channels[:, :, 0], channels[:, :, 1]) and np.array_equal(channels[:, :, 0], channels[:, :, 2]):
            image = channels[:, :, 0]
    return np.ascontiguousarray(image)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    if pattern.count("{k}") != 1:
        raise FusionInputError(f"pattern {pattern!r} must contain {{k}} exactly once")
    before, after = pattern.split("{k}")
    return re.compile(re.escape(before) + r"(?P<k>.+?)" + re.escape(after) + r"$", re.IGNORECASE)


def _index(folder: Path, pattern: str | None) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if pattern is None:
        return {p.stem: p for p in files}
    regex = _pattern_regex(pattern)
    keyed = {}
    for p in files:
        match = regex.match(p.name) or regex.match(p.stem)
        if match:
            keyed[match.group("k")] = p
    return keyed


def find_pairs(
    ir: str | Path, vis: str | Path, ir_pattern: str | None = None, vis_pattern: str | None = None
) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Match infrared and visible files.

    Args:
        ir, vis: two files, or two folders whose files are matched by stem (or by ``{k}``
            patterns such as ``IR{k}.png`` / ``VIS{k}.png`` for TNO-style names).
        ir_pattern, vis_pattern: optional ``{k}`` patterns (file name or stem).

    Returns:
        (pairs as (name, ir_path, vis_path) sorted by name, problems: one line per unmatched file).

    Raises:
        FusionInputError: a path does not exist, or one is a file and the other a folder.
    """
    ir, vis = Path(ir), Path(vis)
    for path in (ir, vis):
        if not path.exists():
            raise FusionInputError(f"{path}: no such file or folder")
    if ir.is_file() and vis.is_file():
        return [(vis.stem, ir, vis)], []
    if not (ir.is_dir() and vis.is_dir()):
        raise FusionInputError(f"--ir and --vis must both be files or both be folders ({ir}, {vis})")
    ir_files, vis_files = _index(ir, ir_pattern), _index(vis, vis_pattern)
    names = sorted(set(ir_files) & set(vis_files))
    problems = [f"{ir_files[k]}: no visible partner" for k in sorted(set(ir_files) - set(vis_files))]
    problems += [f"{vis_files[k]}: no infrared partner" for k in sorted(set(vis_files) - set(ir_files))]
    pairs = [(vis_files[k].stem if ir_pattern or vis_pattern else k, ir_files[k], vis_files[k]) for k in names]
    return pairs, problems
