"""TEST FIXTURES for the fault-class plumbing: toy frames, a tiny nearest-centroid fault head fitted in
the test on the embeddings of those frames, and a copy of a model directory with that head registered.

The toy head is NOT a model: it only tells apart the few toy frames it was fitted on, so tests can
check that a class travels from the head to the node, the CLI and bag-eval. What the shipped head
says about real photos is tested separately, with the shipped model.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml
from helpers_node import scene

from hirqa_ros.artifacts import sha256_file
from hirqa_ros.heads import FAULT_CLASSES, FAULT_HEAD_FILE, FAULT_HEAD_KEY, FaultHead

TOY_CLASSES = ("none", "blur", "low_light")


def toy_condition(rgb: np.ndarray, cls: str) -> np.ndarray:
    """The toy frame of class ``cls``: itself (``none``), blurred (``blur``) or dark (``low_light``)."""
    import cv2

    if cls == "none":
        return rgb.copy()
    if cls == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), 4.0)
    if cls == "low_light":
        return (rgb.astype(np.float32) * 0.08).astype(np.uint8)
    raise ValueError(cls)


def toy_frames(seeds: tuple[int, ...] = (0, 1, 2, 3), h: int = 96, w: int = 128) -> dict[str, list]:
    """Per toy class, one frame per scene seed."""
    scenes = [scene(h, w, s) for s in seeds]
    return {c: [toy_condition(s, c) for s in scenes] for c in TOY_CLASSES}


def fit_toy_head(embeddings: dict[str, np.ndarray]) -> FaultHead:
    """A linear head over ``FAULT_CLASSES`` fitted by ridge regression to one-hot targets on a few
    embeddings per class (a test fixture, see the module docstring): it reproduces the classes of the
    frames it was fitted on; classes without embeddings get a logit near 0 and never win there."""
    names = list(embeddings)
    x = np.concatenate([np.asarray(embeddings[c], np.float64) for c in names])
    y = np.zeros((len(x), len(FAULT_CLASSES)))
    row = 0
    for c in names:
        n = len(embeddings[c])
        y[row:row + n, FAULT_CLASSES.index(c)] = 1.0
        row += n
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    z = (x - mean) / scale
    w = z.T @ np.linalg.solve(z @ z.T + 1e-3 * np.eye(len(z)), y)  # (D, C), min-norm ridge solution
    return FaultHead([(w, np.zeros(len(FAULT_CLASSES)))], mean, scale, temperature=0.1)


def with_head(model_dir: str | Path, head: FaultHead, dst: str | Path) -> Path:
    """A copy of ``model_dir`` at ``dst`` with ``head`` saved and listed (sha256) in its card."""
    dst = Path(dst)
    shutil.copytree(model_dir, dst)
    head.save(dst / FAULT_HEAD_FILE)
    card = yaml.safe_load((dst / "model.yaml").read_text())
    card["files"][FAULT_HEAD_KEY] = {"path": FAULT_HEAD_FILE, "sha256": sha256_file(dst / FAULT_HEAD_FILE)}
    (dst / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return dst


def toy_head_model_dir(model_dir: str | Path, dst: str | Path) -> Path:
    """``model_dir`` plus a toy head fitted on its own embeddings of :func:`toy_frames` (ONNX Runtime)."""
    from hirqa_ros import load_scorer

    sc = load_scorer(model_dir, backend="onnxruntime")
    emb = {c: sc.infer(frames).embeddings for c, frames in toy_frames().items()}
    assert all(e is not None for e in emb.values()), "the model's ONNX has no embedding output"
    return with_head(model_dir, fit_toy_head(emb), dst)
