"""The public per-frame pipeline: a model and the gate's options in one object (:func:`open_monitor`);
frames in, one ``monitor.FrameResult`` per frame out, decided exactly as the node, ``hirqa bag-eval``
and ``hirqa score`` decide (they are doors into this same code).

    from hirqa_ros import open_monitor
    mon = open_monitor(backend="onnxruntime", smoothing=0.6)
    for r in mon.score_frames(frames):          # HxWx3 uint8 RGB, one camera in stream order
        print(r.score, r.level, r.verdict, r.reason, r.fault)

Refused frames (``refusals``) have ``score`` None and ``reason`` saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from hirqa_ros.batching import batched
from hirqa_ros.constants import DEFAULT_MAX_PIXELS, DEFAULT_MIN_IMAGE_SIDE
from hirqa_ros.content import ContentLimits
from hirqa_ros.decision import Thresholds
from hirqa_ros.monitor import CameraMonitor, Checked, FrameResult, run_frames
from hirqa_ros.reference import ReferenceParams

K = TypeVar("K")

#: frames per inference call when none is given (``--batch-size``, bag-eval's ``--batch``)
DEFAULT_BATCH = 8


def stream_results(scorer: Any, items: Iterable[tuple[K, Checked]], batch_size: int | None = DEFAULT_BATCH,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[tuple[K, FrameResult]]:
    """The doors' batching loop: ``(key, checked)`` pairs (checked in stream order) scored ``batch_size``
    at a time (``monitor.run_frames``); yields ``(key, result)`` in the same order. Lazy: the checks of a
    batch run just before it is scored, as the node does."""
    for chunk in batched(items, batch_size):
        results = run_frames(scorer, [c for _, c in chunk], batch_size, max_pixels)
        yield from zip((k for k, _ in chunk), results)


class Monitor:
    """A loaded model (``scorer``) with the gate's options: frame checks (``min_side``, ``content``), the
    thresholds (None: the model card's for the precision that runs), ``smoothing``, the reference gate
    (``reference``), ``max_pixels`` (larger frames: native tiles) and the frames per inference call."""

    def __init__(self, scorer: Any, *, thresholds: Thresholds | None = None, smoothing: float = 0.0,
                 min_side: int = DEFAULT_MIN_IMAGE_SIDE, content: ContentLimits | None = None,
                 reference: ReferenceParams | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 batch_size: int | None = DEFAULT_BATCH) -> None:
        self.scorer = scorer
        # a card without thresholds raises artifacts.MissingThresholds here unless they are given
        self.thresholds = thresholds if thresholds is not None else (
            getattr(scorer, "thresholds", None) or Thresholds())
        self.smoothing = float(smoothing)
        self.min_side = int(min_side)
        self.content = content or ContentLimits()
        self.reference = reference or ReferenceParams()
        self.max_pixels = int(max_pixels)
        self.batch_size = batch_size

    @property
    def fault_classes(self) -> tuple[str, ...] | None:
        """The fault head's classes, None without a fault head."""
        return getattr(self.scorer, "fault_classes", None)

    def camera(self, name: str) -> CameraMonitor:
        """A new stream (one camera, one video, one bag topic) with these options and no history."""
        return CameraMonitor(name, self.thresholds, self.smoothing, self.min_side, content=self.content,
                             reference=self.reference)

    def results(self, items: Iterable[tuple[K, Checked]]) -> Iterator[tuple[K, FrameResult]]:
        """:func:`stream_results` with this monitor's scorer, batch size and ``max_pixels``."""
        return stream_results(self.scorer, items, self.batch_size, self.max_pixels)

    def score_frames(self, frames: Iterable[np.ndarray], stamps: Sequence[int | None] | None = None,
                     clocks: Sequence[float | None] | None = None,
                     camera: CameraMonitor | None = None) -> list[FrameResult]:
        """One camera's frames (HxWx3 uint8 RGB, in stream order) -> one result per frame. ``stamps``: header
        stamps in ns (the reference gate's clock), ``clocks``: the stream's clock in seconds (the frozen
        check); ``camera``: continue that stream (default: a new one)."""
        cam = camera or self.camera("frames")
        frames = list(frames)
        stamps = list(stamps) if stamps is not None else [None] * len(frames)
        clocks = list(clocks) if clocks is not None else [None] * len(frames)
        if not len(frames) == len(stamps) == len(clocks):
            raise ValueError(f"{len(frames)} frames, {len(stamps)} stamps and {len(clocks)} clocks")
        checked = ((i, cam.check(f, s, clock_s=c)) for i, (f, s, c) in enumerate(zip(frames, stamps, clocks)))
        return [r for _, r in self.results(checked)]

    def judge(self, frames: Iterable[np.ndarray]) -> list[FrameResult]:
        """Each frame judged alone, as the first frame of its own camera (no smoothing or reference
        history): what a door publishes for that frame. The evaluation and the release gate score so."""
        return [r for _, r in self.results((i, self.camera("frame").check(f)) for i, f in enumerate(frames))]

    def describe(self) -> str:
        th = self.thresholds
        what = self.scorer.describe() if hasattr(self.scorer, "describe") else type(self.scorer).__name__
        return f"{what}; thresholds warn {th.warn:g} error {th.error:g}, smoothing {self.smoothing:g}"


def open_monitor(model: str | os.PathLike | Any = None, backend: str = "auto", *,
                 input_policy: str | None = None, precision: str | None = None, device: str | None = None,
                 batch_size: int | None = DEFAULT_BATCH, backend_options: dict | None = None,
                 **gate: Any) -> Monitor:
    """Load ``model`` (a model directory, None: the default model) onto ``backend`` (``scorer.load_scorer``)
    and return a :class:`Monitor` with the gate options ``gate`` (``thresholds``, ``smoothing``,
    ``min_side``, ``content``, ``reference``, ``max_pixels``). Raises ``artifacts.ArtifactError`` (no
    model, no thresholds), ``backends.BackendUnavailable`` or ValueError."""
    from hirqa_ros.scorer import load_scorer

    scorer = load_scorer(model, backend=backend, input_policy=input_policy, device=device,
                         precision=precision, batch_size=batch_size, **(backend_options or {}))
    return Monitor(scorer, batch_size=batch_size, **gate)
