"""Head refits on a toy embedding set: the ranking refit of fc.0 and the fault head learn what is there."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="head fitting uses torch")

from hirqa_ros.evaluation.metrics import auroc_separation, srocc
from hirqa_ros.heads import FAULT_CLASSES
from hirqa_ros.training.heads.fit import (
    FaultHeadConfig,
    ScoreHeadConfig,
    cv_fault_head,
    cv_score_head,
    fault_accuracy,
    fit_fault_head,
    fit_score_head,
    flatten,
    head_scale,
    head_scores,
    match_scale,
    scale_stats,
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


def test_match_scale_puts_a_refit_on_the_shipped_scale_without_reordering():
    emb = toy_embeddings()
    r = np.random.default_rng(6)
    w0 = r.normal(0, 0.01, emb.shape[-1]).astype(np.float32)
    w, b, _ = fit_score_head(emb, w0, 0.3, cfg=ScoreHeadConfig(steps=100, pairs_per_step=5_000, l2=0.0))
    ref_w, ref_b = (0.15 * w).astype(np.float32), 0.5  # a compressed head: a narrower clean-to-drop gap
    ws, bs, info = match_scale(emb, w, b, head_scale(emb, ref_w, ref_b))
    before, ref = scale_stats(emb @ w + b), scale_stats(emb @ ref_w + ref_b)
    after = scale_stats(emb @ ws + bs)
    assert before[1] > 2 * ref[1]  # the refit's unit differed
    np.testing.assert_allclose(after, ref, atol=1e-4)
    assert 0 < info["a"] < 1 and info["after"]["gap"] == pytest.approx(ref[1], abs=1e-4)
    s, t = head_scores(emb, w, b).ravel(), head_scores(emb, ws, bs).ravel()
    assert srocc(s, t) > 0.999999  # the same order


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


def test_fault_head_keep_none_calls_level_one_frames_none():
    from hirqa_ros.training.heads.fit import keep_as_none

    emb = toy_embeddings(views=16, content_std=0.3)
    train, held = flatten(emb, TYPES, np.arange(12)), flatten(emb, TYPES, np.arange(12, 16))
    assert (keep_as_none(train).level == 0).sum() == (train.level <= 1).sum()
    none = FAULT_CLASSES.index("none")
    level1 = held.x[held.level == 1]
    share = {}
    for keep in (False, True):
        head = fit_fault_head(train, FaultHeadConfig(hidden=0, steps=150, min_level=3, keep_none=keep))
        share[keep] = float(head.predict(level1)[:, none].mean())
        assert fault_accuracy(head, held)["drop_level"] > 0.9  # the faults are still named
    assert share[True] > share[False] + 0.05, share  # surer that they are fit to use


def _toy_protocol(emb: np.ndarray):
    from hirqa_ros.evaluation.synthetic import ProtocolConfig, ProtocolScores

    names = [f"photo{v // 2}#{v % 2}@96x64" for v in range(emb.shape[0])]  # two views per photo
    return ProtocolScores(TYPES, ["g"] * len(TYPES), names, ProtocolConfig(crop=0, resize_side=0))


def test_cross_validation_scores_held_out_photos():
    """Photo-fold CV: a refit from a head that knows nothing beats it on the held-out folds; the
    out-of-fold fault predictions cover every view once and are right on the toy set."""
    from hirqa_ros.training.heads.fit import photo_folds

    emb = toy_embeddings(views=10, content_std=0.3)
    ps = _toy_protocol(emb)
    folds = photo_folds(ps.view_names, 5)
    assert [len(set(folds[v] for v in (2 * i, 2 * i + 1))) for i in range(5)] == [1] * 5  # photos stay whole
    w0 = np.random.default_rng(3).normal(0, 0.01, emb.shape[-1]).astype(np.float32)
    idx = list(range(len(TYPES)))
    base = cv_score_head(ps, emb, idx, folds, w0, 0.0, None)
    cfg = ScoreHeadConfig(steps=100, pairs_per_step=5_000, l2=0.0)
    refit = cv_score_head(ps, emb, idx, folds, w0, 0.0, cfg)
    assert refit["auroc"] > 0.95 and refit["ladder_srocc"] > 0.95 and refit["auroc"] > base["auroc"] + 0.2
    acc, z, s = cv_fault_head(ps, emb, folds, FaultHeadConfig(hidden=0, steps=150))
    every = flatten(emb, TYPES)
    assert len(s.x) == len(z) == len(every.x) and sorted(s.view) == sorted(every.view)
    assert acc["drop_level"] > 0.95


def test_clean_views_join_as_none_and_keep_examples():
    from hirqa_ros.training.heads.fit import with_clean

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
    from hirqa_ros.training.heads.embeddings import load, load_many, pristine_views, save

    emb = toy_embeddings(views=2)
    cfg = ProtocolConfig(crop=64, resize_side=0, frame_sizes=((96, 64),))
    ps = ProtocolScores(TYPES, ["g"] * len(TYPES), ["a#0@96x64/64", "b#0@96x64/64"], cfg,
                        {"model": np.random.default_rng(0).random((2, len(TYPES), 6))}, {"model": emb})
    save(tmp_path / "e.npz", ps)
    back, e = load(tmp_path / "e.npz")
    assert back.types == TYPES and back.view_names == ps.view_names and back.config == cfg
    assert np.allclose(back.scores["model"], ps.scores["model"]) and np.allclose(e, emb, atol=2e-2)
    ps2 = ProtocolScores(TYPES, ["g"] * len(TYPES), ["c#0@96x64/64"], cfg,
                         {"model": np.zeros((1, len(TYPES), 6))}, {"model": emb[:1]})
    save(tmp_path / "f.npz", ps2)
    joined, ej = load_many([tmp_path / "e.npz", tmp_path / "f.npz"])
    assert joined.view_names == [*ps.view_names, "c#0@96x64/64"] and ej.shape == (3, *emb.shape[1:])
    assert joined.scores["model"].shape == (3, len(TYPES), 6) and (joined.scores["model"][2] == 0).all()
    ps2.types = TYPES[::-1]
    save(tmp_path / "g.npz", ps2)
    with pytest.raises(ValueError, match="different types"):
        load_many([tmp_path / "e.npz", tmp_path / "g.npz"])
    photo = (np.random.default_rng(1).random((200, 300, 3)) * 255).astype(np.uint8)
    views = pristine_views([("p", photo)], 4, 48)
    assert len(views) == 4 and all(v.shape == (48, 48, 3) for v in views)
    whole = pristine_views([("p", photo)], 3, 0)
    assert sorted(v.shape[:2] for v in whole) == [(480, 640), (720, 1280), (1080, 1920)]


@pytest.mark.slow
def test_fit_and_ship_end_to_end(tmp_path, random_model_dir):
    """head_fit's driver (photo-fold CV, both heads, report) and head_ship on a toy 1024-d set and the
    random-weights model: the fault head ships with its sha256, a stale int8 file is removed, the card
    names the training data and its description is not repeated when shipping twice."""
    import json

    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.cli.main import main
    from hirqa_ros.evaluation.synthetic import ProtocolConfig, ProtocolScores
    from hirqa_ros.training.heads import select
    from hirqa_ros.training.heads.embeddings import save
    from hirqa_ros.training.release.heads import release_heads

    sd = load_artifact(random_model_dir).state_dict()
    w0, b0 = sd["fc.0.weight"].float().numpy().reshape(-1), float(sd["fc.0.bias"].float().numpy()[0])
    cfg = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((96, 64),))
    physical = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((96, 64),), noise_floor=1.5)
    groups = ["blur", "motion", "camera", "jpeg", "color_distortion"]
    shards = (("train", 10, 0), ("val", 4, 1), ("windows", 10, 2), ("val_plain", 4, 3), ("valb", 2, 4),
              ("valb_plain", 2, 5), ("val_topic", 4, 6), ("valb_topic", 2, 7))
    for name, views, seed in shards:
        emb = toy_embeddings(views=views, dim=1024, seed=seed, content_std=0.3)
        photo = name.split("_")[0] if name != "windows" else "train"
        size = "72x48" if name.endswith("topic") else "96x64"
        names = [f"{photo}{v}.jpg#0@{size}" for v in range(views)]
        ps = ProtocolScores(TYPES, groups, names, physical if name in ("val", "valb") else cfg,
                            {"model": head_scores(emb, w0, b0)}, {"model": emb})
        save(tmp_path / f"{name}.npz", ps)
    heads = tmp_path / "heads"
    assert main(["heads", "fit", "--train", str(tmp_path / "train.npz"),
                 "--val", str(tmp_path / "val.npz"), str(tmp_path / "valb.npz"),
                 "--model", str(random_model_dir), "--out", str(heads), "--folds", "2",
                 "--extra-fault-train", str(tmp_path / "windows.npz"),
                 "--val-plain", str(tmp_path / "val_plain.npz"), str(tmp_path / "valb_plain.npz"),
                 "--val-topic", str(tmp_path / "val_topic.npz"), str(tmp_path / "valb_topic.npz")]) == 0
    report = json.loads((heads / "report.json").read_text())
    assert report["val_new"]["n_views"] == 6  # the two validation shards are joined
    assert report["gate"]["rule"].startswith("physical order") and isinstance(report["gate"]["passes"], bool)
    both = report["side_by_side"]
    assert set(both) == {"val", "val_plain", "val_topic"} and set(both["val"]) == {"candidate", "shipped"}
    assert 0 <= both["val_plain"]["candidate"]["decisions"]["drop_recall"] <= 1
    assert report["cv_folds"] == 2 and len(report["fault_candidates"]) == len(select.FAULT_GRID)
    assert "10 views: whole 96x64 frames" in report["train_data"]
    assert "10 views" in report["fault_extra_train"]
    out = tmp_path / "shipped"
    out.mkdir()
    (out / "model.int8.onnx").write_bytes(b"stale")
    release_heads(heads, str(random_model_dir), out, "test", keep_score_head=True)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"images": [
        {"package": "pkg-a", "split": "train", "licence": {"id": "GPL-2+"}},
        {"package": "pkg-a", "split": "val", "licence": {"id": "CC0-1.0"}},
        {"package": "pkg-b", "split": "train", "licence": {"id": "GPL-2+"}}]}))
    release_heads(heads, str(out), out, "test", keep_score_head=True, manifest=manifest)
    card_md = (out / "MODEL_CARD.md").read_text()
    assert "2 training photos" in card_md and "| pkg-a | 1 | 1 | GPL-2+; CC0-1.0 |" in card_md
    art = load_artifact(out)
    assert art.file("fault_head") is not None and not (out / "model.int8.onnx").exists()
    assert art.card["description"].count("fault-class head") == 1
    assert "10 views" in art.card["lineage"][-1]["data"]


def test_physical_order_gate_needs_every_measure_and_the_noise_free_twin():
    from hirqa_ros.training.release.gate import passes_physical

    def summ(a, lad, s):
        return {"pooled": {"auroc": a, "ladder_srocc": lad, "srocc": s}}

    better, base = summ(0.90, 0.91, 0.60), summ(0.85, 0.90, 0.55)
    assert passes_physical((better, base), (summ(0.88, 0.90, 0.62), summ(0.88, 0.90, 0.62))) == (True, [])
    ok, fails = passes_physical((summ(0.90, 0.89, 0.60), base), (better, base))
    assert not ok and fails == ["physical order: ladder_srocc 0.8900 is not above 0.9000"]
    ok, fails = passes_physical((better, base), (summ(0.87, 0.95, 0.7), summ(0.88, 0.90, 0.62)))
    assert not ok and fails == ["noise-free: auroc 0.8700 is below 0.8800"]
    assert passes_physical((better, base), None) == (False, ["noise-free: no evaluation given"])
    worse_topic = (summ(0.80, 0.91, 0.61), summ(0.83, 0.90, 0.60))
    ok, fails = passes_physical((better, base), (better, base), worse_topic)
    assert not ok and fails == ["compressed topic: auroc 0.8000 is below 0.8300"]
    assert passes_physical((better, base), (better, base), (better, base)) == (True, [])


def test_scale_from_another_models_scores_on_training_frames(tmp_path):
    """`--scale-from`: another model's stored scores on a prefix of a training run's frames set the unit
    (median clean score, clean-to-drop gap) on exactly those rows; frames of another protocol are refused."""
    from hirqa_ros.evaluation.synthetic import ProtocolConfig, ProtocolScores
    from hirqa_ros.training.heads.embeddings import load_many, save
    from hirqa_ros.training.heads.fit import score_scale
    from hirqa_ros.training.heads.select import scale_reference

    cfg = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((96, 64),), seed=101)
    groups = ["blur", "motion", "camera", "jpeg", "color_distortion"]
    emb = toy_embeddings(views=10, dim=32, seed=3)
    names = [f"p{v:02d}.jpg#0@96x64" for v in range(10)]
    w0 = np.random.default_rng(2).normal(0, 0.01, 32).astype(np.float32)
    w, b, _ = fit_score_head(emb, w0, 0.3, cfg=ScoreHeadConfig(steps=100, pairs_per_step=5_000, l2=0.0))
    scores = {"model": head_scores(emb, w, b)}
    save(tmp_path / "train.npz", ProtocolScores(TYPES, groups, names, cfg, scores, {"model": emb}))
    other = {"model": head_scores(emb[:4], 0.2 * w, 0.4)}  # another model, a narrower unit, first 4 photos
    save(tmp_path / "ref.npz", ProtocolScores(TYPES, groups, names[:4], cfg, other, {"model": emb[:4]}))
    ps_tr, emb_tr = load_many([tmp_path / "train.npz"])
    rows, target, whose = scale_reference([str(tmp_path / "train.npz")], ps_tr, [str(tmp_path / "ref.npz")])
    assert rows.tolist() == [0, 1, 2, 3] and "ref.npz" in whose
    assert target == pytest.approx(score_scale(other["model"]))
    assert target[1] < 0.5 * scale_stats(emb @ w + b)[1]  # the reference's unit is narrower
    ws, bs, _ = match_scale(emb_tr[rows], w, b, target)
    np.testing.assert_allclose(scale_stats(emb[:4].astype(np.float64) @ ws + bs), target, atol=2e-3)
    moved = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((96, 64),), seed=7)  # other noise and crops
    save(tmp_path / "moved.npz", ProtocolScores(TYPES, groups, names[:4], moved, other, {"model": emb[:4]}))
    with pytest.raises(ValueError, match="--scale-from must be embed runs of --train frames"):
        scale_reference([str(tmp_path / "train.npz")], ps_tr, [str(tmp_path / "moved.npz")])
