"""Open rosbag2 bags for reading and writing with ``rosbags``, with errors turned into BagError.

The typestore is ROS 2 Jazzy (Humble when the installed ``rosbags`` lacks it); the standard
message types of ``sensor_msgs`` and ``std_msgs`` are identical in both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from .errors import BagError

__all__ = [
    "CAMERA_INFO_TYPE",
    "IMAGE_TYPE",
    "STORAGE_CHOICES",
    "TopicStats",
    "bag_writer",
    "check_no_overlap",
    "staged_outputs",
    "default_qos",
    "describe_topics",
    "header_stamp_ns",
    "iter_messages",
    "normalize_topic",
    "open_bag",
    "require_topics",
    "set_header_stamp",
    "topic_stats",
    "typestore",
]

IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
STORAGE_CHOICES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}

_TYPESTORE: Any = None


def typestore() -> Any:
    """Return the shared rosbags typestore (ROS 2 Jazzy, else Humble).

    Returns:
        A ``rosbags.typesys`` typestore.
    """
    global _TYPESTORE
    if _TYPESTORE is None:
        store = getattr(Stores, "ROS2_JAZZY", None) or Stores.ROS2_HUMBLE
        _TYPESTORE = get_typestore(store)
    return _TYPESTORE


def normalize_topic(topic: str) -> str:
    """Return ``topic`` as an absolute name (``thermal/image_raw`` -> ``/thermal/image_raw``)."""
    topic = topic.strip()
    return topic if topic.startswith("/") else "/" + topic


def default_qos(depth: int = 10) -> Qos:
    """QoS profile recorded with each topic: reliable, volatile, keep-last ``depth``.

    Args:
        depth: History depth.

    Returns:
        A rosbags ``Qos`` tuple (``ros2 bag play`` offers it again when replaying).
    """
    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE,
        QosDurability.VOLATILE,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


def _overlaps(first: Path, second: Path) -> bool:
    """True when one path is the other or lies inside it (after resolving links)."""
    first, second = first.resolve(), second.resolve()
    return first == second or first.is_relative_to(second) or second.is_relative_to(first)


def check_no_overlap(outputs: Iterable[Path | str], inputs: Iterable[Path | str]) -> None:
    """Refuse outputs that are, contain or lie inside an input (``--overwrite`` would remove it).

    Raises:
        BagError: the first overlap found, naming both paths.
    """
    input_list = [Path(p) for p in inputs if p is not None]
    for output in outputs:
        for source in input_list:
            if _overlaps(Path(output), source):
                raise BagError(f"output {output} overlaps the input {source}; choose an output outside it")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staged_outputs(outputs: Sequence[Path | str], *, overwrite: bool = False) -> Iterator[list[Path]]:
    """Write outputs into a temporary sibling folder; move them into place only on success.

    On any exception (errors, Ctrl-C, a signal turned into an exception) the temporary folder is
    removed and nothing partial is left; an existing output is replaced only after everything was
    written.

    Args:
        outputs: final paths (files or bag folders), all in existing or creatable folders.
        overwrite: replace existing outputs (a folder only when it is a rosbag2 bag).

    Yields:
        The temporary paths to write, one per output, with the same names.

    Raises:
        BagError: an output exists (without ``overwrite``) or is a folder that is not a bag.
    """
    finals = [Path(p) for p in outputs]
    for final in finals:
        if final.exists() or final.is_symlink():
            if not overwrite:
                raise BagError(f"output exists already: {final} (use --overwrite)")
            if final.is_dir() and not (final / "metadata.yaml").is_file() and any(final.iterdir()):
                raise BagError(f"refusing to overwrite {final}: it is not a rosbag2 folder")
    stages = []
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
        stage = final.parent / f".{final.name}.partial-{os.getpid()}"
        _remove(stage)
        stage.mkdir()
        stages.append(stage)
    try:
        yield [stage / final.name for stage, final in zip(stages, finals, strict=True)]
        for stage, final in zip(stages, finals, strict=True):
            if final.exists() or final.is_symlink():
                _remove(final)
            os.replace(stage / final.name, final)
    finally:
        for stage in stages:
            _remove(stage)


@contextmanager
def bag_writer(
    path: Path | str,
    *,
    storage: str = "mcap",
    version: int = 8,
    overwrite: bool = False,
) -> Iterator[Writer]:
    """Open a new rosbag2 bag for writing.

    Args:
        path: Bag folder to create.
        storage: ``"mcap"`` or ``"sqlite3"``.
        version: rosbag2 metadata version (8 = Jazzy, 9 = Kilted).
        overwrite: Remove an existing bag folder first.

    Yields:
        An open ``rosbags.rosbag2.Writer``; it is closed (metadata written) on exit, also
        after an error, so the partial bag stays readable.

    Raises:
        BagError: Unknown storage, the folder exists (without ``overwrite``), or rosbags fails.
    """
    path = Path(path)
    if storage not in STORAGE_CHOICES:
        raise BagError(f"unknown storage {storage!r}; choose one of {sorted(STORAGE_CHOICES)}")
    if path.exists():
        if not overwrite:
            raise BagError(f"output bag exists already: {path} (use --overwrite)")
        if not (path / "metadata.yaml").is_file() and any(path.iterdir()):
            raise BagError(f"refusing to overwrite {path}: it is not a rosbag2 folder")
        shutil.rmtree(path)
    writer = Writer(path, version=version, storage_plugin=STORAGE_CHOICES[storage])
    try:
        writer.open()
    except (WriterError, OSError) as exc:
        raise BagError(f"cannot create bag {path}: {exc}") from exc
    try:
        yield writer
    except WriterError as exc:
        raise BagError(f"cannot write bag {path}: {exc}") from exc
    finally:
        writer.close()


@contextmanager
def open_bag(path: Path | str) -> Iterator[Reader]:
    """Open a rosbag2 bag (folder, ``.mcap`` or ``.db3`` file) for reading.

    Args:
        path: The bag.

    Yields:
        An open ``rosbags.rosbag2.Reader``.

    Raises:
        BagError: The bag is missing, truncated, corrupt or of an unknown format.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    try:
        reader = Reader(path)
        reader.open()
    except BagError:
        raise
    except Exception as exc:  # rosbags and its storage plugins raise many kinds on bad files
        raise BagError(f"cannot open bag {path}: {_describe(exc)}{_hint(exc)}") from exc
    try:
        yield reader
    finally:
        with contextlib.suppress(Exception):  # closing a broken bag must not hide the first error
            reader.close()


def iter_messages(
    reader: Reader, connections: Sequence[Connection] = (), *, start: int | None = None
) -> Iterator[tuple[Connection, int, bytes]]:
    """Yield ``(connection, log time ns, raw CDR)`` in log-time order.

    Args:
        reader: An open reader.
        connections: Restrict to these connections (all when empty).
        start: Skip messages logged before this time (ns).

    Yields:
        The messages.

    Raises:
        BagError: A chunk is truncated or corrupt.
    """
    try:
        yield from reader.messages(connections=connections, start=start)
    except BagError:
        raise
    except Exception as exc:  # noqa: BLE001 - see open_bag
        raise BagError(
            f"cannot read messages from {reader.path}: {_describe(exc)} (corrupt or truncated file)"
        ) from exc


@dataclass(frozen=True)
class TopicStats:
    """What one topic of a bag holds.

    Attributes:
        topic: Topic name as stored.
        msgtype: Message type (``sensor_msgs/msg/Image``).
        count: Message count.
        connections: Its connections.
    """

    topic: str
    msgtype: str
    count: int
    connections: tuple[Connection, ...]


def topic_stats(reader: Reader) -> dict[str, TopicStats]:
    """Return the topics of an open bag, keyed by absolute topic name.

    Args:
        reader: An open reader.

    Returns:
        Normalised topic name -> TopicStats.
    """
    stats: dict[str, TopicStats] = {}
    for topic, info in reader.topics.items():
        stats[normalize_topic(topic)] = TopicStats(
            topic, info.msgtype or "(mixed types)", info.msgcount, tuple(info.connections)
        )
    return stats


def describe_topics(stats: dict[str, TopicStats]) -> str:
    """One-line list of a bag's topics, for error messages."""
    if not stats:
        return "the bag has no topics"
    return "topics in the bag: " + ", ".join(
        f"{name} ({s.msgtype.rsplit('/', 1)[-1]}, {s.count})" for name, s in sorted(stats.items())
    )


def require_topics(
    reader: Reader, topics: Iterable[str], msgtype: str | None = IMAGE_TYPE
) -> dict[str, TopicStats]:
    """Look up topics in a bag and check their type.

    Args:
        reader: An open reader.
        topics: Wanted topic names (relative names are made absolute).
        msgtype: Required message type, or None for any.

    Returns:
        Wanted topic (as given) -> TopicStats.

    Raises:
        BagError: A topic is missing (the message lists the bag's topics), has the wrong
            type, or has no messages.
    """
    stats = topic_stats(reader)
    found: dict[str, TopicStats] = {}
    missing = []
    for topic in topics:
        entry = stats.get(normalize_topic(topic))
        if entry is None:
            missing.append(topic)
            continue
        if msgtype is not None and entry.msgtype != msgtype:
            raise BagError(f"topic {entry.topic} in {reader.path} is {entry.msgtype}, expected {msgtype}")
        if entry.count == 0:
            raise BagError(f"topic {entry.topic} in {reader.path} has no messages")
        found[topic] = entry
    if missing:
        raise BagError(
            f"topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in {reader.path}; "
            + describe_topics(stats)
        )
    return found


def _endian(raw: bytes | bytearray | memoryview) -> str:
    """struct byte order of a CDR buffer, from its encapsulation header."""
    if len(raw) < 12:
        raise BagError(f"message of {len(raw)} bytes is too short for a header")
    return "<" if raw[1] & 1 else ">"


def header_stamp_ns(raw: bytes | bytearray | memoryview) -> int:
    """Read ``header.stamp`` of a serialised message whose first field is a std_msgs/Header.

    Args:
        raw: CDR bytes (with the 4-byte encapsulation header).

    Returns:
        The stamp in nanoseconds.

    Raises:
        BagError: The buffer is too short.
    """
    sec, nanosec = struct.unpack_from(_endian(raw) + "iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


def set_header_stamp(raw: bytearray, stamp_ns: int) -> None:
    """Overwrite ``header.stamp`` of a serialised message in place (see header_stamp_ns).

    Args:
        raw: CDR bytes, modified in place.
        stamp_ns: New stamp in nanoseconds (non-negative).
    """
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    struct.pack_into(_endian(raw) + "iI", raw, 4, sec, nanosec)


def _hint(exc: BaseException) -> str:
    """What a storage error most likely means, for the user."""
    text = str(exc).lower()
    if any(word in text for word in ("magic", "truncated", "malformed", "not a database", "checksum")):
        return " (truncated or corrupt file; a bag still being recorded cannot be read either)"
    return ""


def _describe(exc: BaseException) -> str:
    """Short one-line description of an exception from a storage plugin."""
    text = " ".join(str(exc).split()) or "no details"
    if isinstance(exc, FileNotFoundError):
        return text
    name = type(exc).__name__
    if isinstance(exc, (ReaderError, WriterError)):
        return text
    return f"{text} ({name})"
