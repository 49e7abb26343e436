"""The Scorer: frames in, quality scores (and embeddings) out, through one preprocessing path and a backend.

Per call the host cuts the input-policy views (slices, no copies where the policy allows) and
copies them once into a reusable staging buffer (pinned for CUDA backends); a single contiguous
frame on a CPU backend goes in without any copy. Normalisation runs in the backend's graph.

When the model directory has a fault head (``heads.FaultHead``), :meth:`Scorer.infer` applies it to
the embeddings and returns class probabilities beside the scores; without one it reports none.

``load_scorer()`` picks the model (default: the installed ``models/hirqa-s``) and the backend
(``auto``: TensorRT -> torch on CUDA -> ONNX Runtime on the CPU, logging why).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.artifacts import ModelArtifact, load_artifact
from hirqa_ros.backends import CHOICES, Backend, choose_auto, open_backend
from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.heads import FaultHead, load_fault_head
from hirqa_ros.preprocess import InputPolicy, as_batch, group_views, stage
from hirqa_ros.staging import StagingPool, numpy_alloc

log = logging.getLogger(__name__)


@dataclass
class Inference:
    """What the network says about N frames (views of one frame under ``crops`` are averaged)."""

    scores: np.ndarray  # (N,) float32 in (0, 1), higher = better
    embeddings: np.ndarray | None  # (N, D) float32 pooled embeddings; None when the model has none
    # (N, C) fault-class probabilities over heads.FAULT_CLASSES; None when the model dir has no fault head
    fault_probs: np.ndarray | None = None


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
        self.staging = StagingPool(getattr(backend, "alloc_host", numpy_alloc))
        self._zero_copy = str(getattr(backend, "device", "cpu")) == "cpu"
        # the fault head runs in numpy on the embedding, after any backend
        self.fault_head: FaultHead | None = load_fault_head(artifact)
        self._warned_no_embedding = False

    @property
    def fault_classes(self) -> tuple[str, ...] | None:
        """The fault head's classes, None when the model has no fault head."""
        return None if self.fault_head is None else self.fault_head.classes

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
        """The card's thresholds for the precision this scorer runs (int8 has its own)."""
        return self.artifact.thresholds_for(self.precision)

    @property
    def model_dir(self) -> Path:
        return self.artifact.path

    @property
    def model_name(self) -> str:
        return self.artifact.name

    def infer(self, frames: Sequence[np.ndarray], bgr: bool | Sequence[bool] = False) -> Inference:
        """Scores and embeddings of ``frames`` (HxWx3 uint8 RGB, or BGR with ``bgr=True`` or a flag
        per frame; other pixel formats are converted). Pass frames as decoded (views are fine):
        the one pixel copy, BGR swap included, happens while staging. Crops of one frame are
        averaged (scores and embeddings); the fault head, when any, runs on the averaged embedding."""
        frames = list(frames)
        n = len(frames)
        total = np.zeros(n, np.float64)
        count = np.zeros(n, np.int64)
        emb_total: np.ndarray | None = None
        order = getattr(self.impl, "channel_order", "RGB")
        for group in group_views(frames, self.input_policy, bgr=bgr):
            h, w = group.shape
            for start in range(0, len(group.views), self.batch_size):
                stop = start + self.batch_size
                owners = group.owners[start:stop]
                views, flags = group.views[start:stop], group.bgr[start:stop]
                chunk = type(group)(views, flags, owners)
                direct = as_batch(chunk, order) if self._zero_copy else None
                if direct is not None:
                    scores, emb = self.impl.infer(direct)
                else:
                    buf = self.staging.acquire((len(views), h, w, 3))
                    try:
                        scores, emb = self.impl.infer(stage(views, flags, buf, order))
                    finally:
                        self.staging.release(buf)
                np.add.at(total, owners, scores.astype(np.float64))
                np.add.at(count, owners, 1)
                if emb is not None:
                    if emb_total is None:
                        emb_total = np.zeros((n, emb.shape[1]), np.float64)
                    np.add.at(emb_total, owners, emb.astype(np.float64))
        div = np.maximum(count, 1)
        embeddings = None if emb_total is None else (emb_total / div[:, None]).astype(np.float32)
        probs = None
        if self.fault_head is not None and n:
            if embeddings is not None:
                probs = self.fault_head.predict(embeddings).astype(np.float32)
            elif not self._warned_no_embedding:
                self._warned_no_embedding = True
                log.warning("the model has a fault head but backend %s returned no embedding, so frames "
                            "get no fault class (re-export the ONNX/engine with `hirqa export`: it outputs "
                            "`embedding`)", self.backend)
        return Inference((total / div).astype(np.float32), embeddings, probs)

    def score(self, frames: Sequence[np.ndarray], bgr: bool | Sequence[bool] = False) -> np.ndarray:
        """Scores (N,) float32 in (0, 1), higher = better; crops of one frame are averaged."""
        return self.infer(frames, bgr=bgr).scores

    __call__ = score

    def score_one(self, frame: np.ndarray, bgr: bool = False) -> float:
        return float(self.score([frame], bgr=bgr)[0])

    def level(self, score: float) -> Level:
        """OK / WARN / ERROR for a score under the model card's thresholds."""
        return self.thresholds.level(score)

    def describe(self) -> str:
        return (
            f"model {self.model_name} ({self.model_dir}), backend {self.backend} on {self.device} "
            f"({self.precision}), input policy {self.input_policy}, "
            + (f"fault head ({len(self.fault_head.classes)} classes)" if self.fault_head else "no fault head")
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
