"""Default topic names of the fusion node and of the tools that talk to it.

Relative names (they follow the node's namespace and can be remapped), except the ROS-wide
``/diagnostics``. The node, the launch file, ``ivif-bag``, ``ivif-demo`` and the tests use these.
"""
from __future__ import annotations

__all__ = [
    "COLORED_TOPIC",
    "DEBUG_TOPIC",
    "DIAGNOSTICS_TOPIC",
    "FUSED_TOPIC",
    "INPUT_TOPICS",
    "RGB_TOPIC",
    "THERMAL_TOPIC",
    "WEIGHTS_TOPIC",
]

THERMAL_TOPIC = "thermal/image_raw"  #: thermal camera in (sensor_msgs/Image, mono8/mono16)
RGB_TOPIC = "rgb/image_raw"  #: visible camera in (sensor_msgs/Image)
FUSED_TOPIC = "fused/image"  #: fused image out (bgr8 or mono8, RGB header)
WEIGHTS_TOPIC = "weight_map/image"  #: visible share out (32FC1, 0..1)
COLORED_TOPIC = "weight_map/colored"  #: visible share as a colour map out (bgr8)
DEBUG_TOPIC = "debug/side_by_side"  #: inputs and output side by side (bgr8, optional)
DIAGNOSTICS_TOPIC = "/diagnostics"  #: diagnostic_msgs/DiagnosticArray

#: Input image topic of each stream name the node uses.
INPUT_TOPICS = {"thermal": THERMAL_TOPIC, "rgb": RGB_TOPIC}
