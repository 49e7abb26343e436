"""Model-card validation: every bad card is refused by load_artifact, before anything is loaded or scored."""
from __future__ import annotations

import shutil

import pytest
import yaml

from hirqa_ros import artifacts
from hirqa_ros.artifacts import ArtifactError, load_artifact


@pytest.fixture
def model_copy(random_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(random_model_dir, d)
    return d


def _edit(d, change):
    p = d / "model.yaml"
    card = yaml.safe_load(p.read_text())
    change(card)
    p.write_text(yaml.safe_dump(card))


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda c: c.update(format=99), "format 99 is not supported"),
        (lambda c: c.pop("format"), "format None is not supported"),
        (lambda c: c.update(variant="resnet101"), "unknown variant 'resnet101'"),
        (lambda c: c.update(input_policy="tiles:3"), "bad input policy"),
        (lambda c: c["thresholds"].update(warn=float("nan")), "finite"),
        (lambda c: c["thresholds"].update(warn=1.5), "bad thresholds"),
        (lambda c: c["thresholds"].update(warn=0.2, error=0.6), "bad thresholds"),
        (lambda c: c["thresholds"].update(error="low"), "numbers"),
        (lambda c: c.pop("files"), "no 'files' section"),
        (lambda c: c.update(files={"extra": {"path": "x", "sha256": "0" * 64}}), "neither 'weights' nor"),
        (lambda c: c["files"]["weights"].pop("sha256"), "files.weights has no valid sha256"),
        (lambda c: c["files"]["onnx"].update(sha256="abc"), "files.onnx has no valid sha256"),
        (lambda c: c["files"]["onnx"].update(path="../../etc/passwd"), "inside the model directory"),
    ],
)
def test_bad_model_card_is_refused_before_loading(model_copy, change, match):
    _edit(model_copy, change)
    with pytest.raises(ArtifactError, match=match):
        load_artifact(model_copy)


def test_corrupted_weights_without_sha256_are_refused(model_copy):
    """Removing the sha256 keys no longer lets a corrupted file load silently."""
    _edit(model_copy, lambda c: [e.pop("sha256") for e in c["files"].values()])
    (model_copy / "weights.pth").write_bytes(b"corrupt")
    with pytest.raises(ArtifactError, match="no valid sha256"):
        load_artifact(model_copy)


def test_model_path_that_is_a_file_or_a_device_says_so(tmp_path, model_copy):
    jpg = tmp_path / "file.jpg"
    jpg.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(ArtifactError, match="is not a model directory"):
        load_artifact(jpg)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nothing")
    (model_copy / "model.onnx").unlink()
    (model_copy / "model.onnx").symlink_to("/dev/zero")
    with pytest.raises(ArtifactError, match="not a regular file"):
        load_artifact(model_copy)


def test_good_card_loads_and_validates(random_model_dir):
    art = load_artifact(random_model_dir)
    artifacts.validate_card(art.card)
    assert 0 <= art.thresholds.error <= art.thresholds.warn <= 1
