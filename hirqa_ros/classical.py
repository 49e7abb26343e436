"""Classical frame-rejection cues (numpy + OpenCV), each a ``f(rgb uint8) -> float``, higher = better.

Every cue works on a copy shrunk (area interpolation) so its longer side is at most
``ANALYSIS_SIDE`` px, so numbers for camera frames do not depend on the sensor resolution.
Smaller images are analysed as they are: enlarging would invent smoothness and hide noise.

* ``laplacian_var``: variance of the 3x3 4-neighbour Laplacian of luma (Pech-Pacheco 2000); sharpness.
* ``tenengrad``: mean squared Sobel gradient magnitude of luma (Tenenbaum / Pertuz 2013); sharpness.
* ``exposure``: ``1 - 2|mean luma - 0.5| - clipped - crushed`` with luma in [0, 1], clipped =
  share of pixels with luma >= 250/255, crushed = share <= 5/255; 1 = mid-grey mean, nothing
  clipped; range [-1, 1].
* ``dark_channel``: minus the mean dark channel (He et al. 2009; 15x15 min filter of the per-pixel
  RGB minimum) of the frame divided by its atmospheric light (mean colour of the 0.1 % pixels with
  the brightest dark channel); haze raises the dark channel, so the cue falls; range [-1, 0].
* ``noise``: minus Immerkaer's (1996) noise sigma of luma in 8-bit units (|mask response|
  averaged, mask [[1,-2,1],[-2,4,-2],[1,-2,1]]).

Luma is BT.601 (0.299 R + 0.587 G + 0.114 B). Each cue has known blind spots (docs/evaluation.md).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

ANALYSIS_SIDE = 512
DARK_CHANNEL_PATCH = 15
CLIP_HIGH = 250.0
CLIP_LOW = 5.0

IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _check(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {a.shape} dtype {a.dtype}")
    if min(a.shape[:2]) < 3:
        raise ValueError(f"image too small for the classical cues: {a.shape[:2]}")
    return a


def resize_for_analysis(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Shrink so the longer side is at most ``side`` px (aspect kept); float32 RGB in [0, 255]."""
    a = _check(rgb)
    h, w = a.shape[:2]
    scale = side / max(h, w)
    if scale < 1.0:
        size = (max(3, round(w * scale)), max(3, round(h * scale)))
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    return a.astype(np.float32)


def _luma(rgb_f: np.ndarray) -> np.ndarray:
    return rgb_f[..., 0] * 0.299 + rgb_f[..., 1] * 0.587 + rgb_f[..., 2] * 0.114


def grey(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Luma in [0, 255] (float32) of the analysis-size copy."""
    return _luma(resize_for_analysis(rgb, side))


def laplacian_var_grey(g: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of a grey image (uint8 or float32), border rows excluded."""
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(cv2.meanStdDev(lap[1:-1, 1:-1])[1][0, 0] ** 2)


def laplacian_var(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> float:
    """Variance of the Laplacian (sharpness, 8-bit units; the common blur threshold is ~100)."""
    return laplacian_var_grey(grey(rgb, side))


def tenengrad(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> float:
    """Mean of Gx^2 + Gy^2 with 3x3 Sobel (sharpness)."""
    g = grey(rgb, side)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return float((gx * gx + gy * gy)[1:-1, 1:-1].mean())


def exposure(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> float:
    """``1 - 2|mean luma - 0.5| - clipped - crushed`` (1 = well exposed, -1 = fully clipped or black)."""
    y = grey(rgb, side)
    mean = float(y.mean()) / 255.0
    clipped = float((y >= CLIP_HIGH).mean())
    crushed = float((y <= CLIP_LOW).mean())
    return 1.0 - 2.0 * abs(mean - 0.5) - clipped - crushed


def dark_channel_map(rgb_f: np.ndarray, patch: int = DARK_CHANNEL_PATCH) -> np.ndarray:
    """Dark channel of float RGB: min over channels, then a ``patch`` x ``patch`` min filter (erosion)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(rgb_f.min(axis=2), kernel, borderType=cv2.BORDER_REFLECT)


def dark_channel(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> float:
    """Minus the mean dark channel of the frame normalised by its atmospheric light (haze cue)."""
    img = resize_for_analysis(rgb, side) / 255.0
    dc = dark_channel_map(img)
    n = max(1, dc.size // 1000)  # brightest 0.1 % of the dark channel
    idx = np.argpartition(dc.reshape(-1), -n)[-n:]
    atmos = img.reshape(-1, 3)[idx].mean(axis=0)
    atmos = np.maximum(atmos, 0.05)  # a black frame has no meaningful airlight
    norm = np.clip(img / atmos.reshape(1, 1, 3).astype(np.float32), 0.0, 1.0)
    return -float(dark_channel_map(norm).mean())


def noise(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> float:
    """Minus Immerkaer's fast noise sigma estimate of luma, 8-bit units (0 = noise free)."""
    g = grey(rgb, side)
    h, w = g.shape
    resp = cv2.filter2D(g, cv2.CV_32F, IMMERKAER, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    sigma = np.sqrt(np.pi / 2.0) * float(np.abs(resp, dtype=np.float64).sum()) / (6.0 * (w - 2) * (h - 2))
    return -sigma


CUES: dict[str, Callable[[np.ndarray], float]] = {
    "laplacian_var": laplacian_var,
    "tenengrad": tenengrad,
    "exposure": exposure,
    "dark_channel": dark_channel,
    "noise": noise,
}


def cue_score_fn(name: str) -> Callable[[Sequence[np.ndarray]], np.ndarray]:
    """Batch form of a cue: ``score_fn(list of rgb uint8) -> float64 array``."""
    try:
        fn = CUES[name]
    except KeyError:
        raise KeyError(f"unknown classical cue {name!r}; known: {', '.join(CUES)}") from None

    def score_fn(frames: Sequence[np.ndarray]) -> np.ndarray:
        return np.array([fn(f) for f in frames], dtype=np.float64)

    score_fn.__name__ = name
    return score_fn
