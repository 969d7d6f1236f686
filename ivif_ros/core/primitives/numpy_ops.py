"""The primitives on the host: numpy arrays and OpenCV, one image per call.

Images are float32 H×W arrays; per-image scalars (minimum, mean, percentile bounds) are Python
floats computed in float64, and enter array arithmetic as ``scalar(value)`` (float32), which keeps
the fusion modes bit-identical to their original numpy/OpenCV code.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

__all__ = ["NumpyOps", "NUMPY_OPS", "sample_step"]


def sample_step(shape: Sequence[int], step: int, max_samples: int | None) -> int:
    """The subsampling step of a percentile estimate: ``step``, larger when ``image[::step, ::step]``
    of an image of ``shape`` (last two: height, width) would hold more than ``max_samples`` values
    (None = no cap), so that its cost stops growing with the frame size."""
    height, width = shape[-2], shape[-1]
    if max_samples is not None:
        while math.ceil(height / step) * math.ceil(width / step) > max_samples:
            step += 1
    return step


class _Clock:
    """Milliseconds per stage from ``perf_counter``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self._mark) * 1e3
        self._mark = now

    def result(self) -> dict[str, float]:
        return self.timings


class NumpyOps:
    """Host implementation of the primitive set (see ``ivif_ros.core.primitives``)."""

    name = "numpy"
    device = "cpu"
    #: The default mode runs the detector in a second thread beside the pyramid decomposition (CPU:
    #: onnxruntime/torch and OpenCV release the GIL, so a second core overlaps them).
    overlap_detection = True

    # ---- frames in and out -----------------------------------------------------------------
    def frame_context(self) -> contextlib.AbstractContextManager:
        """Context of one frame's work (nothing to set up on the host)."""
        return contextlib.nullcontext()

    def clock(self) -> _Clock:
        return _Clock()

    def upload(self, array: np.ndarray, role: str) -> np.ndarray:
        """The array itself (host data)."""
        return array

    def download(self, image: np.ndarray, role: str) -> np.ndarray:
        return image

    def synchronize(self) -> None:
        """Nothing to wait for on the host."""

    def finish(self, downloaded: np.ndarray) -> np.ndarray:
        return downloaded

    def to_float(self, image: np.ndarray) -> np.ndarray:
        return image.astype(np.float32, copy=False)

    def is_8bit(self, image: np.ndarray) -> bool:
        return image.dtype == np.uint8

    def integer_levels(self, image: np.ndarray) -> int | None:
        """256 for uint8 data, 65536 for uint16, None for float data."""
        return {np.dtype(np.uint8): 256, np.dtype(np.uint16): 65536}.get(image.dtype)

    # ---- scalars (per image) ---------------------------------------------------------------
    def scalar(self, value: float) -> np.float32:
        """A per-image scalar as it enters float32 array arithmetic."""
        return np.float32(value)

    def choose(self, condition: Any, if_true: Callable[[], Any], if_false: Callable[[], Any]) -> Any:
        """``if_true()`` when ``condition`` holds, else ``if_false()`` (only the chosen one runs)."""
        return if_true() if condition else if_false()

    def scalar_max(self, value: Any, low: float) -> Any:
        return max(value, low)

    def scalar_min(self, value: Any, high: float) -> Any:
        return min(value, high)

    def minmax(self, image: np.ndarray) -> tuple[float, float]:
        return float(image.min()), float(image.max())

    def mean(self, image: np.ndarray) -> np.float32:
        return np.float32(image.mean())

    def percentiles(
        self, image: np.ndarray, percents: Sequence[float], step: int = 1, max_samples: int | None = None
    ) -> list[float]:
        """Percentiles (linear interpolation) of ``image[::s, ::s]``, s = ``sample_step(shape, step, max_samples)``."""
        step = sample_step(image.shape, step, max_samples)
        sample = image[::step, ::step] if step > 1 else image
        return [float(v) for v in np.percentile(sample, list(percents))]

    def histogram_percentiles(self, image: np.ndarray, percents: Sequence[float]) -> list[float]:
        """Integer percentiles of uint8/uint16 data from the histogram (first level reaching the count)."""
        if image.dtype == np.uint8:  # OpenCV's histogram is several times faster than bincount here
            counts = cv2.calcHist([np.ascontiguousarray(image)], [0], None, [256], [0, 256]).ravel()
        else:
            counts = np.bincount(image.ravel(), minlength=self.integer_levels(image))
        cumulative = np.cumsum(counts, dtype=np.float64)
        total = cumulative[-1]
        return [float(int(np.searchsorted(cumulative, total * p / 100.0, side="left"))) for p in percents]

    # ---- pixel-wise ------------------------------------------------------------------------
    def zeros_like(self, image: np.ndarray) -> np.ndarray:
        return np.zeros_like(image, dtype=np.float32)

    def ones_like(self, image: np.ndarray) -> np.ndarray:
        return np.ones_like(image, dtype=np.float32)

    def clip(self, image: np.ndarray, low: float, high: float, inplace: bool = False) -> np.ndarray:
        return np.clip(image, low, high, out=image if inplace else None)

    def clip_min(self, image: np.ndarray, low: float) -> np.ndarray:
        return np.maximum(image, low)

    def maximum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(a, b)

    def abs(self, image: np.ndarray) -> np.ndarray:
        return np.abs(image)

    def log(self, image: np.ndarray) -> np.ndarray:
        return cv2.log(image)

    def exp(self, image: np.ndarray) -> np.ndarray:
        return cv2.exp(image)

    def sigmoid(self, values: np.ndarray) -> np.ndarray:
        """``1 / (1 + exp(-x))`` with x clipped to ±30."""
        return 1.0 / (1.0 + cv2.exp(-np.clip(values, -30.0, 30.0)))

    # ---- neighbourhoods --------------------------------------------------------------------
    def box_mean(self, image: np.ndarray, radius: int) -> np.ndarray:
        """Mean over the (2r+1)² box, mirrored border (``BORDER_REFLECT``)."""
        size = 2 * radius + 1
        return cv2.boxFilter(image, -1, (size, size), borderType=cv2.BORDER_REFLECT)

    def gaussian_blur(self, image: np.ndarray, sigma: float) -> np.ndarray:
        """``cv2.GaussianBlur(image, (0, 0), sigma)`` (``BORDER_REFLECT_101``)."""
        return cv2.GaussianBlur(image, (0, 0), sigma)

    def pyr_down(self, image: np.ndarray) -> np.ndarray:
        """Burt–Adelson reduction: 5-tap [1 4 6 4 1]/16 blur (``BORDER_REFLECT_101``), every other
        row and column kept (``cv2.pyrDown``; size ``ceil(h/2)``×``ceil(w/2)``)."""
        return cv2.pyrDown(image)

    def pyr_up(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Burt–Adelson expansion to ``size`` = (height, width): zeros between the samples, then the
        5-tap kernel ×2 per axis (``cv2.pyrUp`` with ``dstsize``)."""
        return cv2.pyrUp(image, dstsize=(size[1], size[0]))

    def where(self, condition: np.ndarray, if_true: np.ndarray, if_false: np.ndarray) -> np.ndarray:
        """Per pixel ``if_true`` where ``condition`` (bool) holds, else ``if_false`` (same shape and
        dtype); a masked ``cv2.copyTo`` (≈ 15× faster than ``np.where`` on float32 frames)."""
        out = if_false.copy()
        cv2.copyTo(if_true, np.ascontiguousarray(condition).view(np.uint8), out)
        return out

    def tone_map(self, image: np.ndarray, knots: Sequence[float], values: Sequence[float]) -> np.ndarray:
        """``interp`` of the raw image; integer data through a table of every level (one lookup per pixel)."""
        levels = self.integer_levels(image)
        if levels is None:
            return self.interp(image, knots, values)
        table = np.interp(np.arange(levels), knots, values).astype(np.float32)
        return cv2.LUT(image, table) if levels == 256 else table[image]

    def interp(self, image: np.ndarray, knots: Sequence[float], values: Sequence[float]) -> np.ndarray:
        """Piecewise-linear tone curve through (``knots``[i], ``values``[i]) (``knots`` increasing),
        constant beyond the ends; float32."""
        return np.interp(image, knots, values).astype(np.float32)

    def resize(self, image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
        """To ``size`` = (height, width): ``"area"`` (``INTER_AREA``) or ``"linear"`` (``INTER_LINEAR``)."""
        if image.shape[-2:] == tuple(size):
            return image
        interpolation = cv2.INTER_AREA if mode == "area" else cv2.INTER_LINEAR
        return cv2.resize(image, (size[1], size[0]), interpolation=interpolation)

    def accumulate_windows(self, values: np.ndarray, window: int, stride: int, shape: tuple[int, int]) -> np.ndarray:
        """Each window's value added to every pixel it covers (transposed box), for (nh, nw) values.

        Pixels right of / below the last window (less than one stride) repeat the nearest covered value.
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

    # ---- detector --------------------------------------------------------------------------
    def detect(self, backend: Any, visible: np.ndarray, thermal: np.ndarray) -> np.ndarray:
        """Window scores (nh, nw) of a 0..255 pair (scaled to 0..1 for the backend)."""
        pair = np.stack([visible, thermal])[None] * np.float32(1.0 / 255.0)
        return backend(pair)[0, 0]

    # ---- colour ----------------------------------------------------------------------------
    def luma(self, visible: np.ndarray) -> tuple[np.ndarray, Any]:
        """(Y as float32, colour state for ``merge_luma``) of a BGR or gray uint8 frame."""
        if visible.ndim == 2:
            return visible.astype(np.float32), None
        ycrcb = cv2.cvtColor(visible, cv2.COLOR_BGR2YCrCb)
        return ycrcb[:, :, 0].astype(np.float32), ycrcb

    def merge_luma(self, state: Any, luminance: np.ndarray) -> np.ndarray:
        """uint8 output: ``luminance`` as Y with the visible chroma (BGR), or gray."""
        if state is None:
            return self.to_uint8(luminance)
        state[:, :, 0] = np.clip(luminance + 0.5, 0, 255).astype(np.uint8)
        return cv2.cvtColor(state, cv2.COLOR_YCrCb2BGR)

    def to_uint8(self, image: np.ndarray) -> np.ndarray:
        """Rounded and saturated to uint8."""
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)


NUMPY_OPS = NumpyOps()
