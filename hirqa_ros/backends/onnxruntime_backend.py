"""ONNX Runtime backend: CPU by default; CUDA / TensorRT execution providers from onnxruntime-gpu.

Feeds the camera-bytes ONNX (uint8 NHWC in, normalised by ONNX Runtime's own kernels); an ONNX
exported before that contract (float NCHW ``image``) still runs, normalised on the host, with a
warning that says how to refresh it. Never imports torch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from hirqa_ros.artifacts import EMBEDDING_OUTPUT, FLOAT_INPUT, FRAMES_INPUT, SCORE_OUTPUT
from hirqa_ros.backends import BackendUnavailable
from hirqa_ros.preprocess import normalize

log = logging.getLogger(__name__)


def select_providers(
    available: list[str], device: str | None, precision: str, trt_cache_dir: str | os.PathLike | None = None
) -> list:
    """Execution providers for ``device``: None -> CUDA if present else CPU; "cpu"; "cuda";
    "tensorrt" (TensorRT EP with engine + timing cache, then CUDA, then CPU)."""
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
        cache = str(trt_cache_dir or Path.home() / ".cache" / "hirqa_ros" / "ort_trt")
        os.makedirs(cache, exist_ok=True)
        wanted.append(
            (
                "TensorrtExecutionProvider",
                {
                    "device_id": index,
                    "trt_fp16_enable": precision == "fp16",
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": cache,
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": cache,
                },
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
        wanted.append(cuda)
    wanted.append("CPUExecutionProvider")
    return wanted


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
        max_batch: int = 8,
        onnx_path: str | os.PathLike | None = None,
        trt_cache_dir: str | os.PathLike | None = None,
        **_: object,
    ) -> None:
        import onnxruntime as ort

        self.precision = precision or "fp32"
        if self.precision == "int8":
            from hirqa_ros.quantize import FILE_KEY, INT8_FILE

            if (device or "cpu").split(":")[0] != "cpu":
                raise ValueError("onnxruntime runs the int8 model on the CPU only (device='cpu')")
            device = "cpu"
            default = artifact.file(FILE_KEY)
            if onnx_path is None and (default is None or not default.is_file()):
                raise BackendUnavailable(f"onnxruntime: no {INT8_FILE} in {artifact.path}; make one with "
                                         f"`hirqa export --int8 --model {artifact.path}`")
        elif self.precision != "fp32" and (device or "").split(":")[0] != "tensorrt":
            raise ValueError(
                "onnxruntime runs fp32 or int8 (CPU); fp16 only with device='tensorrt' (TensorRT EP)"
            )
        else:
            default = artifact.onnx
        path = Path(onnx_path) if onnx_path else default
        if path is None or not Path(path).is_file():
            raise BackendUnavailable(f"onnxruntime: no ONNX file in {artifact.path}")
        providers = select_providers(ort.get_available_providers(), device, self.precision, trt_cache_dir)
        opts = session_options(ort, threads)
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        used = self.session.get_providers()
        self.device = (
            "cpu" if used[0] == "CPUExecutionProvider" else used[0].replace("ExecutionProvider", "").lower()
        )
        self.providers = used
        self.max_batch = max_batch
        self.onnx_path = Path(path)
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        known = len(inputs) == 1 and inputs[0].name in (FRAMES_INPUT, FLOAT_INPUT)
        if not known or outputs[:1] != [SCORE_OUTPUT]:
            raise BackendUnavailable(
                f"onnxruntime: {path} has inputs {[i.name for i in inputs]} and outputs {outputs}; expected "
                f"'{FRAMES_INPUT}' (or the older '{FLOAT_INPUT}') -> '{SCORE_OUTPUT}' first"
            )
        self.input_name = inputs[0].name
        self.camera_bytes = self.input_name == FRAMES_INPUT
        self.outputs = [SCORE_OUTPUT] + ([EMBEDDING_OUTPUT] if EMBEDDING_OUTPUT in outputs else [])
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
                path, FLOAT_INPUT, Path(path).parent,
            )
        log.info(
            "onnxruntime %s: providers %s, model %s (%s, input %s), %d intra-op threads",
            ort.__version__, used, path, self.precision, self.input_name, self.threads,
        )

    def network_input(self, frames: np.ndarray) -> np.ndarray:
        """What the session is fed for a uint8 NHWC batch: the batch itself, or for an ONNX that
        predates the camera-bytes input the host-normalised float NCHW batch."""
        return np.ascontiguousarray(frames if self.camera_bytes else normalize(frames, self.norm))

    def run_network(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.session.run(self.outputs, {self.input_name: x})
        scores = np.asarray(out[0], dtype=np.float32).reshape(-1)
        return scores, (np.asarray(out[1], dtype=np.float32) if len(out) > 1 else None)

    def infer(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores (N,), embeddings (N, D) or None) for a uint8 (N, H, W, 3) batch in ``channel_order``."""
        return self.run_network(self.network_input(frames))
