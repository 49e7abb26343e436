"""NIQE and BRISQUE (hirqa_ros.nss): the distribution fits recover known shapes, both anchors fall along
blur and noise ladders, the pristine model fits, saves and loads, `hirqa eval` puts them beside the cues."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from helpers_eval import synthetic_scene

from hirqa_ros import nss


def _falls(values: list[float]) -> bool:
    return all(a > b for a, b in itertools.pairwise(values))


def natural(h: int, w: int, seed: int) -> np.ndarray:
    """A procedural 'photo' with natural-image statistics: 1/f (pink) colour texture over shapes."""
    r = np.random.default_rng(seed)
    f = np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2
    f[0, 0] = 1.0
    tex = np.stack([np.real(np.fft.ifft2((r.normal(size=(h, w)) + 1j * r.normal(size=(h, w))) / f**0.5))
                    for _ in range(3)], axis=-1)
    x = (tex - tex.mean()) / tex.std() * 40 + synthetic_scene(h, w, seed).astype(np.float64) * 0.6 + 50
    return np.clip(x, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    return nss.fit_pristine([natural(480, 640, s) for s in range(8)])


def test_fits_recover_known_shapes():
    r = np.random.default_rng(0)
    alpha, var = nss.ggd_fit(r.normal(0, 2.0, 200_000))
    assert alpha == pytest.approx(2.0, abs=0.05) and var == pytest.approx(4.0, rel=0.02)
    assert nss.ggd_fit(r.laplace(0, 1.0, 200_000))[0] == pytest.approx(1.0, abs=0.05)
    a, eta, sl, sr = nss.aggd_fit(r.normal(0, 1.0, 200_000))
    assert a == pytest.approx(2.0, abs=0.1) and abs(eta) < 0.02 and sl == pytest.approx(sr, rel=0.03)
    x = r.normal(0, 1.0, 200_000)
    x[x > 0] *= 3.0  # wider on the right: positive mean, larger right variance
    _, eta, sl, sr = nss.aggd_fit(x)
    assert eta > 0.5 and sr > 5 * sl


def test_feature_shapes_and_finite_on_flat_frames():
    g = nss.grey(synthetic_scene(240, 320, seed=1))
    assert nss.brisque_features(g).shape == (36,)
    f, sharp = nss.patch_features(g)
    assert f.shape == (6, 36) and sharp.shape == (6,)  # 3 x 2 tiles of 96 px in 320 x 240
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert np.isfinite(nss.brisque_features(nss.grey(flat))).all()
    assert nss.patch_features(np.zeros((50, 70)))[0].shape == (1, 36)  # one 50 px tile
    with pytest.raises(ValueError, match="too small"):
        nss.patch_features(np.zeros((12, 50)))


@pytest.mark.parametrize("name", ["niqe", "brisque"])
def test_anchors_fall_along_blur_and_noise_ladders(model, name):
    fn = nss.anchor_score_fn(name, model)
    scene = natural(480, 640, seed=11)  # not one of the pristine frames
    blur = fn([scene] + [cv2.GaussianBlur(scene, (0, 0), s) for s in (1.0, 2.0, 4.0)])
    assert _falls(list(blur)), blur
    r = np.random.default_rng(2)
    noisy = [np.clip(scene + r.normal(0, s, scene.shape), 0, 255).astype(np.uint8) for s in (5, 15, 40)]
    ladder = list(fn([scene, *noisy]))
    assert _falls(ladder), ladder


def test_pristine_model_roundtrip_and_cli(tmp_path, model):
    from hirqa_ros.cli.main import main

    assert model["niqe_mean"].shape == (36,) and model["niqe_cov"].shape == (36, 36)
    assert 0 < model["niqe_patches"] and model["brisque_frames"] == 8
    photos = tmp_path / "train"
    photos.mkdir()
    for s in range(3):
        cv2.imwrite(str(photos / f"p{s}.png"), synthetic_scene(600, 900, seed=s))
    out = tmp_path / "nss.npz"
    assert main(["eval", "--fit-nss", str(photos), "--nss-model", str(out)]) == 0
    fitted = nss.load_pristine(str(out))
    assert fitted["brisque_frames"] == 9  # 3 photos x 3 frame sizes
    assert np.isfinite(nss.niqe(synthetic_scene(480, 640, seed=5), fitted))
    assert main(["eval", "--fit-nss", str(tmp_path / "missing"), "--nss-model", str(out)]) == 2
    with pytest.raises(FileNotFoundError, match="--fit-nss"):
        nss.load_pristine(str(tmp_path / "none.npz"))


def test_packaged_model_is_fitted_on_training_photos():
    m = nss.load_pristine()
    assert m["niqe_mean"].shape == (36,) and m["brisque_frames"] >= 100
    assert np.isfinite(nss.niqe(synthetic_scene(480, 640, seed=3)))


def test_eval_puts_the_anchors_beside_the_cues(tmp_path, model):
    import json

    from hirqa_ros.cli.main import main

    d = tmp_path / "val"
    d.mkdir()
    cv2.imwrite(str(d / "img0.png"), natural(300, 400, seed=7))
    np.savez(tmp_path / "nss.npz", **model)
    out = tmp_path / "r.json"
    rc = main(["eval", "--no-model", "--images", str(d), "--full-frame", "--frame-sizes", "256x192",
               "--types", "gaublur", "--nss-model", str(tmp_path / "nss.npz"), "--json", str(out),
               "--no-progress"])
    assert rc == 0
    summ = json.loads(out.read_text())["synthetic"]["summaries"]
    assert {"niqe", "brisque", "laplacian_var"} <= set(summ)
    for name in ("niqe", "brisque"):
        by_level = summ[name]["per_type"]["gaublur"]["mean_score_by_level"]
        assert by_level[5] < by_level[3] < by_level[0], (name, by_level)
