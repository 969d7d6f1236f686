"""``ivif-bag play``: publish a bag's topics through rclpy with the recorded timing.

For machines without ``ros2 bag``. Messages go out as the recorded CDR bytes
(``Publisher.publish(bytes)``, as ``ros2 bag play`` does), so nothing is decoded or re-encoded;
``restamp`` only patches the header stamp inside those bytes.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BagError
from .storage import (
    CAMERA_INFO_TYPE,
    IMAGE_TYPE,
    TopicStats,
    describe_topics,
    header_stamp_ns,
    iter_messages,
    open_bag,
    require_topics,
    set_header_stamp,
    topic_stats,
    typestore,
)

__all__ = ["PlayOptions", "PlaySummary", "play_bag"]

_NS = 1_000_000_000
_DEFAULT_TYPES = (IMAGE_TYPE, CAMERA_INFO_TYPE)
_HEADER_FIELD = ("header", "std_msgs/msg/Header")


@dataclass(frozen=True)
class PlayOptions:
    """How ``play_bag`` replays.

    Attributes:
        rate: Playback speed factor (2.0 = twice as fast).
        loop: Start again at the end, until stopped (or ``max_loops``).
        max_loops: Stop after this many passes when looping (None = forever).
        start_offset: Seconds into the bag to start from.
        topics: Topics to publish; empty = every Image and CameraInfo topic.
        restamp: Rewrite header stamps to the wall-clock time of publication, as a live camera
            would stamp them: ``now_at_pass_start + (stamp - start) / rate``. Stamps keep rising
            when looping; offsets between topics are kept (scaled by 1/rate).
        clock: Also publish ``/clock`` (set ``use_sim_time`` on the node to follow it).
        qos_depth: Keep-last depth of the publishers.
        best_effort: Publish best-effort instead of reliable.
        wait_for_subscribers: Seconds to wait until every image topic has a subscriber.
        domain_id: ROS domain id (None = ``ROS_DOMAIN_ID`` or 0).
    """

    rate: float = 1.0
    loop: bool = False
    max_loops: int | None = None
    start_offset: float = 0.0
    topics: tuple[str, ...] = ()
    restamp: bool = False
    clock: bool = False
    qos_depth: int = 5
    best_effort: bool = False
    wait_for_subscribers: float = 0.0
    domain_id: int | None = None

    def check(self) -> None:
        """Validate the options.

        Raises:
            BagError: A value is out of range; the message names it.
        """
        if not self.rate > 0:
            raise BagError(f"--rate must be positive, got {self.rate}")
        if self.start_offset < 0:
            raise BagError(f"--start-offset must be >= 0 s, got {self.start_offset}")
        if self.qos_depth < 1:
            raise BagError(f"--qos-depth must be >= 1, got {self.qos_depth}")
        if self.domain_id is not None and not 0 <= self.domain_id <= 232:
            raise BagError(f"--domain-id must be in 0..232, got {self.domain_id}")
        if self.max_loops is not None and self.max_loops < 1:
            raise BagError(f"max_loops must be >= 1, got {self.max_loops}")


@dataclass
class PlaySummary:
    """What ``play_bag`` published.

    Attributes:
        published: Topic -> messages published.
        passes: Passes over the bag started (1 without loop).
        wall_s: Seconds spent publishing.
        stopped: True when stopped early (``stop`` event or Ctrl-C).
    """

    published: dict[str, int] = field(default_factory=dict)
    passes: int = 0
    wall_s: float = 0.0
    stopped: bool = False


def _message_class(msgtype: str, topic: str) -> Any:
    """rclpy class of ``pkg/msg/Name``.

    Raises:
        BagError: The package is not installed for rclpy.
    """
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise BagError(f"cannot publish {topic}: message type {msgtype} is not available to rclpy") from exc


def _select(stats: dict[str, TopicStats], reader: Any, topics: tuple[str, ...]) -> dict[str, TopicStats]:
    if topics:
        return require_topics(reader, topics, msgtype=None)
    chosen = {name: entry for name, entry in stats.items() if entry.msgtype in _DEFAULT_TYPES and entry.count}
    if not chosen:
        raise BagError(f"no Image or CameraInfo topics in {reader.path}; " + describe_topics(stats))
    return chosen


def _has_header(msgtype: str) -> bool:
    fields = typestore().fielddefs.get(msgtype)
    return bool(fields) and (fields[1][0][0], fields[1][0][1][1]) == _HEADER_FIELD


def play_bag(
    path: Path | str,
    options: PlayOptions | None = None,
    *,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> PlaySummary:
    """Publish the messages of a bag with their recorded timing.

    Args:
        path: The bag.
        options: Rate, loop, offset, topics, QoS.
        stop: Set it (from another thread) to stop playback early.
        log: Receives progress lines.

    Returns:
        A PlaySummary.

    Raises:
        BagError: Missing or corrupt bag, missing topic, a type rclpy lacks, or bad options.
    """
    options = options or PlayOptions()
    options.check()
    stop = stop or threading.Event()
    import rclpy
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions

    summary = PlaySummary()
    with open_bag(path) as reader:
        stats = topic_stats(reader)
        chosen = _select(stats, reader, tuple(options.topics))
        if options.restamp:
            for entry in chosen.values():
                if not _has_header(entry.msgtype):
                    raise BagError(f"--restamp needs a header first in {entry.topic} ({entry.msgtype})")
        classes = {entry.topic: _message_class(entry.msgtype, entry.topic) for entry in chosen.values()}
        connections = [c for entry in chosen.values() for c in entry.connections]
        begin = reader.start_time + int(options.start_offset * _NS)
        if begin >= reader.end_time:
            raise BagError(
                f"--start-offset {options.start_offset:g} s is past the end of the bag "
                f"({(reader.end_time - reader.start_time) / _NS:.3f} s long)"
            )
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=options.qos_depth,
            reliability=ReliabilityPolicy.BEST_EFFORT if options.best_effort else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        context = rclpy.Context()
        # No rclpy signal handlers: Ctrl-C arrives as KeyboardInterrupt, the CLI maps SIGTERM to
        # ``stop``, and a library caller in a thread keeps its own handlers.
        try:
            rclpy.init(context=context, domain_id=options.domain_id, signal_handler_options=SignalHandlerOptions.NO)
        except Exception as exc:  # noqa: BLE001 - rcl reports a bad environment with assorted errors
            raise BagError(f"cannot start ROS 2: {exc}") from exc
        node = None
        started = time.monotonic()
        try:
            node = rclpy.create_node("ivif_bag_player", context=context)
            publishers = {topic: node.create_publisher(cls, topic, qos) for topic, cls in classes.items()}
            clock_pub = None
            if options.clock:
                from rosgraph_msgs.msg import Clock

                clock_pub = node.create_publisher(Clock, "/clock", 10)
            summary.published = dict.fromkeys(publishers, 0)
            _wait_for_subscribers(publishers, chosen, options.wait_for_subscribers, stop, log)
            started = time.monotonic()
            while not stop.is_set():
                origin = time.time_ns() if options.restamp else None
                summary.passes += 1
                _play_pass(reader, connections, begin, options.rate, origin, publishers, clock_pub, summary, stop)
                if not options.loop or (options.max_loops and summary.passes >= options.max_loops):
                    break
        except KeyboardInterrupt:
            stop.set()
        finally:
            summary.stopped = stop.is_set()
            summary.wall_s = time.monotonic() - started
            if node is not None:
                node.destroy_node()
            context.try_shutdown()
    return summary


def _wait_for_subscribers(
    publishers: dict[str, Any],
    chosen: dict[str, TopicStats],
    timeout: float,
    stop: threading.Event,
    log: Callable[[str], None],
) -> None:
    """Wait up to ``timeout`` s until every image publisher has a subscriber."""
    if timeout <= 0:
        return
    images = [e.topic for e in chosen.values() if e.msgtype == IMAGE_TYPE] or list(publishers)
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        waiting = [t for t in images if publishers[t].get_subscription_count() == 0]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            log(f"no subscriber on {', '.join(waiting)} after {timeout:g} s; playing anyway")
            return
        stop.wait(0.05)


def _play_pass(
    reader: Any,
    connections: list[Any],
    begin: int,
    rate: float,
    origin: int | None,
    publishers: dict[str, Any],
    clock_pub: Any,
    summary: PlaySummary,
    stop: threading.Event,
) -> None:
    """Publish one pass over the bag from ``begin`` (log time, ns), paced by the log times.

    With ``origin`` (wall-clock ns), header stamps and /clock map to ``origin + (t - begin) / rate``.
    """
    wall_start = time.monotonic()
    clock_msg = None
    if clock_pub is not None:
        from rosgraph_msgs.msg import Clock

        clock_msg = Clock()
    for connection, log_ns, raw in iter_messages(reader, connections, start=begin):
        delay = wall_start + (log_ns - begin) / _NS / rate - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        if stop.is_set():
            return
        if origin is not None:
            patched = bytearray(raw)
            set_header_stamp(patched, origin + round((header_stamp_ns(patched) - begin) / rate))
            data = bytes(patched)
        else:
            data = raw if isinstance(raw, bytes) else bytes(raw)
        if clock_msg is not None:
            now = log_ns if origin is None else origin + round((log_ns - begin) / rate)
            clock_msg.clock.sec, clock_msg.clock.nanosec = divmod(now, _NS)
            clock_pub.publish(clock_msg)
        publishers[connection.topic].publish(data)
        summary.published[connection.topic] += 1
