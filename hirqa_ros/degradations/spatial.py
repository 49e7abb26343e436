"""ARNIQA group `spatial_distortion`: jitter, non-eccentric patches, pixelate, quantisation, colour blocks."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Degradation, rand, randn


def jitter(x: torch.Tensor, amount: float, g: torch.Generator | None, iterations: int = 5) -> torch.Tensor:
    # every pixel resampled (bilinear) from a random displacement of std `amount` px, iterated 5 times
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    y = x
    for _ in range(iterations):
        d = randn(g, n, h, w, 2, device=x.device) * amount
        gx = (xs - d[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
        gy = (ys - d[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
        y = F.grid_sample(y, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="border",
                          align_corners=True)
    return y.clamp(0, 1)


def _patch_index(n: int, top: torch.Tensor, left: torch.Tensor, size: int):
    ar = torch.arange(size, device=top.device)
    rows = (top.view(n, 1) + ar).view(n, size, 1)
    cols = (left.view(n, 1) + ar).view(n, 1, size)
    return torch.arange(n, device=top.device).view(n, 1, 1), rows, cols


def non_eccentricity_patch(x: torch.Tensor, count: float, g: torch.Generator | None,
                           size: int = 16, radius: int = 16) -> torch.Tensor:
    # `count` random 16x16 patches each copied to a spot displaced by up to +-8 px
    n, _, h, w = x.shape
    size = min(size, h, w)
    y = x.clone().permute(0, 2, 3, 1)  # N,H,W,C for row/col advanced indexing
    u = rand(g, int(count), n, 4, device=x.device)
    lo_y, hi_y = min(radius, h - size), max(min(radius, h - size), h - size - radius)
    lo_x, hi_x = min(radius, w - size), max(min(radius, w - size), w - size - radius)
    for i in range(int(count)):
        top = (lo_y + u[i, :, 0] * (hi_y - lo_y)).round().long()
        left = (lo_x + u[i, :, 1] * (hi_x - lo_x)).round().long()
        top2 = (top + ((u[i, :, 2] - 0.5) * radius).round().long()).clamp(0, h - size)
        left2 = (left + ((u[i, :, 3] - 0.5) * radius).round().long()).clamp(0, w - size)
        b, r, c = _patch_index(n, top, left, size)
        patch = y[b, r, c]
        b, r, c = _patch_index(n, top2, left2, size)
        y[b, r, c] = patch
    return y.permute(0, 3, 1, 2).contiguous()


def pixelate(x: torch.Tensor, strength: float, g: torch.Generator | None) -> torch.Tensor:
    z = 0.95 - strength**0.6
    h, w = x.shape[-2:]
    lo = F.interpolate(x, size=(max(1, int(h * z)), max(1, int(w * z))), mode="nearest")
    return F.interpolate(lo, size=(h, w), mode="nearest")


def quantization(x: torch.Tensor, levels: float, g: torch.Generator | None) -> torch.Tensor:
    # each channel rounded to `levels` uniformly spaced grey levels including 0 and 1
    q = levels - 1
    return torch.round(x.clamp(0, 1) * q) / q


def color_block(x: torch.Tensor, count: float, g: torch.Generator | None, size: int = 32) -> torch.Tensor:
    # `count` 32x32 blocks of a random uniform colour pasted at random positions
    n, _, h, w = x.shape
    size = min(size, h, w)
    y = x.clone().permute(0, 2, 3, 1)
    u = rand(g, int(count), n, 5, device=x.device)
    for i in range(int(count)):
        top = (u[i, :, 0] * (h - size)).floor().long()
        left = (u[i, :, 1] * (w - size)).floor().long()
        b, r, c = _patch_index(n, top, left, size)
        y[b, r, c] = u[i, :, 2:5].view(n, 1, 1, 3).expand(n, size, size, 3)
    return y.permute(0, 3, 1, 2).contiguous()


DEGRADATIONS = [
    Degradation("jitter", "spatial_distortion", (0.05, 0.1, 0.2, 0.5, 1),
                "per-pixel random displacement (std a px), bilinear, iterated 5 times", "std_px", jitter),
    Degradation("noneccpatch", "spatial_distortion", (20, 40, 60, 80, 100),
                "16x16 patches copied to spots displaced by up to +-8 px", "patches", non_eccentricity_patch),
    Degradation("pixelate", "spatial_distortion", (0.01, 0.05, 0.1, 0.2, 0.5),
                "nearest downscale by 0.95 - s^0.6 and nearest upscale back", "strength", pixelate),
    Degradation("quantization", "spatial_distortion", (20, 16, 13, 10, 7),
                "each channel rounded to L uniform levels", "levels", quantization),
    Degradation("colorblock", "spatial_distortion", (2, 4, 6, 8, 10),
                "32x32 blocks of random uniform colour at random positions", "blocks", color_block),
]
