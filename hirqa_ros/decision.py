"""The one place that maps scores to verdicts: thresholds, smoothing and hysteresis.

Levels follow diagnostic_msgs/DiagnosticStatus: OK=0, WARN=1, ERROR=2, STALE=3. A frame is
OK when its (optionally smoothed) score is >= ``warn``, WARN when it is below ``warn`` but
>= ``error``, ERROR below ``error``. Only OK frames pass the gate.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum

from hirqa_ros.constants import DEFAULT_ERROR_THRESHOLD, DEFAULT_WARN_THRESHOLD


class Level(IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


VERDICTS = {Level.OK: "keep", Level.WARN: "drop", Level.ERROR: "drop", Level.STALE: "stale"}


@dataclass(frozen=True)
class Thresholds:
    """Score cut-offs; ``error <= warn``, both in [0, 1]."""

    warn: float = DEFAULT_WARN_THRESHOLD
    error: float = DEFAULT_ERROR_THRESHOLD

    def __post_init__(self) -> None:
        if not (0.0 <= self.error <= self.warn <= 1.0):
            raise ValueError(f"need 0 <= error ({self.error}) <= warn ({self.warn}) <= 1")

    def level(self, score: float) -> Level:
        if score >= self.warn:
            return Level.OK
        return Level.WARN if score >= self.error else Level.ERROR


@dataclass
class FrameGate:
    """Per-camera frame decisions: EMA smoothing of the score, then thresholds.

    ``smoothing`` is the weight of the past in the exponential moving average (0 = off: every
    frame is judged on its own score). ``update`` returns (level, smoothed score).
    """

    thresholds: Thresholds
    smoothing: float = 0.0
    _ema: float | None = None

    def update(self, score: float) -> tuple[Level, float]:
        a = min(max(self.smoothing, 0.0), 0.99)
        self._ema = score if self._ema is None or a == 0.0 else a * self._ema + (1.0 - a) * score
        return self.thresholds.level(self._ema), self._ema

    def reset(self) -> None:
        self._ema = None


@dataclass
class Hysteresis:
    """Camera status over frames: the status becomes the mildest level of the last ``raise_after``
    frames when all of them were bad, and clears back to OK after ``clear_after`` consecutive OK
    frames (a debounce; Autoware's image_diagnostics, which inspired the per-camera status, has none)."""

    raise_after: int = 3
    clear_after: int = 3
    level: Level = Level.OK
    _window: deque = field(default_factory=deque)
    _good_run: int = 0

    def update(self, frame_level: Level) -> Level:
        self._window.append(Level(frame_level))
        while len(self._window) > max(1, self.raise_after):
            self._window.popleft()
        if frame_level == Level.OK:
            self._good_run += 1
            if self._good_run >= max(1, self.clear_after):
                self.level = Level.OK
            return self.level
        self._good_run = 0
        if len(self._window) >= max(1, self.raise_after) and Level.OK not in self._window:
            self.level = min(self._window)
        return self.level
