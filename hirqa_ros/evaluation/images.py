"""Photo folders for evaluation as RGB uint8 (decoded by ``hirqa_ros.media``); unreadable files skipped."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hirqa_ros.media import IMAGE_EXTS, read_image

LOG = logging.getLogger(__name__)


def list_images(directory: str | Path) -> list[Path]:
    """Image files directly inside ``directory`` (sorted by name); raises if it is not a folder."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"image folder not found: {d}")
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def read_rgb(path: str | Path) -> np.ndarray | None:
    """HxWx3 uint8 RGB of an image file, or None (with a warning saying why) when it cannot be read."""
    try:
        return read_image(path)
    except ValueError as exc:
        LOG.warning("skipping %s: %s", path, exc)
        return None


def load_folder(directory: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(file name, rgb) for the readable images of a folder, at most ``limit`` of them."""
    out: list[tuple[str, np.ndarray]] = []
    for p in list_images(directory):
        if limit is not None and len(out) >= limit:
            break
        rgb = read_rgb(p)
        if rgb is not None:
            out.append((p.name, rgb))
    return out
