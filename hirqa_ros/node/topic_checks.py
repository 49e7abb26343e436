"""Input rate and header-stamp delay checks of one camera, with diagnostic_updater's semantics
(``FrequencyStatus`` and ``TimeStampStatus``), ROS-free so they are unit-tested without DDS.

diagnostic_updater itself is not on PyPI, so the node keeps its own publisher and follows its
conventions: the rate is measured over the last ``window`` diagnostic periods; WARN "input rate
too low/high" outside ``expected x (1 -/+ tolerance)``, ERROR "no frames" when none arrived in the
window; stamps: ERROR when a frame's delay (receive time on the node clock minus header stamp)
left ``[min_delay_s, max_delay_s]`` since the previous report.
"""
from __future__ import annotations

import threading
from collections import deque

from hirqa_ros.decision import Level


class FrequencyCheck:
    """Events per second over the last ``window`` reports against an expected rate (0 = no check)."""

    def __init__(self, expected_hz: float = 0.0, tolerance: float = 0.1, window: int = 5) -> None:
        self.expected_hz = float(expected_hz)
        self.tolerance = float(tolerance)
        self._lock = threading.Lock()
        self._count = 0
        self._history: deque[tuple[float, int]] = deque(maxlen=max(2, window + 1))

    def tick(self) -> None:
        with self._lock:
            self._count += 1

    def report(self, now: float) -> tuple[Level, str, dict[str, str]]:
        """(level, message, values); ``now`` on a monotonic clock. Level OK when the check is off."""
        with self._lock:
            self._history.append((now, self._count))
            (t0, c0), (t1, c1) = self._history[0], self._history[-1]
        events, dt = c1 - c0, t1 - t0
        rate = events / dt if dt > 0 else 0.0
        values = {"window_rate_hz": f"{rate:.2f}" if dt > 0 else "",
                  "expected_rate_hz": f"{self.expected_hz:g}" if self.expected_hz > 0 else ""}
        if self.expected_hz <= 0 or dt <= 0:
            return Level.OK, "", values
        lo, hi = self.expected_hz * (1 - self.tolerance), self.expected_hz * (1 + self.tolerance)
        if events == 0:
            return Level.ERROR, f"no frames in {dt:.1f} s (expected {self.expected_hz:g} Hz)", values
        if rate < lo:
            return Level.WARN, f"input rate too low: {rate:.2f} Hz < {lo:.2f}", values
        if rate > hi:
            return Level.WARN, f"input rate too high: {rate:.2f} Hz > {hi:.2f}", values
        return Level.OK, "", values


class StampDelayCheck:
    """Delay of header stamps behind the receive time; ERROR outside [min_delay_s, max_delay_s].

    ``max_delay_s <= 0`` turns the check off (the delays are still reported)."""

    def __init__(self, min_delay_s: float = -1.0, max_delay_s: float = 0.0) -> None:
        self.min_delay_s = float(min_delay_s)
        self.max_delay_s = float(max_delay_s)
        self._lock = threading.Lock()
        self._lo: float | None = None
        self._hi: float | None = None
        self._past = self._future = 0

    @property
    def enabled(self) -> bool:
        return self.max_delay_s > 0

    def tick(self, delay_s: float) -> None:
        """One frame's delay: receive time minus header stamp, in seconds (zero stamps excluded)."""
        with self._lock:
            self._lo = delay_s if self._lo is None else min(self._lo, delay_s)
            self._hi = delay_s if self._hi is None else max(self._hi, delay_s)
            if self.enabled and delay_s > self.max_delay_s:
                self._past += 1
            if self.enabled and delay_s < self.min_delay_s:
                self._future += 1

    def report(self) -> tuple[Level, str, dict[str, str]]:
        """(level, message, values) for the frames since the previous report; then starts over."""
        with self._lock:
            lo, hi, past, future = self._lo, self._hi, self._past, self._future
            self._lo = self._hi = None
            self._past = self._future = 0
        values = {"stamp_delay_min_s": "" if lo is None else f"{lo:.3f}",
                  "stamp_delay_max_s": "" if hi is None else f"{hi:.3f}"}
        problems = []
        if past:
            problems.append(f"{past} frame stamp(s) more than {self.max_delay_s:g} s in the past "
                            f"(max {hi:.3f} s)")
        if future:
            problems.append(f"{future} frame stamp(s) more than {-self.min_delay_s:g} s in the future "
                            f"(min delay {lo:.3f} s)")
        if problems:
            return Level.ERROR, "; ".join(problems), values
        return Level.OK, "", values
