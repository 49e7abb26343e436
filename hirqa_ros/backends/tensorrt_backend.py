"""TensorRT backend (8.6 .. 11): ONNX -> engine with an on-disk cache, run with torch CUDA buffers.

Name-based I/O (``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``), no pycuda.
On TensorRT >= 10 fp16 engines are built strongly typed from an fp16 ONNX; on 8.6/9 from the
fp32 ONNX with the FP16 builder flag. The pure logic (version branching, optimisation profile,
cache key) is importable and testable without TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.artifacts import atomic_write_bytes, sha256_file
from hirqa_ros.constants import ONNX_INPUT_NAME as INPUT_NAME
from hirqa_ros.constants import ONNX_OUTPUT_NAME as OUTPUT_NAME
from hirqa_ros.preprocess import MIN_SIDE, InputPolicy

log = logging.getLogger(__name__)


DEFAULT_MAX_HW = (1088, 1920)
DEFAULT_OPT_HW = (480, 640)
MIN_VERSION = (8, 6)
TESTED_MAJOR_MAX = 11
# TensorRT DataType member name -> torch dtype name
TRT_DTYPE_TO_TORCH = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT32": "int32",
    "INT64": "int64",
    "INT8": "int8",
    "UINT8": "uint8",
    "BOOL": "bool",
}


def parse_version(version: str) -> tuple[int, int]:
    """'10.3.0.26' -> (10, 3)."""
    m = re.match(r"\s*(\d+)(?:\.(\d+))?", str(version))
    if not m:
        raise ValueError(f"cannot parse TensorRT version {version!r}")
    return int(m.group(1)), int(m.group(2) or 0)


@dataclass(frozen=True)
class BuildPlan:
    """How to build an engine for a TensorRT version and precision."""

    onnx_precision: str  # which ONNX to parse: "fp32" or "fp16"
    strongly_typed: bool  # create the network with the STRONGLY_TYPED flag (when the enum has it)
    fp16_flag: bool  # legacy weakly typed BuilderFlag.FP16
    explicit_batch_flag: bool  # TRT < 10 needs EXPLICIT_BATCH


def build_plan(trt_version: str, precision: str) -> BuildPlan:
    """Version branching: TRT 8.6/9 weakly typed (FP16 flag on the fp32 ONNX); TRT >= 10 strongly
    typed from an ONNX in the target precision (TRT 11 has no precision flags at all)."""
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
    ver = parse_version(trt_version)
    if ver < MIN_VERSION:
        raise RuntimeError(f"TensorRT {trt_version} is too old: need 8.6 or newer (name-based I/O)")
    if ver[0] > TESTED_MAJOR_MAX:
        log.warning(
            "TensorRT %s is newer than the newest version this code was written for (%d.x)",
            trt_version,
            TESTED_MAJOR_MAX,
        )
    if ver[0] < 10:
        return BuildPlan(
            "fp32", strongly_typed=False, fp16_flag=precision == "fp16", explicit_batch_flag=True
        )
    return BuildPlan(precision, strongly_typed=True, fp16_flag=False, explicit_batch_flag=False)


@dataclass(frozen=True)
class ShapeProfile:
    """Optimisation profile of the ``image`` input: NCHW (min, opt, max)."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def contains(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))

    def describe(self) -> str:
        def fmt(s: tuple[int, ...]) -> str:
            return "x".join(map(str, s))

        return f"min {fmt(self.min)}, opt {fmt(self.opt)}, max {fmt(self.max)}"


def compute_profile(
    policy: InputPolicy | str | None = None,
    max_batch: int = 8,
    opt_batch: int = 1,
    max_hw: tuple[int, int] | None = None,
    opt_hw: tuple[int, int] | None = None,
) -> ShapeProfile:
    """The profile covering every input the Scorer can produce under ``policy``.

    ``crops:KxS`` -> fixed SxS; ``max-side:N`` -> 32..N on both sides (opt: ``opt_hw`` scaled to
    fit N); ``native`` -> 32 .. ``max_hw`` (default 1088x1920; larger frames need a larger
    profile or a max-side policy).
    """
    policy = InputPolicy.parse(policy)
    if max_batch < 1 or not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt_batch ({opt_batch}) <= max_batch ({max_batch})")
    if policy.kind == "crops":
        s = policy.crop_size
        return ShapeProfile((1, 3, s, s), (opt_batch, 3, s, s), (max_batch, 3, s, s))
    if policy.kind == "max-side":
        n = policy.max_side
        hi = (n, n)
    else:
        hi = tuple(max_hw or DEFAULT_MAX_HW)
    oh, ow = opt_hw or DEFAULT_OPT_HW
    f = min(1.0, hi[0] / oh, hi[1] / ow)
    opt = (max(MIN_SIDE, min(hi[0], round(oh * f))), max(MIN_SIDE, min(hi[1], round(ow * f))))
    if min(hi) < MIN_SIDE:
        raise ValueError(f"max size {hi} is below the minimum side {MIN_SIDE}")
    return ShapeProfile((1, 3, MIN_SIDE, MIN_SIDE), (opt_batch, 3, *opt), (max_batch, 3, *hi))


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
    profile: ShapeProfile,
) -> str:
    """Hex digest identifying an engine: changes with any input that makes a plan invalid."""
    fields = {
        "onnx_sha256": onnx_sha256,
        "tensorrt": str(trt_version),
        "gpu": gpu_name,
        "compute_capability": list(compute_capability),
        "precision": precision,
        "profile": {k: list(v) for k, v in asdict(profile).items()},
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def engine_file_name(
    onnx_sha256: str, trt_version: str, compute_capability: tuple[int, int], precision: str, key: str
) -> str:
    """Readable cache file name, e.g. ``hirqa-1a2b3c4d5e6f-trt10.3.0-sm87-fp16-<key16>.plan``."""
    ver = re.sub(r"[^0-9.]", "", str(trt_version)) or "x"
    sm = f"sm{compute_capability[0]}{compute_capability[1]}"
    return f"hirqa-{onnx_sha256[:12]}-trt{ver}-{sm}-{precision}-{key[:16]}.plan"


def timing_cache_name(trt_version: str, compute_capability: tuple[int, int]) -> str:
    ver = re.sub(r"[^0-9.]", "", str(trt_version)) or "x"
    return f"timing-trt{ver}-sm{compute_capability[0]}{compute_capability[1]}.cache"


def default_cache_dir() -> Path:
    """$HIRQA_ENGINE_CACHE, else $XDG_CACHE_HOME/hirqa_ros/engines, else ~/.cache/hirqa_ros/engines."""
    env = os.environ.get("HIRQA_ENGINE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hirqa_ros" / "engines"


def fp16_onnx_for(artifact, cache_dir: Path) -> Path:
    """The fp16 ONNX of a model directory (exported once from its weights, cached by ONNX sha256)."""
    sha = artifact.file_sha256("onnx") or sha256_file(artifact.onnx)
    path = Path(cache_dir) / f"hirqa-{sha[:16]}-fp16.onnx"
    if not path.is_file():
        from hirqa_ros.export import export_onnx

        log.info("exporting fp16 ONNX for TensorRT to %s", path)
        export_onnx(artifact.torch_model(), path, fp16=True)
    return path


def build_engine(
    onnx_path: Path,
    plan: BuildPlan,
    profile: ShapeProfile,
    timing_cache: Path | None = None,
    workspace_bytes: int = 1 << 30,
    logger=None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine (needs TensorRT)."""
    import tensorrt as trt

    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if plan.explicit_batch_flag:
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    if plan.strongly_typed and hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(INPUT_NAME, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)
    cache = None
    if timing_cache is not None:
        data = timing_cache.read_bytes() if timing_cache.is_file() else b""
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log above)")
    if cache is not None:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def load_or_build(
    path: Path,
    force: bool,
    deserialize: Callable[[bytes], Any],
    build: Callable[[], bytes],
    announce: str = "building TensorRT engine",
) -> tuple[Any, bool]:
    """The engine cache policy: reuse ``path`` unless ``force`` or it fails to deserialize, else
    log ``announce`` as a WARNING, build, write atomically and deserialize. Returns (engine, built)."""
    if path.is_file() and not force:
        engine = deserialize(path.read_bytes())
        if engine is not None:
            log.info("loaded cached engine %s", path)
            return engine, False
        log.warning("cached engine %s could not be deserialized (TensorRT or GPU changed?); rebuilding", path)
    log.warning(announce)
    data = build()
    atomic_write_bytes(path, data)
    engine = deserialize(data)
    if engine is None:
        raise RuntimeError("TensorRT built an engine it cannot deserialize (see the log above)")
    return engine, True


class TensorRTBackend:
    """Runs a cached (or freshly built) TensorRT engine with torch CUDA tensors as I/O buffers."""

    name = "tensorrt"

    def __init__(
        self,
        artifact,
        device: str | None = None,
        precision: str | None = None,
        input_policy: InputPolicy | str | None = None,
        max_batch: int = 8,
        opt_batch: int = 1,
        max_hw: tuple[int, int] | None = None,
        opt_hw: tuple[int, int] | None = None,
        cache_dir: str | os.PathLike | None = None,
        engine_path: str | os.PathLike | None = None,
        force_engine_update: bool = False,
        workspace_gb: float = 1.0,
        warmup: int = 3,
        **_: object,
    ) -> None:
        import tensorrt as trt
        import torch

        self.trt, self.torch = trt, torch
        self.device = str(device or "cuda")
        if not self.device.startswith("cuda"):
            raise ValueError(f"TensorRT needs a CUDA device, got {self.device!r}")
        dev = torch.device(self.device)
        if dev.index is None:  # set_device needs an index
            dev = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(dev)
        self.precision = precision or "fp16"
        self.max_batch = max_batch
        policy = InputPolicy.parse(input_policy or artifact.input_policy)
        self.profile = compute_profile(policy, max_batch, opt_batch, max_hw, opt_hw)
        self.plan = build_plan(trt.__version__, self.precision)
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        onnx_path = fp16_onnx_for(artifact, cache) if self.plan.onnx_precision == "fp16" else artifact.onnx
        props = torch.cuda.get_device_properties(dev)
        cc = (props.major, props.minor)
        onnx_sha = sha256_file(onnx_path)
        key = engine_cache_key(onnx_sha, trt.__version__, props.name, cc, self.precision, self.profile)
        self.engine_path = (
            Path(engine_path)
            if engine_path
            else cache / engine_file_name(onnx_sha, trt.__version__, cc, self.precision, key)
        )
        self.logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self.logger)
        kind = (
            "strongly typed" if self.plan.strongly_typed else "FP16 flag" if self.plan.fp16_flag else "fp32"
        )
        announce = (
            f"BUILDING TensorRT ENGINE ({self.precision}, {kind}, profile {self.profile.describe()}) from "
            f"{onnx_path} on {props.name}. This takes minutes (on a Jetson up to ~10 min) and happens "
            f"once; the engine is cached at {self.engine_path}"
        )

        def build() -> bytes:
            return build_engine(
                Path(onnx_path),
                self.plan,
                self.profile,
                cache / timing_cache_name(trt.__version__, cc),
                int(workspace_gb * (1 << 30)),
                self.logger,
            )

        engine, self.built = load_or_build(
            self.engine_path, force_engine_update, runtime.deserialize_cuda_engine, build, announce
        )
        self.engine = engine
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
            raise RuntimeError(f"engine I/O {inputs} -> {outputs}; expected ['image'] -> ['score']")
        self.input_dtype = self._torch_dtype(engine.get_tensor_dtype(INPUT_NAME))
        self.output_dtype = self._torch_dtype(engine.get_tensor_dtype(OUTPUT_NAME))
        self._dev = dev
        log.info(
            "TensorRT %s engine %s ready on %s (input %s)",
            trt.__version__,
            self.engine_path.name,
            props.name,
            self.input_dtype,
        )
        for _ in range(warmup):
            self.run_tensor(torch.zeros(self.profile.opt, device=dev))
        torch.cuda.synchronize(dev)

    def _torch_dtype(self, trt_dtype):
        name = str(trt_dtype).rsplit(".", 1)[-1]
        return getattr(self.torch, TRT_DTYPE_TO_TORCH[name])

    def run_tensor(self, x):
        """Scores for a normalised NCHW tensor (moved to the GPU if needed); no host sync."""
        torch = self.torch
        shape = tuple(x.shape)
        if not self.profile.contains(shape):
            raise ValueError(
                f"input {'x'.join(map(str, shape))} is outside the engine's profile "
                f"({self.profile.describe()}); "
                "use an input policy such as max-side:N or build with a larger max_hw / max_batch"
            )
        x = x.to(self._dev, self.input_dtype, non_blocking=True).contiguous()
        self.context.set_input_shape(INPUT_NAME, shape)
        out = torch.empty(
            tuple(self.context.get_tensor_shape(OUTPUT_NAME)), dtype=self.output_dtype, device=self._dev
        )
        self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
        self.context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        stream = torch.cuda.current_stream(self._dev)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return out

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = self.torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return self.run_tensor(x).float().cpu().numpy().reshape(-1)


def build_engine_file(artifact, out_path: str | os.PathLike, precision: str = "fp16", **options) -> Path:
    """Build (or refresh) an engine for ``artifact`` at ``out_path``; returns the path."""
    backend = TensorRTBackend(
        artifact, precision=precision, engine_path=out_path, force_engine_update=True, warmup=1, **options
    )
    return backend.engine_path
