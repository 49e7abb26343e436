"""Natural-scene-statistics anchors NIQE and BRISQUE (Mittal et al.), numpy + OpenCV, higher = better.

Both start from the MSCN coefficients of luma (local mean and deviation from a 7x7 Gaussian window,
sigma 7/6, C = 1 on 0..255) and fit, at two scales (the image and its half-size copy): a generalised
Gaussian (GGD: shape, variance) to the MSCN coefficients and an asymmetric GGD (AGGD: shape, mean,
left and right variances) to the products of horizontal, vertical and both diagonal neighbours;
18 features per scale, 36 in all (BRISQUE, Mittal, Moorthy & Bovik, IEEE TIP 2012).

* ``niqe``: NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013): the 36 features of every 96 x 96
  patch, a multivariate Gaussian (MVG) fitted to them, and the distance
  ``sqrt((nu1 - nu2)^T ((S1 + S2) / 2)^+ (nu1 - nu2))`` to the pristine MVG, which is fitted on the
  sharpest patches (deviation above 0.75 x the image's sharpest patch) of pristine TRAINING photos.
  Returned as ``-distance``.
* ``brisque``: BRISQUE's 36 whole-image features; the paper maps them to opinion scores with an SVR
  trained on LIVE, which needs human opinion scores this project does not have. Variant implemented
  here (opinion-unaware): the same MVG distance as NIQE between the image's feature vector and the
  pristine MVG of whole training frames, i.e. ``sqrt((f - nu)^T S^+ (f - nu))``, returned negated.

Frames are analysed, like the classical cues, on a copy shrunk to ``ANALYSIS_SIDE`` px (longer side).
The pristine models (``hirqa_ros/data/nss_pristine.npz``) are fitted by ``fit_pristine`` on the
training photos only (``data/pristine_r3/train``); the reserved evaluation sources never take part.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from hirqa_ros.classical import ANALYSIS_SIDE, grey

PATCH = 96
SHARP_FRACTION = 0.75
PRISTINE_FILE = Path(__file__).parent / "data" / "nss_pristine.npz"

_ALPHAS = np.arange(0.2, 10.0, 0.001)
_RHO = np.array([math.gamma(1 / a) * math.gamma(3 / a) / math.gamma(2 / a) ** 2 for a in _ALPHAS])
# rho falls monotonically with alpha: the shape is read off the table by interpolation
_RHO_UP, _ALPHA_BY_RHO = _RHO[::-1].copy(), _ALPHAS[::-1].copy()
_INV_UP, _ALPHA_BY_INV = 1.0 / _RHO, _ALPHAS.copy()


def mscn(g: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a grey image (0..255)."""
    g = g.astype(np.float64)
    mu = cv2.GaussianBlur(g, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    var = cv2.GaussianBlur(g * g, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu
    return (g - mu) / (np.sqrt(np.abs(var)) + 1.0)


def local_deviation(g: np.ndarray) -> np.ndarray:
    """The local standard deviation field that MSCN divides by (NIQE's patch sharpness)."""
    g = g.astype(np.float64)
    mu = cv2.GaussianBlur(g, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(np.abs(cv2.GaussianBlur(g * g, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu))


def ggd_fit(x: np.ndarray) -> tuple[float, float]:
    """(shape alpha, variance) of a zero-mean generalised Gaussian, by moment matching."""
    x = x.ravel()
    var = float(np.mean(x * x))
    e_abs = float(np.mean(np.abs(x)))
    rho = var / max(e_abs * e_abs, 1e-12)
    return float(np.interp(rho, _RHO_UP, _ALPHA_BY_RHO)), var


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """(shape alpha, mean eta, left variance, right variance) of an asymmetric GGD (BRISQUE's fit)."""
    x = x.ravel()
    left, right = x[x < 0], x[x >= 0]
    sl = math.sqrt(float(np.mean(left * left))) if left.size else 1e-6
    sr = math.sqrt(float(np.mean(right * right))) if right.size else 1e-6
    sl, sr = max(sl, 1e-6), max(sr, 1e-6)
    gamma = sl / sr
    e_abs = float(np.mean(np.abs(x)))
    r_hat = e_abs * e_abs / max(float(np.mean(x * x)), 1e-12)
    rhat_norm = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma * gamma + 1) ** 2
    alpha = float(np.interp(rhat_norm, _INV_UP, _ALPHA_BY_INV))
    eta = (sr - sl) * math.gamma(2 / alpha) / math.gamma(1 / alpha) * math.sqrt(
        math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, eta, sl * sl, sr * sr


def _scale_features(m: np.ndarray) -> list[float]:
    feats = list(ggd_fit(m))
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = m[: m.shape[0] - dy, max(0, -dx): m.shape[1] - max(0, dx)]
        b = m[dy:, max(0, dx): m.shape[1] - max(0, -dx)]
        feats.extend(aggd_fit(a * b))
    return feats


def _half(g: np.ndarray) -> np.ndarray:
    return cv2.resize(g, (max(1, g.shape[1] // 2), max(1, g.shape[0] // 2)), interpolation=cv2.INTER_CUBIC)


def brisque_features(g: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of a grey image (two scales x [GGD 2 + 4 orientations x AGGD 4])."""
    g = g.astype(np.float64)
    return np.asarray(_scale_features(mscn(g)) + _scale_features(mscn(_half(g))))


def patch_features(g: np.ndarray, patch: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """(features (P, 36), sharpness (P,)) of the ``patch`` px tiles of a grey image (NIQE's patches;
    the second scale uses the same tiles of the half-size image). An image smaller than a patch is one
    tile of its shorter side (at least 16 px)."""
    g = g.astype(np.float64)
    patch = min(patch, min(g.shape[:2]) // 2 * 2)
    if patch < 16:
        raise ValueError(f"image too small for NIQE patches (16 px at least): {g.shape[:2]}")
    h, w = (g.shape[0] // patch) * patch, (g.shape[1] // patch) * patch
    g = g[:h, :w]
    m1, m2, dev = mscn(g), mscn(_half(g)), local_deviation(g)
    half = patch // 2
    feats, sharp = [], []
    for y in range(0, h, patch):
        for x in range(0, w, patch):
            f1 = _scale_features(m1[y : y + patch, x : x + patch])
            f2 = _scale_features(m2[y // 2 : y // 2 + half, x // 2 : x // 2 + half])
            feats.append(f1 + f2)
            sharp.append(float(dev[y : y + patch, x : x + patch].mean()))
    return np.asarray(feats), np.asarray(sharp)


def mvg_distance(nu1: np.ndarray, s1: np.ndarray, nu2: np.ndarray, s2: np.ndarray) -> float:
    """NIQE's distance between two multivariate Gaussians (pseudo-inverse of the mean covariance)."""
    d = nu1 - nu2
    return float(math.sqrt(max(0.0, float(d @ np.linalg.pinv((s1 + s2) / 2.0) @ d))))


def pristine_frames(photos_dir: str | Path, seed: int = 0) -> list[np.ndarray]:
    """Clean camera frames of the photos in ``photos_dir``: one per full-frame size per photo (seeded)."""
    from hirqa_ros.evaluation.images import load_folder
    from hirqa_ros.evaluation.synthetic import FRAME_SIZES, camera_frame

    out = []
    for i, (_, rgb) in enumerate(load_folder(photos_dir)):
        rng = np.random.default_rng([seed, i])
        out.extend(camera_frame(rgb, size, rng) for size in FRAME_SIZES)
    return out


def fit_pristine(frames: Sequence[np.ndarray], side: int = ANALYSIS_SIDE) -> dict[str, np.ndarray]:
    """Pristine MVGs of clean RGB frames: NIQE's (sharp patches) and the BRISQUE variant's (whole frames)."""
    patches, whole = [], []
    for rgb in frames:
        g = grey(rgb, side)
        f, s = patch_features(g)
        patches.append(f[s > SHARP_FRACTION * s.max()] if s.max() > 0 else f[:0])
        whole.append(brisque_features(g))
    p, w = np.concatenate(patches), np.asarray(whole)
    return {"niqe_mean": p.mean(0), "niqe_cov": np.cov(p, rowvar=False), "niqe_patches": np.int64(len(p)),
            "brisque_mean": w.mean(0), "brisque_cov": np.cov(w, rowvar=False),
            "brisque_frames": np.int64(len(w))}


@lru_cache(maxsize=4)
def load_pristine(path: str = str(PRISTINE_FILE)) -> dict[str, np.ndarray]:
    """The fitted pristine model (FileNotFoundError with the command that makes it)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no NSS pristine model at {path}: fit it with "
                                "`hirqa eval --fit-nss data/pristine_r3/train`")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def niqe(rgb: np.ndarray, model: dict[str, np.ndarray] | None = None, side: int = ANALYSIS_SIDE) -> float:
    """Minus NIQE (higher = better; NIQE itself is 0 for a frame with pristine statistics)."""
    m = model or load_pristine()
    f, _ = patch_features(grey(rgb, side))
    f = f[np.all(np.isfinite(f), axis=1)]
    cov = np.cov(f, rowvar=False) if len(f) > 1 else np.zeros_like(m["niqe_cov"])
    return -mvg_distance(m["niqe_mean"], m["niqe_cov"], f.mean(0), cov)


def brisque(rgb: np.ndarray, model: dict[str, np.ndarray] | None = None, side: int = ANALYSIS_SIDE) -> float:
    """Minus the opinion-unaware BRISQUE distance (module docstring; higher = better)."""
    m = model or load_pristine()
    f = brisque_features(grey(rgb, side))
    return -mvg_distance(m["brisque_mean"], m["brisque_cov"], f, m["brisque_cov"])


ANCHORS: dict[str, Callable[[np.ndarray], float]] = {"niqe": niqe, "brisque": brisque}


def anchor_score_fn(name: str, model: dict[str, np.ndarray] | None = None):
    """Batch form: ``score_fn(list of rgb uint8) -> float64 array`` of ``niqe`` or ``brisque``."""
    fn = ANCHORS[name]
    m = model or load_pristine()

    def score_fn(frames: Sequence[np.ndarray]) -> np.ndarray:
        return np.array([fn(f, m) for f in frames], dtype=np.float64)

    score_fn.__name__ = name
    return score_fn
