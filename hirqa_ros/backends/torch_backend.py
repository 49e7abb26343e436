"""PyTorch backend: CPU (fp32) and CUDA (fp16, channels-last, CUDA-graph replay per repeated shape)."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import torch

log = logging.getLogger(__name__)


class _Graph:
    """One captured CUDA graph with its static input and output."""

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

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.static_in.copy_(x)
        self.graph.replay()
        return self.static_out


class TorchBackend:
    """HiRQA in PyTorch. On CUDA: fp16 (final linear + sigmoid in fp32), channels-last, and a
    CUDA graph captured the second time an input shape is seen and replayed afterwards."""

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
        net = net.eval().float()
        if self.precision == "fp16":
            from hirqa_ros.export import fp16_model

            net = fp16_model(net)
        self.input_dtype = torch.float16 if self.precision == "fp16" else torch.float32
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
            ", channels-last, CUDA graphs" if self.cuda_graphs else "",
        )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cuda_graphs:
            return self.model(x)
        key = tuple(x.shape)
        graph = self._graphs.get(key)
        if graph is None:
            if key not in self._seen:  # first time: eager; capture only shapes that repeat
                self._seen.add(key)
                return self.model(x)
            graph = _Graph(self.model, x)
            self._graphs[key] = graph
            if len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        return graph(x).clone()  # the static output is overwritten by the next replay

    def run_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Scores for a normalised NCHW tensor already on the device (no host sync)."""
        x = x.to(self.device, self.input_dtype, non_blocking=True)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self._forward(x)

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        if self.cuda:
            x = x.pin_memory()
        return self.run_tensor(x).float().cpu().numpy().reshape(-1)
