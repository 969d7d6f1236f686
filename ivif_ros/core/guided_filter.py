"""Edge-preserving guided filter (He, Sun & Tang 2010/2013), with the fast subsampled variant.

One function: ``fast_guided_filter(guide, src, radius, eps, subsample)``; ``subsample=1`` is the
plain guided filter. Box sums come from OpenCV, so cost is independent of the radius.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["fast_guided_filter"]


def _box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.boxFilter(image, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT)


def fast_guided_filter(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float, subsample: int = 1
) -> np.ndarray:
    """Filter ``src`` with the local linear model ``q = a * guide + b``.

    Args:
        guide: float32 H×W guidance image (any scale; ``eps`` is in that scale squared).
        src: float32 H×W image to filter (may be ``guide`` itself).
        radius: box radius at full resolution, >= 1.
        eps: regularisation (variance units of ``guide``), > 0.
        subsample: compute the coefficients at 1/subsample resolution (fast guided filter,
            He & Sun 2015); the output is always full resolution.

    Returns:
        float32 H×W filtered image.

    Raises:
        ValueError: on shape mismatch or invalid parameters.
    """
    if guide.ndim != 2 or src.shape != guide.shape:
        raise ValueError(f"guide and src must be equal 2-D shapes, got {guide.shape} and {src.shape}")
    if radius < 1 or eps <= 0 or subsample < 1:
        raise ValueError(f"need radius >= 1, eps > 0, subsample >= 1; got {radius}, {eps}, {subsample}")
    guide = guide.astype(np.float32, copy=False)
    src = src.astype(np.float32, copy=False)
    height, width = guide.shape
    subsample = int(min(subsample, max(1, min(height, width) // 4)))
    if subsample > 1:
        small = (max(1, width // subsample), max(1, height // subsample))
        guide_s = cv2.resize(guide, small, interpolation=cv2.INTER_AREA)
        src_s = guide_s if src is guide else cv2.resize(src, small, interpolation=cv2.INTER_AREA)
        radius_s = max(1, int(round(radius / subsample)))
    else:
        guide_s, src_s, radius_s = guide, src, radius
    mean_g = _box_mean(guide_s, radius_s)
    mean_s = mean_g if src_s is guide_s else _box_mean(src_s, radius_s)
    corr_gs = _box_mean(guide_s * src_s, radius_s)
    corr_gg = corr_gs if src_s is guide_s else _box_mean(guide_s * guide_s, radius_s)
    var_g = corr_gg - mean_g * mean_g
    cov_gs = corr_gs - mean_g * mean_s
    a = cov_gs / (var_g + eps)
    b = mean_s - a * mean_g
    mean_a = _box_mean(a, radius_s)
    mean_b = _box_mean(b, radius_s)
    if subsample > 1:
        mean_a = cv2.resize(mean_a, (width, height), interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, (width, height), interpolation=cv2.INTER_LINEAR)
    return mean_a * guide + mean_b
