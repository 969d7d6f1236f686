"""Seed mode's decision, blending and final contrast step as the authors' ``Model_Test.py`` does them.

SEED-ALGORITHM.md §4, exactly:

* every 32×32 window votes +1 (visible) unless both stacking orders call the infrared block the
  sharp one (``score1 <= score2`` → +1, so ties go to visible); votes are summed over each
  window; decision ``g`` = 1 (visible) where the sum is ≥ 0, pixels no window covers included;
* with ``V``, ``I`` the enhanced visible and infrared, ``w3 = EDT(g)``, ``w4 = EDT(1 − g)``, ``F0``
  the uint8 image composed directly from ``g`` and ``d = EDT(F0)``:
  ``F = (d·I + d·V + w4·I + w3·V) / (2d + w3 + w4)``;
* ``F`` → 0..255 by min–max (truncated to uint8) → Single-Scale Retinex (sigma 300, log10, 0.01-wide
  bins, clipping rule below) → uint8.

``EDT(x)`` is the Euclidean distance of each non-zero pixel of ``x`` to the nearest zero pixel
(``cv2.distanceTransform``, precise mask). An image without any zero pixel has no defined
distance; OpenCV then returns a huge constant (≈1.8e19), which makes the formula take its limit
(e.g. ``d`` → ∞ gives the plain mean of ``I`` and ``V``).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["authors_ssr", "blend", "decision_map", "distance_to_zero", "fuse", "original_infrared"]


def original_infrared(thermal: np.ndarray) -> np.ndarray:
    """The infrared image the authors detect on: the 8-bit original as is (float32 0..255).

    Thermal images of more than 8 bits have no 8-bit original; they are min–max scaled to 0..255.
    """
    if thermal.dtype == np.uint8:
        return thermal.astype(np.float32)
    from .enhance import minmax_to_255

    return minmax_to_255(thermal)


def decision_map(votes: np.ndarray, window: int, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """Sum each window's ±1 vote over the pixels it covers; 1 (visible) where the sum is ≥ 0.

    Args:
        votes: (nh, nw) per-window votes (> 0 or == 0 counts as +1, < 0 as −1).
        window: window side (px).
        stride: window step (px).
        shape: (H, W) of the detector input.

    Returns:
        uint8 (H, W) decision map ``g``, 1 = visible.
    """
    height, width = shape
    ballot = np.where(np.asarray(votes) >= 0, 1.0, -1.0)
    nh, nw = ballot.shape
    # Each window adds its vote to a (window × window) square: a 2-D difference array, then cumsum.
    diff = np.zeros((height + 1, width + 1), np.float64)
    rows, cols = np.arange(nh) * stride, np.arange(nw) * stride
    r0, c0 = np.meshgrid(rows, cols, indexing="ij")
    r1, c1 = np.minimum(r0 + window, height), np.minimum(c0 + window, width)
    np.add.at(diff, (r0, c0), ballot)
    np.add.at(diff, (r0, c1), -ballot)
    np.add.at(diff, (r1, c0), -ballot)
    np.add.at(diff, (r1, c1), ballot)
    total = diff.cumsum(0).cumsum(1)[:height, :width]
    return (total >= 0).astype(np.uint8)


def distance_to_zero(image: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest zero-valued pixel (0 on zero pixels).

    Returns:
        float64 (H, W); a huge constant everywhere when ``image`` has no zero pixel.
    """
    nonzero = (np.asarray(image) != 0).astype(np.uint8)
    return cv2.distanceTransform(nonzero, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)


def blend(visible: np.ndarray, infrared: np.ndarray, decision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``F = (d·I + d·V + w4·I + w3·V) / (2d + w3 + w4)`` (module docstring).

    Args:
        visible: enhanced visible, 0..255 (H, W).
        infrared: enhanced infrared, 0..255 (H, W).
        decision: uint8 decision map ``g`` (1 = visible).

    Returns:
        ``(F, share)``: float64 fused image and the visible share ``(d + w3) / (2d + w3 + w4)``.
    """
    vis = np.asarray(visible, np.float64)
    ir = np.asarray(infrared, np.float64)
    g = (np.asarray(decision) != 0).astype(np.uint8)
    w3, w4 = distance_to_zero(g), distance_to_zero(1 - g)
    direct = np.where(g == 1, vis, ir).astype(np.uint8)  # the authors' FUSED_8 = map3.astype(np.uint8)
    d = distance_to_zero(direct)
    denominator = 2.0 * d + w3 + w4
    share = (d + w3) / denominator
    fused = (d * ir + d * vis + w4 * ir + w3 * vis) / denominator
    return fused, share


def authors_ssr(image: np.ndarray, sigma: float = 300.0) -> np.ndarray:
    """The research script's Single-Scale Retinex on one channel (its ``SSR``), returning uint8.

    ``R = log10(I + 1) − log10(G_sigma * (I + 1))`` (OpenCV Gaussian, default border). With
    ``u = int32(100·R)`` (truncation) and ``z`` the count of ``u == 0``: the upper clip is the first
    positive ``u`` holding fewer than ``0.1·z`` pixels, the lower clip the LAST negative ``u`` (the
    one closest to zero) holding fewer than ``0.1·z`` — the script's loop keeps overwriting it —
    each defaulting to the extreme value; then min–max to 0..255 and truncation to uint8.
    """
    img = np.asarray(image, np.float64) + 1.0
    retinex = np.log10(img) - np.log10(cv2.GaussianBlur(img, (0, 0), sigma))
    unique, count = np.unique((retinex * 100).astype(np.int32), return_counts=True)
    zero = count[unique == 0]
    zero_count = int(zero[0]) if zero.size else 0
    rare = count < zero_count * 0.1
    low = unique[0] / 100.0
    negative = np.flatnonzero((unique < 0) & rare)
    if negative.size:
        low = unique[negative[-1]] / 100.0
    high = unique[-1] / 100.0
    positive = np.flatnonzero((unique > 0) & rare)
    if positive.size:
        high = unique[positive[0]] / 100.0
    clipped = np.maximum(np.minimum(retinex, high), low)
    span = clipped.max() - clipped.min()
    if span <= 0:
        return np.zeros(clipped.shape, np.uint8)
    return ((clipped - clipped.min()) / span * 255.0).astype(np.uint8)


def fuse(visible: np.ndarray, infrared: np.ndarray, votes: np.ndarray, window: int, stride: int,
         retinex: bool = True, retinex_sigma: float = 300.0) -> tuple[np.ndarray, np.ndarray]:
    """Decision → blending → min–max (uint8) → optional Retinex, all at the inputs' size.

    Args:
        visible: enhanced visible 0..255 (H, W), the detector's input size.
        infrared: enhanced infrared 0..255 (H, W).
        votes: (nh, nw) window votes of the detector.
        window, stride: the detector's window geometry.
        retinex: apply :func:`authors_ssr` at the end.
        retinex_sigma: its Gaussian sigma.

    Returns:
        ``(fused, share)``: float32 0..255 fused image (integer-valued, as the authors' uint8) and
        float32 visible share in [0, 1].
    """
    decision = decision_map(votes, window, stride, visible.shape[:2])
    fused, share = blend(visible, infrared, decision)
    low, high = fused.min(), fused.max()
    scaled = (255.0 * (fused - low) / (high - low)) if high > low else np.zeros_like(fused)
    out = scaled.astype(np.uint8)  # np.uint8(FUSED): truncation
    if retinex:
        out = authors_ssr(out, retinex_sigma)
    return out.astype(np.float32), share.astype(np.float32)
