"""ARNIQA group `color_distortion`: colour diffusion, chromatic fringes, desaturation, over-saturation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Degradation, rand
from .color import lab_to_rgb, luma, quantize8, rgb_to_lab
from .filters import gaussian_blur


def diffusion(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
    # as ARNIQA/KADIS: Lab a/b blurred with sigma = 1.5*amount + 2, then scaled by `amount`
    lab = rgb_to_lab(x)
    ab = gaussian_blur(lab[:, 1:3], 1.5 * amount + 2) * amount
    return quantize8(lab_to_rgb(torch.cat([lab[:, :1], ab], dim=1)))


def _edge_weight(x: torch.Tensor) -> torch.Tensor:
    """Smoothed edge-magnitude map in [0,1], clipped at its 1st/99th percentile per image, (N,1,H,W)."""
    gray = luma(x)
    gx = F.pad(gray, (1, 1, 0, 0), mode="replicate")
    gy = F.pad(gray, (0, 0, 1, 1), mode="replicate")
    gx = (gx[..., 2:] - gx[..., :-2]) * 0.5
    gy = (gy[..., 2:, :] - gy[..., :-2, :]) * 0.5
    e = gaussian_blur(torch.sqrt(gx**2 + gy**2), 4.0)
    flat = e.flatten(1)
    q = torch.quantile(flat, torch.tensor([0.01, 0.99], device=x.device, dtype=x.dtype), dim=1)  # (2,N)
    lo, hi = q[0].view(-1, 1, 1, 1), q[1].view(-1, 1, 1, 1)
    return ((e - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)


def shift_channel(c: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Translate (N,H,W) planes by integer per-sample (dx, dy) px with edge replication."""
    n, h, w = c.shape
    ys = (torch.arange(h, device=c.device).view(1, h, 1) - dy.view(n, 1, 1)).clamp(0, h - 1)
    xs = (torch.arange(w, device=c.device).view(1, 1, w) - dx.view(n, 1, 1)).clamp(0, w - 1)
    idx = (ys * w + xs).reshape(n, -1)
    return torch.gather(c.reshape(n, -1), 1, idx).view(n, h, w)


def shift(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
    # green displaced by a vector of length ~amount (random non-negative direction), blended in at edges
    n = x.shape[0]
    a = rand(g, n, 2, device=x.device) + 1e-6
    d = torch.round(a / a.norm(dim=1, keepdim=True) * amount).long()
    e = _edge_weight(x)[:, 0]
    green = shift_channel(x[:, 1], d[:, 0], d[:, 1])
    out = x.clone()
    out[:, 1] = green * e + x[:, 1] * (1 - e)
    return out


def saturation_hsv(x: torch.Tensor, factor: float, g: torch.Generator | None) -> torch.Tensor:
    # scaling HSV saturation by k at fixed hue and value is exactly c' = V - k (V - c), V = max channel
    v = x.amax(dim=1, keepdim=True)
    return (v - factor * (v - x)).clamp(0, 1)


def saturation_lab(x: torch.Tensor, factor: float, g: torch.Generator | None) -> torch.Tensor:
    lab = rgb_to_lab(x)
    return quantize8(lab_to_rgb(torch.cat([lab[:, :1], lab[:, 1:3] * factor], dim=1)))


DEGRADATIONS = [
    Degradation("colordiff", "color_distortion", (1, 3, 6, 8, 12),
                "Lab a/b blurred (sigma = 1.5a + 2) and scaled by a", "amount", diffusion),
    Degradation("colorshift", "color_distortion", (1, 3, 6, 8, 12),
                "green channel shifted by ~a px, blended in at edges (chromatic fringes)", "shift_px", shift),
    Degradation("colorsat1", "color_distortion", (0.4, 0.2, 0.1, 0, -0.4),
                "HSV saturation multiplied by k (grey at 0, inverted hue at < 0)", "factor", saturation_hsv),
    Degradation("colorsat2", "color_distortion", (1, 2, 3, 6, 9),
                "Lab a/b multiplied by k (over-saturation)", "factor", saturation_lab),
]
