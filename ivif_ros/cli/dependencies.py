"""Optional libraries of the console scripts, checked when a command starts.

A missing library that the command needs ends it with one line on stderr that names the library
and what installs it (exit status 1, no traceback); a missing library that only serves an optional
output (plots) gives a one-line note and the output is skipped.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

__all__ = ["ROS_MODULES", "missing_modules", "require", "optional", "install_hint"]

# Python module -> setup.py extra that installs it.
EXTRA_OF = {"matplotlib": "train", "scipy": "train", "onnx": "train", "tensorboard": "train"}
# What the node and the DDS tools import from a ROS 2 installation (or the ros-jazzy-* wheels).
ROS_MODULES = ("rclpy", "sensor_msgs.msg", "std_msgs.msg", "diagnostic_msgs.msg", "rcl_interfaces.msg")


def missing_modules(modules: Iterable[str]) -> dict[str, str]:
    """Module -> first line of its import error, for each module that does not import."""
    missing = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # also a present package whose compiled part does not load
            missing[name] = (str(exc).splitlines() or [type(exc).__name__])[0]
    return missing


def install_hint(modules: Iterable[str]) -> str:
    """What installs ``modules``: a setup.py extra, or a ROS 2 environment."""
    tops = {name.split(".")[0] for name in modules}
    hints = []
    extras = sorted({EXTRA_OF[top] for top in tops if top in EXTRA_OF})
    if extras:
        hints.append(f"install the '{','.join(extras)}' extra: python3 -m pip install -e '.[{','.join(extras)}]' "
                     "in the clone")
    if tops - set(EXTRA_OF):
        hints.append("source a ROS 2 setup (source /opt/ros/$ROS_DISTRO/setup.bash) or "
                     "python3 -m pip install -r requirements.txt")
    return "; ".join(hints)


def _names(missing: dict[str, str]) -> str:
    return ", ".join(sorted({name.split(".")[0] for name in missing}))


def require(command: str, purpose: str, modules: Iterable[str]) -> None:
    """Exit with status 1 and one line when any of ``modules`` does not import."""
    missing = missing_modules(modules)
    if missing:
        detail = next(iter(missing.values()))
        print(f"{command}: {purpose} needs {_names(missing)} ({detail}); {install_hint(missing)}", file=sys.stderr)
        raise SystemExit(1)


def optional(command: str, purpose: str, modules: Iterable[str]) -> bool:
    """True when ``modules`` import; otherwise a one-line note that ``purpose`` is skipped."""
    missing = missing_modules(modules)
    if missing:
        print(f"{command}: note: {purpose} skipped, {_names(missing)} not installed; {install_hint(missing)}",
              file=sys.stderr)
    return not missing
