"""The node's parameters, derived from the settings schema: declaration, checks, ``config/fusion.yaml``.

Three settings dataclasses make up the parameters of ``fusion_node``: the detector choice
(``ivif_ros.backends.choice.DetectorChoice``), the node's own settings (:class:`NodeSettings`) and
the fusion core (``FusionConfig``). Each field's ``Setting`` gives the parameter's default, type,
description, range (``ros2 param describe``) and whether it is read-only; the node checks every
change with the same schema before anything changes.

``python -m ivif_ros.ros.parameters --write config/fusion.yaml`` regenerates the parameter file;
a test fails when the committed file and the schema disagree. This module imports ROS only to
build descriptors (``descriptor``), so the parameter file can be written without a ROS install.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivif_ros.backends.choice import DetectorChoice
from ivif_ros.core.config import FusionConfig
from ivif_ros.core.errors import FusionInputError
from ivif_ros.core.registration import parse_extrinsics, parse_homography
from ivif_ros.core.settings import Setting, coerce, describe_rule, setting, settings_of

__all__ = [
    "IDENTITY", "NodeSettings", "PARAMETER_GROUPS", "parameter_table", "parameter_value", "descriptor",
    "read_settings", "check_changes", "render_yaml", "main",
]

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _check_homography(values: tuple[float, ...]) -> None:
    parse_homography(list(values))


def _check_rotation(values: tuple[float, ...]) -> None:
    parse_extrinsics(list(values), [0.0, 0.0, 0.0])


def _check_warmup_size(values: tuple[float, ...]) -> None:
    width, height = values
    if (width, height) != (0.0, 0.0) and not (32 <= width <= 16384 and 32 <= height <= 16384
                                               and width == int(width) and height == int(height)):
        raise FusionInputError(f"warmup_size must be [0, 0] or whole [width, height] in 32..16384, got {list(values)}")


@dataclass(frozen=True)
class NodeSettings:
    """Settings of ``fusion_node`` itself (transport, pairing, registration, outputs)."""

    qos_reliability: str = setting("auto", "input reliability (auto = follow the publishers)",
                                   choices=("auto", "reliable", "best_effort"))
    qos_depth: int = setting(2, "input and output keep-last depth", low=1, high=100)
    queue_size: int = setting(10, "synchroniser queue length per stream", low=1, high=1000)
    max_backlog: int = setting(4, "ready pairs the node may fall behind and still fuse in order (no loss on a "
                               "hiccup); beyond that it skips to the newest pair (bounded latency); 0 = always newest",
                               low=0, high=100, runtime=True)
    thermal_transport: str = setting(
        "raw", "thermal input message (raw = Image; compressed = <base topic>/compressed; compressedDepth = "
        "<base topic>/compressedDepth, 16-bit PNG)", choices=("raw", "compressed", "compressedDepth"))
    rgb_transport: str = setting("raw", "RGB input message (raw = Image, compressed = <base topic>/compressed)",
                                 choices=("raw", "compressed"))
    slop: float = setting(0.02, "largest stamp difference of a thermal/RGB pair, s", low=0.0, high=10.0, runtime=True)
    homography: tuple[float, ...] = setting(IDENTITY, "row-major 3x3 homography, thermal pixel -> RGB pixel",
                                            length=9, check=_check_homography, runtime=True)
    registration: str = setting("homography", "thermal->RGB registration: homography (the parameter) or calibration "
                                "(intrinsics + extrinsics + scene_depth)", choices=("homography", "calibration"))
    calibration_file: str = setting("", "stereo calibration YAML, thermal camera first (OpenCV K1/D1/K2/D2/R/T or "
                                    "Kalibr camchain); empty = camera_info topics + extrinsic_* parameters")
    extrinsic_rotation: tuple[float, ...] = setting(IDENTITY, "row-major 3x3 rotation, thermal camera frame -> RGB "
                                                    "camera frame", length=9, check=_check_rotation)
    extrinsic_translation: tuple[float, ...] = setting((0.0, 0.0, 0.0), "thermal -> RGB translation, m "
                                                       "(X_rgb = R X_thermal + t)", length=3)
    scene_depth: float = setting(10.0, "assumed scene depth of calibration registration, m", low=0.05, high=100000.0,
                                 runtime=True)
    publish_compressed: bool = setting(False, "also publish fused/image/compressed (JPEG) for viewing over Wi-Fi",
                                       runtime=True)
    jpeg_quality: int = setting(80, "JPEG quality of fused/image/compressed", low=1, high=100, runtime=True)
    publish_debug: bool = setting(False, "publish debug/side_by_side (thermal | RGB | fused | weights)", runtime=True)
    diagnostics_period: float = setting(1.0, "period of /diagnostics, s", low=0.1, high=60.0)
    stall_timeout: float = setting(5.0, "/diagnostics ERROR when inputs arrive but nothing is published for this "
                                   "long, s", low=0.5, high=3600.0)
    warmup_size: tuple[float, ...] = setting((640.0, 512.0), "[width, height] the pipeline is warmed at before the "
                                             "inputs are subscribed; [0, 0] = none", length=2, check=_check_warmup_size)


#: (section title, settings dataclass) in declaration and parameter-file order.
PARAMETER_GROUPS: tuple[tuple[str, type], ...] = (
    ("detector", DetectorChoice),
    ("node", NodeSettings),
    ("fusion core (FusionConfig)", FusionConfig),
)


def parameter_table() -> dict[str, tuple[Any, Setting, type]]:
    """Parameter name → (default as declared, Setting, settings dataclass), in declaration order."""
    table: dict[str, tuple[Any, Setting, type]] = {}
    for _, cls in PARAMETER_GROUPS:
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        for name, meta in settings_of(cls).items():
            if name in table:
                raise RuntimeError(f"parameter {name} is declared by two settings classes")
            table[name] = (parameter_value(defaults[name]), meta, cls)
    return table


def parameter_value(value: Any) -> Any:
    """A settings value in a form rclpy declares (tuples become lists of floats)."""
    return [float(v) for v in value] if isinstance(value, tuple) else value


def descriptor(meta: Setting) -> Any:
    """The ``rcl_interfaces/ParameterDescriptor`` of a setting.

    Integer and float settings get their closed range (the hull of an open bound or a set of
    choices; the exact rule, e.g. ``(0, 1]``, is in ``additional_constraints`` and enforced by the
    node's check); read-only unless the setting may change at runtime.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    result = ParameterDescriptor(description=meta.help, read_only=not meta.runtime)
    result.additional_constraints = describe_rule(meta)
    bounds = meta.bounds()
    if bounds is not None and meta.kind == "int":
        result.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
    elif bounds is not None and meta.kind == "float":
        result.floating_point_range = [
            FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]), step=0.0)
        ]
    return result


def read_settings(values: Mapping[str, Any]) -> tuple[DetectorChoice, NodeSettings, FusionConfig]:
    """The three settings objects from parameter values (all of them, as the node holds them).

    Raises:
        FusionInputError: an invalid value (type, array length, NaN/inf, range), named.
    """
    table = parameter_table()
    built = []
    for _, cls in PARAMETER_GROUPS:
        fields = {name: coerce(name, meta, values[name]) for name, (_, meta, owner) in table.items() if owner is cls}
        built.append(cls(**fields))
    choice, node, config = built
    config.validate()
    return choice, node, config


def check_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check a batch of parameter changes against the schema; returns the values in their field types.

    Names the schema does not know (e.g. ``use_sim_time``) are left out of the result.

    Raises:
        FusionInputError: a read-only parameter or an invalid value (the first one, named).
    """
    table = parameter_table()
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in table:
            continue
        meta = table[name][1]
        if not meta.runtime:
            raise FusionInputError(f"{name} applies at start only")
        checked[name] = coerce(name, meta, value)
    return checked


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return (mantissa if "." in mantissa else mantissa + ".0") + (e + exponent if e else "")
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)


def render_yaml() -> str:
    """``config/fusion.yaml``: every parameter with its default, help, range and runtime flag."""
    lines = [
        "# Parameters of fusion_node (ivif_ros). Loaded by launch/fusion.launch.py, or:",
        "#   ros2 run ivif_ros fusion_node --ros-args --params-file config/fusion.yaml",
        "# [live] = may be changed at runtime (ros2 param set); others apply at start only.",
        "# Floats must keep their decimal point (rclpy refuses 1 for a double parameter).",
        "# Generated from the settings schema: python -m ivif_ros.ros.parameters --write config/fusion.yaml",
        "/**:",
        "  ros__parameters:",
    ]
    table = parameter_table()
    for title, cls in PARAMETER_GROUPS:
        lines.append(f"    # --- {title} ---")
        for name, (default, meta, owner) in table.items():
            if owner is not cls:
                continue
            rule = describe_rule(meta)
            comment = ("[live] " if meta.runtime else "") + meta.help + (f"; {rule}" if rule else "")
            lines.append(f"    {name}: {_yaml_value(default)}  # {comment}")
    return "\n".join(lines) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m ivif_ros.ros.parameters``: print, write (``--write``) or check (``--check``) the parameter file.

    Returns:
        0, or 1 when ``--check`` finds the file different from the schema.
    """
    parser = argparse.ArgumentParser(prog="python -m ivif_ros.ros.parameters", description=main.__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", help="write the parameter file")
    group.add_argument("--check", metavar="PATH", help="exit 1 when PATH differs from the schema")
    args = parser.parse_args(list(argv) if argv is not None else None)
    text = render_yaml()
    if args.write:
        Path(args.write).write_text(text)
    elif args.check:
        if Path(args.check).read_text() != text:
            print(f"{args.check} differs from the settings schema; regenerate it with --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
