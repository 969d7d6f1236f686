"""Temporal smoothing of a stream's normalisation statistics (the fusion itself stays per frame).

Per-frame normalisation (the thermal stretch bounds, the final percentile stretch) turns every
exposure or gain change of the cameras into a jump of the fused stream, and a camera's automatic
gain control (AGC) reshapes its histogram nonlinearly from one frame to the next. ``StreamNormaliser``
keeps each pair of bounds, and each tone curve's knots (an image's quantiles, ``TONE_PERCENTILES``),
as an exponential moving average over the frames of one stream; a frame is then mapped by the
piecewise-linear curve from its own quantiles to the smoothed ones (histogram anchoring: a static
scene keeps its grey levels whatever curve the AGC applied). Everything starts afresh on a scene cut
(the visible thumbnail changes abruptly) or a size change. Only statistics are smoothed, never
pixels, so moving objects are not smeared.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["StreamNormaliser", "THUMBNAIL_SIZE", "TONE_PERCENTILES"]

#: (height, width) of the visible thumbnail compared between frames.
THUMBNAIL_SIZE = (24, 32)
#: Percentiles that are the knots of the anchored tone curves (0 and 100: no tail is clipped).
TONE_PERCENTILES = (0.0, 0.5, 2.0, 10.0, 25.0, 50.0, 75.0, 90.0, 98.0, 99.5, 100.0)
_LOW, _MEDIAN, _HIGH = (TONE_PERCENTILES.index(p) for p in (0.5, 50.0, 99.5))
#: Smallest step between consecutive knots of a tone curve (grey levels or raw units).
_KNOT_STEP = 1e-3


class StreamNormaliser:
    """Smoothed (low, high) bounds per named statistic for one stream of frames.

    Args:
        smoothing: weight of the history in ``bound = smoothing·previous + (1 − smoothing)·new``
            (0 = per frame, no smoothing).
        scene_cut: a new scene starts (history dropped) when the mean absolute change of the
            visible luminance thumbnail (32×24) exceeds this many grey levels.

    Call ``begin_frame`` once per frame (it detects cuts and size changes), then ``smooth`` for each
    statistic of that frame.
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

    def curve(
        self, name: str, knots: list[float], spread_limit: tuple[str, ...] = ()
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The tone curve of statistic ``name`` for this frame: (its knots, the smoothed knots).

        Args:
            knots: this frame's quantiles at ``TONE_PERCENTILES`` (made strictly increasing here).
            spread_limit: names of curves (of this frame, same units) whose larger spread (0.5–99.5 %
                range of the smoothed knots) the result's spread may not exceed: the smoothed knots
                are then compressed about their median.

        Returns:
            (x, y) knots of the piecewise-linear map, or None when the frame stays as it is (first
            frame of a scene or no smoothing, and no compression).
        """
        steps = np.arange(len(knots)) * _KNOT_STEP
        current = np.maximum.accumulate(np.asarray(knots, np.float64) - steps) + steps
        previous = self._curves.get(name)
        fresh = previous is None or self.smoothing <= 0 or previous.shape != current.shape
        target = current if fresh else self.smoothing * previous + (1.0 - self.smoothing) * current
        self._curves[name] = target
        limits = [_spread(self._curves[other]) for other in spread_limit if other in self._curves]
        if limits and _spread(target) > max(limits):
            middle = target[_MEDIAN]
            return current, middle + (target - middle) * (max(limits) / _spread(target))
        return None if fresh else (current, target)


def _spread(knots: np.ndarray) -> float:
    """0.5–99.5 % range of a tone curve's knots (the range the output stretch fills)."""
    return float(knots[_HIGH] - knots[_LOW])
