"""Stage 4a: from window scores of the blur detector to a per-pixel weight map (visible share).

The detector scores 32×32 windows at a stride (``scores[i, j]`` covers rows ``i*stride ..
i*stride+window`` and the same for columns). Two ways to turn that into weights:

* ``seed_weight_map`` — the paper (SEED-ALGORITHM.md §4): ±1 votes accumulated over each window,
  decision = vote >= 0, then blending across the decision boundary from Euclidean distance
  transforms of the decision map and of its complement.
* ``soft_weight_map`` — the product: window probabilities averaged over every window that covers
  a pixel (continuous, no decision seams), later refined edge-aware by ``refine_weights``.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .guided_filter import fast_guided_filter
from .primitives import NUMPY_OPS

__all__ = ["accumulate_windows", "seed_weight_map", "soft_weight_map", "refine_weights"]


def accumulate_windows(values: np.ndarray, window: int, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """Add each window's value to every pixel the window covers (a transposed box convolution).

    Args:
        values: float32 (nh, nw) per-window values.
        window: window side in pixels; must be a multiple of ``stride``.
        stride: window step in pixels.
        shape: (H, W) of the image the windows were taken from.

    Returns:
        float32 (H, W) sums; pixels right of / below the last window (less than one stride)
        repeat the nearest covered value.
    """
    return NUMPY_OPS.accumulate_windows(values, window, stride, shape)


def seed_weight_map(
    scores: np.ndarray, window: int, stride: int, shape: tuple[int, int], blend_radius: float = 16.0
) -> np.ndarray:
    """The paper's vote → decision → distance-transform blending weights.

    Each window votes +1 for visible when its score >= 0 (A wins), else −1; decision = vote >= 0.
    With ``d_vis`` / ``d_ir`` the Euclidean distance of a pixel to the other region,
    ``w = clip(0.5 + (d_vis − d_ir) / (2·blend_radius), 0, 1)``: pixels deeper than
    ``blend_radius`` inside a region take that source alone, pixels near a boundary mix both.

    Returns:
        float32 (H, W) visible share in [0, 1].
    """
    votes = accumulate_windows(np.where(scores >= 0, 1.0, -1.0).astype(np.float32), window, stride, shape)
    decision = (votes >= 0).astype(np.uint8)
    if decision.all() or not decision.any():
        return decision.astype(np.float32)
    dist_inside_vis = cv2.distanceTransform(decision, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    dist_inside_ir = cv2.distanceTransform(1 - decision, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    weights = 0.5 + (dist_inside_vis - dist_inside_ir) / np.float32(2.0 * blend_radius)
    return np.clip(weights, 0.0, 1.0, out=weights)


def soft_weight_map(
    scores: Any, window: int, stride: int, shape: tuple[int, int], temperature: float = 1.0, ops: Any = NUMPY_OPS
) -> Any:
    """Mean window probability ``sigmoid(score / temperature)`` over the windows covering each pixel.

    Returns:
        float32 (H, W) visible share in [0, 1].
    """
    probabilities = ops.sigmoid(scores / temperature)
    sums = ops.accumulate_windows(probabilities, window, stride, shape)
    counts = ops.accumulate_windows(ops.ones_like(probabilities), window, stride, shape)
    return sums / ops.clip_min(counts, 1.0)


def refine_weights(weights: Any, guide: Any, radius: int, eps: float, ops: Any = NUMPY_OPS) -> Any:
    """Edge-aware refinement: guided filter of the weights by a 0..255 luminance guide.

    Args:
        weights: float32 (H, W) in [0, 1].
        guide: float32 (H, W) guide on the 0..255 scale (eps is on the 0..1 scale).
        radius: filter radius in pixels (0 disables refinement).
        eps: regularisation; small values follow the guide's edges closely.
        ops: the primitives.

    Returns:
        float32 (H, W) in [0, 1].
    """
    if radius <= 0:
        return weights
    refined = fast_guided_filter(guide * ops.scalar(1.0 / 255.0), weights, radius, eps, max(1, radius // 4), ops)
    return ops.clip(refined, 0.0, 1.0, inplace=True)
