"""ROS 2 node: thermal + RGB images in, fused image and weight map out.

Callbacks only convert (zero-copy) and queue messages in the synchroniser; a worker thread takes
the newest ready pair, registers the thermal frame, calls the core ``FusionPipeline`` and
publishes. Everything the node drops is counted by reason and reported on ``/diagnostics``.

Supervision: every callback, timer and the worker loop catch any exception, count it as a drop
named ``error_<ExceptionClass>`` and go on with the next message; a watchdog restarts a dead worker
thread. The worker warms the pipeline at ``warmup_size`` before the inputs are subscribed (``ready``).

Topics (relative, remappable; image_transport conventions):
    in:  ``thermal/image_raw``, ``rgb/image_raw`` (``sensor_msgs/Image``), or
         ``<resolved base>/compressed`` (and ``/compressedDepth`` for thermal) as
         ``sensor_msgs/CompressedImage`` with ``*_transport``; ``camera_info`` beside each image
         topic (optional, for ``registration: calibration`` and ``fused/camera_info``)
    out: ``fused/image`` (bgr8, or mono8 for a mono RGB camera; the RGB header),
         ``fused/camera_info`` (the RGB calibration, fused header), ``fused/image/compressed``
         (JPEG, when ``publish_compressed``), ``weight_map/image`` (32FC1 visible share),
         ``weight_map/colored`` (bgr8), ``debug/side_by_side`` (bgr8, when ``publish_debug``),
         ``/diagnostics``.
"""
from __future__ import annotations

import collections
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ivif_ros import topics
from ivif_ros.backends.choice import DetectorLoader
from ivif_ros.core.errors import FusionInputError, SizeMismatchError
from ivif_ros.core.pipeline import RUNTIME_FIELDS, FusionPipeline
from ivif_ros.core.registration import (
    CameraModel,
    StereoCalibration,
    load_stereo_calibration,
    parse_homography,
    registration_maps,
    remap_thermal,
    warp_thermal,
)
from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.ros.conversions import ConversionError, array_to_image, compressed_to_array, image_to_array, to_bgr
from ivif_ros.ros.diagnostics import NodeStatistics, to_diagnostic_status
from ivif_ros.ros.log_bridge import install_log_bridge
from ivif_ros.ros.parameters import check_changes, descriptor, parameter_table, read_settings
from ivif_ros.ros.sync import ApproximateSynchronizer, SyncedPair
from ivif_ros.ros.transport_topics import camera_info_topic, transport_topic

__all__ = ["FusionNode", "main", "DROP_REASONS"]

STREAMS = ("thermal", "rgb")
# Reasons the node itself drops messages or pairs (the synchroniser adds stale/unpaired/out_of_order/
# duplicate); an unexpected exception counts as ``error_<ExceptionClass>``.
DROP_REASONS = ("bad_encoding", "bad_data", "size_mismatch", "no_subscribers", "no_calibration", "transport_lost")
TRANSPORT_LOST_HINT = (
    "lost in DDS transport: give this node and the camera drivers the large-image profile "
    "config/fastdds_large_images.xml (FASTDDS_DEFAULT_PROFILES_FILE); see docs/ros_node.md"
)
CORE_LOGGER = logging.getLogger("ivif_ros.core")
# camera_info messages kept per camera to pair with frames by stamp (else the newest is used).
CAMERA_INFO_HISTORY = 20
# qos_overrides.<topic>.subscription.reliability default: follow qos_reliability.
RELIABILITY_FROM_NODE = "auto"


def _stamp_ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class FusionNode(Node):
    """Subscribes thermal + RGB, publishes the fused image, weight maps and diagnostics.

    Args:
        node_name: node name.
        freeze_startup_objects: after the warm-up, collect garbage and move every object of the process
            out of the garbage collector's sight (``gc.freeze``), so that later full collections do not
            stall the worker; the console script sets it (the node owns its process there).
        **kwargs: passed to ``rclpy.node.Node`` (e.g. ``parameter_overrides``).

    Raises:
        FusionInputError: an invalid parameter value at start (the message names it).
        ModelError, BackendError: the detector cannot be loaded.
    """

    def __init__(self, node_name: str = "fusion_node", *, freeze_startup_objects: bool = False, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._uninstall_log_bridge = install_log_bridge(self.get_logger())
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._setup_done = threading.Event()
        try:
            self._set_up_pipeline()
            if freeze_startup_objects:
                # The process's ~185,000 objects from the start (torch, onnxruntime, rclpy) leave the
                # collector's sight before the inputs are subscribed: a full collection of them holds
                # the GIL ≈ 100 ms, which stalled the worker for 3–4 frames at 30 Hz now and then.
                gc.collect()
                gc.freeze()
            self._set_up_topics()
        except BaseException:  # a failed start leaves no bridge behind and no worker waiting
            self._stop.set()
            self._uninstall_log_bridge()
            raise
        self._setup_done.set()

    def _set_up_pipeline(self) -> None:
        """Parameters, the pipeline and the worker thread, which warms the pipeline before this returns."""
        self._declare_parameters()
        choice, node_settings, config = read_settings({name: self._param(name) for name in parameter_table()})
        self._homography = parse_homography(list(node_settings.homography))
        self._calibration_file = self._load_calibration_file()
        self._pipeline = FusionPipeline(config, DetectorLoader(choice), stream=True)
        self._pipeline_info = self._pipeline.describe()
        self._max_pixels = config.max_pixels
        self._warm_sizes: set[tuple[int, int]] = set()
        self._catching_up = False
        self._catch_up_requests = 0  # incremented by callbacks on frames of a size not warmed yet
        self._catch_up_seen = 0
        self._catch_up_left = 0
        self._worker = self._start_worker(warmup_size=self._param("warmup_size"))

    def _set_up_topics(self) -> None:
        """Everything after the warm-up: synchroniser, publishers, subscriptions, timers."""
        config = self._pipeline.config
        self.get_logger().info(
            f"fusion pipeline ready: mode={config.mode} backend={self._pipeline_info.get('backend')} "
            f"device={self._pipeline_info.get('device')} model={self._pipeline_info.get('model')} "
            f"trained={self._pipeline_info.get('trained')} heap_reuse={self._pipeline_info.get('heap_reuse')}"
        )

        self._sync = ApproximateSynchronizer(
            int(self._param("slop") * 1e9), self._param("queue_size"), names=STREAMS
        )
        self._stats = NodeStatistics(STREAMS)
        self._pending_changes: dict[str, Any] = {}
        self._pending_lock = threading.Lock()
        self._last_drop_log: dict[str, float] = {}
        self._stall_timeout = float(self._param("stall_timeout"))
        self._worker_restarts = 0
        self._worker_error = ""
        self._last_restart = -float("inf")
        self._transport_lost_logged = False

        depth = self._param("qos_depth")
        output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self._fused_pub = self._output(Image, topics.FUSED_TOPIC, output_qos)
        self._weights_pub = self._output(Image, topics.WEIGHTS_TOPIC, output_qos)
        self._colored_pub = self._output(Image, topics.COLORED_TOPIC, output_qos)
        self._debug_pub = self._output(Image, topics.DEBUG_TOPIC, output_qos)
        self._compressed_pub = self._output(
            CompressedImage, transport_topic(self._fused_pub.topic_name, "compressed"), output_qos)
        self._fused_info_pub = self._output(CameraInfo, camera_info_topic(self._fused_pub.topic_name), output_qos)
        self._camera_info: dict[str, collections.deque] = {
            stream: collections.deque(maxlen=CAMERA_INFO_HISTORY) for stream in STREAMS}
        self._camera_info_lock = threading.Lock()
        self._registration_key: tuple | None = None
        self._registration_maps: tuple[np.ndarray, np.ndarray] | None = None
        for stream in STREAMS:
            self._subscribe_camera_info(stream)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS_TOPIC, 10)

        self._subscriptions_by_stream: dict[str, Any] = {}
        self._reliability: dict[str, ReliabilityPolicy] = {}
        self._follows_publishers: dict[str, bool] = {}
        self._fixed_reliability: dict[str, ReliabilityPolicy | None] = {}
        for stream in STREAMS:
            override = self._fixed_reliability[stream] = self._reliability_override(stream)
            self._follows_publishers[stream] = override is None and self._param("qos_reliability") == "auto"
            self._subscribe(stream, override or (ReliabilityPolicy.BEST_EFFORT
                            if self._param("qos_reliability") == "best_effort" else ReliabilityPolicy.RELIABLE))
        if any(self._follows_publishers.values()):
            self.create_timer(1.0, self._guarded("qos follow timer", self._follow_publisher_reliability))
        diagnostics_timer = self._guarded("diagnostics timer", self._publish_diagnostics)
        self.create_timer(self._param("diagnostics_period"), diagnostics_timer)
        self.add_on_set_parameters_callback(self._guarded_parameters(self._on_set_parameters))

        self.create_timer(min(1.0, self._stall_timeout / 2), self._guarded("watchdog", self._watchdog))
        self._guarded("publish_diagnostics", self._publish_diagnostics)()  # ready=true at once

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
        transport = self._param(f"{stream}_transport")
        # image_transport: resolve (remap) the base topic, then append the transport.
        topic = transport_topic(self.resolve_topic_name(topics.INPUT_TOPICS[stream]), transport)
        callback: Callable[[Any], None]
        if transport != "raw":
            msg_type = CompressedImage
            callback = lambda msg, s=stream: self._on_compressed(s, msg)  # noqa: E731
        else:
            msg_type = Image
            callback = lambda msg, s=stream: self._on_image(s, msg)  # noqa: E731
        self._subscriptions_by_stream[stream] = self.create_subscription(
            msg_type, topic, callback, qos,
            qos_overriding_options=self._input_qos_options(stream),
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=lambda info, s=stream: self._on_incompatible_qos(s, info),
                message_lost=self._guarded("message_lost event", lambda info, s=stream: self._on_message_lost(s, info)),
            ),
        )
        self._reliability[stream] = reliability
        self.get_logger().info(f"subscribed {self.resolve_topic_name(topic)} ({reliability.name.lower()})")

    def _follow_publisher_reliability(self) -> None:
        """qos_reliability=auto: best effort while any publisher is best effort, else reliable."""
        for stream, subscription in list(self._subscriptions_by_stream.items()):
            if not self._follows_publishers[stream]:
                continue
            publishers = self.get_publishers_info_by_topic(subscription.topic_name)
            if not publishers:
                continue
            best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers)
            wanted = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
            if wanted != self._reliability[stream]:
                self._subscribe(stream, wanted)

    def _on_message_lost(self, stream: str, info: Any) -> None:
        """QoS event: messages the middleware lost count as ``transport_lost`` (hint logged once)."""
        lost = int(info.total_count_change)
        if lost <= 0:
            return
        self._stats.record_drop("transport_lost", lost)
        if not self._transport_lost_logged:
            self._transport_lost_logged = True
            self.get_logger().warning(f"{stream}: {lost} message(s) {TRANSPORT_LOST_HINT}")

    def _on_image(self, stream: str, msg: Image) -> None:
        try:
            self._stats.record_input(stream)
            try:
                array = image_to_array(msg, self._max_pixels)
            except ConversionError as exc:
                self._drop("bad_encoding" if exc.kind == "encoding" else "bad_data", f"{stream}: {exc}")
                return
            self._queue(stream, msg.header, array, msg.encoding)
        except Exception as exc:  # supervision: count, log, take the next message
            self._count_exception(f"{stream} callback", exc)

    def _on_compressed(self, stream: str, msg: CompressedImage) -> None:
        try:
            self._stats.record_input(stream)
            try:
                array = compressed_to_array(msg, self._max_pixels)
            except ConversionError as exc:
                self._drop("bad_data", f"{stream}: {exc}")
                return
            encoding = "bgr8" if array.ndim == 3 else ("mono16" if array.dtype == np.uint16 else "mono8")
            self._queue(stream, msg.header, array, encoding)
        except Exception as exc:  # supervision: count, log, take the next message
            self._count_exception(f"{stream} callback", exc)

    def _queue(self, stream: str, header: Any, array: np.ndarray, encoding: str) -> None:
        if stream == "rgb" and array.shape[:2] not in self._warm_sizes:
            self._catch_up_requests += 1  # a new frame size: its first pair is slow, keep every pair queued meanwhile
        self._sync.add(STREAMS.index(stream), _stamp_ns(header), (array, encoding, header))
        self._wake.set()

    def _drop(self, reason: str, detail: str) -> None:
        """Count a drop; log the first of each reason at once, then at most once per second."""
        self._stats.record_drop(reason)
        now = time.monotonic()
        if now - self._last_drop_log.get(reason, -1e9) >= 1.0:
            self._last_drop_log[reason] = now
            if reason == "no_subscribers":  # nobody listening is normal on a robot, not a fault
                self.get_logger().debug(f"dropped ({reason}): {detail}")
            else:
                self.get_logger().warning(f"dropped ({reason}): {detail}")

    # ---- supervision -------------------------------------------------------------------------
    def _count_exception(self, where: str, exc: Exception) -> None:
        """An unexpected exception: a drop named by its class, logged like any drop."""
        self._drop(f"error_{type(exc).__name__}", f"{where}: {type(exc).__name__}: {exc}")

    def _guarded(self, where: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` with any exception counted and logged instead of reaching the executor."""

        def guarded(*args: Any) -> Any:
            try:
                return function(*args)
            except Exception as exc:  # supervision: one bad event must not stop the node
                self._count_exception(where, exc)
                return None

        return guarded

    def _guarded_parameters(
        self, function: Callable[[list[Parameter]], SetParametersResult]
    ) -> Callable[[list[Parameter]], SetParametersResult]:
        """The parameter callback; an exception rejects the change with its reason."""

        def guarded(parameters: list[Parameter]) -> SetParametersResult:
            try:
                return function(parameters)
            except Exception as exc:  # supervision: refuse, never crash
                self._count_exception("parameters callback", exc)
                return SetParametersResult(successful=False, reason=f"{type(exc).__name__}: {exc}")

        return guarded

    def _start_worker(self, warmup_size: list[float] | None = None) -> threading.Thread:
        """Start the worker thread. With ``warmup_size`` it first warms the pipeline itself and this call
        returns when that is done (raising what the warm-up raised); its loop starts after the setup.

        The warm-up runs in the worker because memory is per thread: malloc gives each thread its own
        arena, whose pages a thread's first frame faults in (at 1280×1024 a pair warmed in another
        thread took ≈ 0.5 s on its first real frame, one warmed in the worker ≈ 65 ms).
        """
        warmed: Future | None = Future() if warmup_size is not None else None
        worker = threading.Thread(target=self._run_worker, args=(warmup_size, warmed), name="fusion_worker",
                                  daemon=True)
        worker.start()
        if warmed is not None:
            warmed.result()  # raises what the warm-up raised
        return worker

    def _run_worker(self, warmup_size: list[float] | None = None, warmed: Future | None = None) -> None:
        """The worker loop (after the warm-up, whose outcome goes to ``warmed``); records why it ended when
        something escapes it (the watchdog restarts it)."""
        try:
            if warmed is not None:
                try:
                    self._warm_up(warmup_size)
                except BaseException as exc:  # noqa: BLE001 - raised again by the constructor
                    warmed.set_exception(exc)
                    return
                warmed.set_result(None)
                while not self._setup_done.wait(timeout=0.1):
                    if self._stop.is_set():
                        return
            self._work()
        except BaseException as exc:  # noqa: BLE001 - reported by the watchdog, which restarts the loop
            self._worker_error = f"{type(exc).__name__}: {exc}"

    def _watchdog(self) -> None:
        """Restart a dead worker thread; /diagnostics reports ERROR with the reason for a while."""
        if self._stop.is_set() or self._worker.is_alive():
            return
        self._worker_restarts += 1
        self._last_restart = time.monotonic()
        reason = self._worker_error or "ended without an exception"
        self.get_logger().error(
            f"fusion worker thread died ({reason}); restarting it (restart {self._worker_restarts})"
        )
        self._worker = self._start_worker()
        self._wake.set()

    # ---- processing --------------------------------------------------------------------------
    def _warm_up(self, size: list[float]) -> None:
        """Run the pipeline on a synthetic pair of `size` ([width, height]) so the first real pair is not slow."""
        width, height = int(size[0]), int(size[1])
        if width == 0 and height == 0:
            return
        if width * height > self._max_pixels:
            raise FusionInputError(f"warmup_size {width}x{height} exceeds max_pixels={self._max_pixels}")
        start = time.perf_counter()
        thermal, visible = synthetic_pair(height, width, seed=0, t=0.0)
        for _ in range(2):  # the first call allocates and plans; the second runs as in steady state
            self._pipeline(thermal, visible)
        self._warm_sizes.add((height, width))
        self.get_logger().info(f"pipeline warmed at {width}x{height} in {time.perf_counter() - start:.2f} s")

    def _next_pair(self) -> SyncedPair | None:
        """The newest ready pair; around a frame of a new (slow) size, every queued pair in order."""
        requested = self._catch_up_requests
        if self._catching_up or requested != self._catch_up_seen:
            # At most what the queues held: a node slower than the cameras goes back to the latest pair.
            if not self._catching_up:
                self._catching_up, self._catch_up_left = True, 2 * self._param("queue_size")
            pair = self._sync.pop_oldest()
            self._catch_up_left -= 1
            if (pair is None and requested == self._catch_up_requests) or self._catch_up_left <= 0:
                self._catching_up = False
                self._catch_up_seen = requested
            return pair
        return self._sync.pop_next(self._param("max_backlog"))

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            try:
                self._apply_pending_changes()
            except Exception as exc:  # supervision
                self._count_exception("parameter update", exc)
            while not self._stop.is_set():
                try:
                    pair = self._next_pair()
                    if pair is None:
                        break
                    self._process(pair)
                except Exception as exc:  # supervision: count, log, take the next pair
                    self._count_exception("worker", exc)

    def _wanted_outputs(self) -> dict[str, bool]:
        return {
            "fused": self._fused_pub.get_subscription_count() > 0,
            "weights": self._weights_pub.get_subscription_count() > 0,
            "colored": self._colored_pub.get_subscription_count() > 0,
            "debug": self._param("publish_debug") and self._debug_pub.get_subscription_count() > 0,
            "compressed": self._param("publish_compressed") and self._compressed_pub.get_subscription_count() > 0,
        }

    def _process(self, pair: SyncedPair) -> None:
        start = time.perf_counter()
        wanted = self._wanted_outputs()
        if not any(wanted.values()):
            self._drop("no_subscribers", "no subscriber on any output")
            self._stats.record_idle()
            return
        thermal_array, thermal_encoding, _ = pair.first
        rgb_array, rgb_encoding, header = pair.second
        try:
            visible = to_bgr(rgb_array, rgb_encoding)
            thermal = to_bgr(thermal_array, thermal_encoding)
            thermal = self._register(thermal, visible.shape[:2], pair.first_stamp_ns, pair.second_stamp_ns)
            if thermal is None:
                return
            result = self._pipeline(thermal, visible)
            if visible.shape[:2] not in self._warm_sizes:  # pairs queued during this first (slow) call
                self._warm_sizes.add(visible.shape[:2])
                self._catch_up_requests += 1
            for note in result.warnings:  # e.g. "infrared resized": rate-limited per text by the log bridge
                CORE_LOGGER.warning(note)
        except FusionInputError as exc:
            reason = "size_mismatch" if isinstance(exc, SizeMismatchError) else "bad_data"
            self._drop(reason, str(exc))
            return
        except Exception as exc:  # keep serving; the reason is counted and logged
            self._count_exception("fusion", exc)
            return

        if wanted["fused"]:
            encoding = "bgr8" if result.fused.ndim == 3 else "mono8"
            self._fused_pub.publish(array_to_image(result.fused, encoding, header))
        if wanted["compressed"]:
            self._publish_compressed(result.fused, header)
        if (wanted["fused"] or wanted["compressed"]) and self._fused_info_pub.get_subscription_count() > 0:
            self._publish_fused_camera_info(header, result.fused.shape[:2], pair.second_stamp_ns)
        if wanted["weights"]:
            self._weights_pub.publish(array_to_image(result.weights.astype(np.float32, copy=False), "32FC1", header))
        if wanted["colored"]:
            self._colored_pub.publish(array_to_image(result.weights_colored(), "bgr8", header))
        if wanted["debug"]:
            self._debug_pub.publish(array_to_image(_side_by_side(thermal, visible, result), "bgr8", header))

        latency_ms = (self.get_clock().now().nanoseconds - pair.second_stamp_ns) / 1e6
        gap_ms = abs(pair.first_stamp_ns - pair.second_stamp_ns) / 1e6
        self._stats.record_output(latency_ms, (time.perf_counter() - start) * 1e3, gap_ms)

    # ---- QoS overrides -------------------------------------------------------------------------
    def _output(self, msg_type: Any, topic: str, qos: QoSProfile) -> Any:
        """A publisher whose history, depth and reliability follow ``qos_overrides.<topic>.publisher.*``.

        The overrides are written into the profile passed in, so each publisher gets its own copy.
        """
        own = QoSProfile(history=qos.history, depth=qos.depth, reliability=qos.reliability, durability=qos.durability)
        return self.create_publisher(
            msg_type, topic, own, qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def _input_topic(self, stream: str) -> str:
        return transport_topic(self.resolve_topic_name(topics.INPUT_TOPICS[stream]), self._param(f"{stream}_transport"))

    def _reliability_override(self, stream: str) -> ReliabilityPolicy | None:
        """``qos_overrides.<input topic>.subscription.reliability`` when given (it then fixes the
        reliability of that input); None = the node's ``qos_reliability`` rule."""
        name = f"qos_overrides.{self._input_topic(stream)}.subscription.reliability"
        descriptor = ParameterDescriptor(
            description=f"reliability of the {stream} input: reliable, best_effort, or auto = qos_reliability",
            read_only=True)
        value = self.declare_parameter(name, RELIABILITY_FROM_NODE, descriptor).value
        if value == RELIABILITY_FROM_NODE:
            return None
        if value not in ("reliable", "best_effort"):
            raise ValueError(f"parameter {name} must be reliable, best_effort or auto, got {value!r}")
        return ReliabilityPolicy.RELIABLE if value == "reliable" else ReliabilityPolicy.BEST_EFFORT

    def _input_qos_options(self, stream: str) -> QoSOverridingOptions:
        """History and depth always come from ``qos_overrides``; reliability only when it fixes it."""
        kinds = [QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH]
        if self._fixed_reliability.get(stream) is not None:
            kinds.append(QoSPolicyKind.RELIABILITY)
        return QoSOverridingOptions(kinds)

    def _on_incompatible_qos(self, stream: str, info: Any) -> None:
        """A publisher the subscription cannot match: expected (and followed) in auto mode, else a warning."""
        policy = str(getattr(info.last_policy_kind, "name", info.last_policy_kind)).lower()
        policy = policy.removeprefix("rmw_qos_policy_")  # rclpy reports RMW_QOS_POLICY_RELIABILITY
        topic = self._subscriptions_by_stream[stream].topic_name
        if self._follows_publishers[stream] and policy == "reliability":
            self.get_logger().debug(f"{topic}: a publisher offers other reliability; following it")
            return
        self.get_logger().warning(
            f"{topic}: a publisher offers incompatible QoS ({policy}); set qos_reliability or "
            f"qos_overrides.{topic}.subscription.{policy}", throttle_duration_sec=10.0)

    # ---- camera_info and registration ---------------------------------------------------------
    def _load_calibration_file(self) -> StereoCalibration | None:
        """The calibration file's cameras and extrinsics, or None (FusionInputError names a bad file)."""
        path = self._param("calibration_file")
        if not path:
            return None
        calibration = load_stereo_calibration(path)  # FusionInputError (a ValueError) names the problem
        self.get_logger().info(
            f"calibration {path}: thermal {calibration.thermal.size[0]}x{calibration.thermal.size[1]}, "
            f"RGB {calibration.rgb.size[0]}x{calibration.rgb.size[1]}, "
            f"|t| = {np.linalg.norm(calibration.translation):.3f}")
        return calibration

    def _subscribe_camera_info(self, stream: str) -> None:
        """camera_info beside the (remapped) image topic, as image_transport's camera subscriber does."""
        topic = camera_info_topic(self.resolve_topic_name(topics.INPUT_TOPICS[stream]))
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        callback = self._guarded(f"{stream} camera_info callback", lambda msg, s=stream: self._on_camera_info(s, msg))
        self.create_subscription(CameraInfo, topic, callback, qos)

    def _on_camera_info(self, stream: str, msg: CameraInfo) -> None:
        with self._camera_info_lock:
            self._camera_info[stream].append((_stamp_ns(msg.header), msg))

    def _camera_info_for(self, stream: str, stamp_ns: int) -> CameraInfo | None:
        """The camera_info with the frame's stamp, else the newest one received."""
        with self._camera_info_lock:
            infos = list(self._camera_info[stream])
        for info_stamp, msg in reversed(infos):
            if info_stamp == stamp_ns:
                return msg
        return infos[-1][1] if infos else None

    def _camera_model(self, stream: str, stamp_ns: int) -> CameraModel | None:
        msg = self._camera_info_for(stream, stamp_ns)
        if msg is None or msg.k[0] <= 0:
            return None
        if msg.distortion_model not in ("", "plumb_bob", "rational_polynomial"):
            raise FusionInputError(f"{stream} camera_info distortion model {msg.distortion_model!r} is not supported "
                                   "(plumb_bob or rational_polynomial)")
        return CameraModel(np.asarray(msg.k, dtype=np.float64), (msg.width, msg.height), np.asarray(msg.d))

    def _calibration(self, thermal_stamp_ns: int, rgb_stamp_ns: int) -> StereoCalibration | None:
        if self._calibration_file is not None:
            return self._calibration_file
        thermal = self._camera_model("thermal", thermal_stamp_ns)
        rgb = self._camera_model("rgb", rgb_stamp_ns)
        if thermal is None or rgb is None:
            return None
        return StereoCalibration(thermal, rgb, np.asarray(self._param("extrinsic_rotation")),
                                 np.asarray(self._param("extrinsic_translation")))

    def _register(self, thermal: np.ndarray, size: tuple[int, int], thermal_stamp_ns: int,
                  rgb_stamp_ns: int) -> np.ndarray | None:
        """The thermal frame in the RGB frame of ``size`` = (height, width); None = dropped (counted)."""
        if self._param("registration") == "homography":
            if np.allclose(self._homography, np.eye(3)):
                return thermal
            return warp_thermal(thermal, self._homography, size)
        calibration = self._calibration(thermal_stamp_ns, rgb_stamp_ns)
        if calibration is None:
            self._drop("no_calibration", "registration: calibration needs thermal and rgb camera_info "
                       "(or calibration_file)")
            return None
        depth = float(self._param("scene_depth"))
        rgb_size, thermal_size = (size[1], size[0]), (thermal.shape[1], thermal.shape[0])
        key = (_model_key(calibration), depth, rgb_size, thermal_size)
        if key != self._registration_key:
            self._registration_maps = registration_maps(calibration, depth, rgb_size, thermal_size)
            self._registration_key = key
            self.get_logger().info(f"registration maps from calibration: depth {depth} m, "
                                   f"thermal {thermal_size[0]}x{thermal_size[1]} -> RGB {rgb_size[0]}x{rgb_size[1]}")
        return remap_thermal(thermal, self._registration_maps)

    # ---- extra outputs ------------------------------------------------------------------------
    def _publish_compressed(self, fused: np.ndarray, header: Any) -> None:
        """fused/image/compressed as compressed_image_transport writes JPEG."""
        encoding = "bgr8" if fused.ndim == 3 else "mono8"
        ok, buffer = cv2.imencode(".jpg", fused, [cv2.IMWRITE_JPEG_QUALITY, int(self._param("jpeg_quality"))])
        if not ok:
            raise ConversionError("JPEG encoding of the fused image failed")
        self._compressed_pub.publish(
            CompressedImage(header=header, format=f"{encoding}; jpeg compressed {encoding}", data=buffer.tobytes()))

    def _publish_fused_camera_info(self, header: Any, shape: tuple[int, int], rgb_stamp_ns: int) -> None:
        """The RGB camera's calibration (the fused image is in its frame) with the fused header."""
        source = self._camera_info_for("rgb", rgb_stamp_ns)
        height, width = shape
        if source is not None:
            info = CameraInfo(
                header=header, height=source.height, width=source.width, distortion_model=source.distortion_model,
                d=list(source.d), k=list(source.k), r=list(source.r), p=list(source.p),
                binning_x=source.binning_x, binning_y=source.binning_y, roi=source.roi)
        elif self._calibration_file is not None:
            rgb = self._calibration_file.rgb
            distortion = list(rgb.distortion) or [0.0] * 5
            projection = np.hstack([rgb.matrix, np.zeros((3, 1))])
            info = CameraInfo(
                header=header, height=rgb.size[1], width=rgb.size[0],
                distortion_model="rational_polynomial" if len(distortion) >= 8 else "plumb_bob",
                d=[float(v) for v in distortion], k=rgb.matrix.reshape(-1).tolist(),
                r=np.eye(3).reshape(-1).tolist(), p=projection.reshape(-1).tolist())
        else:
            return
        if (info.width, info.height) != (width, height) and info.width and info.height:
            _rescale_camera_info(info, width, height)
        self._fused_info_pub.publish(info)

    # ---- diagnostics -------------------------------------------------------------------------
    def _sync_drops(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for counts in self._sync.drops().values():
            for reason, count in counts.items():
                totals[reason] = totals.get(reason, 0) + count
        return totals

    def _health_errors(self, snapshot: Any) -> tuple[str, ...]:
        """ERROR causes: a recently restarted worker thread, or inputs without output for stall_timeout."""
        errors = []
        if time.monotonic() - self._last_restart < max(self._stall_timeout, 3 * self._param("diagnostics_period")):
            errors.append(f"fusion worker thread died ({self._worker_error or 'no exception'}) and was restarted")
        inputs_arrive = all(rate > 0.0 for rate in snapshot.input_rates_hz.values())
        if inputs_arrive and snapshot.waiting_s > self._stall_timeout:
            errors.append(f"inputs arrive but nothing was published for {snapshot.waiting_s:.1f} s (see drops_*)")
        return tuple(errors)

    def _publish_diagnostics(self) -> None:
        snapshot = self._stats.snapshot(self._sync_drops())
        info = {
            **{k: v for k, v in self._pipeline_info.items() if k != "model_path" or v},
            **{f"{stream}_qos": self._reliability[stream].name.lower() for stream in STREAMS},
            "slop_s": self._param("slop"),
            "ready": "true",
            "worker_restarts": self._worker_restarts,
            "fused_subscribers": self._fused_pub.get_subscription_count(),
            "sync_resets": self._sync.resets,
        }
        if self._worker_restarts:
            info["worker_last_error"] = self._worker_error
        if snapshot.drops.get("transport_lost"):
            info["transport_lost_hint"] = f"messages {TRANSPORT_LOST_HINT}"
        status = to_diagnostic_status(
            f"{self.get_name()}: fusion", self.get_fully_qualified_name(), snapshot, info,
            self._health_errors(snapshot),
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
        self._uninstall_log_bridge()
        super().destroy_node()


def _bgr8_tile(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (any depth, gray or BGR) as 8-bit BGR of `size` (width, height); non-8-bit is min-max stretched."""
    if image.dtype != np.uint8:
        image = cv2.normalize(np.nan_to_num(image.astype(np.float32)), None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image if (image.shape[1], image.shape[0]) == size else cv2.resize(image, size)


def _model_key(calibration: StereoCalibration) -> bytes:
    """Bytes that change whenever any number or size of the calibration changes."""
    parts = [calibration.rotation, calibration.translation]
    for camera in (calibration.thermal, calibration.rgb):
        parts += [camera.matrix, camera.distortion, np.asarray(camera.size, dtype=np.float64)]
    return b"".join(np.ascontiguousarray(part, dtype=np.float64).tobytes() + b"|" for part in parts)


def _rescale_camera_info(info: CameraInfo, width: int, height: int) -> None:
    """Scale K and P of ``info`` to an image of ``width`` x ``height`` (pixel-centre convention)."""
    scale_x, scale_y = width / info.width, height / info.height
    k, p = np.asarray(info.k, dtype=np.float64).reshape(3, 3), np.asarray(info.p, dtype=np.float64).reshape(3, 4)
    for matrix in (k, p):
        matrix[0, :] *= scale_x
        matrix[1, :] *= scale_y
        matrix[0, 2] += 0.5 * (scale_x - 1.0)
        matrix[1, 2] += 0.5 * (scale_y - 1.0)
    info.k, info.p = k.reshape(-1).tolist(), p.reshape(-1).tolist()
    info.width, info.height = width, height


def _side_by_side(thermal: np.ndarray, visible: np.ndarray, result: Any) -> np.ndarray:
    """thermal | RGB | fused | coloured weights, each at the RGB size, as one 8-bit BGR image."""
    size = (visible.shape[1], visible.shape[0])
    tiles = [thermal, visible, result.fused, result.weights_colored()]
    return cv2.hconcat([_bgr8_tile(tile, size) for tile in tiles])


def main(args: list[str] | None = None) -> int:
    """Console script ``fusion_node``: spin until SIGINT/SIGTERM, then shut down cleanly.

    Returns:
        0 on a clean shutdown, 1 when the node cannot start (the reason is logged).
    """
    rclpy.init(args=args)
    node = None
    try:
        node = FusionNode(freeze_startup_objects=True)
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
