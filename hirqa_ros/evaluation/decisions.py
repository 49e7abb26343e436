"""Decision metrics of a gate (ROS-free): what share of each fault it rejects, how many clean frames it
rejects, and, for streams, how many frames it takes to reject a fault and to accept again after it.

Inputs are :class:`Decided` frames: a label category (``fault``: should be dropped, ``clean``: should
be kept, ``other``: neither, e.g. a fault's faint onset; left out of the pooled numbers) and the
level the gate gave (``OK``/``WARN``/``ERROR``). ``rejected`` means WARN or worse.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FAULT, CLEAN, OTHER = "fault", "clean", "other"
CLEAN_NAMES = frozenset({"clear", "ok", "good", "keep", "clean", "pristine", "none"})


@dataclass(frozen=True)
class Decided:
    """One decided frame: ``label`` (fault type or clean name), its ``category`` and the gate's ``level``."""

    label: str
    category: str
    level: str
    reason: str = ""
    topic: str = ""
    t_ns: int = 0

    @property
    def rejected(self) -> bool:
        return self.level in ("WARN", "ERROR")


def category(label: str | None, should_drop: bool | None, default_label: str | None = None) -> str:
    """``fault`` for a label that should be dropped, ``clean`` for the default/keep names, else ``other``."""
    if label is None:
        return OTHER
    if should_drop:
        return FAULT
    if label == default_label or label.lower() in CLEAN_NAMES:
        return CLEAN
    return OTHER


def _share(flags: Iterable[bool]) -> float | None:
    a = np.fromiter(flags, dtype=bool)
    return float(a.mean()) if a.size else None


def decision_metrics(frames: Sequence[Decided]) -> dict[str, Any]:
    """Per fault type and pooled: share rejected (WARN or worse) and ERROR, drop recall over all faulty
    frames, clean false-reject rate, balanced accuracy, and the rejections by reason."""
    faulty = [f for f in frames if f.category == FAULT]
    clean = [f for f in frames if f.category == CLEAN]
    recall = _share(f.rejected for f in faulty)
    frr = _share(f.rejected for f in clean)
    per_type: dict[str, Any] = {}
    groups: dict[str, list[Decided]] = defaultdict(list)
    for f in frames:
        groups[f.label].append(f)
    for label in sorted(groups):
        g = groups[label]
        per_type[label] = {"category": g[0].category, "frames": len(g),
                           "rejected": _share(f.rejected for f in g),
                           "error": _share(f.level == "ERROR" for f in g)}
    reasons: dict[str, int] = defaultdict(int)
    for f in frames:
        if f.rejected:
            reasons[f.reason or "score"] += 1
    return {
        "faulty_frames": len(faulty),
        "clean_frames": len(clean),
        "drop_recall": recall,
        "error_recall": _share(f.level == "ERROR" for f in faulty),
        "clean_false_reject": frr,
        "clean_error": _share(f.level == "ERROR" for f in clean),
        "balanced_accuracy": (recall + 1.0 - frr) / 2.0 if recall is not None and frr is not None else None,
        "per_type": per_type,
        "rejected_by_reason": dict(sorted(reasons.items())),
    }


def stream_delays(frames: Sequence[Decided]) -> dict[str, Any]:
    """Detection delay (frames from a fault stretch's first frame to its first rejected one) and recovery
    delay (frames from the first frame after it, when that one is clean, to the first accepted clean
    one) over the fault stretches (runs of one fault label) of ONE stream in time order."""
    detect: list[int | None] = []
    recover: list[int | None] = []
    i, n = 0, len(frames)
    while i < n:
        if frames[i].category != FAULT:
            i += 1
            continue
        j = i
        while j < n and frames[j].label == frames[i].label:
            j += 1
        detect.append(next((k - i for k in range(i, j) if frames[k].rejected), None))
        if j < n and frames[j].category == CLEAN:
            k = j
            while k < n and frames[k].category == CLEAN and frames[k].rejected:
                k += 1
            recover.append(k - j if k < n and frames[k].category == CLEAN else None)
        i = j
    return {"detection_delay_frames": _delay_stats(detect), "recovery_delay_frames": _delay_stats(recover)}


def _delay_stats(values: list[int | None]) -> dict[str, Any]:
    done = [v for v in values if v is not None]
    return {"stretches": len(values), "reached": len(done),
            "mean": float(np.mean(done)) if done else None,
            "median": float(np.median(done)) if done else None,
            "max": int(max(done)) if done else None, "each": values}


def merge_delays(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Pool the :func:`stream_delays` of several streams."""
    out = {}
    parts = list(parts)
    for key in ("detection_delay_frames", "recovery_delay_frames"):
        out[key] = _delay_stats([v for p in parts for v in p[key]["each"]])
    return out


def clean_after_events(frames: Sequence[Decided], events_ns: Sequence[int], window_ns: int) -> dict[str, Any]:
    """Share of clean frames rejected within ``window_ns`` after any of ``events_ns`` (e.g. scene cuts)."""
    near = [f for f in frames if f.category == CLEAN and any(0 <= f.t_ns - e < window_ns for e in events_ns)]
    return {"clean_frames": len(near), "clean_false_reject": _share(f.rejected for f in near)}


def format_decisions(d: dict[str, Any], indent: str = "  ") -> str:
    """A short text table: pooled numbers, then one line per label."""
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    lines = [f"{indent}faulty frames rejected {pct(d['drop_recall'])} (ERROR {pct(d['error_recall'])}) of "
             f"{d['faulty_frames']}; clean frames rejected {pct(d['clean_false_reject'])} of "
             f"{d['clean_frames']}; balanced accuracy {pct(d['balanced_accuracy'])}"]
    delays = (("detection_delay_frames", "detection delay"), ("recovery_delay_frames", "recovery delay"))
    for key, name in delays:
        s = d.get(key)
        if s and s["stretches"]:
            lines.append(f"{indent}{name}: median {s['median']} frames, max {s['max']} "
                         f"({s['reached']}/{s['stretches']} stretches)")
    for label, t in d["per_type"].items():
        lines.append(f"{indent}  {label:<14} {t['category']:<6} {t['frames']:>6} frames  rejected "
                     f"{pct(t['rejected']):>8}  ERROR {pct(t['error']):>8}")
    return "\n".join(lines)


def protocol_decisions(ps: Any, name: str, thresholds: Any) -> dict[str, Any]:
    """Decision metrics of score_fn ``name`` of a synthetic protocol run (``evaluation.synthetic``) at
    ``thresholds``: keep frames (pristine once per view, and the keep levels) are ``clean``, frames at
    level >= DROP_MIN_LEVEL are faults labelled by their type, the levels between are left out."""
    from hirqa_ros.evaluation.synthetic import DROP_MIN_LEVEL, KEEP_LEVELS

    arr = ps.scores[name]
    frames = []
    for v in range(arr.shape[0]):
        for k, typ in enumerate(ps.types):
            for lv in range(arr.shape[2]):
                if lv == 0 and k > 0:
                    continue  # the pristine view counts once
                cat = FAULT if lv >= DROP_MIN_LEVEL else CLEAN if lv in KEEP_LEVELS else OTHER
                label = typ if cat == FAULT else "clean" if cat == CLEAN else f"{typ} (level {lv})"
                frames.append(Decided(label, cat, thresholds.level(float(arr[v, k, lv])).name))
    out = decision_metrics([f for f in frames if f.category != OTHER])
    out["thresholds"] = {"warn": thresholds.warn, "error": thresholds.error}
    return out
