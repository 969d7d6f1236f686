"""Launch fusion_node with config/fusion.yaml, the large-image Fast DDS profile and optional rviz.

    ros2 launch ivif_ros fusion.launch.py thermal_topic:=/boson/image_raw rgb_topic:=/camera/color/image_raw
    ros2 launch ivif_ros fusion.launch.py backend:=tensorrt device:=cuda namespace:=front rviz:=true

Every argument is described (``ros2 launch ivif_ros fusion.launch.py --show-args``); parameter
defaults live in config/fusion.yaml, and ``backend``/``device`` override it only when given.
"""
from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ivif_ros.topics import FUSED_TOPIC, RGB_TOPIC, THERMAL_TOPIC

PACKAGE = "ivif_ros"
EXECUTABLE = "fusion_node"
CONFIG_FILE = "fusion.yaml"
RVIZ_FILE = "fusion.rviz"
DDS_PROFILE_FILE = "fastdds_large_images.xml"


def _fusion_node(context: LaunchContext) -> list:
    """The node, with backend/device overrides only for arguments that were given."""
    overrides = {
        name: LaunchConfiguration(name).perform(context)
        for name in ("backend", "device")
        if LaunchConfiguration(name).perform(context)
    }
    return [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name="fusion_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=[LaunchConfiguration("config_file"), overrides],
            remappings=[
                (THERMAL_TOPIC, LaunchConfiguration("thermal_topic")),
                (RGB_TOPIC, LaunchConfiguration("rgb_topic")),
                (FUSED_TOPIC, LaunchConfiguration("fused_topic")),
            ],
        ),
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    config_dir = os.path.join(share, "config")
    profile = LaunchConfiguration("dds_profile")
    arguments = [
        DeclareLaunchArgument("config_file", default_value=os.path.join(config_dir, CONFIG_FILE),
                              description="parameter file of fusion_node"),
        DeclareLaunchArgument("backend", default_value="",
                              description="detector backend (auto, torch, onnxruntime, tensorrt); empty = config file"),
        DeclareLaunchArgument("device", default_value="",
                              description="detector device (auto, cpu, cuda[:N]); empty = config file"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("thermal_topic", default_value=THERMAL_TOPIC,
                              description="thermal sensor_msgs/Image topic"),
        DeclareLaunchArgument("rgb_topic", default_value=RGB_TOPIC, description="RGB sensor_msgs/Image topic"),
        DeclareLaunchArgument("fused_topic", default_value=FUSED_TOPIC, description="fused output topic"),
        DeclareLaunchArgument("dds_profile", default_value=os.path.join(config_dir, DDS_PROFILE_FILE),
                              description="Fast DDS XML profile (large shared-memory segment); empty = middleware defaults"),
        DeclareLaunchArgument("rviz", default_value="false", description="start rviz2 with config/fusion.rviz"),
    ]
    return LaunchDescription([
        *arguments,
        # Fast DDS 2.x reads FASTRTPS_*, 3.x FASTDDS_*; other middlewares ignore both.
        SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", profile),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", profile),
        OpaqueFunction(function=_fusion_node),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(share, "config", RVIZ_FILE)],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
