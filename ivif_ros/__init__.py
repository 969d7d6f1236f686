"""ivif_ros: real-time infrared + visible image fusion for robots."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ivif_ros")  # from package.xml, through setup.py
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"
