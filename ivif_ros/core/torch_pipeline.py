"""The default fusion mode as torch tensor ops: the CUDA-resident frame path.

A port of ``FusionPipeline``'s ``default`` mode (thermal stretch, optional enhancement, detector
at reduced resolution, soft weight map, guided-filter refinement, mix with the local detail-energy
weights, brightness-selected base + weighted detail fusion, percentile output stretch, YCrCb colour
merge) in which every stage after the upload is a torch op on the detector's device:

* one upload per input from a pinned host buffer (``non_blocking``), one download per output
  (fused frame, weight map) into pinned buffers, and a single stream synchronisation per frame;
* no ``.item()``/``.cpu()`` inside the loop: data-dependent scalars (min/max, percentiles, the
  enhancement's compression) stay tensors and branches become ``torch.where``;
* the detector runs through ``backend.forward_tensor`` (torch or TensorRT on the same device);
* stage timings come from CUDA events read after the one synchronisation (CPU: ``perf_counter``).

The ops reproduce OpenCV's and numpy's semantics (``BORDER_REFLECT`` box filters, Gaussian blurs
with ``cv2.getGaussianKernel`` taps and ``BORDER_REFLECT_101``, ``INTER_AREA`` / ``INTER_LINEAR``
resizes as exact separable resampling matrices, ``np.percentile``'s linear interpolation, the
fixed-point YCrCb conversions), so on the same device and precision the outputs match the numpy
path to rounding (tested on CPU at two sizes, and CUDA vs CPU where CUDA exists). Input validation
is the numpy path's own ``prepare_pair`` (on the host, before the upload).
"""
from __future__ import annotations

import math
import time
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "TorchFusionPath",
    "box_mean",
    "gaussian_blur",
    "fast_guided_filter",
    "resize",
    "stretch_thermal",
    "enhance_luminance",
    "soft_weight_map",
    "split_base_detail",
    "detail_energy_weights",
    "saliency_detail_fuse",
    "percentile_stretch",
    "bgr_to_luma",
    "merge_luminance",
]

# OpenCV's fixed-point YCrCb coefficients (imgproc/src/color_yuv.simd.hpp, shift 14).
_SHIFT = 14
_HALF = 1 << (_SHIFT - 1)
_R2Y, _G2Y, _B2Y, _CR, _CB = 4899, 9617, 1868, 11682, 9241
_CR2R, _CR2G, _CB2G, _CB2B = 22987, -11698, -5636, 29049

_INDEX_CACHE: dict[tuple[int, int, bool, str], torch.Tensor] = {}
_KERNEL_CACHE: dict[tuple[float, str, torch.dtype], torch.Tensor] = {}
_MATRIX_CACHE: dict[tuple[int, int, str, str], torch.Tensor] = {}


# ---- resampling and filtering ------------------------------------------------------------
def _reflect_index(size: int, radius: int, device: torch.device, reflect_101: bool = False) -> torch.Tensor:
    """Source indices of a ``radius`` padding on each side of ``size`` samples.

    ``BORDER_REFLECT`` (``fedcba|abcdef|fedcba``) or, with ``reflect_101``, ``BORDER_REFLECT_101``
    (``fedcb|abcdef|edcba``); reflection repeats when ``radius`` exceeds ``size``, as in OpenCV.
    """
    key = (size, radius, reflect_101, str(device))
    index = _INDEX_CACHE.get(key)
    if index is None:
        positions = torch.arange(-radius, size + radius, dtype=torch.int64)
        if reflect_101:
            period = max(1, 2 * (size - 1))
            positions = positions % period
            index = torch.where(positions >= size, period - positions, positions)
        else:
            positions = positions % (2 * size)
            index = torch.where(positions >= size, 2 * size - 1 - positions, positions)
        index = index.to(device)
        _INDEX_CACHE[key] = index
    return index


def box_mean(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised box filter of side ``2*radius+1`` with OpenCV's ``BORDER_REFLECT``.

    Args:
        image: float tensor (..., H, W).
        radius: >= 1.

    Returns:
        float tensor of the same shape.
    """
    height, width = image.shape[-2:]
    size = 2 * radius + 1
    rows = image.index_select(-2, _reflect_index(height, radius, image.device))
    flat = rows.reshape(-1, 1, height + 2 * radius, width)
    mean = F.avg_pool2d(flat, (size, 1), stride=1)
    mean = mean.index_select(-1, _reflect_index(width, radius, image.device))
    mean = F.avg_pool2d(mean, (1, size), stride=1)
    return mean.reshape(image.shape)


def _gaussian_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """1-D taps of ``cv2.GaussianBlur(x, (0, 0), sigma)`` for float data (size ``round(8·sigma + 1) | 1``)."""
    key = (sigma, str(device), dtype)
    kernel = _KERNEL_CACHE.get(key)
    if kernel is None:
        size = int(round(sigma * 8.0 + 1.0)) | 1
        taps = cv2.getGaussianKernel(size, sigma, cv2.CV_32F).reshape(-1)
        kernel = torch.from_numpy(np.ascontiguousarray(taps)).to(device=device, dtype=dtype)
        _KERNEL_CACHE[key] = kernel
    return kernel


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Tensor twin of ``cv2.GaussianBlur(image, (0, 0), sigma)`` (``BORDER_REFLECT_101``).

    Args:
        image: float tensor (..., H, W).
        sigma: standard deviation in pixels, > 0.

    Returns:
        float tensor of the same shape.
    """
    height, width = image.shape[-2:]
    kernel = _gaussian_kernel(float(sigma), image.device, image.dtype)
    radius = kernel.numel() // 2
    flat = image.reshape(-1, 1, height, width)
    flat = flat.index_select(-2, _reflect_index(height, radius, image.device, reflect_101=True))
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    flat = flat.index_select(-1, _reflect_index(width, radius, image.device, reflect_101=True))
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    return flat.reshape(image.shape)


def _resample_matrix(src: int, dst: int, mode: str, device: torch.device) -> torch.Tensor:
    """(dst, src) matrix of OpenCV's 1-D ``INTER_AREA`` (downscale) or ``INTER_LINEAR`` weights."""
    key = (src, dst, mode, str(device))
    matrix = _MATRIX_CACHE.get(key)
    if matrix is not None:
        return matrix
    weights = np.zeros((dst, src), dtype=np.float64)
    scale = src / dst
    if mode == "area" and scale > 1.0:
        for out in range(dst):
            start, stop = out * scale, min((out + 1) * scale, float(src))
            first, last = int(math.floor(start)), int(math.ceil(stop))
            for pixel in range(first, min(last, src)):
                overlap = min(stop, pixel + 1.0) - max(start, float(pixel))
                if overlap > 1e-9:
                    weights[out, pixel] = overlap
            weights[out] /= weights[out].sum()
    else:  # INTER_LINEAR (and INTER_AREA upscaling, which OpenCV does bilinearly)
        for out in range(dst):
            position = (out + 0.5) * scale - 0.5
            left = int(math.floor(position))
            frac = position - left
            if left < 0:
                left, frac = 0, 0.0
            if left >= src - 1:
                left, frac = src - 1, 0.0
            weights[out, left] += 1.0 - frac
            if frac > 0.0:
                weights[out, left + 1] += frac
    matrix = torch.from_numpy(weights.astype(np.float32)).to(device)
    _MATRIX_CACHE[key] = matrix
    return matrix


def resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """OpenCV-compatible resize of a float (..., H, W) tensor to ``size`` = (height, width).

    Args:
        image: float tensor.
        size: output (height, width).
        mode: ``"area"`` (``INTER_AREA``) or ``"linear"`` (``INTER_LINEAR``).

    Returns:
        float tensor (..., height, width); the input itself when the size is unchanged.
    """
    height, width = image.shape[-2:]
    if (height, width) == tuple(size):
        return image
    rows = _resample_matrix(height, size[0], mode, image.device).to(image.dtype)
    cols = _resample_matrix(width, size[1], mode, image.device).to(image.dtype)
    return rows @ image @ cols.t()


def fast_guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float, subsample: int = 1) -> torch.Tensor:
    """Tensor twin of ``core.guided_filter.fast_guided_filter`` (He & Sun 2015), same parameters.

    Args:
        guide: float (H, W) guidance image.
        src: float (H, W) image to filter (may be ``guide``).
        radius: box radius at full resolution, >= 1.
        eps: regularisation in the guide's squared units, > 0.
        subsample: coefficient resolution divisor.

    Returns:
        float (H, W).

    Raises:
        ValueError: shape mismatch or invalid parameters.
    """
    if guide.ndim != 2 or src.shape != guide.shape:
        raise ValueError(f"guide and src must be equal 2-D shapes, got {tuple(guide.shape)} and {tuple(src.shape)}")
    if radius < 1 or eps <= 0 or subsample < 1:
        raise ValueError(f"need radius >= 1, eps > 0, subsample >= 1; got {radius}, {eps}, {subsample}")
    height, width = guide.shape
    subsample = int(min(subsample, max(1, min(height, width) // 4)))
    same = src is guide
    if subsample > 1:
        small = (max(1, height // subsample), max(1, width // subsample))
        stacked = guide[None] if same else torch.stack([guide, src])
        stacked = resize(stacked, small, "area")
        guide_s, src_s = stacked[0], stacked[0 if same else 1]
        radius_s = max(1, int(round(radius / subsample)))
    else:
        guide_s, src_s, radius_s = guide, src, radius
    if same:
        means = box_mean(torch.stack([guide_s, guide_s * guide_s]), radius_s)
        mean_g, mean_s, corr_gg = means[0], means[0], means[1]
        corr_gs = corr_gg
    else:
        means = box_mean(torch.stack([guide_s, src_s, guide_s * src_s, guide_s * guide_s]), radius_s)
        mean_g, mean_s, corr_gs, corr_gg = means[0], means[1], means[2], means[3]
    var_g = corr_gg - mean_g * mean_g
    cov_gs = corr_gs - mean_g * mean_s
    a = cov_gs / (var_g + eps)
    b = mean_s - a * mean_g
    coefficients = box_mean(torch.stack([a, b]), radius_s)
    if subsample > 1:
        coefficients = resize(coefficients, (height, width), "linear")
    return coefficients[0] * guide + coefficients[1]


# ---- enhancement ---------------------------------------------------------------------------
def _minmax_to_255(image: torch.Tensor) -> torch.Tensor:
    """Min–max to 0..255; a constant image maps to 0 (no host sync: the branch is a ``where``)."""
    low, high = image.amin(), image.amax()
    span = high - low
    scale = torch.where(span < 1e-12, torch.zeros_like(span), 255.0 / span.clamp_min(1e-12))
    return (image - low) * scale


def stretch_thermal(image: torch.Tensor, method: str, percentiles: tuple[float, float], integer_levels: int | None) -> torch.Tensor:
    """Tensor twin of ``core.enhance.stretch_thermal``.

    Args:
        image: (H, W) tensor: integer counts (uint8/uint16 data as int32) or float.
        method: ``auto``, ``minmax`` or ``percentile``.
        percentiles: (low, high) percent.
        integer_levels: 256 for uint8 data, 65536 for uint16, None for float data.

    Returns:
        float32 (H, W) in 0..255.
    """
    if method == "auto":
        method = "minmax" if integer_levels == 256 else "percentile"
    values = image.float()
    if method == "minmax":
        return _minmax_to_255(values)
    low_pct, high_pct = percentiles
    if integer_levels is not None:
        counts = torch.zeros(integer_levels, dtype=torch.float64, device=image.device)
        counts.index_add_(0, image.reshape(-1).long(), torch.ones(image.numel(), dtype=torch.float64, device=image.device))
        cumulative = torch.cumsum(counts, 0)
        # (total * pct) / 100 in float64, as the numpy path computes it
        targets = cumulative[-1] * torch.tensor([low_pct, high_pct], dtype=torch.float64, device=image.device) / 100.0
        bounds = torch.searchsorted(cumulative, targets, side="left").to(torch.float64)
    else:
        quantiles = torch.tensor([low_pct / 100.0, high_pct / 100.0], dtype=torch.float64, device=image.device)
        bounds = torch.quantile(values.reshape(-1).double(), quantiles)
    low, high = bounds[0], bounds[1]
    span = high - low
    scale = (255.0 / span.clamp_min(1e-12)).float()
    stretched = ((values - low.float()) * scale).clamp_(0.0, 255.0)
    return torch.where(span < 1e-12, _minmax_to_255(values), stretched)


def enhance_luminance(
    luminance: torch.Tensor,
    radius_fraction: float = 0.04,
    eps: float = 0.01,
    target_contrast: float = 4.0,
    detail_gain: float = 1.0,
) -> torch.Tensor:
    """Tensor twin of ``core.enhance.enhance_luminance`` (SEED-ALGORITHM §3, with ``rescale=True``).

    Returns:
        float32 (H, W) in 0..255.
    """
    image = _minmax_to_255(luminance.float())
    height, width = image.shape
    radius = max(1, int(math.floor(radius_fraction * max(height, width))))
    subsample = max(1, radius // 4)
    normalised = image * (1.0 / 255.0)
    base = (fast_guided_filter(normalised, normalised, radius, eps, subsample) * 255.0).clamp_min_(0.0)
    log_base = torch.log(base + 1.0)
    detail = torch.log(image + 1.0) - log_base
    log_min, log_max = log_base.amin(), log_base.amax()
    compression = (math.log(target_contrast) / (log_max - log_min).clamp_min(1e-6)).clamp_max(8.0)
    exponent = log_base * compression + detail * detail_gain + (1.0 - compression) * log_max
    return torch.exp(exponent).clamp_(0.0, 255.0)


# ---- weights and fusion --------------------------------------------------------------------
def _accumulate_windows(values: torch.Tensor, window: int, stride: int, shape: tuple[int, int]) -> torch.Tensor:
    """Tensor twin of ``core.weight_map.accumulate_windows`` for a (C, nh, nw) stack."""
    if window % stride:
        raise ValueError(f"window {window} must be a multiple of stride {stride}")
    blocks = window // stride
    padded = F.pad(values[:, None], (blocks - 1,) * 4)
    sums = F.avg_pool2d(padded, blocks, stride=1) * float(blocks * blocks)
    covered = sums.repeat_interleave(stride, dim=-2).repeat_interleave(stride, dim=-1)
    height, width = shape
    covered = covered[..., :height, :width]
    pad_bottom, pad_right = height - covered.shape[-2], width - covered.shape[-1]
    if pad_bottom or pad_right:
        covered = F.pad(covered, (0, pad_right, 0, pad_bottom), mode="replicate")
    return covered[:, 0]


def soft_weight_map(scores: torch.Tensor, window: int, stride: int, shape: tuple[int, int], temperature: float = 1.0) -> torch.Tensor:
    """Tensor twin of ``core.weight_map.soft_weight_map``: mean window probability per pixel.

    Returns:
        float32 (H, W) visible share in [0, 1].
    """
    probabilities = torch.sigmoid((scores.float() / temperature).clamp(-30.0, 30.0))
    sums, counts = _accumulate_windows(torch.stack([probabilities, torch.ones_like(probabilities)]), window, stride, shape)
    return sums / counts.clamp_min(1.0)


def split_base_detail(image: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor twin of ``core.fusion.split_base_detail`` for (..., H, W): (box-mean base, detail)."""
    base = box_mean(image, radius)
    return base, image - base


def detail_energy_weights(
    detail_visible: torch.Tensor, detail_infrared: torch.Tensor, sigma: float = 2.0, sharpness: float = 4.0
) -> torch.Tensor:
    """Tensor twin of ``core.fusion.detail_energy_weights``: ``sigmoid(sharpness·log(E_vis / E_ir))``.

    Returns:
        float32 (H, W) visible share in [0, 1].
    """
    energy = gaussian_blur(torch.stack([detail_visible, detail_infrared]).abs(), sigma) + 0.01
    log_energy = torch.log(energy)
    return torch.sigmoid((sharpness * (log_energy[0] - log_energy[1])).clamp_(-30.0, 30.0))


def saliency_detail_fuse(
    visible_layers: tuple[torch.Tensor, torch.Tensor],
    infrared_layers: tuple[torch.Tensor, torch.Tensor],
    detail_weights: torch.Tensor,
    base_temperature: float = 10.0,
    base_complement: float = 0.3,
    detail_gain: float = 1.0,
) -> torch.Tensor:
    """Tensor twin of ``core.fusion.saliency_detail_fuse`` (bright base, weighted detail).

    Returns:
        float32 (H, W) fused luminance, not clipped.
    """
    base_vis, detail_vis = visible_layers
    base_ir, detail_ir = infrared_layers
    base_weights = torch.sigmoid(((base_vis - base_ir) * (1.0 / base_temperature)).clamp_(-30.0, 30.0))
    bright = base_ir + base_weights * (base_vis - base_ir)
    dark = base_vis + base_ir - bright
    fused = bright + base_complement * (dark - dark.mean())
    return fused + detail_gain * (detail_ir + detail_weights * (detail_vis - detail_ir))


def percentile_stretch(image: torch.Tensor, clip_percent: float) -> torch.Tensor:
    """Tensor twin of ``core.fusion.percentile_stretch`` (bounds from the ``[::2, ::2]`` subsample).

    The bounds stay on the device (``torch.quantile``, linear interpolation in float64 as
    ``np.percentile``); a near-constant image (bounds closer than 1e-3) is only clipped.

    Returns:
        float32 (H, W) in 0..255.
    """
    if clip_percent <= 0:
        return image.clamp(0.0, 255.0)
    sample = image[::2, ::2].reshape(-1).double()
    levels = torch.tensor(
        [clip_percent / 100.0, (100.0 - clip_percent) / 100.0], dtype=torch.float64, device=image.device
    )
    low, high = torch.quantile(sample, levels)
    span = high - low
    scale = (255.0 / span.clamp_min(1e-3)).float()
    stretched = (image - low.float()) * scale
    return torch.where(span < 1e-3, image, stretched).clamp_(0.0, 255.0)


def _descale(value: torch.Tensor) -> torch.Tensor:
    return (value + _HALF) >> _SHIFT


def bgr_to_luma(bgr: torch.Tensor) -> torch.Tensor:
    """Y of OpenCV's ``COLOR_BGR2YCrCb`` for uint8 data, bit-exact.

    Args:
        bgr: (H, W, 3) integer tensor (uint8 values).

    Returns:
        int32 (H, W) in 0..255.
    """
    pixels = bgr.to(torch.int32)
    return _descale(pixels[..., 2] * _R2Y + pixels[..., 1] * _G2Y + pixels[..., 0] * _B2Y)


def merge_luminance(bgr: torch.Tensor, luminance: torch.Tensor) -> torch.Tensor:
    """Tensor twin of ``core.fusion.merge_luminance`` (bit-exact for equal ``luminance``).

    Args:
        bgr: (H, W, 3) uint8 visible frame.
        luminance: float (H, W) fused luminance 0..255.

    Returns:
        uint8 (H, W, 3) BGR.
    """
    pixels = bgr.to(torch.int32)
    blue, green, red = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    luma = _descale(red * _R2Y + green * _G2Y + blue * _B2Y)
    cr = _descale((red - luma) * _CR + (128 << _SHIFT)).clamp(0, 255) - 128
    cb = _descale((blue - luma) * _CB + (128 << _SHIFT)).clamp(0, 255) - 128
    new_luma = (luminance + 0.5).clamp(0.0, 255.0).to(torch.int32)
    out = torch.stack(
        [
            new_luma + _descale(cb * _CB2B),
            new_luma + _descale(cb * _CB2G + cr * _CR2G),
            new_luma + _descale(cr * _CR2R),
        ],
        dim=-1,
    )
    return out.clamp_(0, 255).to(torch.uint8)


# ---- the frame path ------------------------------------------------------------------------
class _StageClock:
    """Per-stage milliseconds: CUDA events (read after the frame's one sync) or ``perf_counter``."""

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._marks: list[tuple[str, Any]] = []
        self._start = self._now()

    def _now(self) -> Any:
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def lap(self, stage: str) -> None:
        self._marks.append((stage, self._now()))

    def timings(self) -> dict[str, float]:
        """Call after the synchronisation."""
        result: dict[str, float] = {}
        previous = self._start
        for stage, mark in self._marks:
            elapsed = previous.elapsed_time(mark) if self._cuda else (mark - previous) * 1e3
            result[stage] = result.get(stage, 0.0) + float(elapsed)
            previous = mark
        return result


class TorchFusionPath:
    """Runs ``FusionPipeline``'s default mode on the detector backend's device.

    Args:
        backend: a ``DetectorBackend`` (torch/TensorRT on CUDA keep everything on the GPU; others
            work through their ``forward_tensor`` host round trip).
        device: torch device for the frame path (default: the backend's device).

    The per-shape pinned host buffers are reused across frames; results are copied out of them,
    so returned arrays stay valid.
    """

    def __init__(self, backend: Any, device: str | torch.device | None = None) -> None:
        self.backend = backend
        self.device = torch.device(device if device is not None else getattr(backend, "device", "cpu"))
        self._pinned = self.device.type == "cuda"
        self._host: dict[tuple, torch.Tensor] = {}

    # -- transfers
    def _buffer(self, role: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (role, shape, dtype)
        buffer = self._host.get(key)
        if buffer is None:
            buffer = torch.empty(shape, dtype=dtype, pin_memory=self._pinned)
            self._host[key] = buffer
        return buffer

    def _upload(self, role: str, array: np.ndarray) -> torch.Tensor:
        """One host→device copy (through a pinned buffer on CUDA); uint16 travels as int16 bits."""
        if array.dtype == np.uint16:
            array = array.view(np.int16)
        elif array.dtype.kind == "f" and array.dtype != np.float32:
            array = array.astype(np.float32)
        if not self._pinned:
            # torch refuses to share read-only memory (zero-copy ROS messages): copy those.
            return torch.from_numpy(np.array(array, copy=not array.flags.writeable, order="C"))
        host = self._buffer(role, array.shape, torch.from_numpy(np.empty(0, array.dtype)).dtype)
        host.numpy()[...] = array
        return host.to(self.device, non_blocking=True)

    def _download(self, role: str, tensor: torch.Tensor) -> torch.Tensor:
        if not self._pinned:
            return tensor
        host = self._buffer(role, tuple(tensor.shape), tensor.dtype)
        host.copy_(tensor, non_blocking=True)
        return host

    # -- the frame
    @torch.inference_mode()
    def __call__(self, ir: np.ndarray, vis: np.ndarray, config: Any):
        """Fuse one pair with ``config`` (a ``FusionConfig`` in default mode).

        Returns:
            ``FusionResult`` (numpy outputs, timings per stage as in the numpy path).

        Raises:
            FusionInputError: invalid input (checked on the host by ``prepare_pair``).
        """
        from . import pipeline as numpy_pipeline

        clock = _StageClock(self.device)
        thermal_np, visible_np, warnings = numpy_pipeline.prepare_pair(ir, vis, config)
        levels = {np.dtype(np.uint8): 256, np.dtype(np.uint16): 65536}.get(thermal_np.dtype)
        thermal = self._upload("ir", thermal_np)
        visible = self._upload("vis", visible_np)
        if levels == 65536:
            thermal = thermal.to(torch.int32) & 0xFFFF
        colour = visible.ndim == 3
        visible_lum = (bgr_to_luma(visible) if colour else visible).float()
        clock.lap("prepare")

        thermal_lum = stretch_thermal(thermal, config.thermal_stretch, tuple(config.thermal_percentiles), levels)
        enhance_kwargs = dict(target_contrast=config.target_contrast, detail_gain=config.enhance_detail_gain)
        if config.thermal_enhance > 0:
            enhanced = enhance_luminance(thermal_lum, **enhance_kwargs)
            thermal_lum = thermal_lum + config.thermal_enhance * (enhanced - thermal_lum)
        if config.visible_enhance > 0:
            enhanced = enhance_luminance(visible_lum, **enhance_kwargs)
            visible_lum = visible_lum + config.visible_enhance * (enhanced - visible_lum)
        clock.lap("enhance")

        backend = self.backend
        height, width = visible_lum.shape
        scale = max(config.detector_scale, backend.window / min(height, width))
        pair = torch.stack([visible_lum, thermal_lum])
        if abs(scale - 1.0) > 1e-6:
            det_size = (max(backend.window, round(height * scale)), max(backend.window, round(width * scale)))
            pair = resize(pair, det_size, "area" if scale < 1.0 else "linear")
        det_shape = tuple(pair.shape[-2:])
        scores = backend.forward_tensor((pair * (1.0 / 255.0))[None])[0, 0].to(self.device)
        clock.lap("detect")

        weights = soft_weight_map(scores, backend.window, backend.stride, det_shape, config.weight_temperature)
        if weights.shape != (height, width):
            weights = resize(weights[None], (height, width), "linear")[0]
        if config.smoothing_radius > 0:
            guide = torch.maximum(visible_lum, thermal_lum) * (1.0 / 255.0)
            radius = config.smoothing_radius
            weights = fast_guided_filter(guide, weights, radius, config.smoothing_eps, max(1, radius // 4)).clamp_(0.0, 1.0)

        bases, details = split_base_detail(torch.stack([visible_lum, thermal_lum]), config.base_radius)
        visible_layers, thermal_layers = (bases[0], details[0]), (bases[1], details[1])
        if config.detector_mix < 1.0:
            energy = detail_energy_weights(details[0], details[1], config.detail_sigma)
            weights = energy + config.detector_mix * (weights - energy)
        clock.lap("weights")

        fused_lum = saliency_detail_fuse(
            visible_layers, thermal_layers, weights, config.base_temperature, config.base_complement, config.detail_gain
        )
        fused_lum = percentile_stretch(fused_lum, config.output_stretch)
        if colour:
            fused = merge_luminance(visible, fused_lum)
        else:
            fused = (fused_lum + 0.5).clamp_(0.0, 255.0).to(torch.uint8)
        fused_host = self._download("fused", fused)
        weights_host = self._download("weights", weights.float().contiguous())
        clock.lap("fuse")
        if self._pinned:
            torch.cuda.current_stream(self.device).synchronize()
        fused_np = fused_host.numpy().copy() if self._pinned else fused_host.numpy()
        weights_np = weights_host.numpy().copy() if self._pinned else weights_host.numpy()
        return numpy_pipeline.FusionResult(fused=fused_np, weights=weights_np, timings=clock.timings(), warnings=warnings)
