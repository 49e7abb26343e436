"""Scores and levels of labelled frames against their labels: precision/recall at the thresholds,
AUROC, a threshold for a target false-reject rate, and per-segment detection delays.

Rows are any objects with ``topic``, ``stamp_ns``, ``bag_time_ns``, ``score``, ``level`` and
``verdict`` (``bag.frames.FrameRow``); labels are ``bag.labels.Labels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.evaluation.metrics import auroc_separation, threshold_for_false_reject_rate


def prf(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Precision, recall, F1, confusion counts and false-reject rate of boolean predictions."""
    tp = int(np.sum(pred & truth))
    fp = int(np.sum(pred & ~truth))
    fn = int(np.sum(~pred & truth))
    tn = int(np.sum(~pred & ~truth))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision and recall
        else (0.0 if tp + fp + fn else None)
    )
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "false_reject_rate": fp / (fp + tn) if fp + tn else None,
    }


def label_metrics(
    rows: list, labels: Any, thresholds: Thresholds, target_frr: float, topic: str | None
) -> dict[str, Any]:
    """Metrics of the scored frames of ``rows`` against ``labels`` (``topic`` None: rows of all topics)."""
    items = []  # (row, t, label, should_drop)
    for r in rows:
        if r.score is None:
            continue
        t = r.stamp_ns if labels.clock == "stamp" else r.bag_time_ns
        if t is None:
            continue
        name = labels.label_at(r.topic, t)
        if name is not None:
            items.append((r, t, name, labels.should_drop(name)))
    out: dict[str, Any] = {"frames_labelled": len(items)}
    if not items:
        return out
    scores = np.array([it[0].score for it in items])
    truth = np.array([it[3] for it in items], dtype=bool)
    lv = np.array([it[0].level for it in items])
    keep_s, drop_s = scores[~truth], scores[truth]
    out["frames_should_drop"] = int(truth.sum())
    out["auroc"] = auroc_separation(keep_s, drop_s) if keep_s.size and drop_s.size else None
    out["at_thresholds"] = {
        "warn": {"threshold": thresholds.warn, **prf(lv != Level.OK.name, truth)},
        "error": {"threshold": thresholds.error, **prf(lv == Level.ERROR.name, truth)},
    }
    per_label: dict[str, Any] = {}
    for name in sorted({it[2] for it in items}):
        sel = np.array([it[2] == name for it in items])
        per_label[name] = {
            "frames": int(sel.sum()),
            "should_drop": labels.should_drop(name),
            "rejected": int(np.sum(lv[sel] != Level.OK.name)),
            "rejection_rate": float(np.mean(lv[sel] != Level.OK.name)),
            "mean_score": float(scores[sel].mean()),
        }
    out["per_label"] = per_label
    if keep_s.size:
        thr = threshold_for_false_reject_rate(keep_s, target_frr)
        out["threshold_for_target_frr"] = {
            "target_false_reject_rate": target_frr,
            "threshold": thr,
            "false_reject_rate": float(np.mean(keep_s < thr)),
            "recall": float(np.mean(drop_s < thr)) if drop_s.size else None,
            "keep_frames": int(keep_s.size),
        }
    if topic is not None:
        out["segments"] = segment_delays(items, labels, topic)
    return out


def segment_delays(items: list, labels: Any, topic: str) -> list[dict[str, Any]]:
    """Per labelled segment of ``topic``: frames, rejections, and the delay to the first rejection."""
    segs = []
    origin = labels.origin_ns or 0
    for s in labels.segments_for(topic):
        inside = sorted(
            ((t, r) for r, t, _, _ in items if s.contains(t) and labels.label_at(topic, t) == s.label),
            key=lambda x: x[0],
        )
        first = next(((i, t) for i, (t, r) in enumerate(inside) if r.verdict == "drop"), None)
        segs.append(
            {
                "label": s.label,
                "should_drop": labels.should_drop(s.label),
                "start_s": (s.start_ns - origin) / 1e9,
                "end_s": (s.end_ns - origin) / 1e9,
                "frames": len(inside),
                "rejected": sum(r.verdict == "drop" for _, r in inside),
                "detected": first is not None,
                "detection_delay_s": (first[1] - s.start_ns) / 1e9 if first else None,
                "detection_delay_frames": first[0] if first else None,
            }
        )
    return segs
