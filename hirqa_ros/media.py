"""Read images, folders (recursively) and videos (every Nth frame) as RGB frames.

Unreadable, corrupt, empty or non-image files, files that are not regular files (FIFOs,
devices, sockets: reading them could block forever) and videos that end before the frame count
their container declares become :class:`MediaError` items in the stream instead of exceptions,
so one bad file never stops (or hangs) a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hirqa_ros.files import IMAGE_EXTS, VIDEO_EXTS, not_regular, read_image
from hirqa_ros.preprocess import to_rgb8
from hirqa_ros.refusals import DECODE_ERROR, decode_reason

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "Frame", "MediaError", "expand", "iter_file", "iter_media", "kind_of",
           "not_regular", "read_image", "read_video", "video_frame_count"]

@dataclass
class Frame:
    """One frame: its file, its index in a video (None for a still image), HxWx3 uint8 RGB and,
    for a video, its time in seconds from the container's frame rate (index / fps)."""

    source: str
    frame: int | None
    rgb: np.ndarray
    t_s: float | None = None


@dataclass
class MediaError:
    """A file (or part of one) that could not be read, and why: ``reason`` in the words of every door
    (``refusals``: ``too_large`` or ``decode_error``), ``message`` the detail."""

    source: str
    message: str
    reason: str = DECODE_ERROR

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


def kind_of(path: Path) -> str:
    """ "image", "video" or "unknown" from the file extension."""
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else "unknown"


def expand(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[MediaError]]:
    """Files named directly plus every non-hidden file under named folders (sorted), and the
    paths that do not exist or are folders that cannot be listed."""
    files: list[Path] = []
    errors: list[MediaError] = []
    for p in map(Path, paths):
        if p.is_dir():
            def unreadable(exc: OSError) -> None:
                errors.append(MediaError(str(exc.filename), f"cannot read folder ({exc.strerror or exc})"))

            for root, dirs, names in os.walk(p, onerror=unreadable):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        elif p.exists():
            files.append(p)
        else:
            errors.append(MediaError(str(p), "no such file or folder"))
    return files, errors


def video_frame_count(path: str | os.PathLike) -> int:
    """Frame count from the container (0 when unknown)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if cap.isOpened() else 0
    finally:
        cap.release()


def read_video(path: str | os.PathLike, every: int = 1) -> Iterator[Frame | MediaError]:
    """Every ``every``-th frame (0, N, 2N, ...) of a video, then an error if nothing decoded or
    the video ends before the frame count its container declares (truncated file)."""
    path = Path(path)
    why = not_regular(path)
    if why:
        yield MediaError(str(path), why)
        return
    if path.stat().st_size == 0:
        yield MediaError(str(path), "empty file (0 bytes)")
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        yield MediaError(str(path), "corrupt or unsupported video (OpenCV could not open it)")
        return
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    index, decoded = 0, 0
    try:
        while True:
            if index % every:
                if not cap.grab():
                    break
            else:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                decoded += 1
                yield Frame(str(path), index, to_rgb8(bgr, bgr=True), index / fps if fps > 0 else None)
            index += 1
    finally:
        cap.release()
    if decoded == 0:
        yield MediaError(str(path), "no frame could be decoded (corrupt or unsupported video)")
    elif declared > 0 and declared - index > max(1, declared // 50):  # duration x fps counts: off by 1-2 %
        yield MediaError(
            str(path),
            f"truncated or corrupt video: it ended after {index} of the {declared} frames its container "
            f"declares ({decoded} scored)",
        )


def iter_file(path: str | os.PathLike, every: int = 1) -> Iterator[Frame | MediaError]:
    """Frames (or errors) from one file, dispatching on its extension."""
    path = Path(path)
    if kind_of(path) == "video":
        yield from read_video(path, every)
        return
    try:
        yield Frame(str(path), None, read_image(path))
    except ValueError as exc:
        yield MediaError(str(path), str(exc), decode_reason(exc))


def iter_media(paths: Iterable[str | os.PathLike], every: int = 1) -> Iterator[Frame | MediaError]:
    """Frames and errors, in order, from image files, video files and folders (recursive)."""
    if every < 1:
        raise ValueError("every must be >= 1")
    files, errors = expand(paths)
    yield from errors
    for f in files:
        yield from iter_file(f, every)
