"""package.xml, requirements-robot.txt and setup.py declare every library the installed code imports.

On a robot, `rosdep install` reads package.xml: a ROS package imported but not declared is missing
at run time, and a pip-only rosdep key breaks the install on PEP 668 systems. Every import in
ivif_ros/, training/ (installed as ivif_ros.training) and launch/ is classified here: the standard
library, a ROS package (needs an <exec_depend> of the same name), a library with a rosdep key, a
library installed from requirements-robot.txt, or an optional extra of setup.py.
"""
from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("ivif_ros", "training", "launch")

# Python module -> rosdep key (rosdistro rosdep/python.yaml), for libraries Ubuntu ships.
ROSDEP_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "tqdm": "python3-tqdm"}
# Python module -> PyPI distribution of requirements-robot.txt (no apt package with a rosdep key).
ROBOT_PIP = {"torch": "torch", "safetensors": "safetensors", "onnxruntime": "onnxruntime", "rosbags": "rosbags"}
# Python module -> setup.py extra (imported only by optional features, checked at use).
OPTIONAL = {"onnx": "train", "scipy": "train", "matplotlib": "train", "tensorboard": "train", "kornia": "gpu"}
# Installed with the NVIDIA TensorRT / JetPack packages, never by pip extras (gpu_check.sh, README).
VENDOR = {"tensorrt"}


def _imported_modules() -> dict[str, set[str]]:
    """Top-level module -> files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def _exec_depends() -> set[str]:
    root = ElementTree.parse(REPO / "package.xml").getroot()
    return {element.text.strip() for tag in ("exec_depend", "depend") for element in root.iter(tag)}


def _robot_requirements() -> set[str]:
    lines = (REPO / "requirements-robot.txt").read_text().splitlines()
    specs = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return {re.split(r"[<>=!~;\[ ]", spec)[0].lower() for spec in specs}


def _setup_extras() -> dict[str, str]:
    """Distribution (lower case, no version) -> extra name, from setup.py's extras_require."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            extras = ast.literal_eval(node.value)
            return {re.split(r"[<>=!~; ]", spec)[0].lower(): extra for extra, specs in extras.items()
                    for spec in specs if extra != "test"}
    raise AssertionError("setup.py has no extras_require")


def test_every_import_is_declared_where_a_robot_install_finds_it() -> None:
    depends, robot, extras = _exec_depends(), _robot_requirements(), _setup_extras()
    problems = []
    for module, files in sorted(_imported_modules().items()):
        where = ", ".join(sorted(files)[:3])
        if module in sys.stdlib_module_names or module in ("ivif_ros", "__future__"):
            continue
        if module in ROSDEP_KEYS:
            if ROSDEP_KEYS[module] not in depends:
                problems.append(f"{module} ({where}): <exec_depend>{ROSDEP_KEYS[module]}</exec_depend> missing")
        elif module in ROBOT_PIP:
            if ROBOT_PIP[module] not in robot:
                problems.append(f"{module} ({where}): {ROBOT_PIP[module]} missing from requirements-robot.txt")
        elif module in OPTIONAL:
            if extras.get(module) != OPTIONAL[module]:
                problems.append(f"{module} ({where}): not in setup.py extra '{OPTIONAL[module]}'")
        elif module in VENDOR:
            continue
        elif module not in depends:  # anything else is a ROS package
            problems.append(f"{module} ({where}): ROS package without <exec_depend>{module}</exec_depend>")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_the_ros_imports_of_node_launch_and_player() -> None:
    modules = _imported_modules()
    for module, file in [("rclpy", "ivif_ros/ros/fusion_node.py"), ("rcl_interfaces", "ivif_ros/ros/fusion_node.py"),
                         ("launch_ros", "launch/fusion.launch.py"), ("ament_index_python", "launch/fusion.launch.py"),
                         ("rosgraph_msgs", "ivif_ros/bag/player.py")]:
        assert file in modules.get(module, set()), (module, file)


def test_no_pip_only_rosdep_keys_and_a_real_maintainer() -> None:
    root = ElementTree.parse(REPO / "package.xml").getroot()
    keys = _exec_depends() | {e.text.strip() for e in root.iter("test_depend")}
    assert not [key for key in keys if key.endswith("-pip")], keys  # pip keys fail under PEP 668
    maintainer = root.find("maintainer")
    email = maintainer.get("email")
    assert maintainer.text.strip() and re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", email), email
    assert not email.endswith((".invalid", ".example", ".test", "example.com")), email
    assert root.findtext("license") == "Apache-2.0"
    licence = (REPO / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence and "END OF TERMS AND CONDITIONS" in licence


def test_numpy_range_keeps_the_apt_numpy_of_humble() -> None:
    tree = ast.parse((REPO / "setup.py").read_text())
    requires = next(ast.literal_eval(k.value) for k in ast.walk(tree)
                    if isinstance(k, ast.keyword) and k.arg == "install_requires")
    numpy_spec = next(spec for spec in requires if spec.startswith("numpy"))
    floor = re.search(r">=\s*([\d.]+)", numpy_spec)
    assert floor and tuple(int(v) for v in floor.group(1).split(".")[:2]) <= (1, 21), numpy_spec  # Humble: 1.21.5
    assert "numpy" not in _robot_requirements()
