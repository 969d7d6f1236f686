"""Fault injection over real DDS: fusion_node in its own process, the injector in this one.

One test per fault class (``ivif_ros.ros.faults``). After every fault the node process must be
alive and fuse each of the next good pairs (sent one at a time, each awaited). Two node processes
serve the suite: one with raw inputs (and ``stall_timeout`` 2 s), one with compressed (PNG) inputs
whose seed weights cannot load.
"""
from __future__ import annotations

import gc
import logging
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.ros.faults import COMPRESSED_FAULTS, RAW_FAULTS, Injector, fault_size_mismatch

from ros_test_helpers import start_node, stop_process

# Reader depth 10: a fault is a burst of messages, which keep-last 2 would partly overwrite unseen.
SMALL = ["-p", "warmup_size:=[160.0, 128.0]", "-p", "diagnostics_period:=0.3", "-p", "qos_depth:=10"]


class RunningNode(NamedTuple):
    process: subprocess.Popen
    injector: Injector
    log: Path


def _namespace() -> str:
    """A namespace of its own, so nodes of other test runs in the same DDS domain cannot interfere."""
    return f"/faults_{os.getpid()}_{random.randrange(1 << 30)}"


def _running_node(domain: int, log: Path, ros_args: list[str], **injector_options: str) -> Iterator[RunningNode]:
    namespace = _namespace()
    process = start_node(domain, log, [*SMALL, "-r", f"__ns:={namespace}", *ros_args])
    injector = Injector(domain, namespace=namespace, **injector_options)
    try:
        assert injector.wait_ready(90, alive=lambda: process.poll() is None), log.read_text()
        yield RunningNode(process, injector, log)
    finally:
        injector.close()
        stop_process(process)


@pytest.fixture(scope="module")
def domain_id() -> int:
    """Base DDS domain of this module (3 consecutive ids): $IVIF_TEST_DOMAIN_BASE, else random."""
    base = os.environ.get("IVIF_TEST_DOMAIN_BASE")
    return int(base) if base else random.randint(1, 98)


@pytest.fixture(scope="module")
def raw_node(domain_id: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    log = tmp_path_factory.mktemp("raw") / "fusion_node.log"
    yield from _running_node(domain_id, log, ["-p", "stall_timeout:=2.0"])


@pytest.fixture(scope="module")
def compressed_node(domain_id: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    log = tmp_path_factory.mktemp("compressed") / "fusion_node.log"
    args = ["-p", "thermal_transport:=compressed", "-p", "rgb_transport:=compressed",
            "-p", "seed_model:=/nonexistent/seed.safetensors"]
    yield from _running_node(domain_id + 1, log, args, thermal_transport="compressed", rgb_transport="compressed")


def _assert_alive_and_fusing(node: RunningNode, count: int = 3) -> None:
    assert node.process.poll() is None, node.log.read_text()[-3000:]
    missing = node.injector.fuses_next(count)
    assert not missing, f"good pairs {missing} of {count} not fused after the fault\n" + node.log.read_text()[-3000:]


def _fresh_status(node: RunningNode) -> tuple[str, str, dict[str, str]]:
    """The first fusion status published after this call."""
    now = time.monotonic()
    assert node.injector.wait_for(lambda: node.injector.latest_status(after=now) is not None, 5)
    return node.injector.latest_status(after=now)


def _drops(node: RunningNode, reason: str) -> int:
    status = node.injector.latest_status()
    return int(status[2].get(f"drops_{reason}", 0)) if status else 0


def _wait_drops(node: RunningNode, reason: str, at_least: int) -> bool:
    return node.injector.wait_for(lambda: _drops(node, reason) >= at_least, 10)


# ---- raw inputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault, reason, count",
    [("bad_encoding", "bad_encoding", 1), ("truncated_data", "bad_data", 1), ("absurd_sizes", "bad_data", 4),
     ("nan_32fc1", "bad_data", 1), ("size_mismatch", "size_mismatch", 1)],
)
def test_bad_message_is_counted_and_the_next_pairs_fuse(
    raw_node: RunningNode, fault: str, reason: str, count: int
) -> None:
    assert not raw_node.injector.fuses_next(1)
    before = _drops(raw_node, reason)
    RAW_FAULTS[fault](raw_node.injector)
    assert _wait_drops(raw_node, reason, before + count), raw_node.injector.latest_status()
    _assert_alive_and_fusing(raw_node)


def test_debug_image_of_mono16_and_32fc1_rgb_does_not_kill_the_worker(raw_node: RunningNode) -> None:
    debug_before = raw_node.injector.debug_frames
    RAW_FAULTS["debug_deep_rgb"](raw_node.injector)
    assert raw_node.injector.debug_frames >= debug_before + 2, raw_node.log.read_text()[-3000:]
    _assert_alive_and_fusing(raw_node)
    status = _fresh_status(raw_node)
    assert status[2]["worker_restarts"] == "0", status


def test_duplicated_pair_gives_one_output(raw_node: RunningNode) -> None:
    injector = raw_node.injector
    RAW_FAULTS["duplicate_pair"](injector)
    stamp = injector.clock_ns
    assert injector.wait_for(lambda: injector.outputs_for(stamp) >= 1, 10)
    _assert_alive_and_fusing(raw_node)
    assert injector.outputs_for(stamp) == 1
    assert _wait_drops(raw_node, "duplicate", 1), _fresh_status(raw_node)


def test_out_of_order_pair_is_counted_or_fused_in_order(raw_node: RunningNode) -> None:
    def late() -> int:  # after its successor was taken: out_of_order; while still queued: stale or unpaired
        return sum(_drops(raw_node, reason) for reason in ("out_of_order", "stale", "unpaired"))

    def both_fused_once() -> bool:  # still queued within max_backlog: the pairs are fused in stamp order
        injector = raw_node.injector
        return injector.outputs_for(first) == 1 and injector.outputs_for(first + injector.period_ns) == 1

    before = late()
    RAW_FAULTS["out_of_order"](raw_node.injector)
    first = raw_node.injector.clock_ns - raw_node.injector.period_ns
    _assert_alive_and_fusing(raw_node)
    assert raw_node.injector.wait_for(lambda: late() >= before + 1 or both_fused_once(), 10), str(
        (before, raw_node.injector.outputs_for(first),
         raw_node.injector.outputs_for(first + raw_node.injector.period_ns),
         {k: v for k, v in _fresh_status(raw_node)[2].items() if k.startswith(("drops", "sync", "worker"))}))


def test_stamps_jumping_back_do_not_block_the_following_pairs(raw_node: RunningNode) -> None:
    resets = int(_fresh_status(raw_node)[2]["sync_resets"])
    RAW_FAULTS["stamps_jump_back"](raw_node.injector)
    _assert_alive_and_fusing(raw_node, 5)
    status = _fresh_status(raw_node)
    assert int(status[2]["sync_resets"]) > resets, (resets, status)


def test_camera_silent_for_5_s_then_back(raw_node: RunningNode) -> None:
    RAW_FAULTS["camera_silent"](raw_node.injector)
    _assert_alive_and_fusing(raw_node)


def test_parameter_burst_while_streaming(raw_node: RunningNode) -> None:
    RAW_FAULTS["parameter_burst"](raw_node.injector)
    _assert_alive_and_fusing(raw_node)


def test_wrong_length_parameter(raw_node: RunningNode) -> None:
    RAW_FAULTS["wrong_length_parameter"](raw_node.injector)
    _assert_alive_and_fusing(raw_node)


def test_pairs_arriving_during_a_size_change_are_all_fused(raw_node: RunningNode) -> None:
    """The first pair of a new size is slow; the pairs queued meanwhile are fused in order, not dropped."""
    injector = raw_node.injector
    frames = [synthetic_pair(256, 320, seed=9, t=0.1 * k) for k in range(6)]
    sent = []
    for thermal, visible in frames:
        stamp = injector.next_stamp()
        sent.append((stamp, injector.publish(injector.message("thermal", thermal, "mono8", stamp),
                                             injector.message("rgb", visible, "bgr8", stamp))))
        time.sleep(0.01)
    fused = lambda: [stamp for stamp, at in sent if injector.outputs_for(stamp, at)]  # noqa: E731
    assert injector.wait_for(lambda: len(fused()) == len(sent), 20), str(
        (len(fused()), {k: v for k, v in _fresh_status(raw_node)[2].items() if k.startswith(("drops", "sync"))}))
    _assert_alive_and_fusing(raw_node)


def test_diagnostics_error_when_inputs_arrive_but_nothing_is_published(raw_node: RunningNode) -> None:
    injector = raw_node.injector
    start = time.monotonic()
    while time.monotonic() - start < 4.0:  # only refused pairs for twice stall_timeout
        fault_size_mismatch(injector)
        injector.clock_ns += injector.period_ns
        time.sleep(0.1)
    status = injector.latest_status(after=time.monotonic() - 0.5)
    assert status is not None and status[0] == "ERROR" and "nothing was published" in status[1], status
    _assert_alive_and_fusing(raw_node)
    assert injector.wait_for(lambda: injector.latest_status()[0] != "ERROR", 5), injector.latest_status()


# ---- compressed inputs --------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["png_header_bomb", "jpeg_header_bomb", "compressed_garbage"])
def test_compressed_fault_is_refused_before_decoding(compressed_node: RunningNode, fault: str) -> None:
    assert not compressed_node.injector.fuses_next(1)
    before = _drops(compressed_node, "bad_data")
    COMPRESSED_FAULTS[fault](compressed_node.injector)
    assert _wait_drops(compressed_node, "bad_data", before + 1), compressed_node.injector.latest_status()
    _assert_alive_and_fusing(compressed_node)
    assert "max_pixels" in compressed_node.log.read_text() or fault == "compressed_garbage"


def test_seed_mode_whose_weights_cannot_load(compressed_node: RunningNode) -> None:
    COMPRESSED_FAULTS["unloadable_seed_mode"](compressed_node.injector)
    _assert_alive_and_fusing(compressed_node)


# ---- watchdog (node in this process, so the test can end its worker thread) ----------------------
def test_watchdog_restarts_a_dead_worker_and_reports_error(domain_id: int) -> None:
    from ivif_ros.ros.fusion_node import FusionNode

    domain = domain_id + 2
    namespace = _namespace()
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    node = FusionNode(context=context, namespace=namespace, parameter_overrides=[
        Parameter("warmup_size", value=[160.0, 128.0]), Parameter("diagnostics_period", value=0.3),
        Parameter("qos_depth", value=10),
    ])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    injector = Injector(domain, namespace=namespace)
    try:
        assert injector.wait_ready(30)
        assert not injector.fuses_next(1)
        process = node._process

        def fatal_once(pair: object) -> None:
            node._process = process
            raise SystemExit("fatal error outside the per-frame guard")

        node._process = fatal_once
        injector.send_good(wait=False)
        assert injector.wait_for(lambda: (s := injector.latest_status()) is not None and s[0] == "ERROR", 10)
        level, message, values = injector.latest_status()
        assert "SystemExit" in message and values["worker_restarts"] == "1", (message, values)
        assert not injector.fuses_next(3)
    finally:
        injector.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_warm_up_runs_in_the_worker_thread_before_the_node_is_ready(domain_id: int, monkeypatch) -> None:
    """Memory is per thread (malloc arenas): the thread that fuses the frames must be the one warmed,
    before the constructor returns; an impossible warm-up still fails the start with its reason. As the
    console script makes it, the node also freezes the start-up's objects (no long full collections)."""
    from ivif_ros.core.errors import FusionInputError
    from ivif_ros.core.pipeline import FusionPipeline
    from ivif_ros.ros.fusion_node import FusionNode

    calls: list[tuple[str, tuple[int, ...]]] = []
    fuse = FusionPipeline.__call__

    def recording(pipeline: FusionPipeline, ir, vis):
        calls.append((threading.current_thread().name, ir.shape[:2]))
        return fuse(pipeline, ir, vis)

    monkeypatch.setattr(FusionPipeline, "__call__", recording)
    domain = domain_id + 2
    namespace = _namespace()
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    small = [Parameter("warmup_size", value=[160.0, 128.0]), Parameter("diagnostics_period", value=0.3)]
    bridge = logging.getLogger("ivif_ros")
    before = (bridge.level, bridge.propagate, list(bridge.handlers))
    node = executor = injector = None
    try:
        with pytest.raises(FusionInputError, match="warmup_size"):
            FusionNode("refused_warm_up", context=context, namespace=namespace,
                       parameter_overrides=[*small, Parameter("max_pixels", value=10000)])
        assert (bridge.level, bridge.propagate, list(bridge.handlers)) == before  # the failed start left no bridge
        assert not calls
        frozen = gc.get_freeze_count()
        node = FusionNode(context=context, namespace=namespace, parameter_overrides=small, freeze_startup_objects=True)
        assert calls == [("fusion_worker", (128, 160))] * 2  # warmed in the worker before the constructor returned
        assert gc.get_freeze_count() > frozen + 10000  # the start-up's objects are out of the collector's sight
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        injector = Injector(domain, namespace=namespace)
        assert injector.wait_ready(30)
        assert not injector.fuses_next(2)
        assert len(calls) >= 4 and {name for name, _ in calls} == {"fusion_worker"}
    finally:
        if injector is not None:
            injector.close()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        gc.unfreeze()  # the rest of this test process collects as usual
