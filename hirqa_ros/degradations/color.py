"""Colour-space helpers for the distortion library: sRGB gamma, CIE Lab (D65), YCbCr, luma (batched torch)."""
from __future__ import annotations

import torch

_RGB2XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
_XYZ2RGB = torch.linalg.inv(_RGB2XYZ)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_DELTA = 6.0 / 29.0


def _pow(x: torch.Tensor, p: float) -> torch.Tensor:
    """x ** p for x > 0 as exp(p log x): about twice as fast as torch.pow on the CPU."""
    return torch.exp(torch.log(x.clamp_min(1e-12)) * p)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0,1] to linear light."""
    x = x.clamp(0.0, 1.0)
    curve = _pow((x + 0.055) / 1.055, 2.4)
    return torch.where(x <= 0.04045, x / 12.92, curve)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light to sRGB encoding; clamps to [0,1] (sensor/display clipping)."""
    x = x.clamp(0.0, 1.0)
    curve = _pow(x, 1.0 / 2.4) * 1.055 - 0.055
    return torch.where(x <= 0.0031308, x * 12.92, curve)


def _mix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(x.device, x.dtype), x)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) sRGB in [0,1] to CIE Lab (L in [0,100])."""
    xyz = _mix(_RGB2XYZ, srgb_to_linear(x)) / _WHITE.to(x.device, x.dtype).view(1, 3, 1, 1)
    f = torch.where(xyz > _DELTA**3, _pow(xyz, 1.0 / 3.0), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab to sRGB, clamped to [0,1]."""
    fy = (lab[:, 0] + 16.0) / 116.0
    fx = fy + lab[:, 1] / 500.0
    fz = fy - lab[:, 2] / 200.0
    f = torch.stack([fx, fy, fz], dim=1)
    xyz = torch.where(f > _DELTA, f * f * f, 3 * _DELTA**2 * (f - 4.0 / 29.0))
    xyz = xyz * _WHITE.to(lab.device, lab.dtype).view(1, 3, 1, 1)
    return linear_to_srgb(_mix(_XYZ2RGB, xyz))


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """sRGB to YCbCr (BT.601, all channels in [0,1], chroma centred at 0.5)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack([y, (b - y) * 0.564 + 0.5, (r - y) * 0.713 + 0.5], dim=1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    y, cb, cr = x[:, 0], x[:, 1] - 0.5, x[:, 2] - 0.5
    return torch.stack([y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb], dim=1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma, (N,1,H,W)."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def quantize8(x: torch.Tensor) -> torch.Tensor:
    """Round (not truncate) to 8-bit steps and clamp to [0,1]."""
    return (x.clamp(0.0, 1.0) * 255.0).round() / 255.0
