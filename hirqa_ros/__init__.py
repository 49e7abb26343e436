"""hirqa_ros: HiRQA-S image quality for robots (ROS-free core; the ROS 2 node lives in hirqa_ros.node).

The API is the per-frame pipeline, the one every door (node, ``hirqa bag-eval``, ``hirqa score``) runs:
``open_monitor(model, backend, ...)`` -> ``Monitor``; ``Monitor.score_frames(frames)`` -> one
``FrameResult`` per frame (score, level, verdict, reason, fault). ``load_scorer`` / ``Scorer`` (raw
scores, embeddings; no frame checks, no gate) stay importable for compatibility.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["FrameResult", "Inference", "Monitor", "Scorer", "__version__", "load_scorer", "open_monitor"]


def __getattr__(name: str):
    # lazy, so that `import hirqa_ros` stays cheap and never imports torch or rclpy
    if name in ("Inference", "Scorer", "load_scorer"):
        from hirqa_ros import scorer

        return getattr(scorer, name)
    if name in ("Monitor", "open_monitor"):
        from hirqa_ros import pipeline

        return getattr(pipeline, name)
    if name == "FrameResult":
        from hirqa_ros.monitor import FrameResult

        return FrameResult
    raise AttributeError(name)
