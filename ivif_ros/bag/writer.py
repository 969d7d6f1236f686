"""``ivif-bag make``: write paired infrared/visible frames into a rosbag2 bag.

Each pair becomes a ``sensor_msgs/msg/Image`` on the thermal topic and one on the RGB topic,
CDR-serialised with the standard type names so ``ros2 bag play`` accepts the bag. Stamps follow
a fixed rate; optional uniform jitter per camera and a fixed thermal-minus-RGB offset exercise
the node's synchroniser. The log (receive) time of each message equals its header stamp.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ivif_ros import topics
from ivif_ros.core.errors import FusionInputError
from ivif_ros.data import ImagePair, read_image
from ivif_ros.ros.conversions import ConversionError, array_to_image

from .errors import BagError
from .storage import CAMERA_INFO_TYPE, IMAGE_TYPE, bag_writer, default_qos, normalize_topic, typestore

__all__ = ["MakeOptions", "MakeSummary", "camera_info_topic", "load_thermal", "load_visible", "make_bag"]

_NS = 1_000_000_000


@dataclass(frozen=True)
class MakeOptions:
    """How ``make_bag`` lays out topics and stamps.

    Attributes:
        rate: Frame rate in Hz.
        jitter_ms: Each stamp moves by a uniform random amount in ±jitter_ms (per camera);
            must stay below half a period so that frames keep their order.
        offset_ms: Thermal stamp minus RGB stamp (fixed), may be negative.
        start_ns: Stamp of the first RGB frame; None = the current wall-clock time.
        seed: Seed of the jitter.
        thermal_topic: Thermal image topic.
        rgb_topic: RGB image topic.
        thermal_frame: Thermal header frame_id.
        rgb_frame: RGB header frame_id.
        rgb_encoding: ``"bgr8"`` or ``"rgb8"``.
        camera_info: Also write ``.../camera_info`` beside each image topic.
        storage: ``"mcap"`` or ``"sqlite3"``.
        version: rosbag2 metadata version (8 for Humble..Jazzy tools, 9 for Kilted).
        qos_depth: History depth of the recorded QoS profile.
    """

    rate: float = 10.0
    jitter_ms: float = 0.0
    offset_ms: float = 0.0
    start_ns: int | None = None
    seed: int = 0
    thermal_topic: str = topics.THERMAL_TOPIC
    rgb_topic: str = topics.RGB_TOPIC
    thermal_frame: str = "thermal_camera"
    rgb_frame: str = "rgb_camera"
    rgb_encoding: str = "bgr8"
    camera_info: bool = False
    storage: str = "mcap"
    version: int = 8
    qos_depth: int = 10

    def check(self) -> None:
        """Validate the options.

        Raises:
            BagError: A value is out of range; the message names it.
        """
        if not np.isfinite(self.rate) or self.rate <= 0:
            raise BagError(f"--rate must be positive, got {self.rate}")
        period_ms = 1000.0 / self.rate
        if not 0 <= self.jitter_ms < period_ms / 2:
            raise BagError(
                f"--jitter-ms must be in [0, {period_ms / 2:g}) at {self.rate:g} Hz, got {self.jitter_ms}"
            )
        if self.rgb_encoding not in ("bgr8", "rgb8"):
            raise BagError(f"--rgb-encoding must be bgr8 or rgb8, got {self.rgb_encoding!r}")
        if normalize_topic(self.thermal_topic) == normalize_topic(self.rgb_topic):
            raise BagError(f"thermal and RGB topics must differ, both are {self.thermal_topic!r}")
        if self.version not in (8, 9):
            raise BagError(f"--bag-version must be 8 or 9, got {self.version}")


@dataclass
class MakeSummary:
    """What ``make_bag`` wrote.

    Attributes:
        path: The bag folder.
        frames: Pairs written.
        topics: Topic -> message count.
        rgb_stamps_ns: Header stamp of each RGB frame, in pair order.
        thermal_stamps_ns: Header stamp of each thermal frame, in pair order.
        thermal_encodings: Encoding of each thermal frame (mono8 or mono16).
    """

    path: Path
    frames: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    rgb_stamps_ns: list[int] = field(default_factory=list)
    thermal_stamps_ns: list[int] = field(default_factory=list)
    thermal_encodings: list[str] = field(default_factory=list)


def load_thermal(path: Path) -> np.ndarray:
    """Read a thermal image as a 2-D uint8 or uint16 array.

    A 3-channel image whose channels are equal (LLVIP) collapses to one channel; a false-colour
    one is converted to gray; alpha is dropped; 16-bit data stays 16-bit.

    Args:
        path: Image file.

    Returns:
        H×W uint8 or uint16.

    Raises:
        BagError: The file cannot be decoded or has an unsupported depth.
    """
    image = _read(path, "ir")
    if image.dtype not in (np.uint8, np.uint16):
        raise BagError(f"thermal image {path} has unsupported dtype {image.dtype} (need 8 or 16 bit)")
    return image


def load_visible(path: Path) -> np.ndarray:
    """Read a visible image as H×W×3 BGR uint8 (gray files are expanded to three channels).

    Args:
        path: Image file.

    Returns:
        H×W×3 uint8, BGR.

    Raises:
        BagError: The file cannot be decoded or is not 8-bit.
    """
    image = _read(path, "vis")
    if image.dtype != np.uint8:
        raise BagError(f"visible image {path} has dtype {image.dtype}, need 8-bit")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image[:, :, :3])


def _read(path: Path, role: str) -> np.ndarray:
    try:
        return read_image(path, role)
    except FusionInputError as error:
        raise BagError(f"cannot read image {error}") from None


def camera_info_topic(image_topic: str) -> str:
    """``/thermal/image_raw`` -> ``/thermal/camera_info`` (image_transport convention)."""
    topic = normalize_topic(image_topic)
    return topic.rsplit("/", 1)[0] + "/camera_info"


def schedule(count: int, options: MakeOptions) -> tuple[list[int], list[int]]:
    """Header stamps of ``count`` frames.

    Args:
        count: Number of pairs.
        options: Rate, jitter, offset, start and seed.

    Returns:
        (rgb stamps, thermal stamps) in nanoseconds.

    Raises:
        BagError: A stamp would be negative.
    """
    start = time.time_ns() if options.start_ns is None else int(options.start_ns)
    rng = np.random.default_rng(options.seed)
    jitter = options.jitter_ms * 1e6
    # Relative offsets in float (small numbers), the absolute start added as an int: exact ns.
    base = np.arange(count) * (_NS / options.rate)
    rgb = base + (rng.uniform(-jitter, jitter, count) if jitter else 0.0)
    thermal = base + options.offset_ms * 1e6 + (rng.uniform(-jitter, jitter, count) if jitter else 0.0)
    rgb_ns = [start + int(round(v)) for v in rgb]
    thermal_ns = [start + int(round(v)) for v in thermal]
    if count and min(rgb_ns[0], thermal_ns[0]) < 0:
        raise BagError("the first stamp would be negative; raise --start-time or the offset")
    return rgb_ns, thermal_ns


def _header(stamp_ns: int, frame_id: str) -> Any:
    types = typestore().types
    sec, nanosec = divmod(stamp_ns, _NS)
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def _camera_info(header: Any, height: int, width: int) -> Any:
    """A nominal pinhole CameraInfo (focal length = width, principal point at the centre)."""
    types = typestore().types
    fx = float(width)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return types[CAMERA_INFO_TYPE](
        header=header,
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5, dtype=np.float64),
        k=np.array([fx, 0, cx, 0, fx, cy, 0, 0, 1], dtype=np.float64),
        r=np.eye(3, dtype=np.float64).ravel(),
        p=np.array([fx, 0, cx, 0, 0, fx, cy, 0, 0, 0, 1, 0], dtype=np.float64),
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


def make_bag(
    pairs: Sequence[ImagePair],
    output: Path | str,
    options: MakeOptions | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> MakeSummary:
    """Write a rosbag2 bag with one thermal and one RGB image per pair.

    Args:
        pairs: The frames, in order (see ``layout.find_image_pairs``).
        output: Bag folder to create.
        options: Topics, stamps and storage; defaults match the fusion node.
        overwrite: Replace an existing bag folder.
        progress: Called with 1 after each pair is written (e.g. ``tqdm.update``).

    Returns:
        A MakeSummary with counts and the stamps written.

    Raises:
        BagError: Bad options, no pairs, an unreadable image, or a rosbags failure.
    """
    options = options or MakeOptions()
    options.check()
    if not pairs:
        raise BagError("no image pairs to write")
    output = Path(output)
    rgb_stamps, thermal_stamps = schedule(len(pairs), options)
    summary = MakeSummary(output, rgb_stamps_ns=rgb_stamps, thermal_stamps_ns=thermal_stamps)

    # Events in log-time order; each event reads its own file, so nothing is held back.
    events = sorted(
        [(stamp, 0, i) for i, stamp in enumerate(thermal_stamps)]
        + [(stamp, 1, i) for i, stamp in enumerate(rgb_stamps)]
    )
    thermal_topic, rgb_topic = normalize_topic(options.thermal_topic), normalize_topic(options.rgb_topic)
    topics = {thermal_topic: IMAGE_TYPE, rgb_topic: IMAGE_TYPE}
    if options.camera_info:
        topics[camera_info_topic(thermal_topic)] = CAMERA_INFO_TYPE
        topics[camera_info_topic(rgb_topic)] = CAMERA_INFO_TYPE
    if len(topics) < (4 if options.camera_info else 2):
        raise BagError(f"topic names collide: {sorted(topics)}")
    summary.topics = dict.fromkeys(topics, 0)
    summary.thermal_encodings = [""] * len(pairs)

    created = False
    try:
        with bag_writer(output, storage=options.storage, version=options.version, overwrite=overwrite) as writer:
            created = True
            _write_events(writer, events, pairs, topics, options, summary, progress)
    except BagError:
        if created:  # a half-written bag would only block the next attempt
            shutil.rmtree(output, ignore_errors=True)
        raise
    return summary


def _write_events(
    writer: Any,
    events: list[tuple[int, int, int]],
    pairs: Sequence[ImagePair],
    topics: dict[str, str],
    options: MakeOptions,
    summary: MakeSummary,
    progress: Callable[[int], None] | None,
) -> None:
    """Write the messages of ``events`` ((stamp, is_rgb, pair index), in log order)."""
    store = typestore()
    image_cls = store.types[IMAGE_TYPE]
    thermal_topic, rgb_topic = normalize_topic(options.thermal_topic), normalize_topic(options.rgb_topic)
    qos = [default_qos(options.qos_depth)]
    done = [0] * len(pairs)
    conns = {
        topic: writer.add_connection(topic, msgtype, typestore=store, offered_qos_profiles=qos)
        for topic, msgtype in topics.items()
    }
    for stamp, is_rgb, index in events:
        pair = pairs[index]
        if is_rgb:
            image = load_visible(pair.vis)
            encoding = options.rgb_encoding
            if encoding == "rgb8":
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            topic, frame_id = rgb_topic, options.rgb_frame
        else:
            image = load_thermal(pair.ir)
            encoding = "mono16" if image.dtype == np.uint16 else "mono8"
            summary.thermal_encodings[index] = encoding
            topic, frame_id = thermal_topic, options.thermal_frame
        header = _header(stamp, frame_id)
        try:
            msg = array_to_image(image, encoding, header=header, msg_cls=image_cls)
        except ConversionError as exc:
            raise BagError(f"cannot convert {pair.vis if is_rgb else pair.ir}: {exc}") from exc
        writer.write(conns[topic], stamp, store.serialize_cdr(msg, IMAGE_TYPE))
        summary.topics[topic] += 1
        if options.camera_info:
            info_topic = camera_info_topic(topic)
            info = _camera_info(header, image.shape[0], image.shape[1])
            writer.write(conns[info_topic], stamp, store.serialize_cdr(info, CAMERA_INFO_TYPE))
            summary.topics[info_topic] += 1
        done[index] += 1
        if done[index] == 2:
            summary.frames += 1
            if progress is not None:
                progress(1)
