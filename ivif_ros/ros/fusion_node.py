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

import dataclasses
import threading
import time
from typing import Any, Callable

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ivif_ros.core.errors import FusionInputError, SizeMismatchError
from ivif_ros.core.pipeline import RUNTIME_FIELDS, FusionConfig, FusionPipeline
from ivif_ros.core.registration import parse_homography, warp_thermal
from ivif_ros.ros.conversions import ConversionError, array_to_image, compressed_to_array, image_to_array, to_bgr
from ivif_ros.ros.diagnostics import NodeStatistics, to_diagnostic_status
from ivif_ros.ros.sync import ApproximateSynchronizer, SyncedPair

__all__ = ["FusionNode", "main", "DROP_REASONS"]

STREAMS = ("thermal", "rgb")
# Reasons the node itself drops messages or pairs (the synchroniser adds stale/unpaired/out_of_order).
DROP_REASONS = ("bad_encoding", "bad_data", "size_mismatch", "processing_error", "no_subscribers")
IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]

# FusionConfig field -> (description, (low, high) or None). Fields missing here still become
# parameters, with a generic description and no declared range (FusionConfig.validate() checks them).
CONFIG_PARAMETERS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "mode": ("'default' (product) or 'seed' (paper reproduction, slow)", None),
    "thermal_stretch": ("thermal to 8-bit: auto, minmax or percentile", None),
    "thermal_percentiles": ("[low, high] percentiles of the robust thermal stretch", None),
    "visible_enhance": ("share of the enhanced visible luminance, 0..1", (0.0, 1.0)),
    "thermal_enhance": ("share of the enhanced thermal luminance, 0..1", (0.0, 1.0)),
    "target_contrast": ("base contrast ratio after compression (enhancement)", (1.0, 1000.0)),
    "enhance_detail_gain": ("log-detail multiplier of the enhancement", (0.0, 10.0)),
    "detector_scale": ("detector input size relative to the RGB frame", (0.05, 2.0)),
    "weight_temperature": ("softness of the weight map (> 1 = softer)", (0.01, 100.0)),
    "smoothing_radius": ("guided-filter radius of the weight refinement, px; 0 = off", (0, 256)),
    "smoothing_eps": ("guided-filter eps of the weight refinement (0..1 intensity)", (1e-9, 1.0)),
    "base_radius": ("radius of the base/detail split, px", (1, 256)),
    "detail_gain": ("multiplier of the fused detail layer", (0.0, 10.0)),
    "base_temperature": ("softness (grey levels) of the brightness selection of the base layers", (0.1, 1000.0)),
    "base_complement": ("share of the darker source's zero-mean base added to the fused base", (0.0, 1.0)),
    "detector_mix": ("share of the blur detector in the detail weights (rest: local detail energy)", (0.0, 1.0)),
    "detail_sigma": ("Gaussian sigma of the local detail energy, px", (0.3, 32.0)),
    "output_stretch": ("percent of darkest/brightest fused pixels saturated by the final stretch", (0.0, 49.9)),
    "seed_stride": ("seed mode window stride; 0 = paper rule", (0, 32)),
    "seed_blend_radius": ("seed mode blending half-width, px", (0.001, 10000.0)),
    "seed_retinex": ("seed mode final Single-Scale Retinex", None),
    "retinex_sigma": ("Retinex surround sigma", (0.001, 100000.0)),
    "size_tolerance": ("relative aspect tolerance of the thermal->RGB resize policy", (0.0, 1.0)),
    "max_pixels": ("larger frames are refused", (64, 1 << 30)),
}

# Node parameters: name -> (default, description, (low, high) or None, changeable at runtime).
NODE_PARAMETERS: dict[str, tuple[Any, str, tuple[float, float] | None, bool]] = {
    "backend": ("auto", "detector backend: auto, torch, onnxruntime or tensorrt", None, False),
    "device": ("auto", "detector device: auto, cpu or cuda[:N]", None, False),
    "model": ("", "default-mode detector weights (.safetensors); empty = shipped default", None, False),
    "seed_model": ("", "seed-mode detector weights; empty = shipped seed weights", None, False),
    "qos_reliability": ("auto", "input reliability: auto (follow the publishers), reliable or best_effort", None, False),
    "qos_depth": (2, "input and output keep-last depth", (1, 100), False),
    "queue_size": (10, "synchroniser queue length per stream", (1, 1000), False),
    "thermal_transport": ("raw", "thermal input: raw (Image) or compressed (<topic>/compressed)", None, False),
    "rgb_transport": ("raw", "RGB input: raw (Image) or compressed (<topic>/compressed)", None, False),
    "slop": (0.02, "largest stamp difference of a thermal/RGB pair, s", (0.0, 10.0), True),
    "homography": (IDENTITY, "row-major 3x3 homography, thermal pixel -> RGB pixel", None, True),
    "publish_debug": (False, "publish debug/side_by_side (thermal | RGB | fused | weights)", None, True),
    "diagnostics_period": (1.0, "period of /diagnostics, s", (0.1, 60.0), False),
}

_CHOICES = {
    "qos_reliability": ("auto", "reliable", "best_effort"),
    "thermal_transport": ("raw", "compressed"),
    "rgb_transport": ("raw", "compressed"),
}


def _stamp_ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _descriptor(description: str, bounds: tuple[float, float] | None, default: Any, runtime: bool) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=description, read_only=not runtime)
    if bounds is not None and isinstance(default, bool):
        return descriptor
    if bounds is not None and isinstance(default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
    elif bounds is not None and isinstance(default, float):
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]), step=0.0)
        ]
    return descriptor


def _parameter_default(value: Any) -> Any:
    """A FusionConfig default in a form rclpy can declare (tuples become lists of floats)."""
    return [float(v) for v in value] if isinstance(value, tuple) else value


def _config_value(value: Any, default: Any) -> Any:
    """A parameter value in the FusionConfig field's type."""
    if isinstance(default, tuple):
        return tuple(float(v) for v in value)
    if isinstance(default, float) and not isinstance(default, bool):
        return float(value)
    return value


class FusionNode(Node):
    """Subscribes thermal + RGB, publishes the fused image, weight maps and diagnostics.

    Args:
        node_name: node name.
        **kwargs: passed to ``rclpy.node.Node`` (e.g. ``parameter_overrides``).

    Raises:
        ValueError: an invalid parameter value at start (the message names it).
        ModelError, BackendError: the detector cannot be loaded.
    """

    def __init__(self, node_name: str = "fusion_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._config_defaults = {f.name: f.default for f in dataclasses.fields(FusionConfig)}
        self._declare_parameters()
        config = self._config_from_parameters()
        config.validate()
        self._homography = parse_homography(self._param("homography"))
        for name, choices in _CHOICES.items():
            if self._param(name) not in choices:
                raise ValueError(f"parameter {name} must be one of {choices}, got {self._param(name)!r}")

        model, seed_model = self._param("model") or None, self._param("seed_model") or None
        self._pipeline = FusionPipeline(
            config, model=model, seed_model=seed_model, backend=self._param("backend"), device=self._param("device"),
            stream=True,
        )
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
        for name, (default, description, bounds, runtime) in NODE_PARAMETERS.items():
            self.declare_parameter(name, default, _descriptor(description, bounds, default, runtime))
        for name, default in self._config_defaults.items():
            description, bounds = CONFIG_PARAMETERS.get(name, (f"FusionConfig.{name}", None))
            runtime = name in RUNTIME_FIELDS
            suffix = "" if runtime else " (start only)"
            self.declare_parameter(
                name, _parameter_default(default), _descriptor(description + suffix, bounds, default, runtime)
            )

    def _config_from_parameters(self) -> FusionConfig:
        values = {name: _config_value(self._param(name), default) for name, default in self._config_defaults.items()}
        return FusionConfig(**values)

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Validate runtime changes; the worker applies them before the next pair."""
        changes: dict[str, Any] = {}
        for parameter in parameters:
            if parameter.name in RUNTIME_FIELDS:
                changes[parameter.name] = _config_value(parameter.value, self._config_defaults[parameter.name])
            elif parameter.name == "homography":
                try:
                    parse_homography(parameter.value)
                except FusionInputError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        if changes:
            with self._pending_lock:
                merged = {**self._pending_changes, **changes}
            try:
                dataclasses.replace(self._pipeline.config, **merged).validate()
            except (ValueError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            with self._pending_lock:
                self._pending_changes = merged
        for parameter in parameters:
            if parameter.name == "slop":
                self._sync.slop_ns = int(parameter.value * 1e9)
            elif parameter.name == "homography":
                self._homography = parse_homography(parameter.value)
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
        except Exception as exc:  # a detector for a new mode may fail to load; keep serving
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
