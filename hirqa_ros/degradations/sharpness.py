"""ARNIQA group `sharpness_contrast`: over-sharpening, signed spline contrast change, contrast compression."""
from __future__ import annotations

import numpy as np
import torch

from .base import Degradation, rand
from .color import lab_to_rgb, rgb_to_lab
from .filters import gaussian_blur


def high_sharpen(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
    # unsharp mask on Lab L: kernel delta + amount * (delta - G), G Gaussian sigma 6 on 13x13
    lab = rgb_to_lab(x)
    lum = lab[:, :1]
    lum = lum + amount * (lum - gaussian_blur(lum, 6.0, radius=6))
    return lab_to_rgb(torch.cat([lum, lab[:, 1:]], dim=1))


def not_a_knot_spline(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Not-a-knot cubic spline (MATLAB `spline`) through >= 4 points: (pieces, 4) coefs a,b,c,d of x - x_i."""
    m = len(xs) - 1
    a = np.zeros((4 * m, 4 * m))
    rhs = np.zeros(4 * m)
    row = 0
    for i in range(m):
        h = xs[i + 1] - xs[i]
        a[row, 4 * i] = 1
        rhs[row] = ys[i]
        row += 1
        a[row, 4 * i: 4 * i + 4] = [1, h, h**2, h**3]
        rhs[row] = ys[i + 1]
        row += 1
        if i < m - 1:  # C1 and C2 continuity at x_{i+1}
            a[row, 4 * i: 4 * i + 4] = [0, 1, 2 * h, 3 * h**2]
            a[row, 4 * i + 5] = -1
            row += 1
            a[row, 4 * i: 4 * i + 4] = [0, 0, 2, 6 * h]
            a[row, 4 * i + 6] = -2
            row += 1
    a[row, 3], a[row, 7] = 1, -1  # not-a-knot at x_1 and x_{m-1}
    row += 1
    a[row, 4 * (m - 2) + 3], a[row, 4 * (m - 1) + 3] = 1, -1
    return np.linalg.solve(a, rhs).reshape(m, 4)


def contrast_curve(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Per-sample spline through (0,0), (0.3, 0.3-c), (0.5,0.5), (0.7, 0.7+c), (1,1), clamped to [0,1].

    c = 0 is the identity, c > 0 raises contrast, c < 0 lowers it. (ARNIQA's curve, with control values
    0.25 - a/4 and 0.75 + a/4, is the same family with c = 0.05 + a/4.)
    """
    xs = np.array([0.0, 0.3, 0.5, 0.7, 1.0])
    coefs = [not_a_knot_spline(xs, np.array([0.0, 0.3 - c, 0.5, 0.7 + c, 1.0])) for c in amount.tolist()]
    c = torch.tensor(np.stack(coefs), dtype=x.dtype, device=x.device)  # (n,4,4)
    knots = torch.tensor(xs[1:-1], dtype=x.dtype, device=x.device)
    piece = torch.bucketize(x.contiguous(), knots)  # (n,3,H,W) in 0..3
    n = x.shape[0]
    cc = c[torch.arange(n, device=x.device).view(n, 1, 1, 1), piece]  # (n,3,H,W,4)
    t = x - torch.tensor(xs[:-1], dtype=x.dtype, device=x.device)[piece]
    return (cc[..., 0] + t * (cc[..., 1] + t * (cc[..., 2] + t * cc[..., 3]))).clamp(0, 1)


def linear_contrast(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
    # severity = |c|, the deviation from the identity curve; the sign (contrast up or down) is per sample
    sign = torch.where(rand(g, x.shape[0], device=x.device) < 0.5, -1.0, 1.0)
    return contrast_curve(x, sign.cpu() * amount)


def contrast_compression(x: torch.Tensor, half_width: float, g: torch.Generator | None) -> torch.Tensor:
    return (0.5 + (x - 0.5) * (2 * half_width)).clamp(0, 1)


DEGRADATIONS = [
    Degradation("highsharpen", "sharpness_contrast", (1, 2, 3, 6, 12),
                "unsharp mask on Lab L (Gaussian sigma 6, 13x13), this amount", "amount", high_sharpen),
    Degradation("lincontrchange", "sharpness_contrast", (0.025, 0.05, 0.075, 0.1, 0.125),
                "spline tone curve through (0.3, 0.3 -+ c), (0.7, 0.7 +- c); sign random per sample",
                "deviation", linear_contrast),
    Degradation("nonlincontrchange", "sharpness_contrast", (0.4, 0.3, 0.2, 0.1, 0.05),
                "linear map of [0,1] onto [0.5-o, 0.5+o] (contrast compression)", "half_width",
                contrast_compression),
]
