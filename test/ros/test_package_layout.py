"""colcon builds the package into a temporary install tree that `ros2 run`/`ros2 launch` can use."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_colcon_install_tree(tmp_path: Path) -> None:
    pytest.importorskip("colcon_core", reason="colcon not installed (pip install colcon-core colcon-ros "
                        "colcon-python-setup-py colcon-bash ros-jazzy-ament-package ros-jazzy-ament-index-python)")
    colcon = shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon_core importable but no colcon executable on PATH")
    install = tmp_path / "install"
    result = subprocess.run(
        [colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(REPO),
         "--build-base", str(tmp_path / "build"), "--install-base", str(install)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ, COLCON_HOME=str(tmp_path)),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    prefix = install / "ivif_ros"
    executable = prefix / "lib" / "ivif_ros" / "fusion_node"
    assert executable.is_file() and os.access(executable, os.X_OK)
    # The python3 on PATH runs the node, so a venv with torch over the system packages works.
    assert executable.read_text().startswith("#!/usr/bin/env python3\n")
    share = prefix / "share" / "ivif_ros"
    for relative in ("launch/fusion.launch.py", "config/fusion.yaml", "config/fusion.rviz",
                     "config/fastdds_large_images.xml", "config/stereo_calibration_example.yaml", "package.xml",
                     "LICENSE"):
        assert (share / relative).is_file(), relative
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "ivif_ros").is_file()
