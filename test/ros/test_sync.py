"""Tests for ivif_ros.ros.sync on synthetic stamp sequences (no rclpy)."""
from __future__ import annotations

import random
import threading

import pytest

from ivif_ros.ros.sync import ApproximateSynchronizer, SyncedPair

MS = 1_000_000


def _sync(slop_ms: float = 10, queue_size: int = 10) -> ApproximateSynchronizer:
    return ApproximateSynchronizer(int(slop_ms * MS), queue_size, names=("thermal", "rgb"))


def _feed(sync: ApproximateSynchronizer, events: list[tuple[int, int]]) -> list[SyncedPair]:
    """Add (stream, stamp) events in order, popping after each like an idle worker."""
    pairs = []
    for stream, stamp in events:
        sync.add(stream, stamp, (stream, stamp))
        pair = sync.pop_latest()
        if pair is not None:
            pairs.append(pair)
    return pairs


def _merge(thermal: list[int], rgb: list[int], latency: dict[int, int] | None = None) -> list[tuple[int, int]]:
    """Arrival order of two stamp lists (arrival = stamp + per-stream latency)."""
    latency = latency or {0: 0, 1: 0}
    events = [(0, s) for s in thermal] + [(1, s) for s in rgb]
    return sorted(events, key=lambda e: (e[1] + latency[e[0]], e[0]))


def _assert_accounting(sync: ApproximateSynchronizer, pairs: int) -> None:
    """Every received message is taken in a pair, dropped with a reason, or still queued."""
    drops, received, queued = sync.drops(), sync.received(), sync.queued()
    for name in sync.names:
        assert received[name] == pairs + sum(drops[name].values()) + queued[name], (name, drops, received)


class TestPairing:
    def test_equal_stamps_pair_one_to_one_without_drops(self) -> None:
        stamps = [k * 33 * MS for k in range(20)]
        sync = _sync()
        pairs = _feed(sync, _merge(stamps, stamps))
        assert [(p.first_stamp_ns, p.second_stamp_ns) for p in pairs] == list(zip(stamps, stamps, strict=True))
        assert sync.drops() == {"thermal": {}, "rgb": {}}
        _assert_accounting(sync, len(pairs))

    def test_jitter_pairs_the_matching_frames(self) -> None:
        rng = random.Random(1)
        base = [k * 33 * MS for k in range(60)]
        thermal = [s + rng.randint(-4, 4) * MS for s in base]
        rgb = [s + rng.randint(-4, 4) * MS for s in base]
        sync = _sync(slop_ms=10)
        pairs = _feed(sync, _merge(thermal, rgb, latency={0: 2 * MS, 1: 1 * MS}))
        taken = {(p.first_stamp_ns, p.second_stamp_ns) for p in pairs}
        # The last pair may still wait for a later frame; all others are the true pairs.
        assert len(pairs) >= len(base) - 1
        assert taken <= set(zip(thermal, rgb, strict=True))
        _assert_accounting(sync, len(pairs))

    def test_different_rates_9hz_thermal_30hz_rgb(self) -> None:
        thermal = [round(k * 1e9 / 9) for k in range(27)]  # 3 s
        rgb = [round(k * 1e9 / 30) + 2 * MS for k in range(90)]
        sync = _sync(slop_ms=17)
        pairs = _feed(sync, _merge(thermal, rgb))
        assert len(pairs) >= len(thermal) - 1
        for pair in pairs:  # each thermal frame got its nearest RGB frame
            nearest = min(rgb, key=lambda s: abs(s - pair.first_stamp_ns))
            assert pair.second_stamp_ns == nearest
        rgb_drops = sync.drops()["rgb"]
        assert sum(rgb_drops.values()) + len(pairs) + sync.queued()["rgb"] == len(rgb)
        assert rgb_drops.get("unpaired", 0) > 0
        _assert_accounting(sync, len(pairs))

    def test_pair_waits_until_no_closer_partner_can_come(self) -> None:
        sync = _sync(slop_ms=20)
        sync.add(1, 0, "rgb0")
        sync.add(0, 3 * MS, "thermal0")
        assert sync.pop_latest() is None  # an RGB frame at 3 ms could still arrive
        sync.add(1, 33 * MS, "rgb1")
        pair = sync.pop_latest()
        assert pair is not None and (pair.first, pair.second) == ("thermal0", "rgb0")

    def test_out_of_order_stamps(self) -> None:
        sync = _sync(slop_ms=5)
        base = [k * 33 * MS for k in range(12)]
        rgb = base[:]
        rgb[3], rgb[4] = rgb[4], rgb[3]  # swapped in transit, both before their thermal partners
        events = [(1, s) for s in rgb[:5]] + [(0, s) for s in base[:5]]
        pairs = _feed(sync, events)
        assert [(p.first_stamp_ns, p.second_stamp_ns) for p in pairs][-1] == (base[4], base[4])
        assert all(p.first_stamp_ns == p.second_stamp_ns for p in pairs)
        sync.add(1, base[2], "late duplicate of an already taken stamp")
        assert sync.drops()["rgb"]["out_of_order"] == 1
        _assert_accounting(sync, len(pairs))

    def test_one_stream_silent_then_back(self) -> None:
        sync = _sync(slop_ms=10, queue_size=5)
        stamps = [k * 33 * MS for k in range(60)]
        pairs = _feed(sync, _merge(stamps[:10], stamps[:10]))
        assert len(pairs) == 10
        # Thermal silent for 30 RGB frames: nothing is paired, RGB is dropped as unpaired.
        assert _feed(sync, [(1, s) for s in stamps[10:40]]) == []
        assert sync.drops()["rgb"]["unpaired"] >= 30 - 5
        assert sync.queued()["rgb"] <= 5
        # Thermal is back: pairing resumes on the new frames.
        resumed = _feed(sync, _merge(stamps[40:], stamps[40:]))
        assert [p.first_stamp_ns for p in resumed] == stamps[40:]
        _assert_accounting(sync, len(pairs) + len(resumed))

    def test_other_stream_silent_releases_the_waiting_pair(self) -> None:
        sync = _sync(slop_ms=10)
        sync.add(0, 5 * MS, "thermal")
        sync.add(1, 0, "rgb")
        assert sync.pop_latest() is None
        sync.add(1, 30 * MS, "rgb later, no thermal partner")  # rgb moved on by more than the slop
        pair = sync.pop_latest()
        assert pair is not None and pair.second == "rgb"


class TestLatestPairPolicy:
    def test_slow_consumer_gets_the_newest_pair_and_drops_are_counted(self) -> None:
        sync = _sync(slop_ms=5, queue_size=20)
        stamps = [k * 33 * MS for k in range(10)]
        for stream, stamp in _merge(stamps, stamps):
            sync.add(stream, stamp, stamp)
        pair = sync.pop_latest()
        assert pair is not None and pair.first_stamp_ns == pair.second_stamp_ns == stamps[-1]
        assert sync.drops() == {"thermal": {"stale": 9}, "rgb": {"stale": 9}}
        assert sync.pop_latest() is None
        _assert_accounting(sync, 1)

    def test_queues_are_bounded(self) -> None:
        sync = _sync(slop_ms=5, queue_size=3)
        for k in range(50):
            sync.add(0, k * 33 * MS, k)
        assert sync.queued() == {"thermal": 3, "rgb": 0}
        assert sync.drops()["thermal"]["unpaired"] == 47


class TestControl:
    def test_slop_changes_at_runtime(self) -> None:
        sync = _sync(slop_ms=1)
        sync.add(0, 0, "t")
        sync.add(1, 8 * MS, "r")
        sync.add(1, 100 * MS, "r2")
        sync.add(0, 100 * MS, "t2")
        sync.slop_ns = 10 * MS
        pair = sync.pop_latest()
        assert pair is not None and pair.first == "t2"

    def test_time_jump_back_resets(self) -> None:
        sync = _sync()
        stamps = [100_000 * MS + k * 33 * MS for k in range(5)]
        assert len(_feed(sync, _merge(stamps, stamps))) == 5
        restarted = [k * 33 * MS for k in range(5)]  # a bag replay starting over
        assert len(_feed(sync, _merge(restarted, restarted))) == 5
        assert sync.resets == 1

    @pytest.mark.parametrize(
        "kwargs", [{"slop_ns": -1}, {"slop_ns": 0, "queue_size": 0}, {"slop_ns": 0, "reset_ns": 0}]
    )
    def test_bad_arguments(self, kwargs: dict) -> None:
        with pytest.raises(ValueError):
            ApproximateSynchronizer(**kwargs)

    def test_concurrent_producers_and_consumer_keep_accounting(self) -> None:
        sync = _sync(slop_ms=5, queue_size=4)
        taken: list[SyncedPair] = []
        done = threading.Event()

        def produce(stream: int) -> None:
            for k in range(2000):
                sync.add(stream, k * MS * 33, k)

        def consume() -> None:
            while not done.is_set():
                pair = sync.pop_latest()
                if pair is not None:
                    taken.append(pair)

        consumer = threading.Thread(target=consume)
        consumer.start()
        producers = [threading.Thread(target=produce, args=(s,)) for s in (0, 1)]
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join()
        done.set()
        consumer.join()
        assert all(p.first == p.second for p in taken)
        assert [p.first for p in taken] == sorted(p.first for p in taken)
        _assert_accounting(sync, len(taken))
