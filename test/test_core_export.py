"""Model directories, ONNX export (camera-bytes contract, BGR, float entry point), refreshing older
model directories, and the authors' checkpoint import."""

import shutil

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch", reason="torch not installed")
onnx = pytest.importorskip("onnx", reason="onnx not installed")

from hirqa_ros import artifacts, load_scorer  # noqa: E402
from hirqa_ros.export.model_dir import refresh_model_dir  # noqa: E402
from hirqa_ros.export.official import import_official  # noqa: E402
from hirqa_ros.export.onnx import export_onnx, onnx_max_abs_diff  # noqa: E402
from hirqa_ros.model import HiRQA, build_model  # noqa: E402

FRAMES_SEED = 7


def _frames(n=3):
    rng = np.random.default_rng(FRAMES_SEED)
    sizes = [(64, 64), (96, 128), (75, 61)][:n]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def _authors_checkpoint(path, variant="hirqa-s", seed=0):
    """An authors'-format file: {"model_state_dict": ...} (+ extra keys), seeded random weights."""
    torch.manual_seed(seed)
    model = HiRQA(variant)
    with torch.no_grad():
        for name, buf in model.named_buffers():  # realistic BN statistics, not the 0/1 defaults
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3, "optimizer_state_dict": {}}, path)
    return model.eval()


def test_random_model_dir_layout_card_and_size(random_model_dir):
    art = artifacts.load_artifact(random_model_dir)
    assert art.name == "random-test-weights"
    assert art.variant == "hirqa-s" and art.input_policy == "native"
    card = yaml.safe_load((random_model_dir / "model.yaml").read_text())
    for key in (
        "name",
        "variant",
        "input_policy",
        "normalisation",
        "thresholds",
        "files",
        "training",
        "metrics",
        "lineage",
    ):
        assert key in card
    for entry in card["files"].values():
        assert artifacts.sha256_file(random_model_dir / entry["path"]) == entry["sha256"]
    assert "random-test-weights" in (random_model_dir / "MODEL_CARD.md").read_text()
    total = sum(p.stat().st_size for p in random_model_dir.iterdir())
    assert total < 60e6, f"model dir is {total / 1e6:.1f} MB"
    weights = torch.load(random_model_dir / "weights.pth", weights_only=True)["model_state_dict"]
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())


def test_onnx_io_names_opset_and_dynamic_axes(random_model_dir):
    m = onnx.load(str(random_model_dir / "model.onnx"))
    assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (inp,) = m.graph.input
    assert inp.name == "frames" and [o.name for o in m.graph.output] == ["score", "embedding"]
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[3] == 3 and all(isinstance(d, str) for d in dims[:3])  # N, H, W dynamic; NHWC
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    emb_dims = [d.dim_param or d.dim_value for d in m.graph.output[1].type.tensor_type.shape.dim]
    assert isinstance(emb_dims[0], str) and emb_dims[1] == 1024
    card = artifacts.load_artifact(random_model_dir)
    assert card.input_contract == artifacts.InputContract.frames("RGB")
    assert card.card["output"]["embedding"] == {"name": "embedding", "dim": 1024}
    # weights are stored as fp16 initializers, each followed by a Cast to fp32
    sizes = {onnx.TensorProto.FLOAT16: 0, onnx.TensorProto.FLOAT: 0}
    for init in m.graph.initializer:
        if init.data_type in sizes:
            sizes[init.data_type] += int(np.prod(init.dims))
    assert sizes[onnx.TensorProto.FLOAT16] > 0.99 * (
        sizes[onnx.TensorProto.FLOAT16] + sizes[onnx.TensorProto.FLOAT]
    )
    assert sum(n.op_type == "Cast" for n in m.graph.node) >= 30


def test_sha256_mismatch_is_detected(random_model_dir, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(random_model_dir, copy)
    with open(copy / "model.onnx", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(artifacts.ArtifactError, match="sha256 mismatch"):
        artifacts.load_artifact(copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(artifacts.ArtifactError, match="missing"):
        artifacts.load_artifact(copy)
    with pytest.raises(artifacts.ArtifactError, match="not a model directory"):
        artifacts.load_artifact(tmp_path)


def test_torch_and_onnxruntime_agree_on_random_model(random_model_dir):
    frames = _frames()
    a = load_scorer(random_model_dir, backend="torch", device="cpu").score(frames)
    b = load_scorer(random_model_dir, backend="onnxruntime").score(frames)
    assert np.abs(a - b).max() <= 1e-4


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_import_official_scores_identically_in_torch_and_onnxruntime(tmp_path):
    ckpt = tmp_path / "HiRQA-S.pth"
    reference = _authors_checkpoint(ckpt)
    out = import_official(ckpt, "hirqa-s", tmp_path / "official")
    art = artifacts.load_artifact(out)
    assert "authors" in art.card["lineage"]["source"]
    assert "no LICENSE" in art.card["licence"] or "none published" in art.card["licence"]
    frames = _frames()
    s_torch = load_scorer(out, backend="torch", device="cpu")
    s_ort = load_scorer(out, backend="onnxruntime")
    a, b = s_torch.score(frames), s_ort.score(frames)
    assert np.abs(a - b).max() <= 1e-4
    # fp32 storage by default: the imported model IS the authors' model
    from hirqa_ros.preprocess import prepare

    with torch.no_grad():
        direct = [reference(torch.from_numpy(batch.array)).numpy() for batch in prepare(frames[:1])]
    assert abs(float(direct[0][0]) - float(a[0])) <= 1e-5
    # a 0.4 < s < 0.6 kind of random-init sanity: scores are real numbers in (0, 1)
    assert ((a > 0) & (a < 1)).all()


def test_import_official_wrong_variant_or_file_fails_clearly(tmp_path):
    ckpt = tmp_path / "HiRQA-S.pth"
    _authors_checkpoint(ckpt)
    with pytest.raises(ValueError, match="--variant hirqa-s"):
        import_official(ckpt, "hirqa", tmp_path / "x")
    bad = tmp_path / "bad.pth"
    torch.save({"something": 1}, bad)
    with pytest.raises(ValueError, match="not a HiRQA checkpoint"):
        import_official(bad, "hirqa-s", tmp_path / "y")


@pytest.mark.slow
def test_import_official_resnet50_variant(tmp_path):
    ckpt = tmp_path / "HiRQA.pth"
    _authors_checkpoint(ckpt, "hirqa")
    out = import_official(ckpt, "hirqa", tmp_path / "official50", storage="float16")
    a = load_scorer(out, backend="torch", device="cpu").score(_frames(1))
    b = load_scorer(out, backend="onnxruntime").score(_frames(1))
    assert artifacts.load_artifact(out).variant == "hirqa"
    assert np.abs(a - b).max() <= 1e-4


def test_fp16_onnx_keeps_uint8_input_and_close_scores(random_model_dir, tmp_path):
    import onnxruntime as ort

    model = artifacts.load_artifact(random_model_dir).torch_model()
    path = export_onnx(model, tmp_path / "m16.onnx", fp16=True)
    m = onnx.load(str(path))
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in m.graph.output)
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, emb = sess.run(None, {"frames": frames})
    ref = load_scorer(random_model_dir, backend="onnxruntime").infer(list(frames))
    assert got.dtype == np.float32 and np.abs(got - ref.scores).max() < 5e-3
    assert np.abs(emb - ref.embeddings).max() < 5e-2 * np.abs(ref.embeddings).max()


def test_bgr_export_scores_bgr_bytes_like_rgb(random_model_dir, tmp_path):
    import onnxruntime as ort

    model = artifacts.load_artifact(random_model_dir).torch_model()
    rgb_path = export_onnx(model, tmp_path / "rgb.onnx")
    bgr_path = export_onnx(model, tmp_path / "bgr.onnx", channel_order="BGR")
    frames = np.random.default_rng(1).integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    run = lambda p, x: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(  # noqa: E731
        None, {"frames": np.ascontiguousarray(x)}
    )
    a, b = run(rgb_path, frames), run(bgr_path, frames[..., ::-1])
    assert np.abs(a[0] - b[0]).max() <= 1e-5 and np.abs(a[1] - b[1]).max() <= 1e-4
    assert onnx_max_abs_diff(model, bgr_path)[0] <= 1e-5  # the check feeds a BGR graph BGR bytes
    with pytest.raises(ValueError, match="frames"):
        export_onnx(model, tmp_path / "x.onnx", frames=False, channel_order="BGR")


def test_float_input_export_is_the_training_entry_point(tmp_path):
    import onnxruntime as ort

    from hirqa_ros.preprocess import prepare

    torch.manual_seed(4)
    model = build_model("hirqa-s")
    path = export_onnx(model, tmp_path / "f.onnx", frames=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in sess.get_inputs()] == [("image", "tensor(float)")]
    frames = _frames(1)
    (batch,) = prepare(frames)
    score, emb = sess.run(None, {"image": batch.array})
    with torch.no_grad():
        ref_score, ref_emb = model.score_and_embed(torch.from_numpy(batch.array))
    assert np.abs(score - ref_score.numpy()).max() <= 1e-5
    assert emb.shape == (1, 1024) and np.abs(emb - ref_emb.numpy()).max() <= 1e-4


def _make_pre_camera_bytes_dir(src, dst):
    """A model directory as written before the camera-bytes input: its ONNX takes float NCHW
    'image' and outputs only 'score'; the card has no 'input' entry."""
    shutil.copytree(src, dst)
    model = artifacts.load_artifact(dst).torch_model()
    export_onnx(model, dst / "model.onnx", frames=False, compact=True)
    m = onnx.load(str(dst / "model.onnx"))
    m.graph.output.pop()  # drop 'embedding'
    onnx.save(m, str(dst / "model.onnx"))
    card = yaml.safe_load((dst / "model.yaml").read_text())
    del card["input"]
    card["files"]["onnx"]["sha256"] = artifacts.sha256_file(dst / "model.onnx")
    (dst / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return dst


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_older_model_dir_still_scores_says_how_to_refresh_and_refreshes(random_model_dir, tmp_path, caplog):
    import logging

    from hirqa_ros.cli.main import main

    old = _make_pre_camera_bytes_dir(random_model_dir, tmp_path / "old")
    assert not artifacts.load_artifact(old).input_contract.camera_bytes
    frames = _frames()
    now = load_scorer(random_model_dir, backend="onnxruntime").infer(frames)
    with caplog.at_level(logging.WARNING):
        before = load_scorer(old, backend="onnxruntime").infer(frames)
    assert "predates the camera-bytes input" in caplog.text and "--refresh" in caplog.text
    assert before.embeddings is None and np.abs(before.scores - now.scores).max() <= 1e-6
    weights_sha = artifacts.sha256_file(old / "weights.pth")
    assert main(["export", "--model", str(old), "--refresh"]) == 0
    art = artifacts.load_artifact(old)  # the new sha256 in the card matches the new file
    assert art.input_contract.camera_bytes and artifacts.sha256_file(old / "weights.pth") == weights_sha
    assert art.card["name"] == "random-test-weights" and art.card["lineage"]  # the rest is kept
    after = load_scorer(old, backend="onnxruntime").infer(frames)
    assert np.abs(after.scores - now.scores).max() <= 1e-6
    assert np.abs(after.embeddings - now.embeddings).max() <= 1e-5
    assert "`frames`, uint8 NHWC RGB" in (old / "MODEL_CARD.md").read_text()


def test_refresh_keeps_what_training_appended_to_the_human_card(random_model_dir, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(random_model_dir, copy)
    card = copy / "MODEL_CARD.md"
    card.write_text(card.read_text() + "\n## How this model was made\n\n- by hand\n")
    refresh_model_dir(copy, channel_order="BGR")
    text = card.read_text()
    assert text.count("## Files") == 1 and text.endswith("## How this model was made\n\n- by hand\n")
    assert artifacts.load_artifact(copy).input_contract.channels == "BGR"
    rgb = _frames(1)[0]
    a = load_scorer(random_model_dir, backend="onnxruntime").score([rgb])
    b = load_scorer(copy, backend="onnxruntime")
    assert b.impl.channel_order == "BGR"
    assert abs(float(b.score([rgb])[0]) - float(a[0])) <= 1e-5  # RGB frames are swapped while staged
    assert abs(float(b.score([np.ascontiguousarray(rgb[:, :, ::-1])], bgr=True)[0]) - float(a[0])) <= 1e-5


def test_plain_fp32_export_matches_torch(tmp_path):
    torch.manual_seed(3)
    model = build_model("hirqa-s")
    path = export_onnx(model, tmp_path / "m.onnx")
    score_diff, emb_diff = onnx_max_abs_diff(model, path, sizes=((1, 40, 72), (3, 64, 64)))
    assert score_diff <= 1e-5 and emb_diff <= 1e-4


def test_wrapper_prefixes_are_stripped():
    from hirqa_ros.export.model_dir import strip_wrapper_prefixes

    sd = {"module.fc.0.bias": 1, "_orig_mod.fc.0.weight": 2, "backbone.features.0.weight": 3}
    assert strip_wrapper_prefixes(sd) == {"fc.0.bias": 1, "fc.0.weight": 2, "backbone.features.0.weight": 3}
