"""Group `motion`: blur from a moving camera at the pixel scale of whole camera frames.

`shake`: a random smooth 2-D hand/vibration path (a few px to several % of a 1080p frame's width),
half of the samples with a slight roll about a point near the centre. `platform_motion`: the
directional streak of a moving robot (mostly horizontal pan), with an uneven speed along it. Both in
linear light. Lengths are in pixels, so render them on the full frame (or a crop cut at native
resolution), not on a shrunk one.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Degradation, rand
from .camera import shake_paths
from .color import linear_to_srgb, srgb_to_linear
from .filters import convolve, splat_paths

ROLL_PROB = 0.5  # share of shake samples that also roll
ROLL_MAX = 0.5  # the roll moves a corner by at most this fraction of the translation extent
MAX_ROLL_STEPS = 24  # rotated copies averaged for the roll (about one per px of arc)


def _kernel_size(length: float) -> int:
    return 2 * math.ceil(length / 2 + 1) + 1


def _roll(x: torch.Tensor, angles: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Average of copies of (N,C,H,W) rotated by each angle of (N,K) (radians) about ``centres`` (N,2)
    in normalised [-1,1] coordinates: the blur of a camera rolling during the exposure."""
    n, c, h, w = x.shape
    k = angles.shape[1]
    aspect = w / h
    cos, sin = torch.cos(angles), torch.sin(angles)  # (N,K)
    cx, cy = centres[:, 0:1], centres[:, 1:2]
    # rotation in pixel-proportional coordinates (x scaled by the aspect ratio), about (cx, cy); all K at once
    theta = torch.stack([
        torch.stack([cos, -sin / aspect, cx - cos * cx + sin * cy / aspect], dim=-1),
        torch.stack([sin * aspect, cos, cy - sin * aspect * cx - cos * cy], dim=-1),
    ], dim=-2)  # (N,K,2,3)
    out = torch.zeros_like(x)
    for i in range(k):  # one copy at a time: N*K full frames at once would not fit in memory at 1080p
        grid = F.affine_grid(theta[:, i], [n, c, h, w], align_corners=False)
        out += F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out / k


def shake(x: torch.Tensor, extent: float, g: torch.Generator | None) -> torch.Tensor:
    n, _, h, w = x.shape
    dev = x.device
    path = shake_paths(extent, n, g, dev)
    u = rand(g, n, 4, device=dev)  # roll on/off, roll amount, roll centre x, y
    lin = convolve(srgb_to_linear(x), splat_paths(path, _kernel_size(extent)))
    half_diag = 0.5 * math.hypot(h, w)
    roll = torch.where(u[:, 0] < ROLL_PROB, u[:, 1] * ROLL_MAX * extent / half_diag,
                       torch.zeros_like(u[:, 1]))
    # copies for the largest roll this level can draw (no host sync); on the CPU skip batches without roll
    max_arc = ROLL_MAX * extent
    if max_arc >= 0.5 and (dev.type != "cpu" or bool((roll > 0).any())):
        steps = min(MAX_ROLL_STEPS, max(2, math.ceil(max_arc) + 1))
        frac = torch.linspace(-0.5, 0.5, steps, device=dev)
        centres = (u[:, 2:4] - 0.5) * 0.5  # within the middle half of the frame
        lin = _roll(lin, roll.view(n, 1) * frac.view(1, -1), centres)
    return linear_to_srgb(lin)


def platform_kernels(length: float, n: int, g: torch.Generator | None, device) -> torch.Tensor:
    """(N,k,k) streak PSFs of ``length`` px: mostly near-horizontal (pan, |angle| <= 15 deg for 70 %),
    otherwise any direction; the speed changes along the streak (points denser where it is slow)."""
    u = rand(g, n, 4, device=device)
    pan = (u[:, 1] - 0.5) * math.radians(30)
    angles = torch.where(u[:, 0] < 0.7, pan, u[:, 1] * math.pi)
    gamma = 1.0 + u[:, 2]  # 1 = constant speed, 2 = strongly accelerating
    flip = torch.where(u[:, 3] < 0.5, -1.0, 1.0)
    steps = max(16, int(length * 4) + 1)
    t = torch.linspace(0, 1, steps, device=device).view(1, -1) ** gamma.view(-1, 1)
    t = (t - 0.5) * length * flip.view(-1, 1)
    d = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    pts = t.unsqueeze(-1) * d.view(n, 1, 2)
    pts = pts - (pts.amax(dim=1, keepdim=True) + pts.amin(dim=1, keepdim=True)) / 2
    return splat_paths(pts, _kernel_size(length))


def platform_motion(x: torch.Tensor, length: float, g: torch.Generator | None) -> torch.Tensor:
    k = platform_kernels(length, x.shape[0], g, x.device)
    return linear_to_srgb(convolve(srgb_to_linear(x), k))


DEGRADATIONS = [
    Degradation("shake", "motion", (4, 8, 16, 32, 64),
                "random smooth 2-D camera path of this extent (px, for whole frames), half with a slight "
                "roll, linear light", "extent_px", shake),
    Degradation("platform_motion", "motion", (3, 8, 16, 32, 64),
                "directional streak of a moving platform (mostly horizontal, uneven speed), linear light",
                "length_px", platform_motion),
]
