"""Property tests: for every distortion type a fitting image statistic moves monotonically with the level."""
from __future__ import annotations

import itertools

import pytest
import torch
from helpers_degradations import (
    gradient_energy,
    luma,
    mean_abs_diff,
    noise_sigma,
    signed_saturation,
    synthetic_images,
)

from hirqa_ros.degradations import DEGRADATIONS, apply
from hirqa_ros.degradations.color import rgb_to_lab


def _chroma(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float(rgb_to_lab(y)[:, 1:].norm(dim=1).mean())


def _std(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float(luma(y).std(dim=(1, 2)).mean())


def _contrast_change(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((luma(y).std(dim=(1, 2)) - luma(ref).std(dim=(1, 2))).abs().mean())


def _mean(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float(luma(y).mean())


def _clipped(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y >= 254.5 / 255).float().mean())


def _distinct(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float(torch.unique(y).numel())


def _grad(y, ref):
    return gradient_energy(y)


def _noise(y, ref):
    return noise_sigma(y)


UP, DOWN = 1, -1
# name -> [(statistic, direction)]; every listed statistic must move strictly from level 1 to 5 and
# not move backwards from level 0 to 1 (gaublur L1, colorsat2 L1 are near-identities by design)
PROPERTIES = {
    "gaublur": [(_grad, DOWN)],
    "lensblur": [(_grad, DOWN)],
    "motionblur": [(_grad, DOWN)],
    "colordiff": [(mean_abs_diff, UP)],
    "colorshift": [(mean_abs_diff, UP)],
    "colorsat1": [(signed_saturation, DOWN)],
    "colorsat2": [(_chroma, UP)],
    "jpeg2000": [(mean_abs_diff, UP)],
    "jpeg": [(mean_abs_diff, UP)],
    "whitenoise": [(_noise, UP)],
    "whitenoiseCC": [(_noise, UP)],
    "impulsenoise": [(_noise, UP)],
    "multnoise": [(_noise, UP)],
    "brighten": [(_mean, UP)],
    "darken": [(_mean, DOWN)],
    "meanshift": [(mean_abs_diff, UP)],
    "jitter": [(mean_abs_diff, UP)],
    "noneccpatch": [(mean_abs_diff, UP)],
    "pixelate": [(mean_abs_diff, UP)],
    "quantization": [(_distinct, DOWN)],
    "colorblock": [(mean_abs_diff, UP)],
    "highsharpen": [(_grad, UP)],
    "lincontrchange": [(_contrast_change, UP)],
    "nonlincontrchange": [(_std, DOWN)],
    "haze": [(_std, DOWN), (_grad, DOWN), (_mean, UP)],
    "camera_shake": [(_grad, DOWN)],
    "defocus": [(_grad, DOWN)],
    "low_light": [(_mean, DOWN), (_noise, UP)],
    "overexposure": [(_clipped, UP), (_mean, UP)],
    "glare": [(_mean, UP), (signed_saturation, DOWN)],
    "shake": [(_grad, DOWN)],
    "platform_motion": [(_grad, DOWN)],
    "jpeg_camera": [(mean_abs_diff, UP)],
    "black_frame": [(_mean, DOWN), (_std, DOWN)],
    "white_frame": [(_mean, UP), (_std, DOWN)],
    "grey_frame": [(_std, DOWN)],
}


def test_every_type_has_a_property():
    assert set(PROPERTIES) == set(DEGRADATIONS)


@pytest.fixture(scope="module")
def images() -> dict[int, torch.Tensor]:
    # JPEG 2000 needs >= ~128 px: below that OpenJPEG cannot reach ratios 120/170 (codestream overhead)
    return {96: synthetic_images(4, 96, seed=0), 128: synthetic_images(4, 128, seed=0)}


@pytest.mark.parametrize("name", list(PROPERTIES))
def test_statistic_is_monotonic_in_level(name: str, images: dict[int, torch.Tensor]):
    x = images[128 if name == "jpeg2000" else 96]
    seeds = (0, 1, 2)
    for stat, direction in PROPERTIES[name]:
        values = []
        for level in range(6):
            outs = [apply(x, name, level, torch.Generator().manual_seed(s)) for s in seeds]
            values.append(sum(stat(y, x) for y in outs) / len(seeds))
        steps = [direction * (b - a) for a, b in itertools.pairwise(values)]
        shown = ", ".join(f"{v:.5g}" for v in values)
        assert steps[0] >= -1e-9, f"{name}: {stat.__name__} goes backwards from level 0 to 1: {shown}"
        assert all(s > 0 for s in steps[1:]), f"{name}: {stat.__name__} not monotonic in levels 1..5: {shown}"
