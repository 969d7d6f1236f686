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

import cv2
import numpy as np

from .guided_filter import fast_guided_filter

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
    if window % stride:
        raise ValueError(f"window {window} must be a multiple of stride {stride}")
    blocks = window // stride
    nh, nw = values.shape
    padded = cv2.copyMakeBorder(
        values.astype(np.float32), blocks - 1, blocks - 1, blocks - 1, blocks - 1, cv2.BORDER_CONSTANT, value=0.0
    )
    # block_sums[bi, bj] = sum of values[bi-blocks+1 .. bi, bj-blocks+1 .. bj]
    block_sums = cv2.boxFilter(
        padded, -1, (blocks, blocks), anchor=(0, 0), normalize=False, borderType=cv2.BORDER_CONSTANT
    )[: nh + blocks - 1, : nw + blocks - 1]
    covered = np.repeat(np.repeat(block_sums, stride, axis=0), stride, axis=1)
    height, width = shape
    covered = covered[:height, :width]
    pad_bottom, pad_right = height - covered.shape[0], width - covered.shape[1]
    if pad_bottom or pad_right:
        covered = cv2.copyMakeBorder(covered, 0, pad_bottom, 0, pad_right, cv2.BORDER_REPLICATE)
    return covered


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
    scores: np.ndarray, window: int, stride: int, shape: tuple[int, int], temperature: float = 1.0
) -> np.ndarray:
    """Mean window probability ``sigmoid(score / temperature)`` over the windows covering each pixel.

    Returns:
        float32 (H, W) visible share in [0, 1].
    """
    probabilities = 1.0 / (1.0 + np.exp(-np.clip(scores / temperature, -30.0, 30.0)))
    sums = accumulate_windows(probabilities.astype(np.float32), window, stride, shape)
    counts = accumulate_windows(np.ones_like(probabilities, dtype=np.float32), window, stride, shape)
    return sums / np.maximum(counts, 1.0)


def refine_weights(weights: np.ndarray, guide: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware refinement: guided filter of the weights by a 0..255 luminance guide.

    Args:
        weights: float32 (H, W) in [0, 1].
        guide: float32 (H, W) guide on the 0..255 scale (eps is on the 0..1 scale).
        radius: filter radius in pixels (0 disables refinement).
        eps: regularisation; small values follow the guide's edges closely.

    Returns:
        float32 (H, W) in [0, 1].
    """
    if radius <= 0:
        return weights
    refined = fast_guided_filter(guide * np.float32(1.0 / 255.0), weights, radius, eps, max(1, radius // 4))
    return np.clip(refined, 0.0, 1.0, out=refined)
