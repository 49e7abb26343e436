"""TensorRT / torch2trt / CUDA backends: the pure logic here, the real calls only where installed."""

import numpy as np
import pytest

from hirqa_ros.backends import cuda_status, try_import
from hirqa_ros.backends.tensorrt_backend import (
    TRT_DTYPE_TO_TORCH,
    BuildPlan,
    ShapeProfile,
    build_plan,
    compute_profile,
    default_cache_dir,
    engine_cache_key,
    engine_file_name,
    parse_version,
    timing_cache_name,
)

HAS_TRT = try_import("tensorrt")[0] is not None
HAS_CUDA = cuda_status()[0]
HAS_T2T = try_import("torch2trt")[0] is not None


def test_parse_version():
    assert parse_version("10.3.0.26") == (10, 3)
    assert parse_version("8.6.1") == (8, 6)
    assert parse_version("11") == (11, 0)
    with pytest.raises(ValueError):
        parse_version("trt")


def test_build_plan_branches_on_version():
    assert build_plan("8.6.1", "fp16") == BuildPlan(
        "fp32", strongly_typed=False, fp16_flag=True, explicit_batch_flag=True
    )
    assert build_plan("8.6.1", "fp32").fp16_flag is False
    for v in ("10.3.0", "10.15.1", "11.4.1"):
        plan = build_plan(v, "fp16")
        assert plan == BuildPlan("fp16", strongly_typed=True, fp16_flag=False, explicit_batch_flag=False)
        assert build_plan(v, "fp32").onnx_precision == "fp32"
    with pytest.raises(RuntimeError, match="too old"):
        build_plan("8.5.3", "fp16")
    with pytest.raises(ValueError, match="precision"):
        build_plan("10.3", "int8")


def test_profile_per_input_policy():
    native = compute_profile("native", max_batch=8)
    assert (
        native.min == (1, 3, 32, 32) and native.opt == (1, 3, 480, 640) and native.max == (8, 3, 1088, 1920)
    )
    crops = compute_profile("crops:5x224", max_batch=8, opt_batch=5)
    assert crops.min == (1, 3, 224, 224) and crops.opt == (5, 3, 224, 224) and crops.max == (8, 3, 224, 224)
    small = compute_profile("max-side:320", max_batch=4)
    assert small.max == (4, 3, 320, 320)
    assert small.opt == (1, 3, 240, 320)  # 480x640 scaled to fit 320
    custom = compute_profile("native", max_batch=2, max_hw=(720, 1280), opt_hw=(720, 1280))
    assert custom.opt == (1, 3, 720, 1280) and custom.max == (2, 3, 720, 1280)
    with pytest.raises(ValueError):
        compute_profile("native", max_batch=2, opt_batch=3)


def test_profile_contains():
    p = ShapeProfile((1, 3, 32, 32), (1, 3, 64, 64), (4, 3, 128, 256))
    assert p.contains((4, 3, 128, 256)) and p.contains((1, 3, 32, 32))
    assert (
        not p.contains((5, 3, 64, 64)) and not p.contains((1, 3, 129, 64)) and not p.contains((1, 3, 16, 64))
    )
    assert not p.contains((1, 3, 64))
    assert "max 4x3x128x256" in p.describe()
    frames = p.nhwc()  # the camera-bytes input: N, H, W, 3
    assert frames.min == (1, 32, 32, 3) and frames.max == (4, 128, 256, 3)
    assert frames.contains((2, 64, 64, 3)) and not frames.contains((2, 3, 64, 64))


def test_engine_cache_key_changes_with_every_field():
    prof = compute_profile("native")
    base = dict(
        onnx_sha256="a" * 64,
        trt_version="10.3.0",
        gpu_name="Orin",
        compute_capability=(8, 7),
        precision="fp16",
        profile=prof,
    )
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base)  # deterministic
    variations = [
        {"onnx_sha256": "b" * 64},
        {"trt_version": "10.4.0"},
        {"gpu_name": "RTX 4090"},
        {"compute_capability": (8, 9)},
        {"precision": "fp32"},
        {"profile": compute_profile("native", max_hw=(720, 1280))},
    ]
    keys = {engine_cache_key(**{**base, **v}) for v in variations}
    assert key not in keys and len(keys) == len(variations)
    name = engine_file_name("a" * 64, "10.3.0.26", (8, 7), "fp16", key)
    assert name == f"hirqa-{'a' * 12}-trt10.3.0.26-sm87-fp16-{key[:16]}.plan"
    assert timing_cache_name("10.3.0", (8, 7)) == "timing-trt10.3.0-sm87.cache"


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HIRQA_ENGINE_CACHE", str(tmp_path / "e"))
    assert default_cache_dir() == tmp_path / "e"
    monkeypatch.delenv("HIRQA_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "hirqa_ros" / "engines"


def test_trt_dtype_names_map_to_torch_dtypes():
    torch = pytest.importorskip("torch", reason="torch not installed")
    for trt_name, torch_name in TRT_DTYPE_TO_TORCH.items():
        assert isinstance(getattr(torch, torch_name), torch.dtype), trt_name


def _frames():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(64, 64), (96, 128)]]


@pytest.mark.skipif(
    not (HAS_TRT and HAS_CUDA), reason="TensorRT not installed" if not HAS_TRT else "CUDA not available"
)
def test_tensorrt_engine_builds_caches_and_agrees_with_onnxruntime(random_model_dir, tmp_path):
    from hirqa_ros import load_scorer

    ref = load_scorer(random_model_dir, backend="onnxruntime").score(_frames())
    opts = dict(cache_dir=tmp_path, max_hw=(256, 256), opt_hw=(96, 128))
    for precision, tol in (("fp32", 1e-3), ("fp16", 2e-2)):
        s = load_scorer(random_model_dir, backend="tensorrt", precision=precision, **opts)
        assert s.backend == "tensorrt"
        out = s.infer(_frames())
        assert np.abs(out.scores - ref).max() <= tol and out.embeddings.shape == (2, 1024)
    plans = sorted(tmp_path.glob("*.plan"))
    assert len(plans) == 2
    mtime = plans[0].stat().st_mtime_ns
    load_scorer(random_model_dir, backend="tensorrt", precision="fp32", **opts)  # cache hit: no rebuild
    assert plans[0].stat().st_mtime_ns == mtime


@pytest.mark.skipif(
    not (HAS_T2T and HAS_CUDA), reason="torch2trt not installed" if not HAS_T2T else "CUDA not available"
)
def test_torch2trt_converts_and_agrees(random_model_dir, tmp_path):
    from hirqa_ros import load_scorer

    ref = load_scorer(random_model_dir, backend="onnxruntime").score(_frames())
    s = load_scorer(random_model_dir, backend="torch2trt", cache_dir=tmp_path, max_hw=(256, 256))
    assert np.abs(s.score(_frames()) - ref).max() <= 2e-2
    assert list(tmp_path.glob("*.pth"))


@pytest.mark.skipif(not HAS_CUDA, reason="CUDA not available")
def test_torch_cuda_fp16_graphs_agree_with_cpu(random_model_dir):
    from hirqa_ros import load_scorer

    cpu = load_scorer(random_model_dir, backend="torch", device="cpu").score(_frames())
    gpu = load_scorer(random_model_dir, backend="torch", device="cuda")
    assert gpu.precision == "fp16"
    for _ in range(3):  # first call eager, second captures a CUDA graph, third replays it
        got = gpu.score(_frames())
        assert np.abs(got - cpu).max() <= 2e-2
    assert gpu.impl._graphs
    staged = gpu.staging.acquire((1, 64, 64, 3))
    assert staged.base.is_pinned()  # reusable page-locked staging buffers


def test_engine_cache_policy_reuse_force_and_corrupt(tmp_path, caplog):
    import logging

    from hirqa_ros.backends.tensorrt_backend import load_or_build

    builds = []

    def build():
        builds.append(1)
        return b"PLAN-v1"

    def deserialize(data):  # stands for runtime.deserialize_cuda_engine: None when unusable
        return data.decode() if data.startswith(b"PLAN") else None

    path = tmp_path / "engines" / "e.plan"
    with caplog.at_level(logging.WARNING):
        engine, built = load_or_build(path, False, deserialize, build, "BUILDING engine")
    assert (engine, built, len(builds)) == ("PLAN-v1", True, 1)
    assert "BUILDING engine" in caplog.text and path.read_bytes() == b"PLAN-v1"
    assert load_or_build(path, False, deserialize, build) == ("PLAN-v1", False) and len(builds) == 1
    assert load_or_build(path, True, deserialize, build)[1] is True and len(builds) == 2  # forced
    path.write_bytes(b"garbage from another TensorRT")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load_or_build(path, False, deserialize, build) == ("PLAN-v1", True)
    assert "could not be deserialized" in caplog.text and path.read_bytes() == b"PLAN-v1"
    assert [p.name for p in path.parent.iterdir()] == ["e.plan"]  # atomic write left no temp file
    with pytest.raises(RuntimeError, match="cannot deserialize"):
        load_or_build(tmp_path / "x.plan", False, deserialize, lambda: b"broken")


def test_onnxruntime_provider_selection(tmp_path):
    from hirqa_ros.backends import BackendUnavailable
    from hirqa_ros.backends.onnxruntime_backend import select_providers

    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers(cpu_only, None, "fp32") == ["CPUExecutionProvider"]
    assert select_providers(gpu, "cpu", "fp32") == ["CPUExecutionProvider"]
    assert select_providers(gpu, None, "fp32") == [
        ("CUDAExecutionProvider", {"device_id": 0}),
        "CPUExecutionProvider",
    ]
    assert select_providers(gpu, "cuda:1", "fp32")[0] == ("CUDAExecutionProvider", {"device_id": 1})
    trt = select_providers(gpu, "tensorrt", "fp16", trt_cache_dir=tmp_path)
    assert trt[0][0] == "TensorrtExecutionProvider" and trt[0][1]["trt_fp16_enable"] is True
    assert trt[0][1]["trt_engine_cache_enable"] is True and trt[-1] == "CPUExecutionProvider"
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
        select_providers(cpu_only, "cuda", "fp32")
    with pytest.raises(BackendUnavailable, match="TensorrtExecutionProvider"):
        select_providers(cpu_only, "tensorrt", "fp16")
