"""The per-frame ``T/quality`` status as plain fields: the one definition the live node and the
bag writer (``hirqa bag-eval --write-bag``) both publish, so recordings and replays look alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hirqa_ros.decision import VERDICTS, Level, Thresholds

NODE_NAME = "hirqa_node"  # the node's default name
QUALITY_SUFFIX = "quality"


def quality_topic(image_topic: str) -> str:
    """``T/quality`` for image topic ``T``."""
    return image_topic.rstrip("/") + "/" + QUALITY_SUFFIX


def status_message(level: Level, score: float) -> str:
    """The short text of a frame's status: level, verdict and score."""
    level = Level(level)
    return f"{level.name}: {VERDICTS[level]} (score {score:.3f})"


def quality_status_fields(
    topic: str,
    score: float,
    level: Level,
    smoothed: float,
    thresholds: Thresholds,
    backend: str,
    frame_id: str = "",
    sequence: int = 0,
    batch_size: int = 1,
    node_name: str = NODE_NAME,
    extra: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The DiagnosticStatus of one frame: level, name, message (the verdict), hardware_id and
    values (``score`` first, then smoothed score, verdict, thresholds, backend, batch size,
    frame number and any ``extra`` key/value pairs such as latencies)."""
    level = Level(level)
    verdict = VERDICTS[level]
    return {
        "level": int(level),
        "name": f"{node_name}: {topic}",
        "message": status_message(level, score),
        "hardware_id": frame_id or topic,
        "values": [
            ("score", f"{float(score):.6f}"),
            ("smoothed_score", f"{float(smoothed):.6f}"),
            ("verdict", verdict),
            ("warn_threshold", f"{thresholds.warn:.4f}"),
            ("error_threshold", f"{thresholds.error:.4f}"),
            ("backend", backend),
            ("batch_size", str(batch_size)),
            ("frame", str(sequence)),
            *extra,
        ],
    }
