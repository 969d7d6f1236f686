"""Static checks of launch/fusion.launch.py (launch/launch_ros are not installable here)."""
from __future__ import annotations

import ast
import configparser
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "fusion.launch.py"


def _module_constants(tree: ast.Module) -> dict[str, str]:
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.targets[0], ast.Name)
    }


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def _console_scripts() -> set[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    scripts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value:
            scripts.add(node.value.split(" = ")[0].strip())
    return scripts


def test_launch_file_names_existing_executable_and_files() -> None:
    tree = ast.parse(LAUNCH.read_text())
    constants = _module_constants(tree)
    assert constants["PACKAGE"] == "ivif_ros"
    assert constants["EXECUTABLE"] in _console_scripts()
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(REPO / "setup.cfg")
    assert setup_cfg["install"]["install_scripts"].endswith("lib/ivif_ros")  # where `ros2 run` looks
    for key in ("CONFIG_FILE", "RVIZ_FILE", "DDS_PROFILE_FILE"):
        assert (REPO / "config" / constants[key]).is_file(), constants[key]
    assert "generate_launch_description" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_launch_argument_is_described_and_used() -> None:
    source = LAUNCH.read_text()
    tree = ast.parse(source)
    declared = {}
    for call in _calls(tree, "DeclareLaunchArgument"):
        keywords = {k.arg: k.value for k in call.keywords}
        assert "description" in keywords and keywords["description"], ast.unparse(call)
        declared[call.args[0].value] = keywords
    assert {"config_file", "backend", "device", "namespace", "thermal_topic", "rgb_topic"} <= set(declared)
    for name in declared:  # declared once, read at least once
        assert source.count(f'"{name}"') >= 2, name


def test_remapped_topics_are_the_node_defaults() -> None:
    node_source = (REPO / "ivif_ros" / "ros" / "fusion_node.py").read_text()
    tree = ast.parse(LAUNCH.read_text())
    remapped = [elt.elts[0].value for c in _calls(tree, "Node") for k in c.keywords if k.arg == "remappings"
                for elt in k.value.elts]
    assert remapped == ["thermal/image_raw", "rgb/image_raw", "fused/image"]
    assert '"fused/image"' in node_source and "{stream}/image_raw" in node_source


def test_rviz_config_shows_fused_image_and_coloured_weights() -> None:
    rviz = yaml.safe_load((REPO / "config" / "fusion.rviz").read_text())
    topics = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if d["Class"].endswith("Image")}
    assert topics == {"/fused/image", "/weight_map/colored"}


def test_fusion_yaml_covers_every_node_parameter() -> None:
    from ivif_ros.core.pipeline import FusionConfig
    from ivif_ros.ros.parameters import parameter_table
    import dataclasses

    params = yaml.safe_load((REPO / "config" / "fusion.yaml").read_text())["/**"]["ros__parameters"]
    table = parameter_table()
    assert {f.name for f in dataclasses.fields(FusionConfig)} <= set(table)
    assert set(params) == set(table)
    for name, (default, *_rest) in table.items():
        assert type(params[name]) is type(default), name  # rclpy refuses 1 for a double parameter
