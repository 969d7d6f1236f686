"""Integration tests of fusion_node over real DDS: publisher process -> node process -> this process."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from ivif_ros.backends.choice import create_pipeline
from ivif_ros.ros.conversions import image_to_array

from dds_helpers import Collector
from pair_publisher import EPOCH_S, FRAME_ID, frame
from ros_test_helpers import REPO, drop_count, run_publisher, start_node, stop_process

HEIGHT, WIDTH = 128, 160
CONFIG = REPO / "config" / "fusion.yaml"


@pytest.fixture(scope="module")
def node(domain_id: int, collector: Collector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """fusion_node started with config/fusion.yaml; yields its log file."""
    log_path = tmp_path_factory.mktemp("node") / "fusion_node.log"
    process = start_node(domain_id, log_path, ["--params-file", str(CONFIG), "-p", "diagnostics_period:=0.5"])
    ready = collector.wait_for(lambda: collector.publisher_count("/fused/image") > 0 or process.poll() is not None, 60)
    assert ready and process.poll() is None, log_path.read_text()
    yield log_path
    stop_process(process)


def _frame_index(msg) -> int | None:
    """Good frames carry whole-second stamps EPOCH_S + k."""
    return msg.header.stamp.sec - EPOCH_S if msg.header.stamp.nanosec == 0 else None


def _by_frame(messages) -> dict[int, object]:
    return {k: m for m in messages if (k := _frame_index(m)) is not None}


class TestFusionNode:
    def test_good_pairs_are_fused(self, node: Path, collector: Collector, domain_id: int) -> None:
        result = run_publisher(domain_id, "--count", "12", "--rate", "10",
                               "--height", str(HEIGHT), "--width", str(WIDTH))
        assert result.returncode == 0, result.stderr
        # A node slower than 10 Hz drops stale pairs, but the newest pair (frame 11) always comes out.
        def last_frame_out(topic: str) -> bool:
            return 11 in _by_frame(collector.messages[topic])

        assert collector.wait_for(lambda: last_frame_out("/fused/image"), 30), node.read_text()
        collector.wait_for(lambda: last_frame_out("/weight_map/colored"), 5)
        fused = _by_frame(collector.messages["/fused/image"])
        weights = _by_frame(collector.messages["/weight_map/image"])
        colored = _by_frame(collector.messages["/weight_map/colored"])
        assert len(fused) >= 2 and set(fused) <= set(range(12))
        assert 11 in weights and 11 in colored

        # The node runs config/fusion.yaml = the FusionConfig defaults, in stream mode over the pairs it
        # fused (stale pairs are dropped before fusion), so the core's stream over the same frames in
        # stamp order must give the same images. Untrained detectors are randomly initialised per
        # process, so pixel equality with the core needs trained weights.
        pipeline = create_pipeline(stream=True)
        trained = pipeline.describe()["trained"]
        for k, msg in sorted(fused.items()):
            assert (msg.encoding, msg.height, msg.width, msg.header.frame_id) == ("bgr8", HEIGHT, WIDTH, FRAME_ID)
            thermal, visible = frame(k, HEIGHT, WIDTH)
            image = image_to_array(msg)
            expected = pipeline(thermal, visible)
            if trained:
                assert np.abs(image.astype(int) - expected.fused).mean() < 1.0
            assert not np.array_equal(image, visible)
            assert not np.array_equal(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), thermal)
            if k in weights:
                weight_map = image_to_array(weights[k])
                assert weights[k].encoding == "32FC1" and weight_map.shape == (HEIGHT, WIDTH)
                assert weight_map.min() >= 0.0 and weight_map.max() <= 1.0
                if trained:
                    np.testing.assert_allclose(weight_map, expected.weights, atol=0.02)
                # The fused image leans to the visible image where the weight is high, to thermal where low.
                fused_gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
                visible_gray = cv2.cvtColor(visible, cv2.COLOR_BGR2GRAY).astype(np.float64)
                closer_to_visible = np.abs(fused_gray - thermal) - np.abs(fused_gray - visible_gray)
                assert np.corrcoef(weight_map.ravel(), closer_to_visible.ravel())[0, 1] > 0.0
            if k in colored:
                assert colored[k].encoding == "bgr8" and (colored[k].height, colored[k].width) == (HEIGHT, WIDTH)

    def test_diagnostics_report_rates_latency_and_backend(self, node: Path, collector: Collector) -> None:
        assert collector.wait_for(lambda: "backend" in collector.latest_diagnostic_values(), 10)
        values = collector.latest_diagnostic_values()
        for key in ("thermal_rate_hz", "rgb_rate_hz", "output_rate_hz", "pair_latency_ms_p50",
                    "processing_ms_p99", "drops_total", "backend", "device", "model", "trained"):
            assert key in values, key
        assert int(values["outputs"]) >= 2
        assert float(values["processing_ms_p50"]) > 0.0

    def test_bad_messages_are_dropped_counted_and_logged(
        self, node: Path, collector: Collector, domain_id: int
    ) -> None:
        before = len(collector.messages["/fused/image"])
        result = run_publisher(domain_id, "--count", "10", "--rate", "10", "--bad",
                               "--height", str(HEIGHT), "--width", str(WIDTH))
        assert result.returncode == 0, result.stderr

        def counted() -> bool:
            values = collector.latest_diagnostic_values()
            return (drop_count(values, "bad_encoding") >= 1 and drop_count(values, "size_mismatch") >= 1
                    and drop_count(values, "bad_data") >= 2)

        assert collector.wait_for(counted, 15), (collector.latest_diagnostic_values(), node.read_text())
        log = node.read_text()
        for reason in ("bad_encoding", "size_mismatch", "bad_data"):
            assert f"dropped ({reason})" in log
        # Good pairs after the bad ones are still served: the last one (frame 9) always comes out.
        assert collector.wait_for(lambda: 9 in _by_frame(collector.messages["/fused/image"][before:]), 20)
        assert all(m.height == HEIGHT for m in collector.messages["/fused/image"])

    def test_runtime_parameters(self, node: Path, collector: Collector) -> None:
        client = AsyncParameterClient(collector.node, "/fusion_node")
        assert client.wait_for_services(timeout_sec=10.0)

        def set_params(*parameters: Parameter) -> list:
            future = client.set_parameters(list(parameters))
            assert collector.wait_for(future.done, 10)
            return future.result().results

        accepted = set_params(Parameter("visible_enhance", value=0.8), Parameter("slop", value=0.05),
                              Parameter("mode", value="default"))
        assert all(r.successful for r in accepted), accepted
        (out_of_range,) = set_params(Parameter("visible_enhance", value=2.0))
        assert not out_of_range.successful
        (bad_mode,) = set_params(Parameter("mode", value="nonsense"))
        assert not bad_mode.successful and "mode" in bad_mode.reason
        (start_only,) = set_params(Parameter("backend", value="torch"))
        assert not start_only.successful
        future = client.get_parameters(["visible_enhance", "backend"])
        assert collector.wait_for(future.done, 10)
        values = future.result().values
        assert values[0].type == ParameterType.PARAMETER_DOUBLE and values[0].double_value == 0.8
        assert values[1].string_value == "auto"
        assert "pipeline updated" in node.read_text() or collector.wait_for(
            lambda: "pipeline updated" in node.read_text(), 5
        )


def test_sigint_shuts_down_cleanly(domain_id: int, tmp_path: Path) -> None:
    log_path = tmp_path / "node.log"
    process = start_node(domain_id + 1, log_path)
    deadline = time.monotonic() + 60
    while "subscribed" not in log_path.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, log_path.read_text()
    assert stop_process(process) == 0
    assert "Traceback" not in log_path.read_text()


def test_bad_parameter_at_start_exits_with_a_clear_line(domain_id: int, tmp_path: Path) -> None:
    log_path = tmp_path / "node.log"
    process = start_node(domain_id + 2, log_path, ["-p", "qos_reliability:=sometimes"])
    try:
        assert process.wait(60) == 1
    except subprocess.TimeoutExpired:
        stop_process(process)
        raise
    log = log_path.read_text()
    assert "qos_reliability" in log and "Traceback" not in log
