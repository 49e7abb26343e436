"""The loader reads normalisation from the model card (the authors' values when the card has none)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from helpers_bag import frames

from hirqa_ros.artifacts import CARD_FILE, ArtifactError, load_artifact
from hirqa_ros.preprocess import MEAN, STD, Normalisation, normalize


def _with_card(src, dst, **changes):
    shutil.copytree(src, dst)
    card = yaml.safe_load((dst / CARD_FILE).read_text())
    card.update(changes)
    (dst / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))
    return dst


def test_card_normalisation_is_used_by_the_scorer(random_model_dir, tmp_path):
    import torch

    from hirqa_ros import load_scorer
    from hirqa_ros.backends import BackendUnavailable
    from hirqa_ros.export.model_dir import refresh_model_dir

    other = Normalisation((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    d = _with_card(random_model_dir, tmp_path / "m", normalisation={
        "colour": "RGB", "range": [0, 1], "mean": list(other.mean), "std": list(other.std)})
    art = load_artifact(d)
    assert art.normalisation == other
    img = frames(1, 64, 48)[0]
    # model.onnx normalises inside the graph: a card edited after the export is refused with the fix
    with pytest.raises(BackendUnavailable, match="--refresh"):
        load_scorer(d, backend="onnxruntime")
    refresh_model_dir(d)
    with torch.no_grad():  # the float entry point of the same weights on host-normalised input
        want = float(art.torch_model()(torch.from_numpy(normalize([img], other)))[0])
    for backend, device in (("onnxruntime", None), ("torch", "cpu")):
        got = load_scorer(d, backend=backend, device=device).score([img])[0]
        assert got == pytest.approx(want, abs=1e-5), backend
    default = load_scorer(random_model_dir, backend="onnxruntime").score([img])[0]
    assert abs(float(default) - want) > 1e-6  # the statistics matter


def test_missing_normalisation_means_the_authors_values(random_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(random_model_dir, d)
    card = yaml.safe_load((d / CARD_FILE).read_text())
    card.pop("normalisation", None)
    (d / CARD_FILE).write_text(yaml.safe_dump(card))
    assert load_artifact(d).normalisation == Normalisation(MEAN, STD)


@pytest.mark.parametrize("norm,match", [
    ({"colour": "BGR"}, "not supported"),
    ({"mean": [0.5, 0.5]}, "3 means"),
    ({"std": [0.2, 0.0, 0.2]}, "positive"),
    ({"mean": ["a", 1, 2]}, "bad normalisation"),
])
def test_bad_normalisation_is_refused_clearly(random_model_dir, tmp_path, norm, match):
    art = load_artifact(_with_card(random_model_dir, tmp_path / "m", normalisation=norm))
    with pytest.raises(ArtifactError, match=match):
        _ = art.normalisation


def test_normalize_with_the_default_is_unchanged():
    img = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    ref = (img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 - np.reshape(MEAN, (1, 3, 1, 1))) \
        / np.reshape(STD, (1, 3, 1, 1))
    np.testing.assert_allclose(normalize([img]), ref, atol=1e-5)
