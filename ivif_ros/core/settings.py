"""Settings schema: each setting's type, range, help text and runtime flag, declared once.

A settings dataclass declares every field with ``setting(default, help, ...)``; the metadata
(:class:`Setting`) is the single description from which everything else is derived:

* ``check_fields(obj)`` — type, array length, NaN/inf and range of every field
  (``FusionConfig.validate``), raising ``FusionInputError`` naming the field and value;
* ``runtime_fields(cls)`` — the fields that may change while a pipeline or node runs;
* ``coerce(name, setting, value)`` — a value from outside (ROS parameter, YAML, JSON) in the
  field's type, checked;
* ``parse_assignments(cls, ["key=value", ...])`` — the ``--set`` option of the command lines;
* ``describe_rule(setting)`` — the rule as text for help, the parameter file and
  ``ros2 param describe``.

The ROS node turns the same metadata into parameter descriptors (``ivif_ros.ros.parameters``).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import FusionInputError

__all__ = [
    "Setting", "setting", "settings_of", "check_fields", "coerce", "runtime_fields", "parse_value",
    "parse_assignments", "describe_range", "describe_rule",
]

KINDS = ("bool", "int", "float", "str", "float_array")


@dataclass(frozen=True)
class Setting:
    """What a settings field accepts.

    Attributes:
        help: one-line description (help text, parameter description, YAML comment).
        kind: ``bool``, ``int``, ``float``, ``str`` or ``float_array``.
        runtime: may change while the pipeline/node runs.
        low, high: inclusive bounds (numbers; every element of an array), None = unbounded.
        low_open, high_open: the bound itself is excluded.
        choices: the allowed values (strings, or integers such as the divisors of 32).
        length: exact element count of an array.
        increasing: array elements must be strictly increasing.
        check: extra check of a coerced value (raises ``FusionInputError``), e.g. a singular homography.
    """

    help: str
    kind: str
    runtime: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    length: int | None = None
    increasing: bool = False
    check: Callable[[Any], None] | None = None

    def bounds(self) -> tuple[float, float] | None:
        """Closed hull of the allowed numbers (from ``choices`` when given), or None."""
        if self.kind not in ("int", "float", "float_array"):
            return None
        if self.choices is not None:
            return min(self.choices), max(self.choices)
        if self.low is None or self.high is None:
            return None
        return self.low, self.high


def _kind_of(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, tuple) and all(isinstance(v, float) for v in default):
        return "float_array"
    raise TypeError(f"unsupported setting default {default!r}")


def setting(default: Any, help: str, **options: Any) -> Any:
    """A dataclass field carrying a :class:`Setting` (``options``: its attributes but ``kind``).

    Array defaults are tuples of floats (immutable, so they can be dataclass defaults).
    """
    meta = Setting(help=help, kind=_kind_of(default), **options)
    return dataclasses.field(default=default, metadata={"setting": meta})


def settings_of(cls_or_obj: Any) -> dict[str, Setting]:
    """Field name → Setting of a settings dataclass (fields without metadata are left out)."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls_or_obj) if "setting" in f.metadata}


def runtime_fields(cls_or_obj: Any) -> frozenset[str]:
    """Names of the fields that may change at runtime."""
    return frozenset(name for name, meta in settings_of(cls_or_obj).items() if meta.runtime)


def _fmt(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def describe_range(meta: Setting) -> str:
    """``"[0, 1]"``, ``"(0, 1]"``, ``">= 1"``, ``"one of auto, cpu"`` or ``""``."""
    if meta.choices is not None:
        return "one of " + ", ".join(str(c) for c in meta.choices)
    if meta.low is None and meta.high is None:
        return ""
    if meta.high is None:
        return f"{'>' if meta.low_open else '>='} {_fmt(meta.low)}"
    if meta.low is None:
        return f"{'<' if meta.high_open else '<='} {_fmt(meta.high)}"
    left, right = "(" if meta.low_open else "[", ")" if meta.high_open else "]"
    return f"{left}{_fmt(meta.low)}, {_fmt(meta.high)}{right}"


def describe_rule(meta: Setting) -> str:
    """Everything a value must satisfy, e.g. ``"2 numbers, increasing, each in [0, 100]"`` or ``"(0, 1]"``."""
    rule = describe_range(meta)
    if meta.kind != "float_array":
        return rule
    parts = [f"{meta.length} numbers" if meta.length is not None else "numbers"]
    if meta.increasing:
        parts.append("increasing")
    if rule:
        parts.append(f"each in {rule}")
    return ", ".join(parts)


def _in_range(meta: Setting, number: float) -> bool:
    below = meta.low is not None and (number < meta.low or (meta.low_open and number == meta.low))
    above = meta.high is not None and (number > meta.high or (meta.high_open and number == meta.high))
    return not (below or above)


def _number(name: str, meta: Setting, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FusionInputError(f"{name} must be a number, got {what} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise FusionInputError(f"{name} must be finite, got {value!r}")
    if not _in_range(meta, number):
        raise FusionInputError(f"{name} must be in {describe_range(meta)}, got {value!r}")
    return number


def coerce(name: str, meta: Setting, value: Any) -> Any:
    """``value`` checked and converted to the field's type (arrays become tuples of floats).

    Integers are accepted for floats, and integral floats for integers; booleans only for booleans.

    Raises:
        FusionInputError: wrong type, wrong array length, NaN/inf, out of range or not a choice;
            the message names the field and the value.
    """
    kind = meta.kind
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise FusionInputError(f"{name} must be true or false, got {value!r}")
        result: Any = bool(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise FusionInputError(f"{name} must be a string, got {value!r}")
        result = value
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise FusionInputError(f"{name} must be an integer, got {value!r}")
        if isinstance(value, numbers.Integral) or (math.isfinite(float(value)) and float(value).is_integer()):
            result = int(value)
        else:
            raise FusionInputError(f"{name} must be an integer, got {value!r}")
        if meta.choices is None and not _in_range(meta, result):
            raise FusionInputError(f"{name} must be in {describe_range(meta)}, got {value!r}")
    elif kind == "float":
        result = _number(name, meta, value, "")
    else:  # float_array
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise FusionInputError(f"{name} must be a list of {meta.length or ''} numbers, got {value!r}")
        items = list(value)
        if meta.length is not None and len(items) != meta.length:
            raise FusionInputError(f"{name} must have {meta.length} elements, got {len(items)}: {items!r}")
        result = tuple(_number(name, meta, item, "element") for item in items)
        if meta.increasing and any(b <= a for a, b in zip(result, result[1:], strict=False)):
            raise FusionInputError(f"{name} must be strictly increasing, got {list(result)}")
    if meta.choices is not None and result not in meta.choices:
        raise FusionInputError(f"{name} must be {describe_range(meta)}, got {value!r}")
    if meta.check is not None:
        meta.check(result)
    return result


def check_fields(obj: Any) -> None:
    """Check every setting field of a dataclass instance (see :func:`coerce`).

    Raises:
        FusionInputError: the first invalid field, named with its value.
    """
    for name, meta in settings_of(obj).items():
        coerce(name, meta, getattr(obj, name))


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def parse_value(name: str, meta: Setting, text: str) -> Any:
    """A command-line text in the field's type: ``true``/``false``, numbers, ``0.5,99.5`` or ``[0.5, 99.5]``.

    Raises:
        FusionInputError: the text does not parse or the value is invalid.
    """
    stripped = text.strip()
    value: Any = stripped
    try:
        if meta.kind == "bool":
            lowered = stripped.lower()
            if lowered not in _TRUE + _FALSE:
                raise ValueError
            value = lowered in _TRUE
        elif meta.kind == "int":
            value = int(stripped)
        elif meta.kind == "float":
            value = float(stripped)
        elif meta.kind == "float_array":
            inner = stripped[1:-1] if stripped.startswith("[") and stripped.endswith("]") else stripped
            value = [float(part) for part in inner.split(",") if part.strip()]
    except ValueError:
        raise FusionInputError(f"{name}: cannot read {text!r} as {meta.kind.replace('_', ' ')}") from None
    return coerce(name, meta, value)


def parse_assignments(cls: Any, items: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` → typed, checked values of fields of the settings dataclass ``cls``.

    Raises:
        FusionInputError: not ``key=value``, an unknown key (the message lists the known ones) or a
            bad value.
    """
    known = settings_of(cls)
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise FusionInputError(f"--set needs KEY=VALUE, got {item!r}")
        if key not in known:
            raise FusionInputError(f"--set: unknown setting {key!r}; known: {', '.join(known)}")
        values[key] = parse_value(key, known[key], text)
    return values
