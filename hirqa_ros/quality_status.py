"""Old home of the per-frame status fields; the definition now lives in ``hirqa_ros.quality_msg``
(writer and parser) and the topic names in ``hirqa_ros.topics``. Kept as an import alias until
the node is rewired onto them."""
from __future__ import annotations

from hirqa_ros.quality_msg import NODE_NAME, quality_status_fields

QUALITY_SUFFIX = "quality"


def quality_topic(image_topic: str) -> str:
    """``T/quality`` for image topic ``T`` (the naming before hirqa_ros.topics)."""
    return image_topic.rstrip("/") + "/" + QUALITY_SUFFIX


__all__ = ["NODE_NAME", "QUALITY_SUFFIX", "quality_status_fields", "quality_topic"]
