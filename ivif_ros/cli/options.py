"""Command-line options shared by the front ends: ``--set KEY=VALUE`` for ``FusionConfig`` fields."""
from __future__ import annotations

import argparse
from typing import Any

from ivif_ros.core.config import FusionConfig
from ivif_ros.core.settings import parse_assignments

__all__ = ["add_set_argument", "config_from_arguments"]


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="FusionConfig setting, repeatable (e.g. detector_scale=0.25, thermal_percentiles=1,99); "
        "the names, ranges and help are in config/fusion.yaml",
    )


def config_from_arguments(args: argparse.Namespace, **fields: Any) -> FusionConfig:
    """``FusionConfig`` from ``--set`` values, ``--mode`` when the parser has it, and ``fields``.

    Raises:
        FusionInputError: an unknown key or an invalid value (named).
    """
    values = parse_assignments(FusionConfig, args.overrides)
    if getattr(args, "mode", None):
        values["mode"] = args.mode
    config = FusionConfig(**{**values, **fields})
    config.validate()
    return config
