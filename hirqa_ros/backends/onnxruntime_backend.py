"""ONNX Runtime backend: CPU by default; CUDA / TensorRT execution providers from onnxruntime-gpu.

Feeds the camera-bytes ONNX (uint8 NHWC in, normalised by ONNX Runtime's own kernels); an ONNX
exported before that contract (float NCHW ``image``) still runs, normalised on the host, with a
warning that says how to refresh it. Never imports torch.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from hirqa_ros.artifacts import (
    EMBEDDING_OUTPUT,
    FLOAT_INPUT,
    FRAMES_INPUT,
    INT8_FILE,
    INT8_FILE_KEY,
    SCORE_OUTPUT,
)
from hirqa_ros.backends.base import BackendUnavailable
from hirqa_ros.preprocess import normalize

SHRINK_ABOVE_PIXELS = 1920 * 1080  # larger calls give their memory back (OnnxRuntimeBackend._run_options)

log = logging.getLogger(__name__)


# ONNX Runtime versions that added TensorRT provider options (older versions reject the option,
# and the Python API then silently retries without the TensorRT provider)
ORT_TRT_PROFILE_SHAPES_SINCE = (1, 15)  # trt_profile_min/opt/max_shapes: microsoft/onnxruntime#15546
ORT_TRT_TIMING_CACHE_PATH_SINCE = (1, 17)  # trt_timing_cache_path: microsoft/onnxruntime#17865
# device nodes of an NVIDIA GPU: desktop driver, Jetson (JetPack 5), Jetson (JetPack 6)
NVIDIA_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvhost-ctrl-gpu", "/dev/nvgpu")


def ort_version_tuple(version: str) -> tuple[int, int]:
    """'1.16.3' -> (1, 16)."""
    parts = re.findall(r"\d+", str(version))[:2]
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, 0)


def nvidia_gpu_present(nodes: tuple[str, ...] = NVIDIA_DEVICE_NODES) -> bool:
    """Whether this machine has an NVIDIA GPU device node (checked without torch or CUDA)."""
    return any(os.path.exists(n) for n in nodes)


def wheel_conflict() -> str | None:
    """A warning when both the onnxruntime and onnxruntime-gpu wheels are installed: they share
    one ``onnxruntime`` folder, so whichever was installed last wins and may hide the GPU providers."""
    from importlib import metadata

    names = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            names.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    if len(names) < 2:
        return None
    return (
        f"both {' and '.join(names)} are installed and overwrite each other; keep one: "
        "`pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu` for a GPU"
    )


def shapes_option(name: str, shape: tuple[int, ...]) -> str:
    """ONNX Runtime's profile-shape syntax: ``frames:1x32x32x3``."""
    return f"{name}:" + "x".join(str(int(d)) for d in shape)


def trt_provider_options(
    ort_version: str, index: int, precision: str, cache_dir: str, profile=None, input_name: str = FRAMES_INPUT
) -> dict:
    """TensorrtExecutionProvider options supported by ``ort_version``: engine + timing cache, and
    the explicit profile (without it the provider rebuilds its engine for every new input shape)."""
    ver = ort_version_tuple(ort_version)
    opts: dict = {
        "device_id": index,
        "trt_fp16_enable": precision == "fp16",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": cache_dir,
        "trt_timing_cache_enable": True,
    }
    if ver >= ORT_TRT_TIMING_CACHE_PATH_SINCE:
        opts["trt_timing_cache_path"] = cache_dir
    if profile is not None:
        if ver >= ORT_TRT_PROFILE_SHAPES_SINCE:
            opts["trt_profile_min_shapes"] = shapes_option(input_name, profile.min)
            opts["trt_profile_opt_shapes"] = shapes_option(input_name, profile.opt)
            opts["trt_profile_max_shapes"] = shapes_option(input_name, profile.max)
        else:
            log.warning(
                "onnxruntime %s has no trt_profile_*_shapes options: its TensorRT provider rebuilds "
                "engines when input shapes change (1.15 or newer fixes this)",
                ort_version,
            )
    return opts


def ort_trt_cache_dir(trt_cache_dir: str | os.PathLike | None = None) -> Path:
    """Engine/timing cache of the TensorRT provider: ``trt_cache_dir``, else ~/.cache/hirqa_ros/ort_trt."""
    return Path(trt_cache_dir) if trt_cache_dir else Path.home() / ".cache" / "hirqa_ros" / "ort_trt"


def check_baked_normalisation(meta: dict[str, str], norm, path) -> None:
    """Refuse a camera-bytes ONNX whose in-graph normalisation (its ``hirqa.mean``/``hirqa.std``
    metadata) differs from the model card's: the card would silently not apply."""
    try:
        baked = [tuple(float(v) for v in meta[k].split(",")) for k in ("hirqa.mean", "hirqa.std")]
    except (KeyError, ValueError):
        return  # not written by hirqa_ros: nothing to compare
    want = (tuple(norm.mean), tuple(norm.std))
    if any(abs(a - b) > 1e-6 for got, exp in zip(baked, want) for a, b in zip(got, exp)):
        raise BackendUnavailable(
            f"onnxruntime: {path} normalises with mean {baked[0]} std {baked[1]} inside the graph, but the "
            f"model card says mean {want[0]} std {want[1]}; re-export it with "
            f"`hirqa export --model {Path(path).parent} --refresh`"
        )


def select_providers(
    available: list[str],
    device: str | None,
    precision: str,
    trt_cache_dir: str | os.PathLike | None = None,
    ort_version: str = "1.17",
    profile=None,
    gpu_present: bool | None = None,
    input_name: str = FRAMES_INPUT,
) -> list:
    """Execution providers for ``device``: None -> CUDA if installed and a GPU is present, else
    CPU; "cpu"; "cuda[:i]"; "tensorrt[:i]" (TensorRT EP with engine + timing cache and an explicit
    profile, then CUDA, then CPU)."""
    dev = (device or "").split(":")[0].lower()
    index = int(device.split(":")[1]) if device and ":" in device else 0
    cuda = ("CUDAExecutionProvider", {"device_id": index})
    if dev == "cpu":
        return ["CPUExecutionProvider"]
    wanted: list = []
    if dev == "tensorrt":
        if "TensorrtExecutionProvider" not in available:
            raise BackendUnavailable(
                "onnxruntime: TensorrtExecutionProvider not available (install onnxruntime-gpu with TensorRT)"
            )
        cache = str(ort_trt_cache_dir(trt_cache_dir))
        os.makedirs(cache, exist_ok=True)
        wanted.append(
            (
                "TensorrtExecutionProvider",
                trt_provider_options(ort_version, index, precision, cache, profile, input_name),
            )
        )
        wanted.append(cuda)
    elif dev == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise BackendUnavailable(
                "onnxruntime: CUDAExecutionProvider not available (install onnxruntime-gpu)"
            )
        wanted.append(cuda)
    elif "CUDAExecutionProvider" in available:
        if gpu_present if gpu_present is not None else nvidia_gpu_present():
            wanted.append(cuda)
        else:  # a GPU wheel on a machine without a GPU: asking for CUDA only prints errors
            log.info("onnxruntime: CUDAExecutionProvider is installed but no NVIDIA GPU is here; using CPU")
    wanted.append("CPUExecutionProvider")
    return wanted


def provider_name(entry) -> str:
    return entry[0] if isinstance(entry, tuple) else str(entry)


def check_providers(requested: list, used: list[str], device: str | None) -> str:
    """Compare the providers asked for with those the session runs (ONNX Runtime drops a provider
    it cannot create and only logs it). An explicitly requested GPU provider that is missing is
    an error; in auto mode the fallback is logged. Returns the device actually used."""
    first = provider_name(requested[0])
    dev = (device or "").split(":")[0].lower()
    if first not in used:
        msg = (
            f"onnxruntime: asked for {first} but the session runs {used} (ONNX Runtime could not create "
            "it: see its log above; CUDA/cuDNN/TensorRT libraries missing or of the wrong version?)"
        )
        if dev in ("cuda", "tensorrt"):
            raise BackendUnavailable(msg)
        log.warning(msg)
    top = used[0] if used else "CPUExecutionProvider"
    return "cpu" if top == "CPUExecutionProvider" else top.replace("ExecutionProvider", "").lower()


def _trt_ep_profile(artifact, device: str | None, options: dict):
    """The explicit TensorRT-provider profile (as the TensorRT backend's, in the layout of the
    model's input) for device tensorrt."""
    if not (device or "").lower().startswith("tensorrt"):
        return None
    from hirqa_ros.backends.tensorrt_backend import requested_profile

    return requested_profile(
        options.get("input_policy") or artifact.input_policy,
        options.get("max_batch"),
        options.get("opt_batch"),
        options.get("max_hw"),
        options.get("opt_hw"),
        options.get("cameras"),
        options.get("camera_sizes"),
        layout=artifact.input_contract.layout,
    )


def physical_cores() -> int:
    """Physical CPU cores of this machine (Linux: distinct (package, core) pairs of /proc/cpuinfo;
    elsewhere the logical count)."""
    try:
        pairs, phys = set(), "0"
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    pairs.add((phys, value.strip()))
        if pairs:
            return len(pairs)
    except OSError:
        pass
    return os.cpu_count() or 1


def session_options(ort, threads: int | None = None):
    """CPU session options: all graph optimisations, ``threads`` intra-op threads (default: the
    physical cores, or $OMP_NUM_THREADS when set), memory arena on (see docs/scoring.md for what
    was measured)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])
    opts.intra_op_num_threads = int(threads) if threads else physical_cores()
    opts.enable_cpu_mem_arena = True
    opts.log_severity_level = 3
    return opts


def model_file(artifact, device: str | None, precision: str,
               onnx_path: str | os.PathLike | None) -> tuple[Path, str | None]:
    """The ONNX file ONNX Runtime runs for ``precision`` (``onnx_path`` when given, else the model
    directory's ``model.onnx`` or, for int8, ``model.int8.onnx``) and the device (int8: the CPU)."""
    if precision == "int8":
        if (device or "cpu").split(":")[0] != "cpu":
            raise ValueError("onnxruntime runs the int8 model on the CPU only (device='cpu')")
        device = "cpu"
        default = artifact.file(INT8_FILE_KEY)
        if onnx_path is None and (default is None or not default.is_file()):
            raise BackendUnavailable(f"onnxruntime: no {INT8_FILE} in {artifact.path}; make one with "
                                     f"`hirqa export --int8 --model {artifact.path}`")
    elif precision != "fp32" and (device or "").split(":")[0] != "tensorrt":
        raise ValueError(
            "onnxruntime runs fp32 or int8 (CPU); fp16 only with device='tensorrt' (TensorRT EP)"
        )
    else:
        default = artifact.onnx
    path = Path(onnx_path) if onnx_path else default
    if path is None or not Path(path).is_file():
        raise BackendUnavailable(f"onnxruntime: no ONNX file in {artifact.path}")
    return Path(path), device


def session_io(session, path: Path) -> tuple[str, list[str]]:
    """The session's input name and the outputs to fetch (``score``, then ``embedding`` when the
    graph has it); BackendUnavailable when the graph is not a HiRQA export."""
    inputs = session.get_inputs()
    outputs = [o.name for o in session.get_outputs()]
    known = len(inputs) == 1 and inputs[0].name in (FRAMES_INPUT, FLOAT_INPUT)
    if not known or outputs[:1] != [SCORE_OUTPUT]:
        raise BackendUnavailable(
            f"onnxruntime: {path} has inputs {[i.name for i in inputs]} and outputs {outputs}; expected "
            f"'{FRAMES_INPUT}' (or the older '{FLOAT_INPUT}') -> '{SCORE_OUTPUT}' first"
        )
    return inputs[0].name, [SCORE_OUTPUT] + ([EMBEDDING_OUTPUT] if EMBEDDING_OUTPUT in outputs else [])


class OnnxRuntimeBackend:
    """Runs the model directory's ``model.onnx`` (fp32), or with ``precision="int8"`` its
    ``model.int8.onnx`` (CPU only), with ONNX Runtime."""

    name = "onnxruntime"

    def __init__(
        self,
        artifact,
        device: str | None = None,
        precision: str | None = None,
        threads: int | None = None,
        max_batch: int | None = None,
        onnx_path: str | os.PathLike | None = None,
        trt_cache_dir: str | os.PathLike | None = None,
        **options: object,
    ) -> None:
        import onnxruntime as ort

        self.precision = precision or "fp32"
        path, device = model_file(artifact, device, self.precision, onnx_path)
        providers = select_providers(
            ort.get_available_providers(),
            device,
            self.precision,
            trt_cache_dir,
            ort.__version__,
            _trt_ep_profile(artifact, device, {**options, "max_batch": max_batch}),
            input_name=artifact.input_contract.name,
        )
        if provider_name(providers[0]) == "TensorrtExecutionProvider":
            from hirqa_ros.export.tensorrt_onnx import folded_fp32_onnx

            # TensorRT gets fp32 initializers, not fp16 ones behind Cast nodes
            path = folded_fp32_onnx(path, ort_trt_cache_dir(trt_cache_dir))
        opts = session_options(ort, threads)
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        used = self.session.get_providers()
        self.device = check_providers(providers, used, device)
        if self.precision == "fp16" and self.device != "tensorrt":
            self.precision = "fp32"  # only the TensorRT provider runs fp16
        self.providers = used
        self.max_batch = max_batch or 8
        self._shrink = None
        self.onnx_path = Path(path)
        self.input_name, self.outputs = session_io(self.session, path)
        self.camera_bytes = self.input_name == FRAMES_INPUT
        meta = self.session.get_modelmeta().custom_metadata_map
        self.channel_order = "BGR" if self.camera_bytes and "BGR" in meta.get("hirqa.input", "") else "RGB"
        self.norm = artifact.normalisation
        if self.camera_bytes:
            check_baked_normalisation(meta, self.norm, path)
        if not self.camera_bytes and onnx_path is None:
            log.warning(
                "%s predates the camera-bytes input (it takes float NCHW '%s'): frames are normalised on the "
                "host (slower) and no embedding is returned. Refresh it from its weights with "
                "`hirqa export --model %s --refresh`",
                path,
                FLOAT_INPUT,
                Path(path).parent,
            )
        log.info(
            "onnxruntime %s: running on %s (%s), providers %s, model %s (input %s), %d intra-op threads",
            ort.__version__,
            self.device,
            self.precision,
            used,
            path,
            self.input_name,
            self.threads,
        )

    def network_input(self, frames: np.ndarray) -> np.ndarray:
        """What the session is fed for a uint8 NHWC batch: the batch itself, or for an ONNX that
        predates the camera-bytes input the host-normalised float NCHW batch."""
        return np.ascontiguousarray(frames if self.camera_bytes else normalize(frames, self.norm))

    def run_network(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.session.run(self.outputs, {self.input_name: x}, self._run_options(x))
        scores = np.asarray(out[0], dtype=np.float32).reshape(-1)
        return scores, (np.asarray(out[1], dtype=np.float32) if len(out) > 1 else None)

    def infer(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores (N,), embeddings (N, D) or None) for a uint8 (N, H, W, 3) batch in ``channel_order``."""
        return self.run_network(self.network_input(frames))

    def _run_options(self, x: np.ndarray):
        """Shrink the CPU memory arena after a call above SHRINK_ABOVE_PIXELS: the arena otherwise
        keeps the peak of the largest frame ever seen (about 1 GB after one 4K frame) for the
        life of the process, and a second large call plans a new block beside it."""
        if x.size // 3 <= SHRINK_ABOVE_PIXELS:  # N x H x W x 3 or N x 3 x H x W
            return None
        if self._shrink is None:
            import onnxruntime as ort

            self._shrink = ort.RunOptions()
            self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        return self._shrink
