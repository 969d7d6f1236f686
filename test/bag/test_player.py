"""Tests of ivif_ros.bag.player over real DDS (the localhost-only domain of test/conftest.py).

play -> subscriber: counts, stamps, start offset, restamped loop.
play -> fusion_node (own process) -> subscriber: fused frames for >= 95 % of the pairs at 10 Hz.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sensor_msgs.msg import CameraInfo, Image

from ivif_ros.bag import BagError, MakeOptions, find_image_pairs, make_bag
from ivif_ros.bag.player import PlayOptions, PlaySummary, play_bag

from _bagdata import START_NS, write_pairs
from dds_helpers import Collector

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def listener(domain_id: int) -> Iterator[Collector]:
    result = Collector(
        domain_id,
        {"/thermal/image_raw": Image, "/rgb/image_raw": Image, "/rgb/camera_info": CameraInfo, "/fused/image": Image},
    )
    yield result
    result.close()


def _play(bag: Path, options: PlayOptions) -> PlaySummary:
    return play_bag(bag, options, log=lambda line: None)


def test_play_timing_counts_and_stamps(small_bag: Path, listener: Collector, domain_id: int) -> None:
    opts = PlayOptions(rate=2.0, wait_for_subscribers=20.0, domain_id=domain_id)
    summary = _play(small_bag, opts)
    topics = ("/rgb/camera_info", "/rgb/image_raw", "/thermal/camera_info", "/thermal/image_raw")
    assert summary.published == dict.fromkeys(topics, 8)
    assert summary.passes == 1 and not summary.stopped
    assert summary.wall_s >= 0.3  # 0.705 s of bag at 2x
    assert listener.wait_for(lambda: len(listener.stamps["/rgb/image_raw"]) == 8, 5.0)
    assert listener.wait_for(lambda: len(listener.stamps["/thermal/image_raw"]) == 8, 5.0)
    assert listener.stamps["/rgb/image_raw"] == [START_NS + k * 100_000_000 for k in range(8)]
    assert listener.stamps["/thermal/image_raw"] == [START_NS + k * 100_000_000 + 5_000_000 for k in range(8)]
    assert listener.wait_for(lambda: len(listener.stamps["/rgb/camera_info"]) == 8, 5.0)


def test_play_offset_restamp_loop(small_bag: Path, listener: Collector, domain_id: int) -> None:
    opts = PlayOptions(
        rate=4.0, loop=True, max_loops=2, start_offset=0.35, restamp=True, topics=("rgb/image_raw",),
        wait_for_subscribers=20.0, domain_id=domain_id,
    )
    before = time.time_ns()
    summary = _play(small_bag, opts)
    assert summary.passes == 2 and summary.published == {"/rgb/image_raw": 8}
    assert listener.wait_for(lambda: len(listener.stamps["/rgb/image_raw"]) == 8, 5.0)
    stamps = listener.stamps["/rgb/image_raw"]
    # frames 4..7 twice, restamped to the wall clock: 100 ms of bag time = 25 ms at rate 4
    assert stamps == sorted(stamps) and stamps[0] >= before
    assert [s - stamps[0] for s in stamps[:4]] == [k * 25_000_000 for k in range(4)]
    assert [s - stamps[4] for s in stamps[4:]] == [k * 25_000_000 for k in range(4)]
    assert listener.stamps["/thermal/image_raw"] == []


def test_play_errors(small_bag: Path, tmp_path: Path) -> None:
    with pytest.raises(BagError, match="past the end"):
        _play(small_bag, PlayOptions(start_offset=5.0))
    with pytest.raises(BagError, match="/depth not in"):
        _play(small_bag, PlayOptions(topics=("/depth",)))
    with pytest.raises(BagError, match="--rate"):
        _play(small_bag, PlayOptions(rate=0.0))
    with pytest.raises(BagError, match="bag not found"):
        _play(tmp_path / "none", PlayOptions())


def _start_node(domain_id: int, log_path: Path) -> subprocess.Popen:
    """``fusion_node`` (console script, else the module) in its own process, in the test domain."""
    script = shutil.which("fusion_node")
    command = [script] if script else [sys.executable, "-m", "ivif_ros.ros.fusion_node"]
    command += ["--ros-args", "-p", "device:=cpu"]
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",  # small frames: one torch thread, less contention on shared CPUs
    )
    log = log_path.open("w")
    try:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_play_through_fusion_node(tmp_path: Path, domain_id: int) -> None:
    pytest.importorskip("ivif_ros.ros.fusion_node", reason="fusion_node not available")
    from diagnostic_msgs.msg import DiagnosticArray

    listener = Collector(domain_id, {"/fused/image": Image})
    diagnostics: list[DiagnosticArray] = []
    listener.node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    write_pairs(tmp_path / "data", 40, size=(96, 128))
    pairs, _ = find_image_pairs(tmp_path / "data")
    bag = tmp_path / "bag"
    made = make_bag(pairs, bag, MakeOptions(rate=10.0, jitter_ms=2.0, offset_ms=5.0, start_ns=START_NS))
    node = _start_node(domain_id, tmp_path / "node.log")
    try:
        started = listener.wait_for(lambda: listener.node.count_publishers("/fused/image") > 0, 60.0)
        assert started, f"fusion_node did not start: {(tmp_path / 'node.log').read_text()[-2000:]}"
        summary = _play(bag, PlayOptions(rate=1.0, wait_for_subscribers=30.0, domain_id=domain_id))
        assert summary.published["/rgb/image_raw"] == 40
        wanted = set(made.rgb_stamps_ns)
        listener.wait_for(lambda: len(set(listener.stamps["/fused/image"]) & wanted) >= 39, 5.0)
        time.sleep(1.2)  # one more diagnostics period
    finally:
        _stop(node)
        listener.close()
    fused = set(listener.stamps["/fused/image"]) & wanted
    status = [
        f"{kv.key}={kv.value}" for array in diagnostics[-1:] for st in array.status for kv in st.values
    ]
    missing = [k for k, stamp in enumerate(made.rgb_stamps_ns) if stamp not in fused]
    assert len(fused) >= 0.95 * len(wanted), (
        f"{len(fused)}/{len(wanted)} fused, missing pairs {missing}; node status: {' '.join(status)}; "
        f"node log: {(tmp_path / 'node.log').read_text()[-1500:]}"
    )
