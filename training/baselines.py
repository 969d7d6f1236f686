"""Classic fast infrared + visible fusion methods, the ones a user would otherwise pick.

Six baselines, vectorised with NumPy/OpenCV, all with the same signature
``fuse_x(infrared, visible) -> BaselineResult``:

* ``mean``: per-pixel average.
* ``max``: per-pixel maximum of absolute values (for 0..255 images simply the maximum).
* ``lp``: Laplacian pyramid (Burt & Adelson), 4 detail levels, max-absolute detail, mean base.
* ``gff``: guided-filtering fusion (Li, Kang & Hu, IEEE TIP 22(7), 2013).
* ``liu2017``: Liu et al.'s rule (IJWMIP 16(3), 2018: a network's weight map applied in a full
  Laplacian pyramid with Burt's match/salience selection, threshold 0.6), with this project's
  shipped ``fast`` blur detector as the network.
* ``hmsd_gf``: hybrid multi-scale decomposition with guided filters (Zhou et al., Applied Optics
  55(23), 2016; Information Fusion 30, 2016).

Colour handling (every method): a BGR visible frame is converted to YCrCb; the methods fuse its
luminance Y with the infrared frame, and the visible chroma (Cr, Cb) is kept, so the output is BGR
of the visible frame's size. A gray visible frame gives a gray output. An infrared frame with three
equal channels is taken as its one channel; other colour infrared frames are converted to luminance.

Each result carries a weight map, the visible share in [0, 1] in the sense of the method (see each
function), for the sample grids of ``ivif-eval``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ivif_ros.data import to_single_channel
from ivif_ros.training.metrics import to_gray_u8

__all__ = [
    "BaselineResult",
    "BASELINES",
    "fuse_mean",
    "fuse_max",
    "fuse_laplacian_pyramid",
    "fuse_gff",
    "fuse_liu2017",
    "fuse_hmsd_gf",
    "fuse_baseline",
]


@dataclass(frozen=True)
class BaselineResult:
    """Output of a baseline.

    Attributes:
        fused: uint8, H×W (gray visible) or H×W×3 BGR (colour visible).
        weights: float32 H×W in [0, 1], the visible share as the method defines it.
    """

    fused: np.ndarray
    weights: np.ndarray


GrayFusion = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _round_to_u8(image: np.ndarray) -> np.ndarray:
    """Round half up (``floor(x + 0.5)``) and clip to 0..255."""
    return np.clip(np.floor(image + 0.5), 0, 255).astype(np.uint8)


def _split_inputs(infrared: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return (infrared Y, visible Y) as float64 0..255 and the visible YCrCb (None if gray).

    Raises:
        ValueError: wrong dtype/shape, or frames of different sizes.
    """
    if np.asarray(infrared).dtype != np.uint8 or np.asarray(visible).dtype != np.uint8:
        raise ValueError(
            f"baselines take uint8 frames, got infrared {np.asarray(infrared).dtype} and "
            f"visible {np.asarray(visible).dtype}"
        )
    infrared_y = to_gray_u8(infrared).astype(np.float64)
    visible = np.asarray(visible)
    if visible.ndim == 3 and visible.shape[2] == 3:
        visible = to_single_channel(visible, convert_colour=False)
    if visible.ndim == 3 and visible.shape[2] == 3:
        visible_ycrcb = cv2.cvtColor(visible, cv2.COLOR_BGR2YCrCb)
        visible_y = visible_ycrcb[:, :, 0].astype(np.float64)
    elif visible.ndim == 2:
        visible_ycrcb = None
        visible_y = visible.astype(np.float64)
    else:
        raise ValueError(f"visible must be H×W or H×W×3 BGR, got shape {visible.shape}")
    if infrared_y.shape != visible_y.shape:
        raise ValueError(f"infrared {infrared_y.shape} and visible {visible_y.shape} differ in size")
    return infrared_y, visible_y, visible_ycrcb


def _colour_aware(gray_fusion: GrayFusion, infrared: np.ndarray, visible: np.ndarray) -> BaselineResult:
    """Fuse the luminance with ``gray_fusion`` and put the visible chroma back."""
    infrared_y, visible_y, visible_ycrcb = _split_inputs(infrared, visible)
    fused_y, weights = gray_fusion(infrared_y, visible_y)
    fused_y_u8 = _round_to_u8(fused_y)
    if visible_ycrcb is None:
        fused = fused_y_u8
    else:
        fused_ycrcb = visible_ycrcb.copy()
        fused_ycrcb[:, :, 0] = fused_y_u8
        fused = cv2.cvtColor(fused_ycrcb, cv2.COLOR_YCrCb2BGR)
    return BaselineResult(fused=fused, weights=np.clip(weights, 0.0, 1.0).astype(np.float32))


# ---------------------------------------------------------------------------------------------
# mean and max
# ---------------------------------------------------------------------------------------------
def _mean_gray(infrared: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (infrared + visible) / 2.0, np.full(infrared.shape, 0.5)


def _max_gray(infrared: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    take_visible = np.abs(visible) >= np.abs(infrared)
    return np.where(take_visible, visible, infrared), take_visible.astype(np.float64)


def fuse_mean(infrared: np.ndarray, visible: np.ndarray) -> BaselineResult:
    """Average fusion ``F = floor((IR + VIS)/2 + 0.5)`` on luminance; weight map 0.5 everywhere."""
    return _colour_aware(_mean_gray, infrared, visible)


def fuse_max(infrared: np.ndarray, visible: np.ndarray) -> BaselineResult:
    """Max-absolute fusion ``F = VIS if |VIS| >= |IR| else IR`` (= max for 0..255 frames).

    Weight map: 1 where the visible pixel was taken, else 0.
    """
    return _colour_aware(_max_gray, infrared, visible)


# ---------------------------------------------------------------------------------------------
# Laplacian pyramid
# ---------------------------------------------------------------------------------------------
def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` detail layers (finest first) and the Gaussian base (OpenCV 5-tap kernel)."""
    pyramid = []
    current = image
    for _ in range(levels):
        smaller = cv2.pyrDown(current)
        expanded = cv2.pyrUp(smaller, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - expanded)
        current = smaller
    pyramid.append(current)
    return pyramid


def _collapse(pyramid: list[np.ndarray]) -> np.ndarray:
    image = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        image = cv2.pyrUp(image, dstsize=(detail.shape[1], detail.shape[0])) + detail
    return image


def fuse_laplacian_pyramid(infrared: np.ndarray, visible: np.ndarray, levels: int = 4) -> BaselineResult:
    """Laplacian-pyramid fusion: max-absolute detail coefficients, mean of the base.

    ``levels`` Laplacian detail layers ``L_k = G_k − expand(G_{k+1})`` (5-tap Burt–Adelson
    kernel, OpenCV ``pyrDown/pyrUp``, reflected borders) above the Gaussian base ``G_levels``.
    Detail: per coefficient the source with the larger ``|L_k|``; base: the average. The pyramid is
    collapsed and rounded to 8 bits. With ``levels = 4`` this reproduces the published "lp" row of
    ``peer-reference.md`` exactly on gray inputs.

    Weight map: the finest detail layer's choice (1 where the visible coefficient was taken).

    Raises:
        ValueError: ``levels < 1``, or frames smaller than ``2**levels`` pixels on a side.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")

    def fuse_gray(ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if min(ir.shape) < 2**levels:
            raise ValueError(f"a {ir.shape} frame is too small for {levels} pyramid levels")
        pyramid_ir = _laplacian_pyramid(ir, levels)
        pyramid_vis = _laplacian_pyramid(vis, levels)
        fused_pyramid = [
            np.where(np.abs(detail_vis) >= np.abs(detail_ir), detail_vis, detail_ir)
            for detail_ir, detail_vis in zip(pyramid_ir[:-1], pyramid_vis[:-1], strict=True)
        ]
        fused_pyramid.append((pyramid_ir[-1] + pyramid_vis[-1]) / 2.0)
        weights = (np.abs(pyramid_vis[0]) >= np.abs(pyramid_ir[0])).astype(np.float64)
        return _collapse(fused_pyramid), weights

    return _colour_aware(fuse_gray, infrared, visible)


# ---------------------------------------------------------------------------------------------
# Guided-filtering fusion (GFF)
# ---------------------------------------------------------------------------------------------
def _box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the part of the (2r+1)² window that lies inside the image (He's ``boxfilter``)."""
    size = (2 * radius + 1, 2 * radius + 1)
    sums = cv2.boxFilter(image, cv2.CV_64F, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    counts = cv2.boxFilter(np.ones_like(image), cv2.CV_64F, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return sums / counts


def _guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. guided filter in float64 (``eps = 1e-6`` on a 0..1 guide needs the precision)."""
    mean_guide = _box_mean(guide, radius)
    mean_source = _box_mean(source, radius)
    variance = _box_mean(guide * guide, radius) - mean_guide**2
    covariance = _box_mean(guide * source, radius) - mean_guide * mean_source
    slope = covariance / (variance + eps)
    offset = mean_source - slope * mean_guide
    return _box_mean(slope, radius) * guide + _box_mean(offset, radius)


def fuse_gff(
    infrared: np.ndarray,
    visible: np.ndarray,
    average_size: int = 31,
    saliency_size: int = 11,
    saliency_sigma: float = 5.0,
    base_radius: int = 45,
    base_eps: float = 0.3,
    detail_radius: int = 7,
    detail_eps: float = 1e-6,
) -> BaselineResult:
    """Guided-filtering fusion (Li, Kang & Hu 2013) with the paper's parameters.

    Follows the authors' MATLAB release, on images scaled to 0..1, replicated borders:

    1. saliency ``S = |I * [[0,1,0],[1,−4,1],[0,1,0]]| * Gaussian(11×11, σ 5)``;
    2. binary maps ``P_n = 1`` where source n has the largest saliency (ties: infrared, the first
       source);
    3. refinement ``W_B = GF(I, P; r 45, ε 0.3)``, ``W_D = GF(I, P; r 7, ε 1e-6)`` (guided filter
       guided by the source itself, windows truncated at the border), normalised to sum to 1 over
       the two sources. The release also quantised each weight to 1/255 steps before normalising;
       that is left out here: on msrs it lowers Nabf by 10 % and moves the scores away from the
       published GFF row of ``peer-reference.md``, which the unquantised weights match to ~1 %;
    4. two-scale split ``B = I * Z`` (31×31 mean filter), ``D = I − B``;
    5. ``F = Σ_n W_B,n B_n + W_D,n D_n``.

    Weight map: the visible base-layer weight ``W_B,vis``.
    """
    laplacian = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])

    def fuse_gray(ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sources = (ir / 255.0, vis / 255.0)
        saliency = [
            cv2.GaussianBlur(
                np.abs(cv2.filter2D(image, cv2.CV_64F, laplacian, borderType=cv2.BORDER_REPLICATE)),
                (saliency_size, saliency_size),
                saliency_sigma,
                borderType=cv2.BORDER_REPLICATE,
            )
            for image in sources
        ]
        visible_wins = saliency[1] > saliency[0]
        masks = ((~visible_wins).astype(np.float64), visible_wins.astype(np.float64))
        bases = [
            cv2.blur(image, (average_size, average_size), borderType=cv2.BORDER_REPLICATE) for image in sources
        ]
        layers = ((bases, base_radius, base_eps), ([s - b for s, b in zip(sources, bases, strict=True)],
                                                   detail_radius, detail_eps))
        fused = np.zeros_like(sources[0])
        visible_base_share = None
        for components, radius, eps in layers:
            refined = [_guided_filter(src, mask, radius, eps) for src, mask in zip(sources, masks, strict=True)]
            total = refined[0] + refined[1]
            degenerate = np.abs(total) < 1e-6
            visible_share = np.where(degenerate, 0.5, refined[1] / np.where(degenerate, 1.0, total))
            fused += (1.0 - visible_share) * components[0] + visible_share * components[1]
            if visible_base_share is None:
                visible_base_share = visible_share
        return fused * 255.0, visible_base_share

    return _colour_aware(fuse_gray, infrared, visible)


# ---------------------------------------------------------------------------------------------
# Liu et al. 2017: a network's weight map in a Laplacian pyramid with Burt's match/salience rule
# ---------------------------------------------------------------------------------------------
_DETECTORS: dict[str, object] = {}


def detector_weight_map(visible: np.ndarray, infrared: np.ndarray, model: str | None = None) -> np.ndarray:
    """Visible share in [0, 1] from a blur detector scored densely at full resolution.

    The window scores of ``model`` (None = the shipped ``fast`` detector; CPU, ``auto`` backend)
    become the mean window probability over the windows covering each pixel
    (``core.weight_map.soft_weight_map``), as Liu et al. average their patch scores.

    Args:
        visible, infrared: float64/float32 H×W on the 0..255 scale.
    """
    from ivif_ros.backends import create_backend
    from ivif_ros.core.weight_map import soft_weight_map
    from ivif_ros.models import load_model

    key = model or "<shipped>"
    if key not in _DETECTORS:
        net, _info = load_model(model)
        _DETECTORS[key] = create_backend("auto", model=net, device="cpu")
    backend = _DETECTORS[key]
    height, width = visible.shape
    pad_h, pad_w = max(0, backend.window - height), max(0, backend.window - width)
    pair = np.stack([visible, infrared]).astype(np.float32) * np.float32(1.0 / 255.0)
    if pad_h or pad_w:
        pair = np.pad(pair, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect")
    scores = backend(pair[None])[0, 0]
    weights = soft_weight_map(scores, backend.window, backend.stride, pair.shape[1:])
    return weights[:height, :width]


def _burt_band(visible: np.ndarray, infrared: np.ndarray, weights: np.ndarray, threshold: float) -> np.ndarray:
    """Burt's rule on one band: 3×3 energies (symmetric borders); match > threshold → weighted
    average by ``weights`` (visible share), else the band of larger energy."""
    def window_sum(values: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(values, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT)

    energy_vis = window_sum(visible * visible)
    energy_ir = window_sum(infrared * infrared)
    match = 2.0 * window_sum(visible * infrared) / (energy_vis + energy_ir + np.finfo(np.float64).eps)
    selected = np.where(energy_vis > energy_ir, visible, infrared)
    averaged = weights * visible + (1.0 - weights) * infrared
    return np.where(match > threshold, averaged, selected)


def fuse_liu2017(
    infrared: np.ndarray, visible: np.ndarray, threshold: float = 0.6, model: str | None = None
) -> BaselineResult:
    """Liu et al. 2017/2018 ("Infrared and visible image fusion with convolutional neural networks").

    1. weight map W (visible share) from the blur detector ``model`` on the two gray images
       (:func:`detector_weight_map`; the paper's siamese CNN is replaced by this project's detector,
       which answers the same question: which source is the more informative one here);
    2. Laplacian pyramids of both sources and a Gaussian pyramid of W, with as many levels as the
       image allows (``floor(log2(min(H, W)))``, down to a few pixels);
    3. every level, the residual included, fused by Burt's match/salience rule with threshold
       ``threshold`` (0.6 in the paper): weighted averaging by W where the local 3×3 match exceeds
       it, else the coefficient of larger local energy;
    4. collapse and round to 8 bits.

    Weight map: W.
    """
    def fuse_gray(ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weights = detector_weight_map(vis, ir, model).astype(np.float64)
        levels = max(1, int(np.floor(np.log2(min(ir.shape)))) - 1)
        pyramid_ir = _laplacian_pyramid(ir / 255.0, levels)
        pyramid_vis = _laplacian_pyramid(vis / 255.0, levels)
        weight_levels = [weights]
        for _ in range(levels):
            weight_levels.append(cv2.pyrDown(weight_levels[-1]))
        fused = [_burt_band(v, i, w, threshold) for v, i, w in zip(pyramid_vis, pyramid_ir, weight_levels, strict=True)]
        return _collapse(fused) * 255.0, weights

    return _colour_aware(fuse_gray, infrared, visible)


# ---------------------------------------------------------------------------------------------
# HMSD-GF: hybrid multi-scale decomposition with guided filters (Zhou et al. 2016)
# ---------------------------------------------------------------------------------------------
def _perceptual_saliency(image: np.ndarray, block: int = 40, alpha: float = 2.0) -> float:
    """Gradient-weighted mean local contrast of a 0..1 image.

    Per ``block``×``block`` tile: the tile's standard deviation, weighted by the sum of its Sobel
    gradient magnitudes to the power ``alpha``. A simplification of Zhou et al.'s perceptual
    saliency (their per-tile measure is a contrast-sensitivity-weighted error); used only for the
    ratio of the two sources that sets the fusion's gain ``lambda``.
    """
    grad_x = cv2.Sobel(image, cv2.CV_64F, 1, 0, ksize=3)
    grad_y = cv2.Sobel(image, cv2.CV_64F, 0, 1, ksize=3)
    magnitude = np.sqrt(grad_x**2 + grad_y**2)
    height, width = image.shape
    values, weights = [], []
    for top in range(0, height, block):
        for left in range(0, width, block):
            tile = image[top : top + block, left : left + block]
            values.append(tile.std())
            weights.append((magnitude[top : top + block, left : left + block] ** alpha).sum())
    total = float(np.sum(weights))
    return float(np.dot(values, weights) / total) if total > 0 else 0.0


def _hmsd_lambda(infrared: np.ndarray, visible: np.ndarray) -> float:
    """The paper's automatic gain: from the saliency ratio R = PS(IR)/PS(VIS), 100 below 0.8, 2000
    above 1.6, linear (2500·R − 1900) in between."""
    ratio = _perceptual_saliency(infrared) / max(_perceptual_saliency(visible), 1e-12)
    if ratio < 0.8:
        return 100.0
    if ratio > 1.6:
        return 2000.0
    return 2500.0 * ratio - 1900.0


def _gaussian_smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    half = int(np.floor(3 * sigma))
    return cv2.GaussianBlur(image, (2 * half + 1, 2 * half + 1), sigma, borderType=cv2.BORDER_REFLECT)


def fuse_hmsd_gf(infrared: np.ndarray, visible: np.ndarray, levels: int = 4) -> BaselineResult:
    """HMSD-GF (Zhou et al., Applied Optics 2016, without its visibility enhancement).

    On 0..1 images, for each source and ``j = 1..levels`` with radius ``r_j = 2^j`` and
    ``eps_j = 0.1 / 2^(j−1)``: a coarse smoothing ``M_j = GF(M_{j−1}; r_j, 100²)`` (the guided filter
    with a huge eps, close to a box mean) and an edge-preserving one ``L_j = GF(L_{j−1}; r_j,
    eps_j²)``; texture ``D_j = M_{j−1} − L_j`` and edges ``E_j = L_j − M_j``; the base is ``M_levels``.

    Fusion, coarse to fine: for ``j ≥ 2`` the infrared share ``C_j = atan(λ·P_j)/atan(λ)`` with
    ``P_j = max(|E_j,IR| − |E_j,VIS|, 0)`` normalised to its maximum, Gaussian-smoothed (σ 1),
    weights both ``E_j`` and ``D_j``; the base takes ``C`` of the coarsest level smoothed with
    σ = 64. At ``j = 1`` the edges are selected by larger magnitude (the choice smoothed, σ 1) and
    the texture by larger magnitude. λ comes from the sources' perceptual-saliency ratio
    (:func:`_hmsd_lambda`). The sum is scaled by 275/255 and clipped, as the authors' release does.

    Weight map: the visible share of the base.
    """
    def decompose(image: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        textures, edges = [], []
        coarse, edge_aware = image, image
        for level in range(1, levels + 1):
            radius, eps = 2**level, 0.1 / 2 ** (level - 1)
            next_coarse = _guided_filter(coarse, coarse, radius, 100.0**2)
            next_edge_aware = _guided_filter(edge_aware, edge_aware, radius, eps**2)
            textures.append(coarse - next_edge_aware)
            edges.append(next_edge_aware - next_coarse)
            coarse, edge_aware = next_coarse, next_edge_aware
        return textures, edges, coarse

    def fuse_gray(ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gain = _hmsd_lambda(ir / 255.0, vis / 255.0)
        textures_ir, edges_ir, base_ir = decompose(ir / 255.0)
        textures_vis, edges_vis, base_vis = decompose(vis / 255.0)
        fused = np.zeros_like(base_ir)
        base_share_ir = None
        for level in range(levels, 1, -1):
            index = level - 1
            excess = np.maximum(np.abs(edges_ir[index]) - np.abs(edges_vis[index]), 0.0)
            peak = excess.max()
            normalised = excess / peak if peak > 0 else excess
            share = np.arctan(gain * normalised) / np.arctan(gain)
            if base_share_ir is None:
                base_share_ir = _gaussian_smooth(share, 2.0 * 2.0 * 2**levels)
                fused += base_share_ir * base_ir + (1.0 - base_share_ir) * base_vis
            share = _gaussian_smooth(share, 1.0)
            thermal_part = edges_ir[index] + textures_ir[index]
            fused += share * thermal_part + (1.0 - share) * (edges_vis[index] + textures_vis[index])
        edge_share = _gaussian_smooth((np.abs(edges_vis[0]) < np.abs(edges_ir[0])).astype(np.float64), 1.0)
        fused += edge_share * edges_ir[0] + (1.0 - edge_share) * edges_vis[0]
        fused += np.where(np.abs(textures_vis[0]) < np.abs(textures_ir[0]), textures_ir[0], textures_vis[0])
        return fused * 275.0, 1.0 - base_share_ir

    return _colour_aware(fuse_gray, infrared, visible)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], BaselineResult]] = {
    "mean": fuse_mean,
    "max": fuse_max,
    "lp": fuse_laplacian_pyramid,
    "gff": fuse_gff,
    "liu2017": fuse_liu2017,
    "hmsd_gf": fuse_hmsd_gf,
}


def fuse_baseline(name: str, infrared: np.ndarray, visible: np.ndarray) -> BaselineResult:
    """Run the baseline called ``name`` (one of :data:`BASELINES`) with its default parameters.

    Raises:
        ValueError: unknown name or invalid frames.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    return BASELINES[name](infrared, visible)
