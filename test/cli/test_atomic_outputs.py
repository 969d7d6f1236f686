"""Outputs of ivif-bag make|fuse and ivif-fuse: atomic, never over an input, never silently replaced."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ivif_ros.cli.bag import main as bag_main
from ivif_ros.cli.fuse import main as fuse_main
from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.ros.faults import png_header_bomb

START = "1700000000"


def _folder(root: Path, count: int, height: int = 40, width: int = 48) -> Path:
    for name in ("ir", "vis"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for k in range(count):
        ir, vis = synthetic_pair(height, width, seed=k)
        cv2.imwrite(str(root / "ir" / f"{k:04d}.png"), ir)
        cv2.imwrite(str(root / "vis" / f"{k:04d}.png"), vis)
    return root


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("atomic")
    data = _folder(root / "data", 3)
    path = root / "run1"
    assert bag_main(["make", str(data), "-o", str(path), "--start-time", START, "--no-progress"]) == 0
    return path


def test_fuse_refuses_an_output_holding_the_input(bag: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mcap = next(bag.glob("*.mcap"))
    before = {p.name: p.stat().st_size for p in bag.iterdir()}
    assert bag_main(["fuse", str(mcap), "-o", str(bag), "--overwrite", "--no-progress"]) == 1
    assert "overlaps the input" in capsys.readouterr().err
    assert {p.name: p.stat().st_size for p in bag.iterdir()} == before


def test_make_refuses_an_output_over_its_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folder(tmp_path / "data", 2)
    for output in (data, data / "ir", data / "vis" / "bag"):
        assert bag_main(["make", str(data), "-o", str(output), "--overwrite", "--no-progress"]) == 1
        assert "overlaps the input" in capsys.readouterr().err
    assert len(list((data / "ir").iterdir())) == 2 and len(list((data / "vis").iterdir())) == 2


def test_failed_overwrite_keeps_the_old_bag_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "data", 3)
    out = tmp_path / "bag"
    assert bag_main(["make", str(data), "-o", str(out), "--start-time", START, "--no-progress"]) == 0
    before = sorted((p.name, p.stat().st_size) for p in out.iterdir())
    (data / "vis" / "0002.png").write_bytes(b"not a png")
    assert bag_main(["make", str(data), "-o", str(out), "--overwrite", "--no-progress"]) == 1
    assert "cannot read image" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_size) for p in out.iterdir()) == before
    assert _leftovers(tmp_path) == []


def test_fuse_failure_after_writing_started_leaves_no_bag_and_no_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "data", 3)
    for path in sorted((data / "vis").iterdir()):  # aspect ratio 1:4 against 5:6: every pair is refused
        cv2.imwrite(str(path), np.zeros((40, 160, 3), np.uint8))
    bag = tmp_path / "bag"
    assert bag_main(["make", str(data), "-o", str(bag), "--start-time", START, "--no-progress"]) == 0
    out = tmp_path / "fused"
    assert bag_main(["fuse", str(bag), "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no pair could be fused" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "fused.csv").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_leaves_no_partial_bag(tmp_path: Path, signum: int, status: int) -> None:
    data = _folder(tmp_path / "data", 60, 256, 320)
    out = tmp_path / "bag"
    process = subprocess.Popen(
        [sys.executable, "-m", "ivif_ros.cli.bag", "make", str(data), "-o", str(out), "--no-progress"],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (_leftovers(tmp_path) or out.exists()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "make finished before the signal; give it more work"
    time.sleep(0.2)
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "no partial output" in err and "Traceback" not in err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_ivif_fuse_reports_a_header_bomb_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folder(tmp_path / "data", 3, 64, 80)
    (data / "ir" / "0001.png").write_bytes(png_header_bomb(40_000, 40_000))
    out = tmp_path / "out"
    assert fuse_main(["--ir", str(data / "ir"), "--vis", str(data / "vis"), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "max_pixels" in err
    assert sorted(p.name for p in (out / "fused").iterdir()) == ["0000.png", "0002.png"]


def test_ivif_fuse_refuses_out_inside_an_input_and_existing_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "data", 2, 64, 80)
    argv = ["--ir", str(data / "ir"), "--vis", str(data / "vis"), "--quiet"]
    assert fuse_main([*argv, "--out", str(data / "ir" / "fused")]) == 2
    assert "overlaps the input" in capsys.readouterr().err
    assert sorted(p.name for p in (data / "ir").iterdir()) == ["0000.png", "0001.png"]
    out = tmp_path / "out"
    assert fuse_main([*argv, "--out", str(out)]) == 0
    stamp = (out / "fused" / "0000.png").stat().st_mtime_ns
    assert fuse_main([*argv, "--out", str(out)]) == 2
    assert "exist already" in capsys.readouterr().err
    assert (out / "fused" / "0000.png").stat().st_mtime_ns == stamp
    assert fuse_main([*argv, "--out", str(out), "--overwrite"]) == 0
