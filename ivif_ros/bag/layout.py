"""Paired image folders for ``ivif-bag make``: :func:`ivif_ros.data.find_pairs` with bag errors."""

from __future__ import annotations

from pathlib import Path

from ivif_ros.core.errors import FusionInputError
from ivif_ros.data import ImagePair, find_pairs

from .errors import BagError

__all__ = ["ImagePair", "find_image_pairs"]


def find_image_pairs(
    root: Path | str | None = None,
    *,
    ir_dir: Path | str | None = None,
    vis_dir: Path | str | None = None,
) -> tuple[list[ImagePair], list[str]]:
    """List the registered pairs of a dataset folder (layout detected) or of two folders.

    Returns:
        (pairs in natural frame order, problems: files without a partner).

    Raises:
        BagError: No folders given, a folder is missing, no layout is found, or no pair matches.
    """
    if ir_dir is not None and vis_dir is not None:
        for folder in (Path(ir_dir), Path(vis_dir)):
            if not folder.is_dir():
                raise BagError(f"image folder not found: {folder}")
    try:
        pairs, problems = find_pairs(root, ir=ir_dir, vis=vis_dir)
    except FusionInputError as error:
        raise BagError(str(error)) from None
    if not pairs:
        where = f"{ir_dir} and {vis_dir}" if ir_dir is not None else str(root)
        raise BagError(f"no matching image names in {where} ({len(problems)} unpaired images)")
    return pairs, problems
