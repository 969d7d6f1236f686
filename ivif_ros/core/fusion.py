"""Stage 4b: combining the enhanced luminances with a weight map, plus colour handling.

* ``blend`` — per-pixel convex combination (the paper's fusion, before Retinex).
* ``saliency_detail_fuse`` — the product: base layers by soft brightness selection, detail layers
  by the detector/detail-energy weight map, then ``percentile_stretch``.
* ``single_scale_retinex`` — the paper's final contrast step (log10 domain, sigma 300).
* ``to_ycrcb`` / ``merge_luminance`` — colour: fuse Y of YCrCb, keep the visible chroma.

The product's stages are written over the primitives (``ops``: numpy/OpenCV by default, or torch).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .primitives import NUMPY_OPS

__all__ = [
    "blend", "split_base_detail", "detail_energy_weights", "saliency_detail_fuse", "percentile_stretch",
    "stretch_bounds", "apply_stretch",
    "single_scale_retinex", "to_ycrcb", "merge_luminance",
]


def blend(visible: Any, infrared: Any, weights: Any) -> Any:
    """``weights·visible + (1 − weights)·infrared`` (float32)."""
    return infrared + weights * (visible - infrared)


def split_base_detail(image: Any, radius: int, ops: Any = NUMPY_OPS) -> tuple[Any, Any]:
    """(base, detail) with base = box mean of radius ``radius`` and detail = image − base."""
    base = ops.box_mean(image, radius)
    return base, image - base


def detail_energy_weights(
    detail_visible: Any, detail_infrared: Any, sigma: float = 2.0, sharpness: float = 4.0, ops: Any = NUMPY_OPS
) -> Any:
    """Visible share from local detail energy: ``sigmoid(sharpness·log(E_vis / E_ir))``.

    ``E`` = Gaussian(σ) mean of |detail| (+0.01 so flat regions are a tie). Smooth, so detail never
    switches source from one pixel to the next (pixel-wise max-abs switching creates gradients
    present in neither source, which the Nabf metric counts as artefacts).
    """
    energy_vis = ops.gaussian_blur(ops.abs(detail_visible), sigma) + ops.scalar(0.01)
    energy_ir = ops.gaussian_blur(ops.abs(detail_infrared), sigma) + ops.scalar(0.01)
    return ops.sigmoid(ops.scalar(sharpness) * (ops.log(energy_vis) - ops.log(energy_ir)))


def saliency_detail_fuse(
    visible_layers: tuple[Any, Any],
    infrared_layers: tuple[Any, Any],
    detail_weights: Any,
    base_temperature: float = 10.0,
    base_complement: float = 0.3,
    detail_gain: float = 1.0,
    ops: Any = NUMPY_OPS,
) -> Any:
    """The product's fusion rule: bright base, sharp detail.

    Base layers (``split_base_detail`` of each source) are mixed by a soft brightness selection
    ``w_b = sigmoid((base_vis − base_ir) / base_temperature)`` (warm targets and lit areas stay
    visible), plus ``base_complement`` × the zero-mean other base (keeps the structure of the darker
    source); detail layers are mixed by ``detail_weights`` (the visible share from the blur
    detector and local detail energy), times ``detail_gain``.

    Args:
        visible_layers, infrared_layers: (base, detail) of each source, float32 0..255 scale.
        detail_weights: float32 visible share of the detail layer, [0, 1].
        ops: the primitives.

    Returns:
        float32 fused luminance (not clipped; the caller stretches/clips).
    """
    base_vis, detail_vis = visible_layers
    base_ir, detail_ir = infrared_layers
    base_weights = ops.sigmoid((base_vis - base_ir) * ops.scalar(1.0 / base_temperature))
    bright = blend(base_vis, base_ir, base_weights)
    dark = base_vis + base_ir - bright
    fused = bright + ops.scalar(base_complement) * (dark - ops.scalar(ops.mean(dark)))
    fused += ops.scalar(detail_gain) * blend(detail_vis, detail_ir, detail_weights)
    return fused


def stretch_bounds(image: Any, clip_percent: float, ops: Any = NUMPY_OPS) -> tuple[Any, Any] | None:
    """The (low, high) of ``percentile_stretch`` from the ``[::2, ::2]`` subsample; None = no stretch."""
    if clip_percent <= 0:
        return None
    low, high = ops.percentiles(image, (clip_percent, 100.0 - clip_percent), step=2)
    return low, high


def apply_stretch(image: Any, bounds: tuple[Any, Any] | None, ops: Any = NUMPY_OPS) -> Any:
    """Linear map of ``bounds`` to 0..255, clipped; None or bounds closer than 1e-3 only clip."""
    if bounds is None:
        return ops.clip(image, 0.0, 255.0)
    low, high = bounds

    def stretched() -> Any:
        scaled = (image - ops.scalar(low)) * ops.scalar(255.0 / (high - low))
        return ops.clip(scaled, 0.0, 255.0, inplace=True)

    return ops.choose(high - low < 1e-3, lambda: ops.clip(image, 0.0, 255.0), stretched)


def percentile_stretch(image: Any, clip_percent: float, ops: Any = NUMPY_OPS) -> Any:
    """Linear stretch so the ``clip_percent`` darkest/brightest % saturate; 0..255 float32.

    The bounds come from the ``[::2, ::2]`` subsample; a near-constant image (bounds closer than
    1e-3) is only clipped.
    """
    return apply_stretch(image, stretch_bounds(image, clip_percent, ops), ops)


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


def to_ycrcb(image: np.ndarray) -> np.ndarray:
    """YCrCb uint8 (H×W×3) of a BGR uint8 image; convert once per frame and reuse it."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)


def merge_luminance(visible_bgr: np.ndarray, luminance: np.ndarray, ycrcb: np.ndarray | None = None) -> np.ndarray:
    """Replace the Y channel of a BGR image by ``luminance`` and return BGR uint8.

    ``ycrcb``: the visible image's ``to_ycrcb`` when the caller already has it (modified in place).
    """
    return NUMPY_OPS.merge_luma(to_ycrcb(visible_bgr) if ycrcb is None else ycrcb, luminance)
