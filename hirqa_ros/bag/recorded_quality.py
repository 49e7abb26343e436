"""Read the node's per-frame ``B_quality`` messages back from a bag (a `ros2 bag record` of the live
node, `bag_replay.launch.py`'s recording, or ``hirqa bag-eval --write-bag``'s copy) through the
consumer parser ``hirqa_ros.quality_msg.parse``, and summarize them per camera."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from hirqa_ros.bag.quality import DIAGNOSTIC_ARRAY
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.files import atomic_write_bytes
from hirqa_ros.quality_msg import QualityMessageError, QualityReport, parse

CSV_COLUMNS = ("topic", "bag_time_ns", "stamp_ns", "frame_id", "frame", "score", "smoothed_score", "level",
               "verdict", "latency_ms", "inference_ms", "reason", "fault", "schema")


@dataclass
class RecordedQuality:
    """Every readable quality message of a bag, and what could not be read (with the reason)."""

    rows: list[tuple[str, int, QualityReport]] = field(default_factory=list)  # (topic, bag time, report)
    refused: Counter = field(default_factory=Counter)  # (topic, reason) -> messages
    problems: list[str] = field(default_factory=list)  # the bag reader's

    def summary(self) -> dict[str, dict]:
        """Per topic: messages, mean score, fraction kept, count per level, schemas, latency p50. The
        statistics are over the scored frames' messages: an ``inherited`` one (``gate_mode: state``)
        repeats an earlier frame's verdict and is only counted (``inherited_messages``)."""
        by: dict[str, list[QualityReport]] = defaultdict(list)
        for topic, _, r in self.rows:
            by[topic].append(r)
        out = {}
        for topic, every in sorted(by.items()):
            reports = [r for r in every if not r.inherited] or every
            lat = sorted(r.latency_ms for r in reports if r.latency_ms is not None)
            out[topic] = {
                "messages": len(every),
                "inherited_messages": sum(r.inherited for r in every),
                "mean_score": sum(r.score for r in reports) / len(reports),
                "kept_fraction": sum(r.accepted for r in reports) / len(reports),
                "levels": dict(Counter(r.level.name for r in reports)),
                "schemas": sorted({r.schema for r in reports}),
                "latency_p50_ms": lat[len(lat) // 2] if lat else None,
            }
        return out


def quality_topics(reader: BagReader) -> list[str]:
    """The DiagnosticArray topics that can hold quality messages (everything but /diagnostics)."""
    health = ("/diagnostics", "/diagnostics_agg")
    return sorted(t for t, info in reader.topics.items()
                  if info.msgtype == DIAGNOSTIC_ARRAY and t not in health)


def read_recorded_quality(bag: str | Path, topics: list[str] | None = None) -> RecordedQuality:
    """Parse every message of ``topics`` (default: :func:`quality_topics`) in bag order. A message that
    is not a hirqa quality message is counted under its reason, never guessed at."""
    out = RecordedQuality()
    with BagReader(bag) as reader:
        wanted = quality_topics(reader) if topics is None else topics
        missing = [t for t in wanted if t not in reader.topics]
        out.problems += [f"topic {t} is not in the bag" for t in missing]
        for m in reader.messages([t for t in wanted if t not in missing]):
            try:
                out.rows.append((m.topic, m.bag_time_ns, parse(reader.deserialize(m))))
            except QualityMessageError as exc:
                out.refused[(m.topic, str(exc))] += 1
            except Exception as exc:  # undecodable bytes
                out.refused[(m.topic, f"cannot deserialize: {type(exc).__name__}: {exc}")] += 1
        out.problems += reader.problems
    return out


def write_csv(rows: list[tuple[str, int, QualityReport]], path: Path) -> Path:
    """One line per quality message (:data:`CSV_COLUMNS`); empty cells where the message had none."""
    buf = io.StringIO()  # written whole at the end, atomically: never half a CSV
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for topic, t, r in rows:
        w.writerow([topic, t, r.stamp_ns, r.frame_id, r.frame, f"{r.score:.6f}",
                    f"{r.smoothed_score:.6f}", r.level.name, r.verdict,
                    "" if r.latency_ms is None else r.latency_ms,
                    "" if r.inference_ms is None else r.inference_ms, r.reason, r.fault or "", r.schema])
    atomic_write_bytes(path, buf.getvalue().encode())
    return path
