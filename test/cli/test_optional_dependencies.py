"""Console scripts without an optional library: one line naming what to install, or a note and the
optional output skipped; never a traceback.

Each command runs in a child process in which the library cannot be imported (its ``sys.modules``
entry is None, as for an install without it).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

from ivif_ros.core.synthetic import synthetic_pair

REPO = Path(__file__).resolve().parents[2]


def run_without(blocked: list[str], call: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``call`` (a Python expression returning an exit status) with ``blocked`` modules unimportable."""
    code = (f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
            f"{call.split(':')[0]}\nraise SystemExit({call.split(':', 1)[1]})\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)


def tiny_dataset(root: Path, pairs: int = 2) -> Path:
    for folder in ("ir", "vis"):
        (root / folder).mkdir(parents=True)
    for k in range(pairs):
        thermal, visible = synthetic_pair(48, 64, seed=k)
        cv2.imwrite(str(root / "ir" / f"{k:02d}.png"), thermal)
        cv2.imwrite(str(root / "vis" / f"{k:02d}.png"), visible)
    return root


def assert_one_line(result: subprocess.CompletedProcess, *words: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and all(word in lines[0] for word in words), result.stderr
    return lines[0]


def test_ivif_eval_without_matplotlib_scores_and_skips_the_plots(tmp_path: Path) -> None:
    data, out = tiny_dataset(tmp_path / "set"), tmp_path / "out"
    call = (f"from ivif_ros.cli.entry_points import ivif_eval:ivif_eval([{str(data)!r}, '--out', {str(out)!r}, "
            "'--methods', 'mean,max', '--grid-pairs', '0'])")
    result = run_without(["matplotlib"], call, tmp_path)
    assert result.returncode == 0, result.stderr
    note = [line for line in result.stderr.splitlines() if "note:" in line]
    assert len(note) == 1 and "bar charts" in note[0] and "'train' extra" in note[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(out.rglob("*.csv")) and not list(out.rglob("*.png"))
    with_plots = run_without([], call.replace(str(out), str(tmp_path / "out2")), tmp_path)
    assert with_plots.returncode == 0 and list((tmp_path / "out2").rglob("*_metrics.png")), with_plots.stderr


def test_ivif_eval_without_scipy_names_the_extra(tmp_path: Path) -> None:
    call = f"from ivif_ros.cli.entry_points import ivif_eval:ivif_eval(['x', '--out', {str(tmp_path / 'o')!r}])"
    result = run_without(["scipy"], call, tmp_path)
    assert result.returncode == 1
    assert_one_line(result, "ivif-eval", "scipy", "'train' extra")


def test_ros_tools_without_rclpy_say_what_to_source(tmp_path: Path) -> None:
    for call in ("from ivif_ros.cli.entry_points import fusion_node:fusion_node([])",
                 f"from ivif_ros.cli.demo import main:main(['--out', {str(tmp_path / 'demo')!r}])",
                 f"from ivif_ros.cli.bag import main:main(['play', {str(tmp_path / 'bag')!r}])"):
        result = run_without(["rclpy"], call, tmp_path)
        assert result.returncode == 1, (call, result.stderr)
        assert_one_line(result, "rclpy", "ROS 2 setup")
    assert not (tmp_path / "demo").exists()


def test_ivif_export_without_onnx_names_the_extra_and_no_onnx_still_works(tmp_path: Path) -> None:
    weights = REPO / "ivif_ros" / "models" / "weights" / "fast.safetensors"
    call = f"from ivif_ros.training.export import main:main([{str(weights)!r}, '--out', {str(tmp_path / 'x')!r}])"
    result = run_without(["onnx"], call, tmp_path)
    assert result.returncode == 1
    assert_one_line(result, "ivif-export", "onnx", "'train' extra")
    skipped = run_without(["onnx"], call.replace("])", ", '--no-onnx'])"), tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert (tmp_path / "x" / "fast.safetensors").is_file() and not list((tmp_path / "x").glob("*.onnx"))
