"""Route Python ``logging`` records of the core and backends to a node's rclpy logger (and /rosout).

The core and backends log through ``logging.getLogger("ivif_ros...")``; in a plain process those
records go to stderr, invisible to rqt_console and to bags of /rosout. :class:`RclpyLogHandler`,
installed by the node, forwards them, each distinct message template at most once per period, and
says how many repeats it held back.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["RclpyLogHandler", "install_log_bridge"]


class RclpyLogHandler(logging.Handler):
    """A logging handler that writes to an rclpy logger, rate-limited per message template.

    Args:
        ros_logger: ``node.get_logger()`` (any object with ``debug/info/warning/error``).
        period_s: the same template (logger name + unformatted message) is forwarded at most once
            per period; ERROR and above are never held back.
    """

    def __init__(self, ros_logger: Any, period_s: float = 5.0) -> None:
        super().__init__(logging.DEBUG)
        self._ros_logger = ros_logger
        self._period_s = period_s
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.saved_state: tuple[int, bool] = (logging.NOTSET, True)  # logger level/propagation to restore

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            if record.levelno < logging.ERROR and now - self._last.get(key, -float("inf")) < self._period_s:
                self._held[key] = self._held.get(key, 0) + 1
                return
            self._last[key] = now
            held = self._held.pop(key, 0)
        try:
            text = f"[{record.name}] {record.getMessage()}"
        except Exception:  # a bad format string must not break the caller
            text = f"[{record.name}] {record.msg!r} {record.args!r}"
        if held:
            text += f" (repeated {held}x in the last {self._period_s:g} s)"
        # One call site per severity: rclpy refuses a second severity from the same source line.
        if record.levelno >= logging.ERROR:
            self._ros_logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._ros_logger.warning(text)
        elif record.levelno >= logging.INFO:
            self._ros_logger.info(text)
        else:
            self._ros_logger.debug(text)


def install_log_bridge(ros_logger: Any, logger_name: str = "ivif_ros", period_s: float = 5.0,
                       level: int = logging.INFO) -> Callable[[], None]:
    """Send records of ``logger_name`` (and its children) to ``ros_logger`` instead of stderr.

    Returns:
        A function that removes the handler and restores the logger's level and propagation.
    """
    logger = logging.getLogger(logger_name)
    handler = RclpyLogHandler(ros_logger, period_s)
    previous_level, previous_propagate = logger.level, logger.propagate
    for stale in [h for h in logger.handlers if isinstance(h, RclpyLogHandler)]:  # a node that failed to start
        logger.removeHandler(stale)
        previous_level, previous_propagate = stale.saved_state
    handler.saved_state = (previous_level, previous_propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False

    def uninstall() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate

    return uninstall
