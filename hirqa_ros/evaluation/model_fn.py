"""The model's score_fn for the evaluation protocols: every image judged through the pipeline
(``pipeline.Monitor.judge``: alone, as the first frame of a camera), so the evaluation scores and names
faults exactly as the doors publish them (``hirqa eval``, the release gate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hirqa_ros.pipeline import Monitor
from hirqa_ros.reference import ReferenceParams


def evaluation_monitor(scorer: Any, **gate: Any) -> Monitor:
    """A :class:`Monitor` for images judged one by one: the card's thresholds (unless ``thresholds`` is
    given), no smoothing and no reference gate (a frame judged alone has no history), one pipeline call
    per protocol batch (the scorer splits it for its backend)."""
    gate.setdefault("reference", ReferenceParams(relative=False))
    return Monitor(scorer, batch_size=None, **gate)


def pipeline_score_fn(monitor: Monitor):
    """score_fn(frames) -> scores (N,) or, with a fault head, ``(scores, probabilities (N, C), published
    (N,))``: the head's probabilities over ``monitor.fault_classes`` and the index of the fault class a
    door publishes (``faults.gated_fault`` of the frame's level and the head). A frame the pipeline
    refuses (too small, inference error) raises ValueError: a protocol image must be scorable."""
    classes = monitor.fault_classes

    def fn(frames: Sequence[np.ndarray]):
        results = monitor.judge(frames)
        bad = next((r for r in results if not r.scored), None)
        if bad is not None:
            raise ValueError(f"the pipeline refused a protocol image ({bad.reason}: {bad.message})")
        scores = np.array([r.score for r in results], np.float64)
        if classes is None or any(r.fault_ranked is None for r in results):
            return scores
        probs = np.array([[dict(r.fault_ranked)[c] for c in classes] for r in results], np.float32)
        published = np.array([classes.index(r.fault) for r in results], np.int64)
        return scores, probs, published

    return fn
