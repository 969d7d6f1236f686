"""Multi-scale fusion: Laplacian pyramids whose bands are fused under a detector weight map.

The default mode's fusion (in the spirit of Liu et al. 2017, the seed method's ancestor):

1. Laplacian pyramids of the visible and thermal luminance (Burt–Adelson 5-tap kernel, OpenCV
   ``pyrDown``/``pyrUp``), a Gaussian pyramid of the detector's weight map (visible share);
2. per detail band, Burt's match/salience rule: where the two bands agree (local match ≥
   ``threshold``) they are averaged with the detector's weights, elsewhere the band with the larger
   local energy is taken (softly, so that the choice does not switch from one pixel to the next);
3. the coarsest band (the base) by soft brightness selection (warm targets and lit areas keep their
   level) plus a share of the darker source's zero-mean base;
4. the pyramid is collapsed and stretched (``fusion.percentile_stretch`` by the caller).

All functions take and return float32 arrays on the 0..255 scale.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "laplacian_pyramid",
    "gaussian_pyramid",
    "collapse_pyramid",
    "local_mean",
    "match_select_band",
    "bright_base",
    "pyramid_fuse",
]


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` band-pass layers (finest first) followed by the low-pass residual.

    ``L_k = G_k − expand(G_{k+1})`` with OpenCV's ``pyrDown``/``pyrUp`` (5-tap Burt–Adelson
    kernel, reflected borders); ``collapse_pyramid`` inverts it exactly (up to float rounding).
    """
    bands = []
    current = image.astype(np.float32, copy=False)
    for _ in range(levels):
        smaller = cv2.pyrDown(current)
        bands.append(current - cv2.pyrUp(smaller, dstsize=(current.shape[1], current.shape[0])))
        current = smaller
    bands.append(current)
    return bands


def gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels + 1`` images: ``image`` and its ``levels`` successive ``pyrDown`` reductions."""
    pyramid = [image.astype(np.float32, copy=False)]
    for _ in range(levels):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    return pyramid


def collapse_pyramid(bands: list[np.ndarray]) -> np.ndarray:
    """Rebuild the image from ``laplacian_pyramid``-style bands (residual last)."""
    image = bands[-1]
    for band in reversed(bands[:-1]):
        image = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])) + band
    return image


def local_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2·radius+1)² window, reflected borders."""
    size = 2 * radius + 1
    return cv2.boxFilter(image, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + cv2.exp(-np.clip(values, -30.0, 30.0)))


def match_select_band(
    visible: np.ndarray,
    thermal: np.ndarray,
    weights: np.ndarray,
    threshold: float = 0.6,
    radius: int = 2,
    selection_sharpness: float = 0.0,
) -> np.ndarray:
    """Burt's rule for one band with a weight map for the averaging mode.

    Local energies ``E = mean(band²)`` and match ``M = 2·mean(vis·ir) / (E_vis + E_ir)`` over the
    (2·radius+1)² window. Where ``M ≥ threshold`` the bands are averaged,
    ``weights·vis + (1 − weights)·ir``; elsewhere the band of larger energy is selected — hard when
    ``selection_sharpness`` is 0 (Burt; Liu et al. 2017), else softly with
    ``sigmoid(selection_sharpness·log(E_vis / E_ir))``.

    Args:
        visible, thermal: float32 bands of equal shape.
        weights: float32 visible share in [0, 1] (same shape).

    Returns:
        float32 fused band.
    """
    energy_vis = local_mean(visible * visible, radius)
    energy_ir = local_mean(thermal * thermal, radius)
    match = 2.0 * local_mean(visible * thermal, radius) / (energy_vis + energy_ir + np.float32(1e-6))
    if selection_sharpness > 0:
        selection = _sigmoid(
            np.float32(selection_sharpness) * (cv2.log(energy_vis + np.float32(1e-3)) - cv2.log(energy_ir + np.float32(1e-3)))
        )
    else:
        selection = (energy_vis > energy_ir).astype(np.float32)
    share = np.where(match >= threshold, weights, selection)
    return thermal + share * (visible - thermal)


def bright_base(visible: np.ndarray, thermal: np.ndarray, temperature: float, complement: float) -> np.ndarray:
    """Soft brightness selection of two low-pass bands plus ``complement`` × the darker one's detail.

    ``w = sigmoid((vis − ir) / temperature)``; ``bright = w·vis + (1 − w)·ir``; the darker band
    (``vis + ir − bright``) enters zero-mean with weight ``complement``.
    """
    share = _sigmoid((visible - thermal) * np.float32(1.0 / temperature))
    bright = thermal + share * (visible - thermal)
    dark = visible + thermal - bright
    return bright + np.float32(complement) * (dark - np.float32(dark.mean()))


def pyramid_fuse(
    visible: np.ndarray,
    thermal: np.ndarray,
    weights: np.ndarray,
    levels: int = 4,
    threshold: float = 0.6,
    radius: int = 2,
    selection_sharpness: float = 0.0,
    base_temperature: float = 10.0,
    base_complement: float = 0.3,
    detail_gain: float = 1.0,
) -> np.ndarray:
    """Fuse two luminances in a Laplacian pyramid under a visible-share weight map.

    Args:
        visible, thermal: float32 H×W on the 0..255 scale.
        weights: float32 H×W visible share in [0, 1] (the detector's map).
        levels: band-pass levels (fewer when the image is too small for them).
        threshold, radius, selection_sharpness: ``match_select_band`` per band.
        base_temperature, base_complement: ``bright_base`` of the residual.
        detail_gain: multiplier of every fused band-pass layer.

    Returns:
        float32 H×W fused luminance, not clipped (the caller stretches/clips).
    """
    levels = max(1, min(levels, int(np.log2(max(2, min(visible.shape)))) - 2))
    visible_bands = laplacian_pyramid(visible, levels)
    thermal_bands = laplacian_pyramid(thermal, levels)
    weight_levels = gaussian_pyramid(weights, levels)
    fused = [
        np.float32(detail_gain) * match_select_band(v, t, w, threshold, radius, selection_sharpness)
        for v, t, w in zip(visible_bands[:-1], thermal_bands[:-1], weight_levels[:-1])
    ]
    fused.append(bright_base(visible_bands[-1], thermal_bands[-1], base_temperature, base_complement))
    return collapse_pyramid(fused)
