"""Rate and stamp-delay checks (diagnostic_updater FrequencyStatus / TimeStampStatus semantics), ROS-free."""
from __future__ import annotations

from hirqa_ros.decision import Level
from hirqa_ros.node.topic_checks import FrequencyCheck, StampDelayCheck


def _run(check, rate_hz, seconds, t0=0.0):
    """Tick at ``rate_hz`` and report once a second; the last report."""
    out, t = None, t0
    for _ in range(int(seconds)):
        for _ in range(int(rate_hz)):
            check.tick()
        t += 1.0
        out = check.report(t)
    return out, t


def test_frequency_off_by_default_but_measured():
    c = FrequencyCheck()
    c.report(0.0)
    (level, msg, values), _ = _run(c, 10, 3)
    assert level == Level.OK and msg == ""
    assert values["window_rate_hz"] == "10.00" and values["expected_rate_hz"] == ""


def test_frequency_within_tolerance_low_high_and_none():
    c = FrequencyCheck(expected_hz=10, tolerance=0.1, window=5)
    c.report(0.0)
    (level, _, _), t = _run(c, 10, 5)
    assert level == Level.OK
    (level, msg, _), t = _run(c, 5, 5, t)
    assert level == Level.WARN and "too low" in msg
    (level, msg, _), t = _run(c, 20, 5, t)
    assert level == Level.WARN and "too high" in msg
    (level, msg, _), t = _run(c, 0, 5, t)
    assert level == Level.ERROR and "no frames" in msg


def test_stamp_delay_reports_and_errors_only_when_enabled():
    off = StampDelayCheck(max_delay_s=0.0)
    for d in (0.01, 100.0, -5.0):
        off.tick(d)
    level, msg, values = off.report()
    assert level == Level.OK and values == {"stamp_delay_min_s": "-5.000", "stamp_delay_max_s": "100.000"}
    on = StampDelayCheck(min_delay_s=-1.0, max_delay_s=0.5)
    on.tick(0.1)
    assert on.report()[0] == Level.OK
    on.tick(0.9)
    level, msg, _ = on.report()
    assert level == Level.ERROR and "in the past" in msg
    on.tick(-2.0)
    level, msg, _ = on.report()
    assert level == Level.ERROR and "in the future" in msg
    # the window restarts after each report
    assert on.report() == (Level.OK, "", {"stamp_delay_min_s": "", "stamp_delay_max_s": ""})
