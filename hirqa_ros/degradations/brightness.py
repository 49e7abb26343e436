"""ARNIQA group `brightness_change`: brighten/darken tone curves, mean shift (signed, growing magnitude)."""
from __future__ import annotations

import torch

from .base import Degradation, rand
from .color import lab_to_rgb, rgb_to_lab


def tone_curve(x: torch.Tensor, mid: float) -> torch.Tensor:
    """The parabola through (0,0), (0.5, mid), (1,1) (MATLAB 3-point spline), clamped to [0,1]."""
    return (x + (4 * mid - 2) * x * (1 - x)).clamp(0, 1)


def brighten(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
    mid = 0.5 + amount / 2
    lab = rgb_to_lab(x)
    lab_l = tone_curve(lab[:, :1] / 100.0, mid) * 100.0
    j = lab_to_rgb(torch.cat([lab_l, lab[:, 1:]], dim=1))
    return ((2 * tone_curve(x, mid) + j) / 3).clamp(0, 1)


def darken(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
    return tone_curve(x, 0.5 - amount / 2)


def mean_shift(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
    sign = torch.where(rand(g, x.shape[0], device=x.device) < 0.5, -1.0, 1.0).view(-1, 1, 1, 1)
    return (x + sign * amount).clamp(0, 1)


DEGRADATIONS = [
    Degradation("brighten", "brightness_change", (0.1, 0.2, 0.4, 0.7, 1.1),
                "tone curve through (0.5, 0.5 + a/2), 2/3 on RGB + 1/3 on Lab L", "amount", brighten),
    Degradation("darken", "brightness_change", (0.05, 0.1, 0.2, 0.4, 0.8),
                "tone curve through (0.5, 0.5 - a/2) on RGB", "amount", darken),
    Degradation("meanshift", "brightness_change", (0.03, 0.06, 0.09, 0.12, 0.15),
                "constant +-a added to all channels (sign random per sample), clipped", "shift", mean_shift),
]
