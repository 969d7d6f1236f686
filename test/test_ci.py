"""CI runs exactly the README's test command, which lints with ruff before pytest."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"^python3 -m pip install .*pytest.*$", (REPO / "README.md").read_text(), re.MULTILINE)
    assert len(commands) == 1  # the README's one test command
    test_command = commands[0]
    assert test_command in (REPO / ".ci" / "run").read_text()
    assert test_command.index("ruff check .") < test_command.index("pytest test")


def test_ruff_is_configured_and_installed_by_the_test_extras() -> None:
    config = (REPO / "pyproject.toml").read_text()
    for rule in ("E", "F", "W", "I", "B", "UP", "SIM"):
        assert f'"{rule}",' in config, rule
    assert '"ruff' in (REPO / "setup.py").read_text()
