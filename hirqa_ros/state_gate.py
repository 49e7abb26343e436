"""The state gate of one camera (``gate_mode: state``): forward a frame at camera rate while the
camera's latest scored verdict is keep and fresh and the frame's cue shows no sudden drop (ROS-free).

Times are seconds on one monotonic receive clock. A verdict is fresh while the frame it was scored on
was received at most ``max_age_s`` ago. A sudden drop of the cue (``frame_cue.sudden_drop`` against
the median of the recently forwarded frames) holds every frame until a verdict comes from a frame
received at or after the drop; a keep verdict after any hold (drop, stale, suspect, start) re-anchors
the reference on the scored frame's cue, so a scene that changes for good (and scores keep) passes
again. Thread-safe: ``admit`` runs in the subscription callback, ``on_verdict`` in the scoring thread.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from hirqa_ros.frame_cue import REFERENCE_FRAMES, CueReference, DropLimits, FrameCue, sudden_drop

DEFAULT_MAX_VERDICT_AGE_S = 2.0  # covers latency + interval of a CPU scorer under load (docs/node.md)
#: why a frame was held (the /diagnostics counters use these names)
HOLD_REASONS = ("no_verdict", "drop", "stale", "cue", "undecodable")


@dataclass(frozen=True)
class Verdict:
    """A scored frame's verdict: ``keep``, its receive time, header stamp, and ``info`` (whatever the
    caller needs to describe it later, e.g. the node's result and frame number)."""

    keep: bool
    t_recv: float
    stamp_ns: int
    info: Any = None


@dataclass(frozen=True)
class Admission:
    """The gate's answer for one frame: ``forward``; when held, ``reason`` (one of HOLD_REASONS) and
    ``detail`` (e.g. the cue's ``dark``); the verdict in force and its age (None before the first)."""

    forward: bool
    reason: str = ""
    detail: str = ""
    verdict: Verdict | None = None
    age_s: float | None = None


class StateGate:
    """One camera's forwarding state (see the module docstring)."""

    def __init__(self, max_age_s: float = DEFAULT_MAX_VERDICT_AGE_S, limits: DropLimits | None = None,
                 reference_frames: int = REFERENCE_FRAMES) -> None:
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.max_age_s = float(max_age_s)
        self.limits = limits or DropLimits()
        self._lock = threading.Lock()
        self._verdict: Verdict | None = None
        self._reference = CueReference(reference_frames)
        self._suspect_since: float | None = None  # receive time of the frame whose cue dropped
        self._suspect_detail = ""
        self._held_since_keep = True  # a hold since the last keep verdict: re-anchor on the next one
        self._last_forward: float | None = None  # receive time of the newest forwarded frame
        # cues of the frames sent to scoring, until their verdict (8 s of a 30 Hz camera: a slow scorer's
        # verdict must still find its frame's cue)
        self._cues: deque[tuple[float, FrameCue]] = deque(maxlen=256)

    @property
    def state(self) -> str:
        """``keep``, ``suspect``, ``drop`` or ``no_verdict`` (freshness aside)."""
        with self._lock:
            if self._verdict is None:
                return "no_verdict"
            if not self._verdict.keep:
                return "drop"
            return "suspect" if self._suspect_since is not None else "keep"

    def admit(self, now: float, cue: FrameCue | None) -> Admission:
        """Decide for a frame received at ``now`` with ``cue`` (None: its cue could not be computed)."""
        with self._lock:
            v = self._verdict
            if v is None:
                return self._hold("no_verdict", None, None)
            age = now - v.t_recv
            if not v.keep:
                return self._hold("drop", v, age)
            if age > self.max_age_s:
                return self._hold("stale", v, age)
            if self._suspect_since is not None:
                return self._hold("cue", v, age, self._suspect_detail)
            if cue is None:
                return self._hold("undecodable", v, age)
            ref = self._reference.value()
            drop = None if ref is None else sudden_drop(cue, ref, self.limits)
            if drop is not None:
                self._suspect_since, self._suspect_detail = now, drop
                return self._hold("cue", v, age, drop)
            self._reference.add(cue)
            self._last_forward = now if self._last_forward is None else max(self._last_forward, now)
            return Admission(True, verdict=v, age_s=age)

    def _hold(self, reason: str, v: Verdict | None, age: float | None, detail: str = "") -> Admission:
        self._held_since_keep = True
        return Admission(False, reason, detail, v, age)

    def note_scored(self, t_recv: float, cue: FrameCue | None) -> None:
        """Remember the cue of a frame sent to scoring (its verdict may re-anchor the reference)."""
        if cue is not None:
            with self._lock:
                self._cues.append((t_recv, cue))

    def on_verdict(self, verdict: Verdict) -> None:
        """A scored frame's verdict: the camera's state from now on (an older verdict than the one in
        force is ignored). Clears a cue hold when the frame was received at or after the drop."""
        with self._lock:
            if self._verdict is not None and verdict.t_recv < self._verdict.t_recv:
                return
            self._verdict = verdict
            if self._suspect_since is not None and verdict.t_recv >= self._suspect_since:
                self._suspect_since, self._suspect_detail = None, ""
            cue = next((c for t, c in self._cues if t == verdict.t_recv), None)
            while self._cues and self._cues[0][0] <= verdict.t_recv:
                self._cues.popleft()
            if not verdict.keep or self._suspect_since is not None:
                return
            if self._held_since_keep:
                if cue is not None:  # without its cue the old reference stays (never an empty one)
                    self._reference.reset()
                    self._reference.add(cue)
                self._held_since_keep = False

    def forward_scored(self, t_recv: float) -> bool:
        """For a frame scored keep: True when it was not forwarded on arrival and no newer frame has
        been (so forwarding it now keeps the accepted stream in order); records it as forwarded."""
        with self._lock:
            if self._last_forward is not None and t_recv <= self._last_forward:
                return False
            self._last_forward = t_recv
            return True
