"""Reading the pristine photo folders for training: every readable image, shrunk to a longest side."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from hirqa_ros.files import is_image_file, read_image

log = logging.getLogger(__name__)


def load_images(folder: str | Path, max_side: int = 0) -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 uint8 RGB) of every readable image under ``folder``; unreadable files are reported
    and skipped. ``max_side`` > 0 shrinks larger images (INTER_AREA)."""
    out = []
    for p in sorted(Path(folder).rglob("*")):
        if not p.is_file() or not is_image_file(p):
            continue
        try:
            img = read_image(p)
        except ValueError as exc:
            log.warning("skipping unreadable image %s: %s", p, exc)
            continue
        h, w = img.shape[:2]
        if max_side and max(h, w) > max_side:
            f = max_side / max(h, w)
            img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        out.append((p.name, np.ascontiguousarray(img)))
    return out
