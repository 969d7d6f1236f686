"""Helpers of the ROS tests (fixtures in conftest.py): an isolated DDS domain, node processes, a collecting subscriber.

Everything runs over real DDS (Fast DDS from the pip wheels) with processes confined to this host
and a random domain id, so concurrent test runs do not see each other.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

REPO = Path(__file__).resolve().parents[2]
PUBLISHER_SCRIPT = Path(__file__).with_name("pair_publisher.py")
LARGE_IMAGES_PROFILE = REPO / "config" / "fastdds_large_images.xml"


def large_images_env() -> dict[str, str]:
    """The Fast DDS large-image profile for a process (2.x and 3.x variables), as the launch file sets it."""
    return {
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(LARGE_IMAGES_PROFILE),
        "FASTDDS_DEFAULT_PROFILES_FILE": str(LARGE_IMAGES_PROFILE),
    }


def ros_env(domain_id: int, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a ROS process in the test's domain, confined to localhost (plus `extra_env`)."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    return env


def start_node(
    domain_id: int, log_path: Path, ros_args: list[str] = (), extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``fusion_node`` as its own process; output goes to `log_path`."""
    command = [sys.executable, "-m", "ivif_ros.ros.fusion_node", "--ros-args", *ros_args]
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process by stop_process
    return subprocess.Popen(
        command, cwd=REPO, env=ros_env(domain_id, extra_env), stdout=log, stderr=subprocess.STDOUT
    )


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT, like Ctrl-C; kill if it does not exit in time. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


def run_publisher(
    domain_id: int, *args: str, timeout: float = 60.0, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the pair publisher process to completion."""
    return subprocess.run(
        [sys.executable, str(PUBLISHER_SCRIPT), *args], cwd=REPO, env=ros_env(domain_id, extra_env),
        capture_output=True, text=True, timeout=timeout,
    )


class Collector:
    """A subscriber node (in this test process) recording the node's outputs.

    Args:
        domain_id: DDS domain.
        topics: output topics (Image) to record, besides /diagnostics.
    """

    def __init__(self, domain_id: int, topics: tuple[str, ...]) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("collector", context=self.context)
        self.messages: dict[str, list[Image]] = {topic: [] for topic in topics}
        self.diagnostics: list[DiagnosticArray] = []
        self._lock = threading.Lock()
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic in topics:
            self.node.create_subscription(Image, topic, lambda msg, t=topic: self._record(t, msg), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._record_diagnostics, 10)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _record(self, topic: str, msg: Image) -> None:
        with self._lock:
            self.messages[topic].append(msg)

    def _record_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            self.diagnostics.append(msg)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Poll `condition` until true or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def publisher_count(self, topic: str) -> int:
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
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def drop_count(values: dict[str, Any], reason: str) -> int:
    return int(values.get(f"drops_{reason}", 0))
