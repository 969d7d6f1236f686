"""Tests of the ``ivif-bag`` CLI: commands end to end, and errors as one line without a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ivif_ros.cli.bag import main

START = "1700000000.25"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VOT-RGBT-like sequence: ir/ + color/ with 00000001i.png / 00000001v.png, 4 pairs."""
    root = tmp_path_factory.mktemp("seq")
    rng = np.random.default_rng(0)
    for name in ("ir", "color"):
        (root / name).mkdir()
    for k in range(1, 5):
        cv2.imwrite(str(root / "ir" / f"{k:08d}i.png"), rng.integers(0, 255, (40, 48), dtype=np.uint8))
        cv2.imwrite(str(root / "color" / f"{k:08d}v.png"), rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    return root


@pytest.fixture(scope="module")
def bag(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bags") / "seq"
    assert main(["make", str(folder), "-o", str(path), "--start-time", START, "--offset-ms", "4", "--no-progress"]) == 0
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ivif-bag: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_make_info_fuse(bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["info", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "/thermal/image_raw  sensor_msgs/msg/Image  4" in out
    assert "0.304 s" in out  # 3 periods + the 4 ms thermal offset
    out_bag = tmp_path / "fused"
    argv = ["fuse", str(bag), "-o", str(out_bag), "--device", "cpu", "--colored", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 fused pairs" in out and "/weight_map/colored 4" in out
    assert (tmp_path / "fused.csv").is_file()
    assert main(argv) == 1  # outputs exist
    _one_error_line(capsys, "exists already", "--overwrite")


def test_make_sqlite3_explicit_folders(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["make", "--ir", str(folder / "ir"), "--vis", str(folder / "color"), "-o", str(tmp_path / "b"),
            "--storage", "sqlite3", "--limit", "2", "--camera-info", "--no-progress"]
    assert main(argv) == 0
    assert "2 pairs" in capsys.readouterr().out
    assert list((tmp_path / "b").glob("*.db3"))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_damaged_bag(bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bag, broken)
    data = next(broken.glob("*.mcap"))
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    elif damage == "garbage":
        data.write_bytes(b"\x89MCAP0\r\n" + bytes(range(256)) * 8)
    else:
        data.unlink()
    for command in (["info", str(broken)], ["fuse", str(broken), "-o", str(tmp_path / "o")], ["play", str(broken)]):
        assert main(command) == 1
        _one_error_line(capsys, "cannot open bag", str(broken))
    assert not (tmp_path / "o").exists()


def test_missing_bag_and_topics(bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "nothing")]) == 1
    _one_error_line(capsys, "bag not found")
    assert main(["fuse", str(bag), "-o", str(tmp_path / "o"), "--rgb-topic", "/camera/color"]) == 1
    _one_error_line(capsys, "/camera/color not in", "/rgb/image_raw (Image, 4)", "/thermal/image_raw (Image, 4)")
    assert main(["play", str(bag), "--topics", "/camera/color"]) == 1
    _one_error_line(capsys, "/camera/color not in")


def test_make_errors(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make", str(tmp_path), "-o", str(tmp_path / "b")]) == 1
    _one_error_line(capsys, "no paired image folders")
    assert main(["make", str(folder), "-o", str(tmp_path / "b"), "--jitter-ms", "80"]) == 2  # usage
    _one_error_line(capsys, "--jitter-ms")
    assert main(["make", str(folder), "-o", str(tmp_path / "b"), "--start-time", "noon"]) == 2
    _one_error_line(capsys, "--start-time")
    assert main(["play", str(folder), "--rate", "0"]) == 2
    _one_error_line(capsys, "--rate")
    assert main(["fuse", str(folder), "--slop-ms", "-1"]) == 2
    _one_error_line(capsys, "--slop-ms")


def test_console_script_exit_status(tmp_path: Path) -> None:
    """The installed entry point (or the module) prints one line and exits 1."""
    script = shutil.which("ivif-bag")
    command = [script] if script else [sys.executable, "-m", "ivif_ros.cli.bag"]
    result = subprocess.run([*command, "info", str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"ivif-bag: error: bag not found: {tmp_path / 'none'}"


def test_play_loop_clock_stops_on_sigterm(bag: Path, domain_id: int) -> None:
    """``play --loop --clock`` runs until SIGTERM, then exits 130 with a summary line."""
    import os
    import signal
    import time

    script = shutil.which("ivif-bag")
    command = [script] if script else [sys.executable, "-m", "ivif_ros.cli.bag"]
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    process = subprocess.Popen(
        [*command, "play", str(bag), "--loop", "--clock", "--restamp", "--rate", "4", "--wait-for-subscribers", "0",
         "--domain-id", str(domain_id)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        time.sleep(3.0)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert out.startswith("stopped: ") and "/rgb/image_raw" in out
    assert "Traceback" not in err
