"""The per-frame pipeline shared by the node, ``hirqa bag-eval`` and ``hirqa score`` (ROS-free).

A :class:`CameraMonitor` per stream runs the frame checks (an ordered list of small functions:
size, then no content / frozen), notices resolution changes and gates scores (thresholds and
smoothing, ``decision.FrameGate``); :func:`score_frames` scores the admitted frames in batches
(count and finite checks, one by one when a batch fails; frames above ``max_pixels`` as the mean
of native-resolution tiles). Every frame ends as one :class:`FrameResult`.

Order per frame: ``check`` (in stream order) -> :func:`score_frames` -> ``decide`` (in the same
order). :func:`run_frames` does the last two for a list of checked frames.

Fault class (models with a fault head): ``faults.gated_fault`` of the frame's level and the head's
probabilities (``none`` for a kept frame, the most likely fault for a dropped one).

Reference gate (``reference.ReferenceGate``, per camera, on the stream clock: the header stamp, else
``clock_s``): a frame the thresholds accept is still WARN, reason ``relative_drop``, when its score falls
more than a margin below the camera's own recent accepted scores.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hirqa_ros.batching import batched
from hirqa_ros.constants import DEFAULT_MIN_IMAGE_SIDE
from hirqa_ros.content import ContentLimits, FrozenDetector, no_content
from hirqa_ros.decision import VERDICTS, FrameGate, Level, Thresholds
from hirqa_ros.faults import gated_fault, head_disagreement
from hirqa_ros.limits import DEFAULT_MAX_PIXELS, score_bounded
from hirqa_ros.quality_msg import status_message
from hirqa_ros.reference import (
    BLOCKY,
    FAULT_HEAD,
    NOISY,
    RELATIVE_DROP,
    SHAKY,
    TOO_DARK,
    VEILED,
    CutDetector,
    ReferenceGate,
    ReferenceParams,
)
from hirqa_ros.refusals import INFERENCE_ERROR, TOO_SMALL
from hirqa_ros.stream_cues import StreamCue, stream_cue

log = logging.getLogger(__name__)

REFUSED = "error"  # verdict of a frame that got no score
CUE_MESSAGES = {TOO_DARK: "too dark: dark and noisy, an underexposed sensor at high gain",
                BLOCKY: "JPEG block artefacts well above the camera's reference",
                NOISY: "noise floor above the limit",
                SHAKY: "the blur changes from frame to frame: a shaking camera",
                VEILED: "the black level rose well above the camera's reference: glare or haze",
                FAULT_HEAD: "the fault head sees a fault in every recent frame"}


@dataclass
class FrameResult:
    """What the pipeline says about one frame.

    ``level``/``score``/``smoothed`` are None for a refused frame; ``reason`` is empty for a
    scored frame, else why it was refused (``refusals.REASONS``: ``decode_error``, ``too_large``,
    ``too_small``, ``inference_error``) or, for a frame that is scored but ERROR whatever its score,
    why (``no_content: black``, ``no_content: white``, ``no_content: uniform``, ``frozen``). ``tiles``
    > 1: the frame was above ``max_pixels`` and scored as the mean of that many native-resolution tiles.
    ``notes`` are oddities of a scored frame, ``(kind, text)`` (``zero_stamp``,
    ``resolution_change``). ``reference``: the camera's reference score the frame was judged against
    (None while there is none or the relative gate is off); ``reason`` ``relative_drop``: the frame
    fell more than the margin below it. The fault fields (``faults.gated_fault``) are None for a
    refused frame and for a model without a fault head.
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
    tiles: int = 1
    reference: float | None = None
    fault_ranked: tuple[tuple[str, float], ...] | None = None  # the head's classes, best first (ungated)
    none_prob: float | None = None  # the fault head's ``none`` probability (None: no head)
    cut: bool = False  # the frame started a new scene (reference.CutDetector)
    cue: StreamCue | None = None  # the frame's classical cues (relative gate on)

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
    """A frame check's verdict on a frame it refuses (``score=False``: no score) or, with
    ``score=True``, on a frame that is still scored but is ERROR whatever its score."""

    reason: str
    message: str
    score: bool = False


#: a frame check: (monitor, HxWx3 uint8 RGB) -> Refusal, or None to let the frame through
FrameCheck = Callable[["CameraMonitor", np.ndarray], "Refusal | None"]


def check_size(monitor: CameraMonitor, rgb: np.ndarray) -> Refusal | None:
    """Refuse frames whose shorter side is below ``monitor.min_side``."""
    h, w = rgb.shape[:2]
    if min(h, w) < monitor.min_side:
        return Refusal(TOO_SMALL, f"{w}x{h} frame is below min_image_side={monitor.min_side}")
    return None


def check_content(monitor: CameraMonitor, rgb: np.ndarray) -> Refusal | None:
    """Frames with no content (black, white, uniform) and frozen streams: ERROR, still scored.

    The frozen detector sees every frame (it tracks the run of identical data); a frame that is
    both frozen and black is reported as black, the more telling of the two (a capped lens
    whose driver clamps black to 0 sends identical frames)."""
    frozen = monitor.frozen.update(rgb, monitor.clock_s)
    reason = no_content(rgb, monitor.content)
    if reason:
        what = reason.split(": ", 1)[1]
        hint = {"black": "lens cap, dark enclosure or dead sensor?", "white": "saturated or blinded?",
                "uniform": "covered lens, fog or a test pattern?"}[what]
        return Refusal(reason, f"no content: {what} frame ({hint})", score=True)
    if frozen:
        return Refusal("frozen", f"frozen: image data unchanged for {monitor.content.frozen_s:g} s or more "
                                 "(stuck driver? a static simulator camera: frozen_timeout_s 0 turns this "
                                 "check off)", score=True)
    return None


def default_checks() -> list[FrameCheck]:
    """The frame checks of a new monitor, in order (a fresh list: checks may keep per-camera state)."""
    return [check_size, check_content]


@dataclass
class Checked:
    """A frame after the checks: ``result`` set when refused, else waiting for its score."""

    monitor: CameraMonitor
    rgb: np.ndarray | None
    result: FrameResult | None = None
    notes: tuple[tuple[str, str], ...] = ()
    restart: bool = False  # the resolution changed: smoothing restarts with this frame
    forced: Refusal | None = None  # scored, but ERROR for this reason (no content, frozen)
    time_s: float | None = None  # the stream clock of the reference gate (header stamp, else clock_s)
    cut: bool = False  # the frame starts a new scene (reference.CutDetector): the reference starts again
    cue: StreamCue | None = None  # the frame's classical cues (``stream_cues``; relative gate on)


class CameraMonitor:
    """One camera stream: frame checks, resolution changes and the gate (thresholds, smoothing)."""

    def __init__(
        self,
        name: str,
        thresholds: Thresholds,
        smoothing: float = 0.0,
        min_side: int = DEFAULT_MIN_IMAGE_SIDE,
        checks: Sequence[FrameCheck] | None = None,
        content: ContentLimits | None = None,
        reference: ReferenceParams | None = None,
    ) -> None:
        self.name = name
        self.gate = FrameGate(thresholds, smoothing)
        self.reference = ReferenceGate(reference or ReferenceParams())
        self.cuts = CutDetector()
        self.min_side = int(min_side)
        self.content = content or ContentLimits()
        self.frozen = FrozenDetector(self.content.frozen_s)
        self.clock_s: float | None = None  # the stream's clock at the frame being checked
        self.last_stamp_ns: int | None = None
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

    def reset(self) -> None:
        """Forget the camera's history over time (smoothing, reference): the node calls it on lifecycle
        transitions."""
        self.gate.reset()
        self.reference.reset()
        self.cuts.reset()

    def check(self, rgb: np.ndarray, stamp_ns: int | None = None, clock_s: float | None = None) -> Checked:
        """Run the frame checks on a decoded frame; call in stream order. ``clock_s``: the stream's
        clock in seconds (receive time, bag time, video time) for the frozen check; None: no clock."""
        self.clock_s = clock_s
        forced = None
        for check in self.checks:
            refusal = check(self, rgb)
            if refusal is not None and not refusal.score:
                return Checked(self, None, refused(refusal.reason, refusal.message))
            if refusal is not None and forced is None:
                forced = refusal
        notes = []
        if stamp_ns == 0:
            notes.append(("zero_stamp", "frame has a zero header stamp (scored, but consumers cannot "
                                        "time-sync it; check the camera driver or use_sim_time)"))
        elif stamp_ns is not None and (stamp_ns < 0 or (self.last_stamp_ns or 0) > stamp_ns):
            what = "negative" if stamp_ns < 0 else "older than the previous frame's"
            notes.append(("stamp_backwards", f"frame's header stamp {stamp_ns} ns is {what} (scored; "
                                             "check the camera driver's clock or a bag loop)"))
        if stamp_ns:
            self.last_stamp_ns = stamp_ns
        h, w = rgb.shape[:2]
        restart = self.resolution is not None and self.resolution != (h, w)
        if restart:
            old = self.resolution
            notes.append(("resolution_change",
                          f"resolution changed from {old[1]}x{old[0]} to {w}x{h} (smoothing restarted)"))
        self.resolution = (h, w)
        time_s = stamp_ns / 1e9 if stamp_ns and stamp_ns > 0 else clock_s
        p = self.reference.params
        cut = p.relative and p.cut_corr > -1.0 and self.cuts.update(rgb, p.cut_corr)
        cue = stream_cue(rgb) if p.relative else None
        return Checked(self, rgb, notes=tuple(notes), restart=restart, forced=forced, time_s=time_s, cut=cut,
                       cue=cue)

    def refuse(self, reason: str, message: str) -> Checked:
        """A frame refused before the checks (e.g. it could not be decoded)."""
        return Checked(self, None, refused(reason, message))

    def _gate(self, checked: Checked, outcome: ScoreOutcome) -> FrameResult:
        """Thresholds (with smoothing) as the floor, then the reference gate on the smoothed score."""
        level, smoothed = self.gate.update(outcome.score)
        reason, ref = self.reference.update(checked.time_s, float(smoothed), level == Level.OK,
                                            outcome.none_prob, checked.cut, checked.cue)
        if reason == RELATIVE_DROP:
            message = (f"WARN: drop (score {outcome.score:.3f}: {ref - smoothed:.3f} below the camera's "
                       f"reference {ref:.3f})")
        elif reason:
            message = f"WARN: drop ({CUE_MESSAGES[reason]}; score {outcome.score:.3f})"
        if reason:
            return FrameResult(Level.WARN, outcome.score, float(smoothed), reason=reason,
                               message=message, notes=checked.notes, reference=ref)
        return FrameResult(level, outcome.score, float(smoothed), notes=checked.notes, reference=ref,
                           message=status_message(level, outcome.score))

    def decide(self, checked: Checked, outcome: ScoreOutcome) -> FrameResult:
        """Gate one scored frame; call in the order of ``check``."""
        if checked.restart:
            self.gate.reset()
        if outcome.score is None:
            result = refused(INFERENCE_ERROR, outcome.error, checked.notes)
        elif checked.forced is not None:  # no content / frozen: ERROR whatever the score; the gate's
            f = checked.forced            # average is left to the frames that have content
            result = FrameResult(Level.ERROR, outcome.score, outcome.score, reason=f.reason,
                                 message=f"ERROR: drop ({f.message}; score {outcome.score:.3f})",
                                 notes=checked.notes)
        else:
            result = self._gate(checked, outcome)
        result.batch_size, result.batch_seconds = outcome.batch_size, outcome.batch_seconds
        result.tiles = outcome.tiles
        result.cut, result.cue, result.none_prob = checked.cut, checked.cue, outcome.none_prob
        if result.level is not None and outcome.fault_ranked:
            fault = gated_fault(result.level, outcome.fault_ranked)
            result.fault, result.fault_confidence, result.fault_top3 = fault
            result.fault_ranked = outcome.fault_ranked
            result.notes += head_disagreement(result.level, outcome.fault_ranked, result.reason)
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
    tiles: int = 1

    @property
    def none_prob(self) -> float | None:
        """The fault head's ``none`` probability (None without a fault head)."""
        return dict(self.fault_ranked).get("none") if self.fault_ranked else None


def score_frames(
    scorer: Any, frames: Sequence[np.ndarray], batch_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[ScoreOutcome]:
    """Score ``frames`` in calls of at most ``batch_size`` frames (None: one call) and, together,
    at most ``max_pixels`` pixels (0: no limit); a frame above ``max_pixels`` is scored as the mean
    of native-resolution tiles (``limits.tiles``), never downscaled. A failing call is retried
    frame by frame, so one bad frame costs only its own score."""
    out: list[ScoreOutcome] = []
    for chunk in batched(frames, batch_size):
        out.extend(_score_batch(scorer, chunk, max_pixels))
    return out


def _score_batch(scorer: Any, frames: list[np.ndarray], max_pixels: int) -> list[ScoreOutcome]:
    if not frames:
        return []
    t0 = time.perf_counter()
    ranked: list[Any] = [None] * len(frames)
    try:
        values, tiles = score_bounded(lambda group: _score_columns(scorer, group), frames, max_pixels)
        values = np.asarray(values, dtype=np.float64).reshape(len(frames), -1)
        scores = values[:, 0]
        if values.shape[1] > 1:  # score + fault-class probabilities (tiles averaged)
            head = scorer.fault_head
            ranked = head.top(values[:, 1:], k=len(head.classes))
        if scores.shape[0] != len(frames) or len(ranked) != len(frames):
            raise RuntimeError(f"scorer returned {scores.shape[0]} scores for {len(frames)} frames")
    except Exception as exc:
        if len(frames) == 1:
            return [ScoreOutcome(None, f"inference failed: {type(exc).__name__}: {exc}".replace("\n", " "), 1,
                                 time.perf_counter() - t0)]
        log.warning("a batch of %d frames failed (%s: %s); scoring them one by one", len(frames),
                    type(exc).__name__, exc)
        return [o for f in frames for o in _score_batch(scorer, [f], max_pixels)]
    dt = time.perf_counter() - t0
    n = len(frames)
    return [ScoreOutcome(float(s), batch_size=n, batch_seconds=dt, fault_ranked=r, tiles=k)
            if math.isfinite(s) else ScoreOutcome(None, f"the model returned a non-finite score ({s})", n, dt)
            for s, r, k in zip(scores, ranked, tiles)]


def _score_columns(scorer: Any, frames: list[np.ndarray]) -> np.ndarray:
    """(n,) scores, or (n, 1 + C) scores then fault-class probabilities when the model has a head."""
    infer = getattr(scorer, "infer", None)
    if infer is None:  # anything with only ``score`` (no embedding, no fault class)
        return np.asarray(scorer.score(frames), dtype=np.float64).reshape(-1)
    inference = infer(frames)
    scores = np.asarray(inference.scores, dtype=np.float64).reshape(-1)
    probs = getattr(inference, "fault_probs", None)
    if probs is None:
        return scores
    return np.column_stack([scores, np.asarray(probs, dtype=np.float64).reshape(len(scores), -1)])


def run_frames(scorer: Any, checked: Sequence[Checked], batch_size: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> list[FrameResult]:
    """Score the admitted frames of ``checked`` and decide each (refused ones keep their result)."""
    todo = [c for c in checked if c.result is None]
    outcomes = iter(score_frames(scorer, [c.rgb for c in todo], batch_size, max_pixels))
    return [c.result if c.result is not None else c.monitor.decide(c, next(outcomes)) for c in checked]
