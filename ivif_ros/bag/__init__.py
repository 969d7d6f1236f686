"""rosbag2 tools: make bags from image folders, replay them through rclpy, fuse them offline.

Uses the ``rosbags`` library (no ``ros2 bag`` or rosbag2 C++ needed). ``player`` needs rclpy and
``offline`` needs the fusion core; both are imported only when used.
"""

from .errors import BagError
from .layout import ImagePair, find_image_pairs
from .writer import MakeOptions, MakeSummary, make_bag

__all__ = [
    "BagError",
    "ImagePair",
    "MakeOptions",
    "MakeSummary",
    "find_image_pairs",
    "make_bag",
]
