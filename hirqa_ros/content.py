"""Frames with no content: black (lens cap, dead sensor), saturated white, uniform (very low
dynamic range), and frozen streams (image data byte-identical for a while: a stuck driver).

These checks run before the model and make such frames ERROR with a named reason whatever the
model would score them: they are the guarantee, the model's training only helps it agree.
Statistics come from a small area-averaged thumbnail, so sensor noise on a capped lens does not
hide it and a 4K frame costs a few milliseconds.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from hirqa_ros.constants import (
    DEFAULT_BLACK_LEVEL,
    DEFAULT_FROZEN_S,
    DEFAULT_UNIFORM_RANGE,
    DEFAULT_WHITE_LEVEL,
)

THUMB_SIDE = 32


@dataclass(frozen=True)
class ContentLimits:
    """When a frame has no content (levels on 8-bit luma of an area-averaged thumbnail).

    ``black_level``: black when 99 % of the thumbnail is at or below it; ``white_level``: white
    when 99 % is at or above it; ``uniform_range``: uniform when the 1st..99th percentile spread
    is at most this; ``frozen_s``: frozen when the image data has been byte-identical for at
    least this many seconds (0 = off). ``black_level`` -1, ``white_level`` 256 and
    ``uniform_range`` -1 turn those checks off.
    """

    black_level: float = DEFAULT_BLACK_LEVEL
    white_level: float = DEFAULT_WHITE_LEVEL
    uniform_range: float = DEFAULT_UNIFORM_RANGE
    frozen_s: float = DEFAULT_FROZEN_S

    def __post_init__(self) -> None:
        if self.frozen_s < 0:
            raise ValueError(f"frozen_s must be >= 0 (0 = off), got {self.frozen_s}")


def thumbnail_luma(rgb: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """8-bit luma (BT.601) of an area-averaged thumbnail whose longer side is at most ``side``."""
    h, w = rgb.shape[:2]
    f = min(1.0, side / max(h, w))
    small = rgb if f == 1.0 else cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                                            interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY)


def no_content(rgb: np.ndarray, limits: ContentLimits = ContentLimits()) -> str | None:
    """``"no_content: black"``, ``"no_content: white"``, ``"no_content: uniform"`` or None."""
    luma = thumbnail_luma(rgb)
    lo, hi = np.percentile(luma, (1, 99))
    if hi <= limits.black_level:
        return "no_content: black"
    if lo >= limits.white_level:
        return "no_content: white"
    if hi - lo <= limits.uniform_range:
        return "no_content: uniform"
    return None


def digest(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """A fast 32-bit checksum of image data (with its length folded in)."""
    buf = memoryview(np.ascontiguousarray(data)) if isinstance(data, np.ndarray) else memoryview(data)
    return zlib.crc32(buf.cast("B")) ^ (buf.nbytes << 32)


class FrozenDetector:
    """Per stream: reports a frame as frozen when its data has been byte-identical (same digest)
    to the previous frames for at least ``frozen_s`` seconds of the stream's clock."""

    def __init__(self, frozen_s: float) -> None:
        self.frozen_s = float(frozen_s)
        self._digest: int | None = None
        self._since: float | None = None

    def update(self, data: bytes | bytearray | memoryview | np.ndarray, t_s: float | None) -> bool:
        """Feed one frame's data and time (seconds, any origin); True when the stream is frozen."""
        if self.frozen_s <= 0 or t_s is None:
            return False
        d = digest(data)
        if d != self._digest:
            self._digest, self._since = d, t_s
            return False
        return t_s - self._since >= self.frozen_s

    def reset(self) -> None:
        self._digest = self._since = None
