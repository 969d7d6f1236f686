"""ivif-demo end to end: node process + replay + written frames (synthetic, small, over real DDS)."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from ivif_ros.cli.demo import main


def test_demo_writes_fused_frames_and_prints_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], domain_id: int
) -> None:
    out = tmp_path / "demo_out"
    status = main(["--synthetic", "--count", "6", "--height", "128", "--width", "160", "--rate", "5",
                   "--out", str(out), "--domain-id", str(domain_id)])
    printed = capsys.readouterr().out
    assert status == 0, printed + (out / "fusion_node.log").read_text()
    assert "SYNTHETIC" in printed and "output rate" in printed and "p99" in printed
    fused = sorted(out.glob("fused_*.png"))
    assert fused and sorted(out.glob("weights_*.png"))
    assert cv2.imread(str(fused[-1])).shape == (128, 160, 3)


def test_demo_refuses_a_missing_data_folder(tmp_path: Path) -> None:
    assert main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 1
