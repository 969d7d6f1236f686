"""Edge-preserving guided filter (He, Sun & Tang 2010/2013), with the fast subsampled variant.

One function: ``fast_guided_filter(guide, src, radius, eps, subsample, ops)``; ``subsample=1`` is
the plain guided filter. Written over the primitives (``box_mean``, ``resize``), so the same code
runs on numpy/OpenCV (box sums independent of the radius) and on torch tensors.
"""
from __future__ import annotations

from typing import Any

from .primitives import NUMPY_OPS

__all__ = ["fast_guided_filter"]


def fast_guided_filter(guide: Any, src: Any, radius: int, eps: float, subsample: int = 1, ops: Any = NUMPY_OPS) -> Any:
    """Filter ``src`` with the local linear model ``q = a * guide + b``.

    Args:
        guide: float32 H×W guidance image (any scale; ``eps`` is in that scale squared); with torch
            ops a (B, 1, H, W) tensor.
        src: image to filter, same shape (may be ``guide`` itself).
        radius: box radius at full resolution, >= 1.
        eps: regularisation (variance units of ``guide``), > 0.
        subsample: compute the coefficients at 1/subsample resolution (fast guided filter,
            He & Sun 2015); the output is always full resolution.
        ops: the primitives (``NUMPY_OPS`` or a ``TorchOps``).

    Returns:
        float32 filtered image of the input's shape.

    Raises:
        ValueError: on shape mismatch or invalid parameters.
    """
    if guide.ndim not in (2, 4) or tuple(src.shape) != tuple(guide.shape):
        raise ValueError(f"guide and src must be equal 2-D shapes, got {tuple(guide.shape)} and {tuple(src.shape)}")
    if radius < 1 or eps <= 0 or subsample < 1:
        raise ValueError(f"need radius >= 1, eps > 0, subsample >= 1; got {radius}, {eps}, {subsample}")
    same = src is guide
    guide = ops.to_float(guide)
    src = guide if same else ops.to_float(src)
    height, width = guide.shape[-2:]
    subsample = int(min(subsample, max(1, min(height, width) // 4)))
    if subsample > 1:
        small = (max(1, height // subsample), max(1, width // subsample))
        guide_s = ops.resize(guide, small, "area")
        src_s = guide_s if same else ops.resize(src, small, "area")
        radius_s = max(1, int(round(radius / subsample)))
    else:
        guide_s, src_s, radius_s = guide, src, radius
    mean_g = ops.box_mean(guide_s, radius_s)
    mean_s = mean_g if same else ops.box_mean(src_s, radius_s)
    corr_gs = ops.box_mean(guide_s * src_s, radius_s)
    corr_gg = corr_gs if same else ops.box_mean(guide_s * guide_s, radius_s)
    var_g = corr_gg - mean_g * mean_g
    cov_gs = corr_gs - mean_g * mean_s
    a = cov_gs / (var_g + eps)
    b = mean_s - a * mean_g
    mean_a = ops.box_mean(a, radius_s)
    mean_b = ops.box_mean(b, radius_s)
    if subsample > 1:
        mean_a = ops.resize(mean_a, (height, width), "linear")
        mean_b = ops.resize(mean_b, (height, width), "linear")
    return mean_a * guide + mean_b
