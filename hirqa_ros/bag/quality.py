"""The per-frame ``B_quality`` diagnostic_msgs/DiagnosticArray as a rosbags message.

The status fields come from ``hirqa_ros.quality_msg`` (the same definition the live node
publishes, readable with ``hirqa_ros.quality_msg.parse``) and the topic name from
``hirqa_ros.topics``, so a bag written by ``hirqa bag-eval --write-bag`` shows in
Foxglove/PlotJuggler like a recording of the node.
"""

from __future__ import annotations

from typing import Any

from hirqa_ros.quality_msg import NODE_NAME, quality_status_fields
from hirqa_ros.topics import split_transport

__all__ = ["DIAGNOSTIC_ARRAY", "NODE_NAME", "diagnostic_array", "quality_status_fields", "quality_topic"]

DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"


def quality_topic(image_topic: str) -> str:
    """``B_quality`` for a recorded image topic (``B`` or ``B/compressed``), as the node names it."""
    return split_transport(image_topic).quality


def diagnostic_array(typestore: Any, header: Any, status: dict[str, Any]) -> Any:
    """A rosbags DiagnosticArray message holding ``status`` with ``header`` (copied from the image)."""
    types = typestore.types
    kv = types["diagnostic_msgs/msg/KeyValue"]
    st = types["diagnostic_msgs/msg/DiagnosticStatus"](
        level=status["level"],
        name=status["name"],
        message=status["message"],
        hardware_id=status["hardware_id"],
        values=[kv(key=k, value=v) for k, v in status["values"]],
    )
    hdr = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](
            sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)
        ),
        frame_id=str(header.frame_id),
    )
    return types[DIAGNOSTIC_ARRAY](header=hdr, status=[st])
