"""fusion_node input transports over real DDS: CompressedImage inputs and automatic QoS following.

Each test starts its own node process in the module's DDS domain (localhost discovery), runs the
pair publisher process and records the node's outputs in this process.
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from ivif_ros.backends.choice import create_pipeline
from ivif_ros.core.pipeline import FusionPipeline
from ivif_ros.ros.conversions import image_to_array

from dds_helpers import Collector
from pair_publisher import EPOCH_S, FRAME_ID, frame
from ros_test_helpers import drop_count, large_images_env, run_publisher, start_node, stop_process

FUSED = "/fused/image"


@pytest.fixture
def fused_collector(domain_id: int) -> Iterator[Collector]:
    """Records /fused/image and /diagnostics in the test's domain_id."""
    result = Collector(domain_id, (FUSED,))
    yield result
    result.close()


@pytest.fixture(scope="module")
def pipeline() -> FusionPipeline:
    """The core pipeline with the node's defaults (shipped, trained detector)."""
    return create_pipeline()


@contextmanager
def running_node(
    domain_id: int, log_path: Path, collector: Collector, ros_args: list[str], extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A fusion_node process, ready once both inputs are subscribed and its fused publisher is
    discovered; stopped (SIGINT) on exit."""
    process = start_node(domain_id, log_path, ros_args, extra_env)
    try:
        ready = collector.wait_for(
            lambda: process.poll() is not None
            or (log_path.read_text().count("subscribed /") >= 2 and collector.publisher_count(FUSED) > 0),
            60,
        )
        assert ready and process.poll() is None, log_path.read_text()
        yield process
    finally:
        stop_process(process)


def _fused_by_frame(collector: Collector) -> dict[int, Image]:
    """Fused messages by good frame index k (RGB stamp EPOCH_S + k s, nanosec 0)."""
    return {m.header.stamp.sec - EPOCH_S: m for m in list(collector.messages[FUSED]) if m.header.stamp.nanosec == 0}


def _png_roundtrip(array: np.ndarray) -> np.ndarray:
    """What a subscriber decodes from the publisher's PNG bytes."""
    ok, buffer = cv2.imencode(".png", array)
    assert ok
    return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)


class TestCompressedInputs:
    HEIGHT, WIDTH, COUNT = 128, 160, 20
    THERMAL_OFFSET_MS = 5  # within the default 20 ms slop; only the RGB stamp is whole seconds

    @pytest.mark.parametrize("compressed", ["both", "thermal", "rgb"])
    def test_png_pairs_are_fused_and_corrupt_messages_dropped(
        self, compressed: str, domain_id: int, fused_collector: Collector, pipeline: FusionPipeline, tmp_path: Path
    ) -> None:
        streams = ("thermal", "rgb") if compressed == "both" else (compressed,)
        params = [arg for s in streams for arg in ("-p", f"{s}_transport:=compressed")]
        params += ["-p", "temporal_smoothing:=0.0"]  # per-frame normalisation: comparable with single calls
        log_path = tmp_path / "fusion_node.log"
        with running_node(domain_id, log_path, fused_collector, [*params, "-p", "diagnostics_period:=0.5"]) as process:
            log = log_path.read_text()
            for stream in ("thermal", "rgb"):
                suffix = "/compressed" if stream in streams else ""
                assert f"subscribed /{stream}/image_raw{suffix} (reliable)" in log, log

            result = run_publisher(
                domain_id, "--count", str(self.COUNT), "--rate", "10", "--height", str(self.HEIGHT),
                "--width", str(self.WIDTH), "--compressed", compressed, "--corrupt",
                "--thermal-offset-ms", str(self.THERMAL_OFFSET_MS),
            )
            assert result.returncode == 0, result.stderr

            # With the thermal offset the newest pair is ready only once a later RGB stamp shows that no
            # closer partner can arrive, so the last frame out is COUNT - 2.
            last = self.COUNT - 2
            assert fused_collector.wait_for(lambda: last in _fused_by_frame(fused_collector), 20), log_path.read_text()
            # One garbage message per compressed stream, each dropped as bad_data.
            assert fused_collector.wait_for(
                lambda: drop_count(fused_collector.latest_diagnostic_values(), "bad_data") >= len(streams), 10
            ), (fused_collector.latest_diagnostic_values(), log_path.read_text())
            values = fused_collector.latest_diagnostic_values()
            assert process.poll() is None, log_path.read_text()
        assert process.returncode == 0, log_path.read_text()

        assert drop_count(values, "bad_data") == len(streams), values
        assert drop_count(values, "bad_encoding") == 0 and drop_count(values, "processing_error") == 0, values
        log = log_path.read_text()
        assert "dropped (bad_data)" in log and "cannot decode" in log, log
        assert "Traceback" not in log, log

        # Every fused frame carries the RGB header: whole-second stamp and the RGB frame id; the
        # garbage pairs (stamps k + 0.2/0.4 s) never produce output.
        messages = list(fused_collector.messages[FUSED])
        assert messages and all(m.header.stamp.nanosec == 0 for m in messages), [m.header.stamp for m in messages]
        fused = _fused_by_frame(fused_collector)
        assert set(fused) <= set(range(self.COUNT))
        # Good pairs keep flowing after the corrupt ones (sent after frame COUNT // 2 - 1).
        after = [k for k in range(self.COUNT // 2, self.COUNT - 1) if k in fused]
        assert len(after) >= 0.8 * (self.COUNT - 1 - self.COUNT // 2), sorted(fused)

        for k, msg in fused.items():
            assert msg.header.frame_id == FRAME_ID
            assert (msg.encoding, msg.height, msg.width) == ("bgr8", self.HEIGHT, self.WIDTH)
            thermal, visible = frame(k, self.HEIGHT, self.WIDTH)
            decoded_thermal, decoded_visible = _png_roundtrip(thermal), _png_roundtrip(visible)
            assert np.array_equal(decoded_thermal, thermal) and np.array_equal(decoded_visible, visible)
            expected = pipeline(decoded_thermal, decoded_visible).fused
            difference = np.abs(image_to_array(msg).astype(np.int16) - expected.astype(np.int16))
            assert difference.mean() < 0.5 and np.percentile(difference, 99.9) <= 2, (k, difference.max())


class TestAutomaticQosFollowing:
    HEIGHT, WIDTH, COUNT, RATE = 512, 640, 50, 10.0
    WARMUP_FRAMES = 20  # two seconds at RATE

    def test_best_effort_publishers_switch_the_node_to_best_effort(
        self, domain_id: int, fused_collector: Collector, tmp_path: Path
    ) -> None:
        profile = large_images_env()
        log_path = tmp_path / "fusion_node.log"
        with running_node(domain_id, log_path, fused_collector, ["-p", "diagnostics_period:=0.5"], profile) as process:
            log = log_path.read_text()
            # qos_reliability defaults to auto: the inputs start reliable.
            assert "subscribed /thermal/image_raw (reliable)" in log and "subscribed /rgb/image_raw (reliable)" in log

            # The best-effort publishers match only once the node has switched, then send COUNT pairs.
            result = run_publisher(
                domain_id, "--count", str(self.COUNT), "--rate", str(self.RATE), "--height", str(self.HEIGHT),
                "--width", str(self.WIDTH), "--best-effort", "--depth", "2", extra_env=profile,
            )
            assert result.returncode == 0, (result.stderr, log_path.read_text())
            last = self.COUNT - 1
            fused_collector.wait_for(lambda: last in _fused_by_frame(fused_collector), 5)
            assert fused_collector.wait_for(
                lambda: fused_collector.latest_diagnostic_values().get("rgb_qos") == "best_effort", 5
            ), fused_collector.latest_diagnostic_values()
            values = fused_collector.latest_diagnostic_values()
            assert process.poll() is None, log_path.read_text()
        assert process.returncode == 0, log_path.read_text()

        log = log_path.read_text()
        subscribed = re.findall(r"subscribed (/\w+/image_raw) \((\w+)\)", log)
        for topic in ("/thermal/image_raw", "/rgb/image_raw"):
            assert [q for t, q in subscribed if t == topic] == ["reliable", "best_effort"], subscribed
        assert values["thermal_qos"] == "best_effort" and values["rgb_qos"] == "best_effort", values
        assert "Traceback" not in log, log

        fused = _fused_by_frame(fused_collector)
        assert set(fused) <= set(range(self.COUNT))
        for msg in fused.values():
            assert (msg.encoding, msg.height, msg.width, msg.header.frame_id) == ("bgr8", self.HEIGHT, self.WIDTH,
                                                                                  FRAME_ID)
        after_warmup = [k for k in range(self.WARMUP_FRAMES, self.COUNT) if k in fused]
        assert len(after_warmup) >= 0.8 * (self.COUNT - self.WARMUP_FRAMES), (sorted(fused), values)
