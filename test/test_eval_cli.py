"""``hirqa eval`` end to end: synthetic protocol with a random-weights model beside the cues; benchmarks."""
from __future__ import annotations

import json

import cv2
import pytest
from helpers_eval import synthetic_scene

from hirqa_ros.cli.main import main

pytest.importorskip("torch", reason="the distortion library runs on torch")


@pytest.fixture
def image_dir(tmp_path):
    d = tmp_path / "val"
    d.mkdir()
    for i in range(2):
        rgb = synthetic_scene(120, 160, seed=10 + i)
        cv2.imwrite(str(d / f"img{i}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return d


def test_eval_model_and_cues_end_to_end(random_model_dir, image_dir, tmp_path, capsys):
    out_json, out_png = tmp_path / "out" / "eval.json", tmp_path / "out" / "auroc.png"
    rc = main(["eval", "--model", str(random_model_dir), "--backend", "onnxruntime",
               "--images", str(image_dir), "--types", "gaublur", "low_light", "--crop", "64",
               "--resize-side", "96", "--json", str(out_json), "--plot", str(out_png), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    for word in ("model", "laplacian_var", "dark_channel", "gaublur", "low_light", "[camera]", "POOLED",
                 "thresholds calibrated"):
        assert word in text
    report = json.loads(out_json.read_text())
    assert report["score_fns"] == ["model", "laplacian_var", "tenengrad", "exposure", "dark_channel", "noise",
                                   "niqe", "brisque"]
    assert report["model"]["backend"] == "onnxruntime"
    summary = report["synthetic"]["summaries"]["model"]
    assert summary["n_views"] == 2 and set(summary["per_type"]) == {"gaublur", "low_light"}
    assert 0.0 <= summary["pooled"]["auroc"] <= 1.0
    cmp = report["synthetic"]["model_vs_best_cue"]
    assert set(cmp) == {"ladder_srocc", "srocc", "auroc"}
    best = max(report["synthetic"]["summaries"][n]["pooled"]["auroc"] for n in report["score_fns"][1:])
    assert cmp["auroc"]["best_other_value"] == best
    assert cmp["auroc"]["beats"] == (summary["pooled"]["auroc"] > best)
    assert "model vs the best classical cue" in text
    cal = report["calibration"]
    assert 0.0 <= cal["error"] <= cal["warn"] <= 1.0 and cal["n_keep"] == 2 + 2 * 2
    img = cv2.imread(str(out_png))
    assert img is not None and img.shape[0] > 100


def test_eval_cues_only_with_benchmark(image_dir, tmp_path, capsys):
    root = tmp_path / "csiq"
    (root / "dst_imgs_all").mkdir(parents=True)
    lines = []
    for i, d in enumerate((0.1, 0.3, 0.6)):
        name = f"img{i}.BLUR.{i + 1}.png"
        scene = synthetic_scene(96, 128, seed=3)
        cv2.imwrite(str(root / "dst_imgs_all" / name), cv2.GaussianBlur(scene, (0, 0), 0.3 + 4 * d))
        lines.append(f"{name} {d}")
    (root / "csiq_label.txt").write_text("\n".join(lines))
    rc = main(["eval", "--no-model", "--dataset", "csiq", "--root", str(root), "--no-progress",
               "--json", str(tmp_path / "b.json")])
    assert rc == 0
    assert "csiq: 3 images" in capsys.readouterr().out
    rep = json.loads((tmp_path / "b.json").read_text())["benchmark"]
    assert "synthetic" not in json.loads((tmp_path / "b.json").read_text())  # no --images: benchmark only
    assert rep["results"]["laplacian_var"]["srocc"] == pytest.approx(1.0)  # more blur, higher DMOS


def test_eval_clear_errors(tmp_path, image_dir, monkeypatch, caplog):
    monkeypatch.setenv("HIRQA_MODEL", str(tmp_path / "no_such_model"))
    assert main(["eval", "--images", str(image_dir), "--no-progress"]) == 2
    assert "--no-model" in caplog.text
    assert main(["eval", "--no-model", "--images", str(tmp_path / "missing")]) == 2
    assert main(["eval", "--no-model", "--images", str(image_dir), "--types", "fog"]) == 2
    assert "unknown distortion type" in caplog.text
    assert main(["eval", "--no-model", "--dataset", "csiq"]) == 2
    assert main(["eval", "--no-model", "--dataset", "csiq", "--root", str(tmp_path)]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.jpg").write_bytes(b"garbage")
    assert main(["eval", "--no-model", "--images", str(empty)]) == 2
