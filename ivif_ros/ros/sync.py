"""Approximate-time pairing of two timestamped streams with a latest-pair policy.

Plain Python (no rclpy) so that tests feed synthetic stamps directly. Thread-safe: ROS callbacks
call :meth:`ApproximateSynchronizer.add` while a worker thread calls
:meth:`ApproximateSynchronizer.pop_latest`.

Pairing rule. Two messages pair when their stamps differ by at most ``slop_ns``; each message is
used at most once. A candidate pair is *ready* when no closer partner can still arrive: each
stream has delivered a stamp at or after the other member's stamp (stamps rise per stream), or the
streams have moved on by more than ``slop_ns`` past the pair (the other stream fell silent).
``pop_latest`` returns the ready pair with the newest stamps and drops every older message, so a
consumer slower than the cameras never works on a stale pair. Every dropped message is counted by
stream and reason:

- ``stale``: it could have been paired, but a newer pair was taken instead;
- ``unpaired``: no partner within ``slop_ns`` arrived (other stream silent, slower or offset);
- ``out_of_order``: its stamp is older than the last pair taken from its stream;
- ``duplicate``: its stamp equals one already queued or the last taken on its stream (a
  republished message), so a duplicated pair gives one output.

A stamp more than ``reset_ns`` older than the newest one seen (a bag replay restarting, a
simulated clock reset), or ``jump_back_messages`` consecutive out-of-order stamps on one stream
(a camera clock stepping back by less than that), clears both queues and counts a reset instead
of dropping forever. :meth:`ApproximateSynchronizer.pop_oldest` hands out pairs in stamp order
instead (a consumer catching up after a slow frame loses nothing that is still queued).
"""
from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["ApproximateSynchronizer", "SyncedPair", "DROP_REASONS"]

DROP_REASONS: tuple[str, ...] = ("stale", "unpaired", "out_of_order", "duplicate")

T = TypeVar("T")


@dataclass(frozen=True)
class SyncedPair(Generic[T]):
    """One message of each stream whose stamps lie within the slop."""

    first_stamp_ns: int
    first: T
    second_stamp_ns: int
    second: T

    @property
    def newest_stamp_ns(self) -> int:
        """The later of the two stamps."""
        return max(self.first_stamp_ns, self.second_stamp_ns)


class _Stream:
    """Stamp-sorted bounded queue of one input plus its bookkeeping."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stamps: list[int] = []
        self.items: list[Any] = []
        self.newest_seen_ns: int | None = None
        self.last_taken_ns: int | None = None
        self.received = 0
        self.behind = 0  # consecutive out-of-order stamps

    def insert(self, stamp_ns: int, item: Any) -> None:
        index = bisect.bisect_right(self.stamps, stamp_ns)
        self.stamps.insert(index, stamp_ns)
        self.items.insert(index, item)
        if self.newest_seen_ns is None or stamp_ns > self.newest_seen_ns:
            self.newest_seen_ns = stamp_ns

    def pop_front(self) -> int:
        self.items.pop(0)
        return self.stamps.pop(0)

    def holds(self, stamp_ns: int) -> bool:
        index = bisect.bisect_left(self.stamps, stamp_ns)
        return index < len(self.stamps) and self.stamps[index] == stamp_ns

    def clear(self) -> None:
        self.stamps.clear()
        self.items.clear()
        self.newest_seen_ns = None
        self.last_taken_ns = None
        self.behind = 0


class ApproximateSynchronizer:
    """Pair two streams by stamp; hand out only the newest ready pair.

    Args:
        slop_ns: largest stamp difference of a pair, nanoseconds (>= 0).
        queue_size: messages kept per stream (>= 1); the oldest are dropped beyond it.
        names: names of the two streams, used in the drop counts.
        reset_ns: a stamp this much older than the newest seen on its stream resets the queues.
        jump_back_messages: this many consecutive out-of-order stamps on one stream reset the queues.

    Raises:
        ValueError: negative slop, queue_size < 1, reset_ns <= 0 or jump_back_messages < 1.
    """

    def __init__(
        self,
        slop_ns: int,
        queue_size: int = 10,
        names: tuple[str, str] = ("first", "second"),
        reset_ns: int = 1_000_000_000,
        jump_back_messages: int = 2,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if reset_ns <= 0:
            raise ValueError(f"reset_ns must be > 0, got {reset_ns}")
        if jump_back_messages < 1:
            raise ValueError(f"jump_back_messages must be >= 1, got {jump_back_messages}")
        self._jump_back_messages = jump_back_messages
        self._lock = threading.Lock()
        self._streams = (_Stream(names[0]), _Stream(names[1]))
        self._drops: dict[str, Counter[str]] = {name: Counter() for name in names}
        self._queue_size = queue_size
        self._reset_ns = reset_ns
        self._slop_ns = 0
        self.slop_ns = slop_ns
        self.pairs = 0
        self.resets = 0

    @property
    def slop_ns(self) -> int:
        """Largest stamp difference of a pair (settable at runtime)."""
        return self._slop_ns

    @slop_ns.setter
    def slop_ns(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"slop_ns must be >= 0, got {value}")
        with self._lock:
            self._slop_ns = int(value)

    @property
    def names(self) -> tuple[str, str]:
        """Names of the two streams."""
        return self._streams[0].name, self._streams[1].name

    def add(self, stream: int, stamp_ns: int, item: Any) -> None:
        """Queue one message.

        Args:
            stream: 0 for the first stream, 1 for the second.
            stamp_ns: message stamp in nanoseconds.
            item: payload returned in the pair (a message or an array).

        Raises:
            IndexError: stream is not 0 or 1.
        """
        queue = self._streams[stream]
        with self._lock:
            queue.received += 1
            if queue.newest_seen_ns is not None and stamp_ns < queue.newest_seen_ns - self._reset_ns:
                self._reset_locked()
            if stamp_ns == queue.last_taken_ns or queue.holds(stamp_ns):
                self._drops[queue.name]["duplicate"] += 1
                return
            if queue.last_taken_ns is not None and stamp_ns < queue.last_taken_ns:
                queue.behind += 1
                if queue.behind < self._jump_back_messages:
                    self._drops[queue.name]["out_of_order"] += 1
                    return
                self._reset_locked()  # the stream's clock stepped back: start pairing afresh
            queue.behind = 0
            queue.insert(stamp_ns, item)
            while len(queue.stamps) > self._queue_size:
                oldest = queue.pop_front()
                self._count_drop(stream, oldest)

    def pop_latest(self) -> SyncedPair | None:
        """Take the newest ready pair, dropping (and counting) every older message.

        Returns:
            The pair, or None when no pair is ready yet.
        """
        return self._pop(oldest=False)

    def pop_oldest(self) -> SyncedPair | None:
        """Take the oldest ready pair (messages older than it that cannot pair are dropped and counted).

        Returns:
            The pair, or None when no pair is ready yet.
        """
        return self._pop(oldest=True)

    def pop_next(self, max_behind: int) -> SyncedPair | None:
        """Take the oldest ready pair while at most `max_behind` pairs are ready, else the newest.

        A consumer that is briefly late (a scheduling hiccup) then loses no pair, and one that is
        slower than the cameras still skips to the newest pair, so its latency stays bounded.

        Returns:
            The pair, or None when no pair is ready yet.
        """
        return self._pop(oldest=True, max_behind=max_behind)

    def _pop(self, oldest: bool, max_behind: int | None = None) -> SyncedPair | None:
        with self._lock:
            self._prune_unpairable()
            if max_behind is not None:
                oldest = self._ready_count() <= max_behind
            best = self._best_ready_pair(oldest)
            if best is None:
                return None
            index_first, index_second = best
            first, second = self._streams
            pair = SyncedPair(
                first.stamps[index_first], first.items[index_first],
                second.stamps[index_second], second.items[index_second],
            )
            # Classify all older messages before removing any, so partners still count as such.
            for stream, index in ((0, index_first), (1, index_second)):
                for stamp in self._streams[stream].stamps[:index]:
                    self._count_drop(stream, stamp)
            for stream, index in ((0, index_first), (1, index_second)):
                queue = self._streams[stream]
                queue.last_taken_ns = queue.stamps[index]
                del queue.stamps[: index + 1], queue.items[: index + 1]
            self.pairs += 1
            return pair

    def drops(self) -> dict[str, dict[str, int]]:
        """Dropped message counts: stream name -> reason -> count."""
        with self._lock:
            return {name: dict(counts) for name, counts in self._drops.items()}

    def received(self) -> dict[str, int]:
        """Messages received per stream name."""
        with self._lock:
            return {queue.name: queue.received for queue in self._streams}

    def queued(self) -> dict[str, int]:
        """Messages waiting per stream name."""
        with self._lock:
            return {queue.name: len(queue.stamps) for queue in self._streams}

    def reset(self) -> None:
        """Forget all queued messages and stream history (counts are kept)."""
        with self._lock:
            self._reset_locked()

    # --- helpers (lock held) -------------------------------------------------------------

    def _reset_locked(self) -> None:
        for queue in self._streams:
            queue.clear()
        self.resets += 1

    def _nearest(self, stream: int, stamp_ns: int) -> int | None:
        """Index of the message of `stream` closest to stamp_ns within the slop."""
        stamps = self._streams[stream].stamps
        position = bisect.bisect_left(stamps, stamp_ns)
        candidates = [i for i in (position - 1, position) if 0 <= i < len(stamps)]
        if not candidates:
            return None
        index = min(candidates, key=lambda i: abs(stamps[i] - stamp_ns))
        return index if abs(stamps[index] - stamp_ns) <= self._slop_ns else None

    def _count_drop(self, stream: int, stamp_ns: int) -> None:
        reason = "stale" if self._nearest(1 - stream, stamp_ns) is not None else "unpaired"
        self._drops[self._streams[stream].name][reason] += 1

    def _prune_unpairable(self) -> None:
        """Drop front messages that no present or future message of the other stream can match."""
        for stream in (0, 1):
            queue, other = self._streams[stream], self._streams[1 - stream]
            while queue.stamps and other.newest_seen_ns is not None:
                stamp = queue.stamps[0]
                if self._nearest(1 - stream, stamp) is None and other.newest_seen_ns > stamp + self._slop_ns:
                    queue.pop_front()
                    self._drops[queue.name]["unpaired"] += 1
                else:
                    break

    def _is_ready(self, stamp_first: int, stamp_second: int) -> bool:
        first, second = self._streams
        if first.newest_seen_ns is None or second.newest_seen_ns is None:
            return False
        both_caught_up = second.newest_seen_ns >= stamp_first and first.newest_seen_ns >= stamp_second
        moved_on = max(first.newest_seen_ns, second.newest_seen_ns) > max(stamp_first, stamp_second) + self._slop_ns
        return both_caught_up or moved_on

    def _ready_count(self) -> int:
        """How many messages of the first stream have a ready partner."""
        first, second = self._streams
        count = 0
        for stamp_first in first.stamps:
            index_second = self._nearest(1, stamp_first)
            if index_second is not None and self._is_ready(stamp_first, second.stamps[index_second]):
                count += 1
        return count

    def _best_ready_pair(self, oldest: bool = False) -> tuple[int, int] | None:
        """Indices of the ready pair with the newest (or oldest) older stamp, then the smallest gap."""
        first = self._streams[0]
        best: tuple[int, int] | None = None
        best_key: tuple[int, int] | None = None
        for index_first in range(len(first.stamps) - 1, -1, -1):
            stamp_first = first.stamps[index_first]
            index_second = self._nearest(1, stamp_first)
            if index_second is None:
                continue
            stamp_second = self._streams[1].stamps[index_second]
            if not self._is_ready(stamp_first, stamp_second):
                continue
            older = min(stamp_first, stamp_second)
            key = (-older, -abs(stamp_first - stamp_second)) if oldest else (older, -abs(stamp_first - stamp_second))
            if best_key is None or key > best_key:
                best, best_key = (index_first, index_second), key
        return best
