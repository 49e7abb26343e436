"""The one image-message converter: sensor_msgs/Image and CompressedImage fields <-> HxWx3 uint8 RGB.

ROS-free: reads plain attributes (``height, width, encoding, step, is_bigendian, data`` or
``format, data``), so rclpy messages and ``rosbags`` dataclasses both work. cv_bridge is not
needed (and not used, so node and bag evaluation decode identically).
"""
from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np

from hirqa_ros.limits import DEFAULT_MAX_DECODE_PIXELS, TooLarge, check_size, declared_size
from hirqa_ros.preprocess import to_rgb8

__all__ = [
    "ENCODINGS",
    "ImageDecodeError",
    "ImageTooLarge",
    "compressed_msg_to_rgb",
    "image_msg_to_rgb",
    "msg_to_rgb",
    "rgb_to_compressed_fields",
    "rgb_to_image_fields",
]


class ImageDecodeError(ValueError):
    """A message that cannot become an RGB frame (unsupported encoding, short data, corrupt bytes...)."""


class ImageTooLarge(ImageDecodeError, TooLarge):
    """A message whose declared width x height is above the decoding limit (refused before decoding)."""


def _check(width: int, height: int, limit: int, what: str) -> None:
    try:
        check_size(width, height, limit, what)
    except TooLarge as exc:
        raise ImageTooLarge(str(exc)) from None


def _bayer(code_new: str, code_old: str) -> int:
    # OpenCV >= 4.5 names Bayer codes by pattern (RGGB...); older ones by the 2nd-row pixels (BG...)
    return int(getattr(cv2, code_new, getattr(cv2, code_old)))


# encoding -> (kind, channels, bytes per channel, OpenCV code or None)
_PACKED: dict[str, tuple[int, int]] = {  # plain interleaved: channels, bytes per channel
    "rgb8": (3, 1), "bgr8": (3, 1), "rgba8": (4, 1), "bgra8": (4, 1), "mono8": (1, 1),
    "rgb16": (3, 2), "bgr16": (3, 2), "rgba16": (4, 2), "bgra16": (4, 2), "mono16": (1, 2),
    "8uc1": (1, 1), "8uc3": (3, 1), "8uc4": (4, 1), "16uc1": (1, 2), "16uc3": (3, 2),
}
_BGR_ORDER = {"bgr8", "bgra8", "bgr16", "bgra16", "8uc3", "8uc4", "16uc3"}  # OpenCV order for 8UCn
_BAYER: dict[str, int] = {
    "bayer_rggb8": _bayer("COLOR_BayerRGGB2RGB", "COLOR_BayerBG2RGB"),
    "bayer_bggr8": _bayer("COLOR_BayerBGGR2RGB", "COLOR_BayerRG2RGB"),
    "bayer_gbrg8": _bayer("COLOR_BayerGBRG2RGB", "COLOR_BayerGR2RGB"),
    "bayer_grbg8": _bayer("COLOR_BayerGRBG2RGB", "COLOR_BayerGB2RGB"),
}
_BAYER.update({k[:-1] + "16": v for k, v in list(_BAYER.items())})
_YUV422: dict[str, int] = {  # 2 bytes per pixel, packed
    "yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
}
_YUV420SP: dict[str, int] = {"nv12": cv2.COLOR_YUV2RGB_NV12, "nv21": cv2.COLOR_YUV2RGB_NV21}

#: every encoding :func:`image_msg_to_rgb` accepts (lower-case; matching is case-insensitive)
ENCODINGS: tuple[str, ...] = tuple(sorted({*_PACKED, *_BAYER, *_YUV422, *_YUV420SP}))


def _as_bytes(data: Any) -> np.ndarray:
    """The message's ``data`` (bytes, bytearray, array.array, list, numpy) as a flat uint8 array."""
    if isinstance(data, np.ndarray):
        flat = data.reshape(-1)
        return flat.view(np.uint8) if data.dtype.itemsize == 1 else flat.astype(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, np.uint8)
    if isinstance(data, array.array):
        return np.frombuffer(data, np.uint8) if data.itemsize == 1 else np.asarray(data, np.uint8)
    try:
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageDecodeError(f"message data of type {type(data).__name__} is not a byte sequence") from exc


def _rows(buf: np.ndarray, rows: int, step: int, row_bytes: int, what: str) -> np.ndarray:
    """``rows`` rows of ``row_bytes`` each out of a buffer with ``step`` bytes per row."""
    if step < row_bytes:
        raise ImageDecodeError(f"{what}: step {step} is smaller than one row of pixels ({row_bytes} bytes)")
    need = step * rows
    if buf.size < need:
        raise ImageDecodeError(f"{what}: data has {buf.size} bytes, step x height needs {need}")
    return buf[:need].reshape(rows, step)[:, :row_bytes]


def image_msg_to_rgb(msg: Any, max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` (rclpy message or rosbags dataclass) to HxWx3 uint8 RGB.

    Honours ``step`` (row padding) and ``is_bigendian``; 16-bit data is scaled to 8 bits.
    Raises :class:`ImageDecodeError` for unsupported encodings, zero-size or short data, and
    :class:`ImageTooLarge` when width x height is above ``max_decode_pixels`` (0: no limit),
    checked before any conversion buffer is allocated.
    """
    try:
        height, width, step = int(msg.height), int(msg.width), int(msg.step)
        encoding = str(msg.encoding).strip().lower()
        bigendian = bool(msg.is_bigendian)
        data = msg.data
    except AttributeError as exc:
        raise ImageDecodeError(f"not a sensor_msgs/Image: {exc}") from exc
    what = f"{encoding or '<empty>'} {width}x{height}"
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"{what}: zero-size image")
    _check(width, height, max_decode_pixels, what)
    buf = _as_bytes(data)
    if encoding in _PACKED:
        channels, depth = _PACKED[encoding]
        rows = _rows(buf, height, step, width * channels * depth, what)
        if depth == 2:
            dtype = np.dtype(">u2" if bigendian else "<u2")
            img = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
            img = img.astype(np.uint16)
        else:
            img = rows.reshape(height, width, channels)
        rgb = to_rgb8(img, bgr=encoding in _BGR_ORDER)
        # the frame must own its pixels (it can outlive the message); bgr8, rgba, 16-bit and padded
        # rows were already copied by the conversion, so only a plain rgb8 view is copied here
        return rgb.copy() if np.may_share_memory(rgb, buf) else rgb
    if encoding in _BAYER:
        depth = 2 if encoding.endswith("16") else 1
        if height < 2 or width < 2:
            raise ImageDecodeError(f"{what}: a Bayer image needs at least 2x2 pixels")
        rows = np.ascontiguousarray(_rows(buf, height, step, width * depth, what))
        raw = rows.view(np.dtype(">u2" if bigendian else "<u2")).astype(np.uint16) if depth == 2 else rows
        return to_rgb8(cv2.cvtColor(raw.reshape(height, width), _BAYER[encoding]))
    if encoding in _YUV422:
        if width % 2:
            raise ImageDecodeError(f"{what}: packed YUV 4:2:2 needs an even width")
        rows = np.ascontiguousarray(_rows(buf, height, step, width * 2, what))
        return cv2.cvtColor(rows.reshape(height, width, 2), _YUV422[encoding])
    if encoding in _YUV420SP:
        # Y plane (height rows) then interleaved UV plane (height/2 rows), both with `step`.
        # Some writers (e.g. rosbags-image's reader convention) count the UV rows in `height`.
        if buf.size < step * (height + height // 2) and height % 3 == 0 and buf.size >= step * height:
            height = height * 2 // 3
            what = f"{encoding} {width}x{height} (height counted the chroma rows)"
        if width % 2 or height % 2:
            raise ImageDecodeError(f"{what}: NV12/NV21 needs even width and height")
        rows = np.ascontiguousarray(_rows(buf, height * 3 // 2, step, width, what))
        return cv2.cvtColor(rows, _YUV420SP[encoding])
    raise ImageDecodeError(f"unsupported encoding {msg.encoding!r}; supported: {', '.join(ENCODINGS)}")


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def compressed_msg_to_rgb(msg: Any, max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG, PNG, anything OpenCV reads) to HxWx3 uint8 RGB.

    The bytes decide the codec, not ``format``. A JPEG cut short (no end-of-image marker) is
    refused rather than scored with a grey bottom. The size a PNG or JPEG header declares is
    checked against ``max_decode_pixels`` before decoding (:class:`ImageTooLarge`): a small
    compressed image can declare gigabytes of pixels. Other codecs are checked after decoding.
    """
    try:
        data = msg.data
    except AttributeError as exc:
        raise ImageDecodeError(f"not a sensor_msgs/CompressedImage: {exc}") from exc
    fmt = str(getattr(msg, "format", "") or "<no format>")
    buf = _as_bytes(data)
    if buf.size == 0:
        raise ImageDecodeError(f"compressed image ({fmt}): no data")
    head = buf[:64].tobytes()
    if head[:2] == b"\xff\xd8" and b"\xff\xd9" not in buf[-64:].tobytes():
        raise ImageDecodeError(f"compressed image ({fmt}): truncated JPEG (no end-of-image marker)")
    if not head.startswith(_PNG_MAGIC) and _PNG_MAGIC in head:
        buf = buf[head.index(_PNG_MAGIC):]  # compressedDepth: a small header before the PNG
    size = declared_size(buf)
    if size is not None:
        _check(size[0], size[1], max_decode_pixels, f"compressed image ({fmt})")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageDecodeError(f"compressed image ({fmt}, {buf.size} bytes): OpenCV cannot decode it")
    _check(img.shape[1], img.shape[0], max_decode_pixels, f"compressed image ({fmt})")
    try:
        return to_rgb8(img, bgr=img.ndim == 3)
    except ValueError as exc:
        raise ImageDecodeError(f"compressed image ({fmt}): {exc}") from exc


def msg_to_rgb(msg: Any, max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS) -> np.ndarray:
    """Decode an Image or a CompressedImage, told apart by their fields."""
    if hasattr(msg, "encoding") and hasattr(msg, "step"):
        return image_msg_to_rgb(msg, max_decode_pixels)
    if hasattr(msg, "format") and hasattr(msg, "data"):
        return compressed_msg_to_rgb(msg, max_decode_pixels)
    raise ImageDecodeError(f"{type(msg).__name__} is neither a sensor_msgs/Image nor a CompressedImage")


def _rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range, as OpenCV's YUV->RGB conversions expect."""
    r, g, b = (rgb[:, :, i].astype(np.float32) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return tuple(np.clip(np.rint(c), 0, 255).astype(np.uint8) for c in (y, u, v))  # type: ignore[return-value]


def _encode_pixels(rgb: np.ndarray, encoding: str, bigendian: bool) -> tuple[np.ndarray, int]:
    """Pixel rows (H' x row_bytes uint8) and the number of rows for ``encoding``."""
    h, w = rgb.shape[:2]
    if encoding in _PACKED:
        channels, depth = _PACKED[encoding]
        img = rgb[:, :, ::-1] if encoding in _BGR_ORDER else rgb
        if channels == 4:
            img = np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], axis=2)
        elif channels == 1:
            img = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)[:, :, None]
        if depth == 2:
            img = (img.astype(np.uint16) * 257).astype(">u2" if bigendian else "<u2")
        return np.ascontiguousarray(img).view(np.uint8).reshape(h, -1), h
    if encoding in _BAYER:
        depth = 2 if encoding.endswith("16") else 1
        pattern = encoding[len("bayer_"):len("bayer_") + 4]
        idx = {"r": 0, "g": 1, "b": 2}
        mosaic = np.empty((h, w), np.uint8)
        for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, idx[pattern[k]]]
        if depth == 2:
            mosaic = (mosaic.astype(np.uint16) * 257).astype(">u2" if bigendian else "<u2")
        return np.ascontiguousarray(mosaic).view(np.uint8).reshape(h, -1), h
    if encoding in _YUV422 or encoding in _YUV420SP:
        if w % 2 or (encoding in _YUV420SP and h % 2):
            raise ValueError(f"{encoding} needs an even width (and, for NV12/NV21, height)")
        y, u, v = _rgb_to_yuv(rgb)
        if encoding in _YUV422:
            uu = ((u[:, 0::2].astype(np.uint16) + u[:, 1::2] + 1) // 2).astype(np.uint8)
            vv = ((v[:, 0::2].astype(np.uint16) + v[:, 1::2] + 1) // 2).astype(np.uint8)
            out = np.empty((h, w // 2, 4), np.uint8)
            if _YUV422[encoding] == cv2.COLOR_YUV2RGB_UYVY:
                out[..., 0], out[..., 1], out[..., 2], out[..., 3] = uu, y[:, 0::2], vv, y[:, 1::2]
            else:
                out[..., 0], out[..., 1], out[..., 2], out[..., 3] = y[:, 0::2], uu, y[:, 1::2], vv
            return out.reshape(h, w * 2), h
        cu = cv2.resize(u, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        cv_ = cv2.resize(v, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        uv = np.stack([cu, cv_] if encoding == "nv12" else [cv_, cu], axis=2).reshape(h // 2, w)
        return np.concatenate([y, uv], axis=0), h * 3 // 2
    raise ValueError(f"cannot encode to {encoding!r}; supported: {', '.join(ENCODINGS)}")


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = "rgb8", *, padding: int = 0,
                        is_bigendian: bool = False) -> dict[str, Any]:
    """Fields of a ``sensor_msgs/Image`` holding ``rgb`` (HxWx3 uint8) in ``encoding``.

    Returns ``dict(height, width, encoding, is_bigendian, step, data)`` with ``data`` a flat
    numpy uint8 array (rosbags takes it as is; for rclpy wrap it: ``array.array('B', data.tobytes())``).
    ``padding`` adds that many bytes at the end of every row (``step`` grows accordingly).
    """
    rgb = to_rgb8(rgb)
    enc = encoding.strip().lower()
    rows, _ = _encode_pixels(rgb, enc, is_bigendian)
    if padding:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], padding), np.uint8)], axis=1)
    return {
        "height": int(rgb.shape[0]),
        "width": int(rgb.shape[1]),
        "encoding": encoding,
        "is_bigendian": int(bool(is_bigendian)),
        "step": int(rows.shape[1]),
        "data": np.ascontiguousarray(rows).reshape(-1),
    }


def rgb_to_compressed_fields(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> dict[str, Any]:
    """Fields of a ``sensor_msgs/CompressedImage`` (``format``, ``data`` as flat uint8 numpy) for ``rgb``.

    ``fmt`` is ``jpeg`` (or ``jpg``) or ``png``; the ``format`` string follows image_transport
    (``"rgb8; jpeg compressed bgr8"``).
    """
    kind = fmt.strip().lower()
    bgr = np.ascontiguousarray(to_rgb8(rgb)[:, :, ::-1])
    if kind in ("jpeg", "jpg"):
        ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        name = "rgb8; jpeg compressed bgr8"
    elif kind == "png":
        ok, enc = cv2.imencode(".png", bgr)
        name = "rgb8; png compressed bgr8"
    else:
        raise ValueError(f"unsupported compressed format {fmt!r}: use 'jpeg' or 'png'")
    if not ok:
        raise ValueError(f"OpenCV failed to encode a {rgb.shape} image as {kind}")
    return {"format": name, "data": enc.reshape(-1)}
