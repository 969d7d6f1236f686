"""Stage 3 of the method: enhancement of the infrared and visible inputs.

``enhance_luminance`` is SEED-ALGORITHM.md §3 (visible): a fast guided filter splits the log image
into base and detail, the base is compressed to a target log-contrast and the detail is kept.
``stretch_thermal`` maps 8/16-bit or float thermal data to 0..255 (min–max as in the paper, or a
robust percentile stretch for real 16-bit cameras, whose hot and dead pixels break min–max).
All functions are vectorised (OpenCV/numpy) and return float32 in 0..255.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .errors import FusionInputError
from .guided_filter import fast_guided_filter

__all__ = ["enhance_luminance", "stretch_thermal", "thermal_bounds", "apply_bounds", "minmax_to_255"]


def minmax_to_255(image: np.ndarray) -> np.ndarray:
    """Linear min–max rescale to float32 0..255 (a constant image maps to 0)."""
    image = image.astype(np.float32, copy=False)
    low, high = float(image.min()), float(image.max())
    if high - low < 1e-12:
        return np.zeros_like(image, dtype=np.float32)
    return (image - low) * np.float32(255.0 / (high - low))


def _percentile_bounds(image: np.ndarray, low_pct: float, high_pct: float) -> tuple[float, float]:
    """Percentile bounds from a histogram (integer images) or a partition (float images)."""
    if image.dtype in (np.uint8, np.uint16):
        counts = np.bincount(image.ravel(), minlength=256 if image.dtype == np.uint8 else 65536)
        cumulative = np.cumsum(counts, dtype=np.float64)
        total = cumulative[-1]
        low = int(np.searchsorted(cumulative, total * low_pct / 100.0, side="left"))
        high = int(np.searchsorted(cumulative, total * high_pct / 100.0, side="left"))
        return float(low), float(high)
    low, high = np.percentile(image, [low_pct, high_pct])
    return float(low), float(high)


def thermal_bounds(
    image: np.ndarray, method: str = "auto", percentiles: tuple[float, float] = (0.5, 99.5)
) -> tuple[float, float]:
    """The (low, high) input values that ``stretch_thermal`` maps to 0 and 255.

    Raises:
        FusionInputError: unknown method or invalid percentiles.
    """
    if method not in ("auto", "minmax", "percentile"):
        raise FusionInputError(f"thermal stretch must be auto, minmax or percentile, got {method!r}")
    low_pct, high_pct = percentiles
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise FusionInputError(f"thermal percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    if method == "auto":
        method = "minmax" if image.dtype == np.uint8 else "percentile"
    minmax = (float(image.min()), float(image.max()))
    if method == "minmax":
        return minmax
    low, high = _percentile_bounds(image, low_pct, high_pct)
    return (low, high) if high - low >= 1e-12 else minmax


def apply_bounds(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear map of ``low``..``high`` to 0..255, clipped (float32; all 0 when high <= low)."""
    if high - low < 1e-12:
        return np.zeros(image.shape, dtype=np.float32)
    scaled = (image.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return np.clip(scaled, 0.0, 255.0, out=scaled)


def stretch_thermal(
    image: np.ndarray, method: str = "auto", percentiles: tuple[float, float] = (0.5, 99.5)
) -> np.ndarray:
    """Map a single-channel thermal image to float32 0..255.

    Args:
        image: H×W uint8, uint16 or float (finite) thermal image.
        method: ``"minmax"`` (the paper), ``"percentile"`` (clip at ``percentiles`` then rescale)
            or ``"auto"`` (percentile for 16-bit and float data, min–max for 8-bit).
        percentiles: lower and upper percentile for the robust stretch, 0 <= low < high <= 100.

    Returns:
        float32 H×W in 0..255.

    Raises:
        FusionInputError: unknown method or invalid percentiles.
    """
    return apply_bounds(image, *thermal_bounds(image, method, percentiles))


def enhance_luminance(
    luminance: np.ndarray,
    radius_fraction: float = 0.04,
    eps: float = 0.01,
    target_contrast: float = 4.0,
    detail_gain: float = 1.0,
    rescale: bool = True,
) -> np.ndarray:
    """Log-domain base compression with detail preservation (SEED-ALGORITHM.md §3, visible).

    ``base`` = fast guided filter of I guided by itself (radius ``floor(radius_fraction·max(H,W))``,
    eps on the 0..1 scale, subsampling ``max(1, r/4)``); ``detail = log(I+1) − log(base+1)``;
    ``c = log(target_contrast) / (max log base − min log base)``;
    ``out = exp(c·log base + detail_gain·detail + (1−c)·max log base)`` clipped to 0..255.
    The paper's setting is ``target_contrast=4, detail_gain=1``.

    Args:
        luminance: H×W image (any real dtype); rescaled min–max to 0..255 first when ``rescale``.
        radius_fraction: guided-filter radius as a fraction of the longer side.
        eps: guided-filter regularisation on the 0..1 intensity scale (paper: 0.1²).
        target_contrast: ratio between the brightest and darkest base after compression.
        detail_gain: multiplier of the log-domain detail layer (1 = paper).
        rescale: min–max rescale the input to 0..255 first (paper: yes).

    Returns:
        float32 H×W in 0..255.
    """
    image = minmax_to_255(luminance) if rescale else luminance.astype(np.float32, copy=False)
    height, width = image.shape
    radius = max(1, int(math.floor(radius_fraction * max(height, width))))
    subsample = max(1, radius // 4)
    normalised = image * np.float32(1.0 / 255.0)
    base = fast_guided_filter(normalised, normalised, radius, eps, subsample) * np.float32(255.0)
    np.maximum(base, 0.0, out=base)
    log_image = cv2.log(image + np.float32(1.0))
    log_base = cv2.log(base + np.float32(1.0))
    detail = log_image - log_base
    log_min, log_max = float(log_base.min()), float(log_base.max())
    compression = math.log(target_contrast) / max(log_max - log_min, 1e-6)
    compression = min(compression, 8.0)  # only bites on near-flat images (guards exp overflow)
    exponent = log_base * np.float32(compression) + detail * np.float32(detail_gain)
    exponent += np.float32((1.0 - compression) * log_max)
    out = cv2.exp(exponent)
    return np.clip(out, 0.0, 255.0, out=out)
