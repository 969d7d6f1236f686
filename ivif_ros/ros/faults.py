"""Fault injection into a running ``fusion_node`` over real DDS (fault-injection tests, ``ivif-soak``).

``Injector`` is a separate rclpy participant (its own context) that publishes synthetic thermal/RGB
pairs to the node, records the node's fused outputs and ``/diagnostics``, and sets its
parameters. ``FAULTS`` maps a fault name to a function that injects one such fault through an
injector; afterwards the node must still fuse every good pair (``Injector.send_good``).

Good pair stamps come from the injector's clock (``period_ns`` apart), so an output is matched to
the pair it came from by stamp and by arriving after that pair was sent.
"""
from __future__ import annotations

import math
import random
import struct
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ivif_ros import topics
from ivif_ros.core.image_header import PNG_SIGNATURE
from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.ros.conversions import array_to_image

__all__ = ["FAULTS", "COMPRESSED_FAULTS", "RAW_FAULTS", "Injector", "png_header_bomb", "jpeg_header_bomb"]

START_NS = 1_000_000 * 1_000_000_000
DIAGNOSTIC_LEVELS = {DiagnosticStatus.OK: "OK", DiagnosticStatus.WARN: "WARN", DiagnosticStatus.ERROR: "ERROR",
                     DiagnosticStatus.STALE: "STALE"}


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_bomb(width: int, height: int) -> bytes:
    """A ~100-byte gray PNG whose IHDR claims `width` × `height` (the pixel data is a few rows)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def jpeg_header_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A JPEG start (SOI, APP0, SOF0) claiming `width` × `height`, followed by garbage."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + bytes(range(64))


class Injector:
    """Publishes pairs and faults to a fusion node and records what comes back.

    Args:
        domain_id: DDS domain of the node.
        height, width: size of the good pairs.
        thermal_transport, rgb_transport: ``raw`` or ``compressed`` (PNG), as the node subscribes.
        period_s: stamp step between good pairs.
        best_effort: publish best effort instead of reliable.
        namespace: namespace of the fusion node (``-r __ns:=...``); the injector publishes and
            listens in it and keeps only that node's /diagnostics, so other nodes in the same DDS
            domain do not interfere.
    """

    def __init__(
        self,
        domain_id: int,
        height: int = 128,
        width: int = 160,
        thermal_transport: str = "raw",
        rgb_transport: str = "raw",
        period_s: float = 0.1,
        best_effort: bool = False,
        namespace: str = "",
    ) -> None:
        self.height, self.width = height, width
        self.compressed = {"thermal": thermal_transport == "compressed", "rgb": rgb_transport == "compressed"}
        self.period_ns = int(period_s * 1e9)
        self.clock_ns = START_NS
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("fault_injector", namespace=namespace or None, context=self.context)
        self.node_name = f"{namespace.rstrip('/')}/fusion_node" if namespace else "/fusion_node"
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=reliability)
        self.raw = {s: self.node.create_publisher(Image, f"{s}/image_raw", qos) for s in ("thermal", "rgb")}
        self.packed = {s: self.node.create_publisher(CompressedImage, f"{s}/image_raw/compressed", qos)
                       for s in ("thermal", "rgb")}
        self._lock = threading.Lock()
        self.arrivals: dict[int, list[float]] = {}  # fused output stamp -> monotonic arrival times
        self.diagnostics: list[tuple[float, DiagnosticStatus]] = []
        self.debug_frames = 0
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, topics.FUSED_TOPIC, self._on_fused, out_qos)
        self.node.create_subscription(Image, topics.DEBUG_TOPIC, self._on_debug, out_qos)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS_TOPIC, self._on_diagnostics, 50)
        self.parameters = AsyncParameterClient(self.node, self.node_name)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()
        self.frames = [synthetic_pair(height, width, seed=5, t=0.1 * k) for k in range(8)]
        self.sent_good = 0
        self.good_sent_at: list[tuple[int, float]] = []  # (stamp, monotonic send time) of each good pair

    # ---- recording ------------------------------------------------------------------------
    def _on_fused(self, msg: Image) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self._lock:
            self.arrivals.setdefault(stamp, []).append(time.monotonic())

    def _on_debug(self, msg: Image) -> None:
        with self._lock:
            self.debug_frames += 1

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for status in msg.status:
                if status.name.endswith(": fusion") and status.hardware_id == self.node_name:
                    self.diagnostics.append((time.monotonic(), status))
            del self.diagnostics[:-200]

    def outputs_for(self, stamp_ns: int, after: float = 0.0) -> int:
        """Fused outputs with this stamp that arrived after `after` (monotonic time)."""
        with self._lock:
            return sum(1 for arrived in self.arrivals.get(stamp_ns, ()) if arrived >= after)

    def first_arrival(self, stamp_ns: int, after: float) -> float | None:
        """Monotonic time the first output with this stamp arrived after `after`, or None."""
        with self._lock:
            return next((arrived for arrived in self.arrivals.get(stamp_ns, ()) if arrived >= after), None)

    def latest_status(self, after: float = 0.0) -> tuple[str, str, dict[str, str]] | None:
        """(level, message, values) of the newest fusion status received after `after`."""
        with self._lock:
            for arrived, status in reversed(self.diagnostics):
                if arrived >= after:
                    level = DIAGNOSTIC_LEVELS.get(status.level, str(status.level))
                    return level, status.message, {kv.key: kv.value for kv in status.values}
        return None

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Poll `condition` until it holds or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return condition()

    def wait_ready(self, timeout: float = 90.0, alive: Callable[[], bool] = lambda: True) -> bool:
        """The node reported ready on /diagnostics, subscribes both streams of the configured transports
        and its fused publisher has matched this injector's subscription (else the first pairs would be
        fused for nobody)."""

        def ready() -> bool:
            status = self.latest_status()
            matched = all(self._publisher(s).get_subscription_count() > 0 for s in ("thermal", "rgb"))
            return (matched and status is not None and status[2].get("ready") == "true"
                    and status[2].get("fused_subscribers", "0") != "0")

        return self.wait_for(lambda: ready() or not alive(), timeout) and alive()

    # ---- publishing -----------------------------------------------------------------------
    def _publisher(self, stream: str) -> Any:
        return self.packed[stream] if self.compressed[stream] else self.raw[stream]

    def header(self, stamp_ns: int, frame_id: str) -> Header:
        result = Header(frame_id=frame_id)
        result.stamp.sec, result.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return result

    def message(self, stream: str, array: np.ndarray, encoding: str, stamp_ns: int) -> Image | CompressedImage:
        """`array` as the stream's transport would carry it (PNG for compressed)."""
        header = self.header(stamp_ns, f"{stream}_frame")
        if self.compressed[stream]:
            ok, buffer = cv2.imencode(".png", array)
            if not ok:
                raise RuntimeError("PNG encoding failed")
            return CompressedImage(header=header, format=f"{encoding}; png compressed", data=buffer.tobytes())
        return array_to_image(array, encoding, header)

    def good_messages(self, stamp_ns: int) -> tuple[Any, Any]:
        thermal, visible = self.frames[(stamp_ns // self.period_ns) % len(self.frames)]
        return self.message("thermal", thermal, "mono8", stamp_ns), self.message("rgb", visible, "bgr8", stamp_ns)

    def publish(self, thermal: Any, rgb: Any) -> float:
        """Publish one message per stream (None = skip); returns the monotonic send time."""
        sent = time.monotonic()
        for stream, msg in (("thermal", thermal), ("rgb", rgb)):
            if msg is not None:
                (self.packed if isinstance(msg, CompressedImage) else self.raw)[stream].publish(msg)
        return sent

    def next_stamp(self) -> int:
        self.clock_ns += self.period_ns
        return self.clock_ns

    def send_good(self, wait: bool = True, timeout: float = 15.0) -> bool:
        """Publish the next good pair; with `wait`, True once its fused output came back."""
        stamp = self.next_stamp()
        sent = self.publish(*self.good_messages(stamp))
        self.sent_good += 1
        self.good_sent_at.append((stamp, sent))
        if not wait:
            return True
        return self.wait_for(lambda: self.outputs_for(stamp, sent) > 0, timeout)

    def fuses_next(self, count: int = 3, timeout: float = 15.0) -> list[int]:
        """Send `count` good pairs one after another; the indices of those that did NOT come back."""
        return [k for k in range(count) if not self.send_good(timeout=timeout)]

    # ---- parameters -----------------------------------------------------------------------
    def set_parameters(self, parameters: list[Parameter], timeout: float = 10.0) -> list[Any] | None:
        """Set parameters on the node; its results, or None when no answer came in time."""
        if not self.parameters.wait_for_services(timeout_sec=timeout):
            return None
        future = self.parameters.set_parameters(parameters)
        if not self.wait_for(future.done, timeout):
            return None
        return list(future.result().results)

    def close(self) -> None:
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


# ---- the faults ------------------------------------------------------------------------------
def _raw(array: np.ndarray, encoding: str, header: Header) -> Image:
    return array_to_image(array, encoding, header)


def _between(injector: Injector) -> tuple[Header, Header]:
    """Headers stamped half a period after the last good pair (no good pair is displaced)."""
    stamp = injector.clock_ns + injector.period_ns // 2
    return injector.header(stamp, "thermal_frame"), injector.header(stamp, "rgb_frame")


def _good_rgb(injector: Injector, header: Header) -> Image | CompressedImage:
    stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
    return injector.good_messages(stamp)[1]


def fault_bad_encoding(injector: Injector) -> None:
    thermal_header, rgb_header = _between(injector)
    msg = _raw(injector.frames[0][0], "mono8", thermal_header)
    msg.encoding = "bayer_unknown8"
    injector.publish(msg, _good_rgb(injector, rgb_header))


def fault_truncated_data(injector: Injector) -> None:
    thermal_header, rgb_header = _between(injector)
    msg = _raw(injector.frames[0][0], "mono8", thermal_header)
    msg.data = bytes(msg.data)[: len(msg.data) // 3]
    injector.publish(msg, _good_rgb(injector, rgb_header))


def fault_absurd_sizes(injector: Injector) -> None:
    """Claims of 100000x100000 and 4294967295 x 1 pixels with tiny data, a zero size, a step below a row."""
    claims = [(100_000, 100_000, 100_000), (1, 4_294_967_295, 4_294_967_295), (0, 0, 0), (128, 160, 10)]
    for height, width, step in claims:
        thermal_header, rgb_header = _between(injector)
        msg = Image(header=thermal_header, height=height, width=width, encoding="mono8", step=step,
                    is_bigendian=0, data=bytes(64))
        injector.publish(msg, _good_rgb(injector, rgb_header))
        injector.clock_ns += 1_000_000  # distinct stamps
        time.sleep(0.05)  # the node keeps only the newest qos_depth messages of a burst


def fault_nan_32fc1(injector: Injector) -> None:
    thermal_header, rgb_header = _between(injector)
    thermal = injector.frames[0][0].astype(np.float32)
    thermal[::7, ::5] = np.nan
    thermal[3, :] = np.inf
    injector.publish(_raw(thermal, "32FC1", thermal_header), _good_rgb(injector, rgb_header))


def fault_size_mismatch(injector: Injector) -> None:
    thermal_header, rgb_header = _between(injector)
    narrow = np.ascontiguousarray(injector.frames[0][0][:, : injector.width // 3])
    injector.publish(_raw(narrow, "mono8", thermal_header), _good_rgb(injector, rgb_header))


def fault_debug_deep_rgb(injector: Injector) -> None:
    """publish_debug on, then RGB frames in mono16 and 32FC1 (the debug side-by-side mixed depths)."""
    injector.set_parameters([Parameter("publish_debug", value=True)])
    thermal, visible = injector.frames[1]
    gray = cv2.cvtColor(visible, cv2.COLOR_BGR2GRAY)
    deep = [(gray.astype(np.uint16) * 257, "mono16"), (gray.astype(np.float32) / 255.0, "32FC1")]
    for array, encoding in deep:
        stamp = injector.next_stamp()
        thermal_msg = injector.message("thermal", thermal, "mono8", stamp)
        sent = injector.publish(thermal_msg, _raw(array, encoding, injector.header(stamp, "rgb_frame")))
        injector.wait_for(lambda s=stamp, t=sent: injector.outputs_for(s, t) > 0, 3.0)
    injector.set_parameters([Parameter("publish_debug", value=False)])


def fault_duplicate_pair(injector: Injector) -> None:
    """One good pair sent twice (same stamps); the node must publish it once."""
    stamp = injector.next_stamp()
    messages = injector.good_messages(stamp)
    injector.publish(*messages)
    injector.publish(*messages)


def fault_out_of_order(injector: Injector) -> None:
    """Pair k+1 published before pair k."""
    first, second = injector.next_stamp(), injector.next_stamp()
    injector.publish(*injector.good_messages(second))
    injector.publish(*injector.good_messages(first))


def fault_stamps_jump_back(injector: Injector) -> None:
    """Both camera clocks step back by 0.5 s (and carry on from there)."""
    injector.clock_ns -= 500_000_000
    injector.publish(*injector.good_messages(injector.next_stamp()))


def fault_camera_silent(injector: Injector, silent_s: float = 5.0) -> None:
    """The thermal camera stops for `silent_s` while the RGB camera goes on at the pair period."""
    deadline = time.monotonic() + silent_s
    while time.monotonic() < deadline:
        injector.publish(None, injector.good_messages(injector.next_stamp())[1])
        time.sleep(injector.period_ns / 1e9)


def _random_parameter(rng: random.Random) -> Parameter:
    """A valid or invalid value of a runtime parameter (wrong type, range, length, NaN/inf)."""
    choices: list[tuple[str, list[Any]]] = [
        ("visible_enhance", [0.0, 0.5, 1.0, 1.5, -0.1, math.nan, math.inf, "high", 1]),
        ("thermal_enhance", [0.0, 0.3, 2.0, math.nan]),
        ("weight_temperature", [0.5, 1.0, 3.0, 0.0, -1.0, math.inf]),
        ("detail_gain", [1.0, 2.0, 11.0, -1.0, math.nan]),
        ("output_stretch", [0.5, 2.0, 60.0, math.nan]),
        ("smoothing_radius", [0, 4, 8, -3, 100000]),
        ("base_radius", [4, 8, 0, -1]),
        ("thermal_percentiles", [[0.5, 99.5], [2.0, 98.0], [5.0], [], [99.0, 1.0], [math.nan, 50.0], [1.0, 2.0, 3.0]]),
        ("thermal_stretch", ["auto", "minmax", "percentile", "sideways", ""]),
        ("mode", ["default", "nonsense", ""]),
        ("slop", [0.02, 0.05, -1.0, math.nan, 100.0]),
        ("homography", [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], [0.0] * 9, [1.0] * 4,
                        [1.0, 0.0, 2.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]]),
        ("publish_debug", [True, False, "yes"]),
        ("backend", ["torch"]),
        ("no_such_parameter", [1.0]),
    ]
    name, values = rng.choice(choices)
    return Parameter(name, value=rng.choice(values))


BURST_PARAMETERS = ("visible_enhance", "thermal_enhance", "weight_temperature", "detail_gain", "output_stretch",
                    "smoothing_radius", "base_radius", "thermal_percentiles", "thermal_stretch", "mode", "slop",
                    "homography", "publish_debug")


def default_parameters(names: tuple[str, ...] = BURST_PARAMETERS) -> list[Parameter]:
    """The node's declared default values of `names`."""
    from ivif_ros.ros.parameters import parameter_table

    table = parameter_table()
    return [Parameter(name, value=table[name][0]) for name in names]


def fault_parameter_burst(injector: Injector, count: int = 100, seed: int = 0) -> None:
    """`count` random parameter sets (valid and invalid) while pairs stream, then the defaults back."""
    rng = random.Random(seed)
    futures = []
    if not injector.parameters.wait_for_services(timeout_sec=10.0):
        raise RuntimeError("the node's parameter services did not appear")
    for k in range(count):
        batch = [_random_parameter(rng) for _ in range(rng.randint(1, 3))]
        futures.append(injector.parameters.set_parameters(batch))
        if k % 10 == 0:
            injector.send_good(wait=False)
        time.sleep(0.005)
    injector.wait_for(lambda: all(f.done() for f in futures), 30.0)
    for parameter in default_parameters():  # one at a time: a refused one must not block the others
        injector.set_parameters([parameter])


def fault_wrong_length_parameter(injector: Injector) -> None:
    """thermal_percentiles with one value (the tuple index error of the validation)."""
    injector.set_parameters([Parameter("thermal_percentiles", value=[5.0])])
    injector.set_parameters([Parameter("thermal_percentiles", value=[0.5, 99.5])])


def _compressed_fault(injector: Injector, stream: str, data: bytes, image_format: str = "png") -> None:
    thermal_header, rgb_header = _between(injector)
    header = thermal_header if stream == "thermal" else rgb_header
    bad = CompressedImage(header=header, format=image_format, data=data)
    good_stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
    thermal_msg, rgb_msg = injector.good_messages(good_stamp)
    injector.publish(bad if stream == "thermal" else thermal_msg, bad if stream == "rgb" else rgb_msg)
    injector.clock_ns += 1_000_000
    time.sleep(0.05)  # the node keeps only the newest qos_depth messages of a burst


def fault_png_header_bomb(injector: Injector) -> None:
    """100-byte PNGs claiming 40000x40000 (over OpenCV's limit) and 30000x30000 (under it)."""
    _compressed_fault(injector, "thermal", png_header_bomb(40_000, 40_000))
    _compressed_fault(injector, "thermal", png_header_bomb(30_000, 30_000))


def fault_jpeg_header_bomb(injector: Injector) -> None:
    _compressed_fault(injector, "rgb", jpeg_header_bomb(), "jpeg")


def fault_compressed_garbage(injector: Injector) -> None:
    """Random bytes, a PNG signature followed by garbage, and a PNG cut after its header."""
    rng = np.random.default_rng(1)
    _compressed_fault(injector, "thermal", rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    _compressed_fault(injector, "rgb", PNG_SIGNATURE + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    ok, png = cv2.imencode(".png", injector.frames[0][0])
    _compressed_fault(injector, "thermal", png.tobytes()[: png.size // 2])


def fault_unloadable_seed_mode(injector: Injector) -> None:
    """mode=seed set live while the seed weights cannot load, together with another change."""
    injector.set_parameters([Parameter("mode", value="seed"), Parameter("visible_enhance", value=0.2)])
    injector.set_parameters([Parameter("mode", value="default")])
    injector.set_parameters([Parameter("visible_enhance", value=0.0)])


RAW_FAULTS: dict[str, Callable[[Injector], None]] = {
    "bad_encoding": fault_bad_encoding,
    "truncated_data": fault_truncated_data,
    "absurd_sizes": fault_absurd_sizes,
    "nan_32fc1": fault_nan_32fc1,
    "size_mismatch": fault_size_mismatch,
    "debug_deep_rgb": fault_debug_deep_rgb,
    "duplicate_pair": fault_duplicate_pair,
    "out_of_order": fault_out_of_order,
    "stamps_jump_back": fault_stamps_jump_back,
    "camera_silent": fault_camera_silent,
    "parameter_burst": fault_parameter_burst,
    "wrong_length_parameter": fault_wrong_length_parameter,
}
COMPRESSED_FAULTS: dict[str, Callable[[Injector], None]] = {
    "png_header_bomb": fault_png_header_bomb,
    "jpeg_header_bomb": fault_jpeg_header_bomb,
    "compressed_garbage": fault_compressed_garbage,
    "unloadable_seed_mode": fault_unloadable_seed_mode,
}
FAULTS: dict[str, Callable[[Injector], None]] = {**RAW_FAULTS, **COMPRESSED_FAULTS}

