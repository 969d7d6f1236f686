"""fusion_node as a robot integrator wires it, over real DDS (camera process -> node process -> this process).

Remapped base topics with compressed / compressedDepth transports, raw Bayer and 4:2:2 YUV RGB
frames, camera_info in and fused/camera_info out, registration from calibration, the JPEG output,
qos_overrides and best-effort drivers without incompatible-QoS warnings.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from camera_publisher import camera_matrices, rgb_raw, thermal16
from rcl_interfaces.msg import Log
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage

from ivif_ros.backends.choice import create_pipeline
from ivif_ros.core.pipeline import FusionPipeline
from ivif_ros.core.registration import CameraModel, StereoCalibration, registration_maps, remap_thermal
from ivif_ros.ros.conversions import image_to_array, to_bgr

from dds_helpers import Collector
from pair_publisher import EPOCH_S, FRAME_ID, frame
from ros_test_helpers import REPO, ros_env, start_node, stop_process

FUSED = "/fused/image"
HEIGHT, WIDTH, COUNT = 128, 160, 8
PUBLISHER = Path(__file__).with_name("camera_publisher.py")


@pytest.fixture(scope="module")
def pipeline() -> FusionPipeline:
    """The core pipeline with the node's defaults (shipped, trained detector)."""
    return create_pipeline()


class Outputs(Collector):
    """The Collector plus fused/camera_info, fused/image/compressed and /rosout."""

    def __init__(self, domain_id: int) -> None:
        super().__init__(domain_id, (FUSED,))
        self.infos: list[CameraInfo] = []
        self.compressed: list[CompressedImage] = []
        self.rosout: list[Log] = []
        self._extra_lock = threading.Lock()
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(CameraInfo, "/fused/camera_info", self._info, qos)
        self.node.create_subscription(CompressedImage, "/fused/image/compressed", self._jpeg, qos)
        rosout_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(Log, "/rosout", self._log, rosout_qos)

    def _log(self, msg: Log) -> None:
        with self._extra_lock:
            self.rosout.append(msg)

    def _info(self, msg: CameraInfo) -> None:
        with self._extra_lock:
            self.infos.append(msg)

    def _jpeg(self, msg: CompressedImage) -> None:
        with self._extra_lock:
            self.compressed.append(msg)


@pytest.fixture
def outputs(domain_id: int) -> Iterator[Outputs]:
    result = Outputs(domain_id)
    yield result
    result.close()


@contextmanager
def running_node(domain_id: int, log_path: Path, outputs: Outputs, ros_args: list[str]) -> Iterator[subprocess.Popen]:
    """A fusion_node process, ready once both inputs are subscribed and its fused publisher is seen."""
    process = start_node(domain_id, log_path, ros_args)
    try:
        ready = outputs.wait_for(
            lambda: process.poll() is not None
            or (log_path.read_text().count("subscribed /") >= 2 and outputs.publisher_count(FUSED) > 0), 90)
        assert ready and process.poll() is None, log_path.read_text()
        yield process
    finally:
        stop_process(process)


def publish(domain_id: int, *args: str) -> None:
    result = subprocess.run([sys.executable, str(PUBLISHER), "--count", str(COUNT), "--height", str(HEIGHT),
                             "--width", str(WIDTH), *args], cwd=REPO, env=ros_env(domain_id), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def by_frame(messages: list) -> dict[int, object]:
    return {m.header.stamp.sec - EPOCH_S: m for m in list(messages) if m.header.stamp.nanosec == 0}


def assert_matches(fused_msg, expected: np.ndarray) -> None:
    assert (fused_msg.encoding, fused_msg.height, fused_msg.width, fused_msg.header.frame_id) == (
        "bgr8", HEIGHT, WIDTH, FRAME_ID)
    difference = np.abs(image_to_array(fused_msg).astype(np.int16) - expected.astype(np.int16))
    assert difference.mean() < 0.5 and np.percentile(difference, 99.9) <= 2, (difference.mean(), difference.max())


def test_remapped_compressed_thermal_bayer_rgb_calibration_and_camera_info(
    domain_id: int, outputs: Outputs, pipeline: FusionPipeline, tmp_path: Path
) -> None:
    translation = [0.05, 0.0, 0.0]
    log_path = tmp_path / "fusion_node.log"
    ros_args = ["-r", "thermal/image_raw:=/boson/image_raw", "-p", "thermal_transport:=compressed",
                "-p", "temporal_smoothing:=0.0",  # per-frame normalisation: comparable with single calls
                "-p", "registration:=calibration", "-p", f"extrinsic_translation:={translation}",
                "-p", "scene_depth:=4.0", "-p", "publish_compressed:=true", "-p", "jpeg_quality:=95",
                "-p", "qos_overrides./boson/image_raw/compressed.subscription.reliability:=best_effort",
                "-p", "qos_overrides./weight_map/image.publisher.reliability:=best_effort"]
    with running_node(domain_id, log_path, outputs, ros_args) as process:
        log = log_path.read_text()
        weights_publishers = outputs.node.get_publishers_info_by_topic("/weight_map/image")
        assert [p.qos_profile.reliability for p in weights_publishers] == [ReliabilityPolicy.BEST_EFFORT]
        assert [p.qos_profile.reliability for p in outputs.node.get_publishers_info_by_topic(FUSED)] == [
            ReliabilityPolicy.RELIABLE]
        assert "subscribed /boson/image_raw/compressed (best_effort)" in log, log
        assert "subscribed /rgb/image_raw (reliable)" in log, log
        publish(domain_id, "--thermal-base", "/boson/image_raw", "--thermal-format", "png",
                "--rgb-encoding", "bayer_rggb8", "--camera-info")
        assert outputs.wait_for(lambda: COUNT - 1 in by_frame(outputs.messages[FUSED]), 30), log_path.read_text()
        outputs.wait_for(lambda: COUNT - 1 in by_frame(outputs.infos) and COUNT - 1 in by_frame(outputs.compressed), 5)
        assert process.poll() is None, log_path.read_text()
    log = log_path.read_text()
    assert "Traceback" not in log and "registration maps from calibration" in log, log

    k_thermal, k_rgb = camera_matrices(HEIGHT, WIDTH)
    calibration = StereoCalibration(CameraModel(k_thermal, (WIDTH, HEIGHT)), CameraModel(k_rgb, (WIDTH, HEIGHT)),
                                    np.eye(3), np.array(translation))
    maps = registration_maps(calibration, 4.0, (WIDTH, HEIGHT), (WIDTH, HEIGHT))
    fused = by_frame(outputs.messages[FUSED])
    assert len(fused) >= 2
    for k, msg in fused.items():
        thermal, visible = frame(k, HEIGHT, WIDTH)
        demosaiced = to_bgr(rgb_raw(visible, "bayer_rggb8"), "bayer_rggb8")
        assert_matches(msg, pipeline(remap_thermal(thermal, maps), demosaiced).fused)

    infos = by_frame(outputs.infos)
    assert set(infos) == set(fused), (sorted(infos), sorted(fused))
    for info in infos.values():
        assert info.header.frame_id == FRAME_ID and (info.width, info.height) == (WIDTH, HEIGHT)
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), k_rgb)
    jpeg = by_frame(outputs.compressed)
    assert set(jpeg) == set(fused)
    for k, msg in jpeg.items():
        assert msg.format.startswith("bgr8; jpeg")
        # The fused frame at jpeg_quality 95 (a lower quality would give other bytes).
        ok, reference = cv2.imencode(".jpg", image_to_array(fused[k]), [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok and bytes(msg.data) == reference.tobytes()


@pytest.mark.parametrize("rgb_encoding", ["yuv422", "yuv422_yuy2"])
def test_best_effort_yuv_driver_and_16bit_compressed_depth_thermal(
    rgb_encoding: str, domain_id: int, outputs: Outputs, pipeline: FusionPipeline, tmp_path: Path
) -> None:
    log_path = tmp_path / "fusion_node.log"
    ros_args = ["-r", "thermal/image_raw:=/boson/image_raw", "-r", "rgb/image_raw:=/camera/image_raw",
                "-p", "thermal_transport:=compressedDepth", "-p", "temporal_smoothing:=0.0"]
    with running_node(domain_id, log_path, outputs, ros_args) as process:
        assert "subscribed /boson/image_raw/compressedDepth (reliable)" in log_path.read_text()
        publish(domain_id, "--thermal-base", "/boson/image_raw", "--thermal-format", "depth16",
                "--rgb-base", "/camera/image_raw", "--rgb-encoding", rgb_encoding, "--best-effort")
        assert outputs.wait_for(lambda: COUNT - 1 in by_frame(outputs.messages[FUSED]), 30), log_path.read_text()
        assert process.poll() is None, log_path.read_text()
    log = log_path.read_text()
    assert "subscribed /camera/image_raw (best_effort)" in log, log
    # The reliable->best-effort switch is expected in auto mode: no incompatible-QoS warning.
    assert "incompatible" not in log.lower() and "Traceback" not in log, log
    fused = by_frame(outputs.messages[FUSED])
    assert len(fused) >= 2
    for k, msg in fused.items():
        thermal, visible = frame(k, HEIGHT, WIDTH)
        converted = to_bgr(rgb_raw(visible, rgb_encoding), rgb_encoding)
        assert np.abs(converted.astype(int) - visible.astype(int)).mean() < 2.0  # the encoder is faithful
        assert_matches(msg, pipeline(thermal16(thermal), converted).fused)


def test_core_and_backend_logging_reaches_rosout_rate_limited(domain_id: int, outputs: Outputs, tmp_path: Path) -> None:
    log_path = tmp_path / "fusion_node.log"
    with running_node(domain_id, log_path, outputs, []) as process:
        publish(domain_id, "--thermal-half")  # every pair: "infrared 80x64 resized to the visible frame"
        assert outputs.wait_for(lambda: COUNT - 1 in by_frame(outputs.messages[FUSED]), 30), log_path.read_text()
        assert process.poll() is None, log_path.read_text()
    node_logs = [m for m in list(outputs.rosout) if m.name == "fusion_node"]
    backend = [m for m in node_logs if m.msg.startswith("[ivif_ros.backends] backend auto ->")]
    assert len(backend) == 1 and backend[0].level == Log.INFO, [m.msg for m in node_logs]
    resized = [m for m in node_logs if m.msg.startswith("[ivif_ros.core] infrared 80x64 resized")]
    # COUNT pairs within one 5 s period: the warning reaches /rosout once, at WARN.
    assert len(resized) == 1 and resized[0].level == Log.WARN, [m.msg for m in node_logs]
    assert len(by_frame(outputs.messages[FUSED])) >= 2


def test_nobody_listening_is_counted_but_not_warned(domain_id: int, tmp_path: Path) -> None:
    diagnostics_only = Collector(domain_id, ())
    try:
        log_path = tmp_path / "fusion_node.log"
        process = start_node(domain_id, log_path, ["-p", "diagnostics_period:=0.5"])
        try:
            assert diagnostics_only.wait_for(
                lambda: process.poll() is not None or log_path.read_text().count("subscribed /") >= 2, 90)
            publish(domain_id)
            assert diagnostics_only.wait_for(
                lambda: int(diagnostics_only.latest_diagnostic_values().get("drops_no_subscribers", 0)) >= COUNT - 2, 20
            ), diagnostics_only.latest_diagnostic_values()
            assert process.poll() is None, log_path.read_text()
        finally:
            stop_process(process)
    finally:
        diagnostics_only.close()
    log = log_path.read_text()
    assert "no_subscribers" not in log and "Traceback" not in log, log


def test_camera_info_of_another_resolution_is_rescaled_to_the_fused_frame() -> None:
    from ivif_ros.ros.fusion_node import _rescale_camera_info

    k = [1100.0, 0.0, 639.5, 0.0, 1100.0, 511.5, 0.0, 0.0, 1.0]
    p = [1100.0, 0.0, 639.5, -66.0, 0.0, 1100.0, 511.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    info = CameraInfo(width=1280, height=1024, k=k, p=p, distortion_model="plumb_bob", d=[0.1, 0.0, 0.0, 0.0, 0.0])
    _rescale_camera_info(info, 640, 512)
    assert (info.width, info.height) == (640, 512)
    # Half resolution: focal lengths and Tx halve; the image centre stays the image centre.
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), [[550.0, 0.0, 319.5], [0.0, 550.0, 255.5], [0, 0, 1]])
    np.testing.assert_allclose(np.asarray(info.p).reshape(3, 4)[0], [550.0, 0.0, 319.5, -33.0])
    assert list(info.d) == [0.1, 0.0, 0.0, 0.0, 0.0]
