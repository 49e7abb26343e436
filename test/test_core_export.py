"""Model directories, ONNX export and the authors' checkpoint import."""

import shutil

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch", reason="torch not installed")
onnx = pytest.importorskip("onnx", reason="onnx not installed")

from hirqa_ros import artifacts, load_scorer  # noqa: E402
from hirqa_ros.export import export_onnx, import_official, onnx_max_abs_diff  # noqa: E402
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
    (out,) = m.graph.output
    assert inp.name == "image" and out.name == "score"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
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


def test_fp16_onnx_has_fp16_input_and_close_scores(random_model_dir, tmp_path):
    import onnxruntime as ort

    model = artifacts.load_artifact(random_model_dir).torch_model()
    path = export_onnx(model, tmp_path / "m16.onnx", fp16=True)
    m = onnx.load(str(path))
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 96)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["score"], {"image": x.astype(np.float16)}
    )[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32 and np.abs(got - ref).max() < 5e-3


def test_plain_fp32_export_matches_torch(tmp_path):
    torch.manual_seed(3)
    model = build_model("hirqa-s")
    path = export_onnx(model, tmp_path / "m.onnx")
    assert onnx_max_abs_diff(model, path, sizes=((1, 40, 72), (3, 64, 64))) <= 1e-5


def test_wrapper_prefixes_are_stripped():
    from hirqa_ros.export import strip_wrapper_prefixes

    sd = {"module.fc.0.bias": 1, "_orig_mod.fc.0.weight": 2, "backbone.features.0.weight": 3}
    assert strip_wrapper_prefixes(sd) == {"fc.0.bias": 1, "fc.0.weight": 2, "backbone.features.0.weight": 3}
