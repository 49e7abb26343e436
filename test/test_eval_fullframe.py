"""The full-frame protocol (whole camera frames, distortions rendered at their size) and the fault report."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers_eval import synthetic_scene

from hirqa_ros.cli.main import main
from hirqa_ros.evaluation.faults import fault_report, format_fault_report, plot_confusion
from hirqa_ros.evaluation.synthetic import (
    ProtocolConfig,
    ProtocolScores,
    camera_frame,
    make_views,
    score_protocol,
)
from hirqa_ros.heads import FAULT_CLASSES

pytest.importorskip("torch", reason="the distortion library runs on torch")


def test_camera_frame_shrinks_to_cover_and_cuts_at_a_seeded_position():
    photo = synthetic_scene(300, 500, seed=1)
    a = camera_frame(photo, (160, 120), np.random.default_rng(0))
    b = camera_frame(photo, (160, 120), np.random.default_rng(0))
    assert a.shape == (120, 160, 3) and np.array_equal(a, b)
    tall = camera_frame(photo, (100, 280), np.random.default_rng(0))  # needs the full height: 300 -> 280
    assert tall.shape == (280, 100, 3)
    big = camera_frame(photo, (640, 480), np.random.default_rng(0))  # smaller photo: enlarged
    assert big.shape == (480, 640, 3)


def test_full_frame_views_take_the_sizes_in_turn_and_windows_keep_native_scale():
    photos = [(f"p{i}", synthetic_scene(200, 260, seed=i)) for i in range(4)]
    cfg = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((96, 64), (128, 96)), batch_size=4)
    views = make_views(photos, cfg)
    assert [v.shape[:2] for _, v in views] == [(64, 96), (96, 128), (64, 96), (96, 128)]
    assert views[1][0] == "p1#0@128x96"
    cfg = ProtocolConfig(crop=48, resize_side=0, frame_sizes=((128, 96),), crops_per_image=2)
    win = make_views(photos, cfg)
    assert len(win) == 8 and all(v.shape == (48, 48, 3) for _, v in win)
    assert win[0][0] == "p0#0@128x96/48"


def test_aux_outputs_are_stored_and_the_fault_report_counts_right():
    photos = [(f"p{i}", synthetic_scene(90, 120, seed=i)) for i in range(2)]
    cfg = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((96, 64),), batch_size=5)
    types = ["gaublur", "jpeg_camera"]
    n_cls = len(FAULT_CLASSES)

    def fn(frames):  # "predicts" blur for sharpness loss, else none: blur right, compression wrong
        out = np.zeros((len(frames), n_cls), np.float32)
        lap = np.array([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in frames])
        out[np.arange(len(frames)), np.where(lap < 200, 1, 0)] = 1
        return lap.astype(np.float32), out

    ps = score_protocol({"model": fn}, photos, types, cfg)
    assert ps.aux["model"].shape == (2, 2, 6, n_cls) and not np.isnan(ps.aux["model"]).any()
    rep = fault_report(ps)
    assert rep["per_type"]["jpeg_camera"]["class"] == "compression"
    assert rep["per_type"]["jpeg_camera"]["accuracy"] == 0.0
    conf = np.asarray(rep["confusion"])
    assert conf.sum() == 2 * 2 * 3 + 2  # drop-level images of both types + the pristine views
    blur = rep["per_type"]["gaublur"]
    assert conf[1, 1] == round(blur["accuracy"] * blur["n"])
    assert "severity >= 3" in format_fault_report(rep)


def test_fault_report_counts_the_published_fault_and_names_the_head_argmax_apart():
    """With the class the doors publish (gated by the level), the report counts that; the head's own
    arg-max is the second, named number."""
    ps = ProtocolScores(["haze"], ["camera"], ["v0", "v1"], ProtocolConfig(), {"model": np.zeros((2, 1, 6))})
    probs = np.zeros((2, 1, 6, len(FAULT_CLASSES)), np.float32)
    haze, none = FAULT_CLASSES.index("haze"), FAULT_CLASSES.index("none")
    probs[..., haze] = 1  # the head always says haze
    ps.aux["model"] = probs
    published = np.full((2, 1, 6), haze)
    published[0] = none  # the gate kept every frame of view 0: the doors say none there
    ps.published["model"] = published
    rep = fault_report(ps)
    assert rep["basis"] == "published"
    assert rep["accuracy_drop_level"] == 0.5 and rep["pristine_none"] == 0.5
    assert rep["head_argmax"] == {"accuracy_drop_level": 1.0, "pristine_none": 0.0}
    assert "gated" in format_fault_report(rep) and "arg-max, ungated: 100.0%" in format_fault_report(rep)


def test_fault_report_needs_probabilities(tmp_path):
    ps = ProtocolScores(["haze"], ["camera"], ["v"], ProtocolConfig(), {"model": np.zeros((1, 1, 6))})
    with pytest.raises(ValueError, match="no class probabilities"):
        fault_report(ps)
    probs = np.zeros((1, 1, 6, len(FAULT_CLASSES)), np.float32)
    probs[..., 3] = 1  # always haze
    ps.aux["model"] = probs
    rep = fault_report(ps)
    assert rep["accuracy_drop_level"] == 1.0 and rep["pristine_none"] == 0.0
    plot_confusion(rep, tmp_path / "c.png")
    assert cv2.imread(str(tmp_path / "c.png")) is not None


def test_hirqa_eval_full_frame_end_to_end(random_model_dir, tmp_path, capsys):
    d = tmp_path / "val"
    d.mkdir()
    for i in range(2):
        cv2.imwrite(str(d / f"img{i}.png"), synthetic_scene(150, 200, seed=20 + i))
    out = tmp_path / "ff.json"
    rc = main(["eval", "--full-frame", "--model", str(random_model_dir), "--backend", "onnxruntime",
               "--images", str(d), "--frame-sizes", "96x64", "128x96", "--types", "shake", "jpeg_camera",
               "--json", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "whole frames 96x64, 128x96" in text and "shake" in text and "POOLED" in text
    rep = json.loads(out.read_text())
    assert rep["synthetic"]["protocol"] == "full-frame"
    assert rep["synthetic"]["views"] == ["img0.png#0@96x64", "img1.png#0@128x96"]
    assert rep["model"]["input_policy"] == "native"
    assert set(rep["synthetic"]["summaries"]["model"]["per_type"]) == {"shake", "jpeg_camera"}
    dec = rep["decisions"]  # decision metrics at the card's thresholds
    assert "decisions at the model card's thresholds" in text
    assert set(dec["per_type"]) == {"shake", "jpeg_camera", "clean"}
    assert dec["faulty_frames"] == 2 * 2 * 3  # views x types x levels 3..5
    assert dec["clean_frames"] == 2 * (1 + 2)  # views x (pristine + level 1 of each type)
    card = rep["model"]["card_thresholds"]
    assert dec["thresholds"] == {"warn": card["warn"], "error": card["error"]}
    assert dec["balanced_accuracy"] == pytest.approx((dec["drop_recall"] + 1 - dec["clean_false_reject"]) / 2)


def test_hirqa_eval_full_frame_rejects_bad_sizes(tmp_path):
    assert main(["eval", "--full-frame", "--no-model", "--frame-sizes", "640by480",
                 "--images", str(tmp_path)]) == 2


def test_hirqa_eval_full_frame_reports_the_fault_class(random_model_dir, tmp_path, capsys):
    import shutil

    import yaml

    from hirqa_ros.artifacts import sha256_file
    from hirqa_ros.heads import FAULT_HEAD_FILE, FaultHead

    d = tmp_path / "model"
    shutil.copytree(random_model_dir, d)
    r = np.random.default_rng(0)
    FaultHead([(r.normal(size=(1024, len(FAULT_CLASSES))), np.zeros(len(FAULT_CLASSES)))],
              np.zeros(1024), np.ones(1024)).save(d / FAULT_HEAD_FILE)
    card = yaml.safe_load((d / "model.yaml").read_text())
    card["files"]["fault_head"] = {"path": FAULT_HEAD_FILE, "sha256": sha256_file(d / FAULT_HEAD_FILE)}
    (d / "model.yaml").write_text(yaml.safe_dump(card))
    photos = tmp_path / "val"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), synthetic_scene(120, 160, seed=3))
    out, png = tmp_path / "ff.json", tmp_path / "conf.png"
    rc = main(["eval", "--full-frame", "--model", str(d), "--backend", "onnxruntime", "--images", str(photos),
               "--frame-sizes", "96x64", "--types", "haze", "jpeg_camera", "--json", str(out),
               "--confusion", str(png), "--no-progress", "--no-cues"])
    assert rc == 0
    assert "fault class as the doors publish it (gated), images with severity >= 3" in capsys.readouterr().out
    rep = json.loads(out.read_text())["faults"]
    assert set(rep["per_type"]) == {"haze", "jpeg_camera"} and 0 <= rep["accuracy_drop_level"] <= 1
    assert rep["basis"] == "published" and 0 <= rep["head_argmax"]["accuracy_drop_level"] <= 1
    assert cv2.imread(str(png)) is not None


def test_shipping_rule_needs_auroc_and_ladder_srocc_both_higher():
    from hirqa_ros.evaluation.synthetic import improves

    base = {"auroc": 0.875, "ladder_srocc": 0.885, "srocc": 0.638}
    assert improves({"auroc": 0.879, "ladder_srocc": 0.904, "srocc": 0.6}, base)
    assert not improves({"auroc": 0.879, "ladder_srocc": 0.885, "srocc": 0.7}, base)  # ladder only equal
    assert not improves({"auroc": 0.863, "ladder_srocc": 0.890, "srocc": 0.7}, base)  # AUROC lower
