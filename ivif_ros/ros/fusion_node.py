"""ROS 2 node: thermal + RGB images in, fused image and weight map out.

Callbacks only convert (zero-copy) and queue messages in the synchroniser; a worker thread takes
the newest ready pair, registers the thermal frame, calls the core ``FusionPipeline`` and
publishes. Everything the node drops is counted by reason and reported on ``/diagnostics``.

Topics (relative, remappable):
    in:  ``thermal/image_raw``, ``rgb/image_raw`` (``sensor_msgs/Image``), or
         ``<topic>/compressed`` (``sensor_msgs/CompressedImage``) with ``*_transport: compressed``
    out: ``fused/image`` (bgr8, or mono8 for a mono RGB camera; the RGB header),
         ``weight_map/image`` (32FC1 visible share), ``weight_map/colored`` (bgr8),
         ``debug/side_by_side`` (bgr8, when ``publish_debug``), ``/diagnostics``.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ivif_ros.core.errors import FusionInputError, SizeMismatchError
from ivif_ros.backends.choice import DetectorLoader
from ivif_ros.core.pipeline import RUNTIME_FIELDS, FusionPipeline
from ivif_ros.core.registration import parse_homography, warp_thermal
from ivif_ros.ros.conversions import ConversionError, array_to_image, compressed_to_array, image_to_array, to_bgr
from ivif_ros.ros.diagnostics import NodeStatistics, to_diagnostic_status
from ivif_ros.ros.parameters import check_changes, descriptor, parameter_table, read_settings
from ivif_ros.ros.sync import ApproximateSynchronizer, SyncedPair

__all__ = ["FusionNode", "main", "DROP_REASONS"]

STREAMS = ("thermal", "rgb")
# Reasons the node itself drops messages or pairs (the synchroniser adds stale/unpaired/out_of_order).
DROP_REASONS = ("bad_encoding", "bad_data", "size_mismatch", "processing_error", "no_subscribers")
def _stamp_ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class FusionNode(Node):
    """Subscribes thermal + RGB, publishes the fused image, weight maps and diagnostics.

    Args:
        node_name: node name.
        **kwargs: passed to ``rclpy.node.Node`` (e.g. ``parameter_overrides``).

    Raises:
        FusionInputError: an invalid parameter value at start (the message names it).
        ModelError, BackendError: the detector cannot be loaded.
    """

    def __init__(self, node_name: str = "fusion_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._declare_parameters()
        choice, node_settings, config = read_settings({name: self._param(name) for name in parameter_table()})
        self._homography = parse_homography(list(node_settings.homography))
        self._pipeline = FusionPipeline(config, DetectorLoader(choice), stream=True)
        self._pipeline_info = self._pipeline.describe()
        self.get_logger().info(
            f"fusion pipeline ready: mode={config.mode} backend={self._pipeline_info.get('backend')} "
            f"device={self._pipeline_info.get('device')} model={self._pipeline_info.get('model')} "
            f"trained={self._pipeline_info.get('trained')}"
        )

        self._sync = ApproximateSynchronizer(
            int(self._param("slop") * 1e9), self._param("queue_size"), names=STREAMS
        )
        self._stats = NodeStatistics(STREAMS)
        self._pending_changes: dict[str, Any] = {}
        self._pending_lock = threading.Lock()
        self._last_drop_log: dict[str, float] = {}

        depth = self._param("qos_depth")
        output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self._fused_pub = self.create_publisher(Image, "fused/image", output_qos)
        self._weights_pub = self.create_publisher(Image, "weight_map/image", output_qos)
        self._colored_pub = self.create_publisher(Image, "weight_map/colored", output_qos)
        self._debug_pub = self.create_publisher(Image, "debug/side_by_side", output_qos)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self._subscriptions_by_stream: dict[str, Any] = {}
        self._reliability: dict[str, ReliabilityPolicy] = {}
        for stream in STREAMS:
            self._subscribe(stream, ReliabilityPolicy.BEST_EFFORT
                            if self._param("qos_reliability") == "best_effort" else ReliabilityPolicy.RELIABLE)
        if self._param("qos_reliability") == "auto":
            self.create_timer(1.0, self._follow_publisher_reliability)
        self.create_timer(self._param("diagnostics_period"), self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="fusion_worker", daemon=True)
        self._worker.start()

    # ---- parameters ----------------------------------------------------------------------
    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _declare_parameters(self) -> None:
        """Declare every schema setting (detector, node, fusion core) with its descriptor."""
        for name, (default, meta, _) in parameter_table().items():
            self.declare_parameter(name, default, descriptor(meta))

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """All or nothing: every value of the batch is checked, and a new mode's detector loaded,
        before anything changes; the worker applies the fusion changes before the next pair."""
        try:
            changes = check_changes({parameter.name: parameter.value for parameter in parameters})
            config_changes = {name: value for name, value in changes.items() if name in RUNTIME_FIELDS}
            with self._pending_lock:
                merged = {**self._pending_changes, **config_changes}
            if config_changes:
                self._pipeline.check_update(**merged)
            homography = parse_homography(list(changes["homography"])) if "homography" in changes else None
        except Exception as exc:  # any reason to refuse is reported to the caller; nothing has changed
            return SetParametersResult(successful=False, reason=f"{type(exc).__name__}: {exc}")
        with self._pending_lock:
            self._pending_changes = merged
        if "slop" in changes:
            self._sync.slop_ns = int(changes["slop"] * 1e9)
        if homography is not None:
            self._homography = homography
        return SetParametersResult(successful=True)

    def _apply_pending_changes(self) -> None:
        with self._pending_lock:
            changes, self._pending_changes = self._pending_changes, {}
        if not changes:
            return
        try:
            self._pipeline.update(**changes)
            self._pipeline_info = self._pipeline.describe()
            self.get_logger().info(f"pipeline updated: {changes}")
        except Exception as exc:  # checked when accepted, so this means a bug: keep serving, say so
            self.get_logger().error(f"cannot apply {changes}: {exc}")

    # ---- inputs ----------------------------------------------------------------------------
    def _subscribe(self, stream: str, reliability: ReliabilityPolicy) -> None:
        old = self._subscriptions_by_stream.pop(stream, None)
        if old is not None:
            self.destroy_subscription(old)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self._param("qos_depth"), reliability=reliability)
        topic = f"{stream}/image_raw"
        callback: Callable[[Any], None]
        if self._param(f"{stream}_transport") == "compressed":
            msg_type, topic = CompressedImage, f"{topic}/compressed"
            callback = lambda msg, s=stream: self._on_compressed(s, msg)  # noqa: E731
        else:
            msg_type = Image
            callback = lambda msg, s=stream: self._on_image(s, msg)  # noqa: E731
        self._subscriptions_by_stream[stream] = self.create_subscription(msg_type, topic, callback, qos)
        self._reliability[stream] = reliability
        self.get_logger().info(f"subscribed {self.resolve_topic_name(topic)} ({reliability.name.lower()})")

    def _follow_publisher_reliability(self) -> None:
        """qos_reliability=auto: best effort while any publisher is best effort, else reliable."""
        for stream, subscription in list(self._subscriptions_by_stream.items()):
            publishers = self.get_publishers_info_by_topic(subscription.topic_name)
            if not publishers:
                continue
            best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers)
            wanted = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
            if wanted != self._reliability[stream]:
                self._subscribe(stream, wanted)

    def _on_image(self, stream: str, msg: Image) -> None:
        self._stats.record_input(stream)
        try:
            array = image_to_array(msg)
        except ConversionError as exc:
            self._drop("bad_encoding" if exc.kind == "encoding" else "bad_data", f"{stream}: {exc}")
            return
        self._queue(stream, msg.header, array, msg.encoding)

    def _on_compressed(self, stream: str, msg: CompressedImage) -> None:
        self._stats.record_input(stream)
        try:
            array = compressed_to_array(msg)
        except ConversionError as exc:
            self._drop("bad_data", f"{stream}: {exc}")
            return
        encoding = "bgr8" if array.ndim == 3 else ("mono16" if array.dtype == np.uint16 else "mono8")
        self._queue(stream, msg.header, array, encoding)

    def _queue(self, stream: str, header: Any, array: np.ndarray, encoding: str) -> None:
        self._sync.add(STREAMS.index(stream), _stamp_ns(header), (array, encoding, header))
        self._wake.set()

    def _drop(self, reason: str, detail: str) -> None:
        """Count a drop; log the first of each reason at once, then at most once per second."""
        self._stats.record_drop(reason)
        now = time.monotonic()
        if now - self._last_drop_log.get(reason, -1e9) >= 1.0:
            self._last_drop_log[reason] = now
            self.get_logger().warning(f"dropped ({reason}): {detail}")

    # ---- processing --------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            self._apply_pending_changes()
            while not self._stop.is_set():
                pair = self._sync.pop_latest()
                if pair is None:
                    break
                self._process(pair)

    def _wanted_outputs(self) -> dict[str, bool]:
        return {
            "fused": self._fused_pub.get_subscription_count() > 0,
            "weights": self._weights_pub.get_subscription_count() > 0,
            "colored": self._colored_pub.get_subscription_count() > 0,
            "debug": self._param("publish_debug") and self._debug_pub.get_subscription_count() > 0,
        }

    def _process(self, pair: SyncedPair) -> None:
        start = time.perf_counter()
        wanted = self._wanted_outputs()
        if not any(wanted.values()):
            self._drop("no_subscribers", "no subscriber on any output")
            return
        thermal_array, thermal_encoding, _ = pair.first
        rgb_array, rgb_encoding, header = pair.second
        try:
            visible = to_bgr(rgb_array, rgb_encoding)
            thermal = to_bgr(thermal_array, thermal_encoding)
            if not np.allclose(self._homography, np.eye(3)):
                thermal = warp_thermal(thermal, self._homography, visible.shape[:2])
            result = self._pipeline(thermal, visible)
        except FusionInputError as exc:
            reason = "size_mismatch" if isinstance(exc, SizeMismatchError) else "bad_data"
            self._drop(reason, str(exc))
            return
        except Exception as exc:  # keep serving; the reason is counted and logged
            self._drop("processing_error", f"{type(exc).__name__}: {exc}")
            return

        if wanted["fused"]:
            encoding = "bgr8" if result.fused.ndim == 3 else "mono8"
            self._fused_pub.publish(array_to_image(result.fused, encoding, header))
        if wanted["weights"]:
            self._weights_pub.publish(array_to_image(result.weights.astype(np.float32, copy=False), "32FC1", header))
        if wanted["colored"]:
            self._colored_pub.publish(array_to_image(result.weights_colored(), "bgr8", header))
        if wanted["debug"]:
            self._debug_pub.publish(array_to_image(_side_by_side(thermal, visible, result), "bgr8", header))

        latency_ms = (self.get_clock().now().nanoseconds - pair.second_stamp_ns) / 1e6
        gap_ms = abs(pair.first_stamp_ns - pair.second_stamp_ns) / 1e6
        self._stats.record_output(latency_ms, (time.perf_counter() - start) * 1e3, gap_ms)

    # ---- diagnostics -------------------------------------------------------------------------
    def _sync_drops(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for counts in self._sync.drops().values():
            for reason, count in counts.items():
                totals[reason] = totals.get(reason, 0) + count
        return totals

    def _publish_diagnostics(self) -> None:
        snapshot = self._stats.snapshot(self._sync_drops())
        info = {
            **{k: v for k, v in self._pipeline_info.items() if k != "model_path" or v},
            **{f"{stream}_qos": self._reliability[stream].name.lower() for stream in STREAMS},
            "slop_s": self._param("slop"),
        }
        status = to_diagnostic_status(
            f"{self.get_name()}: fusion", self.get_fully_qualified_name(), snapshot, info
        )
        self._diagnostics_pub.publish(DiagnosticArray(header=self._diagnostics_header(), status=[status]))

    def _diagnostics_header(self) -> Any:
        from std_msgs.msg import Header

        return Header(stamp=self.get_clock().now().to_msg())

    def destroy_node(self) -> None:
        """Stop the worker thread, then the node."""
        self._stop.set()
        self._wake.set()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)
        super().destroy_node()


def _side_by_side(thermal: np.ndarray, visible: np.ndarray, result: Any) -> np.ndarray:
    """thermal | RGB | fused | coloured weights, each at the RGB size, as one BGR image."""
    height, width = visible.shape[:2]
    thermal8 = cv2.normalize(thermal, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    tiles = [cv2.resize(thermal8, (width, height)), visible, result.fused, result.weights_colored()]
    return cv2.hconcat([tile if tile.ndim == 3 else cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR) for tile in tiles])


def main(args: list[str] | None = None) -> int:
    """Console script ``fusion_node``: spin until SIGINT/SIGTERM, then shut down cleanly.

    Returns:
        0 on a clean shutdown, 1 when the node cannot start (the reason is logged).
    """
    rclpy.init(args=args)
    node = None
    try:
        node = FusionNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # startup failure: one clear line, non-zero exit
        rclpy.logging.get_logger("fusion_node").fatal(f"cannot start: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
