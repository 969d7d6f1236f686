"""Launch fusion_node with a parameter file, optional rviz and an optional Fast DDS profile.

    ros2 launch ivif_ros fusion.launch.py thermal_topic:=/boson/image_raw rgb_topic:=/camera/color/image_raw
    ros2 launch ivif_ros fusion.launch.py backend:=tensorrt device:=cuda namespace:=front rviz:=true
    ros2 launch ivif_ros fusion.launch.py params_file:=/path/robot.yaml use_sim_time:=true dds_profile:=large_images

Every argument is described (``ros2 launch ivif_ros fusion.launch.py --show-args``); parameter
defaults live in config/fusion.yaml, and ``backend``/``device`` override it only when given.
The DDS environment is left alone unless ``dds_profile`` names a profile, so a robot-wide
Fast DDS profile keeps working.
"""
from __future__ import annotations

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch_ros.actions import Node

from ivif_ros.ros.transport_topics import namespace_rviz_topics
from ivif_ros.topics import FUSED_TOPIC, RGB_TOPIC, THERMAL_TOPIC

PACKAGE = "ivif_ros"
EXECUTABLE = "fusion_node"
CONFIG_FILE = "fusion.yaml"
RVIZ_FILE = "fusion.rviz"
DDS_PROFILE_FILE = "fastdds_large_images.xml"
DDS_PROFILE_SHORTHAND = "large_images"
TRUE_WORDS = ("true", "1", "yes", "on")


def _argument(context: LaunchContext, name: str) -> str:
    return context.launch_configurations.get(name, "")


def _dds_profile(context: LaunchContext, config_dir: str) -> list:
    """FASTRTPS_/FASTDDS_DEFAULT_PROFILES_FILE (Fast DDS 2.x / 3.x) only when a profile is named."""
    profile = _argument(context, "dds_profile")
    if not profile:
        return []
    if profile == DDS_PROFILE_SHORTHAND:
        profile = os.path.join(config_dir, DDS_PROFILE_FILE)
    return [SetEnvironmentVariable(variable, profile)
            for variable in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")]


def _remappings(context: LaunchContext) -> list[tuple[str, str]]:
    """The node's default topic -> the topic the arguments name."""
    return [
        (THERMAL_TOPIC, _argument(context, "thermal_topic")),
        (RGB_TOPIC, _argument(context, "rgb_topic")),
        (FUSED_TOPIC, _argument(context, "fused_topic")),
    ]


def _fusion_node(context: LaunchContext) -> list:
    """The node, with backend/device overrides only for arguments that were given."""
    overrides: dict = {name: _argument(context, name) for name in ("backend", "device") if _argument(context, name)}
    overrides["use_sim_time"] = _argument(context, "use_sim_time").lower() in TRUE_WORDS
    return [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name="fusion_node",
            namespace=_argument(context, "namespace"),
            output="screen",
            parameters=[_argument(context, "params_file"), overrides],
            remappings=_remappings(context),
        ),
    ]


def _rviz(context: LaunchContext, config_dir: str) -> list:
    """rviz2 showing the node's outputs where the namespace and fused_topic put them."""
    if _argument(context, "rviz").lower() not in TRUE_WORDS:
        return []
    with open(os.path.join(config_dir, RVIZ_FILE), encoding="utf-8") as source:
        text = namespace_rviz_topics(source.read(), _argument(context, "namespace"), dict(_remappings(context)))
    with tempfile.NamedTemporaryFile("w", suffix=".rviz", prefix="ivif_ros_", delete=False) as config:
        config.write(text)
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", config.name],
            parameters=[{"use_sim_time": _argument(context, "use_sim_time").lower() in TRUE_WORDS}],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    config_dir = os.path.join(get_package_share_directory(PACKAGE), "config")
    arguments = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(config_dir, CONFIG_FILE),
                              description="parameter file of fusion_node (YAML, /** or /fusion_node keys)"),
        DeclareLaunchArgument("backend", default_value="",
                              description="detector backend (auto, torch, onnxruntime, tensorrt); empty = params_file"),
        DeclareLaunchArgument("device", default_value="",
                              description="detector device (auto, cpu, cuda[:N]); empty = params_file"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (e.g. ros2 bag play --clock) for the node and rviz"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("thermal_topic", default_value=THERMAL_TOPIC,
                              description="thermal image base topic (camera_info beside it, transports below it)"),
        DeclareLaunchArgument("rgb_topic", default_value=RGB_TOPIC,
                              description="RGB image base topic (camera_info beside it, transports below it)"),
        DeclareLaunchArgument("fused_topic", default_value=FUSED_TOPIC,
                              description="fused output topic (fused/camera_info beside it)"),
        DeclareLaunchArgument("dds_profile", default_value="",
                              description=f"Fast DDS XML profile file for the launched processes; "
                                          f"'{DDS_PROFILE_SHORTHAND}' = the shipped config/{DDS_PROFILE_FILE}; "
                                          "empty = keep the environment (robot-wide profile or defaults)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start rviz2 with config/fusion.rviz"),
    ]
    return LaunchDescription([
        *arguments,
        OpaqueFunction(function=_dds_profile, args=[config_dir]),
        OpaqueFunction(function=_fusion_node),
        OpaqueFunction(function=_rviz, args=[config_dir]),
    ])
