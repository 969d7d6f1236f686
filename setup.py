"""ivif_ros: an ament_python ROS 2 package that is also pip-installable from a clone."""
import xml.etree.ElementTree as ElementTree
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "ivif_ros"
# package.xml is the one source of the version (ROS tools read it; pip gets it from here).
VERSION = ElementTree.parse(Path(__file__).resolve().with_name("package.xml")).findtext("version").strip()

setup(
    name=PACKAGE,
    version=VERSION,
    description="Real-time infrared + visible image fusion for robots (ROS 2 node, core, training).",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]) + [f"{PACKAGE}.training"],
    # training/ lives at the top level of the repository but installs as ivif_ros.training,
    # so nothing called `training` lands in site-packages.
    package_dir={f"{PACKAGE}.training": "training"},
    package_data={PACKAGE: ["models/weights/*.safetensors", "models/weights/*.json", "models/weights/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml", "LICENSE"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
    ],
    install_requires=[
        "numpy>=1.21",  # Humble ships 1.21.5, Jazzy 1.26.4: never upgrade the apt numpy under ROS
        "opencv-python-headless>=4.8",
        "torch>=2.4",
        "safetensors>=0.4",
        "onnxruntime>=1.18",
        "pyyaml>=6",
        "tqdm>=4.66",
        "rosbags>=0.10",
    ],
    extras_require={
        "train": ["onnx>=1.16", "scipy>=1.11", "matplotlib>=3.8", "tensorboard>=2.15"],
        "gpu": ["kornia>=0.7"],
        "test": [
            "pytest>=8",
            "ruff>=0.15",
            "onnx>=1.16",
            "scipy>=1.11",
            "matplotlib>=3.8",
            "tensorboard>=2.15",
            "kornia>=0.7",
            "colcon-core",
            "colcon-ros",
            "colcon-python-setup-py",
            "colcon-bash",
            "ros-jazzy-ament-package",
            "ros-jazzy-ament-index-python",
        ],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "fusion_node = ivif_ros.cli.entry_points:fusion_node",
            "ivif-demo = ivif_ros.cli.demo:main",
            "ivif-fuse = ivif_ros.cli.fuse:main",
            "ivif-bag = ivif_ros.cli.bag:main",
            "ivif-bench = ivif_ros.cli.bench:main",
            "ivif-make-dataset = ivif_ros.training.dataset:main",
            "ivif-train = ivif_ros.training.train:main",
            "ivif-export = ivif_ros.training.export:main",
            "ivif-eval = ivif_ros.cli.entry_points:ivif_eval",
        ],
    },
)
