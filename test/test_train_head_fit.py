"""Head refits on a toy embedding set: the ranking refit of fc.0 and the fault head learn what is there."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="head fitting uses torch")

from hirqa_ros.evaluation.metrics import auroc_separation, srocc
from hirqa_ros.heads import FAULT_CLASSES
from hirqa_ros.training.head_fit import (
    FaultHeadConfig,
    ScoreHeadConfig,
    fault_accuracy,
    fit_fault_head,
    fit_score_head,
    flatten,
    head_scores,
)

TYPES = ["gaublur", "shake", "haze", "jpeg_camera", "colordiff"]


def toy_embeddings(views: int = 12, dim: int = 32, seed: int = 0, content_std: float = 1.0) -> np.ndarray:
    """(V, T, 6, D): a content offset per view, a direction per type whose length grows with the level, noise.
    Severity is linearly readable; the type is readable from the direction."""
    r = np.random.default_rng(seed)
    content = r.normal(0, content_std, (views, 1, 1, dim))
    dirs = r.normal(0, 1, (len(TYPES), dim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    level = np.arange(6).reshape(1, 1, 6, 1)
    noise = r.normal(0, 0.05, (views, len(TYPES), 6, dim))
    emb = content + 0.8 * level * dirs.reshape(1, len(TYPES), 1, dim) + noise
    emb[:, :, 0] = emb[:, :1, 0]  # level 0 is the same pristine view for every type
    return emb.astype(np.float32)


def _metrics(emb: np.ndarray, w: np.ndarray, b: float) -> tuple[float, float]:
    s = head_scores(emb, w, b)
    ladder = np.mean([srocc(s[v, t], -np.arange(6.0)) for v in range(s.shape[0]) for t in range(s.shape[1])])
    keep = np.r_[s[:, 0, 0], s[:, :, 1].ravel()]
    return float(ladder), float(auroc_separation(keep, s[:, :, 3:].ravel()))


def test_score_head_refit_learns_the_severity_direction():
    emb = toy_embeddings()
    w0 = np.random.default_rng(3).normal(0, 0.01, emb.shape[-1]).astype(np.float32)  # knows nothing
    before = _metrics(emb, w0, 0.0)
    w, b, log = fit_score_head(emb, w0, 0.0, cfg=ScoreHeadConfig(steps=200, pairs_per_step=20_000, l2=0.0))
    after = _metrics(emb, w, b)
    assert after[0] > 0.95 and after[1] > 0.95, (before, after, log)
    assert after[1] > before[1] + 0.2
    assert head_scores(emb, w, b).shape == emb.shape[:3]


def test_score_head_l2_keeps_the_initial_head():
    emb = toy_embeddings()
    w0 = np.random.default_rng(4).normal(0, 0.1, emb.shape[-1]).astype(np.float32)
    w, _, _ = fit_score_head(emb, w0, 0.0, cfg=ScoreHeadConfig(steps=50, pairs_per_step=5_000, l2=1e3))
    assert np.abs(w - w0).max() < 0.02


@pytest.mark.parametrize("hidden", [0, 16])
def test_fault_head_learns_the_type_directions(hidden):
    emb = toy_embeddings(views=16, content_std=0.3)
    train = flatten(emb, TYPES, np.arange(12))
    held = flatten(emb, TYPES, np.arange(12, 16))
    head = fit_fault_head(train, FaultHeadConfig(hidden=hidden, steps=150), calib=held)
    acc = fault_accuracy(head, held)
    assert acc["drop_level"] > 0.95 and acc["pristine_none"] == 1.0
    assert set(acc["per_class"]) == {"blur", "motion_blur", "haze", "compression", "other"}
    assert head.classes == FAULT_CLASSES and head.temperature > 0


def test_clean_views_join_as_none_and_keep_examples():
    from hirqa_ros.training.head_fit import with_clean

    emb = toy_embeddings(views=8, content_std=0.3)
    s = flatten(emb, TYPES, np.arange(6))
    clean = emb[6:, 0, 0] + 0.01  # two more clean views
    both = with_clean(s, clean)
    assert len(both.x) == len(s.x) + 2 and (both.level[-2:] == 0).all() and (both.type_idx[-2:] == -1).all()
    w0 = np.zeros(emb.shape[-1], np.float32)
    w, _, log = fit_score_head(emb, w0, 0.0, np.arange(6), ScoreHeadConfig(steps=30, pairs_per_step=2_000),
                               extra_keep=clean)
    assert np.isfinite(w).all() and np.isfinite(log["loss"])


def test_embedding_cache_round_trip(tmp_path):
    from hirqa_ros.evaluation.synthetic import ProtocolConfig, ProtocolScores
    from hirqa_ros.training.embeddings import load, pristine_views, save

    emb = toy_embeddings(views=2)
    cfg = ProtocolConfig(crop=64, resize_side=0, frame_sizes=((96, 64),))
    ps = ProtocolScores(TYPES, ["g"] * len(TYPES), ["a#0@96x64/64", "b#0@96x64/64"], cfg,
                        {"model": np.random.default_rng(0).random((2, len(TYPES), 6))}, {"model": emb})
    save(tmp_path / "e.npz", ps)
    back, e = load(tmp_path / "e.npz")
    assert back.types == TYPES and back.view_names == ps.view_names and back.config == cfg
    assert np.allclose(back.scores["model"], ps.scores["model"]) and np.allclose(e, emb, atol=2e-2)
    photo = (np.random.default_rng(1).random((200, 300, 3)) * 255).astype(np.uint8)
    views = pristine_views([("p", photo)], 4, 48)
    assert len(views) == 4 and all(v.shape == (48, 48, 3) for v in views)
