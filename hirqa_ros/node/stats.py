"""Per-camera counters, rolling windows and the camera's /diagnostics status (ROS-free, thread-safe).

The camera level combines the quality hysteresis (decision.Hysteresis over per-frame verdicts)
with input health: STALE before the first frame, ERROR when frames stop or none can be decoded,
and the topic checks (expected rate, header-stamp delay; ``topic_checks``). With a fault head the
status names the dominant fault of the rejected frames in the window ("rejecting 80 % of frames:
motion_blur").
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from hirqa_ros.decision import Hysteresis, Level
from hirqa_ros.faults import dominant_fault
from hirqa_ros.node.topic_checks import FrequencyCheck, StampDelayCheck
from hirqa_ros.refusals import DECODE_ERROR, INFERENCE_ERROR, TOO_LARGE, TOO_SMALL

#: bad-input reasons (the frame gets no score) -> /diagnostics key; each also gets a throttled warning
BAD_INPUT = {DECODE_ERROR: "decode_errors", TOO_SMALL: "too_small_frames",
             TOO_LARGE: "too_large_frames", INFERENCE_ERROR: "inference_errors"}  # every refusals.REASONS
#: input oddities that still get a score -> /diagnostics key
ODDITIES = {"zero_stamp": "zero_stamp_frames", "stamp_backwards": "stamp_backwards_frames",
            "resolution_change": "resolution_changes", "resumed": "camera_resumed"}
#: frames that are scored but ERROR whatever their score (reason prefix) -> /diagnostics key
FINDINGS = {"no_content": "no_content_frames", "frozen": "frozen_frames"}


@dataclass
class CameraStats:
    """Everything /diagnostics says about one camera. All methods may be called from any thread."""

    topic: str
    window: int = 100
    hysteresis: Hysteresis = field(default_factory=Hysteresis)
    received: int = 0
    scored: int = 0
    dropped: int = 0  # superseded in the newest-frame slot before inference picked them up
    throttled: int = 0  # skipped by max_rate_hz
    counts: Counter = field(default_factory=Counter)  # BAD_INPUT and ODDITIES
    last_error: str = ""
    last_error_time: float | None = None  # receive time of the frame last_error is about
    last_receive: float | None = None  # time.monotonic()
    stopped: bool = False
    frame_id: str = ""
    resolution: tuple[int, int] | None = None
    rate: FrequencyCheck = field(default_factory=FrequencyCheck)  # expected input rate (off by default)
    stamps: StampDelayCheck = field(default_factory=StampDelayCheck)  # header-stamp delay (off by default)
    forwarded: int = 0  # republished on B_accepted (scored OK, or on arrival under gate_mode state)
    forwarded_inherited: int = 0  # of those, forwarded under an earlier frame's verdict
    held: Counter = field(default_factory=Counter)  # gate_mode state: frames held back, by reason

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._latency_ms: deque[float] = deque(maxlen=self.window)
        self._scores: deque[float] = deque(maxlen=self.window)
        self._rejected: deque[bool] = deque(maxlen=self.window)
        self._faults: deque[str | None] = deque(maxlen=self.window)  # fault class of rejected frames
        self._batch: deque[int] = deque(maxlen=self.window)
        self._last_report: tuple[float, int, int] | None = None  # (time, received, scored)
        self._bad_since_report = 0
        self._findings_since_report = 0
        self._last_finding = ""
        self._finding_pending = False  # on_finding() came for the frame on_scored() records next
        self._finding_streak = 0  # consecutive scored frames with a finding
        self._last_gate: tuple[int, int] | None = None  # (forwarded, held) at the last report

    # ---- updates -------------------------------------------------------------------------
    def on_receive(self, now: float, stamp_delay_s: float | None = None) -> bool:
        """Count a received frame (``stamp_delay_s``: receive time minus header stamp, None for a zero
        stamp); True when the camera had stopped and has come back."""
        self.rate.tick()
        if stamp_delay_s is not None:
            self.stamps.tick(stamp_delay_s)
        with self._lock:
            self.received += 1
            self.last_receive = now
            resumed = self.stopped
            if resumed:
                self.stopped = False
                self.counts["resumed"] += 1
            return resumed

    def on_dropped(self) -> None:
        with self._lock:
            self.dropped += 1

    def on_throttled(self) -> None:
        with self._lock:
            self.throttled += 1

    def on_bad(self, reason: str, message: str) -> None:
        with self._lock:
            self.counts[reason] += 1
            self.last_error = message
            self.last_error_time = self.last_receive  # the receive clock of the frame it is about
            self._bad_since_report += 1

    def on_finding(self, reason: str, message: str) -> None:
        """A scored frame that is ERROR for ``reason`` (``no_content: ...``, ``frozen``)."""
        with self._lock:
            self.counts[reason.split(":", 1)[0]] += 1
            self._findings_since_report += 1
            self._last_finding = message
            self._finding_pending = True

    def on_forwarded(self, inherited: bool = False) -> None:
        """A frame republished on B_accepted (``inherited``: under an earlier scored frame's verdict)."""
        with self._lock:
            self.forwarded += 1
            self.forwarded_inherited += int(inherited)

    def on_held(self, reason: str) -> None:
        """A frame the state gate held back (``state_gate.HOLD_REASONS``)."""
        with self._lock:
            self.held[reason] += 1

    def on_oddity(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def on_scored(self, score: float, level: Level, latency_ms: float, batch_size: int,
                  fault: str | None = None) -> Level:
        """Record one scored frame (``fault``: its class, None without a fault head); return the
        camera's level after hysteresis."""
        with self._lock:
            self._finding_streak = self._finding_streak + 1 if self._finding_pending else 0
            self._finding_pending = False
            self.scored += 1
            self._scores.append(float(score))
            self._rejected.append(level != Level.OK)
            self._faults.append(fault if level != Level.OK else None)
            self._latency_ms.append(float(latency_ms))
            self._batch.append(int(batch_size))
            return self.hysteresis.update(level)

    def set_hysteresis(self, raise_after: int, clear_after: int) -> None:
        with self._lock:
            self.hysteresis.raise_after = int(raise_after)
            self.hysteresis.clear_after = int(clear_after)

    # ---- report ----------------------------------------------------------------------------
    def report(self, now: float | None = None,
               stale_timeout_s: float = 2.0) -> tuple[Level, str, dict[str, str]]:
        """(level, message, key/values) for this camera's /diagnostics status."""
        now = time.monotonic() if now is None else now
        with self._lock:
            t0, r0, s0 = self._last_report or (now, self.received, self.scored)
            dt = now - t0
            in_rate = (self.received - r0) / dt if dt > 0 else 0.0
            out_rate = (self.scored - s0) / dt if dt > 0 else 0.0
            new_scored = self.scored - s0
            new_bad, self._bad_since_report = self._bad_since_report, 0
            new_findings, self._findings_since_report = self._findings_since_report, 0
            self._last_report = (now, self.received, self.scored)
            held = sum(self.held.values())
            f0, h0 = self._last_gate or (self.forwarded, held)
            self._last_gate = (self.forwarded, held)
            lat = np.asarray(self._latency_ms, np.float64)
            scores = np.asarray(self._scores, np.float64)
            dominant = dominant_fault(self._faults)
            values = {
                "input_rate_hz": f"{in_rate:.2f}",
                "scored_rate_hz": f"{out_rate:.2f}",
                "frames_received": str(self.received),
                "frames_scored": str(self.scored),
                "frames_dropped": str(self.dropped),
                "frames_throttled": str(self.throttled),
                "forwarded_rate_hz": f"{(self.forwarded - f0) / dt:.2f}" if dt > 0 else "0.00",
                "held_rate_hz": f"{(held - h0) / dt:.2f}" if dt > 0 else "0.00",
                "frames_forwarded": str(self.forwarded),
                "frames_forwarded_inherited": str(self.forwarded_inherited),
                "frames_held": str(held),
                "frames_held_by_reason": ",".join(f"{k}:{v}" for k, v in sorted(self.held.items())),
                "latency_p50_ms": f"{np.percentile(lat, 50):.1f}" if lat.size else "",
                "latency_p95_ms": f"{np.percentile(lat, 95):.1f}" if lat.size else "",
                "mean_score": f"{scores.mean():.4f}" if scores.size else "",
                "reject_fraction": f"{np.mean(self._rejected):.3f}" if self._rejected else "",
                "dominant_fault": dominant[0] if dominant else "",
                "dominant_fault_fraction": f"{dominant[1]:.3f}" if dominant else "",
                "mean_batch_size": f"{np.mean(self._batch):.2f}" if self._batch else "",
                "quality_level": self.hysteresis.level.name,
                "resolution": f"{self.resolution[1]}x{self.resolution[0]}" if self.resolution else "",
                "last_error": self.last_error,
                "last_error_age_s": "" if self.last_error_time is None
                else f"{max(0.0, now - self.last_error_time):.1f}",
            }
            for reason, key in (*BAD_INPUT.items(), *ODDITIES.items(), *FINDINGS.items()):
                values[key] = str(self.counts[reason])
            age = None if self.last_receive is None else now - self.last_receive
            values["seconds_since_last_frame"] = "" if age is None else f"{age:.2f}"
            checks = [self.rate.report(now), self.stamps.report()]
            for _, _, v in checks:
                values.update(v)
            level, message = self._health(age, in_rate, out_rate, new_bad, new_findings, new_scored, values,
                                           stale_timeout_s)
        if level == Level.STALE:
            return level, message, values
        problems = [(lv, text) for lv, text, _ in checks if lv > Level.OK]
        if problems:  # the topic checks can only make the level worse
            level = max(level, *(lv for lv, _ in problems))
            message = "; ".join([text for _, text in problems] + ([message] if message else []))
        return level, message, values

    def _health(self, age: float | None, in_rate: float, out_rate: float, new_bad: int, new_findings: int,
                new_scored: int, values: dict[str, str], stale_timeout_s: float) -> tuple[Level, str]:
        """Input health and quality hysteresis (called with the lock held)."""
        if age is None:
            return Level.STALE, "waiting for the first frame"
        if age > stale_timeout_s:
            self.stopped = True
            return Level.ERROR, f"camera stopped: no frame for {age:.1f} s"
        if new_bad > 0 and new_scored == 0 and self.last_error:  # this period's frames, not an old error
            return Level.ERROR, f"no usable frame: {self.last_error}"
        if new_findings > 0 and new_findings * 2 >= max(1, new_scored):
            return Level.ERROR, f"{self._last_finding} ({new_findings} of {new_scored} frames)"
        level = self.hysteresis.level
        if level != Level.OK and self._finding_streak >= self.hysteresis.raise_after:
            return level, f"{self._last_finding} (the last {self._finding_streak} frames)"
        rejecting = f"rejecting {100 * float(values['reject_fraction'] or 0):.0f} % of frames"
        if values["dominant_fault"]:
            rejecting += f": {values['dominant_fault']}"
        forwarded = float(values["forwarded_rate_hz"])
        rates = (f"{in_rate:.1f} Hz in, {out_rate:.1f} Hz scored, {forwarded:.1f} Hz forwarded, mean score "
                 f"{values['mean_score'] or 'n/a'}")
        if level == Level.OK:
            return Level.OK, f"quality OK: {rates}, {rejecting}"
        what = "low" if level == Level.WARN else "very low"
        return level, f"{rejecting} ({what} quality for {self.hysteresis.raise_after}+ frames; {rates})"
