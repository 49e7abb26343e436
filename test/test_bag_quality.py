"""`hirqa bag-quality`: recorded B_quality messages read back through the consumer parser (real bags,
real ONNX Runtime with random test weights)."""
from __future__ import annotations

import csv

import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip extra [bag])")

from helpers_bag import tiny_bag

from hirqa_ros.bag.evaluate import evaluate_bag, read_frames_csv
from hirqa_ros.bag.quality import DIAGNOSTIC_ARRAY, quality_topic
from hirqa_ros.bag.recorded_quality import read_recorded_quality
from hirqa_ros.cli.main import main as hirqa


@pytest.fixture(scope="module")
def quality_bag(tmp_path_factory, random_model_dir):
    """bag-eval's copy of a 20-frame compressed camera bag, with one B_quality message per frame."""
    from hirqa_ros import load_scorer

    tmp = tmp_path_factory.mktemp("bq")
    made = tiny_bag(tmp / "b", compressed=True)
    scorer = load_scorer(random_model_dir, backend="onnxruntime")
    res = evaluate_bag(made.path, tmp / "out", scorer=scorer, write_bag=True, progress=False, plots=False)
    return made, res.files["bag"], read_frames_csv(tmp / "out" / "frames.csv")


def test_reads_every_quality_message_with_the_parser(quality_bag):
    made, bag, rows = quality_bag
    rec = read_recorded_quality(bag)
    topic = quality_topic(made.topics[0])
    assert topic.endswith("_quality") and not rec.refused
    assert [t for t, _, _ in rec.rows] == [topic] * len(rows)
    for (_, bag_time, r), row in zip(rec.rows, rows):
        assert bag_time == row["bag_time_ns"] and r.stamp_ns == row["stamp_ns"]
        assert r.score == pytest.approx(row["score"], abs=1e-6) and r.verdict == row["verdict"]
        assert r.schema == "hirqa_quality/2" and r.latency_ms is None  # live-only keys are empty in copies
    s = rec.summary()[topic]
    assert s["messages"] == 20 and 0.0 <= s["kept_fraction"] <= 1.0 and s["schemas"] == ["hirqa_quality/2"]


def test_foreign_diagnostic_arrays_are_counted_not_guessed(tmp_path):
    """A DiagnosticArray topic that is not ours is refused with the parser's reason."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from hirqa_ros.bag.reader import default_typestore

    ts = default_typestore()
    T = ts.types
    kv = T["diagnostic_msgs/msg/KeyValue"](key="volts", value="12")
    st = T["diagnostic_msgs/msg/DiagnosticStatus"](level=0, name="battery", message="ok", hardware_id="b",
                                                   values=[kv])
    hdr = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="")
    msg = T[DIAGNOSTIC_ARRAY](header=hdr, status=[st])
    path = tmp_path / "foreign"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        for topic in ("/battery_quality", "/diagnostics"):
            c = w.add_connection(topic, DIAGNOSTIC_ARRAY, typestore=ts)
            w.write(c, 1, ts.serialize_cdr(msg, DIAGNOSTIC_ARRAY))
    rec = read_recorded_quality(path)
    assert not rec.rows
    reason = ("hirqa_quality/1 message lacks key(s) score, smoothed_score, verdict, warn_threshold, "
              "error_threshold, backend, batch_size, frame")
    assert list(rec.refused.items()) == [(("/battery_quality", reason), 1)]  # /diagnostics is not read
    assert hirqa(["bag-quality", str(path)]) == 1


def test_cli_summary_csv_and_exit_codes(quality_bag, tmp_path, capsys):
    made, bag, _ = quality_bag
    out = tmp_path / "q.csv"
    assert hirqa(["bag-quality", str(bag), "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert quality_topic(made.topics[0]) in text and "wrote" in text
    with open(out) as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 20 and lines[0]["schema"] == "hirqa_quality/2"
    assert hirqa(["bag-quality", str(made.path)]) == 1  # a camera bag: no quality topic
    assert "no quality message found" in capsys.readouterr().out
    assert hirqa(["bag-quality", str(tmp_path / "nope")]) == 2


def test_summary_counts_inherited_messages_apart():
    """gate_mode state records a copy of an earlier verdict per forwarded frame: the statistics stay
    those of the scored frames."""
    from dataclasses import replace

    from hirqa_ros.bag.recorded_quality import RecordedQuality
    from hirqa_ros.decision import Level
    from hirqa_ros.quality_msg import QualityReport

    base = QualityReport(schema="hirqa_quality/2", stamp_ns=1, frame_id="c", name="n", hardware_id="c",
                         level=Level.WARN, message="", score=0.2, smoothed_score=0.2, verdict="drop",
                         warn_threshold=0.5, error_threshold=0.3, backend="ort", batch_size=1, frame=1)
    keep = replace(base, level=Level.OK, score=0.8, smoothed_score=0.8, verdict="keep", stamp_ns=2, frame=2)
    copies = [replace(keep, stamp_ns=3 + k, verdict_source="inherited", verdict_stamp_ns=2) for k in range(8)]
    rec = RecordedQuality(rows=[("/q", i, r) for i, r in enumerate([base, keep, *copies])])
    s = rec.summary()["/q"]
    assert s["messages"] == 10 and s["inherited_messages"] == 8
    assert s["mean_score"] == pytest.approx(0.5) and s["kept_fraction"] == pytest.approx(0.5)
