"""int8 model for CPUs: static QDQ quantisation of a tiny HiRQA-shaped network, its card entry,
thresholds chosen by precision, and the rule by which ``auto`` runs int8 on the CPU.

The network here is a tiny stand-in with HiRQA's module names and input contract (two small
convolutions instead of ResNet-18, so quantisation takes seconds); real ONNX Runtime throughout.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
pytest.importorskip(
    "onnxruntime.quantization", reason="onnxruntime.quantization not installed (pip install -e \".[cpu]\")"
)
onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install -e \".[train]\")")

from hirqa_ros.artifacts import (  # noqa: E402
    CARD_FILE,
    INT8_FILE,
    INT8_FILE_KEY,
    file_entry,
    int8_status,
    load_artifact,
    update_card,
)
from hirqa_ros.artifacts import int8_within_tolerance as within_tolerance  # noqa: E402
from hirqa_ros.evaluation.synthetic import ProtocolConfig  # noqa: E402
from hirqa_ros.export.int8 import (  # noqa: E402
    add_int8,
    calibration_frames,
    fp32_nodes,
    prepare_float_model,
    quantize_onnx,
)


def _tiny_hirqa():
    """HiRQA's structure and names (backbone.features, global_pool_quality, fc) at toy size."""
    from torch import nn

    from hirqa_ros.model import AttentionPool, HiRQA

    torch.manual_seed(0)
    m = HiRQA("hirqa-s")
    m.backbone.features = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=4, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
    )
    m.global_pool_quality = AttentionPool(32)
    return m.eval()


def _photos(n=3, h=200, w=300, seed=0):
    """Smooth random 'photos' (low-frequency noise, upsampled) as RGB uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    return [cv2.resize(rng.integers(0, 256, (h // 10, w // 10, 3), dtype=np.uint8), (w, h),
                       interpolation=cv2.INTER_CUBIC) for _ in range(n)]


def _write_photos(folder, photos):
    import cv2

    folder.mkdir(parents=True)
    for i, p in enumerate(photos):
        cv2.imwrite(str(folder / f"p{i}.png"), p[..., ::-1])
    return folder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A model directory around the tiny network (camera-bytes model.onnx, card with sha256)."""
    from hirqa_ros.export.onnx import export_checked_onnx
    from hirqa_ros.preprocess import AUTHORS_NORMALISATION

    out = tmp_path_factory.mktemp("tiny") / "tiny-model"
    out.mkdir()
    fields = export_checked_onnx(_tiny_hirqa(), out / "model.onnx", "float32")
    card = {"format": 1, "name": "tiny-test-network",
            "description": "toy network for quantisation tests, NOT A MODEL",
            "variant": "hirqa-s", "input_policy": "native",
            "normalisation": {"colour": "RGB", "range": [0, 1], "mean": list(AUTHORS_NORMALISATION.mean),
                              "std": list(AUTHORS_NORMALISATION.std)},
            **fields, "thresholds": {"warn": 0.5, "error": 0.3, "calibrated": True},
            "files": {}}
    update_card(out, card, files={"onnx": "model.onnx"})
    return out


@pytest.fixture(scope="module")
def int8_dir(tiny_dir, tmp_path_factory):
    """``tiny_dir`` after ``add_int8``: model.int8.onnx plus the card's int8 entry."""
    root = tmp_path_factory.mktemp("int8")
    d = root / "model"
    import shutil

    shutil.copytree(tiny_dir, d)
    calib = _write_photos(root / "train", _photos(3, 800, 1400, seed=1))
    held_out = _write_photos(root / "val", _photos(2, 200, 300, seed=2))
    add_int8(d, calib, held_out, calib_frames=4, config=ProtocolConfig(crop=96, resize_side=128),
             types=["gaublur", "jpeg2000"])
    return d


def test_calibration_frames_are_camera_sized_seeded_and_half_degraded():
    photos = _photos(2, 500, 700)
    a = calibration_frames(photos, count=4, sizes=((480, 640), (720, 1280)), seed=3)
    b = calibration_frames(photos, count=4, sizes=((480, 640), (720, 1280)), seed=3)
    assert [f.shape for f in a] == [(480, 640, 3), (720, 1280, 3)] * 2  # small photos are enlarged
    assert all(f.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    clean = calibration_frames(photos, count=4, sizes=((480, 640), (720, 1280)), seed=3, degraded_fraction=0)
    changed = sum(not np.array_equal(x, y) for x, y in zip(a, clean))
    assert changed == 2  # the same cuts; two of the four got a distortion


def test_calibration_refuses_nothing_to_cut(tmp_path):
    with pytest.raises(FileNotFoundError, match="no readable photos"):
        calibration_frames(tmp_path, count=2)
    with pytest.raises(ValueError):
        calibration_frames([], count=2)


def test_quantise_tiny_model_keeps_contract_and_stays_close(tiny_dir, tmp_path):
    import onnxruntime as ort

    frames = calibration_frames(_photos(2, 300, 400), count=4, sizes=((120, 160), (96, 128)))
    out = tmp_path / INT8_FILE
    info = quantize_onnx(tiny_dir / "model.onnx", out, frames, keep_fp32=("first-conv",))
    proto = onnx.load(str(out))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    int8_weights = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert int8_weights, "weights are stored as int8"
    per_channel = [i for i in proto.graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1
                   and i.dims[0] > 1]
    assert per_channel, "per-channel weight scales"
    # the first convolution was left fp32: its weight is not behind a DequantizeLinear
    first = next(n for n in proto.graph.node if n.op_type == "Conv")
    producers = {o: n.op_type for n in proto.graph.node for o in n.output}
    assert producers.get(first.input[1]) != "DequantizeLinear"
    assert info["kept_fp32"] == ["first-conv"] and info["calibration_frames"] == 4
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["hirqa.precision"] == "int8" and "hirqa.mean" in meta
    sess32 = ort.InferenceSession(str(tiny_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    sess8 = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess8.get_inputs()] == ["frames"]
    assert sess8.get_inputs()[0].type == "tensor(uint8)"
    assert [o.name for o in sess8.get_outputs()] == ["score", "embedding"]
    x = np.stack(calibration_frames(_photos(2, 300, 400, seed=5), count=2, sizes=((120, 160),), seed=5))
    s32, e32 = sess32.run(None, {"frames": x})
    s8, e8 = sess8.run(None, {"frames": x})
    assert s8.shape == s32.shape and e8.shape == e32.shape
    assert np.abs(s8 - s32).max() < 0.05
    assert not np.array_equal(e8, e32)  # it is really another computation


def test_keep_fp32_parts_name_real_nodes(tiny_dir, tmp_path):
    proto = onnx.load(str(prepare_float_model(tiny_dir / "model.onnx", tmp_path / "p.onnx")))
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)  # folded
    assert all(i.data_type != onnx.TensorProto.FLOAT16 for i in proto.graph.initializer)
    first = fp32_nodes(proto, ["first-conv"])
    assert len(first) == 1 and first[0] == next(n.name for n in proto.graph.node if n.op_type == "Conv")
    att = fp32_nodes(proto, ["attention"])
    assert att and all(n.startswith("/global_pool_quality/") for n in att)
    assert fp32_nodes(proto, ["head"])
    with pytest.raises(ValueError, match="unknown part"):
        fp32_nodes(proto, ["everything"])


def test_quantise_refuses_a_float_input_onnx(tmp_path):
    from hirqa_ros.export.onnx import export_onnx

    path = export_onnx(_tiny_hirqa(), tmp_path / "float.onnx", frames=False)
    with pytest.raises(ValueError, match="camera-bytes input"):
        quantize_onnx(path, tmp_path / "q.onnx", [np.zeros((64, 64, 3), np.uint8)])


def test_add_int8_writes_file_sha256_thresholds_and_side_by_side_report(int8_dir):
    art = load_artifact(int8_dir)  # verifies the new file's sha256
    assert art.file(INT8_FILE_KEY) == art.path / INT8_FILE
    entry = art.card["int8"]
    acc = entry["accuracy"]
    assert set(acc["per_type"]) == {"gaublur", "jpeg2000"}
    for v in [acc["pooled"], *acc["per_group"].values(), *acc["per_type"].values()]:
        for m in ("auroc", "ladder_srocc"):
            assert v[m]["delta"] == pytest.approx(v[m]["int8"] - v[m]["fp32"], abs=2e-4)
    t, cal = entry["thresholds"], acc["calibration"]["int8"]
    assert t["calibrated"] and t["warn"] == round(cal["warn"], 4) and t["error"] == round(cal["error"], 4)
    assert entry["source_onnx_sha256"] == art.file_sha256("onnx")
    assert entry["cpu_default"] == within_tolerance(acc)[0]
    assert entry["quantisation"]["calibration_photos"].endswith("train")
    human = (int8_dir / "MODEL_CARD.md").read_text()
    assert "## int8 model (CPU)" in human and "| gaublur |" in human and INT8_FILE in human


def test_add_int8_refuses_evaluation_photos_for_calibration(tiny_dir, tmp_path):
    photos = _write_photos(tmp_path / "photos", _photos(1))
    with pytest.raises(ValueError, match="same folder"):
        add_int8(tiny_dir, photos, photos, calib_frames=1)


def _with_int8_entry(src, dst, **changes):
    """A copy of a model directory with its card's int8 entry changed."""
    import shutil

    shutil.copytree(src, dst)
    card = yaml.safe_load((dst / CARD_FILE).read_text())
    entry = card["int8"]
    for key, value in changes.items():
        if key == "pooled_drop":
            for m in ("auroc", "ladder_srocc"):
                entry["accuracy"]["pooled"][m]["int8"] = entry["accuracy"]["pooled"][m]["fp32"] - value
        elif key == "thresholds":
            entry["thresholds"].update(value)
        else:
            entry[key] = value
    (dst / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))
    return dst


def test_thresholds_follow_the_precision_the_scorer_runs(int8_dir, tmp_path):
    from hirqa_ros import load_scorer

    d = _with_int8_entry(int8_dir, tmp_path / "m", thresholds={"warn": 0.61, "error": 0.42})
    s8 = load_scorer(d, backend="onnxruntime", device="cpu", precision="int8")
    s32 = load_scorer(d, backend="onnxruntime", device="cpu", precision="fp32")
    assert s8.precision == "int8" and s8.impl.onnx_path.name == INT8_FILE
    assert (s8.thresholds.warn, s8.thresholds.error) == (0.61, 0.42)
    assert (s32.thresholds.warn, s32.thresholds.error) == (0.5, 0.3)
    assert s8.level(0.55).name == "WARN" and s32.level(0.55).name == "OK"
    frames = calibration_frames(_photos(1), count=2, sizes=((120, 160),))
    assert s8.score(frames).shape == (2,)


def test_int8_precision_without_an_int8_model_says_how_to_make_one(tiny_dir):
    from hirqa_ros import load_scorer
    from hirqa_ros.artifacts import ArtifactError
    from hirqa_ros.backends import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="hirqa export --int8"):
        load_scorer(tiny_dir, backend="onnxruntime", precision="int8")
    with pytest.raises(ValueError, match="CPU only"):
        load_scorer(tiny_dir, backend="onnxruntime", device="cuda", precision="int8")
    with pytest.raises(ArtifactError, match="no int8 thresholds"):
        load_artifact(tiny_dir).thresholds_for("int8")


@pytest.mark.parametrize(
    "change, expect, why",
    [
        ({}, "int8", "within tolerance"),
        ({"pooled_drop": 0.0099}, "int8", "within tolerance"),
        ({"pooled_drop": 0.02}, "fp32", "drops by 0.0200"),
        ({"source_onnx_sha256": "0" * 64}, "fp32", "another model.onnx"),
        ({"thresholds": {"calibrated": False}}, "fp32", "not calibrated"),
    ],
)
def test_auto_runs_int8_on_the_cpu_only_when_the_card_allows(int8_dir, tmp_path, caplog, change, expect, why):
    from hirqa_ros import load_scorer

    d = _with_int8_entry(int8_dir, tmp_path / "m", **({"pooled_drop": 0.0} | change))
    with caplog.at_level(logging.INFO):
        s = load_scorer(d, backend="auto", device="cpu")
    assert s.backend == "onnxruntime" and s.precision == expect
    assert why in caplog.text  # the log says why
    ok, reason = int8_status(load_artifact(d))
    assert ok == (expect == "int8") and why in reason


def test_auto_ignores_int8_when_not_on_the_cpu_and_when_absent(int8_dir, tiny_dir, tmp_path):
    from hirqa_ros.backends import auto_cpu_precision

    art = load_artifact(_with_int8_entry(int8_dir, tmp_path / "m", pooled_drop=0.0))
    assert auto_cpu_precision(art, "cpu")[0] == "int8"
    assert auto_cpu_precision(art, "cuda:0") == ("fp32", "int8 runs on the CPU only")
    assert auto_cpu_precision(load_artifact(tiny_dir), "cpu")[0] == "fp32"
    missing = copy.deepcopy(art)
    (missing.path / INT8_FILE).unlink()
    assert int8_status(missing) == (False, f"{missing.path / INT8_FILE} is missing")


def test_within_tolerance_needs_both_metrics():
    ok, _ = within_tolerance({"pooled": {"auroc": {"fp32": 0.8, "int8": 0.795}}})
    assert not ok
    ok, why = within_tolerance({"pooled": {"auroc": {"fp32": 0.8, "int8": 0.795},
                                           "ladder_srocc": {"fp32": 0.8, "int8": 0.812}}})
    assert ok and "0.8000 -> 0.8120" in why


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_bench_has_int8_rows_beside_the_same_run_baseline(random_model_dir, tmp_path, capsys):
    """The bench's torch-eager baseline needs HiRQA-S weights: the random-weights directory, with an
    int8 model quantised on two small frames (timing only)."""
    import shutil

    from hirqa_ros.cli.main import main

    d = tmp_path / "m"
    shutil.copytree(random_model_dir, d)
    quantize_onnx(d / "model.onnx", d / INT8_FILE, calibration_frames(_photos(1), 2, sizes=((64, 96),)))
    card = yaml.safe_load((d / CARD_FILE).read_text())
    card["files"][INT8_FILE_KEY] = file_entry(d, INT8_FILE)
    (d / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))
    args = ["bench", "--backends", "onnxruntime,torch", "--precisions", "fp32,int8", "--batches", "1",
            "--sizes", "64x96", "--iters", "2", "--warmup", "1", "--device", "cpu"]
    assert main([*args, "--model", str(d)]) == 0
    text = capsys.readouterr().out
    lines = [line.split() for line in text.splitlines() if line.startswith(("onnxruntime", "torch-eager"))]
    assert {(cols[0], cols[2]) for cols in lines} == {("torch-eager", "fp32"), ("onnxruntime", "fp32"),
                                                      ("onnxruntime", "int8")}
    # a directory without an int8 model: the int8 row is skipped with the reason
    assert main([*args, "--model", str(random_model_dir)]) == 0
    text = capsys.readouterr().out
    assert "skipped onnxruntime int8" in text and "hirqa export --int8" in text
    assert main([*args[:4], "fp32,int4"]) == 2  # the rows' speed-ups are not asserted (wall time)


def test_valid_precisions_per_backend_and_device():
    from hirqa_ros.bench import valid_precisions

    all3 = ("fp32", "fp16", "int8")
    assert valid_precisions("onnxruntime", "cpu", all3) == ["fp32", "int8"]
    assert valid_precisions("onnxruntime", "tensorrt", all3) == ["fp32", "fp16"]
    assert valid_precisions("onnxruntime", "cuda", all3) == ["fp32"]
    assert valid_precisions("torch", "cuda", all3) == ["fp32", "fp16"]
    assert valid_precisions("torch", "cpu", all3) == ["fp32"]


def test_export_int8_cli_refuses_bad_options(tiny_dir, capsys):
    from hirqa_ros.cli.main import main

    assert main(["export", "--model", str(tiny_dir), "--int8", "--keep-fp32", "trunk"]) == 2
    assert "--keep-fp32" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: --calib-frames has a range
        main(["export", "--model", str(tiny_dir), "--int8", "--calib-frames", "0"])
    assert exc.value.code == 2 and "outside [1, 100000]" in capsys.readouterr().err
    assert main(["export", "--model", str(tiny_dir), "--int8", "--calib-images", str(tiny_dir / "none")]) == 2
    assert "image folder not found" in capsys.readouterr().err


def test_add_int8_protocol_overrides_reach_the_report(tiny_dir, tmp_path):
    """Whole frames instead of crops (``hirqa export --int8 --eval-crop 0 --eval-resize-side N``)."""
    import shutil

    d = tmp_path / "m"
    shutil.copytree(tiny_dir, d)
    calib = _write_photos(tmp_path / "train", _photos(1, 300, 400, seed=3))
    held_out = _write_photos(tmp_path / "val", _photos(2, 200, 300, seed=4))
    entry = add_int8(d, calib, held_out, calib_frames=2, types=["gaublur"],
                     protocol={"crop": 0, "resize_side": 96})
    proto = entry["accuracy"]["protocol"]
    assert proto["crop"] == 0 and proto["resize_side"] == 96 and proto["views"] == 2


def test_add_int8_follows_a_card_calibrated_on_full_frames(tiny_dir, tmp_path):
    """A card whose fp32 thresholds came from the full-frame protocol gets int8 evaluated on whole
    camera frames too (here one small frame size, to keep the test fast)."""
    import shutil

    d = tmp_path / "m"
    shutil.copytree(tiny_dir, d)
    card = yaml.safe_load((d / CARD_FILE).read_text())
    card["metrics"] = {"validation_full_frame": {"pooled": {"auroc": 0.9}}}
    (d / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))
    calib = _write_photos(tmp_path / "train", _photos(1, 300, 400, seed=3))
    held_out = _write_photos(tmp_path / "val", _photos(2, 200, 300, seed=4))
    entry = add_int8(d, calib, held_out, calib_frames=2, types=["gaublur"],
                     protocol={"frame_sizes": ((96, 64),)})
    proto = entry["accuracy"]["protocol"]
    assert proto["frame_sizes"] == [[96, 64]] and proto["crop"] == 0 and proto["views"] == 2
    assert "whole frames 96x64" in (d / "MODEL_CARD.md").read_text()


def test_fault_agreement_counts_same_top_class_frames():
    from hirqa_ros.export.int8 import _fault_agreement

    got = _fault_agreement({"fp32": [np.array([0, 1]), np.array([2, 3])],
                            "int8": [np.array([0, 2]), np.array([2, 3])]})
    assert got == {"fault_top1_agreement": {"frames": 4, "same_class": 0.75}}
    assert _fault_agreement({"fp32": [], "int8": []}) == {}  # no fault head: nothing reported


def test_export_eval_frame_sizes_and_physical_order_flags(tiny_dir, tmp_path):
    """``hirqa export --int8 --eval-frame-sizes WxH --eval-physical-order``: int8 judged (and its thresholds
    set) on the frames that calibrated fp32's thresholds when those came from `hirqa heads fit`."""
    import shutil

    from hirqa_ros.cli.main import main

    d = tmp_path / "m"
    shutil.copytree(tiny_dir, d)
    calib = _write_photos(tmp_path / "train", _photos(1, 300, 400, seed=3))
    held_out = _write_photos(tmp_path / "val", _photos(1, 200, 300, seed=4))
    assert main(["export", "--model", str(d), "--int8", "--calib-images", str(calib), "--calib-frames", "2",
                 "--eval-images", str(held_out), "--eval-full-frame", "--eval-frame-sizes", "96x64",
                 "--eval-physical-order"]) == 0
    proto = yaml.safe_load((d / CARD_FILE).read_text())["int8"]["accuracy"]["protocol"]
    assert proto["frame_sizes"] == [[96, 64]] and proto["noise_floor"] == 1.5 and proto["crop"] == 0
