"""PyTorch backend: CPU (fp32) and CUDA (fp16, channels-last, CUDA-graph replay per repeated shape).

Input is the uint8 NHWC camera-bytes batch; normalisation runs in torch (on the GPU for CUDA) as
part of ``model.DeployedHiRQA`` and, on CUDA, inside the captured graph. Host batches come from
reusable pinned buffers (``alloc_host``) and are uploaded with ``non_blocking``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import torch

from hirqa_ros.model import DeployedHiRQA
from hirqa_ros.trunks import trunk_normalisation

log = logging.getLogger(__name__)


class _Graph:
    """One captured CUDA graph (normalisation + network) with its static device input and outputs."""

    def __init__(self, model, example: torch.Tensor, warmup: int = 3) -> None:
        self.static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup):
                model(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.static_out = model(self.static_in)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.static_in.copy_(x, non_blocking=True)  # host -> device straight into the graph's input
        self.graph.replay()
        return self.static_out


class TorchBackend:
    """HiRQA in PyTorch. On CUDA: fp16 (normalisation, final linear + sigmoid in fp32),
    channels-last, and a CUDA graph captured the second time an input shape is seen and replayed
    afterwards."""

    name = "torch"

    def __init__(
        self,
        artifact=None,
        device: str | None = None,
        precision: str | None = None,
        cuda_graphs: bool = True,
        max_graphs: int = 8,
        max_batch: int = 8,
        model=None,
        channel_order: str = "RGB",
        **_: object,
    ) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = str(device)
        self.cuda = self.device.startswith("cuda")
        self.precision = precision or ("fp16" if self.cuda else "fp32")
        if self.precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be fp32 or fp16, got {self.precision!r}")
        if self.precision == "fp16" and not self.cuda:
            raise ValueError("torch fp16 needs CUDA; use precision fp32 on the CPU")
        net = model if model is not None else artifact.torch_model()
        norm = artifact.normalisation if artifact is not None else trunk_normalisation(net.variant)
        net = DeployedHiRQA(net, channel_order=channel_order, precision=self.precision, norm=norm).eval()
        self.channel_order = net.channel_order
        if self.cuda:
            net = net.to(self.device, memory_format=torch.channels_last)
        self.model = net
        self.max_batch = max_batch
        self.cuda_graphs = cuda_graphs and self.cuda
        self.max_graphs = max_graphs
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self._seen: set[tuple] = set()
        log.info(
            "torch %s on %s, %s%s",
            torch.__version__,
            self.device,
            self.precision,
            ", channels-last, CUDA graphs (normalisation included)" if self.cuda_graphs else "",
        )

    def alloc_host(self, shape: tuple[int, ...]) -> np.ndarray:
        """A host staging buffer for uint8 batches: page-locked on CUDA (async uploads)."""
        if not self.cuda:
            return np.empty(shape, np.uint8)
        return torch.empty(shape, dtype=torch.uint8, pin_memory=True).numpy()  # .base: the pinned tensor

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: uint8 NHWC on the host (pinned or not) or on the device."""
        if not self.cuda_graphs:
            return self.model(x.to(self.device, non_blocking=True))
        key = tuple(x.shape)
        graph = self._graphs.get(key)
        if graph is None:
            x = x.to(self.device, non_blocking=True)
            if key not in self._seen:  # first time: eager; capture only shapes that repeat
                self._seen.add(key)
                return self.model(x)
            graph = _Graph(self.model, x)
            self._graphs[key] = graph
            if len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        score, emb = graph(x)
        return score.clone(), emb.clone()  # the static outputs are overwritten by the next replay

    def infer_tensor(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, embeddings) on the device for a uint8 (N, H, W, 3) tensor; no host sync."""
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[3] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        with torch.inference_mode():
            return self._forward(frames)

    def infer(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores (N,), embeddings (N, 1024)) for a uint8 (N, H, W, 3) batch (best from ``alloc_host``)."""
        x = frames.base  # a buffer from alloc_host is a view of its pinned tensor: use that tensor
        if not (isinstance(x, torch.Tensor) and tuple(x.shape) == frames.shape
                and x.data_ptr() == frames.ctypes.data):
            x = torch.from_numpy(np.ascontiguousarray(frames))
        score, emb = self.infer_tensor(x)
        return score.float().cpu().numpy().reshape(-1), emb.float().cpu().numpy()
