"""Read image topics of a bag back as arrays (round-trip checks, offline fusion, inspection)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivif_ros.ros.conversions import ConversionError, image_to_array

from .errors import BagError
from .storage import IMAGE_TYPE, iter_messages, normalize_topic, open_bag, require_topics, typestore

__all__ = ["BagImage", "decode_image", "read_images"]


@dataclass(frozen=True)
class BagImage:
    """One decoded image message.

    Attributes:
        topic: Absolute topic name.
        log_ns: Log (receive) time in the bag, ns.
        stamp_ns: Header stamp, ns.
        frame_id: Header frame id.
        encoding: Image encoding.
        array: Pixels as decoded by ``conversions.image_to_array`` (a copy, writable).
    """

    topic: str
    log_ns: int
    stamp_ns: int
    frame_id: str
    encoding: str
    array: np.ndarray


def decode_image(raw: bytes | memoryview, *, where: str = "message") -> tuple[Any, np.ndarray]:
    """Deserialise a CDR ``sensor_msgs/msg/Image`` and decode its pixels.

    Args:
        raw: CDR bytes.
        where: Text naming the message in errors (topic and time).

    Returns:
        (rosbags message, array); the array is a view on the message buffer.

    Raises:
        BagError: The bytes do not deserialise or the image cannot be decoded.
    """
    try:
        msg = typestore().deserialize_cdr(raw, IMAGE_TYPE)
    except Exception as exc:  # noqa: BLE001 - rosbags raises assorted errors on corrupt CDR
        raise BagError(f"corrupt image {where}: {exc}") from exc
    try:
        return msg, image_to_array(msg)
    except ConversionError as exc:
        raise BagError(f"cannot decode image {where}: {exc}") from exc


def read_images(path: Path | str, topics: Sequence[str]) -> Iterator[BagImage]:
    """Yield the images of some topics of a bag, in log-time order.

    Args:
        path: The bag.
        topics: Image topics to read (all must exist).

    Yields:
        BagImage per message.

    Raises:
        BagError: Missing bag or topic, corrupt or truncated data.
    """
    with open_bag(path) as reader:
        found = require_topics(reader, topics)
        connections = [c for entry in found.values() for c in entry.connections]
        for connection, log_ns, raw in iter_messages(reader, connections):
            where = f"on {connection.topic} at {log_ns} ns"
            msg, array = decode_image(raw, where=where)
            stamp = msg.header.stamp
            yield BagImage(
                normalize_topic(connection.topic),
                log_ns,
                stamp.sec * 1_000_000_000 + stamp.nanosec,
                msg.header.frame_id,
                msg.encoding,
                np.array(array),
            )
