"""Classical cues move the right way under blur, darkening, haze and noise, and are resolution independent."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from helpers_eval import synthetic_scene

from hirqa_ros.classical import CUES, cue_score_fn, dark_channel, exposure, laplacian_var, noise, tenengrad


def _falls(values: list[float]) -> bool:
    return all(a > b for a, b in itertools.pairwise(values))


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene(240, 320, seed=0)


def test_cues_registry_and_batch_form(scene):
    assert set(CUES) == {"laplacian_var", "tenengrad", "exposure", "dark_channel", "noise"}
    for name, fn in CUES.items():
        v = fn(scene)
        assert isinstance(v, float) and np.isfinite(v), name
        batch = cue_score_fn(name)([scene, scene])
        assert batch.shape == (2,) and batch[0] == pytest.approx(v)
    with pytest.raises(KeyError, match="unknown classical cue"):
        cue_score_fn("nope")


@pytest.mark.parametrize("fn", [laplacian_var, tenengrad])
def test_blur_lowers_sharpness_cues(scene, fn):
    values = [fn(scene)] + [fn(cv2.GaussianBlur(scene, (0, 0), s)) for s in (1.0, 2.0, 4.0)]
    assert _falls(values), values


def test_darkening_lowers_exposure(scene):
    values = [exposure((scene * f).astype(np.uint8)) for f in (1.0, 0.6, 0.3, 0.1)]
    assert _falls(values), values


def test_overexposure_lowers_exposure(scene):
    values = [exposure(np.clip(scene * f, 0, 255).astype(np.uint8)) for f in (1.0, 1.6, 2.5, 4.0)]
    assert _falls(values), values


def test_haze_lowers_dark_channel_cue(scene):
    airlight = 230.0
    hazy = [np.clip(scene * t + airlight * (1 - t), 0, 255).astype(np.uint8) for t in (1.0, 0.7, 0.4, 0.2)]
    values = [dark_channel(x) for x in hazy]
    assert _falls(values), values
    assert -1.0 <= values[-1] <= 0.0


def test_noise_lowers_noise_cue(scene):
    rng = np.random.default_rng(0)
    values = [
        noise(np.clip(scene + rng.normal(0, s, scene.shape), 0, 255).astype(np.uint8)) for s in (0, 5, 10, 20)
    ]
    assert _falls(values), values
    # Immerkaer recovers the sigma of the noise in luma (independent noise per channel: weights add
    # in quadrature), roughly: the scene contributes a little, clipping takes a little
    luma_sigma = 20 * np.sqrt(0.299**2 + 0.587**2 + 0.114**2)
    assert -values[-1] == pytest.approx(luma_sigma, rel=0.15)


def test_cues_resolution_independent_above_analysis_size():
    big = synthetic_scene(768, 1024, seed=1)
    half = cv2.resize(big, (512, 384), interpolation=cv2.INTER_AREA)
    for name, fn in CUES.items():
        assert fn(big) == pytest.approx(fn(half), rel=0.02, abs=1e-3), name


def test_bad_input_raises_clear_error():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        laplacian_var(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        tenengrad(np.zeros((10, 10, 3), np.float32))
