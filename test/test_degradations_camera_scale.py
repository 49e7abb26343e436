"""The frame-scale renderers: shake with roll, platform motion, camera JPEG (double compression), no-content
fades; at camera pixel scale, deterministic for a seed, monotone in level (see also the property tests)."""
from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
import torch
from helpers_degradations import gradient_energy, synthetic_images

from hirqa_ros.degradations import apply, apply_ladder, degrade
from hirqa_ros.degradations.compression import DOUBLE_PROB
from hirqa_ros.degradations.motion import _roll, platform_kernels
from hirqa_ros.degradations.no_content import FADES


@pytest.fixture(scope="module")
def frame() -> torch.Tensor:
    """A 1x3x180x320 'camera frame' (non-square), big enough for the long level-5 kernels."""
    return synthetic_images(1, 320, seed=3)[:, :, 70:250, :].contiguous()


@pytest.mark.parametrize("name", ["shake", "platform_motion", "jpeg_camera"])
def test_frame_scale_types_are_deterministic_and_monotone_on_a_frame(name: str, frame: torch.Tensor):
    g = torch.Generator().manual_seed(5)
    ladder = apply_ladder(frame, name, generator=g)
    again = apply_ladder(frame, name, generator=torch.Generator().manual_seed(5))
    assert torch.equal(ladder, again)
    others = [apply(frame, name, 5, torch.Generator().manual_seed(s)) for s in range(6, 12)]
    assert any(not torch.equal(ladder[5], o) for o in others), "the seed has no effect"
    if name == "jpeg_camera":
        err = [float((y - frame).abs().mean()) for y in ladder]
        assert all(b > a for a, b in itertools.pairwise(err[1:])), err
    else:
        grad = [gradient_energy(y) for y in ladder]
        assert all(b < a for a, b in itertools.pairwise(grad)), grad


def test_roll_matches_opencv_rotation():
    img = synthetic_images(1, 96, seed=2)[:, :, :, :80].contiguous()  # 96 high, 80 wide
    angle = math.radians(3.0)
    out = _roll(img, torch.tensor([[angle]]), torch.zeros(1, 2))
    arr = img[0].permute(1, 2, 0).numpy()
    h, w = arr.shape[:2]
    # our rotation maps output pixel p to input pixel R(angle) p about the centre; OpenCV's matrix maps
    # input to
    # output with a positive angle turning counter-clockwise on screen, i.e. R(-angle) in image coordinates
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), math.degrees(angle), 1.0)
    ref = cv2.warpAffine(arr, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    got = out[0].permute(1, 2, 0).numpy()
    inner = (slice(10, h - 10), slice(10, w - 10))
    assert np.abs(got[inner] - ref[inner]).mean() < 0.01


def test_roll_of_zero_angle_is_identity():
    img = synthetic_images(2, 48, seed=1)
    out = _roll(img, torch.zeros(2, 3), torch.zeros(2, 2))
    assert torch.allclose(out, img, atol=1e-5)


def test_shake_rolls_only_some_samples_and_roll_adds_blur_away_from_the_centre():
    x = synthetic_images(1, 160, seed=4).repeat(16, 1, 1, 1)
    y = apply(x, "shake", 5, torch.Generator().manual_seed(0))
    # the same translation path without roll: render the kernels alone
    from hirqa_ros.degradations.camera import shake_paths
    from hirqa_ros.degradations.color import linear_to_srgb, srgb_to_linear
    from hirqa_ros.degradations.filters import convolve, splat_paths

    g = torch.Generator().manual_seed(0)
    path = shake_paths(64, 16, g, x.device)
    u = torch.rand(16, 4, generator=g)
    plain = linear_to_srgb(convolve(srgb_to_linear(x), splat_paths(path, 2 * math.ceil(64 / 2 + 1) + 1)))
    differs = [(y[i] - plain[i]).abs().mean().item() > 1e-4 for i in range(16)]
    rolled = (u[:, 0] < 0.5).tolist()
    assert differs == rolled and 0 < sum(rolled) < 16


def test_platform_motion_is_mostly_horizontal():
    k = platform_kernels(32, 400, torch.Generator().manual_seed(1), "cpu")
    half = k.shape[1] // 2
    ys, xs = torch.meshgrid(torch.arange(k.shape[1]) - half, torch.arange(k.shape[2]) - half,
                            indexing="ij")
    spread_x = (k * xs.float() ** 2).sum(dim=(1, 2))
    spread_y = (k * ys.float() ** 2).sum(dim=(1, 2))
    share = float((spread_x > 4 * spread_y).float().mean())
    assert 0.6 < share < 0.9  # 70 % pan within +-15 deg, the rest any direction
    extent = torch.stack([(k.sum(1) > 1e-6).sum(1), (k.sum(2) > 1e-6).sum(1)], 1).amax(1).float()
    assert float(extent.max()) >= 32


def test_jpeg_camera_is_a_single_or_double_opencv_roundtrip():
    rgb = (synthetic_images(1, 64, seed=5)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    def codec(img, q):
        _, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]

    kinds = set()
    for seed in range(12):
        out = degrade(rgb, "jpeg_camera", 3, seed=seed)
        u = torch.rand(1, 2, generator=torch.Generator().manual_seed(seed))[0]
        if float(u[0]) < DOUBLE_PROB:
            ref = codec(codec(rgb, round(75 + 20 * float(u[1]))), 30)
            kinds.add("double")
        else:
            ref = codec(rgb, 30)
            kinds.add("single")
        assert np.array_equal(out, ref)
    assert kinds == {"single", "double"}


@pytest.mark.parametrize("name,value", [("black_frame", 0), ("white_frame", 255), ("grey_frame", 128)])
def test_no_content_level5_is_uniform(name: str, value: int):
    rgb = (synthetic_images(1, 40, seed=1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = degrade(rgb, name, 5)
    assert np.all(out == value)
    half = degrade(rgb, name, 1)
    assert np.allclose(half, rgb * (1 - FADES[0]) + value * FADES[0], atol=1)
