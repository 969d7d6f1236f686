"""The one DDS test subscriber: records messages of some topics and /diagnostics in this process."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ivif_ros.topics import DIAGNOSTICS_TOPIC


class Collector:
    """A subscriber node in its own rclpy context, spun by a background thread.

    Args:
        domain_id: DDS domain.
        topics: Topic names (``sensor_msgs/Image``) or topic -> message class; /diagnostics is
            always recorded too.
    """

    def __init__(self, domain_id: int, topics: Iterable[str] | Mapping[str, type]) -> None:
        classes = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, Image)
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("test_collector", context=self.context)
        self.messages: dict[str, list[Any]] = {topic: [] for topic in classes}
        self.diagnostics: list[DiagnosticArray] = []
        self._lock = threading.Lock()
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        for topic, cls in classes.items():
            self.node.create_subscription(cls, topic, lambda msg, t=topic: self._record(t, msg), qos)
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._record_diagnostics, 10)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _record(self, topic: str, msg: Any) -> None:
        with self._lock:
            self.messages[topic].append(msg)

    def _record_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            self.diagnostics.append(msg)

    @property
    def stamps(self) -> dict[str, list[int]]:
        """Header stamps (ns) received per topic, in arrival order."""
        with self._lock:
            return {
                topic: [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in messages]
                for topic, messages in self.messages.items()
            }

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Poll ``condition`` until it holds or ``timeout`` seconds pass; returns its last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def publisher_count(self, topic: str) -> int:
        """Publishers of ``topic`` this node has discovered."""
        return self.node.count_publishers(topic)

    def latest_diagnostic_values(self) -> dict[str, str]:
        """Key/values of the newest fusion status received."""
        with self._lock:
            for array in reversed(self.diagnostics):
                for status in array.status:
                    if status.name.endswith(": fusion"):
                        return {kv.key: kv.value for kv in status.values}
        return {}

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)
