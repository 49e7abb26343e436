"""/diagnostics details (ROS-free CameraStats): an old last_error does not hold a camera at ERROR,
frames without content are counted and named, backwards stamps are flagged."""
from __future__ import annotations

import numpy as np
import pytest
from helpers_bag import frames

from hirqa_ros.decision import Hysteresis, Level, Thresholds
from hirqa_ros.monitor import CameraMonitor
from hirqa_ros.node.stats import CameraStats


def test_old_last_error_does_not_hold_the_camera_at_error():
    s = CameraStats("/cam", hysteresis=Hysteresis(3, 3))
    s.on_receive(0.0)
    s.on_bad("decode_error", "corrupt JPEG")
    level, msg, v = s.report(now=0.5)
    assert level == Level.ERROR and "corrupt JPEG" in msg  # this period: bad frames, none scored
    for i in range(300):  # hundreds of good frames
        s.on_receive(1.0 + i * 0.01)
        s.on_scored(0.8, Level.OK, 5.0, 1)
    s.report(now=4.5)
    # a period in which frames arrived but none was scored yet (all superseded), no new bad frame
    s.on_receive(4.6)
    s.on_dropped()
    level, msg, v = s.report(now=5.0)
    assert level == Level.OK and v["quality_level"] == "OK", msg
    assert v["last_error"] == "corrupt JPEG" and float(v["last_error_age_s"]) >= 5.0


def test_no_content_frames_are_counted_and_named():
    s = CameraStats("/cam", hysteresis=Hysteresis(2, 2))
    for i in range(5):
        s.on_receive(i * 0.1)
        s.on_finding("no_content: black", "no content: black frame (lens cap?)")
        s.on_scored(0.55, Level.ERROR, 5.0, 1)
    level, msg, v = s.report(now=0.6)
    assert level == Level.ERROR and msg.startswith("no content: black frame")
    assert v["no_content_frames"] == "5"
    level, msg, v = s.report(now=0.9)  # no new frame in this period: still named
    assert level == Level.ERROR and "no content: black" in msg
    s.on_receive(1.0)
    s.on_finding("frozen", "frozen: image data unchanged for 2 s or more (stuck driver?)")
    s.on_scored(0.6, Level.ERROR, 5.0, 1)
    assert s.report(now=1.1)[2]["frozen_frames"] == "1"


def test_backwards_and_negative_stamps_are_flagged():
    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3))
    f = frames(4, 64, 48)
    notes = [mon.check(x, stamp_ns=t).notes for x, t in zip(f, (100, 200, 150, -5))]
    kinds = [[k for k, _ in n] for n in notes]
    assert kinds == [[], [], ["stamp_backwards"], ["stamp_backwards"]]
    assert "older than the previous" in notes[2][0][1] and "negative" in notes[3][0][1]


def test_no_content_and_frozen_results_from_the_monitor():
    """The monitor's verdict (what node, bag-eval and score share): ERROR with a reason, still scored."""

    class ConstantScorer:  # a stand-in for the network: this test is about the checks, not the score
        def score(self, frames):
            return np.full(len(frames), 0.9, np.float32)

    from hirqa_ros.monitor import run_frames

    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3), smoothing=0.5)
    live = frames(2, 64, 48)
    black = np.zeros((48, 64, 3), np.uint8)
    checked = [mon.check(live[0], clock_s=0.0), mon.check(black, clock_s=0.1)]
    checked += [mon.check(live[1], clock_s=0.2 + 0.5 * i) for i in range(6)]  # one buffer for 2.5 s
    res = run_frames(ConstantScorer(), checked)
    assert res[0].level == Level.OK and not res[0].reason
    assert res[1].level == Level.ERROR and res[1].reason == "no_content: black"
    assert res[1].score == pytest.approx(0.9)
    assert res[1].verdict == "drop" and "lens cap" in res[1].message
    assert [r.reason for r in res[2:]] == ["", "", "", "", "frozen", "frozen"]  # >= 2.0 s identical
    assert res[2].smoothed == pytest.approx(0.9)  # the no-content frame did not enter the smoothing
