"""Contradictions are visible: a frame the score keeps while the fault head is confident of a fault
(or the reverse) carries a ("fault_head_disagrees", text) note, from the one pipeline (monitor)."""
from __future__ import annotations

import pytest

from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.faults import CONFIDENT, head_disagreement
from hirqa_ros.monitor import CameraMonitor, ScoreOutcome


def _ranked(**p):
    return tuple(sorted(p.items(), key=lambda kv: -kv[1]))


@pytest.mark.parametrize("level,probs,says", [
    (Level.OK, {"low_light": 0.9, "none": 0.05, "blur": 0.05}, "OK but the fault head says low_light (0.90)"),
    (Level.OK, {"low_light": 0.6, "none": 0.3, "blur": 0.1}, None),  # not confident
    (Level.OK, {"none": 0.95, "blur": 0.05}, None),  # agree
    (Level.WARN, {"none": 0.9, "haze": 0.1}, "says WARN but the fault head says no fault (0.90)"),
    (Level.ERROR, {"haze": 0.9, "none": 0.1}, None),  # agree
    (Level.ERROR, {"none": 0.5, "haze": 0.5}, None),
])
def test_head_disagreement(level, probs, says):
    notes = head_disagreement(level, _ranked(**probs))
    if says is None:
        assert notes == ()
    else:
        assert notes[0][0] == "fault_head_disagrees" and says in notes[0][1]


def test_no_note_without_a_head_or_for_frame_check_levels():
    assert head_disagreement(Level.OK, None) == ()
    assert head_disagreement(Level.ERROR, _ranked(none=0.99, blur=0.01), reason="no_content: black") == ()
    assert 0.5 < CONFIDENT < 1


def test_monitor_decide_carries_the_note():
    import numpy as np

    monitor = CameraMonitor("cam", Thresholds(0.5, 0.3))
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ok = monitor.decide(monitor.check(rgb), ScoreOutcome(0.8, fault_ranked=_ranked(low_light=0.9, none=0.1)))
    assert ok.level == Level.OK and dict(ok.notes)["fault_head_disagrees"].endswith("low_light (0.90)")
    agree = monitor.decide(monitor.check(rgb), ScoreOutcome(0.8, fault_ranked=_ranked(none=0.9, blur=0.1)))
    assert "fault_head_disagrees" not in dict(agree.notes)
