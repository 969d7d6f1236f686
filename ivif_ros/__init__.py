"""ivif_ros: real-time infrared + visible image fusion for robots."""

__version__ = "0.1.0"
