"""Ground-truth labels for a bag: time ranges per topic with a label (clear, haze, blur...), and
which labels mean "the gate should drop this frame".

File format (YAML)::

    version: 1
    clock: stamp          # times refer to the image header stamp (or: bag = recording time)
    origin_ns: 1700000000000000000   # 'start'/'end' are seconds after this (default: bag start)
    default_label: clear  # label of frames outside every segment (null: such frames are unlabelled)
    drop_labels: [haze, blur]        # default: every label except default_label and clear/ok/good
    segments:
      - {topic: /cam/image_raw, start: 2.0, end: 4.5, label: haze}
      - {start: 6.0, end: 7.0, label: blur}               # no topic (or "*"): every camera
      - {topic: /cam2/image_raw, start_ns: 1700000006000000000, end_ns: 1700000007000000000, label: glare}

Segments are half-open ``[start, end)``; where segments overlap, the first listed wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KEEP_NAMES = frozenset({"clear", "ok", "good", "keep", "clean"})
CLOCKS = ("stamp", "bag")


class LabelsError(ValueError):
    """A labels file that cannot be used (with the reason)."""


@dataclass(frozen=True)
class Segment:
    start_ns: int
    end_ns: int
    label: str
    topic: str | None = None  # None: every topic

    def applies_to(self, topic: str) -> bool:
        return self.topic is None or self.topic == topic

    def contains(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns < self.end_ns


@dataclass
class Labels:
    segments: list[Segment]
    default_label: str | None = "clear"
    drop_labels: frozenset[str] | None = None  # None: derived (every label except the keep names)
    clock: str = "stamp"
    origin_ns: int | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise LabelsError(f"clock must be one of {CLOCKS}, got {self.clock!r}")

    @property
    def all_labels(self) -> list[str]:
        names = {s.label for s in self.segments}
        if self.default_label:
            names.add(self.default_label)
        return sorted(names)

    @property
    def drop_set(self) -> frozenset[str]:
        if self.drop_labels is not None:
            return self.drop_labels
        return frozenset(
            n for n in self.all_labels if n != self.default_label and n.lower() not in KEEP_NAMES
        )

    def with_drop_labels(self, names: Iterable[str] | None) -> Labels:
        if names is None:
            return self
        return Labels(
            self.segments,
            self.default_label,
            frozenset(names),
            self.clock,
            self.origin_ns,
            self.source,
            list(self.notes),
        )

    def should_drop(self, label: str | None) -> bool | None:
        return None if label is None else label in self.drop_set

    def label_at(self, topic: str, t_ns: int) -> str | None:
        for s in self.segments:
            if s.applies_to(topic) and s.contains(t_ns):
                return s.label
        return self.default_label

    def segments_for(self, topic: str) -> list[Segment]:
        return [s for s in self.segments if s.applies_to(topic)]

    # --- files ---
    @classmethod
    def load(cls, path: str | Path, bag_start_ns: int | None = None) -> Labels:
        """Read a labels YAML; relative ``start``/``end`` seconds use ``origin_ns`` or ``bag_start_ns``."""
        p = Path(path)
        try:
            doc = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LabelsError(f"{p}: cannot read labels ({exc})") from None
        return cls.from_dict(doc or {}, bag_start_ns=bag_start_ns, source=str(p))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], bag_start_ns: int | None = None, source: str = "") -> Labels:
        if not isinstance(doc, dict):
            raise LabelsError(f"{source}: labels must be a YAML mapping")
        origin = doc.get("origin_ns")
        notes = []
        if origin is None:
            origin = bag_start_ns
            notes.append("relative times are measured from the bag start (no origin_ns in the labels)")
        segs = []
        for i, item in enumerate(doc.get("segments") or []):
            where = f"{source}: segment {i + 1}"
            if not isinstance(item, dict) or "label" not in item:
                raise LabelsError(f"{where}: needs at least 'label' and a time range")
            try:
                if "start_ns" in item:
                    start, end = int(item["start_ns"]), int(item["end_ns"])
                else:
                    if origin is None:
                        raise LabelsError(f"{where}: relative times need origin_ns or a bag start time")
                    start = int(origin) + round(float(item["start"]) * 1e9)
                    end = int(origin) + round(float(item["end"]) * 1e9)
            except (KeyError, TypeError, ValueError) as exc:
                raise LabelsError(f"{where}: bad time range ({exc})") from None
            if end <= start:
                raise LabelsError(f"{where}: end must be after start")
            topic = item.get("topic")
            segs.append(Segment(start, end, str(item["label"]), None if topic in (None, "*") else str(topic)))
        drop = doc.get("drop_labels")
        return cls(
            segments=segs,
            default_label=doc.get("default_label", "clear"),
            drop_labels=None if drop is None else frozenset(str(x) for x in drop),
            clock=str(doc.get("clock", "stamp")),
            origin_ns=None if origin is None else int(origin),
            source=source,
            notes=notes,
        )

    def to_dict(self) -> dict[str, Any]:
        origin = self.origin_ns
        out: dict[str, Any] = {"version": 1, "clock": self.clock}
        if origin is not None:
            out["origin_ns"] = int(origin)
        out["default_label"] = self.default_label
        if self.drop_labels is not None:
            out["drop_labels"] = sorted(self.drop_labels)
        segs = []
        for s in self.segments:
            d: dict[str, Any] = {}
            if s.topic is not None:
                d["topic"] = s.topic
            if origin is not None:
                d["start"] = round((s.start_ns - origin) / 1e9, 9)
                d["end"] = round((s.end_ns - origin) / 1e9, 9)
            else:
                d["start_ns"], d["end_ns"] = s.start_ns, s.end_ns
            d["label"] = s.label
            segs.append(d)
        out["segments"] = segs
        return out

    def dump(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        text = "# hirqa labels: time ranges per topic; see docs/bag.md\n"
        text += yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        p.write_text(text)
        return p
