"""The logging -> rclpy bridge with a real rclpy logger (its console output, in a child process)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import rclpy.logging

from ivif_ros.ros.log_bridge import RclpyLogHandler, install_log_bridge

CHILD = textwrap.dedent("""
    import logging, time
    import rclpy.logging
    from ivif_ros.ros.log_bridge import install_log_bridge

    install_log_bridge(rclpy.logging.get_logger("bridge_test"), period_s=0.5)
    core = logging.getLogger("ivif_ros.core")
    for k in range(5):
        core.warning("infrared %dx%d resized", 80 + k, 64)
    core.error("detector failed")
    core.error("detector failed")
    logging.getLogger("ivif_ros.backends").info("backend auto -> torch")
    logging.getLogger("ivif_ros.backends").debug("not shown at the default level")
    time.sleep(0.6)
    core.warning("infrared %dx%d resized", 99, 64)
""")


def test_records_reach_the_rclpy_logger_rate_limited_per_template() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "RCUTILS_CONSOLE_OUTPUT_FORMAT": "[{severity}] {message}"})
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("[")]
    assert result.returncode == 0, result.stderr
    assert lines == [
        "[WARN] [ivif_ros.core] infrared 80x64 resized",
        "[ERROR] [ivif_ros.core] detector failed",
        "[ERROR] [ivif_ros.core] detector failed",
        "[INFO] [ivif_ros.backends] backend auto -> torch",
        "[WARN] [ivif_ros.core] infrared 99x64 resized (repeated 4x in the last 0.5 s)",
    ], lines


def test_reinstalling_replaces_a_stale_bridge_and_uninstall_restores_the_logger() -> None:
    logger = logging.getLogger("ivif_ros")
    before = (logger.level, logger.propagate, list(logger.handlers))
    ros_logger = rclpy.logging.get_logger("bridge_test_in_process")
    install_log_bridge(ros_logger)  # e.g. a node whose start failed never uninstalled it
    uninstall = install_log_bridge(ros_logger)
    bridges = [h for h in logger.handlers if isinstance(h, RclpyLogHandler)]
    assert len(bridges) == 1 and logger.propagate is False and logger.level == logging.INFO
    uninstall()
    assert (logger.level, logger.propagate, list(logger.handlers)) == before
