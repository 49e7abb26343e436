"""The per-frame pipeline shared by the node, ``hirqa bag-eval`` and ``hirqa score`` (ROS-free).

A :class:`CameraMonitor` per stream runs the frame checks (an ordered list of small functions),
notices resolution changes and gates scores (thresholds and smoothing, ``decision.FrameGate``);
:func:`score_frames` scores the admitted frames in batches (count and finite checks, one by one
when a batch fails). Every frame ends as one :class:`FrameResult`.

Order per frame: ``check`` (in stream order) -> :func:`score_frames` -> ``decide`` (in the same
order). :func:`run_frames` does the last two for a list of checked frames.

Fault class (models with a fault head): ``faults.gated_fault`` of the frame's level and the head's
probabilities (``none`` for a kept frame, the most likely fault for a dropped one).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hirqa_ros.constants import DEFAULT_MIN_IMAGE_SIDE
from hirqa_ros.decision import VERDICTS, FrameGate, Level, Thresholds
from hirqa_ros.faults import gated_fault
from hirqa_ros.quality_msg import status_message

log = logging.getLogger(__name__)

REFUSED = "error"  # verdict of a frame that got no score


@dataclass
class FrameResult:
    """What the pipeline says about one frame.

    ``level``/``score``/``smoothed`` are None for a refused frame; ``reason`` is empty for a
    scored frame, else why it was refused (``decode_error``, ``too_small``, ``inference_error``).
    ``notes`` are oddities of a scored frame, ``(kind, text)`` (``zero_stamp``,
    ``resolution_change``). The fault fields (``faults.gated_fault``) are None for a refused frame and
    for a model without a fault head.
    """

    level: Level | None
    score: float | None
    smoothed: float | None = None
    reason: str = ""
    message: str = ""
    notes: tuple[tuple[str, str], ...] = ()
    batch_size: int = 0
    batch_seconds: float = 0.0  # inference time of the whole batch this frame was in
    fault: str | None = None
    fault_confidence: float | None = None
    fault_top3: tuple[tuple[str, float], ...] | None = None

    @property
    def scored(self) -> bool:
        return self.score is not None and self.level is not None

    @property
    def verdict(self) -> str:
        """keep / drop, or ``error`` for a frame without a level."""
        return REFUSED if self.level is None else VERDICTS[self.level]


def refused(reason: str, message: str, notes: tuple[tuple[str, str], ...] = ()) -> FrameResult:
    """The result of a frame that gets no score."""
    return FrameResult(None, None, reason=reason, message=message, notes=notes)


@dataclass(frozen=True)
class Refusal:
    """A frame check's verdict on a frame it refuses."""

    reason: str
    message: str


#: a frame check: (monitor, HxWx3 uint8 RGB) -> Refusal, or None to let the frame through
FrameCheck = Callable[["CameraMonitor", np.ndarray], "Refusal | None"]


def check_size(monitor: CameraMonitor, rgb: np.ndarray) -> Refusal | None:
    """Refuse frames whose shorter side is below ``monitor.min_side``."""
    h, w = rgb.shape[:2]
    if min(h, w) < monitor.min_side:
        return Refusal("too_small", f"{w}x{h} frame is below min_image_side={monitor.min_side}")
    return None


def default_checks() -> list[FrameCheck]:
    """The frame checks of a new monitor, in order (a fresh list: checks may keep per-camera state)."""
    return [check_size]


@dataclass
class Checked:
    """A frame after the checks: ``result`` set when refused, else waiting for its score."""

    monitor: CameraMonitor
    rgb: np.ndarray | None
    result: FrameResult | None = None
    notes: tuple[tuple[str, str], ...] = ()
    restart: bool = False  # the resolution changed: smoothing restarts with this frame


class CameraMonitor:
    """One camera stream: frame checks, resolution changes and the gate (thresholds, smoothing)."""

    def __init__(
        self,
        name: str,
        thresholds: Thresholds,
        smoothing: float = 0.0,
        min_side: int = DEFAULT_MIN_IMAGE_SIDE,
        checks: Sequence[FrameCheck] | None = None,
    ) -> None:
        self.name = name
        self.gate = FrameGate(thresholds, smoothing)
        self.min_side = int(min_side)
        self.checks = list(default_checks() if checks is None else checks)
        self.resolution: tuple[int, int] | None = None  # (height, width) of the last admitted frame

    @property
    def thresholds(self) -> Thresholds:
        return self.gate.thresholds

    @thresholds.setter
    def thresholds(self, value: Thresholds) -> None:
        self.gate.thresholds = value

    @property
    def smoothing(self) -> float:
        return self.gate.smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self.gate.smoothing = float(value)

    def check(self, rgb: np.ndarray, stamp_ns: int | None = None) -> Checked:
        """Run the frame checks on a decoded frame; call in stream order."""
        for check in self.checks:
            refusal = check(self, rgb)
            if refusal is not None:
                return Checked(self, None, refused(refusal.reason, refusal.message))
        notes = []
        if stamp_ns == 0:
            notes.append(("zero_stamp", "frame has a zero header stamp (scored, but consumers cannot "
                                        "time-sync it; check the camera driver or use_sim_time)"))
        h, w = rgb.shape[:2]
        restart = self.resolution is not None and self.resolution != (h, w)
        if restart:
            old = self.resolution
            notes.append(("resolution_change",
                          f"resolution changed from {old[1]}x{old[0]} to {w}x{h} (smoothing restarted)"))
        self.resolution = (h, w)
        return Checked(self, rgb, notes=tuple(notes), restart=restart)

    def refuse(self, reason: str, message: str) -> Checked:
        """A frame refused before the checks (e.g. it could not be decoded)."""
        return Checked(self, None, refused(reason, message))

    def decide(self, checked: Checked, outcome: ScoreOutcome) -> FrameResult:
        """Gate one scored frame; call in the order of ``check``."""
        if checked.restart:
            self.gate.reset()
        if outcome.score is None:
            result = refused("inference_error", outcome.error, checked.notes)
        else:
            level, smoothed = self.gate.update(outcome.score)
            result = FrameResult(level, outcome.score, float(smoothed),
                                 message=status_message(level, outcome.score), notes=checked.notes)
        result.batch_size, result.batch_seconds = outcome.batch_size, outcome.batch_seconds
        if result.level is not None and outcome.fault_ranked:
            fault = gated_fault(result.level, outcome.fault_ranked)
            result.fault, result.fault_confidence, result.fault_top3 = fault
        return result


@dataclass(frozen=True)
class ScoreOutcome:
    """The score of one frame, or why there is none; ``fault_ranked``: the fault head's classes with
    their probabilities, best first (None without a fault head)."""

    score: float | None
    error: str = ""
    batch_size: int = 0
    batch_seconds: float = 0.0
    fault_ranked: tuple[tuple[str, float], ...] | None = None


def score_frames(
    scorer: Any, frames: Sequence[np.ndarray], batch_size: int | None = None
) -> list[ScoreOutcome]:
    """Score ``frames`` in calls of at most ``batch_size`` (None: one call); a failing call is
    retried frame by frame, so one bad frame costs only its own score."""
    frames = list(frames)
    step = max(1, int(batch_size)) if batch_size else max(1, len(frames))
    out: list[ScoreOutcome] = []
    for start in range(0, len(frames), step):
        out.extend(_score_batch(scorer, frames[start:start + step]))
    return out


def _score_batch(scorer: Any, frames: list[np.ndarray]) -> list[ScoreOutcome]:
    if not frames:
        return []
    t0 = time.perf_counter()
    ranked: list[Any] = [None] * len(frames)
    try:
        infer = getattr(scorer, "infer", None)
        if infer is None:  # anything with only ``score`` (no embedding, no fault class)
            scores = np.asarray(scorer.score(frames), dtype=np.float64).reshape(-1)
        else:
            inference = infer(frames)
            scores = np.asarray(inference.scores, dtype=np.float64).reshape(-1)
            probs = getattr(inference, "fault_probs", None)
            if probs is not None:
                head = scorer.fault_head
                ranked = head.top(probs, k=len(head.classes))
        if scores.shape[0] != len(frames) or len(ranked) != len(frames):
            raise RuntimeError(f"scorer returned {scores.shape[0]} scores for {len(frames)} frames")
    except Exception as exc:
        if len(frames) == 1:
            return [ScoreOutcome(None, f"inference failed: {type(exc).__name__}: {exc}".replace("\n", " "), 1,
                                 time.perf_counter() - t0)]
        log.warning("a batch of %d frames failed (%s: %s); scoring them one by one", len(frames),
                    type(exc).__name__, exc)
        return [o for f in frames for o in _score_batch(scorer, [f])]
    dt = time.perf_counter() - t0
    n = len(frames)
    return [ScoreOutcome(float(s), batch_size=n, batch_seconds=dt, fault_ranked=r) if math.isfinite(s)
            else ScoreOutcome(None, f"the model returned a non-finite score ({s})", n, dt)
            for s, r in zip(scores, ranked)]


def run_frames(scorer: Any, checked: Sequence[Checked], batch_size: int | None = None) -> list[FrameResult]:
    """Score the admitted frames of ``checked`` and decide each (refused ones keep their result)."""
    todo = [c for c in checked if c.result is None]
    outcomes = iter(score_frames(scorer, [c.rgb for c in todo], batch_size))
    return [c.result if c.result is not None else c.monitor.decide(c, next(outcomes)) for c in checked]
