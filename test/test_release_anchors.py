"""`hirqa release anchors`: the card's table of the model beside NIQE, BRISQUE and the cues, from one real
full-frame evaluation run (ONNX Runtime, the shipped NSS pristine model)."""
from __future__ import annotations

import json
import shutil

import cv2
import pytest
from helpers_eval import synthetic_scene

from hirqa_ros.cli.main import main

pytest.importorskip("torch", reason="the distortion library runs on torch")


def _eval(model_dir, tmp_path, *extra: str):
    d = tmp_path / "val"
    d.mkdir(exist_ok=True)
    for i in range(2):
        cv2.imwrite(str(d / f"img{i}.png"), synthetic_scene(240, 320, seed=30 + i))
    out = tmp_path / f"eval{len(extra)}.json"
    args = ["eval", "--full-frame", "--images", str(d), "--frame-sizes", "160x120", "--physical-order",
            "--types", "gaublur", "jpeg_camera", "--json", str(out), "--no-progress", *extra]
    assert main(args + (["--model", str(model_dir), "--backend", "onnxruntime"] if "--no-model" not in extra
                        else [])) == 0
    return out


def test_anchors_section_from_a_real_eval_is_written_once_and_replaced(random_model_dir, tmp_path):
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.training.release.anchors import HEADING

    model = tmp_path / "m"
    shutil.copytree(random_model_dir, model)
    report = _eval(model, tmp_path)
    assert main(["release", "anchors", "--model", str(model), "--eval", str(report)]) == 0
    text = (model / "MODEL_CARD.md").read_text()
    assert text.count(HEADING) == 1
    assert "| type / group | this model | niqe | brisque | laplacian_var |" in text
    assert "(160x120), distortions rendered at that resolution in a camera's physical order" in text
    assert "sigma 1.5 grey levels" in text and "backend onnxruntime, device cpu, precision fp32" in text
    summ = json.loads(report.read_text())["synthetic"]["summaries"]
    m, niqe = summ["model"]["pooled"], summ["niqe"]["pooled"]
    assert f"AUROC {m['auroc']:.3f} vs {niqe['auroc']:.3f}" in text
    assert "| jpeg_camera | " in text and text.count("#### ladder SROCC") == 1
    assert main(["release", "anchors", "--model", str(model), "--eval", str(report)]) == 0
    assert (model / "MODEL_CARD.md").read_text() == text  # replaced, not added twice
    load_artifact(model)  # the card still verifies every file


def test_a_report_without_the_model_or_the_anchors_is_refused_and_the_card_kept(random_model_dir, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(random_model_dir, model)
    before = (model / "MODEL_CARD.md").read_bytes()
    report = _eval(model, tmp_path, "--no-model")
    assert main(["release", "anchors", "--model", str(model), "--eval", str(report)]) == 2
    no_cues = _eval(model, tmp_path, "--no-cues", "--seed", "1")
    assert main(["release", "anchors", "--model", str(model), "--eval", str(no_cues)]) == 2
    crops = tmp_path / "crops.json"  # the crop protocol: no camera frames to describe
    assert main(["eval", "--model", str(model), "--backend", "onnxruntime", "--images", str(tmp_path / "val"),
                 "--types", "gaublur", "--crop", "64", "--json", str(crops), "--no-progress"]) == 0
    assert main(["release", "anchors", "--model", str(model), "--eval", str(crops)]) == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"synthetic": ')
    assert main(["release", "anchors", "--model", str(model), "--eval", str(broken)]) == 2
    assert (model / "MODEL_CARD.md").read_bytes() == before


def test_without_section_keeps_the_others():
    from hirqa_ros.training.release.anchors import without_section

    text = "\n## A\n\na\n\n## B\n\nb\n\n## C\n\nc\n"
    assert without_section(text, "## B") == "\n## A\n\na\n\n## C\n\nc\n"
    assert without_section(text, "## C") == "\n## A\n\na\n\n## B\n\nb\n\n"
    assert without_section(text, "## D") == text


def test_the_protocol_sentence_names_sizes_noise_floor_and_transport():
    from hirqa_ros.training.release.cards import full_frame_protocol

    one = full_frame_protocol({"n_views": 25, "n_types": 23,
                               "config": {"frame_sizes": [[640, 480]], "noise_floor": 1.5}})
    assert "(640x480), distortions rendered at that resolution in a camera's physical order" in one
    assert "sigma 1.5 grey levels" in one and "25 held-out photos" in one and "23 types" in one
    config = {"frame_sizes": [[640, 480], [1280, 720]], "transport_jpeg": 90}
    many = full_frame_protocol({"n_views": 4, "n_types": 2, "config": config})
    assert "(640x480, 1280x720 in turn), distortions rendered at that resolution, every frame then sent as " \
           "JPEG 90" in many
