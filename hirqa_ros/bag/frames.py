"""One row per image message of a bag evaluation, and ``frames.csv`` (write and read back)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hirqa_ros.monitor import FrameResult
from hirqa_ros.stream_cues import StreamCue

#: ``fault``/``fault_confidence``: ``faults.gated_fault`` (``none`` for a kept frame), empty without a head;
#: ``reference``: the camera's reference score the frame was judged against (empty: none, relative gate off);
#: ``none_prob``: the fault head's ``none`` probability; ``cut``: 1 when the frame started a new scene;
#: ``luma``/``dark``/``noise``/``blockiness``/``blur``/``black``/``white``: the frame's
#: ``stream_cues.StreamCue`` (empty: relative off)
CSV_COLUMNS = ["topic", "stamp_ns", "bag_time_ns", "score", "level", "verdict", "error", "reason", "fault",
               "fault_confidence", "reference", "none_prob", "cut", "luma", "dark", "noise", "blockiness",
               "blur", "black", "white"]
CUE_COLUMNS = ("luma", "dark", "noise", "blockiness", "blur", "black", "white")


@dataclass
class FrameRow:
    """One image message. ``score`` None + ``verdict`` 'error' when it got no score (``reason`` says why)."""

    topic: str
    bag_time_ns: int
    stamp_ns: int | None = None
    score: float | None = None
    smoothed: float | None = None
    level: str = ""
    verdict: str = ""
    error: str = ""
    reason: str = ""
    frame_id: str = ""
    seconds: float = 0.0  # decode + scoring time attributed to this frame
    batch_size: int = 0
    fault: str | None = None
    fault_confidence: float | None = None
    fault_top3: tuple[tuple[str, float], ...] = ()
    reference: float | None = None
    none_prob: float | None = None
    cut: bool = False
    cue: StreamCue | None = None

    def apply(self, result: FrameResult) -> None:
        """Take the pipeline's verdict on this frame (``monitor.FrameResult``)."""
        self.score, self.smoothed = result.score, result.smoothed
        self.level = "" if result.level is None else result.level.name
        self.verdict = result.verdict
        self.reason = result.reason
        self.error = "" if result.scored else result.message.replace("\n", " ")[:300]
        self.batch_size = result.batch_size
        self.fault, self.fault_confidence = result.fault, result.fault_confidence
        self.fault_top3 = result.fault_top3 or ()
        self.reference = result.reference
        self.none_prob, self.cut, self.cue = result.none_prob, result.cut, result.cue
        if result.batch_size:
            self.seconds += result.batch_seconds / result.batch_size

    def csv_row(self) -> list[Any]:
        return [
            self.topic,
            "" if self.stamp_ns is None else self.stamp_ns,
            self.bag_time_ns,
            "" if self.score is None else f"{self.score:.7f}",
            self.level,
            self.verdict,
            self.error,
            self.reason,
            self.fault or "",
            "" if self.fault_confidence is None else f"{self.fault_confidence:.4f}",
            "" if self.reference is None else f"{self.reference:.6f}",
            "" if self.none_prob is None else f"{self.none_prob:.5f}",
            int(self.cut),
            *(("",) * len(CUE_COLUMNS) if self.cue is None
              else (f"{getattr(self.cue, c):.5g}" for c in CUE_COLUMNS)),
        ]


def write_frames_csv(rows: list[FrameRow], path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow(r.csv_row())
    return path


def row_cue(row: dict[str, Any]) -> StreamCue | None:
    """The ``StreamCue`` of a row of :func:`read_frames_csv` (None when it has none)."""
    values = [row.get(c) for c in CUE_COLUMNS]
    return None if any(v is None for v in values) else StreamCue(*values)


def read_frames_csv(path: str | Path) -> list[dict[str, Any]]:
    """frames.csv back as dicts (stamp_ns/bag_time_ns int, score and fault_confidence float or None,
    fault, reference, none_prob and the cue columns None when empty, cut a bool; files written before
    those columns read with them as None; :func:`row_cue` gives a row's ``StreamCue``)."""
    out = []
    with Path(path).open(newline="") as f:
        for r in csv.DictReader(f):
            r["stamp_ns"] = int(r["stamp_ns"]) if r["stamp_ns"] else None
            r["bag_time_ns"] = int(r["bag_time_ns"])
            r["score"] = float(r["score"]) if r["score"] else None
            r["fault"] = r.get("fault") or None
            r["fault_confidence"] = float(r["fault_confidence"]) if r.get("fault_confidence") else None
            r["reference"] = float(r["reference"]) if r.get("reference") else None
            r["none_prob"] = float(r["none_prob"]) if r.get("none_prob") else None
            r["cut"] = r.get("cut") == "1"
            for c in CUE_COLUMNS:
                r[c] = float(r[c]) if r.get(c) else None
            out.append(r)
    return out
