"""A cheap per-frame cue at camera rate (sharpness, mean luma, clipped share of a small grey copy) and
the test for a sudden drop against a camera's recent accepted frames (ROS-free; the state gate's check).

The grey copy's longer side is ``CUE_SIDE`` px: raw images are decoded by the project's converter
and shrunk with area interpolation (``content.thumbnail_luma``); JPEGs are decoded straight to a
reduced grey image (libjpeg's DCT scaling, ``cv2.IMREAD_REDUCED_GRAYSCALE_{2,4,8}``), so a
640x480 frame costs about 1 ms instead of a full decode; other codecs (PNG) are decoded in full.
Sharpness is ``classical.laplacian_var_grey``, clipping uses ``classical.CLIP_LOW``/``CLIP_HIGH``.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from hirqa_ros.classical import CLIP_HIGH, CLIP_LOW, laplacian_var_grey
from hirqa_ros.content import thumbnail_luma
from hirqa_ros.imgmsg import ImageDecodeError, ImageTooLarge, compressed_msg_to_rgb, image_msg_to_rgb
from hirqa_ros.limits import TooLarge, check_size, declared_size

CUE_SIDE = 160  # longer side of the grey copy (640x480 -> 160x120)
REFERENCE_FRAMES = 30  # recent accepted frames behind a camera's reference (median of each field)


@dataclass(frozen=True)
class FrameCue:
    """One frame's cue: ``sharpness`` (variance of the Laplacian of the grey copy, 8-bit units),
    ``mean`` (mean luma, 0..255) and ``clipped`` (share of pixels at or below CLIP_LOW or at or
    above CLIP_HIGH, 0..1)."""

    sharpness: float
    mean: float
    clipped: float


def cue_of_grey(grey: np.ndarray) -> FrameCue:
    """The cue of a small 8-bit grey image."""
    g = np.asarray(grey)
    n = g.size
    clipped = (np.count_nonzero(g <= CLIP_LOW) + np.count_nonzero(g >= CLIP_HIGH)) / n
    return FrameCue(laplacian_var_grey(g), float(cv2.mean(g)[0]), float(clipped))


def _reduced_flag(width: int, height: int, side: int) -> int:
    """The largest JPEG reduction (1/2, 1/4, 1/8) that keeps the longer side at least ``side``."""
    longer = max(width, height)
    for factor, flag in ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
                         (2, cv2.IMREAD_REDUCED_GRAYSCALE_2)):
        if longer // factor >= side:
            return flag
    return cv2.IMREAD_GRAYSCALE


#: 8-bit packed encodings read in place (shrunk before the grey conversion): channels, cv2 code
_PACKED8 = {"rgb8": (3, cv2.COLOR_RGB2GRAY), "bgr8": (3, cv2.COLOR_BGR2GRAY),
            "rgba8": (4, cv2.COLOR_RGBA2GRAY), "bgra8": (4, cv2.COLOR_BGRA2GRAY),
            "mono8": (1, None), "8uc1": (1, None), "8uc3": (3, cv2.COLOR_BGR2GRAY)}


def _bytes(data: Any) -> np.ndarray:
    """A message's data field as a flat uint8 array (no copy)."""
    return data if isinstance(data, np.ndarray) else np.frombuffer(memoryview(data).cast("B"), np.uint8)


def _shrink(img: np.ndarray, side: int) -> np.ndarray:
    """Area-shrink so the longer side is at most ``side`` (smaller images as they are)."""
    h, w = img.shape[:2]
    f = min(1.0, side / max(h, w))
    if f == 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _shrink_packed8(msg: Any, side: int) -> np.ndarray | None:
    """The fast path for 8-bit packed raw images: area-shrink the pixels in the message buffer, then
    convert to grey (no full-size copy); None for anything else (the converter handles it)."""
    try:
        kind = _PACKED8.get(str(msg.encoding).strip().lower())
        h, w, step = int(msg.height), int(msg.width), int(msg.step)
    except (AttributeError, TypeError, ValueError):
        return None
    if kind is None or h <= 0 or w <= 0 or step < w * kind[0]:
        return None
    data = _bytes(msg.data)
    if data.size < step * h:
        return None  # short data: the converter says why
    img = _shrink(data[: step * h].reshape(h, step)[:, : w * kind[0]].reshape(h, w, kind[0]), side)
    img = img.reshape(img.shape[0], img.shape[1], kind[0])
    return np.ascontiguousarray(img[..., 0]) if kind[1] is None else cv2.cvtColor(img, kind[1])


def grey_of_msg(msg: Any, compressed: bool, side: int = CUE_SIDE) -> np.ndarray:
    """The small grey copy of a ``sensor_msgs/Image`` or ``CompressedImage`` (longer side at most
    ``side``); raises ``ImageDecodeError`` when the message cannot be decoded (``ImageTooLarge``, a
    subclass, above the converter's decoding limit)."""
    if not compressed:
        fast = _shrink_packed8(msg, side)
        return fast if fast is not None else thumbnail_luma(image_msg_to_rgb(msg), side)
    buf = _bytes(msg.data)
    size = declared_size(buf)
    if size is not None and buf[:2].tobytes() == b"\xff\xd8" and buf[-2:].tobytes() == b"\xff\xd9":
        try:  # the converter's decoding limit, before any pixel is decoded
            check_size(size[0], size[1], what="compressed image (jpeg)")
        except TooLarge as exc:
            raise ImageTooLarge(str(exc)) from None
        grey = cv2.imdecode(buf, _reduced_flag(size[0], size[1], side))
        if grey is None or grey.size == 0:
            raise ImageDecodeError(f"compressed image ({buf.size} bytes): OpenCV cannot decode it")
        return _shrink(grey, side)
    return thumbnail_luma(compressed_msg_to_rgb(msg), side)


def cue_of_msg(msg: Any, compressed: bool, side: int = CUE_SIDE) -> FrameCue:
    """The cue of one image message (``ImageDecodeError`` when it cannot be decoded)."""
    return cue_of_grey(grey_of_msg(msg, compressed, side))


def cue_of_rgb(rgb: np.ndarray, side: int = CUE_SIDE) -> FrameCue:
    """The cue of an HxWx3 uint8 RGB frame."""
    return cue_of_grey(thumbnail_luma(rgb, side))


@dataclass(frozen=True)
class DropLimits:
    """What counts as a sudden drop against the reference (the median cue of recent accepted frames):
    sharpness below ``sharpness_ratio`` of the reference's (a bump, defocus); mean luma below
    ``dark_ratio`` or above the reference by ``bright_ratio`` of its headroom, and by at least
    ``min_mean_shift`` grey levels (lights out, overexposure); a clipped share up by more than
    ``clipped_rise`` (glare, crushed shadows)."""

    sharpness_ratio: float = 0.5
    dark_ratio: float = 0.6
    bright_ratio: float = 0.5
    min_mean_shift: float = 20.0
    clipped_rise: float = 0.2


def sudden_drop(cue: FrameCue, ref: FrameCue, limits: DropLimits = DropLimits()) -> str | None:
    """``blur``, ``dark``, ``bright`` or ``clipped`` when ``cue`` fell suddenly against ``ref``; else None."""
    shift = cue.mean - ref.mean
    if -shift >= limits.min_mean_shift and cue.mean < limits.dark_ratio * ref.mean:
        return "dark"
    if shift >= limits.min_mean_shift and shift > limits.bright_ratio * (255.0 - ref.mean):
        return "bright"
    if cue.clipped - ref.clipped > limits.clipped_rise:
        return "clipped"
    if cue.sharpness < limits.sharpness_ratio * ref.sharpness:
        return "blur"
    return None


class CueReference:
    """A camera's reference cue: the per-field median of its last ``size`` accepted frames."""

    def __init__(self, size: int = REFERENCE_FRAMES) -> None:
        self._cues: deque[tuple[float, float, float]] = deque(maxlen=size)
        self._median: FrameCue | None = None

    def __len__(self) -> int:
        return len(self._cues)

    def add(self, cue: FrameCue) -> None:
        self._cues.append((cue.sharpness, cue.mean, cue.clipped))
        self._median = None

    def reset(self) -> None:
        self._cues.clear()
        self._median = None

    def value(self) -> FrameCue | None:
        """The median cue, None while empty."""
        if self._median is None and self._cues:
            self._median = FrameCue(*(float(v) for v in np.median(np.asarray(self._cues), axis=0)))
        return self._median
