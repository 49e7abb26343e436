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
A labels file that cannot mean what its author wanted is refused (:class:`LabelsError`):
unknown keys (``segmets:``), no ``segments`` key (``segments: []`` says "every frame is
``default_label``"), an empty file, a version other than 1. :meth:`Labels.check_topics`
and :meth:`Labels.check_times` compare it with the bag: segments that match no evaluated topic
or no frame are problems, and labels that match nothing at all are an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hirqa_ros.files import UntrustedFileError, load_untrusted

KEEP_NAMES = frozenset({"clear", "ok", "good", "keep", "clean"})
CLOCKS = ("stamp", "bag")
FORMAT_VERSION = 1
TOP_KEYS = ("version", "clock", "origin_ns", "default_label", "drop_labels", "segments")
SEGMENT_KEYS = ("topic", "start", "end", "start_ns", "end_ns", "label")


def _unknown_keys(keys: Iterable[Any], known: tuple[str, ...], where: str) -> None:
    unknown = [str(k) for k in keys if k not in known]
    if not unknown:
        return
    hints = []
    for k in unknown:
        close = difflib.get_close_matches(k, known, n=1)
        hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise LabelsError(f"{where}: unknown key {', '.join(hints)}; known keys: {', '.join(known)}")


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
    # --- checks against the bag ---
    def check_topics(self, bag_topics: Iterable[str], evaluated: Iterable[str]) -> list[str]:
        """Problems of segments whose topic is not in the bag or not evaluated; raises
        :class:`LabelsError` when no segment applies to any evaluated topic."""
        bag, chosen = set(bag_topics), set(evaluated)
        problems = []
        for i, s in enumerate(self.segments):
            if s.topic is None or s.topic in chosen:
                continue
            why = "is not evaluated (see --topic)" if s.topic in bag else "is not in the bag"
            problems.append(f"labels: segment {i + 1} ({s.label}) names topic {s.topic}, which {why}")
        if self.segments and not any(s.topic is None or s.topic in chosen for s in self.segments):
            raise LabelsError(
                f"{self.source}: no segment applies to the evaluated topics ({', '.join(sorted(chosen))}); "
                f"the labels name {', '.join(sorted({s.topic for s in self.segments if s.topic}))}"
            )
        return problems

    def check_times(self, times: dict[str, list[int]]) -> list[str]:
        """Problems of segments that contain no frame of their topic(s) (``times``: topic ->
        frame times in this labels' clock); raises :class:`LabelsError` when no segment contains
        any frame (wrong clock, origin or bag)."""
        problems = []
        matched = 0
        for i, s in enumerate(self.segments):
            hits = sum(1 for t, ts in times.items() if s.applies_to(t) for x in ts if s.contains(x))
            if hits:
                matched += 1
                continue
            spans = [(min(ts), max(ts)) for t, ts in times.items() if s.applies_to(t) and ts]
            if not spans:
                continue  # topic problems are reported by check_topics
            lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
            problems.append(
                f"labels: segment {i + 1} ({s.label}{', ' + s.topic if s.topic else ''}) "
                f"[{s.start_ns}, {s.end_ns}) ns contains no frame; the frames' {self.clock} times "
                f"span [{lo}, {hi}] ns"
            )
        if self.segments and not matched and any(times.values()):
            raise LabelsError(
                f"{self.source}: no segment contains any frame ({self.clock} clock); check 'clock', "
                "'origin_ns' and the time ranges against the bag:\n  " + "\n  ".join(problems)
            )
        return problems

    @classmethod
    def load(cls, path: str | Path, bag_start_ns: int | None = None) -> Labels:
        """Read a labels YAML; relative ``start``/``end`` seconds use ``origin_ns`` or ``bag_start_ns``."""
        p = Path(path)
        try:
            doc = load_untrusted(p, "labels")  # bounded: size, depth, alias expansion
        except UntrustedFileError as exc:
            raise LabelsError(str(exc)) from None
        if doc is None:
            raise LabelsError(f"{p}: the labels file is empty (expected 'segments:'; see docs/bag.md)")
        return cls.from_dict(doc, bag_start_ns=bag_start_ns, source=str(p))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], bag_start_ns: int | None = None, source: str = "") -> Labels:
        if not isinstance(doc, dict):
            raise LabelsError(f"{source}: labels must be a YAML mapping")
        _unknown_keys(doc, TOP_KEYS, source or "labels")
        version = doc.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise LabelsError(f"{source}: labels version {version!r} is not supported (this reads version 1)")
        if "segments" not in doc:
            raise LabelsError(
                f"{source}: no 'segments' list, so every frame would get the default label; list the "
                "segments (or write 'segments: []' for a bag that is all default_label; see docs/bag.md)"
            )
        items = doc["segments"] or []
        if not isinstance(items, list):
            raise LabelsError(f"{source}: 'segments' must be a list")
        origin = doc.get("origin_ns")
        notes = []
        if origin is None:
            origin = bag_start_ns
            notes.append("relative times are measured from the bag start (no origin_ns in the labels)")
        segs = []
        for i, item in enumerate(items):
            where = f"{source}: segment {i + 1}"
            if not isinstance(item, dict) or "label" not in item:
                raise LabelsError(f"{where}: needs at least 'label' and a time range")
            _unknown_keys(item, SEGMENT_KEYS, where)
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
