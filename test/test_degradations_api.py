"""Contract tests of hirqa_ros.degradations: registry, apply, ladders, compositions, sampling."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
from helpers_degradations import synthetic_images

from hirqa_ros.degradations import (
    DEFAULT_GROUPS,
    DEFAULT_TYPES,
    DEGRADATIONS,
    GROUPS,
    LEVEL_WEIGHTS,
    apply,
    apply_composition,
    apply_compositions,
    apply_ladder,
    degrade,
    sample_composition,
)
from hirqa_ros.degradations.color import lab_to_rgb, rgb_to_lab
from hirqa_ros.degradations.sharpness import contrast_curve, not_a_knot_spline

ARNIQA_GROUPS = {
    "blur": ["gaublur", "lensblur", "motionblur"],
    "color_distortion": ["colordiff", "colorshift", "colorsat1", "colorsat2"],
    "jpeg": ["jpeg2000", "jpeg"],
    "noise": ["whitenoise", "whitenoiseCC", "impulsenoise", "multnoise"],
    "brightness_change": ["brighten", "darken", "meanshift"],
    "spatial_distortion": ["jitter", "noneccpatch", "pixelate", "quantization", "colorblock"],
    "sharpness_contrast": ["highsharpen", "lincontrchange", "nonlincontrchange"],
}
CAMERA = ["haze", "camera_shake", "defocus", "low_light", "overexposure", "glare"]
MOTION = ["shake", "platform_motion"]
NO_CONTENT = ["black_frame", "white_frame", "grey_frame"]
# types whose output depends on random draws (the others are deterministic functions of the input)
RANDOM_TYPES = {"motionblur", "colorshift", "whitenoise", "whitenoiseCC", "impulsenoise", "multnoise",
                "meanshift", "jitter", "noneccpatch", "colorblock", "lincontrchange", "haze", "camera_shake",
                "low_light", "glare", "shake", "platform_motion", "jpeg_camera"}
ALL = list(DEGRADATIONS)


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return synthetic_images(3, 64, seed=1)[:, :, :, :56].contiguous()  # non-square on purpose


def test_registry_has_the_24_arniqa_types_camera_faults_motion_and_no_content():
    arniqa = {k: [t for t in v if t != "jpeg_camera"] for k, v in GROUPS.items()
              if k not in ("camera", "motion", "no_content")}
    assert arniqa == ARNIQA_GROUPS
    assert GROUPS["jpeg"] == ["jpeg2000", "jpeg", "jpeg_camera"]
    assert GROUPS["camera"] == CAMERA and GROUPS["motion"] == MOTION and GROUPS["no_content"] == NO_CONTENT
    assert len(DEGRADATIONS) == 24 + 1 + 6 + 2 + 3
    # the no-content fades are opt-in: not in the default types/groups
    assert set(DEFAULT_TYPES) == set(DEGRADATIONS) - set(NO_CONTENT)
    assert "no_content" not in DEFAULT_GROUPS
    for name, d in DEGRADATIONS.items():
        assert d.name == name and d.group in GROUPS and name in GROUPS[d.group]
        assert len(d.levels) == 5 and d.description and d.parameter


@pytest.mark.parametrize("name", ALL)
def test_contract(name: str, batch: torch.Tensor):
    before = batch.clone()
    y = apply(batch, name, 4, torch.Generator().manual_seed(7))
    assert y.shape == batch.shape and y.dtype == torch.float32 and y.device == batch.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(batch, before), "input modified in place"
    assert not torch.equal(y, batch), "level 4 changed nothing"
    again = apply(batch, name, 4, torch.Generator().manual_seed(7))
    assert torch.equal(y, again), "not deterministic for the same seed"
    if name in RANDOM_TYPES:
        other = apply(batch, name, 4, torch.Generator().manual_seed(8))
        assert not torch.equal(y, other), "seed has no effect"
    zero = apply(batch, name, 0)
    assert torch.equal(zero, batch) and zero.data_ptr() != batch.data_ptr()
    assert torch.equal(apply(batch, name, torch.tensor(4), torch.Generator().manual_seed(7)), y)
    assert torch.equal(apply(batch, name, np.int64(4), torch.Generator().manual_seed(7)), y)
    mixed = apply(batch, name, torch.tensor([0, 5, 2]), torch.Generator().manual_seed(3))
    assert torch.equal(mixed[0], batch[0]) and not torch.equal(mixed[1], batch[1])
    assert torch.equal(batch, before)


@pytest.mark.parametrize("name", sorted(set(ALL) - RANDOM_TYPES))
def test_per_sample_levels_equal_single_level_calls(name: str, batch: torch.Tensor):
    levels = [3, 1, 5]
    y = apply(batch, name, levels)
    for i, lv in enumerate(levels):
        assert torch.allclose(y[i], apply(batch[i:i + 1], name, lv)[0], atol=1e-6)


def test_float64_input_keeps_dtype(batch: torch.Tensor):
    y = apply(batch.double(), "gaublur", 3)
    assert y.dtype == torch.float64


def test_bad_arguments_have_clear_errors(batch: torch.Tensor):
    with pytest.raises(KeyError, match="unknown degradation"):
        apply(batch, "fog", 1)
    with pytest.raises(ValueError, match=r"0\.\.5"):
        apply(batch, "gaublur", 6)
    with pytest.raises(ValueError, match="3 levels"):
        apply(batch[:2], "gaublur", [1, 2, 3])
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        apply(batch[0], "gaublur", 1)
    with pytest.raises(ValueError, match="float"):
        apply((batch * 255).to(torch.uint8), "gaublur", 1)
    with pytest.raises(ValueError, match="uint8"):
        degrade(np.zeros((8, 8, 3), np.float32), "gaublur", 1)
    with pytest.raises(ValueError, match="HxWx3"):
        degrade(np.zeros((8, 8), np.uint8), "gaublur", 1)


@pytest.mark.parametrize("name", ["glare", "impulsenoise", "camera_shake", "jitter"])
def test_ladder_shares_random_draws_and_matches_apply(name: str, batch: torch.Tensor):
    ladder = apply_ladder(batch, name, generator=torch.Generator().manual_seed(5))
    assert ladder.shape == (6, *batch.shape)
    assert torch.equal(ladder[0], batch)
    for lv in range(1, 6):
        assert torch.equal(ladder[lv], apply(batch, name, lv, torch.Generator().manual_seed(5)))


def test_impulse_ladder_is_nested(batch: torch.Tensor):
    ladder = apply_ladder(batch, "impulsenoise", generator=torch.Generator().manual_seed(2))
    hit = [(ladder[k] != batch) for k in range(1, 6)]
    for a, b in itertools.pairwise(hit):
        assert bool((a & ~b).sum() == 0)  # every impulse of level k is still there at level k+1


def test_composition_is_the_sequence_of_apply_calls(batch: torch.Tensor):
    steps = [("haze", 2), ("jpeg", 3), ("whitenoise", [1, 0, 5])]
    before = batch.clone()
    y = apply_composition(batch, steps, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    ref = batch
    for name, lv in steps:
        ref = apply(ref, name, lv, g)
    assert torch.equal(y, ref) and torch.equal(batch, before)
    empty = apply_composition(batch, [])
    assert torch.equal(empty, batch) and empty.data_ptr() != batch.data_ptr()


def test_sample_composition_follows_arniqa_sampling():
    rng = np.random.default_rng(0)
    draws = [sample_composition(rng) for _ in range(6000)]
    counts = np.bincount([len(d) for d in draws], minlength=5)[1:]
    assert np.allclose(counts / len(draws), 0.25, atol=0.03)
    levels = np.bincount([lv for d in draws for _, lv in d], minlength=6)[1:]
    assert np.allclose(levels / levels.sum(), [0.293, 0.270, 0.213, 0.143, 0.081], atol=0.015)
    assert np.allclose(LEVEL_WEIGHTS, [0.293, 0.270, 0.213, 0.143, 0.081], atol=1e-3)
    group_of = {n: d.group for n, d in DEGRADATIONS.items()}
    seen_groups, firsts = set(), set()
    for d in draws:
        groups = [group_of[n] for n, _ in d]
        assert len(set(groups)) == len(groups)  # distinct groups
        seen_groups.update(groups)
        firsts.add(groups[0])
    # camera and motion included, no_content not (opt-in), random order
    assert seen_groups == set(DEFAULT_GROUPS) and firsts == set(DEFAULT_GROUPS)
    camera_types = {n for d in draws for n, _ in d if group_of[n] == "camera"}
    assert camera_types == set(CAMERA)
    only = [sample_composition(rng, 7, groups=["blur", "camera"]) for _ in range(200)]
    assert {group_of[n] for d in only for n, _ in d} == {"blur", "camera"}
    assert max(len(d) for d in only) == 2
    assert sample_composition(np.random.default_rng(3)) == sample_composition(np.random.default_rng(3))
    with pytest.raises(KeyError):
        sample_composition(rng, groups=["nope"])


def test_degrade_numpy_convenience():
    rgb = (synthetic_images(1, 48)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    before = rgb.copy()
    out = degrade(rgb, "low_light", 3, seed=1)
    assert out.dtype == np.uint8 and out.shape == rgb.shape and np.array_equal(rgb, before)
    assert np.array_equal(out, degrade(rgb, "low_light", 3, seed=1))
    assert not np.array_equal(out, degrade(rgb, "low_light", 3, seed=2))
    assert np.array_equal(degrade(rgb, "gaublur", 0), rgb)


def test_jpeg_is_an_opencv_round_trip_of_the_rounded_image(batch: torch.Tensor):
    y = apply(batch[:1], "jpeg", 4)  # quality 7
    rgb = (batch[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    _ok, buf = cv2.imencode(".jpg", rgb[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 7])
    ref = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal((y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), ref)


def test_lab_round_trip_and_agreement_with_opencv(batch: torch.Tensor):
    x = batch[:1]
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=2e-4)
    ref = cv2.cvtColor(x[0].permute(1, 2, 0).numpy(), cv2.COLOR_RGB2Lab)
    ours = rgb_to_lab(x)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - ref).max() < 0.5


def test_colorsat1_equals_hsv_saturation_scaling(batch: torch.Tensor):
    x = batch[:1]
    y = apply(x, "colorsat1", 1)  # factor 0.4
    hsv = cv2.cvtColor(x[0].permute(1, 2, 0).numpy(), cv2.COLOR_RGB2HSV)
    hsv[..., 1] *= 0.4
    ref = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    assert np.abs(y[0].permute(1, 2, 0).numpy() - ref).max() < 1e-4


def test_contrast_spline_matches_scipy_and_is_identity_at_zero(batch: torch.Tensor):
    interpolate = pytest.importorskip(
        "scipy.interpolate", reason="scipy not installed (pip install -e \".[train]\")"
    )
    xs = np.array([0.0, 0.3, 0.5, 0.7, 1.0])
    ys = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    coefs = not_a_knot_spline(xs, ys)
    ref = interpolate.CubicSpline(xs, ys, bc_type="not-a-knot").c[::-1].T  # (pieces, 4) lowest order first
    assert np.allclose(coefs, ref, atol=1e-9)
    assert torch.allclose(contrast_curve(batch, torch.zeros(3)), batch, atol=1e-6)


def test_meanshift_is_signed_with_growing_magnitude():
    x = torch.full((64, 3, 8, 8), 0.5)
    y = apply(x, "meanshift", 1, torch.Generator().manual_seed(0))
    shifts = (y - x).mean(dim=(1, 2, 3))
    assert torch.allclose(shifts.abs(), torch.full((64,), DEGRADATIONS["meanshift"].levels[0]), atol=1e-6)
    assert bool((shifts > 0).any() and (shifts < 0).any())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("name", ALL)
def test_cuda_matches_contract(name: str, batch: torch.Tensor):
    x = batch.cuda()
    y = apply(x, name, 3, torch.Generator().manual_seed(1))  # CPU generator drives the CUDA draws
    assert y.device == x.device and y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(y, apply(x, name, 3, torch.Generator().manual_seed(1)))
    if name not in RANDOM_TYPES and name not in ("jpeg", "jpeg2000"):
        assert torch.allclose(y.cpu(), apply(batch, name, 3), atol=2e-3)


@pytest.mark.parametrize("hw", [(1, 1), (5, 64), (20, 30), (40, 7)])
def test_tiny_and_odd_sizes_work_for_every_type(hw: tuple[int, int]):
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0))
    for name in ALL:
        y = apply(x, name, 5, torch.Generator().manual_seed(1))
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1, name


def test_batched_compositions_equal_per_sample_compositions(batch: torch.Tensor):
    # deterministic types only, so that batching cannot change the random draws
    comps = [[("gaublur", 3), ("jpeg", 2)], [], [("colorsat2", 4), ("gaublur", 1), ("defocus", 5)]]
    before = batch.clone()
    y = apply_compositions(batch, comps)
    assert torch.equal(batch, before)
    for i, steps in enumerate(comps):
        assert torch.allclose(y[i], apply_composition(batch[i:i + 1], steps)[0], atol=1e-6)
    rng = np.random.default_rng(1)
    mixed = [sample_composition(rng) for _ in range(3)]
    a = apply_compositions(batch, mixed, torch.Generator().manual_seed(9))
    b = apply_compositions(batch, mixed, torch.Generator().manual_seed(9))
    assert torch.equal(a, b) and float(a.min()) >= 0 and float(a.max()) <= 1
    with pytest.raises(ValueError, match="compositions"):
        apply_compositions(batch, comps[:2])


def test_bench_prints_a_row_per_type(capsys):
    from hirqa_ros.degradations.bench import main

    assert main(["--size", "24", "--batch", "2", "--repeats", "1", "--types", "gaublur,jpeg"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == ["type", "gaublur", "jpeg"]
    assert all(float(r.split("|")[3]) > 0 for r in rows[1:])


@pytest.mark.parametrize("name", ALL)
def test_ops_create_no_tensor_on_the_default_device(name: str, batch: torch.Tensor):
    # stands in for a CUDA test on GPU-less machines: with the default device set to "meta", any tensor an
    # op creates without device=x.device would be a meta tensor and break the computation on CPU input
    gens = [torch.Generator().manual_seed(1), None]
    torch.set_default_device("meta")
    try:
        y = apply(batch, name, [1, 3, 5], gens[0])
        ladder = apply_ladder(batch, name, (0, 2, 5), gens[1])
    finally:
        torch.set_default_device(None)
    assert y.device.type == "cpu" and ladder.device.type == "cpu"
