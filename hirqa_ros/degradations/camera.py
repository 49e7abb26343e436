"""Group `camera`: physically motivated camera faults.

Haze, camera shake, defocus, low light, over-exposure and glare, 5 severity levels each.

All operate in linear light (sRGB gamma removed first, re-applied at the end).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Degradation, rand, randn
from .color import linear_to_srgb, luma, quantize8, srgb_to_linear
from .filters import convolve, disk_kernel, gaussian_blur, splat_paths


def _grid(n: int, h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(h, device=device, dtype=torch.float32).view(1, 1, h, 1).expand(n, 1, h, w)
    xs = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, 1, w).expand(n, 1, h, w)
    return ys, xs


def depth_proxy(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """(N,1,H,W) relative scene depth in [0,1] (1 = far): tilted vertical gradient (top far),
    low-frequency random field, and blurred luminance (bright, flat regions such as sky read as far)."""
    n, _, h, w = x.shape
    ys, xs = _grid(n, h, w, x.device)
    tilt = (rand(g, n, device=x.device) - 0.5).view(n, 1, 1, 1) * 0.6
    vertical = 1.0 - (ys / max(h - 1, 1) + tilt * (xs / max(w - 1, 1) - 0.5))
    field = randn(g, n, 1, 4, 4, device=x.device)
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)
    small = (max(1, round(48 * h / max(h, w))), max(1, round(48 * w / max(h, w))))
    cue = gaussian_blur(F.interpolate(luma(x), size=small, mode="area"), 3.0)
    cue = F.interpolate(cue, size=(h, w), mode="bilinear", align_corners=False)

    def norm(t: torch.Tensor) -> torch.Tensor:
        lo = t.amin(dim=(1, 2, 3), keepdim=True)
        hi = t.amax(dim=(1, 2, 3), keepdim=True)
        return (t - lo) / (hi - lo).clamp_min(1e-6)

    return norm(0.55 * norm(vertical) + 0.2 * norm(field) + 0.25 * norm(cue))


def haze(x: torch.Tensor, beta: float, g: torch.Generator | None) -> torch.Tensor:
    # Koschmieder: I = J t + A (1 - t), t = exp(-beta d); airlight near-white with a slight random tint
    n = x.shape[0]
    # per-sample mix of the depth proxy with uniform fog (close-range scenes have little depth range)
    mix = 0.3 + 0.7 * rand(g, n, 1, 1, 1, device=x.device)
    d = 0.15 + 0.85 * (mix * depth_proxy(x, g) + (1 - mix) * 0.7)
    t = torch.exp(-beta * d)
    level = 0.82 + 0.13 * rand(g, n, 1, 1, 1, device=x.device)
    tint = 1.0 + 0.03 * randn(g, n, 3, 1, 1, device=x.device)
    airlight = srgb_to_linear((level * tint).clamp(0, 1))
    return linear_to_srgb(srgb_to_linear(x) * t + airlight * (1 - t))


def shake_paths(length: float, n: int, g: torch.Generator | None, device, steps: int = 32) -> torch.Tensor:
    """(N, 8*steps, 2) random smooth camera paths centred, extent ``length`` px."""
    acc = randn(g, n, steps, 2, device=device)
    vel = randn(g, n, 1, 2, device=device) * 1.5 + torch.cumsum(acc * 0.6, dim=1)
    path = torch.cumsum(vel, dim=1)
    path = F.interpolate(path.transpose(1, 2), size=steps * 8, mode="linear", align_corners=True)
    path = path.transpose(1, 2)
    lo, hi = path.amin(dim=1, keepdim=True), path.amax(dim=1, keepdim=True)
    path = path - (lo + hi) / 2
    extent = (hi - lo).norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return path * (length / extent)


def shake_kernels(length: float, n: int, g: torch.Generator | None, device, steps: int = 32) -> torch.Tensor:
    """(N,k,k) camera-shake PSFs: a random-walk camera path with inertia, scaled to ``length`` px extent."""
    size = 2 * math.ceil(length / 2 + 1) + 1
    return splat_paths(shake_paths(length, n, g, device, steps), size)


def camera_shake(x: torch.Tensor, length: float, g: torch.Generator | None) -> torch.Tensor:
    k = shake_kernels(length, x.shape[0], g, x.device)
    return linear_to_srgb(convolve(srgb_to_linear(x), k))


def defocus(x: torch.Tensor, radius: float, g: torch.Generator | None) -> torch.Tensor:
    return linear_to_srgb(convolve(srgb_to_linear(x), disk_kernel(radius, x.device)))


FULL_WELL_E = 4000.0  # electrons collected at white for a nominal exposure
READ_NOISE_E = 3.0  # electrons RMS
ADC_LEVELS = 4095  # 12-bit raw


def low_light(x: torch.Tensor, exposure: float, g: torch.Generator | None) -> torch.Tensor:
    # fewer photons (exposure fraction), Poisson shot + Gaussian read noise in electrons, 12-bit ADC,
    # then digital gain that restores only part of the brightness (exposure ** 0.4 is kept)
    electrons = srgb_to_linear(x) * (exposure * FULL_WELL_E)
    # shot noise: Poisson(e) drawn as round(N(e, e)) (torch.poisson is ~14x slower on the CPU), read noise
    shot = torch.round(electrons + electrons.sqrt() * randn(g, *x.shape, device=x.device)).clamp_min(0)
    signal = shot + READ_NOISE_E * randn(g, *x.shape, device=x.device)
    raw = torch.round(signal / FULL_WELL_E * ADC_LEVELS).clamp(0, ADC_LEVELS) / ADC_LEVELS
    gain = exposure**0.4 / exposure
    return quantize8(linear_to_srgb(raw * gain))


def overexposure(x: torch.Tensor, factor: float, g: torch.Generator | None) -> torch.Tensor:
    # exposure multiplied in linear light; the sensor clips each channel at full well (highlights lost)
    return quantize8(linear_to_srgb(srgb_to_linear(x) * factor))


def glare(x: torch.Tensor, strength: float, g: torch.Generator | None, ghosts: int = 5) -> torch.Tensor:
    # a bright source per sample (in view or just outside): veiling glow with a sharp core and a wide
    # halo, star streaks, ghost disks along the line through the image centre and a uniform veil, all
    # added in linear light (lifts the blacks, lowers contrast), then clipped like a sensor
    n, _, h, w = x.shape
    dev = x.device
    diag = math.hypot(h, w)
    ys, xs = _grid(n, h, w, dev)
    u = rand(g, n, 8, device=dev)
    sx = ((u[:, 0] * 1.1 - 0.05) * w).view(n, 1, 1, 1)
    sy = ((u[:, 1] * 0.75 - 0.05) * h).view(n, 1, 1, 1)
    dx, dy = xs - sx, ys - sy
    r = torch.sqrt(dx**2 + dy**2) / diag
    glow = 0.45 * torch.exp(-r / 0.25) + 1.0 / (1.0 + (r / 0.04) ** 2)
    rays = 4 + (u[:, 2] * 4).floor().view(n, 1, 1, 1)
    theta = torch.atan2(dy, dx) + u[:, 3].view(n, 1, 1, 1) * math.pi
    streak = torch.cos(rays * theta / 2).abs() ** 80 * torch.exp(-r / 0.3)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ghost = torch.zeros_like(r)
    gu = rand(g, n, ghosts, 3, device=dev)
    for k in range(ghosts):
        f = (0.4 + 1.4 * gu[:, k, 0]).view(n, 1, 1, 1)  # position along source -> centre -> beyond
        gx, gy = sx + (cx - sx) * f, sy + (cy - sy) * f
        rad = ((0.02 + 0.07 * gu[:, k, 1]) * diag).view(n, 1, 1, 1)
        dist = torch.sqrt((xs - gx) ** 2 + (ys - gy) ** 2)
        ghost = ghost + (0.06 + 0.14 * gu[:, k, 2]).view(n, 1, 1, 1) * torch.sigmoid((rad - dist) / 1.5)
    tint = torch.stack([torch.ones(n, device=dev), 0.88 + 0.1 * u[:, 4], 0.7 + 0.2 * u[:, 5]], dim=1)
    flare = (glow + 0.3 * streak + ghost + 0.08) * tint.view(n, 3, 1, 1)
    return quantize8(linear_to_srgb(srgb_to_linear(x) + strength * flare))


DEGRADATIONS = [
    Degradation("haze", "camera", (0.2, 0.45, 0.8, 1.3, 2.1),
                "atmospheric scattering I = J t + A (1 - t), t = exp(-beta d), depth proxy d", "beta", haze),
    Degradation("camera_shake", "camera", (3, 6, 10, 15, 22),
                "motion blur along a random smooth camera path of this extent, linear light", "extent_px",
                camera_shake),
    Degradation("defocus", "camera", (1, 2, 3.5, 5, 7),
                "pillbox PSF of this radius in linear light", "radius_px", defocus),
    Degradation("low_light", "camera", (0.3, 0.15, 0.07, 0.03, 0.012),
                "exposure fraction; shot + read noise, 12-bit ADC, gain back to exposure^0.4 of brightness",
                "exposure", low_light),
    Degradation("overexposure", "camera", (1.6, 2.2, 3.2, 4.5, 6.5),
                "exposure multiplier in linear light, per-channel clipping", "gain", overexposure),
    Degradation("glare", "camera", (0.15, 0.3, 0.5, 0.8, 1.2),
                "veiling glow + streaks + ghosts + uniform veil added in linear light", "strength", glare),
]
