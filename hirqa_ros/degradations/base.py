"""The `Degradation` record and the random-number helpers shared by every distortion type."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# op(x, value, generator) -> tensor: x (n,3,H,W) float in [0,1]; value = one level's parameter
Op = Callable[[torch.Tensor, float, "torch.Generator | None"], torch.Tensor]


@dataclass(frozen=True)
class Degradation:
    """One distortion type: ``levels`` holds the parameter value of severity levels 1..5."""

    name: str
    group: str
    levels: tuple[float, float, float, float, float]
    description: str
    parameter: str
    op: Op

    def value(self, level: int) -> float:
        """Parameter value of severity ``level`` (1..5)."""
        return self.levels[level - 1]


def rand(g: torch.Generator | None, *shape: int, device: torch.device) -> torch.Tensor:
    """Uniform [0,1) float32 drawn from ``g`` (already on ``device``, see `device_generator`)."""
    return torch.rand(shape, generator=g, device=device)


def randn(g: torch.Generator | None, *shape: int, device: torch.device) -> torch.Tensor:
    """Standard normal float32 drawn from ``g``."""
    return torch.randn(shape, generator=g, device=device)


def device_generator(g: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """A generator usable on ``device``: ``g`` itself, or one seeded from ``g`` if the devices differ."""
    if g is None or g.device.type == device.type:
        return g
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())
    out = torch.Generator(device=device)
    out.manual_seed(seed)
    return out
