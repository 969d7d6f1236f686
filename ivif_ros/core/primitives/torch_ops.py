"""The primitives as torch tensor ops on one device (CUDA-resident frames, or the CPU for tests).

Images are float32 tensors (B, 1, H, W) (B frames of one plane); colour frames stay (B, H, W, 3) as
uploaded; per-image scalars are (B, 1, 1, 1) tensors (float64 where numpy uses Python floats), so
no value ever returns to the host inside a frame: data-dependent branches become ``torch.where``.

The ops reproduce OpenCV's and numpy's semantics (``BORDER_REFLECT`` box filters, Gaussian blurs
with ``cv2.getGaussianKernel`` taps and ``BORDER_REFLECT_101``, ``INTER_AREA`` / ``INTER_LINEAR``
resizes as exact separable resampling matrices, ``np.percentile``'s linear interpolation, the
fixed-point YCrCb conversions), so the fusion modes give the numpy path's outputs to rounding.
On CUDA each input is uploaded once from a pinned buffer (``non_blocking``), each output
downloaded once into one, with a single synchronisation per frame — of the ops' own CUDA stream,
never the legacy default stream (the whole frame, detector included, runs on it); stage times come
from CUDA events read after it. Constants (percentile levels) are cached per device, so a warmed
frame builds no tensor from Python data (no hidden host→device copy). The pinned buffers are kept
in a bounded LRU (``MAX_HOST_BUFFERS``). A batch of B frames is uploaded and downloaded with one
copy each (``upload_batch``, ``download_batch``); ``mark``/``wait`` let a caller keep one batch in
flight while it prepares the next (double buffering: alternate ``role`` slots).
"""
from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .numpy_ops import sample_step

__all__ = ["TorchOps"]

# OpenCV's fixed-point YCrCb coefficients (imgproc/src/color_yuv.simd.hpp, shift 14).
_SHIFT = 14
_HALF = 1 << (_SHIFT - 1)
_R2Y, _G2Y, _B2Y, _CR, _CB = 4899, 9617, 1868, 11682, 9241
_CR2R, _CR2G, _CB2G, _CB2B = 22987, -11698, -5636, 29049

_INDEX_CACHE: dict[tuple[int, int, bool, str], torch.Tensor] = {}
_KERNEL_CACHE: dict[tuple[float, str, torch.dtype], torch.Tensor] = {}
_BURT_TAPS: dict[tuple[float, str, torch.dtype], torch.Tensor] = {}
_MATRIX_CACHE: dict[tuple[int, int, str, str], torch.Tensor] = {}
_CONSTANT_CACHE: dict[tuple[tuple[float, ...], str], torch.Tensor] = {}


def _float64_constant(values: Sequence[float], device: torch.device) -> torch.Tensor:
    """``values`` as a float64 tensor on ``device``, built once (no host→device copy per frame)."""
    key = (tuple(float(v) for v in values), str(device))
    tensor = _CONSTANT_CACHE.get(key)
    if tensor is None:
        with torch.inference_mode(False):
            tensor = torch.tensor(key[0], dtype=torch.float64).to(device)
        _CONSTANT_CACHE[key] = tensor
    return tensor


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


def _descale(value: torch.Tensor) -> torch.Tensor:
    return (value + _HALF) >> _SHIFT


class _Clock:
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

    def result(self) -> dict[str, float]:
        """Call after ``TorchOps.synchronize``."""
        result: dict[str, float] = {}
        previous = self._start
        for stage, mark in self._marks:
            elapsed = previous.elapsed_time(mark) if self._cuda else (mark - previous) * 1e3
            result[stage] = result.get(stage, 0.0) + float(elapsed)
            previous = mark
        return result


class TorchOps:
    """Torch implementation of the primitive set on ``device`` (see ``ivif_ros.core.primitives``).

    The per-shape pinned host buffers are reused across frames; ``finish`` copies results out of
    them, so returned arrays stay valid.
    """

    name = "torch"
    #: No detector thread: on CUDA the work is queued on the device anyway.
    overlap_detection = False

    #: Pinned host buffers kept (least recently used dropped first): 4 roles × 2 slots × 3 sizes.
    MAX_HOST_BUFFERS = 24

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self._pinned = self.device.type == "cuda"
        self._host: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.stream = torch.cuda.Stream(device=self.device) if self._pinned else None

    # ---- frames in and out -----------------------------------------------------------------
    @contextlib.contextmanager
    def frame_context(self) -> Iterator[None]:
        """Context of one frame's work: ``torch.inference_mode``, and on CUDA the ops' own stream."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            if self.stream is not None:
                self.stream.wait_stream(torch.cuda.current_stream(self.device))
                stack.enter_context(torch.cuda.stream(self.stream))
            yield

    def clock(self) -> _Clock:
        return _Clock(self.device)

    def _buffer(self, role: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (role, shape, dtype)
        buffer = self._host.get(key)
        if buffer is None:
            buffer = torch.empty(shape, dtype=dtype, pin_memory=self._pinned)
            self._host[key] = buffer
            while len(self._host) > self.MAX_HOST_BUFFERS:
                self._host.popitem(last=False)
        else:
            self._host.move_to_end(key)
        return buffer

    @staticmethod
    def _host_view(array: np.ndarray) -> tuple[np.ndarray, bool]:
        """The array as uploaded (uint16 as int16 bits, other floats as float32) and whether it was uint16."""
        if array.dtype == np.uint16:
            return array.view(np.int16), True
        if array.dtype.kind == "f" and array.dtype != np.float32:
            return array.astype(np.float32), False
        return array, False

    def upload(self, array: np.ndarray, role: str) -> torch.Tensor:
        """One host→device copy: H×W → (1, 1, H, W), H×W×3 → (1, H, W, 3); uint16 arrives as int32.

        On CUDA the copy goes through the pinned buffer of ``role``, which the next upload of that
        role overwrites: upload each role once per frame (batches: one role per frame), before
        ``synchronize``.
        """
        array, is_uint16 = self._host_view(array)
        if not self._pinned:
            # torch refuses to share read-only memory (zero-copy ROS messages): copy those.
            tensor = torch.from_numpy(np.array(array, copy=not array.flags.writeable, order="C"))
        else:
            host = self._buffer(role, array.shape, torch.from_numpy(np.empty(0, array.dtype)).dtype)
            host.numpy()[...] = array
            tensor = host.to(self.device, non_blocking=True)
        tensor = tensor[None, None] if tensor.ndim == 2 else tensor[None]
        return tensor.to(torch.int32) & 0xFFFF if is_uint16 else tensor

    def upload_batch(self, arrays: Sequence[np.ndarray], role: str) -> torch.Tensor:
        """B equal arrays in one host→device copy: (B, 1, H, W) or (B, H, W, 3); uint16 arrives as int32."""
        views = [self._host_view(array) for array in arrays]
        first, is_uint16 = views[0]
        if not self._pinned:
            tensor = torch.from_numpy(np.stack([view for view, _ in views]))
        else:
            host = self._buffer(role, (len(views), *first.shape), torch.from_numpy(np.empty(0, first.dtype)).dtype)
            stacked = host.numpy()
            for index, (view, _) in enumerate(views):
                stacked[index] = view
            tensor = host.to(self.device, non_blocking=True)
        tensor = tensor[:, None] if first.ndim == 2 else tensor
        return tensor.to(torch.int32) & 0xFFFF if is_uint16 else tensor

    def download(self, image: torch.Tensor, role: str) -> torch.Tensor:
        """Start the device→host copy of a (1, 1, H, W) or (1, H, W, 3) result."""
        return self.download_batch(image, role)[0]

    def download_batch(self, image: torch.Tensor, role: str) -> torch.Tensor:
        """Start the device→host copy of (B, 1, H, W) → (B, H, W) or (B, H, W, 3) results."""
        image = image[:, 0] if image.shape[1] == 1 else image
        if not self._pinned:
            return image
        host = self._buffer(role, tuple(image.shape), image.dtype)
        host.copy_(image.contiguous(), non_blocking=True)
        return host

    def synchronize(self) -> None:
        """Wait for this frame's work on the device (once per frame, before ``finish``)."""
        if self.stream is not None:
            self.stream.synchronize()

    def mark(self) -> Any:
        """A point in the work queued so far (a CUDA event on the ops' stream; None on the CPU)."""
        if self.stream is None:
            return None
        event = torch.cuda.Event()
        event.record(self.stream)
        return event

    def wait(self, mark: Any) -> None:
        """Block until the work before ``mark`` is done (then its downloads may be read)."""
        if mark is not None:
            mark.synchronize()

    def finish(self, downloaded: torch.Tensor) -> np.ndarray:
        """A downloaded result as a numpy array of its own (after ``synchronize``)."""
        return downloaded.numpy().copy() if self._pinned else downloaded.contiguous().numpy()

    def to_float(self, image: torch.Tensor) -> torch.Tensor:
        return image.float()

    def is_8bit(self, image: torch.Tensor) -> bool:
        return image.dtype == torch.uint8

    def integer_levels(self, image: torch.Tensor) -> int | None:
        """256 for uint8 data, 65536 for uint16 data (uploaded as int32), None for float data."""
        return {torch.uint8: 256, torch.int32: 65536}.get(image.dtype)

    # ---- scalars (per image, (B, 1, 1, 1)) ---------------------------------------------------
    def scalar(self, value: Any) -> Any:
        return value.float() if isinstance(value, torch.Tensor) else value

    def choose(self, condition: Any, if_true: Callable[[], Any], if_false: Callable[[], Any]) -> Any:
        if not isinstance(condition, torch.Tensor):
            return if_true() if condition else if_false()
        return torch.where(condition, if_true(), if_false())

    def scalar_max(self, value: Any, low: float) -> Any:
        return value.clamp_min(low) if isinstance(value, torch.Tensor) else max(value, low)

    def scalar_min(self, value: Any, high: float) -> Any:
        return value.clamp_max(high) if isinstance(value, torch.Tensor) else min(value, high)

    def minmax(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return image.amin(dim=(-2, -1), keepdim=True).double(), image.amax(dim=(-2, -1), keepdim=True).double()

    def mean(self, image: torch.Tensor) -> torch.Tensor:
        return image.mean(dim=(-2, -1), keepdim=True)

    def percentiles(
        self, image: torch.Tensor, percents: Sequence[float], step: int = 1, max_samples: int | None = None
    ) -> list[torch.Tensor]:
        """``np.percentile`` (linear, float64) of ``image[..., ::s, ::s]`` per frame, s = ``sample_step(shape,
        step, max_samples)``."""
        step = sample_step(image.shape, step, max_samples)
        sample = image[..., ::step, ::step].reshape(image.shape[0], -1).double()
        levels = _float64_constant([p / 100.0 for p in percents], image.device)
        bounds = torch.quantile(sample, levels, dim=-1)  # (k, B)
        return [bound.view(-1, 1, 1, 1) for bound in bounds]

    def histogram_percentiles(self, image: torch.Tensor, percents: Sequence[float]) -> list[torch.Tensor]:
        """Integer percentiles from the per-frame histogram (first level reaching the count)."""
        levels = self.integer_levels(image)
        batch = image.shape[0]
        flat = image.reshape(batch, -1).long() + torch.arange(batch, device=image.device)[:, None] * levels
        counts = torch.zeros(batch * levels, dtype=torch.float64, device=image.device)
        counts.index_add_(0, flat.reshape(-1), torch.ones(flat.numel(), dtype=torch.float64, device=image.device))
        cumulative = torch.cumsum(counts.view(batch, levels), dim=-1)
        # total * p / 100 in float64, as the numpy path computes it
        targets = cumulative[:, -1:] * _float64_constant(percents, image.device) / 100.0
        bounds = torch.searchsorted(cumulative, targets.contiguous(), side="left").double()  # (B, k)
        return [bounds[:, k].view(-1, 1, 1, 1) for k in range(len(percents))]

    # ---- pixel-wise ------------------------------------------------------------------------
    def zeros_like(self, image: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(image, dtype=torch.float32)

    def ones_like(self, image: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(image, dtype=torch.float32)

    def clip(self, image: torch.Tensor, low: float, high: float, inplace: bool = False) -> torch.Tensor:
        return image.clamp_(low, high) if inplace else image.clamp(low, high)

    def clip_min(self, image: torch.Tensor, low: float) -> torch.Tensor:
        return image.clamp_min(low)

    def maximum(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(a, b)

    def abs(self, image: torch.Tensor) -> torch.Tensor:
        return image.abs()

    def log(self, image: torch.Tensor) -> torch.Tensor:
        return torch.log(image)

    def exp(self, image: torch.Tensor) -> torch.Tensor:
        return torch.exp(image)

    def sigmoid(self, values: torch.Tensor) -> torch.Tensor:
        """``1 / (1 + exp(-x))`` with x clipped to ±30."""
        return torch.sigmoid(values.clamp(-30.0, 30.0))

    # ---- neighbourhoods --------------------------------------------------------------------
    def box_mean(self, image: torch.Tensor, radius: int) -> torch.Tensor:
        """Mean over the (2r+1)² box with OpenCV's ``BORDER_REFLECT``, for (..., H, W)."""
        height, width = image.shape[-2:]
        size = 2 * radius + 1
        rows = image.index_select(-2, _reflect_index(height, radius, image.device))
        flat = rows.reshape(-1, 1, height + 2 * radius, width)
        mean = F.avg_pool2d(flat, (size, 1), stride=1)
        mean = mean.index_select(-1, _reflect_index(width, radius, image.device))
        mean = F.avg_pool2d(mean, (1, size), stride=1)
        return mean.reshape(image.shape)

    def gaussian_blur(self, image: torch.Tensor, sigma: float) -> torch.Tensor:
        """``cv2.GaussianBlur(image, (0, 0), sigma)`` (``BORDER_REFLECT_101``) for (..., H, W)."""
        height, width = image.shape[-2:]
        kernel = _gaussian_kernel(float(sigma), image.device, image.dtype)
        radius = kernel.numel() // 2
        flat = image.reshape(-1, 1, height, width)
        flat = flat.index_select(-2, _reflect_index(height, radius, image.device, reflect_101=True))
        flat = self._per_frame(lambda planes: F.conv2d(planes, kernel.view(1, 1, -1, 1)), flat, image.shape[0])
        flat = flat.index_select(-1, _reflect_index(width, radius, image.device, reflect_101=True))
        flat = self._per_frame(lambda planes: F.conv2d(planes, kernel.view(1, 1, 1, -1)), flat, image.shape[0])
        return flat.reshape(image.shape)

    def _per_frame(
        self, convolve: Callable[[torch.Tensor], torch.Tensor], planes: torch.Tensor, frames: int
    ) -> torch.Tensor:
        """``convolve(planes)``; on the CPU one frame's planes at a time.

        oneDNN's CPU convolutions round differently for different batch sizes (up to 3e-5 in a
        blur, 3e-6 in detector scores), so on the CPU — where the torch path exists to be checked
        against single calls — a batch is convolved frame by frame and equals single calls exactly.
        On CUDA the whole batch goes in one call.
        """
        if self._pinned or frames <= 1:
            return convolve(planes)
        return torch.cat([convolve(chunk) for chunk in planes.chunk(frames)])

    def _burt_taps(self, image: torch.Tensor, scale: float) -> torch.Tensor:
        """[1 4 6 4 1] × ``scale`` on the image's device and dtype (cached)."""
        key = (scale, str(image.device), image.dtype)
        taps = _BURT_TAPS.get(key)
        if taps is None:
            taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=image.dtype, device=image.device) * scale
            _BURT_TAPS[key] = taps
        return taps

    def _burt_filter(self, image: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        """Separable 5-tap filter with ``BORDER_REFLECT_101`` for (B, ..., H, W)."""
        height, width = image.shape[-2:]
        flat = image.reshape(-1, 1, height, width)
        flat = flat.index_select(-2, _reflect_index(height, 2, image.device, reflect_101=True))
        flat = self._per_frame(lambda planes: F.conv2d(planes, taps.view(1, 1, -1, 1)), flat, image.shape[0])
        flat = flat.index_select(-1, _reflect_index(width, 2, image.device, reflect_101=True))
        flat = self._per_frame(lambda planes: F.conv2d(planes, taps.view(1, 1, 1, -1)), flat, image.shape[0])
        return flat.reshape(image.shape)

    def pyr_down(self, image: torch.Tensor) -> torch.Tensor:
        """``cv2.pyrDown`` of (..., H, W): 5-tap [1 4 6 4 1]/16 blur, every other row and column."""
        return self._burt_filter(image, self._burt_taps(image, 1.0 / 16.0))[..., ::2, ::2]

    def pyr_up(self, image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``cv2.pyrUp`` of (..., h, w) to ``size`` = (height, width) (at most 2h×2w): zeros between
        the samples, the 5-tap kernel ×2 per axis over 2h×2w, cropped to ``size``."""
        taps = self._burt_taps(image, 1.0 / 8.0)
        height, width = image.shape[-2:]
        spread = image.new_zeros((*image.shape[:-2], 2 * height, 2 * width))  # OpenCV expands to 2h×2w, then crops
        spread[..., ::2, ::2] = image
        return self._burt_filter(spread, taps)[..., : size[0], : size[1]].contiguous()

    def where(self, condition: torch.Tensor, if_true: torch.Tensor, if_false: torch.Tensor) -> torch.Tensor:
        """Per pixel ``if_true`` where ``condition`` holds, else ``if_false``."""
        return torch.where(condition, if_true, if_false)

    def tone_map(self, image: torch.Tensor, knots: Sequence[float], values: Sequence[float]) -> torch.Tensor:
        """``interp`` of the raw image; integer data through a table of every level (one lookup per pixel)."""
        levels = self.integer_levels(image)
        if levels is None:
            return self.interp(image, knots, values)
        table = self.interp(torch.arange(levels, device=image.device, dtype=torch.float32), knots, values)
        return table[image.long()]

    def interp(self, image: torch.Tensor, knots: Sequence[float], values: Sequence[float]) -> torch.Tensor:
        """Piecewise-linear tone curve through (``knots``[i], ``values``[i]) (``knots`` increasing),
        constant beyond the ends (``np.interp``); float32."""
        xs = torch.tensor([float(k) for k in knots], dtype=torch.float64, device=image.device)  # change per frame
        ys = torch.tensor([float(v) for v in values], dtype=torch.float64, device=image.device)
        flat = image.reshape(-1).double()
        right = torch.searchsorted(xs, flat, right=True).clamp(1, len(knots) - 1)
        x0, x1, y0, y1 = xs[right - 1], xs[right], ys[right - 1], ys[right]
        mapped = y0 + (flat.clamp(xs[0], xs[-1]) - x0) * (y1 - y0) / (x1 - x0)
        return mapped.float().reshape(image.shape)

    def resize(self, image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
        """OpenCV-compatible resize of (..., H, W) to ``size`` = (height, width), ``"area"`` or ``"linear"``."""
        height, width = image.shape[-2:]
        if (height, width) == tuple(size):
            return image
        rows = _resample_matrix(height, size[0], mode, image.device).to(image.dtype)
        cols = _resample_matrix(width, size[1], mode, image.device).to(image.dtype)
        return rows @ image @ cols.t()

    def accumulate_windows(
        self, values: torch.Tensor, window: int, stride: int, shape: tuple[int, int]
    ) -> torch.Tensor:
        """Each window's value added to every pixel it covers, for (B, 1, nh, nw) values."""
        if window % stride:
            raise ValueError(f"window {window} must be a multiple of stride {stride}")
        blocks = window // stride
        padded = F.pad(values, (blocks - 1,) * 4)
        sums = F.avg_pool2d(padded, blocks, stride=1) * float(blocks * blocks)
        covered = sums.repeat_interleave(stride, dim=-2).repeat_interleave(stride, dim=-1)
        height, width = shape
        covered = covered[..., :height, :width]
        pad_bottom, pad_right = height - covered.shape[-2], width - covered.shape[-1]
        if pad_bottom or pad_right:
            covered = F.pad(covered, (0, pad_right, 0, pad_bottom), mode="replicate")
        return covered

    # ---- detector --------------------------------------------------------------------------
    def detect(self, backend: Any, visible: torch.Tensor, thermal: torch.Tensor) -> torch.Tensor:
        """Window scores (B, 1, nh, nw) through ``backend.forward_tensor`` (device backends stay on the device)."""
        pair = torch.cat([visible, thermal], dim=1) * (1.0 / 255.0)
        limit = int(getattr(backend, "max_batch", 0) or pair.shape[0])
        if not self._pinned:
            limit = 1  # CPU: frame by frame, exactly as single calls (see ``_per_frame``)
        if pair.shape[0] <= limit:
            return backend.forward_tensor(pair).to(self.device)
        chunks = [backend.forward_tensor(pair[start:start + limit]) for start in range(0, pair.shape[0], limit)]
        return torch.cat(chunks).to(self.device)

    # ---- colour ----------------------------------------------------------------------------
    def luma(self, visible: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(Y float32 (B, 1, H, W), colour state) of (B, H, W, 3) BGR or (B, 1, H, W) gray uint8 frames.

        Y is bit-exact with OpenCV's ``COLOR_BGR2YCrCb``.
        """
        if visible.shape[1] == 1:
            return visible.float(), None
        pixels = visible.to(torch.int32)
        luma = _descale(pixels[..., 2] * _R2Y + pixels[..., 1] * _G2Y + pixels[..., 0] * _B2Y)
        return luma[:, None].float(), visible

    def merge_luma(self, state: Any, luminance: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) BGR with ``luminance`` as Y and the visible chroma (bit-exact with OpenCV), or gray."""
        if state is None:
            return self.to_uint8(luminance)
        pixels = state.to(torch.int32)
        blue, green, red = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        luma = _descale(red * _R2Y + green * _G2Y + blue * _B2Y)
        cr = _descale((red - luma) * _CR + (128 << _SHIFT)).clamp(0, 255) - 128
        cb = _descale((blue - luma) * _CB + (128 << _SHIFT)).clamp(0, 255) - 128
        new_luma = (luminance[:, 0] + 0.5).clamp(0.0, 255.0).to(torch.int32)
        out = torch.stack(
            [
                new_luma + _descale(cb * _CB2B),
                new_luma + _descale(cb * _CB2G + cr * _CR2G),
                new_luma + _descale(cr * _CR2R),
            ],
            dim=-1,
        )
        return out.clamp_(0, 255).to(torch.uint8)

    def to_uint8(self, image: torch.Tensor) -> torch.Tensor:
        return (image + 0.5).clamp(0.0, 255.0).to(torch.uint8)
