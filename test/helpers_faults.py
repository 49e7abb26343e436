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

from hirqa_ros.artifacts import sha256_file
from hirqa_ros.heads import FAULT_CLASSES, FAULT_HEAD_FILE, FAULT_HEAD_KEY, FaultHead

TOY_CLASSES = ("none", "blur", "low_light")


def toy_scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A sharp synthetic scene (shapes, edges, texture), reproducible."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([80 + 100 * x / w, 90 + 80 * y / h, 150 - 60 * x / w], axis=2).astype(np.uint8)
    for _ in range(14):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, p, int(rng.integers(3, max(4, h // 4))), c, -1)
        else:
            cv2.rectangle(img, p, q, c, -1)
    noise = rng.integers(-12, 13, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


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


def toy_frames(seeds: tuple[int, ...] = (0, 1), h: int = 96, w: int = 128) -> dict[str, list[np.ndarray]]:
    """Per toy class, one frame per scene seed."""
    scenes = [toy_scene(h, w, s) for s in seeds]
    return {c: [toy_condition(s, c) for s in scenes] for c in TOY_CLASSES}


def fit_toy_head(embeddings: dict[str, np.ndarray]) -> FaultHead:
    """A nearest-centroid linear head over ``FAULT_CLASSES`` from a few embeddings per class (a test
    fixture, see the module docstring); classes without embeddings are never predicted."""
    all_x = np.concatenate(list(embeddings.values())).astype(np.float64)
    mean = all_x.mean(axis=0)
    scale = np.full(all_x.shape[1], all_x.std(axis=0).mean() + 1e-6)
    w = np.zeros((all_x.shape[1], len(FAULT_CLASSES)))
    b = np.full(len(FAULT_CLASSES), -1e4)
    for cls, x in embeddings.items():
        c = ((np.asarray(x, np.float64) - mean) / scale).mean(axis=0)
        j = FAULT_CLASSES.index(cls)
        w[:, j], b[j] = c, -0.5 * float(c @ c)
    return FaultHead([(w, b)], mean, scale, temperature=float(np.sqrt(all_x.shape[1])))


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
