"""ONNX Runtime backend: CPU by default; CUDA / TensorRT execution providers from onnxruntime-gpu.

Never imports torch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from hirqa_ros.backends import BackendUnavailable
from hirqa_ros.constants import ONNX_INPUT_NAME as INPUT_NAME
from hirqa_ros.constants import ONNX_OUTPUT_NAME as OUTPUT_NAME

SHRINK_ABOVE_PIXELS = 1920 * 1080  # larger calls give their memory back (OnnxRuntimeBackend._run_options)

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


class OnnxRuntimeBackend:
    """Runs the model directory's ``model.onnx`` (fp32) with ONNX Runtime."""

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

        path = Path(onnx_path) if onnx_path else artifact.onnx
        if path is None or not Path(path).is_file():
            raise BackendUnavailable(f"onnxruntime: no ONNX file in {artifact.path}")
        self.precision = precision or "fp32"
        if self.precision != "fp32" and (device or "").split(":")[0] != "tensorrt":
            raise ValueError("onnxruntime runs the fp32 ONNX; fp16 only with device='tensorrt' (TensorRT EP)")
        providers = select_providers(ort.get_available_providers(), device, self.precision, trt_cache_dir)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = int(os.environ["OMP_NUM_THREADS"])
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        used = self.session.get_providers()
        self.device = (
            "cpu" if used[0] == "CPUExecutionProvider" else used[0].replace("ExecutionProvider", "").lower()
        )
        self.providers = used
        self.max_batch = max_batch
        self._shrink = None
        self.onnx_path = Path(path)
        log.info("onnxruntime %s: providers %s, model %s", ort.__version__, used, path)

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: x}, self._run_options(x))
        return np.asarray(out[0], dtype=np.float32).reshape(-1)

    def _run_options(self, x: np.ndarray):
        """Shrink the CPU memory arena after a call above SHRINK_ABOVE_PIXELS: the arena otherwise
        keeps the peak of the largest frame ever seen (about 1 GB after one 4K frame) for the
        life of the process, and a second large call plans a new block beside it."""
        if x.ndim != 4 or x.shape[0] * x.shape[2] * x.shape[3] <= SHRINK_ABOVE_PIXELS:
            return None
        if self._shrink is None:
            import onnxruntime as ort

            self._shrink = ort.RunOptions()
            self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        return self._shrink
