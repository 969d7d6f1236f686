"""Temporal smoothing of a stream's normalisation statistics (the fusion itself stays per frame).

Per-frame normalisation (the thermal stretch bounds, the final percentile stretch) turns every
exposure or gain change of the cameras into a jump of the fused stream. ``StreamNormaliser`` keeps
each pair of bounds as an exponential moving average over the frames of one stream and starts
afresh on a scene cut (the visible thumbnail or the thermal bounds change abruptly) or a size
change. Only scalars are smoothed, never pixels, so moving objects are not smeared.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["StreamNormaliser", "THUMBNAIL_SIZE"]

#: (height, width) of the visible thumbnail compared between frames.
THUMBNAIL_SIZE = (24, 32)


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
        self._shape: tuple[int, ...] | None = None
        self._thumbnail: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        """Forget the history (the next frame is normalised on its own)."""
        self._bounds.clear()
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
