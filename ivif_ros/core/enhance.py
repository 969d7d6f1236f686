"""Stage 3 of the method: enhancement of the infrared and visible inputs.

``enhance_luminance`` is SEED-ALGORITHM.md §3 (visible): a fast guided filter splits the log image
into base and detail, the base is compressed to a target log-contrast and the detail is kept.
``stretch_thermal`` maps 8/16-bit or float thermal data to 0..255 (min–max as in the paper, or a
robust percentile stretch for real 16-bit cameras, whose hot and dead pixels break min–max).
All functions are written over the primitives (``ops``: numpy/OpenCV by default, or torch) and
return float32 in 0..255.
"""
from __future__ import annotations

import math
from typing import Any

from .errors import FusionInputError
from .guided_filter import fast_guided_filter
from .primitives import NUMPY_OPS

__all__ = ["enhance_luminance", "stretch_thermal", "thermal_bounds", "apply_bounds", "minmax_to_255"]


def minmax_to_255(image: Any, ops: Any = NUMPY_OPS) -> Any:
    """Linear min–max rescale to float32 0..255 (a constant image maps to 0)."""
    image = ops.to_float(image)
    low, high = ops.minmax(image)
    return ops.choose(
        high - low < 1e-12,
        lambda: ops.zeros_like(image),
        lambda: (image - ops.scalar(low)) * ops.scalar(255.0 / (high - low)),
    )


def thermal_bounds(
    image: Any, method: str = "auto", percentiles: tuple[float, float] = (0.5, 99.5), ops: Any = NUMPY_OPS
) -> tuple[Any, Any]:
    """The (low, high) input values that ``stretch_thermal`` maps to 0 and 255 (per-image scalars).

    Min–max for ``minmax``; for ``percentile`` the percentiles (from the histogram of integer data,
    by linear interpolation for float data), falling back to min–max when they coincide.

    Raises:
        FusionInputError: unknown method or invalid percentiles.
    """
    if method not in ("auto", "minmax", "percentile"):
        raise FusionInputError(f"thermal stretch must be auto, minmax or percentile, got {method!r}")
    low_pct, high_pct = percentiles
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise FusionInputError(f"thermal percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    if method == "auto":
        method = "minmax" if ops.is_8bit(image) else "percentile"
    minmax = ops.minmax(ops.to_float(image))
    if method == "minmax":
        return minmax
    if ops.integer_levels(image) is not None:
        low, high = ops.histogram_percentiles(image, (low_pct, high_pct))
    else:
        low, high = ops.percentiles(image, (low_pct, high_pct))
    degenerate = high - low < 1e-12
    low = ops.choose(degenerate, lambda: minmax[0], lambda: low)
    high = ops.choose(degenerate, lambda: minmax[1], lambda: high)
    return low, high


def apply_bounds(image: Any, low: Any, high: Any, ops: Any = NUMPY_OPS) -> Any:
    """Linear map of ``low``..``high`` to 0..255, clipped (float32; all 0 when high - low < 1e-12)."""
    image = ops.to_float(image)

    def stretched() -> Any:
        scaled = (image - ops.scalar(low)) * ops.scalar(255.0 / (high - low))
        return ops.clip(scaled, 0.0, 255.0, inplace=True)

    return ops.choose(high - low < 1e-12, lambda: ops.zeros_like(image), stretched)


def stretch_thermal(
    image: Any, method: str = "auto", percentiles: tuple[float, float] = (0.5, 99.5), ops: Any = NUMPY_OPS
) -> Any:
    """Map a single-channel thermal image to float32 0..255.

    Args:
        image: H×W uint8, uint16 or float (finite) thermal image (torch ops: (B, 1, H, W)).
        method: ``"minmax"`` (the paper), ``"percentile"`` (clip at ``percentiles`` then rescale)
            or ``"auto"`` (percentile for 16-bit and float data, min–max for 8-bit).
        percentiles: lower and upper percentile for the robust stretch, 0 <= low < high <= 100;
            integer data take them from the histogram, float data by linear interpolation.
        ops: the primitives.

    Returns:
        float32 H×W in 0..255.

    Raises:
        FusionInputError: unknown method or invalid percentiles.
    """
    return apply_bounds(image, *thermal_bounds(image, method, percentiles, ops), ops=ops)


def enhance_luminance(
    luminance: Any,
    radius_fraction: float = 0.04,
    eps: float = 0.01,
    target_contrast: float = 4.0,
    detail_gain: float = 1.0,
    rescale: bool = True,
    ops: Any = NUMPY_OPS,
) -> Any:
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
        ops: the primitives.

    Returns:
        float32 H×W in 0..255.
    """
    image = minmax_to_255(luminance, ops) if rescale else ops.to_float(luminance)
    height, width = image.shape[-2:]
    radius = max(1, int(math.floor(radius_fraction * max(height, width))))
    subsample = max(1, radius // 4)
    normalised = image * ops.scalar(1.0 / 255.0)
    base = ops.clip_min(fast_guided_filter(normalised, normalised, radius, eps, subsample, ops) * ops.scalar(255.0),
                        0.0)
    log_image = ops.log(image + ops.scalar(1.0))
    log_base = ops.log(base + ops.scalar(1.0))
    detail = log_image - log_base
    log_min, log_max = ops.minmax(log_base)
    compression = math.log(target_contrast) / ops.scalar_max(log_max - log_min, 1e-6)
    compression = ops.scalar_min(compression, 8.0)  # only bites on near-flat images (guards exp overflow)
    exponent = log_base * ops.scalar(compression) + detail * ops.scalar(detail_gain)
    exponent += ops.scalar((1.0 - compression) * log_max)
    return ops.clip(ops.exp(exponent), 0.0, 255.0, inplace=True)
