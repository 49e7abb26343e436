"""Test helpers for the eval area: small procedurally generated 'photos' (never library sample images)."""
from __future__ import annotations

import cv2
import numpy as np


def synthetic_scene(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A textured RGB uint8 scene: flat background, random filled shapes, smooth colour texture."""
    r = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = r.uniform(60, 200, 3)
    s = max(h, w) / 320.0
    for _ in range(40):
        c = tuple(float(v) for v in r.uniform(0, 255, 3))
        p = (int(r.integers(0, w)), int(r.integers(0, h)))
        if r.random() < 0.5:
            cv2.circle(img, p, int(r.integers(5, 60) * s), c, -1, lineType=cv2.LINE_AA)
        else:
            q = (p[0] + int(r.integers(5, 80) * s), p[1] + int(r.integers(5, 80) * s))
            cv2.rectangle(img, p, q, c, -1)
    img += cv2.GaussianBlur(r.normal(0, 20, (h, w, 3)).astype(np.float32), (0, 0), 3 * s)
    return np.clip(img, 0, 255).astype(np.uint8)
