"""Objective quality metrics for infrared + visible image fusion (vectorised NumPy/SciPy/OpenCV).

Eleven metrics, as used by the paper this product reproduces and by the field's published tables:
EI, CE, SF, EN, Qabf, SCD, Nabf, MI, SD, DF and VIFF. Every metric works on grayscale: a colour
(BGR) image is converted to 8-bit luminance first (:func:`to_gray_u8`).

Conventions (checked against ``../shared/metric-reference.csv``, which follows the seed's MATLAB
evaluation run in Octave; every one of its 12 rows is matched to better than 0.01 %):

* Sources are called A = infrared and B = visible; F is the fused image. Only VIFF is sensitive to
  the order, and only where the two sources tie (see :func:`viff`).
* Pixel scale is 0..255 for every metric (MATLAB's ``double(uint8)``), never 0..1.
* Histogram metrics (EN, CE, MI) use 256 bins of integer grey levels and log base 2 (bits).
* Sobel-based metrics follow the MATLAB code verbatim, including its border handling: EI uses
  ``imfilter(..., 'replicate')``; Qabf uses ``conv2(..., 'same')`` (zero padding); Nabf uses
  Kumar's ``sobel_fn`` (kernels divided by 8, mirror extension without edge repetition).
* Where a formula divides 0 by 0 the result is documented per metric.

"Higher is better" is recorded in :data:`HIGHER_IS_BETTER`; only CE and Nabf are lower-better.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np
from scipy import ndimage

from ivif_ros.data import to_single_channel

__all__ = [
    "METRIC_NAMES",
    "HIGHER_IS_BETTER",
    "METRICS",
    "to_gray_u8",
    "edge_intensity",
    "cross_entropy",
    "spatial_frequency",
    "entropy",
    "qabf",
    "scd",
    "nabf",
    "mutual_information",
    "standard_deviation",
    "average_gradient",
    "viff",
    "compute_metrics",
    "UNRANKED_NAMES",
    "target_retention",
    "frame_change",
    "sequence_flicker",
]

#: Octave/MATLAB ``rgb2gray`` weights for R, G, B.
_LUMA_WEIGHTS_RGB = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Return the 8-bit grayscale image that every metric is computed on.

    * H×W uint8: returned as is.
    * H×W×3 whose three channels are equal: that channel.
    * H×W×3 BGR: luminance ``0.298936 R + 0.587043 G + 0.114021 B`` rounded half away from zero
      (Octave ``rgb2gray`` on uint8).
    * Any other numeric H×W (float, uint16): rounded half away from zero and clipped to 0..255;
      the caller is responsible for putting it on a 0..255 scale first.

    Args:
        image: H×W or H×W×3 (BGR) array.

    Returns:
        uint8 array, H×W.

    Raises:
        ValueError: if the array is not 2-D or 3-D with 1 or 3 channels, or holds NaN.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (1, 3):
        array = to_single_channel(array, convert_colour=False)
    if array.ndim == 3 and array.shape[2] == 3:
        blue, green, red = array[:, :, 0], array[:, :, 1], array[:, :, 2]
        weights_r, weights_g, weights_b = _LUMA_WEIGHTS_RGB
        luma = weights_r * red.astype(np.float64) + weights_g * green + weights_b * blue
        return np.clip(np.floor(luma + 0.5), 0, 255).astype(np.uint8)
    if array.ndim != 2:
        raise ValueError(f"expected an H×W or H×W×3 image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    values = array.astype(np.float64)
    if np.isnan(values).any():
        raise ValueError("image holds NaN values")
    return np.clip(np.sign(values) * np.floor(np.abs(values) + 0.5), 0, 255).astype(np.uint8)


def _as_float(image: np.ndarray) -> np.ndarray:
    return to_gray_u8(image).astype(np.float64)


def _check_same_shape(*images: np.ndarray) -> None:
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"source and fused images must have the same size, got {sorted(shapes)}")


def _histogram(levels: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histogram of a uint8 image."""
    return np.bincount(levels.ravel(), minlength=256) / levels.size


# ---------------------------------------------------------------------------------------------
# Fused-image-only metrics
# ---------------------------------------------------------------------------------------------
def edge_intensity(fused: np.ndarray) -> float:
    """EI, edge intensity: mean Sobel gradient magnitude of F. Higher is better.

    ``EI = mean(sqrt(Gx² + Gy²))`` with ``Gx = F ⋆ S``, ``Gy = F ⋆ Sᵀ``,
    ``S = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]`` (MATLAB ``fspecial('sobel')``), replicated borders
    (``imfilter(F, S, 'replicate')``), pixel scale 0..255. Constant image → 0.
    """
    image = _as_float(fused)
    sobel = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
    grad_y = ndimage.correlate(image, sobel, mode="nearest")
    grad_x = ndimage.correlate(image, sobel.T, mode="nearest")
    return float(np.hypot(grad_x, grad_y).mean())


def spatial_frequency(fused: np.ndarray) -> float:
    """SF, spatial frequency. Higher is better.

    ``SF = sqrt(RF² + CF²)``, ``RF² = Σ (F[i,j] − F[i,j−1])² / (M·N)``,
    ``CF² = Σ (F[i,j] − F[i−1,j])² / (M·N)`` for an M×N image: both sums are divided by the full
    pixel count M·N (the MATLAB ``MySF`` convention), not by the number of differences.
    Constant image → 0.
    """
    image = _as_float(fused)
    row_frequency_sq = np.square(np.diff(image, axis=1)).sum() / image.size
    column_frequency_sq = np.square(np.diff(image, axis=0)).sum() / image.size
    return float(np.sqrt(row_frequency_sq + column_frequency_sq))


def entropy(fused: np.ndarray) -> float:
    """EN, Shannon entropy of F's 256-bin grey-level histogram, in bits. Higher is better.

    ``EN = −Σ_k p_k log2 p_k`` over non-empty bins (MATLAB ``entropy`` on uint8). Range 0..8;
    a constant image gives 0, a uniform histogram gives 8.
    """
    probabilities = _histogram(to_gray_u8(fused))
    probabilities = probabilities[probabilities > 0]
    return float(-(probabilities * np.log2(probabilities)).sum())


def standard_deviation(fused: np.ndarray) -> float:
    """SD, standard deviation of F (contrast). Higher is better.

    ``SD = sqrt(Σ (F − mean F)² / (M·N − 1))`` (MATLAB ``std2``, sample estimate), 0..255 scale.
    """
    return float(_as_float(fused).std(ddof=1))


def average_gradient(fused: np.ndarray) -> float:
    """DF, definition (average gradient). Higher is better.

    ``DF = Σ_{i<M, j<N} sqrt(((F[i,j+1] − F[i,j])² + (F[i+1,j] − F[i,j])²) / 2) / (M·N)``:
    forward differences over the (M−1)×(N−1) pixels that have both neighbours, summed, divided by
    the full pixel count M·N (the seed's MATLAB ``Definition`` convention; dividing by
    (M−1)(N−1) instead differs by < 0.6 % on 300×500 images). Constant image → 0.
    """
    image = _as_float(fused)
    diff_x = image[:-1, 1:] - image[:-1, :-1]
    diff_y = image[1:, :-1] - image[:-1, :-1]
    return float(np.sqrt((diff_x**2 + diff_y**2) / 2.0).sum() / image.size)


# ---------------------------------------------------------------------------------------------
# Metrics against the sources
# ---------------------------------------------------------------------------------------------
def cross_entropy(source_a: np.ndarray, source_b: np.ndarray, fused: np.ndarray) -> float:
    """CE, mean cross-entropy of the sources' histograms against F's, in bits. Lower is better.

    ``CE = (D(p_A ‖ p_F) + D(p_B ‖ p_F)) / 2`` with ``D(p ‖ q) = Σ_k p_k log2(p_k / q_k)`` over the
    bins where both p_k and q_k are non-zero (MATLAB ``OverallCrossEntropy``; the skipped bins
    make it a truncated KL divergence, which can be negative in contrived cases). F = A = B → 0.
    Symmetric in A and B.
    """
    levels_a, levels_b, levels_f = (to_gray_u8(x) for x in (source_a, source_b, fused))
    _check_same_shape(levels_a, levels_b, levels_f)
    fused_hist = _histogram(levels_f)
    total = 0.0
    for levels in (levels_a, levels_b):
        source_hist = _histogram(levels)
        both = (source_hist > 0) & (fused_hist > 0)
        total += float((source_hist[both] * np.log2(source_hist[both] / fused_hist[both])).sum())
    return total / 2.0


def _mutual_information_pair(levels_x: np.ndarray, levels_f: np.ndarray) -> float:
    joint = np.bincount(
        levels_x.ravel().astype(np.int64) * 256 + levels_f.ravel(), minlength=256 * 256
    ).reshape(256, 256) / levels_x.size
    marginal_x = joint.sum(axis=1)
    marginal_f = joint.sum(axis=0)
    rows, cols = np.nonzero(joint)
    values = joint[rows, cols]
    return float((values * np.log2(values / (marginal_x[rows] * marginal_f[cols]))).sum())


def mutual_information(source_a: np.ndarray, source_b: np.ndarray, fused: np.ndarray) -> float:
    """MI, mutual information ``MI(A, F) + MI(B, F)`` in bits. Higher is better.

    ``MI(X, F) = Σ_{x,f} p(x,f) log2(p(x,f) / (p(x) p(f)))`` from the 256×256 joint histogram of
    grey levels. This is the real MI: the seed's MATLAB evaluation passed whole 2-D images to a
    vector routine, so its "MI" equals exactly 2·EN(F) (see SEED-ALGORITHM.md); that value is
    not reported here. F = A = B → 2·EN(A). Symmetric in A and B.
    """
    levels_a, levels_b, levels_f = (to_gray_u8(x) for x in (source_a, source_b, fused))
    _check_same_shape(levels_a, levels_b, levels_f)
    return _mutual_information_pair(levels_a, levels_f) + _mutual_information_pair(levels_b, levels_f)


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (MATLAB ``corr2``); 0 where either input has zero variance."""
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    if denominator == 0:
        return 0.0
    return float((x * y).sum() / denominator)


def scd(source_a: np.ndarray, source_b: np.ndarray, fused: np.ndarray) -> float:
    """SCD, sum of the correlations of differences (Aslantas & Bendes 2015). Higher is better.

    ``SCD = corr(F − B, A) + corr(F − A, B)`` with ``corr`` the Pearson correlation (MATLAB
    ``corr2``), 0..255 scale; range −2..2. Where a difference image or a source is constant the
    correlation is undefined (MATLAB gives NaN); it is taken as 0 here, so F = A gives
    ``corr(A − B, A)``. Symmetric in A and B.
    """
    image_a, image_b, image_f = (_as_float(x) for x in (source_a, source_b, fused))
    _check_same_shape(image_a, image_b, image_f)
    return _correlation(image_f - image_b, image_a) + _correlation(image_f - image_a, image_b)


# Xydeas–Petrovic Qabf, parameters of the MATLAB analysis_Qabf.m (R. Hong, 2007) used by VIFB.
_QABF_TG, _QABF_KG, _QABF_DG = 0.9994, -15.0, 0.5
_QABF_TA, _QABF_KA, _QABF_DA = 0.9879, -22.0, 0.8
_SOBEL_Y = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _qabf_strength_orientation(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    response_x = ndimage.convolve(image, _SOBEL_X, mode="constant", cval=0.0)
    response_y = ndimage.convolve(image, _SOBEL_Y, mode="constant", cval=0.0)
    strength = np.hypot(response_x, response_y)
    safe_x = np.where(response_x == 0, 1.0, response_x)
    orientation = np.where(response_x == 0, np.pi / 2, np.arctan(response_y / safe_x))
    return strength, orientation


def _qabf_preservation(
    strength_s: np.ndarray, orientation_s: np.ndarray, strength_f: np.ndarray, orientation_f: np.ndarray
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(
            strength_s > strength_f,
            strength_f / strength_s,
            np.where(strength_s == strength_f, strength_f, strength_s / strength_f),
        )
    alignment = 1.0 - np.abs(orientation_s - orientation_f) / (np.pi / 2)
    strength_term = _QABF_TG / (1.0 + np.exp(_QABF_KG * (relative - _QABF_DG)))
    orientation_term = _QABF_TA / (1.0 + np.exp(_QABF_KA * (alignment - _QABF_DA)))
    return strength_term * orientation_term


def qabf(source_a: np.ndarray, source_b: np.ndarray, fused: np.ndarray) -> float:
    """Qabf, Xydeas–Petrovic edge-information preservation (2000), Sobel. Higher is better.

    For each image X: Sobel responses ``s_x = X * [[-1,0,1],[-2,0,2],[-1,0,1]]``,
    ``s_y = X * [[1,2,1],[0,0,0],[-1,-2,-1]]`` (true convolution, zero padding, MATLAB
    ``conv2(X, h, 'same')``), strength ``g = sqrt(s_x² + s_y²)``, orientation ``α = atan(s_y/s_x)``
    (π/2 where s_x = 0). For source S ∈ {A, B}:

    * relative strength ``G = g_F/g_S`` if ``g_S > g_F``, else ``g_S/g_F``; quirk of the MATLAB code
      kept: where ``g_S == g_F`` it is set to ``g_F`` rather than 1 (inert for integer images,
      whose non-zero Sobel strengths are ≥ 1 and saturate the sigmoid alike);
    * orientation agreement ``Aα = 1 − |α_S − α_F| / (π/2)`` (the orientation term of the MATLAB
      code, not the modulo-π variant);
    * ``Q_SF = Tg/(1 + e^{kg (G − Dg)}) · Ta/(1 + e^{ka (Aα − Da)})`` with Tg = 0.9994,
      kg = −15, Dg = 0.5, Ta = 0.9879, ka = −22, Da = 0.8;

    ``Qabf = Σ (Q_AF g_A + Q_BF g_B) / Σ (g_A + g_B)`` (weights g^L with L = 1). Range 0..≈0.975:
    F = A = B gives ``Tg · Ta/(1 + e^{ka (1 − Da)}) ≈ 0.9753``. The zero padding gives even a
    constant image edges along its border; NaN only when both sources are all zero (0/0).
    Symmetric in A and B.
    """
    image_a, image_b, image_f = (_as_float(x) for x in (source_a, source_b, fused))
    _check_same_shape(image_a, image_b, image_f)
    strength_a, orientation_a = _qabf_strength_orientation(image_a)
    strength_b, orientation_b = _qabf_strength_orientation(image_b)
    strength_f, orientation_f = _qabf_strength_orientation(image_f)
    denominator = float((strength_a + strength_b).sum())
    if denominator == 0:
        return float("nan")
    preserved_a = _qabf_preservation(strength_a, orientation_a, strength_f, orientation_f)
    preserved_b = _qabf_preservation(strength_b, orientation_b, strength_f, orientation_f)
    return float((preserved_a * strength_a + preserved_b * strength_b).sum() / denominator)


# Petrovic's objective-fusion parameters as used by Kumar's objective_fusion_perform_fn.m.
_NABF_TD, _NABF_WT_MIN, _NABF_LG = 2.0, 0.001, 1.5
_NABF_NRG, _NABF_KG, _NABF_SIGMA_G = 0.9999, 19.0, 0.5
_NABF_NRA, _NABF_KA, _NABF_SIGMA_A = 0.9995, 22.0, 0.5
_KUMAR_SOBEL_X = _SOBEL_X / 8.0


def _nabf_strength_orientation(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Kumar's sobel_fn: kernels /8, "periodic" extension that is in fact a mirror without edge
    # repetition (scipy mode="mirror"), conv2 'valid'; gv is the response to the x-kernel.
    response_v = ndimage.convolve(image, _KUMAR_SOBEL_X, mode="mirror")
    response_h = ndimage.convolve(image, _KUMAR_SOBEL_X.T, mode="mirror")
    strength = np.hypot(response_v, response_h)
    flat = (response_v == 0) & (response_h == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        orientation = np.where(flat, 0.0, np.arctan(response_v / response_h))
    return strength, orientation


def _nabf_preservation(
    strength_s: np.ndarray, orientation_s: np.ndarray, strength_f: np.ndarray, orientation_f: np.ndarray
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(strength_s > strength_f, strength_f / strength_s, strength_s / strength_f)
    relative = np.where((strength_s == 0) | (strength_f == 0), 0.0, relative)
    alignment = np.abs(np.abs(orientation_s - orientation_f) - np.pi / 2) * 2.0 / np.pi
    strength_term = _NABF_NRG / (1.0 + np.exp(-_NABF_KG * (relative - _NABF_SIGMA_G)))
    orientation_term = _NABF_NRA / (1.0 + np.exp(-_NABF_KA * (alignment - _NABF_SIGMA_A)))
    return np.sqrt(strength_term * orientation_term)


def nabf(source_a: np.ndarray, source_b: np.ndarray, fused: np.ndarray) -> float:
    """Nabf, noise/artefacts added by fusion, Kumar's modification (2013) of Petrovic's N_ABF.

    Lower is better; range 0..1. Per image X: Kumar's ``sobel_fn`` (Sobel kernels divided by 8,
    borders by mirror extension without repeating the edge pixel), strength ``g``, orientation
    ``α = atan(g_v/g_h)`` (0 where both are 0). Per source S:

    * ``G = min(g_S, g_F)/max(g_S, g_F)`` (0 where either is 0), ``Aα = |(|α_S − α_F| − π/2)|·2/π``;
    * ``Q_SF = sqrt(Nrg/(1 + e^{−kg (G − σg)}) · Nra/(1 + e^{−ka (Aα − σa)}))`` with
      Nrg = 0.9999, kg = 19, σg = 0.5, Nra = 0.9995, ka = 22, σa = 0.5;
    * weight ``w_S = g_S^1.5`` where ``g_S ≥ Td = 2``, else 0.001 (0..255 scale);

    ``Nabf = Σ n·((1 − Q_AF) w_A + (1 − Q_BF) w_B) / Σ (w_A + w_B)`` with ``n = 1`` where
    ``g_F > g_A`` and ``g_F > g_B`` (F has an edge stronger than both sources), else 0.
    F = A gives 0; added noise raises it. Symmetric in A and B.
    """
    image_a, image_b, image_f = (_as_float(x) for x in (source_a, source_b, fused))
    _check_same_shape(image_a, image_b, image_f)
    strength_a, orientation_a = _nabf_strength_orientation(image_a)
    strength_b, orientation_b = _nabf_strength_orientation(image_b)
    strength_f, orientation_f = _nabf_strength_orientation(image_f)
    preserved_a = _nabf_preservation(strength_a, orientation_a, strength_f, orientation_f)
    preserved_b = _nabf_preservation(strength_b, orientation_b, strength_f, orientation_f)
    weight_a = np.where(strength_a >= _NABF_TD, strength_a**_NABF_LG, _NABF_WT_MIN)
    weight_b = np.where(strength_b >= _NABF_TD, strength_b**_NABF_LG, _NABF_WT_MIN)
    artefact = (strength_f > strength_a) & (strength_f > strength_b)
    numerator = (artefact * ((1.0 - preserved_a) * weight_a + (1.0 - preserved_b) * weight_b)).sum()
    return float(numerator / (weight_a + weight_b).sum())


# VIFF (Han, Cai, Cao & Xu, Information Fusion 14(2), 2013), parameters of VIFF_Public.m.
_VIFF_NOISE_VARIANCE = 0.005 * 255 * 255
_VIFF_SCALE_WEIGHTS = np.array([1.0, 0.0, 0.15, 1.0]) / 2.15
_VIFF_C = 1e-7
#: Smallest side with a non-empty window at all four VIFF scales (17-px 'valid' filter, then
#: 9, 5, 3 px, each scale after a 2× decimation).
VIFF_MIN_SIDE = 41


def _gaussian_valid(image: np.ndarray, size: int) -> np.ndarray:
    """MATLAB ``filter2(fspecial('gaussian', size, size/5), image, 'valid')``, separably."""
    offsets = np.arange(size) - (size - 1) / 2.0
    kernel = np.exp(-(offsets**2) / (2.0 * (size / 5.0) ** 2))
    kernel /= kernel.sum()
    filtered = cv2.sepFilter2D(image, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    half = size // 2
    return filtered[half : image.shape[0] - half, half : image.shape[1] - half]


def _viff_scales(reference: np.ndarray, distorted: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per scale: (VID map, VIND map, gain map) of Sheikh & Bovik's VIF as revised by Han et al."""
    scales = []
    for scale in range(1, 5):
        size = 2 ** (4 - scale + 1) + 1
        if scale > 1:
            reference = _gaussian_valid(reference, size)[::2, ::2]
            distorted = _gaussian_valid(distorted, size)[::2, ::2]
        mean_r = _gaussian_valid(reference, size)
        mean_d = _gaussian_valid(distorted, size)
        var_r = np.maximum(_gaussian_valid(reference * reference, size) - mean_r**2, 0.0)
        var_d = np.maximum(_gaussian_valid(distorted * distorted, size) - mean_d**2, 0.0)
        covariance = _gaussian_valid(reference * distorted, size) - mean_r * mean_d
        gain = covariance / (var_r + 1e-10)
        noise_var = var_d - gain * covariance
        flat_r = var_r < 1e-10
        gain[flat_r] = 0.0
        noise_var[flat_r] = var_d[flat_r]
        var_r[flat_r] = 0.0
        flat_d = var_d < 1e-10
        gain[flat_d] = 0.0
        noise_var[flat_d] = 0.0
        negative = gain < 0
        noise_var[negative] = var_d[negative]
        gain[negative] = 0.0
        noise_var = np.maximum(noise_var, 1e-10)
        vid = np.log10(1.0 + gain**2 * var_r / (noise_var + _VIFF_NOISE_VARIANCE))
        vind = np.log10(1.0 + var_r / _VIFF_NOISE_VARIANCE)
        scales.append((vid, vind, gain))
    return scales


def viff(source_a: np.ndarray, source_b: np.ndarray, fused: np.ndarray) -> float:
    """VIFF, visual information fidelity for fusion (Han et al. 2013). Higher is better.

    Four scales (Gaussian windows 17, 9, 5, 3 px, σ = size/5, 'valid' filtering, 2× decimation
    between scales), 0..255 scale, visual noise variance σ_n² = 0.005·255². Per scale and source S
    the VIF model of Sheikh & Bovik gives gain ``g``, source variance ``σ_S²`` and distortion
    variance ``σ_v²`` per window; ``VID = log10(1 + g² σ_S² / (σ_v² + σ_n²))`` and
    ``VIND = log10(1 + σ_S² / σ_n²)``. Per window the source with the smaller gain is kept (B on a
    tie, as in VIFF_Public.m: the only place where the A/B order matters), then
    ``VIFF_k = Σ(VID + C) / Σ(VIND + C)``, C = 1e-7, and
    ``VIFF = Σ_k p_k VIFF_k`` with p = (1, 0, 0.15, 1)/2.15. F = A = B gives ≈ 1.
    NaN for images smaller than :data:`VIFF_MIN_SIDE` (41) pixels on a side, where the coarsest
    scale has no window (MATLAB fails there).
    """
    image_a, image_b, image_f = (_as_float(x) for x in (source_a, source_b, fused))
    _check_same_shape(image_a, image_b, image_f)
    if min(image_f.shape) < VIFF_MIN_SIDE:
        return float("nan")
    scales_a = _viff_scales(image_a, image_f)
    scales_b = _viff_scales(image_b, image_f)
    total = 0.0
    for weight, (vid_a, vind_a, gain_a), (vid_b, vind_b, gain_b) in zip(
        _VIFF_SCALE_WEIGHTS, scales_a, scales_b, strict=True
    ):
        take_a = gain_a < gain_b
        vid = np.where(take_a, vid_a, vid_b)
        vind = np.where(take_a, vind_a, vind_b)
        total += weight * float((vid + _VIFF_C).sum() / (vind + _VIFF_C).sum())
    return total


def _fused_only(metric: Callable[[np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    def wrapped(source_a: np.ndarray, source_b: np.ndarray, fused: np.ndarray) -> float:
        return metric(fused)

    wrapped.__name__ = metric.__name__
    wrapped.__doc__ = metric.__doc__
    return wrapped


#: name -> f(A, B, F); the order of the published tables.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "EI": _fused_only(edge_intensity),
    "CE": cross_entropy,
    "SF": _fused_only(spatial_frequency),
    "EN": _fused_only(entropy),
    "Qabf": qabf,
    "SCD": scd,
    "Nabf": nabf,
    "MI": mutual_information,
    "SD": _fused_only(standard_deviation),
    "DF": _fused_only(average_gradient),
    "VIFF": viff,
}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
#: Direction of each metric: True = higher is better (all but CE and Nabf).
HIGHER_IS_BETTER: dict[str, bool] = {name: name not in ("CE", "Nabf") for name in METRIC_NAMES}


def compute_metrics(
    infrared: np.ndarray,
    visible: np.ndarray,
    fused: np.ndarray,
    names: Iterable[str] | None = None,
) -> dict[str, float]:
    """Compute metrics for one fused pair (A = infrared, B = visible), all at the same size.

    Args:
        infrared: H×W source A (uint8, or any numeric on a 0..255 scale; colour → luminance).
        visible: H×W or H×W×3 BGR source B.
        fused: H×W or H×W×3 BGR fused image.
        names: metrics to compute (default: all of :data:`METRIC_NAMES`).

    Returns:
        dict metric name -> value, in the order requested.

    Raises:
        ValueError: unknown metric name, or images of different sizes.
    """
    selected = tuple(names) if names is not None else METRIC_NAMES
    unknown = [name for name in selected if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {list(METRIC_NAMES)}")
    gray_a, gray_b, gray_f = (to_gray_u8(x) for x in (infrared, visible, fused))
    _check_same_shape(gray_a, gray_b, gray_f)
    return {name: METRICS[name](gray_a, gray_b, gray_f) for name in selected}


# ---------------------------------------------------------------------------------------------
# Beyond the 11 ranked metrics: thermal target retention (per pair) and flicker (per sequence)
# ---------------------------------------------------------------------------------------------
#: Extra per-pair columns reported beside the 11 metrics but not part of the mean rank.
UNRANKED_NAMES: tuple[str, ...] = ("retention",)

#: Radius (px) of the disc that grows the hot region into its surrounding ring.
RETENTION_RING_RADIUS = 15


def target_retention(infrared: np.ndarray, fused: np.ndarray, ring_radius: int = RETENTION_RING_RADIUS) -> float:
    """How much of the thermal targets' contrast to their surroundings the fused image keeps.

    Hot region R: thermal pixels above ``max(98th percentile, mean + 2.5·σ)``; ring: R dilated by
    a disc of radius ``ring_radius`` px, minus R. Retention = (mean_F(R) − mean_F(ring)) /
    (mean_T(R) − mean_T(ring)), both on the 0..255 grayscale (colour fused → luminance). 1 = the
    targets stand out as much as in the thermal image, 0 = faded into their surroundings, < 0 =
    inverted. Higher is better.

    Returns:
        the ratio, or NaN when the thermal image has no hot region with a ring darker than it
        (e.g. a constant image).
    """
    thermal = _as_float(infrared)
    fused_gray = _as_float(fused)
    _check_same_shape(thermal, fused_gray)
    threshold = max(float(np.percentile(thermal, 98.0)), float(thermal.mean() + 2.5 * thermal.std()))
    region = thermal > threshold
    if not region.any():
        return math.nan
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_radius + 1, 2 * ring_radius + 1))
    ring = cv2.dilate(region.astype(np.uint8), disc).astype(bool) & ~region
    if not ring.any():
        return math.nan
    thermal_contrast = thermal[region].mean() - thermal[ring].mean()
    if thermal_contrast <= 1e-9:
        return math.nan
    return float((fused_gray[region].mean() - fused_gray[ring].mean()) / thermal_contrast)


def frame_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of the 0..255 luminance of two consecutive frames (grey levels)."""
    first, second = _as_float(previous), _as_float(current)
    _check_same_shape(first, second)
    return float(np.abs(second - first).mean())


def sequence_flicker(
    infrared_frames: Sequence[np.ndarray], visible_frames: Sequence[np.ndarray], fused_frames: Sequence[np.ndarray]
) -> dict[str, float]:
    """Temporal stability of a fused stream against its input streams.

    Each value is the mean over consecutive frame pairs of :func:`frame_change`:
    ``fused_change``, ``infrared_change``, ``visible_change``; ``flicker`` = fused_change ÷ the
    larger input change (≤ 1: the fused stream changes no more than its busiest input).

    Raises:
        ValueError: fewer than two frames, or streams of different lengths.
    """
    count = len(fused_frames)
    if count < 2 or len(infrared_frames) != count or len(visible_frames) != count:
        raise ValueError(
            f"need >= 2 frames in three equally long streams, got {len(infrared_frames)}, "
            f"{len(visible_frames)}, {count}"
        )

    def mean_change(frames: Sequence[np.ndarray]) -> float:
        return float(np.mean([frame_change(frames[i - 1], frames[i]) for i in range(1, count)]))

    changes = {
        "fused_change": mean_change(fused_frames),
        "infrared_change": mean_change(infrared_frames),
        "visible_change": mean_change(visible_frames),
    }
    largest_input = max(changes["infrared_change"], changes["visible_change"])
    changes["flicker"] = changes["fused_change"] / largest_input if largest_input > 0 else math.nan
    return changes
