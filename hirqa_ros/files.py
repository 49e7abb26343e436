"""File helpers used by the runtime, the CLI, evaluation and training: image-file reading (one rule
for 16-bit and alpha), image and video extensions, atomic writes and JSON output."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hirqa_ros.limits import DEFAULT_MAX_DECODE_PIXELS, check_size, declared_size
from hirqa_ros.preprocess import to_rgb8

IMAGE_EXTS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm",
    ".pnm", ".pfm", ".jp2", ".sr", ".ras", ".hdr", ".pic", ".exr", ".avif",
})
VIDEO_EXTS = frozenset({
    ".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
    ".mts", ".m2ts", ".ogv", ".mjpeg", ".mjpg",
})

try:  # OpenCV prints libjpeg/libpng warnings for corrupt files; callers report those themselves
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:
    pass


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file whose extension is an image format OpenCV reads."""
    return Path(path).suffix.lower() in IMAGE_EXTS


def not_regular(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a regular file that can be read to its end (None when it is one)."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks; never opens (a FIFO would block)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a folder" if stat.S_ISDIR(mode) else "not a regular file")
    return f"skipped: {kind}, not a regular file"


def read_image(path: str | os.PathLike, max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB; raises ValueError with the reason.

    EXIF orientation is applied, alpha dropped, grey repeated to three channels, and 16-bit
    images are rounded to 8 bits (``preprocess.to_rgb8``), the same everywhere. FIFOs, devices
    and sockets are refused without being opened; PNG and JPEG sizes are checked against
    ``max_decode_pixels`` from their headers, before decoding."""
    path = Path(path)
    why = not_regular(path)
    if why:
        raise ValueError(why)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ValueError("empty file (0 bytes)")
    size = declared_size(data)
    if size is not None:
        check_size(size[0], size[1], max_decode_pixels)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None or img.size == 0:
        raise ValueError(
            "corrupt or unsupported image (OpenCV could not decode it)"
            if is_image_file(path)
            else f"not an image or video (extension {path.suffix or 'none'!r}, not decodable)"
        )
    return to_rgb8(img, bgr=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees half a file (``fsync``: also survive a power cut)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays, sets and paths."""
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def to_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text of results (numpy values, sets and paths allowed), ending with a newline."""
    return json.dumps(obj, indent=indent, default=json_default) + "\n"


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically; returns the path."""
    atomic_write_bytes(path, to_json(obj, indent).encode())
    return Path(path)
