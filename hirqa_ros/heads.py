"""Heads that run after the network on its 1024-d embedding, in numpy: the fault-class head.

``FaultHead.predict(embeddings) -> probs (N, C)`` over ``FAULT_CLASSES`` (why a frame is bad). The
head is a file in the model directory (``fault_head.npz``, listed with its sha256 in ``model.yaml``
under ``files.fault_head``); a model directory without it reports no fault class. No torch needed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FAULT_CLASSES = (
    "none", "blur", "motion_blur", "haze", "low_light", "overexposure", "glare", "noise", "compression",
    "other",
)
FAULT_HEAD_FILE = "fault_head.npz"
FAULT_HEAD_KEY = "fault_head"

# distortion type (hirqa_ros.degradations) -> fault class; every other type is `other`
TYPE_CLASSES = {
    "gaublur": "blur", "lensblur": "blur", "defocus": "blur",
    "motionblur": "motion_blur", "camera_shake": "motion_blur", "shake": "motion_blur",
    "platform_motion": "motion_blur",
    "haze": "haze",
    "low_light": "low_light", "darken": "low_light",
    "overexposure": "overexposure", "brighten": "overexposure",
    "glare": "glare",
    "whitenoise": "noise", "whitenoiseCC": "noise", "impulsenoise": "noise", "multnoise": "noise",
    "jpeg": "compression", "jpeg2000": "compression", "jpeg_camera": "compression",
}


def fault_class_of(type_name: str, level: int = 3) -> str:
    """The fault class of a distortion type at a severity level (level 0 = ``none``)."""
    return "none" if int(level) == 0 else TYPE_CLASSES.get(type_name, "other")


class FaultHead:
    """Linear or one-hidden-layer (ReLU) classifier on standardised embeddings, temperature-calibrated.

    ``layers``: [(W (in, out), b (out,)), ...]; the input is standardised with ``mean``/``scale``.
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], mean: np.ndarray, scale: np.ndarray,
                 temperature: float = 1.0, classes: tuple[str, ...] = FAULT_CLASSES) -> None:
        if not layers:
            raise ValueError("a fault head needs at least one layer")
        self.layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in layers]
        self.mean = np.asarray(mean, np.float32).reshape(-1)
        self.scale = np.asarray(scale, np.float32).reshape(-1)
        self.temperature = float(temperature)
        self.classes = tuple(str(c) for c in classes)
        dim, out = self.layers[0][0].shape[0], self.layers[-1][0].shape[1]
        if self.mean.size != dim or self.scale.size != dim:
            raise ValueError(f"standardisation has {self.mean.size} values for a {dim}-d input")
        if out != len(self.classes):
            raise ValueError(f"head has {out} outputs for {len(self.classes)} classes")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @property
    def dim(self) -> int:
        """Embedding width the head expects."""
        return int(self.mean.size)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Uncalibrated logits (N, C)."""
        x = np.asarray(embeddings, np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected embeddings of shape (N, {self.dim}), got {x.shape}")
        x = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        return x

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities (N, C), rows sum to 1, columns in ``classes`` order."""
        z = self.logits(embeddings) / self.temperature
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def classify(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(top class name, its probability) per row."""
        p = self.predict(embeddings)
        idx = p.argmax(axis=1)
        return [self.classes[i] for i in idx], p[np.arange(len(idx)), idx]

    def top(self, probs: np.ndarray, k: int = 3) -> list[tuple[tuple[str, float], ...]]:
        """Per row of ``probs`` (N, C) the ``k`` most likely classes with their probabilities, best first:
        ``result[i][0]`` is (fault, fault_confidence), ``result[i]`` the top-k."""
        p = np.asarray(probs, np.float64)
        order = np.argsort(-p, axis=1, kind="stable")[:, :k]
        return [tuple((self.classes[j], float(row[j])) for j in idx) for row, idx in zip(p, order)]

    def save(self, path: str | os.PathLike) -> Path:
        arrays: dict[str, np.ndarray] = {
            "mean": self.mean, "scale": self.scale, "temperature": np.float32(self.temperature),
            "classes": np.asarray(self.classes), "n_layers": np.int64(len(self.layers)),
        }
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        path = Path(path)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaultHead:
        """Read a head written by :meth:`save` (plain arrays, no pickle)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                n = int(z["n_layers"])
                layers = [(z[f"w{i}"], z[f"b{i}"]) for i in range(n)]
                return cls(layers, z["mean"], z["scale"], float(z["temperature"]),
                           tuple(str(c) for c in z["classes"]))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a fault head file ({exc})") from exc


def load_fault_head(artifact) -> FaultHead | None:
    """The fault head of a loaded model directory (``artifacts.ModelArtifact``), None when it has none.

    The file's sha256 was checked when the directory was loaded.
    """
    path = artifact.file(FAULT_HEAD_KEY)
    return FaultHead.load(path) if path is not None else None
