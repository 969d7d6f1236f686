"""Stage 4b: combining the enhanced luminances with a weight map, plus colour handling.

* ``blend`` — per-pixel convex combination (the paper's fusion, before Retinex).
* ``two_scale_fuse`` — the product: base layers mixed by the weight map, detail layers by the
  stronger local detail, so edges of both sources survive without seams.
* ``single_scale_retinex`` — the paper's final contrast step (log10 domain, sigma 300).
* ``to_luminance`` / ``merge_luminance`` — colour: fuse Y of YCrCb, keep the visible chroma.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["blend", "two_scale_fuse", "single_scale_retinex", "to_luminance", "merge_luminance"]


def blend(visible: np.ndarray, infrared: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``weights·visible + (1 − weights)·infrared`` (float32)."""
    return infrared + weights * (visible - infrared)


def _box_base(image: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.boxFilter(image, -1, (size, size), borderType=cv2.BORDER_REFLECT)


def two_scale_fuse(
    visible: np.ndarray,
    infrared: np.ndarray,
    weights: np.ndarray,
    base_radius: int = 16,
    detail_gain: float = 1.0,
    detail_rule: str = "max",
) -> np.ndarray:
    """Base/detail fusion driven by the weight map.

    base = box mean (radius ``base_radius``), detail = image − base. The fused base is
    ``blend(base_vis, base_ir, weights)``; the fused detail is the larger-magnitude detail of the two
    sources (``detail_rule="max"``) or the weight-map blend of both (``"weighted"``).

    Returns:
        float32 fused luminance, 0..255 clipped.
    """
    if detail_rule not in ("max", "weighted"):
        raise ValueError(f"detail_rule must be 'max' or 'weighted', got {detail_rule!r}")
    base_vis, base_ir = _box_base(visible, base_radius), _box_base(infrared, base_radius)
    detail_vis, detail_ir = visible - base_vis, infrared - base_ir
    if detail_rule == "max":
        detail = np.where(np.abs(detail_vis) >= np.abs(detail_ir), detail_vis, detail_ir)
    else:
        detail = blend(detail_vis, detail_ir, weights)
    fused = blend(base_vis, base_ir, weights) + np.float32(detail_gain) * detail
    return np.clip(fused, 0.0, 255.0, out=fused)


def single_scale_retinex(image: np.ndarray, sigma: float = 300.0, clip_fraction: float = 0.1) -> np.ndarray:
    """Single-Scale Retinex as in the paper's final step.

    ``R = log10(I + 1) − log10(G_sigma * I + 1)``; a 256-bin histogram of R is taken and values in
    bins holding fewer than ``clip_fraction`` × (count of the bin containing 0) are clipped away
    from both ends; R is then rescaled to 0..255. The Gaussian of large sigma is evaluated on a
    downsampled image (it is smooth at that scale), which keeps the cost independent of sigma.

    Returns:
        float32 0..255.
    """
    image = image.astype(np.float32, copy=False)
    height, width = image.shape
    factor = max(1, int(sigma // 8))
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    surround = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, borderType=cv2.BORDER_REPLICATE)
    surround = cv2.resize(surround, (width, height), interpolation=cv2.INTER_LINEAR)
    retinex = np.log10(image + 1.0) - np.log10(surround + 1.0)
    counts, edges = np.histogram(retinex, bins=256)
    zero_bin = int(np.clip(np.searchsorted(edges, 0.0, side="right") - 1, 0, 255))
    keep = np.flatnonzero(counts >= clip_fraction * max(int(counts[zero_bin]), 1))
    low, high = (edges[keep[0]], edges[keep[-1] + 1]) if keep.size else (edges[0], edges[-1])
    if high - low < 1e-12:
        return np.zeros_like(image)
    scaled = ((np.clip(retinex, low, high) - low) * (255.0 / (high - low))).astype(np.float32)
    return np.clip(scaled, 0.0, 255.0, out=scaled)


def to_luminance(image: np.ndarray) -> np.ndarray:
    """float32 luminance 0..255 of a gray (H×W) or BGR (H×W×3) uint8 image (Y of YCrCb)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    return cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)[:, :, 0].astype(np.float32)


def merge_luminance(visible_bgr: np.ndarray, luminance: np.ndarray) -> np.ndarray:
    """Replace the Y channel of a BGR image by ``luminance`` and return BGR uint8."""
    ycrcb = cv2.cvtColor(visible_bgr, cv2.COLOR_BGR2YCrCb)
    ycrcb[:, :, 0] = np.clip(luminance + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)

