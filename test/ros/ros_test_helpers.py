"""Helpers of the ROS tests: node and publisher processes in the test's DDS domain.

Everything runs over real DDS (Fast DDS from the pip wheels) with processes confined to this host
and the domain of test/conftest.py, so concurrent test runs do not see each other. The collecting
subscriber is ``dds_helpers.Collector``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def drop_count(values: dict[str, Any], reason: str) -> int:
    return int(values.get(f"drops_{reason}", 0))
