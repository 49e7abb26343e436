"""hirqa_ros.heads: the numpy fault head, its file format, the model-dir hook, the type -> class map."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from hirqa_ros.artifacts import ArtifactError, load_artifact, sha256_file
from hirqa_ros.heads import (
    FAULT_CLASSES,
    FAULT_HEAD_FILE,
    TYPE_CLASSES,
    FaultHead,
    fault_class_of,
    load_fault_head,
)


def _head(hidden: int = 0, dim: int = 16, seed: int = 0) -> FaultHead:
    r = np.random.default_rng(seed)
    c = len(FAULT_CLASSES)
    if hidden:
        layers = [(r.normal(size=(dim, hidden)), r.normal(size=hidden)),
                  (r.normal(size=(hidden, c)), r.normal(size=c))]
    else:
        layers = [(r.normal(size=(dim, c)), r.normal(size=c))]
    return FaultHead(layers, r.normal(size=dim), r.uniform(0.5, 2, dim), temperature=1.7)


@pytest.mark.parametrize("hidden", [0, 8])
def test_predict_is_a_calibrated_softmax_and_roundtrips(hidden, tmp_path):
    head = _head(hidden)
    x = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    p = head.predict(x)
    assert p.shape == (5, len(FAULT_CLASSES)) and np.allclose(p.sum(axis=1), 1, atol=1e-6)
    z = head.logits(x) / 1.7
    ref = np.exp(z - z.max(1, keepdims=True))
    assert np.allclose(p, ref / ref.sum(1, keepdims=True), atol=1e-6)
    top = head.top(p)
    assert len(top) == 5 and all(len(t) == 3 for t in top)
    assert [t[0][0] for t in top] == [FAULT_CLASSES[i] for i in p.argmax(1)]
    assert all(t[0][1] >= t[1][1] >= t[2][1] for t in top)
    names, conf = head.classify(x)
    assert names == [FAULT_CLASSES[i] for i in p.argmax(1)] and np.allclose(conf, p.max(1))
    path = head.save(tmp_path / FAULT_HEAD_FILE)
    again = FaultHead.load(path)
    assert again.classes == FAULT_CLASSES and again.temperature == pytest.approx(1.7)
    assert np.allclose(again.predict(x), p, atol=1e-6)


def test_bad_input_and_bad_files_say_what_is_wrong(tmp_path):
    head = _head()
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        head.predict(np.zeros((2, 15)))
    with pytest.raises(ValueError, match="outputs for"):
        FaultHead([(np.zeros((4, 3)), np.zeros(3))], np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="temperature"):
        FaultHead([(np.zeros((4, 10)), np.zeros(10))], np.zeros(4), np.ones(4), temperature=0)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a fault head"):
        FaultHead.load(junk)


def test_type_classes():
    assert fault_class_of("shake", 3) == "motion_blur" and fault_class_of("defocus", 5) == "blur"
    assert fault_class_of("jpeg_camera", 2) == "compression" and fault_class_of("haze", 0) == "none"
    assert fault_class_of("colordiff", 4) == "other"
    assert set(TYPE_CLASSES.values()) == set(FAULT_CLASSES) - {"none", "other"}


def test_model_dir_with_and_without_a_head(random_model_dir, tmp_path):
    assert load_fault_head(load_artifact(random_model_dir)) is None
    d = tmp_path / "with_head"
    shutil.copytree(random_model_dir, d)
    head = _head(dim=1024)
    head.save(d / FAULT_HEAD_FILE)
    card = yaml.safe_load((d / "model.yaml").read_text())
    card["files"]["fault_head"] = {"path": FAULT_HEAD_FILE, "sha256": sha256_file(d / FAULT_HEAD_FILE)}
    (d / "model.yaml").write_text(yaml.safe_dump(card))
    loaded = load_fault_head(load_artifact(d))
    assert loaded is not None and loaded.dim == 1024
    (d / FAULT_HEAD_FILE).write_bytes((d / FAULT_HEAD_FILE).read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_artifact(d)


def _with_head(random_model_dir, tmp_path) -> tuple:
    d = tmp_path / "with_head"
    shutil.copytree(random_model_dir, d)
    head = _head(hidden=8, dim=1024, seed=3)
    head.save(d / FAULT_HEAD_FILE)
    card = yaml.safe_load((d / "model.yaml").read_text())
    card["files"]["fault_head"] = {"path": FAULT_HEAD_FILE, "sha256": sha256_file(d / FAULT_HEAD_FILE)}
    (d / "model.yaml").write_text(yaml.safe_dump(card))
    return d, head


def test_scorer_adds_fault_probabilities_when_the_model_has_a_head(random_model_dir, tmp_path):
    from helpers_eval import synthetic_scene

    from hirqa_ros import load_scorer

    frames = [synthetic_scene(64, 96, seed=i) for i in range(3)]
    plain = load_scorer(random_model_dir, backend="onnxruntime")
    assert plain.fault_head is None and plain.infer(frames).fault_probs is None
    d, head = _with_head(random_model_dir, tmp_path)
    scorer = load_scorer(d, backend="onnxruntime")
    out = scorer.infer(frames)
    assert out.embeddings is not None and out.fault_probs.shape == (3, len(FAULT_CLASSES))
    assert np.allclose(out.fault_probs, head.predict(out.embeddings), atol=1e-6)
    assert np.allclose(out.scores, plain.score(frames), atol=1e-6)  # the head does not touch the score
    assert "fault head (10 classes)" in scorer.describe()


def test_torch_and_onnxruntime_agree_on_the_fault_class(random_model_dir, tmp_path):
    pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
    from helpers_eval import synthetic_scene

    from hirqa_ros import load_scorer

    d, _ = _with_head(random_model_dir, tmp_path)
    frames = [synthetic_scene(96, 128, seed=10 + i) for i in range(4)]
    a = load_scorer(d, backend="onnxruntime").infer(frames).fault_probs
    b = load_scorer(d, backend="torch", device="cpu").infer(frames).fault_probs
    assert np.array_equal(a.argmax(1), b.argmax(1)) and np.allclose(a, b, atol=1e-3)
