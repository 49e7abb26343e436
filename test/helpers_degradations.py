"""Shared helpers for the degradation tests: a natural-looking synthetic test image and simple statistics."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def synthetic_images(n: int = 4, size: int = 96, seed: int = 0) -> torch.Tensor:
    """(n,3,size,size) float32 in [0.05,0.95]: 1/f random-phase gratings, sharp-edged shapes, smooth
    gradients, mixed per channel so that colour, texture, edges and flat regions are all present."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        img = torch.zeros(3, size, size)
        for _ in range(24):  # gratings with 1/f amplitude
            f = 1 + 30 * torch.rand(1, generator=g).item() ** 2
            th = math.pi * torch.rand(1, generator=g).item()
            ph = 2 * math.pi * torch.rand(1, generator=g).item()
            wave = torch.sin(2 * math.pi * f * (xs * math.cos(th) + ys * math.sin(th)) + ph) / f
            img += wave * (0.5 + torch.rand(3, 1, 1, generator=g))
        img = img / img.abs().amax() * 0.25
        for _ in range(6):  # sharp-edged rectangles and disks
            c = torch.rand(3, 1, 1, generator=g) - 0.5
            cx, cy, r = torch.rand(3, generator=g).tolist()
            if torch.rand(1, generator=g).item() < 0.5:
                mask = ((xs - cx).abs() < r * 0.3) & ((ys - cy).abs() < r * 0.2)
            else:
                mask = (xs - cx) ** 2 + (ys - cy) ** 2 < (r * 0.25) ** 2
            img = img + 0.35 * c * mask
        base = torch.rand(3, 1, 1, generator=g) * 0.4 + 0.3
        grad = (torch.rand(3, 1, 1, generator=g) - 0.5) * 0.4 * (ys - 0.5) + 0.15 * (xs - 0.5)
        img = img + base + grad
        out.append(img)
    x = torch.stack(out)
    lo, hi = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo) * 0.9 + 0.05).float()


def luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def gradient_energy(x: torch.Tensor) -> float:
    y = luma(x)
    return float(((y[:, 1:, :] - y[:, :-1, :]) ** 2).mean() + ((y[:, :, 1:] - y[:, :, :-1]) ** 2).mean())


def noise_sigma(x: torch.Tensor) -> float:
    """Immerkaer's fast noise estimate (mean over images and channels)."""
    m = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]).view(1, 1, 3, 3)
    n, c, h, w = x.shape
    r = F.conv2d(x.reshape(n * c, 1, h, w), m)
    return float(math.sqrt(math.pi / 2) * r.abs().mean() / 6)


def mean_abs_diff(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float((x - ref).abs().mean())


def signed_saturation(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Regression slope of the chroma vector (RGB minus its mean) of ``x`` on that of ``ref``."""
    cx = x - x.mean(dim=1, keepdim=True)
    cr = ref - ref.mean(dim=1, keepdim=True)
    return float((cx * cr).sum() / (cr * cr).sum())
