"""Score -> verdict logic: thresholds, EMA smoothing, hysteresis."""
import pytest

from hirqa_ros.decision import FrameGate, Hysteresis, Level, Thresholds


def test_thresholds_levels_and_validation():
    t = Thresholds(warn=0.6, error=0.4)
    assert t.level(0.9) == Level.OK
    assert t.level(0.6) == Level.OK
    assert t.level(0.5) == Level.WARN
    assert t.level(0.4) == Level.WARN
    assert t.level(0.1) == Level.ERROR
    with pytest.raises(ValueError):
        Thresholds(warn=0.3, error=0.5)
    with pytest.raises(ValueError):
        Thresholds(warn=1.5, error=0.5)


def test_gate_without_smoothing_judges_each_frame():
    gate = FrameGate(Thresholds(0.6, 0.4))
    assert gate.update(0.9) == (Level.OK, 0.9)
    assert gate.update(0.1) == (Level.ERROR, 0.1)
    assert gate.update(0.9)[0] == Level.OK


def test_gate_smoothing_damps_a_single_bad_frame():
    gate = FrameGate(Thresholds(0.6, 0.4), smoothing=0.8)
    for _ in range(5):
        gate.update(0.9)
    level, smoothed = gate.update(0.1)
    assert level == Level.OK
    assert smoothed == pytest.approx(0.8 * 0.9 + 0.2 * 0.1)
    for _ in range(10):
        level, _ = gate.update(0.1)
    assert level == Level.ERROR
    gate.reset()
    assert gate.update(0.5)[1] == 0.5


def test_hysteresis_raises_after_n_bad_and_clears_after_m_good():
    h = Hysteresis(raise_after=3, clear_after=2)
    assert h.update(Level.ERROR) == Level.OK
    assert h.update(Level.ERROR) == Level.OK
    assert h.update(Level.WARN) == Level.WARN  # three bad frames, the mildest was WARN
    assert h.update(Level.ERROR) == Level.WARN
    assert h.update(Level.ERROR) == Level.WARN
    assert h.update(Level.ERROR) == Level.ERROR  # three consecutive ERROR frames
    assert h.update(Level.OK) == Level.ERROR
    assert h.update(Level.ERROR) == Level.ERROR
    assert h.update(Level.OK) == Level.ERROR
    assert h.update(Level.OK) == Level.OK


def test_hysteresis_single_glitches_never_raise():
    h = Hysteresis(raise_after=2, clear_after=1)
    for _ in range(20):
        assert h.update(Level.ERROR) == Level.OK
        assert h.update(Level.OK) == Level.OK
