"""One exit-status convention for every console script: 0 ok, 1 failure, 2 usage (bad command line).

The scripts are called in this process through their installed entry points (the names setup.py
declares), so a wrong entry point fails here too. ``fusion_node`` takes ROS arguments; its start
failure (status 1) is tested in test/ros/test_fusion_node.py.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

SCRIPTS = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.value.startswith("ivif_ros.")}
CLIS = sorted(name for name in SCRIPTS if name != "fusion_node")


def _status(name: str, argv: list[str]) -> int:
    try:
        return SCRIPTS[name].load()(argv)
    except SystemExit as exit_:  # argparse: --help and usage errors
        return exit_.code if isinstance(exit_.code, int) else 1


def test_every_script_is_covered() -> None:
    assert set(CLIS) == {"ivif-demo", "ivif-fuse", "ivif-bag", "ivif-bench", "ivif-make-dataset", "ivif-train",
                         "ivif-export", "ivif-eval"}
    assert "fusion_node" in SCRIPTS


@pytest.mark.parametrize("name", CLIS)
def test_help_is_0_and_a_bad_option_is_2(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _status(name, ["--help"]) == 0
    assert "usage:" in capsys.readouterr().out
    assert _status(name, ["--no-such-option"]) == 2
    assert "usage:" in capsys.readouterr().err


def _failures(missing: Path, out: Path) -> dict[str, list[str]]:
    """A command line per script that is well formed but cannot succeed (a missing input)."""
    return {
        "ivif-demo": ["--data", str(missing), "--out", str(out)],
        "ivif-fuse": ["--ir", str(missing), "--vis", str(missing), "--out", str(out)],
        "ivif-bag": ["info", str(missing)],
        "ivif-bench": ["--data", str(missing), str(missing), "--sizes", "64x48", "--runs", "1", "--quiet",
                       "--out", str(out)],
        "ivif-make-dataset": ["--src", str(missing), "--out", str(out), "--quiet"],
        "ivif-train": ["--data", str(missing), "--out", str(out)],
        "ivif-export": [str(missing / "weights.safetensors"), "--out", str(out), "--no-onnx"],
        "ivif-eval": [str(missing), "--out", str(out)],
    }


@pytest.mark.parametrize("name", CLIS)
def test_a_runtime_failure_is_1(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _failures(tmp_path / "missing", tmp_path / "out")[name]
    assert _status(name, argv) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err
