"""Multi-scale fusion: Laplacian pyramids whose bands are fused under a detector weight map.

The default mode's fusion (in the spirit of Liu et al. 2017, the seed method's ancestor):

1. Laplacian pyramids of the visible and thermal luminance (Burt–Adelson 5-tap kernel, the
   ``pyr_down``/``pyr_up`` primitives), a Gaussian pyramid of the detector's weight map (visible
   share);
2. per band-pass level, Burt's match/salience rule: where the two bands agree (local match ≥
   ``threshold``) they are averaged with the detector's weights, elsewhere the band with the larger
   local energy is taken (hard, or softly with ``selection_sharpness``), the energy ratio shifted by
   ``selection_bias`` × the detector's log-odds at that level;
3. the low-pass residual (the base) by soft brightness selection (warm targets and lit areas keep
   their level), shifted by ``base_bias`` × the detector's log-odds at the coarsest level, plus a
   share of the darker source's zero-mean base;
4. the pyramid is collapsed (the caller stretches and clips).

Written over the primitives (``ops``: numpy/OpenCV by default, or torch); float32 on the 0..255 scale.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from .primitives import NUMPY_OPS

__all__ = [
    "laplacian_pyramid",
    "gaussian_pyramid",
    "collapse_pyramid",
    "match_select_band",
    "band_statistics",
    "bright_base",
    "BandAnalysis",
    "analyse_bands",
    "soft_selection",
    "pyramid_fuse",
]


def laplacian_pyramid(image: Any, levels: int, ops: Any = NUMPY_OPS) -> list[Any]:
    """``levels`` band-pass layers (finest first) followed by the low-pass residual.

    ``L_k = G_k − expand(G_{k+1})``; ``collapse_pyramid`` inverts it exactly (up to float rounding).
    """
    bands = []
    current = image
    for _ in range(levels):
        smaller = ops.pyr_down(current)
        bands.append(current - ops.pyr_up(smaller, tuple(current.shape[-2:])))
        current = smaller
    bands.append(current)
    return bands


def gaussian_pyramid(image: Any, levels: int, ops: Any = NUMPY_OPS) -> list[Any]:
    """``levels + 1`` images: ``image`` and its ``levels`` successive reductions."""
    pyramid = [image]
    for _ in range(levels):
        pyramid.append(ops.pyr_down(pyramid[-1]))
    return pyramid


def collapse_pyramid(bands: list[Any], ops: Any = NUMPY_OPS) -> Any:
    """Rebuild the image from ``laplacian_pyramid``-style bands (residual last)."""
    image = bands[-1]
    for band in reversed(bands[:-1]):
        image = ops.pyr_up(image, tuple(band.shape[-2:])) + band
    return image


def band_statistics(visible: Any, thermal: Any, radius: int = 2, soft: bool = True, ops: Any = NUMPY_OPS
                    ) -> tuple[Any, Any]:
    """What Burt's rule needs of two bands before any weight map: the local match and energy balance.

    Local energies ``E = mean(band²)`` and match ``M = 2·mean(vis·ir) / (E_vis + E_ir)`` over the
    (2·radius+1)² window.

    Returns:
        (``M``, the energy balance): ``log(E_vis / E_ir)`` (energies floored at 1e-3) when ``soft``,
        else 1.0 where ``E_vis > E_ir`` and 0.0 elsewhere (the hard selection itself).
    """
    energy_vis = ops.box_mean(visible * visible, radius)
    energy_ir = ops.box_mean(thermal * thermal, radius)
    match = ops.box_mean(visible * thermal, radius) * ops.scalar(2.0) / (energy_vis + energy_ir + ops.scalar(1e-6))
    if not soft:
        return match, ops.to_float(energy_vis > energy_ir)
    floor = ops.scalar(1e-3)
    return match, ops.log((energy_vis + floor) / (energy_ir + floor))  # one log instead of two


def match_select_band(
    visible: Any,
    thermal: Any,
    weights: Any,
    threshold: float = 0.6,
    radius: int = 2,
    selection_sharpness: float = 0.0,
    evidence: Any = None,
    ops: Any = NUMPY_OPS,
    statistics: tuple[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """Burt's rule for one band with a weight map for the averaging mode.

    With the local match ``M`` and energies of ``band_statistics``: where ``M ≥ threshold`` the
    bands are averaged, ``weights·vis + (1 − weights)·ir``; elsewhere the band of larger evidence
    ``log(E_vis / E_ir) + evidence`` is selected — hard when ``selection_sharpness`` is 0 (Burt;
    Liu et al. 2017), else softly with ``sigmoid(selection_sharpness·(log(E_vis / E_ir) + evidence))``.

    Args:
        visible, thermal: float32 bands of equal shape.
        weights: float32 visible share in [0, 1] (same shape).
        evidence: float32 log-odds for the visible band added to the energy ratio (the detector's);
            None = energies alone.
        statistics: ``band_statistics(visible, thermal, radius, soft)`` when already computed, with
            ``soft`` = ``selection_sharpness > 0 or evidence is not None``.

    Returns:
        (float32 fused band, the visible share used per coefficient).
    """
    soft = selection_sharpness > 0 or evidence is not None
    match, balance = statistics if statistics is not None else band_statistics(visible, thermal, radius, soft, ops)
    if soft:
        log_ratio = balance + evidence if evidence is not None else balance
        if selection_sharpness > 0:
            selection = ops.sigmoid(log_ratio * ops.scalar(selection_sharpness))
        else:
            selection = ops.to_float(log_ratio > 0)
    else:
        selection = balance
    share = ops.where(match >= threshold, weights, selection)
    return thermal + share * (visible - thermal), share


def bright_base(
    visible: Any, thermal: Any, temperature: float, complement: float, evidence: Any = None, ops: Any = NUMPY_OPS
) -> tuple[Any, Any]:
    """Soft brightness selection of two low-pass bands plus ``complement`` × the darker one's detail.

    ``w = sigmoid((vis − ir) / temperature + evidence)`` (``evidence``: log-odds for the visible
    band, the detector's; None = brightness alone); ``bright = w·vis + (1 − w)·ir``; the darker band
    (``vis + ir − bright``) enters zero-mean with weight ``complement``.

    Returns:
        (fused base, ``w``).
    """
    logit = (visible - thermal) * ops.scalar(1.0 / temperature)
    if evidence is not None:
        logit = logit + evidence
    share = ops.sigmoid(logit)
    bright = thermal + share * (visible - thermal)
    dark = visible + thermal - bright
    return bright + (dark - ops.mean(dark)) * ops.scalar(complement), share


def usable_levels(shape: tuple[int, ...], levels: int) -> int:
    """``levels``, fewer when the frame is too small (the residual keeps at least ~4 px a side)."""
    return max(1, min(levels, int(math.log2(max(2, min(shape[-2:])))) - 2))


class BandAnalysis(NamedTuple):
    """Both sources' Laplacian pyramids and, per band-pass level, ``band_statistics``."""

    visible: list[Any]
    thermal: list[Any]
    statistics: list[tuple[Any, Any]]


def analyse_bands(
    visible: Any, thermal: Any, levels: int, radius: int = 2, soft: bool = True, ops: Any = NUMPY_OPS
) -> BandAnalysis:
    """Everything of ``pyramid_fuse`` that does not need the weight map (it can run beside the detector).

    Laplacian pyramids of both sources with ``usable_levels`` band-pass levels and the match and
    energy balance of every band-pass pair (``soft``: see ``band_statistics``).
    """
    levels = usable_levels(tuple(visible.shape), levels)
    visible_bands = laplacian_pyramid(visible, levels, ops)
    thermal_bands = laplacian_pyramid(thermal, levels, ops)
    statistics = [band_statistics(v, t, radius, soft, ops)
                  for v, t in zip(visible_bands[:-1], thermal_bands[:-1], strict=True)]
    return BandAnalysis(visible_bands, thermal_bands, statistics)


def soft_selection(selection_sharpness: float, selection_bias: float) -> bool:
    """Whether ``pyramid_fuse`` selects bands softly or with evidence (``band_statistics``' ``soft``)."""
    return selection_sharpness > 0 or bool(selection_bias)


def pyramid_fuse(
    visible: Any,
    thermal: Any,
    weights: Any,
    levels: int = 4,
    threshold: float = 0.6,
    radius: int = 2,
    selection_sharpness: float = 0.0,
    base_temperature: float = 10.0,
    base_complement: float = 0.3,
    detail_gain: float = 1.0,
    selection_bias: float = 0.0,
    base_bias: float = 0.0,
    analysis: BandAnalysis | None = None,
    ops: Any = NUMPY_OPS,
) -> tuple[Any, Any]:
    """Fuse two luminances in a Laplacian pyramid under a visible-share weight map.

    Args:
        visible, thermal: float32 H×W on the 0..255 scale.
        weights: float32 H×W visible share in [0, 1] (the detector's map).
        levels: band-pass levels (fewer when the image is too small for them, ``usable_levels``).
        threshold, radius, selection_sharpness: ``match_select_band`` per band.
        base_temperature, base_complement: ``bright_base`` of the residual.
        detail_gain: multiplier of every fused band-pass layer.
        selection_bias: weight of the detector's log-odds (``weights`` at that level) in the selection
            where the bands disagree; 0 = energies alone.
        base_bias: weight of the detector's log-odds (coarsest level) in the residual's brightness
            selection; 0 = brightness alone.
        analysis: ``analyse_bands(visible, thermal, levels, radius, soft_selection(selection_sharpness,
            selection_bias))`` when already computed.
        ops: the primitives.

    Returns:
        (float32 H×W fused luminance, not clipped (the caller stretches/clips); the effective visible
        share per pixel: the shares used at every level, expanded and averaged coarse to fine, each
        finer level counting as much as all coarser ones together).
    """
    if analysis is None:
        soft = soft_selection(selection_sharpness, selection_bias)
        analysis = analyse_bands(visible, thermal, levels, radius, soft, ops)
    visible_bands, thermal_bands = analysis.visible, analysis.thermal
    levels = len(visible_bands) - 1
    weight_levels = gaussian_pyramid(weights, levels, ops)
    fused, shares = [], []
    for v, t, w, statistics in zip(visible_bands[:-1], thermal_bands[:-1], weight_levels[:-1], analysis.statistics,
                                   strict=True):
        evidence = _logit(w, ops) * ops.scalar(selection_bias) if selection_bias else None
        band, share = match_select_band(v, t, w, threshold, radius, selection_sharpness, evidence, ops, statistics)
        fused.append(band * ops.scalar(detail_gain) if detail_gain != 1.0 else band)
        shares.append(share)
    evidence = _logit(weight_levels[-1], ops) * ops.scalar(base_bias) if base_bias else None
    base, effective = bright_base(visible_bands[-1], thermal_bands[-1], base_temperature, base_complement, evidence,
                                  ops)
    fused.append(base)
    for share in reversed(shares):
        effective = (ops.pyr_up(effective, tuple(share.shape[-2:])) + share) * ops.scalar(0.5)
    return collapse_pyramid(fused, ops), effective


def _logit(weights: Any, ops: Any) -> Any:
    """``log(w / (1 − w))`` of a share map, bounded to about ±4.6 (w clipped to [0.01, 0.99])."""
    clipped = ops.clip(weights, 0.01, 0.99)
    return ops.log(clipped / (ops.scalar(1.0) - clipped))
