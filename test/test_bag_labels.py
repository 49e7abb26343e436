"""Labels YAML and the label metrics (AUROC, precision/recall/F1, rejection per label, detection delay,
threshold for a target false-reject rate) on hand-built frame rows with known answers."""

from __future__ import annotations

import pytest

from hirqa_ros.bag.evaluate import FrameRow, label_metrics
from hirqa_ros.bag.labels import Labels, LabelsError, Segment
from hirqa_ros.decision import FrameGate, Thresholds

T0 = 1_000_000_000_000


def test_yaml_round_trip_relative_and_absolute(tmp_path):
    p = tmp_path / "l.yaml"
    p.write_text(
        "version: 1\nclock: stamp\norigin_ns: 1000000000000\ndefault_label: clear\n"
        "segments:\n"
        "  - {topic: /a, start: 1.0, end: 2.5, label: haze}\n"
        "  - {start: 3, end: 4, label: blur}\n"
        "  - {topic: /b, start_ns: 1005000000000, end_ns: 1006000000000, label: clear}\n"
    )
    lab = Labels.load(p)
    assert lab.segments[0] == Segment(T0 + 10**9, T0 + 2_500_000_000, "haze", "/a")
    assert lab.segments[1].topic is None
    assert lab.label_at("/a", T0 + 10**9) == "haze"
    assert lab.label_at("/a", T0 + 2_500_000_000) == "clear"  # half-open
    assert lab.label_at("/b", T0 + 1_500_000_000) == "clear"  # /a's segment only
    assert lab.label_at("/b", T0 + 3_200_000_000) == "blur"  # no topic: every topic
    assert lab.drop_set == {"haze", "blur"}  # default: everything except clear
    again = Labels.load(lab.dump(tmp_path / "again.yaml"))
    assert again.segments == lab.segments and again.origin_ns == lab.origin_ns


def test_relative_times_default_to_the_given_bag_start(tmp_path):
    p = tmp_path / "l.yaml"
    p.write_text("segments:\n  - {start: 0.5, end: 1, label: glare}\n")
    lab = Labels.load(p, bag_start_ns=T0)
    assert lab.segments[0].start_ns == T0 + 500_000_000
    assert lab.notes and "bag start" in lab.notes[0]


def test_drop_labels_from_file_and_override(tmp_path):
    p = tmp_path / "l.yaml"
    p.write_text(
        "origin_ns: 0\ndrop_labels: [haze]\nsegments:\n"
        "  - {start: 0, end: 1, label: haze}\n  - {start: 1, end: 2, label: rain}\n"
    )
    lab = Labels.load(p)
    assert lab.should_drop("haze") and not lab.should_drop("rain")
    assert lab.with_drop_labels(["rain"]).drop_set == {"rain"}


@pytest.mark.parametrize(
    "text,match",
    [
        ("segments:\n  - {start: 1, end: 0.5, label: x}\norigin_ns: 0\n", "end must be after start"),
        ("segments:\n  - {start: 1, end: 2}\norigin_ns: 0\n", "label"),
        ("segments:\n  - {start: one, end: 2, label: x}\norigin_ns: 0\n", "bad time range"),
        ("segments:\n  - {start: 1, end: 2, label: x}\n", "origin_ns"),
        ("clock: wall\norigin_ns: 0\nsegments:\n  - {start: 1, end: 2, label: x}\n", "clock"),
        ("[1, 2]\n", "mapping"),
    ],
)
def test_bad_labels_are_explained(tmp_path, text, match):
    p = tmp_path / "l.yaml"
    p.write_text(text)
    with pytest.raises(LabelsError, match=match):
        Labels.load(p)


@pytest.mark.parametrize(
    "text,match",
    [
        ("segmets:\n  - {start: 1, end: 2, label: haze}\n",
         r"unknown key 'segmets' \(did you mean 'segments'\?\)"),
        ("origin_ns: 0\nsegments:\n  - {start: 1, end: 2, lable: haze, label: x}\n", "did you mean 'label'"),
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("origin_ns: 0\ndefault_label: clear\n", "no 'segments' list"),
        ("version: 2\norigin_ns: 0\nsegments:\n  - {start: 1, end: 2, label: x}\n", "version"),
    ],
)
def test_labels_typo_empty_or_unknown_version_is_an_error(tmp_path, text, match):
    p = tmp_path / "l.yaml"
    p.write_text(text)
    with pytest.raises(LabelsError, match=match):
        Labels.load(p)


def test_labels_topic_not_in_bag_is_an_error_or_a_problem():
    lab = Labels([Segment(0, 10, "haze", "/cam/typo"), Segment(0, 10, "blur", "/cam/b")], source="l.yaml")
    with pytest.raises(LabelsError, match="no segment applies to the evaluated topics"):
        Labels([Segment(0, 10, "haze", "/cam/typo")], source="l.yaml").check_topics(["/cam/a"], ["/cam/a"])
    problems = lab.check_topics(["/cam/a", "/cam/b"], ["/cam/b"])
    assert problems == ["labels: segment 1 (haze) names topic /cam/typo, which is not in the bag"]
    problems = lab.check_topics(["/cam/b", "/cam/typo"], ["/cam/b"])
    assert "is not evaluated" in problems[0]
    assert Labels([Segment(0, 10, "haze")]).check_topics(["/a"], ["/a"]) == []  # every topic
    assert Labels([]).check_topics(["/a"], ["/a"]) == []  # 'segments: []': all default_label
    assert Labels([]).check_times({"/a": [1, 2]}) == []


def test_labels_segments_outside_the_bag_time_range():
    times = {"/a": [100, 200, 300], "/b": [100, 200]}
    with pytest.raises(LabelsError, match="no segment contains any frame"):
        Labels([Segment(10_000, 20_000, "haze", "/a")]).check_times(times)
    lab = Labels([Segment(150, 250, "haze", "/a"), Segment(250, 260, "blur", "/b"), Segment(0, 5, "glare")])
    problems = lab.check_times(times)
    assert len(problems) == 2 and "segment 2 (blur, /b)" in problems[0] and "span [100, 200]" in problems[0]
    assert "segment 3 (glare)" in problems[1]


def _rows(scores, thresholds, topic="/a", start=T0, period=100_000_000):
    gate = FrameGate(thresholds)
    rows = []
    for i, s in enumerate(scores):
        r = FrameRow(topic, start + i * period, stamp_ns=start + i * period)
        lv, sm = gate.update(s)
        r.score, r.smoothed, r.level, r.verdict = s, sm, lv.name, "keep" if lv.name == "OK" else "drop"
        rows.append(r)
    return rows


def test_label_metrics_known_values():
    th = Thresholds(warn=0.5, error=0.3)
    # frames 0-4 clear, 5-9 haze (segment [0.5 s, 1.0 s)), 10-11 clear
    scores = [0.9, 0.8, 0.7, 0.45, 0.85, 0.6, 0.55, 0.4, 0.2, 0.1, 0.95, 0.9]
    rows = _rows(scores, th)
    lab = Labels([Segment(T0 + 500_000_000, T0 + 1_000_000_000, "haze", "/a")], origin_ns=T0)
    m = label_metrics(rows, lab, th, target_frr=0.0, topic="/a")
    assert m["frames_labelled"] == 12 and m["frames_should_drop"] == 5
    # AUROC of keep vs drop = fraction of (keep, drop) pairs with keep > drop, over 7 x 5 pairs
    keep, drop = [0.9, 0.8, 0.7, 0.45, 0.85, 0.95, 0.9], [0.6, 0.55, 0.4, 0.2, 0.1]
    expect = sum((k > d) + 0.5 * (k == d) for k in keep for d in drop) / 35
    assert m["auroc"] == pytest.approx(expect)
    w = m["at_thresholds"]["warn"]  # dropped: 0.45 (clear, FP), 0.4, 0.2, 0.1 (TP)
    assert (w["tp"], w["fp"], w["fn"], w["tn"]) == (3, 1, 2, 6)
    assert w["precision"] == pytest.approx(0.75) and w["recall"] == pytest.approx(0.6)
    assert w["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    e = m["at_thresholds"]["error"]  # ERROR: 0.2, 0.1
    assert (e["tp"], e["fp"]) == (2, 0)
    assert m["per_label"]["haze"]["rejection_rate"] == pytest.approx(0.6)
    assert m["per_label"]["clear"]["rejection_rate"] == pytest.approx(1 / 7)
    seg = m["segments"][0]
    assert seg["frames"] == 5 and seg["detected"]
    assert seg["detection_delay_frames"] == 2  # frames at 0.5 and 0.6 s kept, 0.7 s rejected
    assert seg["detection_delay_s"] == pytest.approx(0.2)
    t = m["threshold_for_target_frr"]  # 0 false rejects allowed: threshold = lowest keep score
    assert t["threshold"] == pytest.approx(0.45) and t["false_reject_rate"] == 0.0
    assert t["recall"] == pytest.approx(0.6)  # 0.4, 0.2, 0.1 below 0.45


def test_undetected_segment_and_one_class_only():
    th = Thresholds(warn=0.5, error=0.3)
    rows = _rows([0.9] * 10, th)
    lab = Labels([Segment(T0 + 200_000_000, T0 + 500_000_000, "blur", "/a")], origin_ns=T0)
    m = label_metrics(rows, lab, th, 0.01, "/a")
    assert m["segments"][0]["detected"] is False and m["segments"][0]["detection_delay_s"] is None
    assert m["at_thresholds"]["warn"]["recall"] == 0.0
    only_clear = Labels([], origin_ns=T0)
    m2 = label_metrics(rows, only_clear, th, 0.01, "/a")
    assert m2["auroc"] is None  # one class only: no AUROC, no crash


def test_frames_outside_segments_without_default_are_unlabelled():
    th = Thresholds()
    rows = _rows([0.9, 0.2, 0.9], th)
    lab = Labels(
        [Segment(T0 + 100_000_000, T0 + 200_000_000, "haze", None)], default_label=None, origin_ns=T0
    )
    assert label_metrics(rows, lab, th, 0.01, "/a")["frames_labelled"] == 1
