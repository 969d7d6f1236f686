"""Classic fast infrared + visible fusion methods, the ones a user would otherwise pick.

Four baselines, vectorised with NumPy/OpenCV, all with the same signature
``fuse_x(infrared, visible) -> BaselineResult``:

* ``mean``: per-pixel average.
* ``max``: per-pixel maximum of absolute values (for 0..255 images simply the maximum).
* ``lp``: Laplacian pyramid (Burt & Adelson), 4 detail levels, max-absolute detail, mean base.
* ``gff``: guided-filtering fusion (Li, Kang & Hu, IEEE TIP 22(7), 2013).

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
            for detail_ir, detail_vis in zip(pyramid_ir[:-1], pyramid_vis[:-1])
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
        layers = ((bases, base_radius, base_eps), ([s - b for s, b in zip(sources, bases)], detail_radius, detail_eps))
        fused = np.zeros_like(sources[0])
        visible_base_share = None
        for components, radius, eps in layers:
            refined = [_guided_filter(src, mask, radius, eps) for src, mask in zip(sources, masks)]
            total = refined[0] + refined[1]
            degenerate = np.abs(total) < 1e-6
            visible_share = np.where(degenerate, 0.5, refined[1] / np.where(degenerate, 1.0, total))
            fused += (1.0 - visible_share) * components[0] + visible_share * components[1]
            if visible_base_share is None:
                visible_base_share = visible_share
        return fused * 255.0, visible_base_share

    return _colour_aware(fuse_gray, infrared, visible)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], BaselineResult]] = {
    "mean": fuse_mean,
    "max": fuse_max,
    "lp": fuse_laplacian_pyramid,
    "gff": fuse_gff,
}


def fuse_baseline(name: str, infrared: np.ndarray, visible: np.ndarray) -> BaselineResult:
    """Run the baseline called ``name`` (one of :data:`BASELINES`) with its default parameters.

    Raises:
        ValueError: unknown name or invalid frames.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    return BASELINES[name](infrared, visible)
