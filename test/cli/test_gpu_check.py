"""scripts/gpu_check.sh runs end to end with --device cpu (small sizes and runs): its plumbing works."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"


@pytest.fixture(scope="module")
def cpu_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_out")
    env = dict(os.environ, IVIF_CACHE_DIR=str(out.parent / "cache"))
    result = subprocess.run(
        ["bash", str(SCRIPT), "--device", "cpu", "--out", str(out), "--sizes", "96x64", "--batch", "2",
         "--runs", "1", "--warmup", "0", "--backends", "torch", "--python", sys.executable,
         "--tests", "test/backends/test_base.py"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    return out, result


def test_runs_and_writes_every_file(cpu_check):
    out, result = cpu_check
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("env.txt", "pytest.log", "pytest.xml", "bench.json", "bench.md", "summary.md"):
        assert (out / name).is_file(), name
    assert "device: cpu" in (out / "env.txt").read_text()
    assert "passed" in (out / "pytest.log").read_text()


def test_bench_has_single_and_batched_rows(cpu_check):
    out, _ = cpu_check
    report = json.loads((out / "bench.json").read_text())
    for table in ("pipeline", "detector"):
        assert sorted(row["batch"] for row in report[table]) == [1, 2]
        assert all("error" not in row for row in report[table])
    summary = (out / "summary.md").read_text()
    assert "| detector | 96x64 | torch | 2 |" in summary and "| pipeline | 96x64 | torch | 2 |" in summary


def test_a_failing_test_fails_the_check(tmp_path):
    failing = tmp_path / "test_fails.py"
    failing.write_text("def test_fails():\n    assert False\n")
    result = subprocess.run(
        ["bash", str(SCRIPT), "--device", "cpu", "--out", str(tmp_path / "out"), "--sizes", "64x64", "--runs", "1",
         "--batch", "2", "--warmup", "0", "--backends", "torch", "--python", sys.executable, "--tests", str(failing)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, IVIF_CACHE_DIR=str(tmp_path / "cache")),
    )
    assert result.returncode == 1 and "tests failed" in result.stdout
