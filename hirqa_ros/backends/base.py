"""The types every backend shares: the ``Backend`` protocol, ``BackendUnavailable`` and a probe's
answer (a module of their own, so backends import them without importing the package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Backend(Protocol):
    name: str
    device: str
    precision: str
    max_batch: int
    channel_order: str  # "RGB" or "BGR": the order of the bytes ``infer`` takes

    def infer(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores (N,) float32, embeddings (N, D) float32 or None) for a C-contiguous uint8
        (N, H, W, 3) batch. Backends that stage through pinned memory also offer
        ``alloc_host(shape) -> np.ndarray`` for the Scorer's reusable staging buffers."""
        ...


class BackendUnavailable(RuntimeError):
    """A backend cannot run here; the message says why."""


@dataclass
class Probe:
    name: str
    ok: bool
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"
