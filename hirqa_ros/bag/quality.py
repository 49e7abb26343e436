"""The per-frame `T/quality` diagnostic_msgs/DiagnosticArray as a rosbags message.

The status fields come from ``hirqa_ros.quality_status`` (the same definition the live node
publishes), so a bag written by ``hirqa bag-eval --write-bag`` shows in Foxglove/PlotJuggler like
a recording of the node.
"""

from __future__ import annotations

from typing import Any

from hirqa_ros.quality_status import NODE_NAME, QUALITY_SUFFIX, quality_status_fields, quality_topic

__all__ = ["DIAGNOSTIC_ARRAY", "NODE_NAME", "QUALITY_SUFFIX", "diagnostic_array", "quality_status_fields",
           "quality_topic"]

DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"


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
