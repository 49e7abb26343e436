"""Topic names of one camera, image_transport style (ROS-free, shared by the node, bag tools and tests).

A camera is named by its *base* image topic ``B`` (the name an image_transport publisher
advertises) and a transport, ``raw`` or ``compressed``:

=====================  ===========================  ==================================
                        raw                          compressed
=====================  ===========================  ==================================
input                   ``B``                        ``B/compressed``
per-frame quality       ``B_quality``                ``B_quality``
accepted frames         ``B_accepted``               ``B_accepted/compressed``
quality overlay         ``B_quality_overlay``        ``B_quality_overlay`` (raw Image)
=====================  ===========================  ==================================

Outputs are siblings of ``B`` (as image_proc's ``image_rect`` beside ``image_raw``), never
children, so an image_transport subscriber reads ``B_accepted/compressed`` as base
``B_accepted`` with transport ``compressed``.
"""
from __future__ import annotations

from dataclasses import dataclass

TRANSPORTS = ("raw", "compressed")
QUALITY_SUFFIX = "_quality"
ACCEPTED_SUFFIX = "_accepted"
OVERLAY_SUFFIX = "_quality_overlay"


@dataclass(frozen=True)
class CameraTopics:
    """The topics of one camera with base ``base`` (already resolved, or relative)."""

    base: str
    transport: str = "raw"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"image_transport {self.transport!r}: expected one of {', '.join(TRANSPORTS)}")
        check_base(self.base)

    @property
    def compressed(self) -> bool:
        return self.transport == "compressed"

    @property
    def input(self) -> str:
        return transport_topic(self.base, self.transport)

    @property
    def quality(self) -> str:
        return self.base.rstrip("/") + QUALITY_SUFFIX

    @property
    def accepted(self) -> str:
        return transport_topic(self.base.rstrip("/") + ACCEPTED_SUFFIX, self.transport)

    @property
    def overlay(self) -> str:
        """The drawn overlay: always a raw sensor_msgs/Image, whatever the input transport."""
        return self.base.rstrip("/") + OVERLAY_SUFFIX


def transport_topic(base: str, transport: str) -> str:
    """``base`` for raw, ``base/compressed`` for compressed (image_transport's naming)."""
    base = base.rstrip("/")
    return base if transport == "raw" else f"{base}/{transport}"


def check_base(base: str) -> str:
    """``base`` if it is a usable base image topic; a clear ValueError otherwise."""
    name = base.strip()
    if not name or name in ("/", "~"):
        raise ValueError(f"image_topics entry {base!r} is empty")
    if name.rstrip("/").split("/")[-1] == "compressed":
        raise ValueError(
            f"image_topics entry {base!r} names a transport topic; image_topics holds base topics: use "
            f"{name.rstrip('/')[: -len('/compressed')] or '/'!r} with image_transport compressed")
    return name


def split_transport(topic: str) -> CameraTopics:
    """The camera behind a topic as a bag or camera names it: ``X/compressed`` is base ``X`` with
    transport compressed, anything else is a raw base topic."""
    t = topic.rstrip("/")
    if t.split("/")[-1] == "compressed" and t.count("/") >= 1 and t != "/compressed":
        return CameraTopics(t[: -len("/compressed")], "compressed")
    return CameraTopics(t, "raw")


def per_camera(values: list[str] | str, count: int, what: str = "image_transport") -> list[str]:
    """One value for every camera, or a list with one value per camera (image_transport, hardware_id)."""
    items = [values] if isinstance(values, str) else [str(v) for v in values]
    if len(items) == 1:
        return items * count
    if len(items) != count:
        raise ValueError(f"{what} needs one value or one per image topic ({count}), "
                         f"got {len(items)}: {items}")
    return items


def status_label(topic: str, namespace: str = "/") -> str:
    """A camera's name inside a /diagnostics status name: its base topic relative to the node's
    namespace, with ``/`` written as ``.`` (diagnostic_aggregator turns ``/`` into spaces)."""
    ns = namespace.rstrip("/") + "/"
    t = topic[len(ns):] if ns != "/" and topic.startswith(ns) else topic.lstrip("/")
    return t.replace("/", ".") or "image"
