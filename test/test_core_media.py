"""media: non-regular files never block a run; truncated videos are reported, not silently short."""
from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from hirqa_ros import media


def _collect(paths, every=1, timeout=30.0):
    """iter_media in a thread, so a hang fails the test instead of blocking the suite."""
    out: list = []
    t = threading.Thread(target=lambda: out.extend(media.iter_media(paths, every)), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"iter_media blocked for {timeout} s on {paths}"
    return out


def _video(path, frames=30, fourcc="MJPG"):
    rng = np.random.default_rng(0)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48))
    for _ in range(frames):
        w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    w.release()
    return path


def test_fifo_in_a_folder_or_named_is_skipped_not_a_hang(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 40, 3), 90, np.uint8))
    os.mkfifo(tmp_path / "pipe.jpg")
    items = _collect([tmp_path])
    assert [type(i).__name__ for i in items] == ["Frame", "MediaError"]
    assert "FIFO" in items[1].message and "not a regular file" in items[1].message
    items = _collect([tmp_path / "pipe.jpg"])
    assert len(items) == 1 and "FIFO" in items[0].message
    os.mkfifo(tmp_path / "pipe.avi")
    assert "FIFO" in _collect([tmp_path / "pipe.avi"])[0].message


def test_device_file_is_not_called_empty(tmp_path):
    (items,) = _collect(["/dev/zero"])
    assert isinstance(items, media.MediaError) and "character device" in items.message
    assert "empty" not in items.message


def test_truncated_video_is_reported_after_its_frames(tmp_path):
    full = _video(tmp_path / "full.avi")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    items = _collect([full])
    assert all(isinstance(i, media.Frame) for i in items) and len(items) == 30
    items = _collect([cut])
    frames = [i for i in items if isinstance(i, media.Frame)]
    errors = [i for i in items if isinstance(i, media.MediaError)]
    assert 0 < len(frames) < 30
    assert len(errors) == 1 and "truncated" in errors[0].message and "of the 30 frames" in errors[0].message
    # every Nth frame: the count is of frames read, not of frames scored
    items = _collect([full], every=7)
    assert all(isinstance(i, media.Frame) for i in items) and [i.frame for i in items] == [0, 7, 14, 21, 28]
