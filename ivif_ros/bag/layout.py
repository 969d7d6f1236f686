"""Find registered infrared/visible image pairs in the folder layouts of public datasets.

Supported layouts (detected automatically under a root folder):

- ivif_ros / shared data: ``ir/`` + ``vis/``
- LLVIP: ``infrared/`` + ``visible/`` (optionally with ``train/``, ``test/`` below them)
- RoadScene: ``cropinfrared/`` + ``crop_LR_visible/``
- VOT-RGBT sequence: ``ir/`` + ``color/``; frames ``00000001.jpg`` or ``00000001i.jpg`` /
  ``00000001v.jpg``

Files pair up by their path relative to the two folders, without the extension (and without the
VOT-RGBT ``i`` / ``v`` marker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BagError

__all__ = ["IMAGE_SUFFIXES", "LAYOUTS", "ImagePair", "detect_layout", "find_image_pairs"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"})

#: (layout name, infrared folder, visible folder), tried in this order.
LAYOUTS: tuple[tuple[str, str, str], ...] = (
    ("ivif", "ir", "vis"),
    ("llvip", "infrared", "visible"),
    ("roadscene", "cropinfrared", "crop_LR_visible"),
    ("vot-rgbt", "ir", "color"),
)

_MARKED_FRAME = re.compile(r"^(?P<frame>.*\d)(?P<marker>[iv])$")
_NUMBERS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class ImagePair:
    """One registered pair of frames.

    Attributes:
        name: Key the two files share (relative path without extension and VOT marker).
        ir: Path of the infrared image.
        vis: Path of the visible image.
    """

    name: str
    ir: Path
    vis: Path


def detect_layout(root: Path | str) -> tuple[str, Path, Path]:
    """Find the infrared and visible folders under a dataset root.

    Args:
        root: Folder that holds the two image folders.

    Returns:
        (layout name, infrared folder, visible folder).

    Raises:
        BagError: ``root`` is missing or holds no known layout; when its subfolders do (a
            VOT-RGBT dataset root, say), the message names a few of them.
    """
    root = Path(root)
    if not root.is_dir():
        raise BagError(f"image folder not found: {root}")
    for name, ir_name, vis_name in LAYOUTS:
        if (root / ir_name).is_dir() and (root / vis_name).is_dir():
            return name, root / ir_name, root / vis_name
    expected = ", ".join(f"{ir}/ + {vis}/" for _, ir, vis in LAYOUTS)
    sequences = sorted(
        child.name
        for child in root.iterdir()
        if child.is_dir() and any((child / ir).is_dir() and (child / vis).is_dir() for _, ir, vis in LAYOUTS)
    )
    if sequences:
        shown = ", ".join(sequences[:5]) + (", ..." if len(sequences) > 5 else "")
        raise BagError(
            f"{root} holds {len(sequences)} sequences ({shown}); pass one sequence folder"
        )
    raise BagError(f"no paired image folders in {root} (expected one of: {expected}); use --ir DIR --vis DIR")


def find_image_pairs(
    root: Path | str | None = None,
    *,
    ir_dir: Path | str | None = None,
    vis_dir: Path | str | None = None,
) -> tuple[list[ImagePair], list[str]]:
    """List the registered pairs of a dataset folder, in natural frame order.

    Args:
        root: Dataset (or VOT-RGBT sequence) folder; its layout is detected. Ignored when both
            ``ir_dir`` and ``vis_dir`` are given.
        ir_dir: Explicit infrared folder.
        vis_dir: Explicit visible folder.

    Returns:
        (pairs, problems): pairs sorted by name; problems lists files without a partner.

    Raises:
        BagError: No folders given, a folder is missing, or no pair matches.
    """
    if ir_dir is not None and vis_dir is not None:
        ir_root, vis_root = Path(ir_dir), Path(vis_dir)
        for folder in (ir_root, vis_root):
            if not folder.is_dir():
                raise BagError(f"image folder not found: {folder}")
    elif ir_dir is not None or vis_dir is not None:
        raise BagError("--ir and --vis must be given together")
    elif root is not None:
        _, ir_root, vis_root = detect_layout(root)
    else:
        raise BagError("give a dataset folder or both --ir DIR and --vis DIR")

    ir_files = _index(ir_root, "i")
    vis_files = _index(vis_root, "v")
    names = sorted(ir_files.keys() & vis_files.keys(), key=_natural_key)
    pairs = [ImagePair(name, ir_files[name], vis_files[name]) for name in names]
    problems = [f"no visible partner for {ir_files[n]}" for n in sorted(ir_files.keys() - vis_files.keys())]
    problems += [f"no infrared partner for {vis_files[n]}" for n in sorted(vis_files.keys() - ir_files.keys())]
    if not pairs:
        raise BagError(
            f"no matching image names in {ir_root} ({len(ir_files)} images) "
            f"and {vis_root} ({len(vis_files)} images)"
        )
    return pairs, problems


def _index(folder: Path, marker: str) -> dict[str, Path]:
    """Map pairing keys to the image files below ``folder`` (recursively)."""
    files: dict[str, Path] = {}
    for path in folder.rglob("*"):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(folder).with_suffix("")
        stem = rel.name
        match = _MARKED_FRAME.match(stem)
        if match and match.group("marker") == marker:
            stem = match.group("frame")
        files[(rel.parent / stem).as_posix()] = path
    return files


def _natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part for part in _NUMBERS.split(name)]
