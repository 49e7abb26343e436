"""The Scorer: frames in, quality scores out, through one preprocessing path and a chosen backend.

``load_scorer()`` picks the model (default: the installed ``models/hirqa-s``) and the backend
(``auto``: TensorRT -> torch on CUDA -> ONNX Runtime on the CPU, logging why).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.artifacts import ModelArtifact, load_artifact
from hirqa_ros.backends import CHOICES, Backend, choose_auto, open_backend
from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.preprocess import InputPolicy, prepare

log = logging.getLogger(__name__)


class Scorer:
    """Scores frames (HxWx3 uint8 RGB, or anything ``preprocess.to_rgb8`` converts)."""

    def __init__(
        self,
        artifact: ModelArtifact,
        backend: Backend,
        input_policy: InputPolicy | str | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.artifact = artifact
        self.impl = backend
        self.input_policy = InputPolicy.parse(input_policy or artifact.input_policy)
        self.batch_size = max(1, int(batch_size or getattr(backend, "max_batch", 8)))

    @property
    def backend(self) -> str:
        """Name of the backend actually used (onnxruntime, torch, tensorrt, torch2trt)."""
        return self.impl.name

    @property
    def device(self) -> str:
        return getattr(self.impl, "device", "cpu")

    @property
    def precision(self) -> str:
        return getattr(self.impl, "precision", "fp32")

    @property
    def thresholds(self) -> Thresholds:
        return self.artifact.thresholds

    @property
    def model_dir(self) -> Path:
        return self.artifact.path

    @property
    def model_name(self) -> str:
        return self.artifact.name

    def score(self, frames: Sequence[np.ndarray], bgr: bool = False) -> np.ndarray:
        """Scores (N,) float32 in (0, 1), higher = better; crops of one frame are averaged."""
        frames = list(frames)
        total = np.zeros(len(frames), np.float64)
        count = np.zeros(len(frames), np.int64)
        for batch in prepare(frames, self.input_policy, bgr=bgr, norm=self.artifact.normalisation):
            for start in range(0, len(batch.owners), self.batch_size):
                owners = batch.owners[start : start + self.batch_size]
                scores = self.impl.run(batch.array[start : start + self.batch_size])
                np.add.at(total, owners, scores.astype(np.float64))
                np.add.at(count, owners, 1)
        return (total / np.maximum(count, 1)).astype(np.float32)

    __call__ = score

    def score_one(self, frame: np.ndarray, bgr: bool = False) -> float:
        return float(self.score([frame], bgr=bgr)[0])

    def level(self, score: float) -> Level:
        """OK / WARN / ERROR for a score under the model card's thresholds."""
        return self.thresholds.level(score)

    def describe(self) -> str:
        return (
            f"model {self.model_name} ({self.model_dir}), backend {self.backend} on {self.device} "
            f"({self.precision}), input policy {self.input_policy}"
        )


def load_scorer(
    model: str | os.PathLike | ModelArtifact | None = None,
    backend: str = "auto",
    input_policy: InputPolicy | str | None = None,
    device: str | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
    **options: Any,
) -> Scorer:
    """Load a model directory (None = the default model) onto a backend.

    ``backend``: auto | onnxruntime | torch | tensorrt | torch2trt. ``device``: None (best),
    "cpu", "cuda[:i]" (and for onnxruntime "tensorrt" = its TensorRT execution provider).
    ``options`` go to the backend (e.g. ``cache_dir``, ``force_engine_update``, ``max_hw``,
    ``threads``). Raises ``artifacts.NoDefaultModelError`` when no model is named or installed.
    """
    artifact = model if isinstance(model, ModelArtifact) else load_artifact(model)
    policy = InputPolicy.parse(input_policy or artifact.input_policy)
    if batch_size:
        options.setdefault("max_batch", batch_size)
    if backend not in CHOICES:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(CHOICES)}")
    if backend in ("tensorrt", "torch2trt"):
        options.setdefault("input_policy", policy)
    if backend == "auto":
        auto_options = dict(options)
        auto_options.setdefault("input_policy", policy)
        impl, skipped = choose_auto(artifact, device=device, precision=precision, **auto_options)
        log.info(
            "backend auto: chose %s on %s (%s)%s",
            impl.name,
            getattr(impl, "device", "?"),
            getattr(impl, "precision", "?"),
            "; skipped " + "; ".join(skipped) if skipped else "",
        )
    else:
        impl = open_backend(backend, artifact, device=device, precision=precision, **options)
    scorer = Scorer(artifact, impl, policy, batch_size)
    log.info("scorer: %s", scorer.describe())
    return scorer
