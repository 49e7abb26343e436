"""ARNIQA group `noise`: white Gaussian (RGB and YCbCr), coloured impulse, multiplicative (speckle) noise."""
from __future__ import annotations

import math

import torch

from .base import Degradation, rand, randn
from .color import rgb_to_ycbcr, ycbcr_to_rgb


def white(x: torch.Tensor, var: float, g: torch.Generator | None) -> torch.Tensor:
    return (x + randn(g, *x.shape, device=x.device) * math.sqrt(var)).clamp(0, 1)


def white_cc(x: torch.Tensor, var: float, g: torch.Generator | None) -> torch.Tensor:
    ycc = rgb_to_ycbcr(x) + randn(g, *x.shape, device=x.device) * math.sqrt(var)
    return ycbcr_to_rgb(ycc).clamp(0, 1)


def impulse(x: torch.Tensor, density: float, g: torch.Generator | None) -> torch.Tensor:
    # each (channel, y, x) entry is hit with probability `density`; half salt, half pepper (coloured).
    # Thresholding one uniform field makes the hit sets nested across levels for a shared generator state.
    u = rand(g, *x.shape, device=x.device)
    y = torch.where(u < density * 0.5, torch.ones_like(x), x)
    return torch.where((u >= density * 0.5) & (u < density), torch.zeros_like(x), y)


def multiplicative(x: torch.Tensor, var: float, g: torch.Generator | None) -> torch.Tensor:
    return (x + x * randn(g, *x.shape, device=x.device) * math.sqrt(var)).clamp(0, 1)


DEGRADATIONS = [
    Degradation("whitenoise", "noise", (0.001, 0.002, 0.003, 0.005, 0.01),
                "additive i.i.d. Gaussian noise in RGB, clipped", "variance", white),
    Degradation("whitenoiseCC", "noise", (0.0001, 0.0005, 0.001, 0.002, 0.003),
                "Gaussian noise on Y, Cb and Cr, back to RGB, clipped", "variance", white_cc),
    Degradation("impulsenoise", "noise", (0.001, 0.005, 0.01, 0.02, 0.03),
                "salt-and-pepper per channel entry (coloured impulses)", "density", impulse),
    Degradation("multnoise", "noise", (0.001, 0.005, 0.01, 0.02, 0.05),
                "speckle noise x + x*n, n Gaussian", "variance", multiplicative),
]
