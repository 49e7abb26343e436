"""TensorRT backend (8.5 .. 11): ONNX -> engine (cached, or a pre-built plan), run on its own CUDA stream.

The engine takes the camera bytes (uint8 NHWC ``frames``) and normalises them itself; it returns
``score`` and ``embedding``. Name-based I/O (``set_input_shape`` / ``set_tensor_address`` /
``execute_async_v3``, all bound since TensorRT 8.5), torch CUDA tensors as buffers, pinned host
staging, no pycuda. The pure logic (version plan,
optimisation profile, cache keys, timing-cache handling, stream order) is importable and
testable without TensorRT; the ONNX files it builds from come from ``export.tensorrt_onnx``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.artifacts import atomic_write_bytes
from hirqa_ros.constants import ONNX_EMBEDDING_NAME as EMBEDDING_OUTPUT
from hirqa_ros.constants import ONNX_INPUT_NAME as INPUT_NAME
from hirqa_ros.constants import ONNX_OUTPUT_NAME as OUTPUT_NAME
from hirqa_ros.preprocess import MIN_SIDE, InputPolicy

log = logging.getLogger(__name__)

OPTIONAL_OUTPUTS = (EMBEDDING_OUTPUT,)
INPUT_LAYOUT = "NHWC"  # the engine input: uint8 camera bytes, normalised inside the engine
INPUT_ITEMSIZE = 1  # uint8
DEFAULT_MAX_HW = (1088, 1920)
DEFAULT_OPT_HW = (480, 640)
MIN_VERSION = (8, 5)
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


def version_supported(trt_version: str) -> tuple[bool, str]:
    """(True, "") when this TensorRT can run the backend, else (False, why)."""
    try:
        ver = parse_version(trt_version)
    except ValueError as exc:
        return False, str(exc)
    if ver < MIN_VERSION:
        return False, (
            f"TensorRT {trt_version} is too old: need {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer "
            "(name-based I/O: set_input_shape, set_tensor_address, execute_async_v3)"
        )
    return True, ""


@dataclass(frozen=True)
class BuildPlan:
    """How to build an engine for a TensorRT version and precision."""

    onnx_precision: str  # which ONNX to parse: "fp32" (the folded model.onnx) or "fp16" (onnx_fp16)
    strongly_typed: bool  # create the network with the STRONGLY_TYPED flag (when the enum has it)
    fp16_flag: bool  # weakly typed BuilderFlag.FP16 (TensorRT < 11)
    explicit_batch_flag: bool  # TRT < 10 needs EXPLICIT_BATCH

    def describe(self) -> str:
        if self.strongly_typed:
            return f"strongly typed from the {self.onnx_precision} ONNX"
        return "FP16 builder flag on the fp32 ONNX" if self.fp16_flag else "fp32"


def build_plan(trt_version: str, precision: str, have_fp16_onnx: bool = False) -> BuildPlan:
    """Version branching.

    - 8.5 .. 9.x: weakly typed, EXPLICIT_BATCH, the FP16 flag on the fp32 ONNX.
    - 10.x: strongly typed from the fp16 ONNX when the model directory ships one, else the
      (deprecated, still present) FP16 flag on the fp32 ONNX; fp32 strongly typed.
    - 11 and newer: weak typing and the FP16 flag are gone, so fp16 needs an fp16 ONNX.
    """
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
    ok, why = version_supported(trt_version)
    if not ok:
        raise RuntimeError(why)
    ver = parse_version(trt_version)
    if ver[0] > TESTED_MAJOR_MAX:
        log.warning(
            "TensorRT %s is newer than the newest version this code was written for (%d.x)",
            trt_version,
            TESTED_MAJOR_MAX,
        )
    fp16 = precision == "fp16"
    if ver[0] < 10:
        return BuildPlan("fp32", strongly_typed=False, fp16_flag=fp16, explicit_batch_flag=True)
    if fp16 and have_fp16_onnx:
        return BuildPlan("fp16", strongly_typed=True, fp16_flag=False, explicit_batch_flag=False)
    if fp16 and ver[0] < 11:
        return BuildPlan("fp32", strongly_typed=False, fp16_flag=True, explicit_batch_flag=False)
    if fp16:  # TRT 11 without an fp16 ONNX: the caller must supply one (export.tensorrt_onnx.fp16_onnx_for)
        return BuildPlan("fp16", strongly_typed=True, fp16_flag=False, explicit_batch_flag=False)
    return BuildPlan("fp32", strongly_typed=True, fp16_flag=False, explicit_batch_flag=False)


@dataclass(frozen=True)
class ShapeProfile:
    """Optimisation profile of the ``image`` input: 4-d (min, opt, max) in the input's layout."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def contains(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))

    def covers(self, other: ShapeProfile) -> bool:
        """Whether every shape of ``other`` fits this profile."""
        return self.contains(other.min) and self.contains(other.max)

    def describe(self) -> str:
        def fmt(s: tuple[int, ...]) -> str:
            return "x".join(map(str, s))

        return f"min {fmt(self.min)}, opt {fmt(self.opt)}, max {fmt(self.max)}"

    def nhwc(self) -> ShapeProfile:
        """This NCHW profile for the camera-bytes input (N, H, W, 3)."""
        return ShapeProfile(*(tuple(s[i] for i in (0, 2, 3, 1)) for s in (self.min, self.opt, self.max)))

    def input_bytes(self, itemsize: int = INPUT_ITEMSIZE) -> int:
        """Bytes of one input buffer at the profile's max shape."""
        return int(np.prod(self.max)) * itemsize


# Activation elements per input pixel at HiRQA-S's widest point: the first convolution's output
# (64 channels at half resolution = 16 per pixel) alive beside the max-pool output (4 per pixel).
# Checked against the model's layer shapes by test_memory_estimate_follows_the_model.
PEAK_ACTIVATIONS_PER_PIXEL = 20
WEIGHT_COUNT = 12_490_817  # HiRQA-S parameters


def memory_estimate(profile: ShapeProfile, precision: str, input_itemsize: int = INPUT_ITEMSIZE):
    """Rough bytes one execution context needs at the profile's max shape (NCHW or NHWC):
    ``weights``, ``activations`` (peak), ``input`` buffer (``input_itemsize`` bytes per value: 1 for
    the camera bytes), and their ``total``. An estimate from tensor sizes, not a measurement:
    TensorRT's own figure (logged at load as context memory) adds tactic scratch, and the CUDA
    context itself comes on top."""
    m = profile.max
    n, (h, w) = m[0], ((m[2], m[3]) if m[1] == 3 else (m[1], m[2]))
    item = 2 if precision == "fp16" else 4
    est = {
        "weights": WEIGHT_COUNT * item,
        "activations": PEAK_ACTIVATIONS_PER_PIXEL * n * h * w * item,
        "input": 3 * n * h * w * input_itemsize,
    }
    est["total"] = sum(est.values())
    return est


def _shape(n: int, h: int, w: int, layout: str) -> tuple[int, int, int, int]:
    if layout == "NCHW":
        return (n, 3, h, w)
    if layout == "NHWC":
        return (n, h, w, 3)
    raise ValueError(f"layout must be NCHW or NHWC, got {layout!r}")


def compute_profile(
    policy: InputPolicy | str | None = None,
    max_batch: int = 8,
    opt_batch: int = 1,
    max_hw: tuple[int, int] | None = None,
    opt_hw: tuple[int, int] | None = None,
    layout: str = "NCHW",
) -> ShapeProfile:
    """The profile covering every input the Scorer can produce under ``policy``, in ``layout``
    (the engine's camera-bytes input is ``INPUT_LAYOUT``, NHWC).

    ``crops:KxS`` -> fixed SxS; ``max-side:N`` -> 32..N on both sides (opt: ``opt_hw`` scaled to
    fit N); ``native`` -> 32 .. ``max_hw`` (default 1088x1920; larger frames need a larger
    profile or a max-side policy).
    """
    policy = InputPolicy.parse(policy)
    if max_batch < 1 or not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt_batch ({opt_batch}) <= max_batch ({max_batch})")
    if policy.kind == "crops":
        s = policy.crop_size
        return ShapeProfile(
            _shape(1, s, s, layout), _shape(opt_batch, s, s, layout), _shape(max_batch, s, s, layout)
        )
    if policy.kind == "max-side":
        n = policy.max_side
        hi = (n, n)
    else:
        hi = tuple(max_hw or DEFAULT_MAX_HW)
    if min(hi) < MIN_SIDE:
        raise ValueError(f"max size {hi} is below the minimum side {MIN_SIDE}")
    oh, ow = opt_hw or DEFAULT_OPT_HW
    f = min(1.0, hi[0] / oh, hi[1] / ow)
    opt = (max(MIN_SIDE, min(hi[0], round(oh * f))), max(MIN_SIDE, min(hi[1], round(ow * f))))
    return ShapeProfile(
        _shape(1, MIN_SIDE, MIN_SIDE, layout), _shape(opt_batch, *opt, layout), _shape(max_batch, *hi, layout)
    )


def profile_options_for_cameras(
    camera_sizes: Sequence[tuple[int, int]],
    policy: InputPolicy | str | None,
    n_cameras: int,
    max_batch: int = 0,
) -> dict[str, Any]:
    """Profile options (``max_hw``, ``opt_hw``, ``max_batch``, ``opt_batch``) sized for the node.

    The node scores the newest frame of every camera in one batch, so the largest batch is one
    frame per camera (times K for ``crops:KxS``) unless ``max_batch`` > 0 says otherwise; the
    largest frame is the largest declared camera size (empty = the 1088x1920 default), and the
    first camera's size is the size to optimise for. A small profile keeps a Jetson's memory low.
    """
    policy = InputPolicy.parse(policy)
    if n_cameras < 1:
        raise ValueError(f"need at least one camera, got {n_cameras}")
    if max_batch < 0:
        raise ValueError(f"max_batch must be >= 0 (0 = one per camera), got {max_batch}")
    per_frame = policy.crops if policy.kind == "crops" else 1
    batch = max_batch or n_cameras * per_frame
    opts: dict[str, Any] = {"max_batch": batch, "opt_batch": batch}
    sizes = [(int(h), int(w)) for h, w in camera_sizes]
    for h, w in sizes:
        if min(h, w) < 1:
            raise ValueError(f"camera size {h}x{w} is not a size")
    if sizes:
        # frames smaller than MIN_SIDE are upscaled to it by the preprocessing
        opts["max_hw"] = (max(MIN_SIDE, max(h for h, _ in sizes)), max(MIN_SIDE, max(w for _, w in sizes)))
        opts["opt_hw"] = (max(MIN_SIDE, sizes[0][0]), max(MIN_SIDE, sizes[0][1]))
    return opts


def requested_profile(
    policy: InputPolicy | str | None,
    max_batch: int | None = None,
    opt_batch: int | None = None,
    max_hw: tuple[int, int] | None = None,
    opt_hw: tuple[int, int] | None = None,
    cameras: int | None = None,
    camera_sizes: Sequence[tuple[int, int]] | None = None,
    layout: str = "NCHW",
) -> ShapeProfile:
    """The profile an engine is built for from the backend options: explicit values win, then
    the node's declared ``cameras`` / ``camera_sizes`` (see :func:`profile_options_for_cameras`),
    then the defaults (batch 8, frames up to 1088x1920, optimised for one 480x640 frame)."""
    if cameras:
        derived = profile_options_for_cameras(camera_sizes or [], policy, int(cameras), int(max_batch or 0))
        max_batch = derived["max_batch"]
        opt_batch = opt_batch or derived["opt_batch"]
        max_hw = max_hw or derived.get("max_hw")
        opt_hw = opt_hw or derived.get("opt_hw")
    max_batch = int(max_batch or 8)
    return compute_profile(policy, max_batch, min(int(opt_batch or 1), max_batch), max_hw, opt_hw, layout)


def parse_hw(text: str) -> tuple[int, int]:
    """'720x1280' -> (720, 1280)."""
    try:
        h, w = (int(v) for v in str(text).lower().strip().split("x"))
    except ValueError as exc:
        raise ValueError(f"expected HxW such as 720x1280, got {text!r}") from exc
    if h < 1 or w < 1:
        raise ValueError(f"expected a positive HxW, got {text!r}")
    return h, w


def profile_from_engine(engine, name: str = INPUT_NAME, profile_index: int = 0) -> ShapeProfile:
    """The (min, opt, max) shapes an engine was built with, from ``get_tensor_profile_shape``."""
    shapes = engine.get_tensor_profile_shape(name, profile_index)
    if shapes is None or len(shapes) != 3:
        raise RuntimeError(f"engine has no optimisation profile {profile_index} for input {name!r}")
    lo, opt, hi = (tuple(int(d) for d in s) for s in shapes)
    if not (len(lo) == len(opt) == len(hi) == 4):
        raise RuntimeError(f"engine input {name!r} is not 4-d: profile {lo} / {opt} / {hi}")
    return ShapeProfile(lo, opt, hi)


def check_io(inputs: Sequence[str], outputs: Sequence[str]) -> list[str]:
    """Validate an engine's I/O names; returns the outputs to bind (``score`` first)."""
    extra = [o for o in outputs if o != OUTPUT_NAME and o not in OPTIONAL_OUTPUTS]
    if list(inputs) != [INPUT_NAME] or OUTPUT_NAME not in outputs or extra:
        raise RuntimeError(
            f"engine I/O {list(inputs)} -> {list(outputs)}; expected [{INPUT_NAME!r}] -> "
            f"[{OUTPUT_NAME!r}] (+ optional {list(OPTIONAL_OUTPUTS)}): is it a HiRQA engine, or one built "
            "before the camera-bytes input? (rebuild it with force_engine_update=True)"
        )
    return [OUTPUT_NAME] + [o for o in outputs if o != OUTPUT_NAME]


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
    profile: ShapeProfile,
    plan: BuildPlan | None = None,
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
    if plan is not None:
        fields["plan"] = asdict(plan)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "gpu"


def engine_file_name(
    onnx_sha256: str, trt_version: str, compute_capability: tuple[int, int], precision: str, key: str
) -> str:
    """Readable cache file name, e.g. ``hirqa-1a2b3c4d5e6f-trt10.3.0-sm87-fp16-<key16>.plan``."""
    ver = re.sub(r"[^0-9.]", "", str(trt_version)) or "x"
    sm = f"sm{compute_capability[0]}{compute_capability[1]}"
    return f"hirqa-{onnx_sha256[:12]}-trt{ver}-{sm}-{precision}-{key[:16]}.plan"


def timing_cache_name(trt_version: str, compute_capability: tuple[int, int], gpu_name: str) -> str:
    """Timing-cache file per TensorRT version, SM and GPU model (tactic timings differ between
    GPUs of one SM, e.g. an Orin Nano and an AGX Orin)."""
    ver = re.sub(r"[^0-9.]", "", str(trt_version)) or "x"
    gpu = hashlib.sha256(str(gpu_name).encode()).hexdigest()[:8]
    sm = f"sm{compute_capability[0]}{compute_capability[1]}"
    return f"timing-trt{ver}-{sm}-{_slug(gpu_name)[:32]}-{gpu}.cache"


def default_cache_dir() -> Path:
    """$HIRQA_ENGINE_CACHE, else $XDG_CACHE_HOME/hirqa_ros/engines, else ~/.cache/hirqa_ros/engines."""
    env = os.environ.get("HIRQA_ENGINE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hirqa_ros" / "engines"


def attach_timing_cache(config, path: Path | None):
    """Give the builder config the timing cache stored at ``path`` (or an empty one when the
    file is missing, unreadable or rejected by this TensorRT/GPU). Returns the cache or None."""
    if path is None:
        return None
    data = b""
    try:
        if path.is_file():
            data = path.read_bytes()
    except OSError as exc:
        log.warning("cannot read timing cache %s (%s); starting an empty one", path, exc)
    attempts = [data, b""] if data else [b""]
    for blob in attempts:
        cache = config.create_timing_cache(blob)
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            if blob:
                log.info("using timing cache %s (%d bytes)", path, len(blob))
            return cache
        if blob:
            log.warning(
                "timing cache %s was rejected by this TensorRT/GPU (created elsewhere or corrupt); "
                "starting an empty one",
                path,
            )
    log.warning("TensorRT could not create a timing cache; building without one")
    return None


def save_timing_cache(config, path: Path) -> bool:
    """Write the builder's timing cache; a failure is logged and never loses the built engine."""
    try:
        cache = config.get_timing_cache()
        if cache is None:
            return False
        atomic_write_bytes(path, bytes(cache.serialize()))
        return True
    except Exception as exc:  # any failure here must not discard a finished build
        log.warning("could not save the timing cache to %s (%s); the engine is unaffected", path, exc)
        return False


def build_engine(
    onnx_path: Path,
    plan: BuildPlan,
    profile: ShapeProfile,
    timing_cache: Path | None = None,
    workspace_bytes: int = 1 << 30,
    logger=None,
    trt=None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine (needs TensorRT; ``trt`` is the module)."""
    if trt is None:
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
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise RuntimeError(f"TensorRT {trt.__version__} has no FP16 builder flag; an fp16 ONNX is needed")
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(INPUT_NAME, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)
    cache = attach_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log above)")
    data = bytes(serialized)
    if cache is not None and timing_cache is not None:
        save_timing_cache(config, timing_cache)
    return data


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
            log.info("loaded engine %s", path)
            return engine, False
        log.warning("engine %s could not be deserialized (TensorRT or GPU changed?); rebuilding", path)
    log.warning(announce)
    data = build()
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:  # a read-only engine path must not throw away a finished build
        log.warning("could not write the engine to %s (%s); it is used from memory this time", path, exc)
    engine = deserialize(data)
    if engine is None:
        raise RuntimeError("TensorRT built an engine it cannot deserialize (see the log above)")
    return engine, True


def has_fp16_onnx(artifact) -> bool:
    """Whether the model directory ships an fp16 ONNX (``files.onnx_fp16`` in its card)."""
    from hirqa_ros.export.tensorrt_onnx import FP16_ONNX_KEY

    return artifact.file(FP16_ONNX_KEY) is not None


def cuda_device(torch, device: str | None):
    """``torch.device`` with an index (``cuda`` -> the current device)."""
    dev = torch.device(str(device or "cuda"))
    if dev.type != "cuda":
        raise ValueError(f"TensorRT needs a CUDA device, got {str(device)!r}")
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def enqueue_on_stream(torch, stream, context, tensors: Sequence[Any], device) -> None:
    """Run ``context`` on ``stream`` (not torch's current stream) in the right order.

    The stream first waits for the current stream (which produced the input and allocated the
    buffers), TensorRT enqueues on ``stream``, every buffer is recorded on ``stream`` so the
    caching allocator cannot hand its memory out while TensorRT still uses it, and the current
    stream waits for ``stream`` so whoever reads the outputs next sees them complete.
    """
    current = torch.cuda.current_stream(device)
    stream.wait_stream(current)
    if not context.execute_async_v3(stream.cuda_stream):
        raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
    for t in tensors:
        t.record_stream(stream)
    current.wait_stream(stream)


class TensorRTBackend:
    """Runs a pre-built, cached or freshly built TensorRT engine with torch CUDA tensors as buffers."""

    name = "tensorrt"
    channel_order = "RGB"

    def __init__(
        self,
        artifact,
        device: str | None = None,
        precision: str | None = None,
        input_policy: InputPolicy | str | None = None,
        max_batch: int | None = None,
        opt_batch: int | None = None,
        max_hw: tuple[int, int] | None = None,
        opt_hw: tuple[int, int] | None = None,
        cameras: int | None = None,
        camera_sizes: Sequence[tuple[int, int]] | None = None,
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
        dev = cuda_device(torch, device)
        self._dev = dev
        self.device = str(dev)
        self.precision = precision or "fp16"
        self.channel_order = (
            artifact.input_contract.channels if artifact.input_contract.camera_bytes else "RGB"
        )
        self.plan: BuildPlan | None = None  # known once a build is needed (a pre-built plan has none)
        policy = InputPolicy.parse(input_policy or artifact.input_policy)
        wanted = requested_profile(
            policy, max_batch, opt_batch, max_hw, opt_hw, cameras, camera_sizes, layout=INPUT_LAYOUT
        )
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        # cudaSetDevice is per host thread: every CUDA call below runs with this device current
        with torch.cuda.device(dev):
            props = torch.cuda.get_device_properties(dev)
            cc = (props.major, props.minor)
            self.logger = trt.Logger(trt.Logger.WARNING)
            runtime = trt.Runtime(self.logger)
            build = self._builder(artifact, trt.__version__, wanted, cache, props.name, cc, workspace_gb)
            announce = self._engine_target(
                artifact, engine_path, force_engine_update, wanted, cache, props, cc
            )
            engine, self.built = load_or_build(
                self.engine_path, force_engine_update, runtime.deserialize_cuda_engine, build, announce
            )
            self._bind(engine, wanted)
            self._stream = torch.cuda.Stream(device=dev)
            mem = getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", 0)
            log.info(
                "TensorRT %s engine %s ready on %s (%s): input %s, profile %s, context memory %.0f MiB",
                trt.__version__,
                self.engine_path.name,
                props.name,
                self.device,
                self.input_dtype,
                self.profile.describe(),
                mem / 2**20,
            )
            for _ in range(warmup):
                self.infer_tensor(torch.zeros(self.profile.opt, dtype=self.input_dtype, device=dev))
            torch.cuda.synchronize(dev)

    def _engine_target(self, artifact, engine_path, force_engine_update, wanted, cache, props, cc) -> str:
        """Set ``engine_path`` (and the build plan when the engine is found by its cache key) and
        return the message announcing a build, should one be needed."""
        trt_version = self.trt.__version__
        if engine_path and Path(engine_path).is_file() and not force_engine_update:
            self.engine_path = Path(engine_path)
            return f"REBUILDING TensorRT ENGINE at {self.engine_path} (the file did not load)"
        from hirqa_ros.export.tensorrt_onnx import source_onnx_sha256

        self.plan = build_plan(trt_version, self.precision, has_fp16_onnx(artifact))
        sha = source_onnx_sha256(artifact, self.plan.onnx_precision)
        key = engine_cache_key(sha, trt_version, props.name, cc, self.precision, wanted, self.plan)
        self.engine_path = (
            Path(engine_path) if engine_path
            else cache / engine_file_name(sha, trt_version, cc, self.precision, key)
        )
        est = memory_estimate(wanted, self.precision)["total"]
        return (
            f"BUILDING TensorRT ENGINE ({self.precision}, {self.plan.describe()}, profile "
            f"{wanted.describe()}, roughly {est / 2**20:.0f} MiB per context) on {props.name}. This "
            f"takes minutes (on a Jetson up to ~10 min) and happens once; the engine is written to "
            f"{self.engine_path}"
        )

    def _bind(self, engine, wanted) -> None:
        """Take the engine: its outputs, its own profile (the truth, whatever was asked for: a
        pre-built plan), an execution context and the tensors' dtypes."""
        trt = self.trt
        self.engine = engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.outputs = check_io(inputs, outputs)
        self.profile = profile_from_engine(engine)
        if not self.profile.covers(wanted):
            log.warning(
                "engine %s has profile %s, which does not cover the requested %s: larger inputs "
                "will be refused (rebuild with force_engine_update or use a smaller input policy)",
                self.engine_path.name,
                self.profile.describe(),
                wanted.describe(),
            )
        self.max_batch = self.profile.max[0]
        self.context = engine.create_execution_context()
        self.input_dtype = self._torch_dtype(engine.get_tensor_dtype(INPUT_NAME))
        self.output_dtypes = {n: self._torch_dtype(engine.get_tensor_dtype(n)) for n in self.outputs}

    def _builder(
        self, artifact, trt_version, profile, cache, gpu_name, cc, workspace_gb
    ) -> Callable[[], bytes]:
        """The build step, prepared lazily: a pre-built engine that loads needs no ONNX at all."""

        def build() -> bytes:
            from hirqa_ros.export.tensorrt_onnx import onnx_for_plan

            if self.plan is None:
                self.plan = build_plan(trt_version, self.precision, has_fp16_onnx(artifact))
            onnx_path = onnx_for_plan(artifact, self.plan, cache)
            return build_engine(
                Path(onnx_path),
                self.plan,
                profile,
                Path(cache) / timing_cache_name(trt_version, cc, gpu_name),
                int(workspace_gb * (1 << 30)),
                self.logger,
                self.trt,
            )

        return build

    def _torch_dtype(self, trt_dtype):
        name = str(trt_dtype).rsplit(".", 1)[-1]
        return getattr(self.torch, TRT_DTYPE_TO_TORCH[name])

    def alloc_host(self, shape: tuple[int, ...]) -> np.ndarray:
        """A page-locked host staging buffer (uint8) for async uploads."""
        return self.torch.empty(shape, dtype=self.torch.uint8, pin_memory=True).numpy()

    def run_tensors(self, x) -> dict[str, Any]:
        """Every output by name (``score`` first) for a uint8 (N, H, W, 3) batch; no host sync."""
        torch = self.torch
        shape = tuple(x.shape)
        if not self.profile.contains(shape):
            raise ValueError(
                f"input {'x'.join(map(str, shape))} (NHWC) is outside the engine's profile "
                f"({self.profile.describe()}); use an input policy such as max-side:N, or build the "
                "engine for larger frames (max_hw / camera sizes) and batches"
            )
        with torch.cuda.device(self._dev):
            x = x.to(self._dev, self.input_dtype, non_blocking=True).contiguous()
            self.context.set_input_shape(INPUT_NAME, shape)
            outs = {
                n: torch.empty(
                    tuple(self.context.get_tensor_shape(n)), dtype=self.output_dtypes[n], device=self._dev
                )
                for n in self.outputs
            }
            self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
            for n, t in outs.items():
                self.context.set_tensor_address(n, t.data_ptr())
            enqueue_on_stream(torch, self._stream, self.context, [x, *outs.values()], self._dev)
        return outs

    def infer_tensor(self, x):
        """(score, embedding or None) on the GPU for a uint8 (N, H, W, 3) tensor; no host sync."""
        outs = self.run_tensors(x)
        return outs[OUTPUT_NAME], outs.get(EMBEDDING_OUTPUT)

    def infer(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores, embeddings or None) for a uint8 (N, H, W, 3) batch (ideally from ``alloc_host``)."""
        x = frames.base  # a buffer from alloc_host is a view of its pinned tensor
        if not (isinstance(x, self.torch.Tensor) and tuple(x.shape) == frames.shape):
            x = self.torch.from_numpy(np.ascontiguousarray(frames))
        score, emb = self.infer_tensor(x)
        return (
            score.float().cpu().numpy().reshape(-1),
            None if emb is None else emb.float().cpu().numpy(),
        )


def build_engine_file(artifact, out_path: str | os.PathLike, precision: str = "fp16", **options) -> Path:
    """Build (or refresh) an engine for ``artifact`` at ``out_path``; returns the path."""
    backend = TensorRTBackend(
        artifact, precision=precision, engine_path=out_path, force_engine_update=True, warmup=1, **options
    )
    return backend.engine_path
