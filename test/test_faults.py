"""The per-frame fault class: rules (hirqa_ros.faults), the Scorer applying a model's head, the monitor,
node statistics, `hirqa score` and `hirqa bag-eval` outputs.

Plumbing runs on seeded RANDOM weights with a toy head fitted in the test (helpers_faults: a test
fixture, not a model). What the shipped head says about real photos: test_shipped_head_* (skipped
while the shipped model has no fault head).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_faults import TOY_CLASSES, toy_frames, toy_head_model_dir

from hirqa_ros.bag.labels import Labels, Segment
from hirqa_ros.content import ContentLimits
from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.faults import (
    NO_FAULT,
    dominant_fault,
    fault_confusion,
    format_confusion,
    gated_fault,
    label_fault_class,
)
from hirqa_ros.heads import FAULT_CLASSES, load_fault_head
from hirqa_ros.monitor import CameraMonitor, run_frames
from hirqa_ros.node.stats import CameraStats

RANKED = (("none", 0.6), ("motion_blur", 0.25), ("haze", 0.1), ("blur", 0.05))


# ---- rules --------------------------------------------------------------------------------------
def test_kept_frame_is_none_dropped_frame_names_the_likeliest_fault():
    assert gated_fault(Level.OK, RANKED) == ("none", 0.6, RANKED[:3])
    # dropped although the head leans to none: the likeliest fault, with its (low) probability
    assert gated_fault(Level.WARN, RANKED) == ("motion_blur", 0.25, RANKED[:3])
    ranked = (("haze", 0.7), ("none", 0.2), ("glare", 0.1))
    assert gated_fault(Level.ERROR, ranked)[:2] == ("haze", 0.7)
    fault, conf, _ = gated_fault(Level.OK, ranked)  # kept: none, with the head's own P(none)
    assert (fault, conf) == ("none", 0.2)
    assert gated_fault(Level.WARN, (("none", 1.0),))[:2] == ("none", 1.0)  # a head with one class


def test_dominant_fault_of_a_window():
    assert dominant_fault([]) is None and dominant_fault([None, ""]) is None
    assert dominant_fault(["haze", None, "haze", "blur", "haze"]) == ("haze", 0.75)
    assert dominant_fault(["haze", "blur"]) == ("blur", 0.5)  # tie: the most recent


def test_labels_name_fault_classes():
    assert label_fault_class("haze") == "haze" and label_fault_class("motion_blur") == "motion_blur"
    assert label_fault_class("defocus") == "blur" and label_fault_class("shake") == "motion_blur"
    assert label_fault_class("darken") == "low_light" and label_fault_class("jpeg") == "compression"
    assert label_fault_class("clear", {"clear"}) == NO_FAULT and label_fault_class("rain") is None
    assert label_fault_class(None) is None


class _Row:
    def __init__(self, t: float, fault: str | None, verdict: str, topic: str = "/cam") -> None:
        self.topic, self.stamp_ns, self.bag_time_ns = topic, int(t * 1e9), int(t * 1e9)
        self.fault, self.verdict = fault, verdict


def _labels(**kw) -> Labels:
    segs = [Segment(int(1e9), int(2e9), "haze"), Segment(int(2e9), int(3e9), "defocus"),
            Segment(int(3e9), int(4e9), "rain")]
    return Labels(segs, default_label="clear", **kw)


def test_confusion_against_labels():
    rows = [_Row(0.5, "none", "keep"), _Row(0.6, "haze", "drop"),  # clear
            _Row(1.1, "haze", "drop"), _Row(1.2, "haze", "drop"), _Row(1.3, "none", "keep"),  # haze
            _Row(2.1, "blur", "drop"), _Row(2.2, "motion_blur", "drop"),  # defocus = blur
            _Row(3.5, "other", "drop"),  # rain: names no fault type
            _Row(4.5, None, "error")]  # no class (refused)
    conf = fault_confusion(rows, _labels())
    assert conf["confusion"] == {"none": {"none": 1, "haze": 1}, "blur": {"blur": 1, "motion_blur": 1},
                                 "haze": {"none": 1, "haze": 2}}
    assert conf["accuracy"] == {"none": 0.5, "blur": 0.5, "haze": pytest.approx(2 / 3)}
    assert conf["unmapped_labels"] == {"rain": 1}
    assert conf["label_classes"] == {"clear": "none", "defocus": "blur", "haze": "haze"}
    assert conf["rejected_with_fault_label"] == 4 and conf["rejected_accuracy"] == 0.75
    text = format_confusion(conf)
    assert text.splitlines()[0].split()[-1] == "right" and "67%" in text
    assert fault_confusion(rows, _labels(), topic="/other") is None  # no frame of that topic
    # labels that name no fault type, or a model without a head: no table
    only_rain = Labels([Segment(int(1e9), int(2e9), "rain")], default_label="clear")
    assert fault_confusion(rows, only_rain) is None
    assert fault_confusion([_Row(1.5, None, "drop")], _labels()) is None
    # a label the user marks keep is `none` (the gate should keep it)
    keep_haze = fault_confusion(rows, _labels(drop_labels=frozenset({"defocus"})))
    assert keep_haze["label_classes"]["haze"] == "none"


def test_node_stats_name_the_dominant_fault_of_the_window():
    s = CameraStats("/cam", window=10)
    s.report(now=0.0)
    faults = ["motion_blur"] * 6 + ["haze"] * 2
    for i, f in enumerate([*faults, None, None]):
        s.on_receive(0.1 * i)
        level = Level.OK if f is None else Level.ERROR
        s.on_scored(0.3 if f else 0.9, level, 5.0, 1, "none" if f is None else f)
    level, msg, values = s.report(now=1.0)
    assert values["dominant_fault"] == "motion_blur" and values["dominant_fault_fraction"] == "0.750"
    assert values["reject_fraction"] == "0.800"
    assert "rejecting 80 % of frames: motion_blur" in msg
    plain = CameraStats("/cam2")  # no fault head: no class, the message still says what is rejected
    plain.on_receive(0.0)
    plain.on_scored(0.3, Level.ERROR, 5.0, 1)
    _, msg, values = plain.report(now=0.1)
    assert values["dominant_fault"] == "" and "rejecting 100 % of frames" in msg and "frames:" not in msg


# ---- scorer and monitor -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def head_dir(random_model_dir, tmp_path_factory):
    return toy_head_model_dir(random_model_dir, tmp_path_factory.mktemp("toyhead") / "with_head")


@pytest.fixture(scope="module")
def head_scorer(head_dir):
    from hirqa_ros import load_scorer

    return load_scorer(head_dir, backend="onnxruntime")


def _classes(scorer, frames) -> list[str]:
    p = scorer.infer(frames).fault_probs
    return [scorer.fault_classes[i] for i in p.argmax(axis=1)]


def test_scorer_applies_the_head_of_the_model_dir(head_scorer, random_model_dir):
    from hirqa_ros import load_scorer

    assert head_scorer.fault_classes == FAULT_CLASSES
    frames = toy_frames()  # the frames the toy head was fitted on (it is no model: it knows only those)
    for cls, fr in frames.items():
        inf = head_scorer.infer(fr)
        assert inf.fault_probs.shape == (len(fr), len(FAULT_CLASSES))
        assert np.allclose(inf.fault_probs.sum(axis=1), 1.0, atol=1e-5)
        # the same numbers as the head file applied to the returned embeddings
        head = load_fault_head(head_scorer.artifact)
        np.testing.assert_allclose(inf.fault_probs, head.predict(inf.embeddings), atol=1e-6)
        assert _classes(head_scorer, fr) == [cls] * len(fr)
    plain = load_scorer(random_model_dir, backend="onnxruntime")
    assert plain.fault_classes is None and plain.infer(frames["none"]).fault_probs is None


def test_head_without_embedding_warns_once_and_scores(head_dir, caplog):
    """A backend that returns no embedding (an ONNX exported before `embedding` existed): the
    frames keep their scores, get no class, and the log says why once. The backend's output is
    cut down by a wrapper (a fake for a file this repo no longer produces)."""
    from hirqa_ros import load_scorer

    sc = load_scorer(head_dir, backend="onnxruntime")
    real = sc.impl.infer
    sc.impl.infer = lambda batch: (real(batch)[0], None)
    with caplog.at_level(logging.WARNING, logger="hirqa_ros.scorer"):
        a = sc.infer(toy_frames()["blur"])
        b = sc.infer(toy_frames()["none"])
    assert a.fault_probs is None and b.fault_probs is None and np.all((a.scores > 0) & (a.scores < 1))
    assert sum("returned no embedding" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("th,expect", [((0.0, 0.0), "kept"), ((1.0, 1.0), "dropped")])
def test_monitor_fills_the_gated_fault(head_scorer, th, expect):
    frames = toy_frames()
    checked, truth = [], []
    # the toy frames are flat colour fields: no-content checks off, this test is about the fault rule
    off = ContentLimits(black_level=-1, white_level=256, uniform_range=-1, frozen_s=0)
    monitor = CameraMonitor("/cam", Thresholds(*th), min_side=16, content=off)
    for cls in TOY_CLASSES:
        checked.append(monitor.check(frames[cls][0]))
        truth.append(cls)
    checked.append(monitor.check(np.zeros((8, 8, 3), np.uint8)))  # refused: too small
    results = run_frames(head_scorer, checked)
    for cls, res in zip(truth, results):
        assert res.scored and len(res.fault_top3) == 3
        assert res.fault_top3[0][0] == cls  # the head's own top class, ungated
        if expect == "kept":
            assert res.fault == "none"
        elif cls != "none":
            assert res.fault == cls  # dropped: the head's class
        else:
            assert res.fault != "none"  # dropped although the head says none: the likeliest fault
        top = dict(res.fault_top3)
        assert res.fault_confidence == pytest.approx(top.get(res.fault, res.fault_confidence))
    assert results[-1].reason == "too_small" and results[-1].fault is None


def test_backends_agree_on_the_class(head_dir):
    pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
    from hirqa_ros import load_scorer

    frames = [f for fr in toy_frames().values() for f in fr]
    ort = load_scorer(head_dir, backend="onnxruntime").infer(frames)
    pt = load_scorer(head_dir, backend="torch", device="cpu").infer(frames)
    assert list(ort.fault_probs.argmax(1)) == list(pt.fault_probs.argmax(1))
    np.testing.assert_allclose(ort.fault_probs, pt.fault_probs, atol=1e-3)


def test_head_latency_beside_inference(head_scorer):
    """Report (not assert: no wall-time asserts) what the head adds to inference: one 480x640 frame,
    ONNX Runtime CPU; assert that the head timed alone is the one inference runs (same probabilities)."""
    frame = np.ascontiguousarray(np.resize(toy_frames()["none"][0], (480, 640, 3)))
    head = head_scorer.fault_head
    head_scorer.infer([frame])  # warm up
    t_inf, t_head = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        out = head_scorer.infer([frame])
        emb = out.embeddings
        t_inf.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(100):
            head.predict(emb)
        t_head.append((time.perf_counter() - t0) / 100)
    probs = head.predict(emb)
    assert probs.shape == (1, len(head.classes)) and np.isclose(probs.sum(), 1.0)
    np.testing.assert_allclose(probs, out.fault_probs, atol=1e-6)
    inf_ms, head_ms = 1000 * min(t_inf), 1000 * min(t_head)
    print(f"\nfault head {head_ms:.3f} ms vs inference {inf_ms:.1f} ms per 480x640 frame "
          f"({100 * head_ms / inf_ms:.3f} %; toy head of the same shape as a linear shipped head)")


# ---- hirqa score ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_images(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("toyimg")
    for cls, fr in toy_frames().items():
        cv2.imwrite(str(d / f"{cls}.png"), cv2.cvtColor(fr[0], cv2.COLOR_RGB2BGR))
    return d


def test_score_cli_outputs_the_fault(head_dir, random_model_dir, toy_images, capsys):
    from hirqa_ros.cli.main import main

    def run(*args: str, model=head_dir) -> str:
        no_checks = ["--no-content-black-level", "-1", "--no-content-white-level", "256",
                     "--no-content-uniform-range", "-1"]  # flat toy colour fields: this test is about faults
        argv = ["score", "--model", str(model), "--no-progress", *no_checks, *args, str(toy_images)]
        assert main(argv) == 0
        return capsys.readouterr().out

    rows = [json.loads(line) for line in run("--jsonl").splitlines()]
    assert len(rows) == 3 and all({"fault", "fault_confidence"} <= set(r) for r in rows)
    for r in rows:  # the card's thresholds: a kept frame says none, a dropped one a fault
        assert (r["fault"] == "none") == (r["level"] == "OK") and 0 <= r["fault_confidence"] <= 1
    table = run().splitlines()
    assert table[0].split() == ["source", "frame", "score", "level", "reason", "fault", "fault_confidence"]
    by_src = {Path(r["source"]).stem: r for r in rows}
    for line in table[1:]:
        src, _, level, _, fault, conf = line.split()  # a still image has no frame index; reason "-"
        r = by_src[Path(src).stem]
        assert (level, fault) == (r["level"], r["fault"])
        assert float(conf) == pytest.approx(r["fault_confidence"], abs=0.01)
    got = list(csv.DictReader(io.StringIO(run("--csv"))))
    assert [g["fault"] for g in got] == [r["fault"] for r in rows]
    assert all(abs(float(g["fault_confidence"]) - r["fault_confidence"]) < 1e-4 for g, r in zip(got, rows))
    # a model without a head: keys stay, values null; the table has no fault columns
    plain = [json.loads(line) for line in run("--jsonl", model=random_model_dir).splitlines()]
    assert all(r["fault"] is None and r["fault_confidence"] is None for r in plain)
    header = run(model=random_model_dir).splitlines()[0].split()
    assert header == ["source", "frame", "score", "level", "reason"]


# ---- hirqa bag-eval ------------------------------------------------------------------------------
def test_bag_eval_frames_csv_summary_confusion_and_plot(head_dir, tmp_path, capsys):
    pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")
    pytest.importorskip("matplotlib", reason="matplotlib not installed (pip install -e \".[bag]\")")
    from helpers_node import scene

    from hirqa_ros.bag.evaluate import read_frames_csv
    from hirqa_ros.bag.make_bag import SegmentSpec, make_bag
    from hirqa_ros.cli.main import main

    segs = [SegmentSpec(0.5, 1.0, "gaublur", 5, "blur"), SegmentSpec(1.2, 1.7, "low_light", 5),
            SegmentSpec(1.7, 1.9, "colordiff", 3, "rain")]
    made = make_bag(tmp_path / "b", frames_from=[scene(96, 128, s) for s in range(3)], size=(128, 96),
                    rate_hz=10, duration_s=2.0, segments=segs, labels_out=tmp_path / "l.yaml", hold_frames=5,
                    storage="mcap")
    def bag_eval(out: str, *extra: str) -> list[dict]:
        assert main(["bag-eval", str(made.path), "--labels", str(made.labels_path), "--model", str(head_dir),
                     "--backend", "onnxruntime", "--out", str(tmp_path / out), "--no-progress", *extra]) == 0
        return read_frames_csv(tmp_path / out / "frames.csv")

    # warn threshold at the median score, so about half the frames are dropped (random weights:
    # scores mean nothing)
    median = float(np.median([r["score"] for r in bag_eval("first", "--no-plots")]))
    capsys.readouterr()
    rows = bag_eval("out", "--threshold", f"{median:.7f},0.0")
    printed = capsys.readouterr().out
    assert len(rows) == 20 and all(r["fault"] in FAULT_CLASSES for r in rows)
    assert 0 < sum(r["verdict"] == "drop" for r in rows) < 20
    assert all((r["fault"] == "none") == (r["verdict"] == "keep") for r in rows)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    topic = made.topics[0]
    t = summary["topics"][topic]
    dropped = [r["fault"] for r in rows if r["verdict"] == "drop"]
    assert sum(t["rejected_by_fault"].values()) == len(dropped) == t["rejected"]
    conf = summary["labels"]["all_topics"]["fault_confusion"]
    assert conf == t["labels"]["fault_confusion"]  # one topic
    assert conf["label_classes"] == {"blur": "blur", "clear": "none", "low_light": "low_light"}
    assert conf["unmapped_labels"] == {"rain": 2}
    # recount from frames.csv and the labels, independently of fault_confusion
    labels = Labels.load(made.labels_path)
    recount: dict[str, dict[str, int]] = {}
    for r in rows:
        name = labels.label_at(topic, r["stamp_ns"])
        truth = {"clear": "none", "blur": "blur", "low_light": "low_light"}.get(name)
        if truth:
            recount.setdefault(truth, {}).setdefault(r["fault"], 0)
            recount[truth][r["fault"]] += 1
    assert conf["confusion"] == recount
    assert "fault class against the labels" in printed and "right" in printed
    assert (tmp_path / "out" / f"timeline_{topic.strip('/').replace('/', '_')}.png").stat().st_size > 0


SHIPPED_BLUR_SHORTFALL = pytest.mark.xfail(
    strict=True, reason="gaussian blur at severity 4: the shipped score keeps 2 of the 5 samples (dune, fig: "
    "above WARN, so `none`); the other 3 are named `blur` (card: blur 63 % right at severity >= 3); "
    "an XPASS means a better model shipped: drop this mark")


@pytest.mark.parametrize("fault,distortion", [pytest.param("blur", "gaublur", marks=SHIPPED_BLUR_SHORTFALL),
                                              ("low_light", "low_light"), ("haze", "haze")])
def test_shipped_head_names_the_fault_of_every_sample(default_model_dir, fault, distortion):
    """The shipped model on every held-out photo of the package (its samples) degraded at severity 4,
    through the pipeline with the card's thresholds: the frame is dropped and named right."""
    pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
    import cv2

    import hirqa_ros
    from hirqa_ros import load_scorer
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.degradations import degrade

    if load_fault_head(load_artifact(default_model_dir)) is None:
        pytest.skip("shipped model has no fault head")
    sc = load_scorer(default_model_dir, backend="onnxruntime")
    samples = sorted((Path(hirqa_ros.__file__).parent / "data" / "samples").glob("*.jpg"))
    got = {}
    for path in samples:
        photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        monitor = CameraMonitor("/cam", sc.thresholds)
        r = run_frames(sc, [monitor.check(degrade(photo, distortion, 4))])[0]
        got[path.name] = (r.fault, round(r.score, 3))
    assert all(f == fault for f, _ in got.values()), got


@pytest.mark.slow
def test_shipped_head_backends_agree_on_the_class(default_model_dir):
    """torch and ONNX Runtime give the shipped head the same class on held-out photos, clean and degraded."""
    pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
    import cv2

    import hirqa_ros
    from hirqa_ros import load_scorer
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.degradations import degrade

    if load_fault_head(load_artifact(default_model_dir)) is None:
        pytest.skip("shipped model has no fault head")
    frames = []
    for path in sorted((Path(hirqa_ros.__file__).parent / "data" / "samples").glob("*.jpg"))[:3]:
        photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        frames += [photo] + [degrade(photo, t, 4) for t in ("gaublur", "shake", "low_light", "haze", "jpeg")]
    ort = load_scorer(default_model_dir, backend="onnxruntime").infer(frames).fault_probs
    pt = load_scorer(default_model_dir, backend="torch", device="cpu").infer(frames).fault_probs
    np.testing.assert_allclose(ort, pt, atol=1e-4)
    top2 = np.sort(ort, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2e-4  # no near-tie between the two best classes
    assert clear.sum() >= len(frames) - 1
    assert list(ort.argmax(1)[clear]) == list(pt.argmax(1)[clear])
