"""Static checks of launch/fusion.launch.py (launch/launch_ros are not installable here)."""
from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "fusion.launch.py"


def _module_constants(tree: ast.Module) -> dict[str, str]:
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.targets[0], ast.Name)
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
    assert {"params_file", "use_sim_time", "backend", "device", "namespace", "thermal_topic", "rgb_topic",
            "dds_profile"} <= set(declared)
    assert _constant(declared["dds_profile"]["default_value"]) == ""  # a robot-wide profile stays in force
    for name in declared:  # declared once, read at least once
        assert source.count(f'"{name}"') >= 2, name


def _constant(node: ast.AST) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _declared_launch_arguments() -> dict[str, str]:
    tree = ast.parse(LAUNCH.read_text())
    result = {}
    for call in _calls(tree, "DeclareLaunchArgument"):
        description = next(k.value for k in call.keywords if k.arg == "description")
        result[call.args[0].value] = ast.unparse(description)
    return result


def _documented_launch_arguments() -> dict[str, set[str]]:
    """Launch arguments named in README/docs: `name:=` after `fusion.launch.py` on a command line
    (with backslash continuations), and the backticked names of a "launch file takes" sentence."""
    found: dict[str, set[str]] = {}
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(r"fusion\.launch\.py([^\n`]*(?:`[^`\n]*`[^\n`]*)*)", text):
            for name in re.findall(r"(?<![\w-])([a-z_][a-z0-9_]*):=", match.group(1)):
                found.setdefault(name, set()).add(path.name)
        for sentence in re.findall(r"launch file takes([^.]*)\.", text.replace("\n", " ")):
            for name in re.findall(r"`([a-z_][a-z0-9_]*)`", sentence):
                found.setdefault(name, set()).add(path.name)
    return found


def test_every_launch_argument_in_the_docs_is_declared_with_a_description() -> None:
    declared = _declared_launch_arguments()
    documented = _documented_launch_arguments()
    # The scan finds the arguments of the README's robot section and of the rviz/bag examples.
    assert {"params_file", "thermal_topic", "rgb_topic", "rviz", "use_sim_time"} <= set(documented), documented
    missing = {name: sorted(files) for name, files in documented.items() if name not in declared}
    assert not missing, f"launch arguments named in the docs but not declared: {missing}"
    assert all(len(description) > 12 for description in declared.values()), declared


def test_rviz_topics_follow_namespace_and_fused_topic() -> None:
    from ivif_ros.ros.transport_topics import namespace_rviz_topics, resolve_in_namespace

    text = (REPO / "config" / "fusion.rviz").read_text()

    def displayed(namespace: str, remappings: dict[str, str]) -> set[str]:
        rviz = yaml.safe_load(namespace_rviz_topics(text, namespace, remappings))
        return {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"]}

    assert displayed("front", {}) == {"/front/fused/image", "/front/weight_map/colored"}
    assert displayed("/front/", {"fused/image": "/cam/fused"}) == {"/cam/fused", "/front/weight_map/colored"}
    assert displayed("", {"fused/image": "fused/image"}) == {"/fused/image", "/weight_map/colored"}
    assert namespace_rviz_topics(text, "", {}) == text
    assert resolve_in_namespace("/cam/fused", "front") == "/cam/fused"
    assert resolve_in_namespace("fused/image", "a/b") == "/a/b/fused/image"


def test_remapped_topics_are_the_node_defaults() -> None:
    from ivif_ros import topics

    node_source = (REPO / "ivif_ros" / "ros" / "fusion_node.py").read_text()
    tree = ast.parse(LAUNCH.read_text())
    imported = {alias.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "ivif_ros.topics"
                for alias in n.names}
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_remappings")
    returned = next(n for n in ast.walk(function) if isinstance(n, ast.Return)).value
    remapped = [getattr(topics, elt.elts[0].id) for elt in returned.elts if elt.elts[0].id in imported]
    node_calls = [c for c in _calls(tree, "Node") if any(k.arg == "remappings" for k in c.keywords)]
    assert len(node_calls) == 1  # the fusion node; rviz gets the same rules through its config
    assert remapped == ["thermal/image_raw", "rgb/image_raw", "fused/image"]
    defaults = {c.args[0].value: getattr(topics, k.value.id) for c in _calls(tree, "DeclareLaunchArgument")
                for k in c.keywords
                if k.arg == "default_value" and isinstance(k.value, ast.Name) and k.value.id in imported}
    assert defaults == {
        "thermal_topic": "thermal/image_raw", "rgb_topic": "rgb/image_raw", "fused_topic": "fused/image"
    }
    assert "topics.FUSED_TOPIC" in node_source and "topics.INPUT_TOPICS[stream]" in node_source
    assert topics.INPUT_TOPICS == {"thermal": "thermal/image_raw", "rgb": "rgb/image_raw"}


def test_rviz_config_shows_fused_image_and_coloured_weights() -> None:
    rviz = yaml.safe_load((REPO / "config" / "fusion.rviz").read_text())
    topics = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if d["Class"].endswith("Image")}
    assert topics == {"/fused/image", "/weight_map/colored"}
    from ivif_ros.topics import COLORED_TOPIC, FUSED_TOPIC

    assert topics == {f"/{FUSED_TOPIC}", f"/{COLORED_TOPIC}"}


def test_fusion_yaml_covers_every_node_parameter() -> None:
    import dataclasses

    from ivif_ros.core.pipeline import FusionConfig
    from ivif_ros.ros.parameters import parameter_table

    params = yaml.safe_load((REPO / "config" / "fusion.yaml").read_text())["/**"]["ros__parameters"]
    table = parameter_table()
    assert {f.name for f in dataclasses.fields(FusionConfig)} <= set(table)
    assert set(params) == set(table)
    for name, (default, *_rest) in table.items():
        assert type(params[name]) is type(default), name  # rclpy refuses 1 for a double parameter
