"""Synchroniser under stamp faults: duplicates, late messages, clocks stepping back, catch-up order."""
from __future__ import annotations

from ivif_ros.ros.sync import ApproximateSynchronizer

MS = 1_000_000


def _sync() -> ApproximateSynchronizer:
    return ApproximateSynchronizer(20 * MS, queue_size=10, names=("thermal", "rgb"))


def _add_pair(sync: ApproximateSynchronizer, stamp: int) -> None:
    sync.add(0, stamp, f"t{stamp}")
    sync.add(1, stamp, f"r{stamp}")


def _drops(sync: ApproximateSynchronizer, reason: str) -> int:
    return sum(counts.get(reason, 0) for counts in sync.drops().values())


def test_duplicated_pair_after_it_was_taken_gives_one_pair() -> None:
    sync = _sync()
    _add_pair(sync, 100 * MS)
    assert sync.pop_latest().first_stamp_ns == 100 * MS
    _add_pair(sync, 100 * MS)
    assert sync.pop_latest() is None
    assert _drops(sync, "duplicate") == 2


def test_duplicated_pair_while_queued_gives_one_pair() -> None:
    sync = _sync()
    _add_pair(sync, 100 * MS)
    _add_pair(sync, 100 * MS)
    assert sync.pop_latest() is not None and sync.pop_latest() is None
    assert _drops(sync, "duplicate") == 2 and _drops(sync, "stale") == 0


def test_single_late_message_is_out_of_order_without_reset() -> None:
    sync = _sync()
    _add_pair(sync, 200 * MS)
    assert sync.pop_latest() is not None
    sync.add(0, 100 * MS, "late")
    _add_pair(sync, 300 * MS)
    assert sync.pop_latest().first_stamp_ns == 300 * MS
    assert _drops(sync, "out_of_order") == 1 and sync.resets == 0


def test_clock_stepping_back_half_a_second_resets_and_pairs_again() -> None:
    sync = _sync()
    for k in range(10, 15):
        _add_pair(sync, k * 100 * MS)
        assert sync.pop_latest() is not None
    taken = []
    for k in range(9, 14):  # 0.5 s back, then on at the same rate
        _add_pair(sync, k * 100 * MS - 1 * MS)
        pair = sync.pop_latest()
        if pair is not None:
            taken.append(pair.first_stamp_ns)
    assert sync.resets == 1
    assert taken == [k * 100 * MS - 1 * MS for k in range(10, 14)]  # only the first pair after the step is lost


def test_pop_oldest_returns_queued_pairs_in_order() -> None:
    sync = _sync()
    for k in range(1, 6):
        _add_pair(sync, k * 100 * MS)
    assert [sync.pop_oldest().first_stamp_ns for _ in range(5)] == [k * 100 * MS for k in range(1, 6)]
    assert sync.pop_oldest() is None
    assert sum(sum(c.values()) for c in sync.drops().values()) == 0


def test_pop_next_fuses_a_short_backlog_in_order_and_skips_a_long_one() -> None:
    sync = _sync()
    for k in range(1, 4):  # three pairs ready, one more message after them makes the last one ready
        _add_pair(sync, k * 100 * MS)
    sync.add(0, 400 * MS, "t400")
    taken = [sync.pop_next(max_behind=3).first_stamp_ns for _ in range(3)]
    assert taken == [100 * MS, 200 * MS, 300 * MS] and _drops(sync, "stale") == 0

    for k in range(5, 10):  # five ready pairs behind: more than the allowed backlog of 2
        _add_pair(sync, k * 100 * MS)
    sync.add(1, 400 * MS, "r400")
    sync.add(0, 1000 * MS, "t1000")
    assert sync.pop_next(max_behind=2).first_stamp_ns == 900 * MS
    assert _drops(sync, "stale") > 0
