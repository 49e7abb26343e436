"""``summary.json`` of a bag evaluation: per-topic counts, levels, score statistics and the fault
classes of rejected frames, overall speed, and the label metrics (with a fault-class confusion table
when the labels name fault types) and decision metrics (``decisions``: share of each fault rejected,
clean frames rejected, detection and recovery delays) when labels were given."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from hirqa_ros.bag.frames import FrameRow
from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.evaluation.decisions import Decided, category, decision_metrics, merge_delays, stream_delays
from hirqa_ros.evaluation.label_metrics import label_metrics
from hirqa_ros.faults import dominant_fault, fault_confusion

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


def score_stats(scores: np.ndarray) -> dict[str, float] | None:
    """min, percentiles, max and mean of ``scores`` (None when empty)."""
    if scores.size == 0:
        return None
    d = {"min": float(scores.min())}
    d.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(scores, PERCENTILES))})
    d.update({"max": float(scores.max()), "mean": float(scores.mean())})
    return d


def topic_summary(rows: list[FrameRow]) -> dict[str, Any]:
    """Counts, levels, rejections, score statistics and speed of one topic's rows."""
    scored = [r for r in rows if r.score is not None]
    scores = np.array([r.score for r in scored], dtype=np.float64)
    rejected = sum(r.verdict == "drop" for r in scored)
    seconds = sum(r.seconds for r in rows)
    levels = {lv.name: sum(r.level == lv.name for r in scored) for lv in (Level.OK, Level.WARN, Level.ERROR)}
    errors = [r for r in rows if r.verdict == "error"]
    bag_times = [r.bag_time_ns for r in rows]
    faults = [r.fault for r in scored if r.verdict == "drop" and r.fault]
    dominant = dominant_fault(faults)
    return {
        "frames": len(rows),
        "scored": len(scored),
        "errors": len(errors),
        "errors_by_reason": dict(Counter(r.reason or "unknown" for r in errors)),
        "first_errors": sorted({r.error for r in errors})[:5],
        "rejected": rejected,
        "rejected_fraction": rejected / len(scored) if scored else None,
        "levels": levels,
        "rejected_by_fault": dict(Counter(faults).most_common()),  # empty without a fault head
        "dominant_fault": dominant[0] if dominant else None,
        "score": score_stats(scores),
        "bag_duration_s": (max(bag_times) - min(bag_times)) / 1e9 if bag_times else 0.0,
        "wall_time_s": seconds,
        "frames_per_s": len(scored) / seconds if seconds > 0 else None,
    }


def decided_rows(rows: list[FrameRow], labels: Any, topic: str | None = None) -> list[Decided]:
    """The scored rows (of ``topic``, None: all) with their label category, in time order per topic."""
    out = []
    for r in rows:
        t = r.stamp_ns if labels.clock == "stamp" else r.bag_time_ns
        if r.score is None or t is None or (topic is not None and r.topic != topic):
            continue
        name = labels.label_at(r.topic, t)
        out.append(Decided(name or "", category(name, labels.should_drop(name), labels.default_label),
                           r.level, r.reason, r.topic, t))
    return sorted(out, key=lambda d: (d.topic, d.t_ns))


def bag_decisions(rows: list[FrameRow], labels: Any,
                  topics: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(per-topic, pooled) decision metrics with stream delays (``evaluation.decisions``)."""
    per_topic, delays = {}, []
    for t in topics:
        frames = decided_rows(rows, labels, t)
        d = stream_delays(frames)
        delays.append(d)
        per_topic[t] = {**decision_metrics(frames), **d}
    pooled = {**decision_metrics(decided_rows(rows, labels)), **merge_delays(delays)}
    return per_topic, pooled


def build_summary(
    rows: list[FrameRow],
    topics: list[str],
    reader: Any,
    scorer: Any,
    thresholds: Thresholds,
    th_source: str,
    smoothing: float,
    wall: float,
    labels: Any,
    target_frr: float,
    problems: list[str],
    batch: int = 8,
    min_side: int | None = None,
) -> dict[str, Any]:
    """The summary of one evaluation (``reader``: the bag's ``BagReader``; ``labels``: ``Labels`` or None)."""
    by_topic: dict[str, list[FrameRow]] = defaultdict(list)
    for r in rows:
        by_topic[r.topic].append(r)
    bag_times = [r.bag_time_ns for r in rows]
    duration = (max(bag_times) - min(bag_times)) / 1e9 if bag_times else 0.0
    n_scored = sum(r.score is not None for r in rows)
    summary: dict[str, Any] = {
        "bag": str(reader.path),
        "model": str(getattr(scorer, "model_dir", "") or ""),
        "backend": str(getattr(scorer, "backend", "")),
        "input_policy": str(getattr(scorer, "input_policy", "")),
        "batch": batch,
        "thresholds": {"warn": thresholds.warn, "error": thresholds.error, "source": th_source},
        "smoothing": smoothing,
        "min_image_side": min_side,
        "overall": {
            "topics": len(topics),
            "frames": len(rows),
            "scored": n_scored,
            "errors": sum(r.verdict == "error" for r in rows),
            "bag_duration_s": duration,
            "wall_time_s": wall,  # reading + decoding + scoring (model loading excluded: setup_time_s)
            "frames_per_s": n_scored / wall if wall > 0 else None,
            "real_time_factor": duration / wall if wall > 0 and duration > 0 else None,
        },
        "topics": {
            t: {"type": reader.topics[t].msgtype, **topic_summary(by_topic.get(t, []))} for t in topics
        },
    }
    if labels is not None:
        summary["labels"] = {
            "file": labels.source,
            "clock": labels.clock,
            "drop_labels": sorted(labels.drop_set),
            "default_label": labels.default_label,
            "target_false_reject_rate": target_frr,
            "notes": labels.notes,
        }
        for t in topics:
            summary["topics"][t]["labels"] = label_metrics(
                by_topic.get(t, []), labels, thresholds, target_frr, t
            )
            confusion = fault_confusion(by_topic.get(t, []), labels, t)
            if confusion is not None:
                summary["topics"][t]["labels"]["fault_confusion"] = confusion
        per_topic, pooled = bag_decisions(rows, labels, topics)
        for t in topics:
            summary["topics"][t]["decisions"] = per_topic[t]
        summary["decisions"] = pooled
        summary["labels"]["all_topics"] = label_metrics(rows, labels, thresholds, target_frr, None)
        confusion = fault_confusion(rows, labels, None)
        if confusion is not None:
            summary["labels"]["all_topics"]["fault_confusion"] = confusion
    return summary
