"""The node's ROS-free parts: per-camera stats and /diagnostics levels, the parameter table, topic types."""
from __future__ import annotations

import pytest

from hirqa_ros.decision import Hysteresis, Level
from hirqa_ros.node.params import DYNAMIC, PARAMS, declared_names
from hirqa_ros.node.stats import CameraStats
from hirqa_ros.node.topic_checks import FrequencyCheck, StampDelayCheck


def test_stale_before_first_frame_then_ok():
    s = CameraStats("/cam", hysteresis=Hysteresis(3, 3))
    level, msg, values = s.report(now=0.0)
    assert level == Level.STALE and "first frame" in msg
    for t in range(10):
        s.on_receive(1.0 + t * 0.1)
        s.on_scored(0.8, Level.OK, latency_ms=10.0 + t, batch_size=1)
    level, msg, values = s.report(now=2.0)
    assert level == Level.OK
    assert values["frames_scored"] == "10" and values["reject_fraction"] == "0.000"
    assert float(values["latency_p50_ms"]) == pytest.approx(14.5)
    assert float(values["mean_score"]) == pytest.approx(0.8)


def test_rates_are_per_report_interval():
    s = CameraStats("/cam")
    s.report(now=0.0)
    for i in range(20):
        s.on_receive(0.05 * i)
        if i % 2 == 0:
            s.on_scored(0.7, Level.OK, 5.0, 1)
        else:
            s.on_dropped()
    _, _, v = s.report(now=1.0)
    assert float(v["input_rate_hz"]) == pytest.approx(20.0)
    assert float(v["scored_rate_hz"]) == pytest.approx(10.0)
    assert v["frames_dropped"] == "10"


def test_hysteresis_raises_after_consecutive_bad_frames_and_clears():
    s = CameraStats("/cam", hysteresis=Hysteresis(raise_after=3, clear_after=2))
    levels = []
    for lv in (Level.WARN, Level.WARN, Level.OK, Level.WARN, Level.WARN, Level.WARN, Level.OK, Level.OK):
        s.on_receive(0.0)
        levels.append(s.on_scored(0.4, lv, 1.0, 1))
    assert levels == [Level.OK, Level.OK, Level.OK, Level.OK, Level.OK, Level.WARN, Level.WARN, Level.OK]


def test_stopped_camera_is_error_and_resume_is_counted():
    s = CameraStats("/cam")
    s.on_receive(10.0)
    s.on_scored(0.9, Level.OK, 1.0, 1)
    level, msg, _ = s.report(now=13.0, stale_timeout_s=2.0)
    assert level == Level.ERROR and "stopped" in msg
    assert s.on_receive(14.0) is True  # came back
    assert s.on_receive(14.1) is False
    _, _, v = s.report(now=14.2, stale_timeout_s=2.0)
    assert v["camera_resumed"] == "1"


def test_only_bad_frames_is_error_with_reason():
    s = CameraStats("/cam")
    s.report(now=0.0)
    for i in range(3):
        s.on_receive(0.1 * i)
        s.on_bad("decode_error", "unsupported encoding '32FC1'")
    level, msg, v = s.report(now=0.5)
    assert level == Level.ERROR and "32FC1" in msg
    assert v["decode_errors"] == "3" and v["frames_scored"] == "0"


def test_parameter_table():
    names = [p.name for p in PARAMS]
    assert len(names) == len(set(names))
    for p in PARAMS:
        assert p.description.strip(), p.name
        if p.range is not None:
            assert p.type in ("int", "double")
    assert set(DYNAMIC) == {"warn_threshold", "error_threshold", "smoothing", "hysteresis_raise",
                            "hysteresis_clear"}
    for required in ("image_topics", "model_path", "backend", "engine_cache_dir", "force_engine_update",
                     "input_policy", "publish_accepted", "max_rate_hz", "image_transport", "autostart",
                     "hardware_id", "expected_rate_hz", "max_stamp_delay_s"):
        assert required in names
    assert "use_sim_time" in declared_names()
    assert not {"image_types", "input_reliability", "input_depth", "output_depth"} & set(names)  # replaced


def test_topic_checks_make_the_camera_level_worse_never_better():
    stats = CameraStats("/cam", rate=FrequencyCheck(expected_hz=100.0),
                        stamps=StampDelayCheck(max_delay_s=0.5))
    assert stats.report(0.0)[0] == Level.STALE  # before the first frame the checks do not speak
    for i in range(10):
        stats.on_receive(0.1 * i, stamp_delay_s=0.01)
        stats.on_scored(0.9, Level.OK, 1.0, 1)
    level, msg, values = stats.report(1.0)
    assert level == Level.WARN and "input rate too low" in msg and "quality OK" in msg
    assert values["expected_rate_hz"] == "100" and values["stamp_delay_max_s"] == "0.010"
    stats.on_receive(1.05, stamp_delay_s=3.0)
    level, msg, _ = stats.report(1.1)
    assert level == Level.ERROR and "in the past" in msg


def test_forwarded_and_held_rates_and_counts():
    s = CameraStats("/cam")
    s.report(now=0.0)
    for k in range(20):
        s.on_receive(k * 0.05)
        if k < 12:
            s.on_forwarded(inherited=k % 4 != 0)
        else:
            s.on_held("drop" if k < 18 else "cue")
    level, msg, v = s.report(now=2.0)
    assert level == Level.OK and "6.0 Hz forwarded" in msg
    assert v["frames_forwarded"] == "12" and v["frames_forwarded_inherited"] == "9"
    assert v["frames_held"] == "8" and v["frames_held_by_reason"] == "cue:2,drop:6"
    assert v["forwarded_rate_hz"] == "6.00" and v["held_rate_hz"] == "4.00"
    _, _, v = s.report(now=3.0)  # rates are per report period
    assert v["forwarded_rate_hz"] == "0.00" and v["frames_forwarded"] == "12"
