"""What the pipeline reports about faults (ROS-free): the fault class of a gated frame, the dominant
fault of a window of frames, the class a ground-truth label names, and a confusion table against labels.

The classes come from the model's fault head (``hirqa_ros.heads``); see docs/faults.md.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from hirqa_ros.decision import Level
from hirqa_ros.heads import FAULT_CLASSES, TYPE_CLASSES, fault_class_of

NO_FAULT = "none"  # the fault class of a frame judged fine


def gated_fault(
    level: Level, ranked: Sequence[tuple[str, float]]
) -> tuple[str, float, tuple[tuple[str, float], ...]]:
    """(fault, fault_confidence, fault_top3) of a gated frame from the head's classes ``ranked`` best first.

    A kept frame (level OK) is ``none``, with the head's probability of ``none``; a dropped frame
    (WARN/ERROR) gets the head's most likely class other than ``none``, with its probability, so a
    rejection always names a kind of fault (a low confidence means the head itself leans to ``none``).
    ``fault_top3`` is the head's own top three, ungated."""
    probs = dict(ranked)
    if Level(level) == Level.OK:
        fault = NO_FAULT
    else:
        fault = next((c for c, _ in ranked if c != NO_FAULT), NO_FAULT)
    return fault, float(probs.get(fault, 0.0)), tuple(ranked[:3])


#: fault-head probability from which it contradicts the score (``head_disagreement``). Measured with
#: scripts/calibrate_disagreement.py on the shipped model: 15 clean 640x480 cuts of the five sample
#: photos and 23 fault types at levels 1, 3, 5 (1050 frames); no clean cut reaches 0.85 for any fault
#: class (highest 0.84), every frame at or above it was degraded, and its named class was right 87.5 %
#: of the time (docs/reliability.md)
CONFIDENT = 0.85


def head_disagreement(level: Level, ranked: Sequence[tuple[str, float]] | None, reason: str = "",
                      confident: float = CONFIDENT) -> tuple[tuple[str, str], ...]:
    """A ``("fault_head_disagrees", text)`` note when the score's level and a confident fault head
    contradict each other: the frame is OK but the head gives one fault class ``confident`` or more,
    or the frame is dropped (WARN/ERROR) by its score while the head gives ``none`` that much.
    Empty for a frame whose level comes from a frame check (``reason``: no content, frozen) and for
    a model without a head."""
    if not ranked or reason:
        return ()
    fault, p = next(((c, q) for c, q in ranked if c != NO_FAULT), (NO_FAULT, 0.0))
    p_none = float(dict(ranked).get(NO_FAULT, 0.0))
    if Level(level) == Level.OK and p >= confident:
        text = f"score says OK but the fault head says {fault} ({p:.2f})"
    elif Level(level) != Level.OK and p_none >= confident:
        text = f"score says {Level(level).name} but the fault head says no fault ({p_none:.2f})"
    else:
        return ()
    return (("fault_head_disagrees", text),)


def dominant_fault(faults: Iterable[str | None]) -> tuple[str, float] | None:
    """The most frequent class among ``faults`` (e.g. the rejected frames' classes of a window; empty
    and None entries are ignored) and its share of the classified ones; None when none is classified.
    Ties go to the class seen most recently."""
    seen = [f for f in faults if f]
    if not seen:
        return None
    counts = Counter(seen)
    best = max(counts.values())
    fault = next(f for f in reversed(seen) if counts[f] == best)
    return fault, best / len(seen)


def label_fault_class(label: str | None, keep_labels: Iterable[str] = ()) -> str | None:
    """The fault class a ground-truth label names: itself when it is a class name (``haze``,
    ``motion_blur``), the class of a distortion type (``defocus`` -> ``blur``, ``shake`` ->
    ``motion_blur``), ``none`` for a keep label; None for a label that names no fault type."""
    if label is None:
        return None
    if label in keep_labels:
        return NO_FAULT
    if label in FAULT_CLASSES:
        return label
    if label in TYPE_CLASSES:
        return fault_class_of(label)
    return None


def fault_confusion(rows: Iterable[Any], labels: Any, topic: str | None = None) -> dict[str, Any] | None:
    """Fault class of the frames against their labels (``bag.labels.Labels``), or None when no label
    names a fault type (nothing to compare) or no frame has a fault class (model without a head).

    Rows are objects with ``topic``, ``stamp_ns``, ``bag_time_ns``, ``verdict`` and ``fault``
    (``bag.frames.FrameRow``); ``topic`` None pools every topic. ``confusion[true][predicted]`` counts
    frames; ``accuracy`` is per true class; ``rejected_accuracy`` is the share of rejected frames with
    a fault label whose class is right (why the gate dropped it)."""
    keep = {n for n in labels.all_labels if not labels.should_drop(n)}
    mapped = {n: label_fault_class(n, keep) for n in labels.all_labels}
    if not any(c not in (None, NO_FAULT) for c in mapped.values()):
        return None
    confusion: dict[str, Counter] = {}
    unmapped: Counter = Counter()
    right_rejected = n_rejected = 0
    for r in rows:
        if r.fault is None or (topic is not None and r.topic != topic):
            continue
        t = r.stamp_ns if labels.clock == "stamp" else r.bag_time_ns
        name = labels.label_at(r.topic, t) if t is not None else None
        if name is None:
            continue
        truth = mapped.get(name)
        if truth is None:
            unmapped[name] += 1
            continue
        confusion.setdefault(truth, Counter())[r.fault] += 1
        if r.verdict == "drop" and truth != NO_FAULT:
            n_rejected += 1
            right_rejected += r.fault == truth
    if not confusion:
        return None
    order = [c for c in FAULT_CLASSES if c in confusion] + sorted(set(confusion) - set(FAULT_CLASSES))
    predicted = {p for row in confusion.values() for p in row}
    columns = [c for c in FAULT_CLASSES if c in predicted] + sorted(predicted - set(FAULT_CLASSES))
    return {
        "label_classes": {n: c for n, c in mapped.items() if c is not None},
        "unmapped_labels": dict(unmapped),
        "confusion": {t: {p: int(confusion[t][p]) for p in columns if confusion[t][p]} for t in order},
        "accuracy": {t: confusion[t][t] / sum(confusion[t].values()) for t in order},
        "frames": {t: int(sum(confusion[t].values())) for t in order},
        "rejected_with_fault_label": n_rejected,
        "rejected_accuracy": right_rejected / n_rejected if n_rejected else None,
    }


def format_confusion(conf: dict[str, Any]) -> str:
    """The confusion table of :func:`fault_confusion` as aligned text (rows: label's class; columns:
    reported fault)."""
    rows = list(conf["confusion"])
    cols = sorted({p for d in conf["confusion"].values() for p in d},
                  key=lambda c: (FAULT_CLASSES.index(c) if c in FAULT_CLASSES else len(FAULT_CLASSES), c))
    corner = "label \\ fault"
    w0 = max(len(corner), *(len(r) for r in rows))
    widths = [max(len(c), 5) for c in cols]
    lines = ["  ".join([f"{corner:<{w0}}", *(f"{c:>{w}}" for c, w in zip(cols, widths)), f"{'right':>6}"])]
    for r in rows:
        cells = [f"{conf['confusion'][r].get(c, 0):>{w}}" for c, w in zip(cols, widths)]
        lines.append("  ".join([f"{r:<{w0}}", *cells, f"{conf['accuracy'][r]:>6.0%}"]))
    return "\n".join(lines)
