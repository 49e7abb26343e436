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


def _winner_map(n: int, h: int, w: int, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H*W) index of the last of the P squares (N, P) at ``top``/``left`` over each pixel (-1: none).

    Later squares overwrite earlier ones, as when they are pasted in order, but in one deterministic
    ``scatter_reduce(amax)`` (no Python loop over squares, no undefined write order on a GPU)."""
    p = top.shape[1]
    ar = torch.arange(size, device=top.device)
    rows = top.view(n, p, 1, 1) + ar.view(1, 1, size, 1)
    cols = left.view(n, p, 1, 1) + ar.view(1, 1, 1, size)
    lin = (rows * w + cols).reshape(n, -1)
    ids = torch.arange(p, device=top.device).view(1, p, 1, 1).expand(n, p, size, size).reshape(n, -1)
    win = torch.full((n, h * w), -1, dtype=torch.long, device=top.device)
    return win.scatter_reduce(1, lin, ids, reduce="amax", include_self=True)


def non_eccentricity_patch(x: torch.Tensor, count: float, g: torch.Generator | None,
                           size: int = 16, radius: int = 16) -> torch.Tensor:
    # `count` random 16x16 patches of the input each pasted at a spot displaced by up to +-8 px (later
    # patches on top); vectorised over patches and images
    n, c, h, w = x.shape
    size = min(size, h, w)
    p = int(count)
    u = rand(g, p, n, 4, device=x.device).transpose(0, 1)  # (N, P, 4): same draws as a per-patch loop
    lo_y, hi_y = min(radius, h - size), max(min(radius, h - size), h - size - radius)
    lo_x, hi_x = min(radius, w - size), max(min(radius, w - size), w - size - radius)
    top = (lo_y + u[..., 0] * (hi_y - lo_y)).round().long()
    left = (lo_x + u[..., 1] * (hi_x - lo_x)).round().long()
    top2 = (top + ((u[..., 2] - 0.5) * radius).round().long()).clamp(0, h - size)
    left2 = (left + ((u[..., 3] - 0.5) * radius).round().long()).clamp(0, w - size)
    win = _winner_map(n, h, w, top2, left2, size)  # (N, H*W) patch pasted last at each pixel
    hit = win >= 0
    k = win.clamp_min(0)
    pix = torch.arange(h * w, device=x.device).view(1, -1)
    src_y = pix // w - top2.gather(1, k) + top.gather(1, k)
    src_x = pix % w - left2.gather(1, k) + left.gather(1, k)
    src = torch.where(hit, src_y * w + src_x, pix)
    flat = x.reshape(n, c, h * w)
    return flat.gather(2, src.unsqueeze(1).expand(n, c, h * w)).reshape(n, c, h, w)


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
    # `count` 32x32 blocks of a random uniform colour pasted at random positions (later blocks on top)
    n, c, h, w = x.shape
    size = min(size, h, w)
    p = int(count)
    u = rand(g, p, n, 5, device=x.device).transpose(0, 1)  # (N, P, 5)
    top = (u[..., 0] * (h - size)).floor().long()
    left = (u[..., 1] * (w - size)).floor().long()
    win = _winner_map(n, h, w, top, left, size)
    colours = u[..., 2:5].gather(1, win.clamp_min(0).unsqueeze(-1).expand(n, h * w, 3))  # (N, H*W, 3)
    out = torch.where((win >= 0).unsqueeze(1), colours.transpose(1, 2).to(x.dtype), x.reshape(n, c, h * w))
    return out.reshape(n, c, h, w)


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
