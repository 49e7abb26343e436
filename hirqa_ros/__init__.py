"""hirqa_ros: HiRQA-S image quality for robots (ROS-free core; the ROS 2 node lives in hirqa_ros.node)."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Inference", "Scorer", "__version__", "load_scorer"]


def __getattr__(name: str):
    # lazy, so that `import hirqa_ros` stays cheap and never imports torch or rclpy
    if name in ("Inference", "Scorer", "load_scorer"):
        from hirqa_ros import scorer

        return getattr(scorer, name)
    raise AttributeError(name)
