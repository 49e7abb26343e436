"""ARNIQA group `blur`: Gaussian blur, lens (disk) blur, linear motion blur."""
from __future__ import annotations

import math

import torch

from .base import Degradation, rand
from .filters import convolve, disk_kernel, gaussian_blur, splat_paths


def gaussian(x: torch.Tensor, sigma: float, g: torch.Generator | None) -> torch.Tensor:
    return gaussian_blur(x, sigma)


def lens(x: torch.Tensor, radius: float, g: torch.Generator | None) -> torch.Tensor:
    return convolve(x, disk_kernel(radius, x.device))


def line_kernels(length: float, angles: torch.Tensor) -> torch.Tensor:
    """(N,k,k) anti-aliased line kernels of ``length`` px at ``angles`` (radians)."""
    n = angles.numel()
    t = torch.linspace(-0.5, 0.5, max(8, int(length * 4) + 1), device=angles.device) * length
    d = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)  # (n,2)
    pts = t.view(1, -1, 1) * d.view(n, 1, 2)
    size = 2 * math.ceil(length / 2 + 1) + 1
    return splat_paths(pts, size)


def motion(x: torch.Tensor, length: float, g: torch.Generator | None) -> torch.Tensor:
    angles = rand(g, x.shape[0], device=x.device) * math.pi
    return convolve(x, line_kernels(length, angles))


DEGRADATIONS = [
    Degradation("gaublur", "blur", (0.1, 0.5, 1, 2, 5),
                "Gaussian blur, kernel 2*ceil(2 sigma)+1, replicate padding",
                "sigma_px", gaussian),
    Degradation("lensblur", "blur", (1, 2, 4, 6, 8), "pillbox (disk) PSF, exact pixel-area coverage",
                "radius_px", lens),
    Degradation("motionblur", "blur", (1, 2, 4, 6, 10),
                "linear motion blur, angle uniform in [0,180) per sample",
                "length_px", motion),
]
