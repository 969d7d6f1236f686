"""Console scripts whose modules import an optional library at import time: check it first."""
from __future__ import annotations

from ivif_ros.cli.dependencies import ROS_MODULES, require


def fusion_node(argv: list[str] | None = None) -> int:
    """``fusion_node``: the ROS 2 node (needs rclpy and the message packages)."""
    require("fusion_node", "the ROS 2 node", ROS_MODULES)
    from ivif_ros.ros.fusion_node import main

    return main(argv)


def ivif_eval(argv: list[str] | None = None) -> int:
    """``ivif-eval``: fusion metrics need scipy (the 'train' extra)."""
    require("ivif-eval", "scoring", ("scipy.ndimage", "scipy.stats"))
    from ivif_ros.training.evaluate import main

    return main(argv)
