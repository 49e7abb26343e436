"""torch2trt backend (NVIDIA-AI-IOT/torch2trt, shipped on Jetson images): fp16 TRTModule, cached on disk.

The converted module's state dict (engine bytes included) is saved next to the TensorRT engine
cache and reloaded on the next start. Like any engine it only runs on the same GPU + TensorRT.
torch2trt builds weakly typed networks (``EXPLICIT_BATCH``, ``BuilderFlag.FP16``), which
TensorRT 11 removed: there it is reported unavailable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from hirqa_ros.artifacts import atomic_write_bytes
from hirqa_ros.backends.tensorrt_backend import (
    cuda_device,
    default_cache_dir,
    parse_version,
    requested_profile,
    version_supported,
)
from hirqa_ros.preprocess import InputPolicy

log = logging.getLogger(__name__)


def torch2trt_supported(trt_version: str) -> tuple[bool, str]:
    """(True, "") when torch2trt can build with this TensorRT, else (False, why)."""
    ok, why = version_supported(trt_version)
    if not ok:
        return False, why
    if parse_version(trt_version)[0] >= 11:
        return False, (
            f"torch2trt needs NetworkDefinitionCreationFlag.EXPLICIT_BATCH and BuilderFlag.FP16, which "
            f"TensorRT {trt_version} (11 and newer) removed; use --backend tensorrt"
        )
    return True, ""


def torch2trt_cache_name(onnx_sha256: str, trt_version: str, gpu: str, precision: str, profile) -> str:
    """Cache file name; any change of model, TensorRT, GPU, precision or profile gives a new name."""
    from hirqa_ros.backends.tensorrt_backend import engine_cache_key

    key = engine_cache_key(onnx_sha256, trt_version, gpu, (0, 0), precision, profile)
    return f"hirqa-{onnx_sha256[:12]}-torch2trt-{precision}-{key[:16]}.pth"


def convert(model, profile, precision: str = "fp16", use_onnx: bool = False, device=None):
    """Convert a HiRQA module to a torch2trt ``TRTModule`` with a dynamic-shape profile on ``device``
    (call it with that device current: torch2trt builds on the current CUDA device)."""
    import torch
    from torch2trt import torch2trt

    device = device or torch.device("cuda", torch.cuda.current_device())
    model = model.eval().to(device)
    example = torch.zeros(profile.opt, device=device)
    return torch2trt(
        model,
        [example],
        fp16_mode=precision == "fp16",
        min_shapes=[profile.min],
        opt_shapes=[profile.opt],
        max_shapes=[profile.max],
        use_onnx=use_onnx,
    )


def save_trt_module(module, path: str | os.PathLike) -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_trt_module(path: str | os.PathLike, device=None):
    import torch
    from torch2trt import TRTModule

    module = TRTModule()
    # our own cache file; it holds engine bytes and I/O names, which weights_only cannot unpickle
    module.load_state_dict(torch.load(path, map_location=device or "cuda", weights_only=False))
    return module


class Torch2TRTBackend:
    """Scores with a torch2trt-converted HiRQA (fp16 by default)."""

    name = "torch2trt"
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
        camera_sizes=None,
        cache_dir: str | os.PathLike | None = None,
        module_path: str | os.PathLike | None = None,
        force_engine_update: bool = False,
        warmup: int = 3,
        **_: object,
    ) -> None:
        import tensorrt as trt
        import torch

        ok, why = torch2trt_supported(trt.__version__)
        if not ok:
            raise RuntimeError(why)
        self.torch = torch
        dev = cuda_device(torch, device)
        self._dev = dev
        self.device = str(dev)
        self.precision = precision or "fp16"
        self.profile = requested_profile(
            InputPolicy.parse(input_policy or artifact.input_policy),
            max_batch,
            opt_batch,
            max_hw,
            opt_hw,
            cameras,
            camera_sizes,
            layout="NCHW",  # the converted module takes the normalised float batch
        )
        self.max_batch = self.profile.max[0]
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        # torch2trt builds and runs on the current CUDA device, which is per host thread
        with torch.cuda.device(dev):
            name = torch2trt_cache_name(
                artifact.file_sha256("onnx") or "none",
                trt.__version__,
                torch.cuda.get_device_name(dev),
                self.precision,
                self.profile,
            )
            self.module_path = Path(module_path) if module_path else cache / name
            module = None
            if self.module_path.is_file() and not force_engine_update:
                try:
                    module = load_trt_module(self.module_path, dev)
                except Exception as exc:
                    log.warning(
                        "cached torch2trt module %s failed to load (%s); converting again",
                        self.module_path,
                        exc,
                    )
            if module is None:
                log.warning(
                    "CONVERTING with torch2trt (%s, profile %s) on %s; this takes minutes and happens once; "
                    "cached at %s",
                    self.precision,
                    self.profile.describe(),
                    dev,
                    self.module_path,
                )
                module = convert(artifact.torch_model(), self.profile, self.precision, device=dev)
                save_trt_module(module, self.module_path)
            self.module = module
            self._norm = None
            self._card_norm = artifact.normalisation
            for _ in range(warmup):
                self.run_tensor(torch.zeros(self.profile.opt, device=dev))
            torch.cuda.synchronize(dev)

    def run_tensor(self, x):
        if not self.profile.contains(tuple(x.shape)):
            raise ValueError(
                f"input {tuple(x.shape)} is outside the torch2trt profile ({self.profile.describe()})"
            )
        with self.torch.cuda.device(self._dev), self.torch.inference_mode():
            return self.module(x.to(self._dev, self.torch.float32).contiguous()).reshape(-1)

    def infer(self, frames: np.ndarray) -> tuple[np.ndarray, None]:
        """(scores, None) for a uint8 (N, H, W, 3) batch: normalised on the GPU with torch, then the
        converted float NCHW module (no embedding output)."""
        from hirqa_ros.model import norm_tensors, normalise_frames

        if self._norm is None:
            self._norm = norm_tensors(self.channel_order, self.device, self._card_norm)
        x = self.torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, non_blocking=True)
        with self.torch.inference_mode():
            x = normalise_frames(x, *self._norm).contiguous()
        return self.run_tensor(x).float().cpu().numpy().reshape(-1), None
