"""Bounded work per frame: pixel limits, image sizes read from headers before decoding, and
native-resolution tiles for frames above ``max_pixels``.

Frames above ``max_pixels`` are split into a grid of equal native-resolution tiles (each at most
``max_pixels``, evenly spread, overlapping slightly) and scored as the mean of the tiles, never
downscaled: downscaling hides blur, noise and compression from the model. Images whose declared
size is above ``max_decode_pixels`` are refused before any pixel buffer is allocated.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

import numpy as np

from hirqa_ros.constants import DEFAULT_MAX_DECODE_PIXELS, DEFAULT_MAX_PIXELS

__all__ = ["DEFAULT_MAX_DECODE_PIXELS", "DEFAULT_MAX_PIXELS", "TooLarge", "check_size", "declared_size",
           "score_bounded", "tile_grid", "tiles"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless...): not DHT C4, JPG C8, DAC CC
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class TooLarge(ValueError):
    """An image whose (declared) size is above the decoding limit."""


def declared_size(data: bytes | bytearray | memoryview | np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding; None for other formats or
    a header that cannot be read (the decoder then reports it)."""
    head = bytes(memoryview(data)[:16]) if not isinstance(data, np.ndarray) else data[:16].tobytes()
    if head.startswith(_PNG_MAGIC):
        buf = bytes(memoryview(data)[:24]) if not isinstance(data, np.ndarray) else data[:24].tobytes()
        if len(buf) >= 24 and buf[12:16] == b"IHDR":
            w, h = struct.unpack(">II", buf[16:24])
            return int(w), int(h)
        return None
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8))
    return None


def _jpeg_size(buf: np.ndarray) -> tuple[int, int] | None:
    i, n = 2, buf.size
    while i + 4 <= n:
        if buf[i] != 0xFF:
            return None
        marker = int(buf[i + 1])
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        length = int(buf[i + 2]) << 8 | int(buf[i + 3])
        if marker in _SOF and i + 9 <= n:
            h = int(buf[i + 5]) << 8 | int(buf[i + 6])
            w = int(buf[i + 7]) << 8 | int(buf[i + 8])
            return w, h
        if marker == 0xDA or length < 2:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def check_size(width: int, height: int, max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS,
               what: str = "image") -> None:
    """Raise :class:`TooLarge` when ``width x height`` is above ``max_decode_pixels`` (0: no limit)."""
    if max_decode_pixels and width * height > max_decode_pixels:
        raise TooLarge(
            f"{what}: {width}x{height} = {width * height / 1e6:.1f} MP is above the decoding limit of "
            f"{max_decode_pixels / 1e6:.1f} MP; refused before decoding"
        )


def tile_grid(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """(rows, cols) of the smallest grid whose equal tiles hold at most ``max_pixels`` each,
    with tiles as close to square as the frame allows."""
    if max_pixels <= 0 or height * width <= max_pixels:
        return 1, 1
    best: tuple[int, int, int] | None = None
    for rows in range(1, height + 1):
        th = math.ceil(height / rows)
        tw_max = max_pixels // th
        if tw_max < 1:
            break
        cols = math.ceil(width / tw_max)
        tw = math.ceil(width / cols)
        cost = rows * cols * 1000 + abs(th - tw) * 1000 // max(th, tw)  # fewest tiles, then squarest
        if best is None or cost < best[0]:
            best = (cost, rows, cols)
        if cols == 1:
            break
    assert best is not None
    return best[1], best[2]


def tiles(rgb: np.ndarray, max_pixels: int) -> list[np.ndarray]:
    """The frame itself when it holds at most ``max_pixels``, else native-resolution tiles
    (views, no copy) of a grid from :func:`tile_grid`, each at most ``max_pixels``."""
    h, w = rgb.shape[:2]
    rows, cols = tile_grid(h, w, max_pixels)
    if rows == cols == 1:
        return [rgb]
    th, tw = math.ceil(h / rows), math.ceil(w / cols)
    ys = [round(i * (h - th) / (rows - 1)) for i in range(rows)] if rows > 1 else [0]
    xs = [round(j * (w - tw) / (cols - 1)) for j in range(cols)] if cols > 1 else [0]
    return [rgb[y:y + th, x:x + tw] for y in ys for x in xs]


def score_bounded(run: Callable[[list[np.ndarray]], np.ndarray], frames: Sequence[np.ndarray],
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, list[int]]:
    """Run ``run`` (list of frames -> (n,) scores, or (n, k) per-frame values such as a score and
    class probabilities) on ``frames`` so that no call holds more than ``max_pixels`` (or one
    frame/tile when that alone is larger): a frame above the limit gets the mean of its tiles'
    values. Returns the values ((N,) or (N, k), as ``run`` gives them) and each frame's tile count."""
    sums: np.ndarray | None = None
    flat = True
    counts: list[int] = []
    group: list[np.ndarray] = []
    owners: list[int] = []
    pixels = 0

    def flush() -> None:
        nonlocal group, owners, pixels, sums, flat
        if group:
            v = np.asarray(run(group), np.float64)
            if v.shape[0] != len(group):
                raise RuntimeError(f"scorer returned {v.shape[0]} scores for {len(group)} frames")
            flat = v.ndim == 1
            v = v.reshape(len(group), -1)
            if sums is None:
                sums = np.zeros((len(frames), v.shape[1]), np.float64)
            np.add.at(sums, owners, v)
        group, owners, pixels = [], [], 0

    for i, frame in enumerate(frames):
        parts = tiles(frame, max_pixels) if max_pixels > 0 else [frame]
        counts.append(len(parts))
        for part in parts:
            p = part.shape[0] * part.shape[1]
            if group and (max_pixels > 0 and pixels + p > max_pixels):
                flush()
            group.append(part)
            owners.append(i)
            pixels += p
    flush()
    if sums is None:
        return np.zeros(0, np.float32), counts
    out = sums / np.asarray(counts, np.float64)[:, None]
    return (out[:, 0] if flat else out).astype(np.float32), counts
