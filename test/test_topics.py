"""The default topic names are written once, in ivif_ros/topics.py; everything else imports them."""
from __future__ import annotations

import ast
from pathlib import Path

from ivif_ros import topics

REPO = Path(__file__).resolve().parents[1]
SOURCES = [*(REPO / "ivif_ros").rglob("*.py"), *(REPO / "training").rglob("*.py"), *(REPO / "launch").glob("*.py")]
NAMES = [topics.THERMAL_TOPIC, topics.RGB_TOPIC, topics.FUSED_TOPIC, topics.WEIGHTS_TOPIC, topics.COLORED_TOPIC,
         topics.DEBUG_TOPIC, topics.DIAGNOSTICS_TOPIC]


def _string_literals(path: Path) -> list[str]:
    nodes = ast.walk(ast.parse(path.read_text()))
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_each_default_topic_name_is_written_once() -> None:
    assert len(SOURCES) > 20
    found: dict[str, list[str]] = {name.strip("/"): [] for name in NAMES}
    for path in SOURCES:
        for value in _string_literals(path):
            if value.strip("/") in found:
                found[value.strip("/")].append(str(path.relative_to(REPO)))
    assert found == {name: ["ivif_ros/topics.py"] for name in found}


def test_names_are_relative_except_diagnostics() -> None:
    assert all(not name.startswith("/") for name in NAMES if name != topics.DIAGNOSTICS_TOPIC)
    assert topics.DIAGNOSTICS_TOPIC == "/diagnostics"
    assert set(topics.INPUT_TOPICS.values()) == {topics.THERMAL_TOPIC, topics.RGB_TOPIC}
