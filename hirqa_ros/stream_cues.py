"""Classical per-frame cues of the reference gate (ROS-free): mean luma, dark share, black and white
levels, noise floor, JPEG blockiness and blur of one frame, cheap enough for every frame of every camera
(a few ms at 640x480).

``luma``/``dark``/``black``/``white`` are taken on the 160-px grey copy (``content.thumbnail_luma``), the
noise floor (Immerkaer's mask, ``classical.IMMERKAER``) and ``blockiness`` on the full-resolution luma
(JPEG blocks are 8x8 pixels of the encoded frame, and noise is a pixel-scale signal: shrinking would hide
both).
``blur`` is Crete-Roffet et al.'s no-reference blur effect ("The blur effect", SPIE 2007): how little a
further box blur changes the frame's neighbour differences (0 sharp .. 1 blurred, the worse axis), a
ratio, so it moves less with the amount of content than a sharpness energy does.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hirqa_ros.classical import IMMERKAER
from hirqa_ros.content import thumbnail_luma

CUE_SIDE = 160  # longer side of the grey copy for luma and the dark share
DARK_LEVEL = 40  # 8-bit luma at or below which a pixel counts as dark
BLOCK = 8  # JPEG block size (pixels)
NOISE_TILE = 16  # the noise floor is a low percentile of the noise sigma of tiles of this size ...
NOISE_PERCENTILE = 10  # ... (the flattest tenth of the frame: texture is not noise)
BLUR_BOX = 11  # length of the re-blurring box filter of the blur effect (the paper's h)
BLACK_PERCENTILE, WHITE_PERCENTILE = 2, 98  # the black / white level: these percentiles of the grey copy


@dataclass(frozen=True)
class StreamCue:
    """One frame's cues: ``luma`` (mean, 0..255), ``dark`` (share of pixels <= ``DARK_LEVEL``),
    ``noise`` (the noise floor: the 10th percentile of the Immerkaer sigma of the luma's 16x16 tiles, 8-bit
    units; texture raises a tile's sigma, so the flattest tiles measure the sensor's noise) and
    ``blockiness`` (mean absolute step across 8-px block boundaries over the mean step elsewhere, both
    directions; ~1 without block artefacts), ``blur`` (:func:`blur_effect` of the luma), ``black`` and
    ``white`` (the ``BLACK_PERCENTILE`` th and ``WHITE_PERCENTILE`` th percentiles of the grey copy's luma,
    0..255: veiling glare and haze add light to every pixel, so the black level rises more than the white
    one)."""

    luma: float
    dark: float
    noise: float
    blockiness: float
    blur: float
    black: float
    white: float


def blockiness(g: np.ndarray) -> float:
    """Step across 8-px block boundaries / step inside blocks (columns and rows averaged) of grey ``g``
    (uint8 or float32)."""
    g = np.ascontiguousarray(g)
    steps = (cv2.absdiff(g[:, 1:], g[:, :-1]).mean(axis=0, dtype=np.float64),
             cv2.absdiff(g[1:], g[:-1]).mean(axis=1, dtype=np.float64))
    ratios = []
    for d in steps:
        idx = np.arange(d.size)
        edge = (idx + 1) % BLOCK == 0  # the step between pixel 8k+7 and 8k+8
        if edge.sum() == 0 or (~edge).sum() == 0:
            return 1.0
        inside = float(d[~edge].mean())
        ratios.append(float(d[edge].mean()) / inside if inside > 1e-6 else 1.0)
    return float(np.mean(ratios))


def blur_effect(g: np.ndarray) -> float:
    """Crete-Roffet blur effect of uint8 grey ``g``: per axis, the share of the neighbour differences that a
    ``BLUR_BOX``-long box blur along that axis leaves (sum of min(|d|, |d_blurred|) over sum of |d|); the
    larger of the two axes. uint8 throughout (the blurred copy rounded): within 0.004 of float32 and ten
    times faster (fewer and smaller buffers)."""
    worst = 0.0
    for horizontal in (True, False):
        b = cv2.blur(g, (BLUR_BOX, 1) if horizontal else (1, BLUR_BOX), borderType=cv2.BORDER_REFLECT)
        if horizontal:
            d_f, d_b = cv2.absdiff(g[:, 1:], g[:, :-1]), cv2.absdiff(b[:, 1:], b[:, :-1])
        else:
            d_f, d_b = cv2.absdiff(g[1:], g[:-1]), cv2.absdiff(b[1:], b[:-1])
        s_f = float(cv2.sumElems(d_f)[0])
        worst = max(worst, float(cv2.sumElems(cv2.min(d_f, d_b))[0]) / s_f if s_f > 0 else 1.0)
    return worst


def noise_floor(g: np.ndarray) -> float:
    """10th percentile over the 16x16 tiles of float32 grey ``g`` of Immerkaer's sigma (8-bit units)."""
    h, w = g.shape
    if min(h, w) < 3:
        return 0.0
    resp = np.abs(cv2.filter2D(g, cv2.CV_32F, IMMERKAER, borderType=cv2.BORDER_REFLECT))
    th, tw = max(1, h // NOISE_TILE), max(1, w // NOISE_TILE)
    tiles = cv2.resize(resp[: th * NOISE_TILE, : tw * NOISE_TILE], (tw, th), interpolation=cv2.INTER_AREA) \
        if h >= NOISE_TILE and w >= NOISE_TILE else resp.reshape(1, -1).mean(keepdims=True)
    return float(np.sqrt(np.pi / 2.0) / 6.0 * np.percentile(tiles, NOISE_PERCENTILE))


def stream_cue(rgb: np.ndarray) -> StreamCue:
    """The cues of an HxWx3 uint8 RGB frame."""
    small = thumbnail_luma(rgb, CUE_SIDE)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return StreamCue(float(small.mean()), float(np.count_nonzero(small <= DARK_LEVEL)) / small.size,
                     noise_floor(grey.astype(np.float32)), blockiness(grey), blur_effect(grey),
                     *(float(v) for v in np.percentile(small, (BLACK_PERCENTILE, WHITE_PERCENTILE))))
