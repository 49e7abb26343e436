"""A camera's physical order of distortions: scene and optics, then the sensor (exposure and gain, an
always-present noise floor, noise faults), then the ISP and compression; shared by training and evaluation."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .base import randn
from .registry import DEGRADATIONS

# Stages along the light path, in the order a camera applies them.
SCENE = 0  # scene and optics: haze, glare, defocus, blur, motion, shake
EXPOSURE = 1  # sensor exposure and gain
FLOOR = 2  # the sensor's noise floor (not a registry type: always present, see `add_noise_floor`)
NOISE = 3  # noise faults on top of the floor
ISP = 4  # in-camera processing: colour, tone, sharpening, resampling, quantisation
COMPRESSION = 5  # JPEG, double JPEG, JPEG 2000

GROUP_STAGE = {
    "blur": SCENE, "camera": SCENE, "motion": SCENE, "no_content": SCENE,
    "brightness_change": EXPOSURE,
    "noise": NOISE,
    "color_distortion": ISP, "sharpness_contrast": ISP, "spatial_distortion": ISP,
    "jpeg": COMPRESSION,
}
TYPE_STAGE = {"low_light": EXPOSURE, "overexposure": EXPOSURE}  # camera-group types set on the sensor

# The noise floor of training samples: sigma in grey levels (of 255), drawn uniformly per sample.
FLOOR_SIGMA_RANGE = (0.5, 3.0)
# The noise floor of the physical-order evaluation (grey levels).
EVAL_FLOOR_SIGMA = 1.5


def stage(name: str) -> int:
    """The physical stage of distortion type ``name`` (unknown groups count as ISP)."""
    if name in TYPE_STAGE:
        return TYPE_STAGE[name]
    return GROUP_STAGE.get(DEGRADATIONS[name].group, ISP)


def order_steps(steps: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Composition steps sorted by stage (stable: steps of one stage keep their drawn order)."""
    return sorted(steps, key=lambda s: stage(s[0]))


def split_around(steps: Sequence[tuple[str, int]], name: str) -> tuple[list, list]:
    """(steps before, steps after) the laddered type ``name`` in physical order; a step of the same
    stage goes before it, so the laddered fault is the last thing its stage does."""
    s = stage(name)
    ordered = order_steps(steps)
    return [t for t in ordered if stage(t[0]) <= s], [t for t in ordered if stage(t[0]) > s]


def add_noise_floor(x: torch.Tensor, sigma: torch.Tensor | float, generator: torch.Generator | None,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` (N,3,H,W) in [0,1] plus white Gaussian noise of ``sigma`` grey levels (scalar or one per
    sample), clipped and quantised to 8 bits like a sensor's output. ``noise`` (a standard normal field of
    x's shape, broadcastable) replaces the draw, so several renderings can share one field."""
    if noise is None:
        noise = randn(generator, *x.shape, device=x.device)
    sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1) / 255.0
    return (x + sig * noise).mul(255.0).round().clamp(0, 255).div(255.0)


def noise_floor_u8(rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Numpy convenience: an HxWx3 uint8 frame with a seeded noise floor of ``sigma`` grey levels."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    y = add_noise_floor(x, float(sigma), torch.Generator().manual_seed(int(seed)))
    return (y[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
