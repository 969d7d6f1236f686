"""Statistics of the fusion node and their ``diagnostic_msgs`` form for ``/diagnostics``.

``NodeStatistics`` is plain Python and thread-safe (callbacks and the worker both record into it);
``to_diagnostic_status`` turns a snapshot into a ``DiagnosticStatus``.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["NodeStatistics", "StatisticsSnapshot", "drops_by_reason", "to_diagnostic_status"]


class _RateMeter:
    """Events per second over a sliding window of wall time."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._expire(now)

    def rate(self, now: float) -> float:
        self._expire(now)
        return len(self._times) / self._window_s

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] < now - self._window_s:
            self._times.popleft()


def _percentiles(samples: deque[float]) -> tuple[float, float]:
    if not samples:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.fromiter(samples, dtype=np.float64), (50, 99))
    return float(p50), float(p99)


@dataclass(frozen=True)
class StatisticsSnapshot:
    """Rates in Hz, times in milliseconds (p50, p99 over the recent outputs), drops by reason."""

    input_rates_hz: dict[str, float]
    output_rate_hz: float
    outputs: int
    latency_ms: tuple[float, float]
    processing_ms: tuple[float, float]
    stamp_gap_ms: tuple[float, float]
    drops: dict[str, int] = field(default_factory=dict)
    waiting_s: float = 0.0  # since the first input that has not been followed by an output (0 = none)


class NodeStatistics:
    """Input/output rates, latency and processing time of recent pairs, drops by reason.

    Args:
        stream_names: names of the input streams.
        window_s: rate window in seconds.
        samples: how many recent outputs the percentiles cover.
    """

    def __init__(self, stream_names: tuple[str, ...], window_s: float = 5.0, samples: int = 300) -> None:
        self._lock = threading.Lock()
        self._inputs = {name: _RateMeter(window_s) for name in stream_names}
        self._outputs = _RateMeter(window_s)
        self._latency: deque[float] = deque(maxlen=samples)
        self._processing: deque[float] = deque(maxlen=samples)
        self._stamp_gap: deque[float] = deque(maxlen=samples)
        self._drops: Counter[str] = Counter()
        self._output_count = 0
        self._waiting_since: float | None = None

    def record_input(self, stream: str) -> None:
        """One message arrived on `stream`."""
        now = time.monotonic()
        with self._lock:
            self._inputs[stream].tick(now)
            if self._waiting_since is None:
                self._waiting_since = now

    def record_idle(self) -> None:
        """A pair was consumed without output on purpose (nobody subscribes): not a stall."""
        with self._lock:
            self._waiting_since = None

    def record_output(self, latency_ms: float, processing_ms: float, stamp_gap_ms: float) -> None:
        """One fused pair was published.

        Args:
            latency_ms: publish time minus the pair's (RGB) stamp.
            processing_ms: conversion + fusion + publishing time of the pair.
            stamp_gap_ms: stamp difference of the two inputs of the pair.
        """
        with self._lock:
            self._outputs.tick(time.monotonic())
            self._latency.append(latency_ms)
            self._processing.append(processing_ms)
            self._stamp_gap.append(stamp_gap_ms)
            self._output_count += 1
            self._waiting_since = None

    def record_drop(self, reason: str, count: int = 1) -> None:
        """`count` messages or pairs were dropped for `reason`."""
        with self._lock:
            self._drops[reason] += count

    def drops(self) -> dict[str, int]:
        """Drops recorded here, by reason."""
        with self._lock:
            return dict(self._drops)

    def snapshot(self, extra_drops: dict[str, int] | None = None) -> StatisticsSnapshot:
        """Current statistics; `extra_drops` (e.g. the synchroniser's) are added to the drops."""
        now = time.monotonic()
        with self._lock:
            drops = Counter(self._drops)
            drops.update(extra_drops or {})
            return StatisticsSnapshot(
                input_rates_hz={name: meter.rate(now) for name, meter in self._inputs.items()},
                output_rate_hz=self._outputs.rate(now),
                outputs=self._output_count,
                latency_ms=_percentiles(self._latency),
                processing_ms=_percentiles(self._processing),
                stamp_gap_ms=_percentiles(self._stamp_gap),
                drops=dict(drops),
                waiting_s=0.0 if self._waiting_since is None else now - self._waiting_since,
            )


def to_diagnostic_status(
    name: str, hardware_id: str, snapshot: StatisticsSnapshot, info: dict[str, Any], errors: tuple[str, ...] = ()
) -> Any:
    """Build a ``diagnostic_msgs/DiagnosticStatus``.

    Level ERROR when `errors` is not empty (message: the errors), else WARN when an input stream
    is silent or nothing was published while inputs arrive, OK otherwise.
    Keys: ``<stream>_rate_hz``, ``output_rate_hz``, ``outputs``,
    ``pair_latency_ms_p50/p99``, ``processing_ms_p50/p99``, ``pair_stamp_gap_ms_p50/p99``,
    ``drops_<reason>``, ``drops_total`` and every entry of `info` (backend, device, model...).

    Args:
        name: status name.
        hardware_id: hardware id (the node's full name).
        snapshot: statistics from :meth:`NodeStatistics.snapshot`.
        info: extra facts published as key/values.
        errors: faults the caller found (dead worker, stalled output), one line each.

    Returns:
        The status message.
    """
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    values = {f"{stream}_rate_hz": f"{rate:.2f}" for stream, rate in snapshot.input_rates_hz.items()}
    values["output_rate_hz"] = f"{snapshot.output_rate_hz:.2f}"
    values["outputs"] = str(snapshot.outputs)
    for key, (p50, p99) in (
        ("pair_latency_ms", snapshot.latency_ms),
        ("processing_ms", snapshot.processing_ms),
        ("pair_stamp_gap_ms", snapshot.stamp_gap_ms),
    ):
        values[f"{key}_p50"], values[f"{key}_p99"] = f"{p50:.1f}", f"{p99:.1f}"
    for reason, count in sorted(snapshot.drops.items()):
        values[f"drops_{reason}"] = str(count)
    values["drops_total"] = str(sum(snapshot.drops.values()))
    values.update({key: str(value) for key, value in info.items()})

    silent = [stream for stream, rate in snapshot.input_rates_hz.items() if rate == 0.0]
    if errors:
        level, message = DiagnosticStatus.ERROR, "; ".join(errors)
    elif silent:
        level, message = DiagnosticStatus.WARN, f"no input on {', '.join(silent)}"
    elif snapshot.output_rate_hz == 0.0:
        level, message = DiagnosticStatus.WARN, "inputs arrive but no fused output (see drops_*)"
    else:
        level, message = DiagnosticStatus.OK, f"fusing at {snapshot.output_rate_hz:.1f} Hz"
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=key, value=value) for key, value in values.items()],
    )


def drops_by_reason(values: dict[str, str]) -> dict[str, int]:
    """The ``drops_<reason>`` counts of a fusion status's key/values (``drops_total`` left out)."""
    return {key.removeprefix("drops_"): int(value) for key, value in values.items()
            if key.startswith("drops_") and key != "drops_total"}
