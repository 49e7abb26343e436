"""Inference backends behind the Scorer: probing what is usable here, and opening one by name.

Every backend maps a uint8 (N, H, W, 3) camera-bytes batch to float32 scores (N,) and, where
the model has it, the (N, 1024) embedding; normalisation runs on the backend's own kernels.
Probing never imports torch unless it is installed, so the ONNX Runtime path works without torch.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from hirqa_ros.backends.base import Backend, BackendUnavailable, Probe
from hirqa_ros.constants import AUTO_ORDER
from hirqa_ros.constants import BACKEND_CHOICES as CHOICES

log = logging.getLogger(__name__)


def try_import(module: str) -> tuple[Any | None, str]:
    """Import a module; return (module, "") or (None, reason)."""
    try:
        return importlib.import_module(module), ""
    except ImportError as exc:
        return None, "not installed" if getattr(exc, "name", None) in (
            module,
            None,
        ) else f"import failed: {exc}"
    except Exception as exc:  # broken installs (e.g. missing CUDA libraries) raise other errors
        return None, f"import failed: {type(exc).__name__}: {exc}"


def cuda_status() -> tuple[bool, str]:
    """(True, GPU name) when torch sees a CUDA device, else (False, reason)."""
    torch, why = try_import("torch")
    if torch is None:
        return False, f"torch {why}"
    try:
        if not torch.cuda.is_available():
            built = torch.version.cuda
            return False, f"CUDA not available (torch {torch.__version__}" + (
                f", built for CUDA {built}, sees no GPU)" if built else ", a CPU-only build)"
            )
        return True, torch.cuda.get_device_name(0)
    except Exception as exc:
        return False, f"CUDA check failed: {exc}"


def _tensorrt_version_ok(name: str) -> tuple[bool, str]:
    """Whether the installed TensorRT suits backend ``name`` (tensorrt: 8.5+; torch2trt: 8.5 .. 10.x)."""
    trt, why = try_import("tensorrt")
    if trt is None:
        return False, f"tensorrt {why}"
    if name == "torch2trt":
        from hirqa_ros.backends.torch2trt_backend import torch2trt_supported

        return torch2trt_supported(getattr(trt, "__version__", "0"))
    from hirqa_ros.backends.tensorrt_backend import version_supported

    return version_supported(getattr(trt, "__version__", "0"))


def probe(name: str, device: str | None = None) -> Probe:
    """Whether backend ``name`` can run here (with ``device`` when given), and why not."""
    wants_cpu = device is not None and str(device).startswith("cpu")
    if name == "onnxruntime":
        ort, why = try_import("onnxruntime")
        if ort is None:
            return Probe(name, False, f"{why} (pip install 'hirqa_ros[cpu]', or [gpu] for onnxruntime-gpu)")
        from hirqa_ros.backends.onnxruntime_backend import wheel_conflict

        conflict = wheel_conflict()
        if conflict:
            log.warning("onnxruntime: %s", conflict)
        info = f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}"
        return Probe(name, True, info + (f"; WARNING: {conflict}" if conflict else ""))
    if name == "torch":
        torch, why = try_import("torch")
        if torch is None:
            return Probe(name, False, why)
        if wants_cpu:
            return Probe(name, True, "CPU requested")
        ok, info = cuda_status()
        if device is not None and str(device).startswith("cuda") and not ok:
            return Probe(name, False, info)
        return Probe(name, True, f"CUDA device {info}" if ok else f"CPU only ({info})")
    if name in ("tensorrt", "torch2trt"):
        mod, why = try_import(name)
        if mod is None:
            return Probe(name, False, why)
        trt_ok, trt_why = _tensorrt_version_ok(name)
        if not trt_ok:
            return Probe(name, False, trt_why)
        if wants_cpu:
            return Probe(name, False, "needs a CUDA GPU, device=cpu requested")
        ok, info = cuda_status()
        if not ok:
            return Probe(name, False, info)
        return Probe(name, True, f"{name} {getattr(mod, '__version__', '?')} on {info}")
    raise ValueError(f"unknown backend {name!r}; expected one of {CHOICES}")


def open_backend(
    name: str, artifact, device: str | None = None, precision: str | None = None, **options: Any
) -> Backend:
    """Construct backend ``name`` for a model artifact. Raises BackendUnavailable with a reason."""
    p = probe(name, device)
    if not p.ok:
        raise BackendUnavailable(str(p))
    if name == "onnxruntime":
        from hirqa_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(artifact, device=device, precision=precision, **options)
    if name == "torch":
        from hirqa_ros.backends.torch_backend import TorchBackend

        return TorchBackend(artifact, device=device, precision=precision, **options)
    if name == "tensorrt":
        from hirqa_ros.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(artifact, device=device, precision=precision, **options)
    if name == "torch2trt":
        from hirqa_ros.backends.torch2trt_backend import Torch2TRTBackend

        return Torch2TRTBackend(artifact, device=device, precision=precision, **options)
    raise ValueError(f"unknown backend {name!r}; expected one of {CHOICES}")


def onnxruntime_on_cpu(device: str | None) -> bool:
    """Whether ONNX Runtime runs on the CPU for ``device`` (None: unless it has the CUDA provider and
    an NVIDIA GPU is present, as ``onnxruntime_backend.select_providers`` decides)."""
    dev = str(device or "").split(":")[0].lower()
    if dev:
        return dev == "cpu"
    ort, _ = try_import("onnxruntime")
    if ort is None or "CUDAExecutionProvider" not in ort.get_available_providers():
        return True
    from hirqa_ros.backends.onnxruntime_backend import nvidia_gpu_present

    return not nvidia_gpu_present()


def auto_cpu_precision(artifact, device: str | None) -> tuple[str, str]:
    """The precision ``auto`` gives ONNX Runtime, and why: int8 only on the CPU, only when the
    model directory has an int8 model whose card says its accuracy loss is within tolerance
    (``artifacts.int8_status``); fp32 otherwise."""
    if not onnxruntime_on_cpu(device):
        return "fp32", "int8 runs on the CPU only"
    from hirqa_ros.artifacts import int8_status

    ok, why = int8_status(artifact)
    return ("int8" if ok else "fp32"), why


def choose_auto(
    artifact, device: str | None = None, precision: str | None = None, **options: Any
) -> tuple[Backend, list[str]]:
    """Try tensorrt -> torch on CUDA -> onnxruntime (CPU); return the backend and skip reasons."""
    skipped: list[str] = []
    for name in AUTO_ORDER:
        p = probe(name, device)
        if name == "torch" and p.ok and not p.reason.startswith("CUDA device"):
            # torch on the CPU is only a last resort (ONNX Runtime is faster there)
            why = "device=cpu requested" if p.reason == "CPU requested" else cuda_status()[1]
            skipped.append(f"torch: {why} (torch on the CPU is used only without onnxruntime)")
            continue
        if not p.ok:
            skipped.append(str(p))
            continue
        prec = precision
        if name == "onnxruntime" and precision == "fp16" and not str(device or "").startswith("tensorrt"):
            log.info("onnxruntime runs fp32 (fp16 only through its TensorRT provider): using fp32")
            prec = None
        if name == "onnxruntime" and prec is None:
            prec, why = auto_cpu_precision(artifact, device)
            log.info("onnxruntime precision %s: %s", prec, why)
        try:
            return open_backend(name, artifact, device=device, precision=prec, **options), skipped
        except Exception as exc:  # e.g. an engine build failure: fall through to the next one
            log.warning("backend %s failed to start (%s); trying the next one", name, exc)
            skipped.append(f"{name}: failed to start ({exc})")
    # last resort: torch on the CPU when ONNX Runtime is missing (never against an explicit GPU device)
    p = probe("torch", "cpu")
    if p.ok and (device is None or str(device).startswith("cpu")):
        return open_backend("torch", artifact, device="cpu", precision="fp32", **options), skipped
    skipped.append("torch (CPU fallback): " + (p.reason if not p.ok else f"device={device} requested"))
    raise BackendUnavailable("no usable backend: " + "; ".join(skipped))
