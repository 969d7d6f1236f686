"""ivif-soak, short runs in their own processes (the DDS profile is per process): node + fault injection."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _soak(out: Path, offset: int, *args: str) -> dict:
    base = os.environ.get("IVIF_TEST_DOMAIN_BASE")
    domain = int(base) + offset if base else random.randint(1, 101)
    result = subprocess.run(
        [sys.executable, "-m", "ivif_ros.cli.soak", "--out", str(out), "--domain-id", str(domain), *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr + (out / "fusion_node.log").read_text()[-3000:]
    return json.loads((out / "soak.json").read_text())


def test_short_soak_survives_faults_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    report = _soak(out, 5, "--pairs", "200", "--fault-every", "50", "--width", "160", "--height", "128")
    assert report["faults_injected"] == 3 and report["good_sent"] == 197
    assert 0 < report["good_fused"] <= report["good_sent"]
    assert report["good_fused"] + report["good_not_fused"] == report["good_sent"]
    assert report["node_alive"] and report["worker_restarts"] == 0
    assert report["drops"]["bad_encoding"] >= 1 and report["drops"]["bad_data"] >= 5  # the first three faults
    assert report["rss_end_mb"] > 50 and report["latency_ms_p99"] >= report["latency_ms_p50"] > 0
    assert "fastdds_large_images.xml" in report["dds_profile"]
    assert "| good pairs sent / fused | 197 /" in (out / "soak.md").read_text()


def test_transport_losses_without_the_profile_are_counted_with_a_hint(tmp_path: Path) -> None:
    """640x512 best effort with Fast DDS defaults: fragmented frames are lost and counted."""
    out = tmp_path / "soak"
    report = _soak(out, 6, "--pairs", "90", "--fault-every", "0", "--no-profile", "--best-effort")
    assert report["dds_profile"].startswith("none")
    assert report["drops"].get("transport_lost", 0) > 0, report
    log = (out / "fusion_node.log").read_text()
    assert "lost in DDS transport" in log and "fastdds_large_images.xml" in log
