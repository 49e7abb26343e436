"""The quality overlay: a downscaled copy of a frame with its score, level, fault and reason drawn on
it (OpenCV only, no ROS), for the node's ``B_quality_overlay`` topic and the README picture."""
from __future__ import annotations

import cv2
import numpy as np

from hirqa_ros.decision import Level

# banner colours per level (RGB): OK green, WARN amber, ERROR red, STALE grey
LEVEL_RGB = {Level.OK: (40, 170, 60), Level.WARN: (235, 160, 0), Level.ERROR: (210, 30, 30),
             Level.STALE: (128, 128, 128)}
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_TEXT_PX = 12  # cap height in pixels below which text stops being readable on a screen


def downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """``rgb`` shrunk (never enlarged) so that its longest side is at most ``max_side``."""
    h, w = rgb.shape[:2]
    scale = min(1.0, float(max_side) / max(h, w))
    if scale >= 1.0:
        return np.ascontiguousarray(rgb)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def overlay_lines(score: float | None, level: int, fault: str = "", reason: str = "") -> list[str]:
    """The text drawn: score and level first, then the fault family and the reason when there are any."""
    head = f"{Level(level).name}  score {score:.3f}" if score is not None else Level(level).name
    lines = [head]
    if fault and fault != "none":
        lines.append(f"fault: {fault}")
    if reason:
        lines.append(f"reason: {reason}")
    return lines


def draw_overlay(rgb: np.ndarray, score: float | None, level: int, fault: str = "", reason: str = "",
                 max_side: int = 640) -> np.ndarray:
    """A new HxWx3 uint8 RGB image: ``rgb`` downscaled to ``max_side``, a frame border and a banner in the
    level's colour at the top holding :func:`overlay_lines`. Text height follows the image width (at
    least ``MIN_TEXT_PX`` pixels), so it stays readable at any size."""
    img = downscale(np.asarray(rgb, np.uint8)[..., :3], max_side).copy()
    h, w = img.shape[:2]
    colour = LEVEL_RGB.get(Level(level), LEVEL_RGB[Level.STALE])
    lines = overlay_lines(score, level, fault, reason)
    cap = max(MIN_TEXT_PX, round(w / 28))  # ~28 cap heights across the width
    scale = cv2.getFontScaleFromHeight(FONT, cap, 1)
    thick = max(1, round(cap / 10))
    line_h = round(cap * 1.7)
    banner_h = min(h, line_h * len(lines) + cap // 2)
    band = img[:banner_h].astype(np.float32)
    img[:banner_h] = (0.35 * band + 0.65 * np.asarray(colour, np.float32)).astype(np.uint8)
    for i, text in enumerate(lines):
        y = line_h * (i + 1) - (line_h - cap) // 2
        cv2.putText(img, text, (cap // 2, y), FONT, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(img, text, (cap // 2, y), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    border = max(2, round(w / 160))
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), colour, border)
    return img
