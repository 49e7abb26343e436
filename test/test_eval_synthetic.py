"""The synthetic protocol: structure, value ranges, determinism and aggregation, on tiny generated images."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers_eval import synthetic_scene

from hirqa_ros.classical import cue_score_fn
from hirqa_ros.evaluation.calibration import calibrate_protocol, keep_drop_scores
from hirqa_ros.evaluation.synthetic import (
    LEVELS,
    ProtocolConfig,
    ProtocolScores,
    build_protocol,
    evaluate_model,
    format_tables,
    make_views,
    resolve_types,
    score_protocol,
    summarize,
)

pytest.importorskip("torch", reason="the distortion library runs on torch")

CONFIG = ProtocolConfig(crop=64, resize_side=96, batch_size=7)


def mean_luma(frames):
    """A score_fn monotone in a true statistic (mean brightness)."""
    return np.array([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).mean() for f in frames])


@pytest.fixture(scope="module")
def images():
    return [("a.png", synthetic_scene(120, 160, seed=1)), ("b.png", synthetic_scene(150, 110, seed=2))]


def test_resolve_types_expands_groups_and_rejects_unknown():
    assert resolve_types(["blur", "haze", "gaublur"]) == ["gaublur", "lensblur", "motionblur", "haze"]
    from hirqa_ros.degradations import DEFAULT_TYPES, GROUPS

    assert resolve_types(None) == list(DEFAULT_TYPES)  # the no-content fades are opt-in
    assert resolve_types(["no_content"]) == GROUPS["no_content"]
    with pytest.raises(ValueError, match="unknown distortion type or group 'fog'"):
        resolve_types(["fog"])


def test_views_are_deterministic_crops(images):
    v1, v2 = make_views(images, CONFIG), make_views(images, CONFIG)
    assert [n for n, _ in v1] == ["a.png#0", "b.png#0"]
    assert all(a.shape == (64, 64, 3) and np.array_equal(a, b) for (_, a), (_, b) in zip(v1, v2))
    other = make_views(images, ProtocolConfig(crop=64, resize_side=96, seed=5))
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(v1, other))
    whole = make_views(images, ProtocolConfig(crop=0, resize_side=96, crops_per_image=3))
    assert [v.shape for _, v in whole] == [(96, 128, 3), (131, 96, 3)]


def test_protocol_structure_ranges_and_determinism(images):
    fns = {"tenengrad": cue_score_fn("tenengrad"), "luma": mean_luma}
    types = ["gaublur", "darken", "whitenoise"]
    ps = score_protocol(fns, images, types=types, config=CONFIG)
    assert ps.types == types and ps.groups == ["blur", "brightness_change", "noise"]
    for arr in ps.scores.values():
        assert arr.shape == (2, 3, len(LEVELS)) and np.all(np.isfinite(arr))
        assert np.all(arr[:, :, 0] == arr[:, :1, 0])  # one pristine score per view, shared by every type
    again = score_protocol(fns, images, types=types, config=CONFIG)
    for name in fns:
        np.testing.assert_array_equal(ps.scores[name], again.scores[name])

    s = summarize(ps, "tenengrad")
    assert s["n_views"] == 2 and s["n_types"] == 3
    assert set(s["per_group"]) == {"blur", "brightness_change", "noise"}
    for block in [s["pooled"], *s["per_group"].values(), *s["per_type"].values()]:
        assert -1.0 <= block["ladder_srocc"] <= 1.0 and -1.0 <= block["srocc"] <= 1.0
        assert 0.0 <= block["auroc"] <= 1.0
    # real cues on real distortions: gradient energy falls with blur (ARNIQA's level-1 blur, sigma 0.1,
    # may round to the pristine image: a tie), brightness falls with darkening
    assert np.all(np.diff(ps.scores["tenengrad"][:, 0], axis=1) <= 0)
    assert s["per_type"]["gaublur"]["ladder_srocc"] > 0.95
    assert s["per_type"]["gaublur"]["auroc"] > 0.75  # pooled across content: not perfect
    luma = summarize(ps, "luma")
    assert luma["per_type"]["darken"]["ladder_srocc"] == pytest.approx(1.0)
    by_level = luma["per_type"]["darken"]["mean_score_by_level"]
    assert by_level[0] > by_level[5]
    table = format_tables({"tenengrad": s, "luma": luma})
    for word in ("tenengrad", "luma", "gaublur", "[noise]", "POOLED", "AUROC", "ladder SROCC"):
        assert word in table


def test_orientation_reversed_score_gives_reversed_metrics(images):
    ps = score_protocol({"luma": mean_luma, "neg": lambda f: -mean_luma(f)}, images, ["darken"], CONFIG)
    pos, neg = summarize(ps, "luma")["per_type"]["darken"], summarize(ps, "neg")["per_type"]["darken"]
    assert neg["ladder_srocc"] == pytest.approx(-pos["ladder_srocc"])
    assert neg["auroc"] == pytest.approx(1.0 - pos["auroc"])


def test_summary_aggregation_on_known_scores():
    # 2 views x 2 types: type "p" perfectly ordered, type "r" reversed; view offsets small
    lv = np.asarray(LEVELS, float)
    arr = np.zeros((2, 2, 6))
    for v, off in enumerate((0.0, 0.01)):
        arr[v, 0] = 1.0 - lv / 10 + off
        arr[v, 1] = 1.0 + lv / 10 + off
        arr[v, 1, 0] = arr[v, 0, 0]
    ps = ProtocolScores(["p", "r"], ["g1", "g2"], ["x", "y"], CONFIG, {"f": arr})
    s = summarize(ps, "f")
    assert s["per_type"]["p"]["ladder_srocc"] == pytest.approx(1.0)
    assert s["per_type"]["r"]["ladder_srocc"] == pytest.approx(-1.0)
    assert s["per_type"]["p"]["auroc"] == 1.0 and s["per_type"]["r"]["auroc"] == 0.0
    assert s["pooled"]["ladder_srocc"] == pytest.approx(0.0)
    # pooled AUROC: keep = 2 pristine + 4 level-1 scores, drop = 12; hand count of "keep > drop" pairs
    keep, drop = keep_drop_scores(ps, "f")
    assert keep.size == 6 and drop.size == 12
    expected = np.mean([(k > d) + 0.5 * (k == d) for k in keep for d in drop])
    assert s["pooled"]["auroc"] == pytest.approx(expected)
    cal = calibrate_protocol(ps, "f")
    assert cal.n_keep == 6 and cal.error <= cal.warn


def test_evaluate_model_from_folder(tmp_path, images):
    for name, rgb in images:
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    out = evaluate_model(cue_score_fn("laplacian_var"), tmp_path, types=["blur"], crop=64, resize_side=96)
    assert out["n_views"] == 2 and out["n_types"] == 3  # the broken file is skipped
    assert set(out["pooled"]) == {"ladder_srocc", "srocc", "auroc"}
    assert out["pooled"]["auroc"] > 0.5  # Laplacian variance does separate blur
    out1 = evaluate_model(mean_luma, [rgb for _, rgb in images], types=["darken"], crop=64, max_images=1)
    assert out1["n_views"] == 1


def test_bad_score_fn_is_reported(images):
    with pytest.raises(ValueError, match="returned 1 scores"):
        score_protocol({"bad": lambda f: np.zeros(1)}, images, ["darken"], CONFIG)
    with pytest.raises(ValueError, match="NaN"):
        score_protocol({"nan": lambda f: np.full(len(f), np.nan)}, images, ["darken"], CONFIG)
    with pytest.raises(ValueError, match="no pristine images"):
        score_protocol({"luma": mean_luma}, [], ["darken"], CONFIG)


def test_built_protocol_matches_streaming_run(images):
    proto = build_protocol(images, types=["noise", "darken"], config=CONFIG)
    assert len(proto.jobs) == 2 * (1 + 5 * 5) and proto.types[-1] == "darken"
    streamed = score_protocol({"luma": mean_luma}, images, ["noise", "darken"], CONFIG)
    np.testing.assert_array_equal(proto.score({"luma": mean_luma}).scores["luma"], streamed.scores["luma"])
    first, second = proto.evaluate(mean_luma), proto.evaluate(mean_luma)  # reusable, same numbers
    assert first == second == summarize(streamed, "luma") | {"name": "model"}


def test_evaluate_model_reuses_rendered_protocol(images, monkeypatch):
    import hirqa_ros.evaluation.synthetic as syn

    calls = []
    real_jobs = syn._jobs
    monkeypatch.setattr(syn, "_jobs", lambda *a: calls.append(1) or real_jobs(*a))
    monkeypatch.setattr(syn, "_cache", {})
    first = evaluate_model(mean_luma, images, types=["darken"], crop=64, resize_side=96)
    second = evaluate_model(mean_luma, images, types=["darken"], crop=64, resize_side=96)
    assert first == second and len(calls) == 1  # rendered once
    changed = [(n, a.copy()) for n, a in images]
    changed[0][1][0, 0] ^= 1  # one pixel differs: a different protocol
    evaluate_model(mean_luma, changed, types=["darken"], crop=64, resize_side=96)
    evaluate_model(mean_luma, images, types=["darken"], crop=64, resize_side=96, cache=False)
    assert len(calls) == 3
