"""Image files on disk: reading, gray collapse, pairing infrared/visible files, the data root.

Every tool that reads image files goes through this module: ``ivif-fuse``, ``ivif-bag make``,
``ivif-eval``, the ablation, ``ivif-demo``, ``ivif-bench`` and the dataset builder.

Pairing uses one table of dataset layouts (:data:`LAYOUTS`): an infrared and a visible folder
(names matched case-insensitively; files found recursively, so LLVIP's ``train/``/``test/``
splits work) and the file-name patterns tried inside them (:data:`NAME_PATTERNS`: equal stems,
VOT-RGBT ``i``/``v`` markers, TNO ``IR{k}``/``VIS{k}``). Pair names are the shared key: the
path relative to the two folders, without suffix and pattern text.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ivif_ros.core.errors import FusionInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "LAYOUTS",
    "NAME_PATTERNS",
    "ImagePair",
    "Layout",
    "data_root",
    "detect_layout",
    "find_pairs",
    "list_images",
    "natural_key",
    "read_image",
    "to_single_channel",
]

#: File suffixes treated as images (lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")

#: (infrared, visible) file-stem patterns; ``{k}`` is the key the two files share.
NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    ("{k}", "{k}"),  # equal stems
    ("{k}i", "{k}v"),  # VOT-RGBT / RGBT234 frame markers: 00000001i.jpg + 00000001v.jpg
    ("IR{k}", "VIS{k}"),  # TNO-style names: IR12.png + VIS12.png
)


@dataclass(frozen=True)
class Layout:
    """One dataset layout: where the infrared and visible files of a pair live.

    Attributes:
        name: Layout name (a dataset or family of datasets).
        ir_folder: Infrared folder below the root ("" = the root itself).
        vis_folder: Visible folder below the root ("" = the root itself).
        patterns: (infrared, visible) stem patterns to try; the one pairing most files wins.
    """

    name: str
    ir_folder: str
    vis_folder: str
    patterns: tuple[tuple[str, str], ...] = NAME_PATTERNS


#: Known layouts, tried in this order under a dataset root.
LAYOUTS: tuple[Layout, ...] = (
    Layout("ir-vis", "ir", "vis"),  # this project's data folders, TNO copies, M3FD (Ir/Vis)
    Layout("msrs", "ir", "vi"),  # MSRS (train/ and test/ hold ir/ + vi/)
    Layout("llvip", "infrared", "visible"),  # LLVIP (with train/ and test/ below), RGBT234
    Layout("roadscene", "cropinfrared", "crop_LR_visible"),  # RoadScene
    Layout("vot-rgbt", "ir", "color"),  # VOT-RGBT sequence
    Layout("vot-rgbt", "infrared", "color"),  # VOT-RGBT sequence, long folder name
    Layout("kaist", "lwir", "visible"),  # KAIST multispectral pedestrian (per set/video folder)
    Layout("thermal-rgb", "thermal", "rgb"),
    Layout("tno", "", "", (("IR{k}", "VIS{k}"),)),  # TNO-style names side by side in one folder
)


class ImagePair(NamedTuple):
    """One registered pair of image files (unpacks as ``name, ir, vis``)."""

    name: str
    ir: Path
    vis: Path


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def to_single_channel(image: np.ndarray, convert_colour: bool = True) -> np.ndarray:
    """Collapse a gray image stored with several channels to H×W.

    H×W×1 and H×W×3/H×W×4 images whose first three channels are equal (LLVIP stores its
    infrared frames so) become H×W (a view of channel 0). A real colour image (alpha dropped)
    is converted to gray (OpenCV BGR weights) when ``convert_colour``, else returned as H×W×3.

    Args:
        image: H×W, H×W×1, H×W×3 or H×W×4 array (BGR order).
        convert_colour: Convert colour images to gray instead of returning them.

    Raises:
        FusionInputError: Another shape.
    """
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise FusionInputError(f"image of shape {image.shape} is not H×W, H×W×1, H×W×3 or H×W×4")
    if image.shape[2] == 1:
        return image[:, :, 0]
    colour = image[:, :, :3]
    if np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(colour[:, :, 0], colour[:, :, 2]):
        return colour[:, :, 0]
    if not convert_colour:
        return colour
    return cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_BGR2GRAY)


def read_image(path: str | Path, role: str = "vis") -> np.ndarray:
    """Read an image file.

    Args:
        path: Image file.
        role: ``"ir"``: one channel, bit depth kept (gray-in-colour files collapsed, colour files
            converted to gray). ``"vis"``: H×W or BGR H×W×3, bit depth kept (alpha dropped,
            gray-in-colour collapsed). ``"gray"``: 8-bit H×W decoded as gray by OpenCV.

    Returns:
        A C-contiguous array.

    Raises:
        FusionInputError: Missing or unreadable file, or an unknown role.
    """
    if role not in ("ir", "vis", "gray"):
        raise FusionInputError(f"role must be 'ir', 'vis' or 'gray', got {role!r}")
    path = Path(path)
    if not path.is_file():
        raise FusionInputError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if role == "gray" else cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise FusionInputError(f"{path}: not a readable image")
    if image.ndim == 3:
        image = to_single_channel(image, convert_colour=role == "ir")
    return np.ascontiguousarray(image)


# ---------------------------------------------------------------------------------------------
# Finding files and pairs
# ---------------------------------------------------------------------------------------------
def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files (by :data:`IMAGE_SUFFIXES`) in ``folder``, sorted by path."""
    files = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``frame2`` before ``frame10`` (case-insensitive)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _stem_regex(pattern: str) -> re.Pattern[str]:
    if pattern.count("{k}") != 1:
        raise FusionInputError(f"pattern {pattern!r} must contain {{k}} exactly once")
    before, after = pattern.split("{k}")
    return re.compile(re.escape(before) + r"(?P<k>.+?)" + re.escape(after) + r"$", re.IGNORECASE)


def _index(files: Sequence[Path], folder: Path, pattern: str) -> tuple[dict[str, Path], list[str]]:
    """Map pair keys to files (``pattern`` on the stem or name; key = relative path), and name clashes."""
    regex = _stem_regex(pattern)
    keyed: dict[str, Path] = {}
    clashes: list[str] = []
    for path in files:
        match = regex.match(path.stem) or regex.match(path.name)
        if match is None:
            continue
        name = match.group("k") if pattern.startswith("{k}") else match.group("k").lstrip("_-")  # IR_12 -> 12
        key = (path.parent.relative_to(folder) / name).as_posix()
        if key in keyed:
            clashes.append(f"{path}: same pair name as {keyed[key].name}, ignored")
        else:
            keyed[key] = path
    return keyed, clashes


def _child(root: Path, name: str) -> Path | None:
    """The subfolder of ``root`` called ``name`` (case-insensitive; "" = ``root``)."""
    if not name:
        return root
    exact = root / name
    if exact.is_dir():
        return exact
    return next((p for p in root.iterdir() if p.is_dir() and p.name.lower() == name.lower()), None)


def detect_layout(root: str | Path) -> tuple[Layout, Path, Path]:
    """The first layout of :data:`LAYOUTS` present under ``root``.

    Returns:
        (layout, infrared folder, visible folder).

    Raises:
        FusionInputError: ``root`` is missing or holds no known layout; when its subfolders do
            (a VOT-RGBT dataset root, say), the message names a few of them.
    """
    root = Path(root)
    if not root.is_dir():
        raise FusionInputError(f"image folder not found: {root}")
    for layout in LAYOUTS:
        ir_dir, vis_dir = _child(root, layout.ir_folder), _child(root, layout.vis_folder)
        if ir_dir is None or vis_dir is None:
            continue
        if layout.ir_folder:
            return layout, ir_dir, vis_dir
        files = list_images(root, recursive=False)
        if _pair_up(files, files, root, root, layout.patterns)[0]:  # names side by side: needs a pair
            return layout, ir_dir, vis_dir
    folder_layouts = [layout for layout in LAYOUTS if layout.ir_folder]
    sequences = sorted(
        child.name
        for child in root.iterdir()
        if child.is_dir()
        and any(_child(child, layout.ir_folder) and _child(child, layout.vis_folder) for layout in folder_layouts)
    )
    if sequences:
        shown = ", ".join(sequences[:5]) + (", ..." if len(sequences) > 5 else "")
        raise FusionInputError(f"{root} holds {len(sequences)} sequences ({shown}); pass one sequence folder")
    expected = ", ".join(f"{layout.ir_folder}/ + {layout.vis_folder}/" for layout in folder_layouts)
    raise FusionInputError(
        f"no paired image folders in {root} (expected one of: {expected}, or IR{{k}}/VIS{{k}} files)"
    )


def _pair_up(
    ir_files: Sequence[Path],
    vis_files: Sequence[Path],
    ir_root: Path,
    vis_root: Path,
    patterns: Sequence[tuple[str, str]],
) -> tuple[list[ImagePair], list[str]]:
    """Pair files with the (infrared, visible) pattern that pairs the most (the first on a tie)."""
    best: tuple[list[ImagePair], list[str]] | None = None
    for ir_pattern, vis_pattern in patterns:
        (ir_keys, ir_clashes), (vis_keys, vis_clashes) = (
            _index(ir_files, ir_root, ir_pattern), _index(vis_files, vis_root, vis_pattern))
        if ir_root == vis_root:  # one folder: a file must not pair with itself
            ir_keys = {k: p for k, p in ir_keys.items() if p != vis_keys.get(k)}
        names = sorted(ir_keys.keys() & vis_keys.keys(), key=natural_key)
        pairs = [ImagePair(name, ir_keys[name], vis_keys[name]) for name in names]
        ir_only = sorted(ir_keys.keys() - vis_keys.keys(), key=natural_key)
        vis_only = sorted(vis_keys.keys() - ir_keys.keys(), key=natural_key)
        problems = [f"{ir_keys[k]}: no visible partner" for k in ir_only]
        problems += [f"{vis_keys[k]}: no infrared partner" for k in vis_only] + ir_clashes + vis_clashes
        if best is None or len(pairs) > len(best[0]):
            best = (pairs, problems)
    assert best is not None
    return best


def find_pairs(
    source: str | Path | None = None,
    *,
    ir: str | Path | None = None,
    vis: str | Path | None = None,
    ir_pattern: str | None = None,
    vis_pattern: str | None = None,
) -> tuple[list[ImagePair], list[str]]:
    """Match infrared and visible image files.

    Args:
        source: Dataset (or sequence) folder; its layout is detected (:func:`detect_layout`).
        ir, vis: Instead of ``source``: two files (one pair, named by the visible stem) or two
            folders, searched recursively.
        ir_pattern, vis_pattern: ``{k}`` patterns on the file name or stem (``IR{k}.png``) for
            ``ir``/``vis`` folders; default: each of :data:`NAME_PATTERNS`, the best wins.

    Returns:
        (pairs in natural name order, problems: one line per file without a partner).

    Raises:
        FusionInputError: A path is missing, ``ir`` and ``vis`` are not both files or both
            folders, only one of them is given, a pattern lacks ``{k}``, or no layout is found.
    """
    if ir is None and vis is None:
        if source is None:
            raise FusionInputError("give a dataset folder or both --ir and --vis")
        layout, ir_dir, vis_dir = detect_layout(source)
        recursive = bool(layout.ir_folder)
        ir_files, vis_files = list_images(ir_dir, recursive), list_images(vis_dir, recursive)
        return _pair_up(ir_files, vis_files, ir_dir, vis_dir, layout.patterns)
    if ir is None or vis is None:
        raise FusionInputError("--ir and --vis must be given together")
    ir, vis = Path(ir), Path(vis)
    for path in (ir, vis):
        if not path.exists():
            raise FusionInputError(f"{path}: no such file or folder")
    if ir.is_file() and vis.is_file():
        return [ImagePair(vis.stem, ir, vis)], []
    if not (ir.is_dir() and vis.is_dir()):
        raise FusionInputError(f"--ir and --vis must both be files or both be folders ({ir}, {vis})")
    patterns = ((ir_pattern or "{k}", vis_pattern or "{k}"),) if ir_pattern or vis_pattern else NAME_PATTERNS
    for pattern in patterns[0]:
        _stem_regex(pattern)  # a bad pattern fails before any file is read
    return _pair_up(list_images(ir), list_images(vis), ir, vis, patterns)


# ---------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------
def data_root(explicit: str | Path | None = None) -> Path | None:
    """The data folder: ``explicit``, else ``$IVIF_DATA``, else ``../shared/data`` if present.

    ``../shared/data`` is looked for beside the source tree and beside the working folder.

    Raises:
        FusionInputError: ``explicit`` or ``$IVIF_DATA`` is set but not a folder.
    """
    for given, label in ((explicit, "data folder"), (os.environ.get("IVIF_DATA") or None, "$IVIF_DATA")):
        if given is not None:
            if not Path(given).is_dir():
                raise FusionInputError(f"{label} {given} is not a folder")
            return Path(given)
    for base in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None
