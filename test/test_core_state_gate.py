"""The state gate's decision (ROS-free): forward while the fresh verdict is keep and the cue holds,
hold on drop / stale / no verdict / a sudden cue drop until a newer scored verdict, re-anchor the
reference after a hold, and keep the accepted stream in order when a held frame scores keep."""
from __future__ import annotations

import pytest

from hirqa_ros.frame_cue import FrameCue
from hirqa_ros.state_gate import HOLD_REASONS, StateGate, Verdict

CLEAN = FrameCue(1000.0, 110.0, 0.01)
DARK = FrameCue(150.0, 25.0, 0.6)
BLUR = FrameCue(200.0, 110.0, 0.01)


def _keep(gate: StateGate, t: float, cue: FrameCue = CLEAN, keep: bool = True) -> None:
    gate.note_scored(t, cue)
    gate.on_verdict(Verdict(keep, t, int(t * 1e9), info=("result", t)))


def test_holds_until_the_first_verdict_then_forwards_while_fresh():
    g = StateGate(max_age_s=1.0)
    a = g.admit(0.0, CLEAN)
    assert not a.forward and a.reason == "no_verdict" and a.verdict is None and g.state == "no_verdict"
    _keep(g, 0.05)
    a = g.admit(0.10, CLEAN)
    assert a.forward and a.verdict.stamp_ns == 50_000_000 and a.verdict.info == ("result", 0.05)
    assert a.age_s == pytest.approx(0.05)
    assert g.admit(1.04, CLEAN).forward  # age 0.99 s
    a = g.admit(1.06, CLEAN)  # age 1.01 s: stale
    assert not a.forward and a.reason == "stale"
    _keep(g, 1.07)
    assert g.admit(1.08, CLEAN).forward


def test_drop_verdict_holds_and_a_later_keep_resumes():
    g = StateGate()
    _keep(g, 0.0)
    assert g.admit(0.05, CLEAN).forward
    _keep(g, 0.06, DARK, keep=False)
    assert g.state == "drop"
    a = g.admit(0.10, CLEAN)
    assert not a.forward and a.reason == "drop"
    _keep(g, 0.11)
    assert g.state == "keep" and g.admit(0.15, CLEAN).forward


def test_sudden_cue_drop_holds_until_a_verdict_from_after_the_drop():
    g = StateGate()
    _keep(g, 0.0)
    for k in range(5):
        assert g.admit(0.05 * (k + 1), CLEAN).forward
    a = g.admit(0.30, DARK)  # lights out between two scored frames
    assert not a.forward and a.reason == "cue" and a.detail == "dark" and g.state == "suspect"
    a = g.admit(0.35, CLEAN)  # held too: only a scored verdict ends the hold
    assert not a.forward and a.reason == "cue"
    _keep(g, 0.25)  # a verdict on a frame from before the drop does not clear it
    assert not g.admit(0.40, CLEAN).forward and g.state == "suspect"
    _keep(g, 0.30, DARK, keep=False)  # the dark frame's own verdict
    assert g.state == "drop" and g.admit(0.45, DARK).reason == "drop"


def test_a_keep_verdict_after_a_hold_re_anchors_the_reference():
    """A scene that changes for good (low texture, scored keep) passes again after one scored frame."""
    g = StateGate()
    _keep(g, 0.0)
    assert g.admit(0.05, CLEAN).forward
    assert g.admit(0.10, BLUR).reason == "cue"
    _keep(g, 0.10, BLUR)  # the model says the new scene is fine
    assert g.state == "keep"
    assert all(g.admit(0.15 + 0.05 * k, BLUR).forward for k in range(5))
    assert g.admit(0.50, DARK).reason == "cue"  # the new reference still catches a real drop


def test_a_verdict_without_its_cue_keeps_the_old_reference():
    """A slow scorer's verdict whose frame cue is unknown must not leave the gate unchecked."""
    g = StateGate()
    _keep(g, 0.0)
    assert g.admit(0.05, CLEAN).forward
    assert g.admit(0.06, None).reason == "undecodable"  # a hold: the next keep verdict would re-anchor
    g.on_verdict(Verdict(True, 0.07, 70_000_000))  # no note_scored: its cue is unknown
    assert g.admit(0.10, DARK).reason == "cue"


def test_cues_of_a_slow_scorer_are_still_found():
    g = StateGate()
    _keep(g, 0.0, DARK, keep=False)
    for k in range(1, 200):  # 200 frames (6.6 s at 30 Hz) noted while one verdict is pending
        g.note_scored(k / 30, CLEAN if k == 1 else DARK)
    g.on_verdict(Verdict(True, 1 / 30, 1))  # the verdict on frame 1 re-anchors on ITS cue
    assert g.admit(1.0, DARK).reason == "cue"  # checked against frame 1's cue, not let through


def test_no_cue_holds_the_frame():
    g = StateGate()
    _keep(g, 0.0)
    a = g.admit(0.05, None)
    assert not a.forward and a.reason == "undecodable"
    assert g.admit(0.10, CLEAN).forward  # a frame that cannot be read does not change the state


def test_older_verdicts_are_ignored():
    g = StateGate()
    _keep(g, 0.5, DARK, keep=False)
    _keep(g, 0.4)
    assert g.state == "drop"


def test_scored_keep_frames_are_forwarded_late_only_in_order():
    g = StateGate()
    _keep(g, 0.0, DARK, keep=False)
    assert not g.admit(0.05, CLEAN).forward  # held at arrival
    _keep(g, 0.05)
    assert g.forward_scored(0.05)  # held, scored keep, nothing newer forwarded: forward it now
    assert not g.forward_scored(0.05)  # only once
    assert g.admit(0.10, CLEAN).forward
    assert not g.forward_scored(0.10)  # it went out on arrival
    assert not g.forward_scored(0.08)  # older than a forwarded frame: would reorder the stream


def test_reasons_are_declared_and_max_age_checked():
    assert set(HOLD_REASONS) == {"no_verdict", "drop", "stale", "cue", "undecodable"}
    with pytest.raises(ValueError):
        StateGate(max_age_s=0.0)
