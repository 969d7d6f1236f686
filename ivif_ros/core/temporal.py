"""Temporal smoothing of a stream's normalisation statistics (the fusion itself stays per frame).

Per-frame normalisation (the thermal stretch bounds, the final percentile stretch) turns every
exposure or gain change of the cameras into a jump of the fused stream, and a thermal camera's
automatic gain control (AGC) reshapes its histogram nonlinearly from one frame to the next.
``StreamNormaliser`` keeps each pair of bounds, and the thermal tone curve's knots (the stretched
quantiles at ``TONE_PERCENTILES``), as exponential moving averages over the frames of one stream; a
thermal frame is mapped by the piecewise-linear curve from its own raw quantiles to the smoothed
stretched ones (histogram anchoring: a static scene keeps its grey levels whatever curve the AGC
applied); the output, after its smoothed stretch, likewise by a curve anchored to its smoothed
quantiles, whose tone range is kept within the larger input's. Everything starts afresh on a scene
cut (the visible thumbnail changes abruptly) or a size change. Only statistics are smoothed, never
pixels, so moving objects are not smeared.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

__all__ = ["StreamNormaliser", "THUMBNAIL_SIZE", "TONE_PERCENTILES", "RANGE_PERCENTILES", "QUANTILE_SAMPLES"]

#: (height, width) of the visible thumbnail compared between frames.
THUMBNAIL_SIZE = (24, 32)
#: Percentiles that are the knots of the anchored tone curves (0 and 100: no tail is clipped).
TONE_PERCENTILES = (0.0, 0.5, 2.0, 10.0, 25.0, 50.0, 75.0, 90.0, 98.0, 99.5, 100.0)
#: Percentiles whose distance is an image's tone range (the output's may not exceed the inputs').
RANGE_PERCENTILES = (0.5, 99.5)
#: The most values a stream frame's quantile estimate reads: the ``[::2, ::2]`` sample of a 640×512
#: frame; larger frames are sampled more sparsely (``sample_step``), so the cost stays flat.
QUANTILE_SAMPLES = 81920
_LOW, _MEDIAN, _HIGH = (TONE_PERCENTILES.index(p) for p in (RANGE_PERCENTILES[0], 50.0, RANGE_PERCENTILES[1]))
#: Smallest step between consecutive knots of a tone curve (grey levels or raw units).
_KNOT_STEP = 1e-3


class StreamNormaliser:
    """Smoothed (low, high) bounds per named statistic, and smoothed tone curves, for one stream of frames.

    Args:
        smoothing: weight of the history in ``bound = smoothing·previous + (1 − smoothing)·new``
            (0 = per frame, no smoothing).
        scene_cut: a new scene starts (history dropped) when the mean absolute change of the
            visible luminance thumbnail (32×24) exceeds this many grey levels.

    Call ``begin_frame`` once per frame (it detects cuts and size changes), then ``smooth`` for each
    statistic of that frame, or ``thermal_curve`` and then ``output_tone`` (the default mode's stream).
    """

    def __init__(self, smoothing: float, scene_cut: float) -> None:
        self.smoothing = smoothing
        self.scene_cut = scene_cut
        self._bounds: dict[str, tuple[float, float]] = {}
        self._curves: dict[str, np.ndarray] = {}
        self._shape: tuple[int, ...] | None = None
        self._thumbnail: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        """Forget the history (the next frame is normalised on its own)."""
        self._bounds.clear()
        self._curves.clear()
        self._thumbnail = None
        self._shape = None

    def begin_frame(self, visible_luminance: np.ndarray, shape: tuple[int, ...] | None = None) -> bool:
        """Register a frame; returns True when the history was dropped (first frame, cut, new size).

        Args:
            visible_luminance: the frame's visible luminance (0..255) on the host, or already a
                thumbnail of it (any size; it is brought to 32×24).
            shape: the frame's size when ``visible_luminance`` is a thumbnail.
        """
        shape = tuple(shape) if shape is not None else visible_luminance.shape
        thumbnail = cv2.resize(visible_luminance.astype(np.float32, copy=False), (THUMBNAIL_SIZE[1], THUMBNAIL_SIZE[0]),
                               interpolation=cv2.INTER_AREA)
        fresh = self._shape != shape or self._thumbnail is None
        if not fresh and float(np.abs(thumbnail - self._thumbnail).mean()) > self.scene_cut:
            fresh = True
        if fresh:
            if self._shape is not None:
                self.cuts += 1
            self._bounds.clear()
            self._curves.clear()
        self._shape = shape
        self._thumbnail = thumbnail
        return fresh

    def smooth(self, name: str, low: float, high: float) -> tuple[float, float]:
        """The smoothed bounds of statistic ``name`` after this frame's ``(low, high)``."""
        previous = self._bounds.get(name)
        if previous is not None and self.smoothing > 0:
            keep = self.smoothing
            low = keep * previous[0] + (1.0 - keep) * low
            high = keep * previous[1] + (1.0 - keep) * high
        self._bounds[name] = (low, high)
        return low, high

    def thermal_curve(self, knots: Sequence[Any], low: Any, high: Any) -> tuple[np.ndarray, np.ndarray]:
        """The thermal tone curve of this frame: (its raw quantiles, the smoothed stretched ones).

        Args:
            knots: this frame's raw thermal quantiles at ``TONE_PERCENTILES`` (made strictly
                increasing here).
            low, high: this frame's stretch bounds (mapped to 0 and 255).

        Returns:
            (x, y) knots of the piecewise-linear map from raw values to 0..255: ``y`` is the moving
            average of the frames' stretched quantiles (on the first frame of a scene, the frame's
            own linear stretch).
        """
        low, high = float(low), float(high)
        source = _increasing(np.array([float(k) for k in knots]))
        scale = 255.0 / (high - low) if high - low >= 1e-12 else 0.0
        return source, self._averaged("thermal", np.clip((source - low) * scale, 0.0, 255.0))

    def output_tone(
        self, clip_quantiles: Sequence[Any], knots: Sequence[Any], visible: Sequence[Any]
    ) -> tuple[tuple[float, float], np.ndarray, np.ndarray]:
        """This frame's output stretch bounds and the tone curve applied after them.

        Args:
            clip_quantiles: this frame's fused (low, high) stretch percentiles.
            knots: this frame's fused quantiles at ``TONE_PERCENTILES`` (before the stretch).
            visible: this frame's visible luminance quantiles at ``RANGE_PERCENTILES``.

        Returns:
            (the smoothed stretch bounds, x, y): ``x`` the frame's knots after that stretch, ``y``
            their moving average, compressed about its median when its tone range (``RANGE_PERCENTILES``)
            exceeds the larger smoothed range of the inputs (visible, or the thermal curve's).
        """
        low, high = self.smooth("output", float(clip_quantiles[0]), float(clip_quantiles[1]))
        scale = 255.0 / (high - low) if high - low >= 1e-3 else 0.0
        source = _increasing(np.clip((np.array([float(k) for k in knots]) - low) * scale, 0.0, 255.0))
        target = self._averaged("output", source)
        visible_low, visible_high = self.smooth("visible", *(float(v) for v in visible))
        limits = [visible_high - visible_low]
        if "thermal" in self._curves:
            limits.append(_tone_range(self._curves["thermal"]))
        if _tone_range(target) > max(limits) > 0.0:
            middle = target[_MEDIAN]
            target = middle + (target - middle) * (max(limits) / _tone_range(target))
        return (low, high), source, target

    def _averaged(self, name: str, knots: np.ndarray) -> np.ndarray:
        """The moving average of curve ``name``'s knots with this frame's (restarted when fresh)."""
        previous = self._curves.get(name)
        fresh = previous is None or self.smoothing <= 0 or previous.shape != knots.shape
        target = knots if fresh else self.smoothing * previous + (1.0 - self.smoothing) * knots
        self._curves[name] = target
        return target


def _increasing(knots: np.ndarray) -> np.ndarray:
    """``knots`` made strictly increasing (steps of at least ``_KNOT_STEP``)."""
    steps = np.arange(len(knots)) * _KNOT_STEP
    return np.maximum.accumulate(knots - steps) + steps


def _tone_range(knots: np.ndarray) -> float:
    """Distance of a curve's knots at ``RANGE_PERCENTILES``."""
    return float(knots[_HIGH] - knots[_LOW])
