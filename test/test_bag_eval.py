"""hirqa bag-eval end to end on real bags with the real ONNX Runtime scorer (random test weights for
plumbing; the shipped model for quality ordering)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")

from helpers_bag import storage_file, tiny_bag, write_custom_bag

from hirqa_ros.bag.evaluate import CSV_COLUMNS, evaluate_bag, read_frames_csv
from hirqa_ros.bag.quality import quality_topic
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.cli.main import main as hirqa
from hirqa_ros.quality_msg import parse


@pytest.fixture(scope="module")
def scorer(random_model_dir):
    from hirqa_ros import load_scorer

    return load_scorer(random_model_dir, backend="onnxruntime")


@pytest.mark.parametrize("storage,compressed", [("mcap", False), ("sqlite3", True)])
def test_scores_every_frame_like_the_scorer(tmp_path, scorer, storage, compressed):
    made = tiny_bag(tmp_path / "b", storage=storage, compressed=compressed)
    res = evaluate_bag(
        made.path,
        tmp_path / "out",
        labels=made.labels_path,
        scorer=scorer,
        batch=3,
        write_bag=True,
        progress=False,
    )
    rows = read_frames_csv(tmp_path / "out" / "frames.csv")
    assert list(rows[0]) == CSV_COLUMNS
    assert len(rows) == made.frames == 20
    topic = made.topics[0]
    # independent check: decode each message ourselves and score one by one
    from hirqa_ros.bag.reader import stamp_ns
    from hirqa_ros.imgmsg import msg_to_rgb

    with BagReader(made.path) as r:
        msgs = [r.deserialize(m) for m in r.messages([topic])]
    ref = np.array([scorer.score([msg_to_rgb(m)])[0] for m in msgs])
    np.testing.assert_allclose([row["score"] for row in rows], ref, atol=1e-5)
    assert [row["stamp_ns"] for row in rows] == [stamp_ns(m) for m in msgs]
    th = scorer.thresholds
    for row in rows:
        assert row["topic"] == topic and row["error"] == ""
        if row["reason"] == "relative_drop":  # the reference gate adds WARNs above the floor only
            assert (row["level"], th.level(row["score"]).name) == ("WARN", "OK")
            assert row["reference"] is not None
        else:
            assert row["level"] == th.level(row["score"]).name
        assert row["verdict"] == ("keep" if row["level"] == "OK" else "drop")
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    t = s["topics"][topic]
    assert (t["frames"], t["scored"], t["errors"]) == (20, 20, 0)
    assert t["rejected_fraction"] == pytest.approx(np.mean([row["verdict"] == "drop" for row in rows]))
    assert t["score"]["p50"] == pytest.approx(float(np.median(ref)), abs=1e-5)
    assert s["backend"] == "onnxruntime" and s["thresholds"]["source"] == "model card"
    lab = t["labels"]
    assert lab["frames_labelled"] == 20 and set(lab["per_label"]) == {"clear", "haze", "blur"}
    assert [g["label"] for g in lab["segments"]] == ["haze", "blur"]
    assert "threshold_for_target_frr" in lab and "auroc" in lab
    assert (tmp_path / "out" / "score_histogram.png").stat().st_size > 1000
    assert (tmp_path / "out" / "timeline_cam_image_raw.png").exists() or any(
        p.name.startswith("timeline_") for p in (tmp_path / "out").iterdir()
    )
    # the bag copy: every original message plus one quality message per frame, header copied
    with BagReader(res.files["bag"]) as r:
        assert r.topics[topic].count == 20
        q = [(m.bag_time_ns, r.deserialize(m)) for m in r.messages([quality_topic(topic)])]
    assert len(q) == 20
    for (bt, msg), row in zip(q, rows):
        assert bt == row["bag_time_ns"]
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == row["stamp_ns"]
        report = parse(msg)  # the consumer parser reads the bag copy like a live message
        assert report.score == pytest.approx(row["score"], abs=1e-6)
        assert report.level.name == row["level"]
        assert report.verdict == row["verdict"]


def test_bad_frames_get_error_rows_and_the_rest_is_scored(tmp_path, scorer):
    info = write_custom_bag(tmp_path / "c")
    res = evaluate_bag(tmp_path / "c", tmp_path / "out", scorer=scorer, progress=False, plots=False)
    rows = read_frames_csv(tmp_path / "out" / "frames.csv")
    comp = {r["stamp_ns"]: r for r in rows if r["topic"] == "/cam/compressed"}
    assert len(comp) == len(info["good"]) + len(info["bad"])
    for t in info["bad"]:
        assert comp[t]["score"] is None and comp[t]["verdict"] == "error" and comp[t]["level"] == ""
        assert "decode" in comp[t]["error"]
    for t in info["good"]:
        assert comp[t]["score"] is not None and comp[t]["verdict"] in ("keep", "drop")
    raw = [r for r in rows if r["topic"] == "/cam/raw"]
    assert raw[0]["score"] is not None and raw[1]["verdict"] == "error"  # second one has short data
    s = res.summary
    assert s["topics"]["/cam/compressed"]["errors"] == 2
    assert s["topics"]["/cam/empty"]["frames"] == 0
    assert any("/cam/empty has no messages" in p for p in s["problems"])
    assert "/cam/exposure" not in s["topics"]


def test_write_bag_skips_a_type_without_definition(tmp_path, scorer):
    import sqlite3

    write_custom_bag(tmp_path / "c")
    con = sqlite3.connect(storage_file(tmp_path / "c"))
    con.execute("DELETE FROM message_definitions WHERE topic_type LIKE 'my_msgs/%'")
    con.commit()
    con.close()
    res = evaluate_bag(
        tmp_path / "c",
        tmp_path / "out",
        topics=["/cam/compressed"],
        scorer=scorer,
        write_bag=True,
        progress=False,
        plots=False,
    )
    with BagReader(res.files["bag"]) as r:
        assert "/cam/exposure" not in r.topics and r.topics["/status"].count == 8
        assert r.topics["/cam_quality"].count == 6  # base /cam of /cam/compressed
    assert any("my_msgs/msg/Exposure" in p for p in res.problems)


def test_cli_exit_codes_and_partial_results(tmp_path, random_model_dir, capsys):
    made = tiny_bag(tmp_path / "b", storage="mcap", duration_s=2.0)
    base = ["bag-eval", "--model", str(random_model_dir), "--backend", "onnxruntime", "--no-progress"]
    # truncated bag: partial results, the problem is printed; a labelled segment that lies in the
    # lost part contains no frame, so the label metrics are partial: exit 1 and the problem named
    f = storage_file(made.path)
    f.write_bytes(f.read_bytes()[: int(f.stat().st_size * 0.6)])
    assert (
        hirqa(
            [
                *base,
                str(made.path),
                "--out",
                str(tmp_path / "o1"),
                "--labels",
                str(made.labels_path),
                "--threshold",
                "0.6,0.2",
                "--no-plots",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "truncated" in out and "contains no frame" in out
    rows = read_frames_csv(tmp_path / "o1" / "frames.csv")
    assert 3 <= len(rows) < 20
    s = json.loads((tmp_path / "o1" / "summary.json").read_text())
    assert s["thresholds"] == {"warn": 0.6, "error": 0.2, "source": "command line"}
    # nothing readable: exit 2 and a clear message, no crash
    (tmp_path / "junk").mkdir()
    assert hirqa([*base, str(tmp_path / "junk"), "--out", str(tmp_path / "o2")]) == 2
    # only non-image topics requested: exit 2
    write_custom_bag(tmp_path / "c")
    assert hirqa([*base, str(tmp_path / "c"), "--topic", "/status", "--out", str(tmp_path / "o3")]) == 2
    # every frame undecodable: outputs written, exit 1
    write_custom_bag(tmp_path / "g", n_good=0, garbage=3, extra_topics=False)
    assert (
        hirqa([*base, str(tmp_path / "g"), "--topic", "/cam/compressed", "--out", str(tmp_path / "o4")]) == 1
    )
    assert len(read_frames_csv(tmp_path / "o4" / "frames.csv")) == 3


def test_multi_topic_bag_and_topic_selection(tmp_path, scorer):
    made = tiny_bag(tmp_path / "b", topics=("/front/image_raw", "/rear/image_raw"), duration_s=1.0)
    res = evaluate_bag(
        made.path,
        tmp_path / "out",
        topics=["/rear/image_raw"],
        labels=made.labels_path,
        scorer=scorer,
        progress=False,
        plots=False,
    )
    assert set(res.summary["topics"]) == {"/rear/image_raw"}
    assert {r.topic for r in res.rows} == {"/rear/image_raw"}
    both = evaluate_bag(made.path, tmp_path / "out2", scorer=scorer, progress=False, plots=True)
    assert set(both.summary["topics"]) == {"/front/image_raw", "/rear/image_raw"}
    assert len(both.files["timeline"]) == 2


def test_missing_metadata_bag_is_evaluated(tmp_path, scorer):
    made = tiny_bag(tmp_path / "b", duration_s=1.0)
    (made.path / "metadata.yaml").unlink()
    res = evaluate_bag(made.path, tmp_path / "out", scorer=scorer, progress=False, plots=False)
    assert res.scored == 10 and any("metadata.yaml is missing" in p for p in res.problems)


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_real_model_separates_degraded_segments(tmp_path, default_model_dir):
    import cv2

    import hirqa_ros
    from hirqa_ros import load_scorer
    from hirqa_ros.bag.make_bag import SegmentSpec, make_bag

    # real photographs (the shipped samples, held out from training): the model was trained on
    # photos, so synthetic shape-and-gradient frames are no test of its quality ranking
    samples = sorted((Path(hirqa_ros.__file__).parent / "data" / "samples").glob("*.jpg"))
    photos = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in samples]
    assert photos, "no sample photos shipped in hirqa_ros/data/samples"
    sc = load_scorer(default_model_dir, backend="onnxruntime")
    segs = [
        SegmentSpec(1.0, 2.0, "haze", 5),
        SegmentSpec(3.0, 4.0, "gaublur", 5, "blur"),
        SegmentSpec(5.0, 6.0, "low_light", 5),
    ]
    made = make_bag(
        tmp_path / "b",
        frames_from=photos,
        size=(320, 240),
        rate_hz=5,
        duration_s=7.0,
        segments=segs,
        labels_out=tmp_path / "l.yaml",
        hold_frames=5,
    )
    res = evaluate_bag(made.path, tmp_path / "out", labels=made.labels_path, scorer=sc, progress=False)
    lab = res.summary["topics"][made.topics[0]]["labels"]
    assert lab["auroc"] > 0.8, lab
    clear = lab["per_label"]["clear"]["mean_score"]
    for name in ("haze", "blur", "low_light"):
        assert lab["per_label"][name]["mean_score"] < clear, (name, lab["per_label"])


def test_bag_copy_keeps_custom_types(tmp_path, scorer):
    write_custom_bag(tmp_path / "c", storage="mcap")
    res = evaluate_bag(
        tmp_path / "c", tmp_path / "out", scorer=scorer, write_bag=True, progress=False, plots=False
    )
    with BagReader(res.files["bag"]) as r:
        assert r.topics["/cam/exposure"].count == 8
        m = next(iter(r.messages(["/cam/exposure"])))
        assert r.deserialize(m).gain == 1.5
    shutil.rmtree(tmp_path / "out")


def test_bag_without_image_topics_is_refused_clearly(tmp_path, scorer):
    from rosbags.rosbag2 import Writer

    from hirqa_ros.bag.evaluate import NothingToEvaluate
    from hirqa_ros.bag.reader import default_typestore

    ts = default_typestore()
    with Writer(tmp_path / "s", version=9) as w:
        c = w.add_connection("/status", "std_msgs/msg/String", typestore=ts)
        w.write(c, 1, ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="x"), "std_msgs/msg/String"))
    with pytest.raises(NothingToEvaluate, match=r"no sensor_msgs/Image.*/status \(std_msgs/msg/String\)"):
        evaluate_bag(tmp_path / "s", tmp_path / "out", scorer=scorer, progress=False)


def test_smoothing_is_the_gates(tmp_path, scorer):
    from hirqa_ros.decision import FrameGate, Thresholds
    from hirqa_ros.reference import ReferenceParams

    made = tiny_bag(tmp_path / "b", duration_s=1.0, labels=False)
    th = Thresholds(0.45, 0.3)
    res = evaluate_bag(
        made.path, tmp_path / "out", scorer=scorer, thresholds=th, smoothing=0.7, progress=False, plots=False,
        reference=ReferenceParams(relative=False),
    )
    gate = FrameGate(th, 0.7)
    for r in res.rows:
        level, smoothed = gate.update(r.score)
        assert (r.level, r.smoothed) == (level.name, pytest.approx(smoothed))
    assert res.summary["smoothing"] == 0.7
