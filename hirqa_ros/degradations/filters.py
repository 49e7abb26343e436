"""Convolution kernels (Gaussian, disk, line/trajectory) and batched per-sample convolution."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_FFT_MIN_KERNEL = 17  # kernels at least this wide are applied by FFT (faster on CPU and GPU)


def gaussian_kernel1d(sigma: float, radius: int | None = None, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian; default support 2*ceil(2*sigma)+1 as in ARNIQA/fspecial."""
    if radius is None:
        radius = math.ceil(2 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every plane of (N,C,H,W) with one (kh,kw) kernel or one per sample (N,kh,kw); replicate pad.

    One grouped conv2d over all N*C planes (much faster on CPU than a batch of single-channel convs).
    """
    n, c, h, w = x.shape
    kh, kw = kernel.shape[-2:]
    xp = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    if kernel.dim() == 2:
        weight = kernel.view(1, 1, kh, kw).expand(n * c, 1, kh, kw)
    else:
        weight = kernel.repeat_interleave(c, dim=0).unsqueeze(1)
    y = F.conv2d(xp.reshape(1, n * c, h + kh - 1, w + kw - 1), weight.to(x.dtype), groups=n * c)
    return y.reshape(n, c, h, w)


def gaussian_blur(x: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with replicate padding; works for any channel count."""
    k = gaussian_kernel1d(sigma, radius, x.device).to(x.dtype)
    if k.numel() == 1:
        return x.clone()
    return _depthwise(_depthwise(x, k.view(1, -1)), k.view(-1, 1))


def disk_kernel(radius: float, device=None, supersample: int = 8) -> torch.Tensor:
    """Pillbox PSF: each tap is the fraction of its pixel inside a circle of ``radius`` px (normalised)."""
    r = max(float(radius), 0.5)
    half = math.ceil(r - 0.5)
    s = supersample
    t = (torch.arange((2 * half + 1) * s, dtype=torch.float32, device=device) + 0.5) / s - half - 0.5
    inside = ((t.view(-1, 1) ** 2 + t.view(1, -1) ** 2) <= r * r).float()
    k = inside.view(2 * half + 1, s, 2 * half + 1, s).mean(dim=(1, 3))
    return k / k.sum()


def splat_paths(points: torch.Tensor, size: int) -> torch.Tensor:
    """Render (N,T,2) sub-pixel (x, y) points centred on 0 into (N,size,size) normalised kernels.

    Bilinear splatting written as a sum of tent functions (no scatter, so bit-reproducible on CUDA too).
    """
    c = (size - 1) / 2.0
    grid = torch.arange(size, device=points.device, dtype=points.dtype) - c
    wx = (1 - (points[..., 0:1] - grid).abs()).clamp_min(0)  # (N,T,size)
    wy = (1 - (points[..., 1:2] - grid).abs()).clamp_min(0)
    k = torch.einsum("nty,ntx->nyx", wy, wx)
    return k / k.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)


def convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve (N,C,H,W) with one (k,k) kernel or one per sample (N,k,k); odd k; replicate padding.

    True convolution (kernel flipped): FFT for kernels >= 17 px wide, grouped conv2d otherwise.
    """
    if kernel.dim() == 2:
        kernel = kernel.unsqueeze(0)
    kernel = kernel.to(x.device, x.dtype)
    ks = kernel.shape[-1]
    if ks % 2 == 0 or kernel.shape[-2] != ks:
        raise ValueError(f"kernel must be square with odd size, got {tuple(kernel.shape)}")
    r = ks // 2
    if r == 0:
        return x * kernel.view(-1, 1, 1, 1)
    if ks >= _FFT_MIN_KERNEL:
        h, w = x.shape[-2:]
        xp = F.pad(x, (r, r, r, r), mode="replicate")
        hp, wp = xp.shape[-2:]
        kf = torch.fft.rfft2(kernel, s=(hp, wp)).unsqueeze(1)
        y = torch.fft.irfft2(torch.fft.rfft2(xp) * kf, s=(hp, wp))
        return y[..., 2 * r: 2 * r + h, 2 * r: 2 * r + w].contiguous()
    return _depthwise(x, kernel.flip(-1, -2).squeeze(0) if kernel.shape[0] == 1 else kernel.flip(-1, -2))
