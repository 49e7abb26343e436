"""TensorRT / torch2trt / CUDA backends: the pure logic here, the real calls only where installed.

TensorRT and CUDA cannot run on the development machines. Where a test needs an object of theirs
it uses a FAKE (every one is named Fake..., and stands only for the library calls the code makes,
as bound in TensorRT's python/src/infer/pyCore.cpp); the real-library tests at the bottom skip
here with the reason, and fail instead under scripts/gpu_check.sh (see helpers_gpu.py).
"""

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers_gpu import ENV, need, required

from hirqa_ros.backends.tensorrt_backend import (
    TRT_DTYPE_TO_TORCH,
    BuildPlan,
    ShapeProfile,
    attach_timing_cache,
    build_engine,
    build_plan,
    check_io,
    compute_profile,
    default_cache_dir,
    engine_cache_key,
    engine_file_name,
    enqueue_on_stream,
    load_or_build,
    parse_hw,
    parse_version,
    profile_from_engine,
    profile_options_for_cameras,
    save_timing_cache,
    timing_cache_name,
    version_supported,
)
from hirqa_ros.backends.torch2trt_backend import torch2trt_supported

ROOT = Path(__file__).resolve().parents[1]


# ---- versions and build plans ------------------------------------------------------------------


def test_parse_version_and_support_window():
    assert parse_version("10.3.0.26") == (10, 3)
    assert parse_version("8.5.2.2") == (8, 5)
    assert parse_version("11") == (11, 0)
    with pytest.raises(ValueError):
        parse_version("trt")
    assert version_supported("8.5.2.2") == (True, "")  # JetPack 5.1.x
    ok, why = version_supported("8.4.1")
    assert not ok and "8.5 or newer" in why


def test_build_plan_branches_on_version_and_shipped_fp16_onnx():
    weak_fp16 = BuildPlan("fp32", strongly_typed=False, fp16_flag=True, explicit_batch_flag=True)
    for v in ("8.5.2.2", "8.6.1", "9.3.0"):
        assert build_plan(v, "fp16") == weak_fp16
        assert build_plan(v, "fp16", have_fp16_onnx=True) == weak_fp16  # no strong typing before 10
        assert build_plan(v, "fp32").fp16_flag is False
    # 10.x: strongly typed from a shipped fp16 ONNX, else the FP16 flag on the fp32 ONNX (no export)
    assert build_plan("10.3.0", "fp16", have_fp16_onnx=True) == BuildPlan("fp16", True, False, False)
    assert build_plan("10.3.0", "fp16") == BuildPlan("fp32", False, True, False)
    assert build_plan("10.3.0", "fp32") == BuildPlan("fp32", True, False, False)
    # 11: no FP16 flag at all, so fp16 always parses an fp16 ONNX
    assert build_plan("11.4.1", "fp16") == BuildPlan("fp16", True, False, False)
    assert build_plan("11.4.1", "fp32") == BuildPlan("fp32", True, False, False)
    assert "FP16 builder flag" in build_plan("10.3", "fp16").describe()
    with pytest.raises(RuntimeError, match="too old"):
        build_plan("8.4.3", "fp16")
    with pytest.raises(ValueError, match="precision"):
        build_plan("10.3", "int8")


def test_torch2trt_is_refused_on_tensorrt_11_with_the_reason():
    assert torch2trt_supported("8.5.2") == (True, "")
    assert torch2trt_supported("10.3.0") == (True, "")
    ok, why = torch2trt_supported("11.0.0")
    assert not ok and "EXPLICIT_BATCH" in why and "BuilderFlag.FP16" in why
    assert torch2trt_supported("8.2.1")[0] is False


# ---- profiles ----------------------------------------------------------------------------------


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
    nhwc = compute_profile("native", max_batch=2, max_hw=(720, 1280), layout="NHWC")
    assert nhwc.max == (2, 720, 1280, 3) and nhwc.min == (1, 32, 32, 3)
    with pytest.raises(ValueError):
        compute_profile("native", max_batch=2, opt_batch=3)
    with pytest.raises(ValueError, match="layout"):
        compute_profile("native", layout="CHWN")


def test_profile_contains_covers_and_bytes():
    p = ShapeProfile((1, 3, 32, 32), (1, 3, 64, 64), (4, 3, 128, 256))
    assert p.contains((4, 3, 128, 256)) and p.contains((1, 3, 32, 32))
    assert (
        not p.contains((5, 3, 64, 64)) and not p.contains((1, 3, 129, 64)) and not p.contains((1, 3, 16, 64))
    )
    assert not p.contains((1, 3, 64))
    assert "max 4x3x128x256" in p.describe()
    assert p.covers(ShapeProfile((1, 3, 32, 32), (1, 3, 32, 32), (2, 3, 64, 64)))
    assert not p.covers(ShapeProfile((1, 3, 32, 32), (1, 3, 32, 32), (8, 3, 64, 64)))
    assert p.input_bytes(4) == 4 * 3 * 128 * 256 * 4
    frames = p.nhwc()  # the camera-bytes input: N, H, W, 3
    assert frames.min == (1, 32, 32, 3) and frames.max == (4, 128, 256, 3)
    assert frames.contains((2, 64, 64, 3)) and not frames.contains((2, 3, 64, 64))


def test_profile_options_from_declared_cameras():
    one = profile_options_for_cameras([(720, 1280)], "native", n_cameras=1)
    assert one == {"max_batch": 1, "opt_batch": 1, "max_hw": (720, 1280), "opt_hw": (720, 1280)}
    prof = compute_profile("native", **one)
    assert prof.max == (1, 3, 720, 1280) and prof.opt == (1, 3, 720, 1280)
    # two cameras of different sizes: the box covering both, optimised for the first
    two = profile_options_for_cameras([(480, 640), (1080, 1440)], "native", n_cameras=2)
    assert two["max_hw"] == (1080, 1440) and two["opt_hw"] == (480, 640) and two["max_batch"] == 2
    # crops:KxS: K views per frame and camera; an explicit max_batch wins
    assert profile_options_for_cameras([], "crops:5x224", n_cameras=2)["max_batch"] == 10
    assert profile_options_for_cameras([], "native", n_cameras=3, max_batch=4)["max_batch"] == 4
    assert "max_hw" not in profile_options_for_cameras([], "native", n_cameras=1)  # default 1088x1920
    assert profile_options_for_cameras([(10, 20)], "native", 1)["max_hw"] == (32, 32)  # upscaled to 32
    with pytest.raises(ValueError):
        profile_options_for_cameras([], "native", n_cameras=0)
    with pytest.raises(ValueError):
        profile_options_for_cameras([(0, 10)], "native", n_cameras=1)
    assert parse_hw("720x1280") == (720, 1280) and parse_hw(" 1080X1920 ") == (1080, 1920)
    for bad in ("720", "ax1", "0x5", "-1x3"):
        with pytest.raises(ValueError, match="HxW"):
            parse_hw(bad)


class FakeEngine:
    """FAKE of ICudaEngine.get_tensor_profile_shape(name, profile_index) (TensorRT is absent here)."""

    def __init__(self, shapes):
        self.shapes = shapes

    def get_tensor_profile_shape(self, name, index):
        return self.shapes.get((name, index))


def test_profile_read_from_a_prebuilt_engine():
    eng = FakeEngine({("frames", 0): [[1, 32, 32, 3], [2, 720, 1280, 3], [4, 720, 1280, 3]]})
    p = profile_from_engine(eng)
    assert p == ShapeProfile((1, 32, 32, 3), (2, 720, 1280, 3), (4, 720, 1280, 3))
    assert not p.contains((1, 1080, 1920, 3))
    with pytest.raises(RuntimeError, match="no optimisation profile"):
        profile_from_engine(eng, profile_index=1)
    with pytest.raises(RuntimeError, match="not 4-d"):
        profile_from_engine(FakeEngine({("frames", 0): [[1, 3], [1, 3], [1, 3]]}))


def test_engine_io_names_are_checked():
    assert check_io(["frames"], ["score"]) == ["score"]
    assert check_io(["frames"], ["embedding", "score"]) == ["score", "embedding"]
    bad = (
        (["image"], ["score"]),
        (["frames"], ["logits"]),
        (["frames"], ["score", "x"]),
    )  # image: pre-frames
    for inputs, outputs in bad:
        with pytest.raises(RuntimeError, match="HiRQA engine"):
            check_io(inputs, outputs)


# ---- cache keys and files ----------------------------------------------------------------------


def test_engine_cache_key_changes_with_every_field():
    prof = compute_profile("native")
    base = dict(
        onnx_sha256="a" * 64,
        trt_version="10.3.0",
        gpu_name="Orin",
        compute_capability=(8, 7),
        precision="fp16",
        profile=prof,
        plan=build_plan("10.3.0", "fp16"),
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
        {"plan": build_plan("10.3.0", "fp16", have_fp16_onnx=True)},
    ]
    keys = {engine_cache_key(**{**base, **v}) for v in variations}
    assert key not in keys and len(keys) == len(variations)
    name = engine_file_name("a" * 64, "10.3.0.26", (8, 7), "fp16", key)
    assert name == f"hirqa-{'a' * 12}-trt10.3.0.26-sm87-fp16-{key[:16]}.plan"


def test_timing_cache_file_is_keyed_by_gpu_name_too():
    nano = timing_cache_name("10.3.0", (8, 7), "Orin (nvgpu) Nano 8GB")
    agx = timing_cache_name("10.3.0", (8, 7), "Orin (nvgpu) AGX 64GB")
    assert nano != agx and nano.startswith("timing-trt10.3.0-sm87-orin-nvgpu-nano-8gb-")
    assert nano.endswith(".cache") and "/" not in timing_cache_name("10.3", (8, 9), "a/b c")


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


# ---- timing cache ------------------------------------------------------------------------------


class FakeTimingCache:
    """FAKE of tensorrt.ITimingCache (serialize only)."""

    def __init__(self, blob, fail_serialize=False):
        self.blob, self.fail_serialize = bytes(blob), fail_serialize

    def serialize(self):
        if self.fail_serialize:
            raise RuntimeError("serialize failed (fake)")
        return self.blob + b"+new-timings"


class FakeBuilderConfig:
    """FAKE of tensorrt.IBuilderConfig's timing-cache calls: create_timing_cache returns None for a
    blob it cannot read, set_timing_cache returns False for a cache from another device (as bound:
    IBuilderConfig::setTimingCache returns bool)."""

    def __init__(self, unreadable=(), mismatched=(), create_fails=False, fail_serialize=False):
        self.unreadable, self.mismatched = set(unreadable), set(mismatched)
        self.create_fails, self.fail_serialize = create_fails, fail_serialize
        self.cache = None
        self.calls = []

    def create_timing_cache(self, blob):
        self.calls.append(("create", bytes(blob)))
        if self.create_fails or bytes(blob) in self.unreadable:
            return None
        return FakeTimingCache(blob, self.fail_serialize)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.calls.append(("set", cache.blob, ignore_mismatch))
        if cache.blob in self.mismatched:
            return False
        self.cache = cache
        return True

    def get_timing_cache(self):
        return self.cache


def test_timing_cache_is_checked_and_falls_back_to_an_empty_one(tmp_path, caplog):
    path = tmp_path / "timing.cache"
    cfg = FakeBuilderConfig()
    assert attach_timing_cache(cfg, path).blob == b""  # no file yet: an empty cache
    path.write_bytes(b"old")
    cfg = FakeBuilderConfig()
    assert attach_timing_cache(cfg, path).blob == b"old"
    assert cfg.calls == [("create", b"old"), ("set", b"old", False)]
    for bad in (FakeBuilderConfig(unreadable={b"old"}), FakeBuilderConfig(mismatched={b"old"})):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            cache = attach_timing_cache(bad, path)
        assert cache is not None and cache.blob == b"" and bad.cache is cache
        assert "rejected" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert attach_timing_cache(FakeBuilderConfig(create_fails=True), path) is None
    assert "without one" in caplog.text
    assert attach_timing_cache(FakeBuilderConfig(), None) is None


def test_timing_cache_save_is_guarded(tmp_path, caplog):
    cfg = FakeBuilderConfig()
    path = tmp_path / "t.cache"
    attach_timing_cache(cfg, path)
    assert save_timing_cache(cfg, path) and path.read_bytes() == b"+new-timings"
    cfg = FakeBuilderConfig(fail_serialize=True)
    attach_timing_cache(cfg, path)
    with caplog.at_level(logging.WARNING):
        assert save_timing_cache(cfg, path) is False
    assert "engine is unaffected" in caplog.text and path.read_bytes() == b"+new-timings"
    assert save_timing_cache(FakeBuilderConfig(), tmp_path / "u.cache") is False  # no cache attached
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    cfg = FakeBuilderConfig()
    attach_timing_cache(cfg, tmp_path / "v.cache")
    with caplog.at_level(logging.WARNING):
        assert save_timing_cache(cfg, blocker / "t.cache") is False  # parent is a file: OSError


class FakeTensorRT:
    """FAKE of the tensorrt module for build_engine: records the flags, profile and timing-cache
    calls the build makes (the real module cannot be installed here). ``version`` picks which
    enum members exist: < 10 has EXPLICIT_BATCH, >= 9.1 STRONGLY_TYPED, >= 11 no FP16 flag."""

    def __init__(self, version="10.3.0", build_ok=True, cache_serialize_fails=False):
        self.__version__ = version
        major = parse_version(version)[0]
        self.record = {}
        rec = self.record

        class Flags:
            pass

        creation = Flags()
        if major < 11:
            creation.EXPLICIT_BATCH = 0
        if parse_version(version) >= (9, 1):
            creation.STRONGLY_TYPED = 1
        self.NetworkDefinitionCreationFlag = creation
        builder_flags = Flags()
        if major < 11:
            builder_flags.FP16 = "FP16"
        self.BuilderFlag = builder_flags
        self.MemoryPoolType = type("MemoryPoolType", (), {"WORKSPACE": "WORKSPACE"})

        class Logger:
            WARNING = 2

            def __init__(self, level=2):
                pass

        self.Logger = Logger

        class Parser:
            num_errors = 0

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                rec["onnx"] = path
                return True

        self.OnnxParser = Parser

        class Profile:
            def set_shape(self, name, lo, opt, hi):
                rec["profile"] = (name, lo, opt, hi)

        class Config(FakeBuilderConfig):
            def set_memory_pool_limit(self, pool, size):
                rec["workspace"] = size

            def set_flag(self, flag):
                rec.setdefault("flags", []).append(flag)

            def add_optimization_profile(self, p):
                rec["profiles"] = rec.get("profiles", 0) + 1

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                rec["network_flags"] = flags
                return object()

            def create_builder_config(self):
                rec["config"] = Config(fail_serialize=cache_serialize_fails)
                return rec["config"]

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                return b"PLAN" if build_ok else None

        self.Builder = Builder


@pytest.mark.parametrize(
    ("version", "precision", "network_flags", "flags"),
    [
        ("8.5.2.2", "fp16", 1 << 0, ["FP16"]),  # EXPLICIT_BATCH, weakly typed
        ("10.3.0", "fp16", 0, ["FP16"]),  # no fp16 ONNX shipped: FP16 flag, no EXPLICIT_BATCH
        ("10.3.0", "fp32", 1 << 1, None),  # STRONGLY_TYPED
        ("11.4.1", "fp32", 1 << 1, None),
    ],
)
def test_build_engine_sets_the_flags_of_the_plan(tmp_path, version, precision, network_flags, flags):
    trt = FakeTensorRT(version)
    plan = build_plan(version, precision)
    prof = compute_profile("native", max_batch=2, max_hw=(720, 1280))
    timing = tmp_path / "timing.cache"
    data = build_engine(tmp_path / "m.onnx", plan, prof, timing, 1 << 28, trt=trt)
    rec = trt.record
    assert data == b"PLAN" and rec["network_flags"] == network_flags and rec.get("flags") == flags
    assert rec["profile"] == ("frames", prof.min, prof.opt, prof.max) and rec["profiles"] == 1
    assert rec["workspace"] == 1 << 28 and timing.read_bytes() == b"+new-timings"


def test_build_engine_keeps_the_engine_when_the_timing_cache_save_fails(tmp_path, caplog):
    trt = FakeTensorRT("10.3.0", cache_serialize_fails=True)
    with caplog.at_level(logging.WARNING):
        data = build_engine(
            tmp_path / "m.onnx", build_plan("10.3.0", "fp32"), compute_profile(), tmp_path / "t", trt=trt
        )
    assert data == b"PLAN" and "engine is unaffected" in caplog.text
    with pytest.raises(RuntimeError, match="build failed"):
        build_engine(
            tmp_path / "m.onnx",
            build_plan("10.3", "fp32"),
            compute_profile(),
            trt=FakeTensorRT(build_ok=False),
        )
    # a plan asking for the FP16 flag on a TensorRT without it (11) fails with the reason
    with pytest.raises(RuntimeError, match="no FP16 builder flag"):
        build_engine(
            tmp_path / "m.onnx", build_plan("10.3", "fp16"), compute_profile(), trt=FakeTensorRT("11.0")
        )


# ---- engine cache policy -----------------------------------------------------------------------


def test_engine_cache_policy_reuse_force_and_corrupt(tmp_path, caplog):
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
    # an engine path that cannot be written still yields the engine built in memory
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load_or_build(blocker / "e.plan", False, deserialize, build) == ("PLAN-v1", True)
    assert "could not write the engine" in caplog.text


# ---- stream order ------------------------------------------------------------------------------


class FakeCuda:
    """FAKE of the torch.cuda stream calls (no CUDA here): logs every call in order."""

    def __init__(self):
        self.log = []
        fake = self

        class Stream:
            def __init__(self, name):
                self.name, self.cuda_stream = name, hash(name)

            def wait_stream(self, other):
                fake.log.append(f"{self.name} waits for {other.name}")

        self.current = Stream("current")
        self.Stream = Stream
        self.cuda = self

    def current_stream(self, device):
        self.log.append(f"current_stream({device})")
        return self.current


class FakeTensor:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def record_stream(self, stream):
        self.log.append(f"{self.name} recorded on {stream.name}")


class FakeContext:
    def __init__(self, log, ok=True):
        self.log, self.ok = log, ok

    def execute_async_v3(self, handle):
        self.log.append(f"execute on {handle}")
        return self.ok


def test_inference_runs_on_its_own_stream_in_order():
    torch = FakeCuda()
    ours = torch.Stream("ours")
    tensors = [FakeTensor("input", torch.log), FakeTensor("score", torch.log)]
    enqueue_on_stream(torch, ours, FakeContext(torch.log), tensors, "cuda:1")
    assert torch.log == [
        "current_stream(cuda:1)",
        "ours waits for current",  # the input copy / allocations happen first
        f"execute on {ours.cuda_stream}",  # TensorRT on the dedicated stream, not the default one
        "input recorded on ours",
        "score recorded on ours",
        "current waits for ours",  # readers on the current stream see finished outputs
    ]
    with pytest.raises(RuntimeError, match="execute_async_v3 failed"):
        enqueue_on_stream(torch, ours, FakeContext([], ok=False), tensors, "cuda:1")


def test_cuda_device_keeps_the_index_and_refuses_cpu():
    torch = pytest.importorskip("torch", reason="torch not installed")
    from hirqa_ros.backends.tensorrt_backend import cuda_device

    assert cuda_device(torch, "cuda:1") == torch.device("cuda", 1)  # not silently device 0
    with pytest.raises(ValueError, match="CUDA device"):
        cuda_device(torch, "cpu")


# ---- the ONNX TensorRT builds from ---------------------------------------------------------------


def test_folded_fp32_onnx_has_no_casts_and_the_same_scores(random_model_dir, tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx not installed (only needed to inspect the file)")
    import onnxruntime as ort

    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.export.tensorrt_onnx import folded_fp32_onnx, onnx_for_plan, source_onnx_sha256

    art = load_artifact(random_model_dir)

    def cast_of_weights(model) -> int:  # Cast nodes fed by an initializer (fp16 weights behind a Cast)
        inits = {i.name for i in model.graph.initializer}
        return sum(n.op_type == "Cast" and n.input[0] in inits for n in model.graph.node)

    assert cast_of_weights(onnx.load(str(art.onnx))) > 10  # the compact model.onnx
    out = folded_fp32_onnx(art.onnx, tmp_path)
    model = onnx.load(str(out))
    assert cast_of_weights(model) == 0 and "BatchNormalization" not in {n.op_type for n in model.graph.node}
    assert {n.domain for n in model.graph.node} == {""}  # standard ONNX ops only
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in model.graph.initializer if len(i.dims) == 4)
    x = np.random.default_rng(3).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)  # camera bytes
    a, b = (
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"frames": x})[0]
        for p in (art.onnx, out)
    )
    assert np.abs(a - b).max() < 1e-5
    mtime = out.stat().st_mtime_ns
    assert folded_fp32_onnx(art.onnx, tmp_path) == out and out.stat().st_mtime_ns == mtime  # cached
    assert onnx_for_plan(art, build_plan("8.5.2", "fp16"), tmp_path) == out
    assert source_onnx_sha256(art, "fp32") == art.file_sha256("onnx")
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left


def test_fp16_onnx_comes_from_the_model_dir_and_is_never_exported_without_torch(random_model_dir, tmp_path):
    import shutil

    import yaml

    from hirqa_ros.artifacts import load_artifact, sha256_file
    from hirqa_ros.backends.tensorrt_backend import has_fp16_onnx
    from hirqa_ros.export.tensorrt_onnx import FP16_ONNX_KEY, fp16_onnx_for

    art = load_artifact(random_model_dir)
    assert not has_fp16_onnx(art)
    # the key of an fp16 ONNX exported on demand follows the weights, channel order and normalisation
    from dataclasses import replace

    from hirqa_ros.export.tensorrt_onnx import source_onnx_sha256

    key = source_onnx_sha256(art, "fp16")
    other = replace(art, card={**art.card, "normalisation": {**art.card["normalisation"], "mean": [0.5] * 3}})
    assert key == source_onnx_sha256(art, "fp16") != source_onnx_sha256(other, "fp16")
    # without onnx/torch (the robot) an fp16 ONNX is never exported: the error says what to do
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from hirqa_ros.artifacts import load_artifact\n"
        "from hirqa_ros.export.tensorrt_onnx import fp16_onnx_for\n"
        f"try:\n    fp16_onnx_for(load_artifact({str(random_model_dir)!r}), {str(tmp_path)!r})\n"
        "except RuntimeError as e:\n    print('REFUSED', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "REFUSED" in res.stdout and "fp16-onnx-into-model" in res.stdout, res.stdout + res.stderr
    assert not list(tmp_path.iterdir())
    # a model directory that ships one: used as is
    shipped = tmp_path / "with-fp16"
    shutil.copytree(random_model_dir, shipped)
    (shipped / "model_fp16.onnx").write_bytes((shipped / "model.onnx").read_bytes())
    card = yaml.safe_load((shipped / "model.yaml").read_text())
    card["files"][FP16_ONNX_KEY] = {
        "path": "model_fp16.onnx",
        "sha256": sha256_file(shipped / "model_fp16.onnx"),
    }
    (shipped / "model.yaml").write_text(yaml.safe_dump(card))
    art16 = load_artifact(shipped)
    assert has_fp16_onnx(art16) and fp16_onnx_for(art16, tmp_path / "cache") == shipped / "model_fp16.onnx"


# ---- ONNX Runtime GPU providers ----------------------------------------------------------------


def test_onnxruntime_provider_selection(tmp_path):
    from hirqa_ros.backends import BackendUnavailable
    from hirqa_ros.backends.onnxruntime_backend import select_providers

    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers(cpu_only, None, "fp32") == ["CPUExecutionProvider"]
    assert select_providers(gpu, "cpu", "fp32") == ["CPUExecutionProvider"]
    assert select_providers(gpu, None, "fp32", gpu_present=True) == [
        ("CUDAExecutionProvider", {"device_id": 0}),
        "CPUExecutionProvider",
    ]
    # the GPU wheel on a machine without a GPU: no CUDA provider requested (no error spam)
    assert select_providers(gpu, None, "fp32", gpu_present=False) == ["CPUExecutionProvider"]
    assert select_providers(gpu, "cuda:1", "fp32")[0] == ("CUDAExecutionProvider", {"device_id": 1})
    trt = select_providers(gpu, "tensorrt", "fp16", trt_cache_dir=tmp_path)
    assert trt[0][0] == "TensorrtExecutionProvider" and trt[0][1]["trt_fp16_enable"] is True
    assert trt[0][1]["trt_engine_cache_enable"] is True and trt[-1] == "CPUExecutionProvider"
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
        select_providers(cpu_only, "cuda", "fp32")
    with pytest.raises(BackendUnavailable, match="TensorrtExecutionProvider"):
        select_providers(cpu_only, "tensorrt", "fp16")


def test_onnxruntime_trt_options_follow_the_installed_version(caplog):
    from hirqa_ros.backends.onnxruntime_backend import trt_provider_options

    prof = compute_profile("native", max_batch=4, max_hw=(720, 1280))
    frames = trt_provider_options("1.17.1", 0, "fp16", "/c", prof.nhwc())
    assert frames["trt_profile_max_shapes"] == "frames:4x720x1280x3"  # the camera-bytes input
    new = trt_provider_options("1.17.1", 0, "fp16", "/c", prof, input_name="image")  # an older float ONNX
    assert new["trt_timing_cache_path"] == "/c"  # added in ONNX Runtime 1.17 (microsoft/onnxruntime#17865)
    assert new["trt_profile_min_shapes"] == "image:1x3x32x32"
    assert new["trt_profile_opt_shapes"] == "image:1x3x480x640"
    assert new["trt_profile_max_shapes"] == "image:4x3x720x1280"
    old = trt_provider_options("1.16.3", 0, "fp16", "/c", prof)  # setup.py still allows 1.16
    assert "trt_timing_cache_path" not in old and old["trt_timing_cache_enable"] is True
    assert "trt_profile_max_shapes" in old  # since 1.15 (microsoft/onnxruntime#15546)
    with caplog.at_level(logging.WARNING):
        older = trt_provider_options("1.14.1", 0, "fp32", "/c", prof)
    assert "trt_profile_max_shapes" not in older and "rebuilds engines" in caplog.text
    assert "trt_profile_min_shapes" not in trt_provider_options("1.17", 0, "fp32", "/c", None)


def test_onnxruntime_reports_the_provider_that_actually_runs(caplog):
    from hirqa_ros.backends import BackendUnavailable
    from hirqa_ros.backends.onnxruntime_backend import check_providers

    trt_first = [("TensorrtExecutionProvider", {}), ("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    ran = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert check_providers(trt_first, ran, "tensorrt") == "tensorrt"
    with pytest.raises(BackendUnavailable, match="asked for TensorrtExecutionProvider"):
        check_providers(trt_first, ["CUDAExecutionProvider", "CPUExecutionProvider"], "tensorrt")
    cuda_first = [("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
        check_providers(cuda_first, ["CPUExecutionProvider"], "cuda:0")
    with caplog.at_level(logging.WARNING):
        assert check_providers(cuda_first, ["CPUExecutionProvider"], None) == "cpu"  # auto: logged
    assert "asked for CUDAExecutionProvider" in caplog.text


def test_onnxruntime_wheel_conflict_is_detected(monkeypatch):
    from importlib import metadata

    from hirqa_ros.backends import onnxruntime_backend as ob

    real = metadata.version

    def both(name):
        return {"onnxruntime": "1.18.0", "onnxruntime-gpu": "1.18.0"}.get(name) or real(name)

    monkeypatch.setattr(metadata, "version", both)
    msg = ob.wheel_conflict()
    assert msg and "onnxruntime 1.18.0 and onnxruntime-gpu 1.18.0" in msg and "pip uninstall" in msg

    def only_cpu(name):
        if name == "onnxruntime-gpu":
            raise metadata.PackageNotFoundError(name)
        return "1.18.0"

    monkeypatch.setattr(metadata, "version", only_cpu)
    assert ob.wheel_conflict() is None


def test_gpu_extra_does_not_install_the_cpu_wheel():
    import ast

    call = next(
        n
        for n in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"
    )
    args = {
        k.arg: ast.literal_eval(k.value)
        for k in call.keywords
        if k.arg in ("install_requires", "extras_require")
    }

    def names(reqs):
        return {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in reqs}

    assert not any(n.startswith("onnxruntime") for n in names(args["install_requires"]))
    assert names(args["extras_require"]["gpu"]) & {"onnxruntime", "onnxruntime-gpu"} == {"onnxruntime-gpu"}
    assert "onnxruntime" in names(args["extras_require"]["cpu"])
    for extra, reqs in args["extras_require"].items():  # no other extra brings the CPU wheel back
        assert extra == "cpu" or "onnxruntime" not in names(reqs), extra


# ---- the GPU check script ----------------------------------------------------------------------


def test_gpu_requirement_env(monkeypatch):
    monkeypatch.setenv(ENV, "cuda, TensorRT ,bogus")
    assert required() == {"cuda", "tensorrt"}
    monkeypatch.setenv(ENV, "all")
    assert required() == {"cuda", "tensorrt", "torch2trt"}
    monkeypatch.delenv(ENV)
    assert required() == set()


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_gpu_check_fails_on_a_machine_without_a_gpu():
    from hirqa_ros.backends import cuda_status

    if cuda_status()[0]:
        pytest.skip("this machine has a CUDA GPU: gpu_check.sh is meant to pass here")
    env = {k: v for k, v in os.environ.items() if k not in ("HIRQA_ALLOW_SKIPS", ENV)}
    env["HIRQA_GPU_CHECK_PYTHON"] = sys.executable
    res = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode != 0, res.stdout + res.stderr
    assert "no CUDA GPU" in res.stdout + res.stderr and "HIRQA_ALLOW_SKIPS=1" in res.stdout + res.stderr


# ---- real TensorRT / torch2trt / CUDA (skipped here with the reason) ----------------------------


def _frames():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(64, 64), (96, 128)]]


def test_tensorrt_engine_builds_caches_and_agrees_with_onnxruntime(random_model_dir, tmp_path):
    need("cuda")
    need("tensorrt")
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
    fp32_plan = next(p for p in plans if "-fp32-" in p.name)  # the plan of the precision reloaded
    mtime = fp32_plan.stat().st_mtime_ns
    s = load_scorer(random_model_dir, backend="tensorrt", precision="fp32", **opts)  # cache hit
    assert s.impl.built is False and s.impl.engine_path == fp32_plan
    assert fp32_plan.stat().st_mtime_ns == mtime
    assert list(tmp_path.glob("timing-*.cache"))


def test_tensorrt_prebuilt_engine_path_is_used_with_its_own_profile(random_model_dir, tmp_path):
    need("cuda")
    need("tensorrt")
    from hirqa_ros import load_scorer
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.backends.tensorrt_backend import build_engine_file

    plan = build_engine_file(
        load_artifact(random_model_dir), tmp_path / "pre.plan", "fp16", max_hw=(128, 128), max_batch=2
    )
    mtime = plan.stat().st_mtime_ns
    # asked for a bigger profile, the pre-built plan is used anyway and its profile is enforced
    s = load_scorer(random_model_dir, backend="tensorrt", engine_path=plan, cache_dir=tmp_path / "c")
    assert s.impl.built is False and plan.stat().st_mtime_ns == mtime
    assert s.impl.profile.max == (2, 128, 128, 3) and s.impl.max_batch == 2  # NHWC camera bytes
    assert np.isfinite(s.score(_frames())).all()
    with pytest.raises(ValueError, match="outside the engine's profile"):
        s.score([np.zeros((200, 200, 3), np.uint8)])
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("*.plan"))


def test_tensorrt_runs_on_the_requested_device_from_a_worker_thread(random_model_dir, tmp_path):
    need("cuda")
    need("tensorrt")
    import torch

    from hirqa_ros import load_scorer

    last = torch.cuda.device_count() - 1
    s = load_scorer(
        random_model_dir, backend="tensorrt", device=f"cuda:{last}", cache_dir=tmp_path, max_hw=(128, 128)
    )
    assert torch.cuda.current_device() == 0 or last == 0  # building did not move the caller's device
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("scores", s.score(_frames())))
    t.start()
    t.join(120)
    assert np.isfinite(out["scores"]).all() and s.impl._dev.index == last


def test_torch2trt_converts_and_agrees(random_model_dir, tmp_path):
    need("cuda")
    need("torch2trt")
    from hirqa_ros import load_scorer

    ref = load_scorer(random_model_dir, backend="onnxruntime").score(_frames())
    s = load_scorer(random_model_dir, backend="torch2trt", cache_dir=tmp_path, max_hw=(256, 256))
    assert np.abs(s.score(_frames()) - ref).max() <= 2e-2
    assert list(tmp_path.glob("*.pth"))


def test_torch_cuda_fp16_graphs_agree_with_cpu(random_model_dir):
    need("cuda")
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


def test_onnxruntime_cuda_provider_runs_when_present(random_model_dir):
    need("cuda")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        if "cuda" in required():
            pytest.fail("CUDA is required but onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu?)")
        pytest.skip("onnxruntime without CUDAExecutionProvider (the CPU wheel)")
    from hirqa_ros import load_scorer

    s = load_scorer(random_model_dir, backend="onnxruntime", device="cuda")
    assert s.device == "cuda" and "CUDAExecutionProvider" in s.impl.providers


def test_requested_profile_and_node_engine_options():
    from hirqa_ros.backends.tensorrt_backend import requested_profile
    from hirqa_ros.node.params import BY_NAME, engine_options

    assert requested_profile("native") == compute_profile("native", 8, 1)  # the defaults
    one_cam = requested_profile("native", cameras=1, camera_sizes=[(720, 1280)])
    assert one_cam.max == (1, 3, 720, 1280) and one_cam.opt == (1, 3, 720, 1280)
    assert requested_profile("native", max_batch=4, cameras=2).max == (4, 3, 1088, 1920)
    assert requested_profile("crops:3x224", cameras=2).max == (6, 3, 224, 224)
    defaults = {s.name: s.default for s in BY_NAME.values()}
    assert engine_options(defaults, 2) == {"cameras": 2, "camera_sizes": []}
    p = {
        **defaults,
        "camera_sizes": ["720x1280"],
        "max_batch": 3,
        "engine_path": "/e.plan",
        "engine_cache_dir": "/c",
        "force_engine_update": True,
    }
    assert engine_options(p, 2) == {
        "cameras": 2,
        "camera_sizes": [(720, 1280)],
        "max_batch": 3,
        "cache_dir": "/c",
        "trt_cache_dir": "/c",
        "engine_path": "/e.plan",
        "force_engine_update": True,
    }
    assert engine_options({**defaults, "camera_sizes": ["480x640", "720x1280"]}, 2)["camera_sizes"] == [
        (480, 640),
        (720, 1280),
    ]
    with pytest.raises(ValueError, match="3 entries for 2 topics"):
        engine_options({**defaults, "camera_sizes": ["1x1"] * 3}, 2)
    with pytest.raises(ValueError, match=r"camera_sizes.*HxW"):
        engine_options({**defaults, "camera_sizes": ["720p"]}, 1)


def test_memory_estimate_follows_the_model():
    torch = pytest.importorskip("torch", reason="torch not installed")
    from hirqa_ros.backends.tensorrt_backend import PEAK_ACTIVATIONS_PER_PIXEL, WEIGHT_COUNT, memory_estimate
    from hirqa_ros.model import HiRQA

    model = HiRQA("hirqa-s").eval()
    sizes = []
    for mod in model.modules():
        if not list(mod.children()):
            mod.register_forward_hook(lambda m, i, o: sizes.append(o.numel()) if torch.is_tensor(o) else None)
    h, w = 64, 96
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w))
    per_pixel = sorted({s / (h * w) for s in sizes}, reverse=True)
    assert per_pixel[0] + per_pixel[1] == PEAK_ACTIVATIONS_PER_PIXEL  # conv1 output + max-pool output
    assert sum(p.numel() for p in model.parameters()) == WEIGHT_COUNT
    small, big = compute_profile("native", 1, 1, (480, 640)), compute_profile("native", 8, 1)
    assert memory_estimate(small, "fp16")["activations"] == 20 * 480 * 640 * 2
    assert memory_estimate(big, "fp32")["total"] > 8 * memory_estimate(small, "fp32")["activations"]


def test_fp16_onnx_added_to_a_model_dir_is_used_for_strong_typing(random_model_dir, tmp_path):
    import shutil

    pytest.importorskip("onnx", reason="onnx not installed (needed to export)")
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.backends.tensorrt_backend import has_fp16_onnx
    from hirqa_ros.cli.main import main
    from hirqa_ros.export.tensorrt_onnx import fp16_onnx_for, onnx_for_plan, source_onnx_sha256

    model = tmp_path / "m"
    shutil.copytree(random_model_dir, model)
    assert main(["export", "--model", str(model), "--fp16-onnx-into-model"]) == 0
    art = load_artifact(model)  # sha256 of the new file checked
    assert has_fp16_onnx(art) and art.file("onnx_fp16") == art.path / "model_fp16.onnx"
    assert "model_fp16.onnx" in (model / "MODEL_CARD.md").read_text()
    plan = build_plan("10.3.0", "fp16", has_fp16_onnx(art))
    assert plan.strongly_typed and onnx_for_plan(art, plan, tmp_path / "c") == art.path / "model_fp16.onnx"
    assert fp16_onnx_for(art, tmp_path / "c") == art.path / "model_fp16.onnx"
    assert source_onnx_sha256(art, "fp16") == art.file_sha256("onnx_fp16")
    import onnx
    import onnxruntime as ort

    sess = ort.InferenceSession(str(art.path / "model_fp16.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in sess.get_inputs()] == [("frames", "tensor(uint8)")]
    inits = onnx.load(str(art.path / "model_fp16.onnx")).graph.initializer
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in inits) > 10  # an fp16 network
