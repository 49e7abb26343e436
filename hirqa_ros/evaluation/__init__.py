"""Evaluation of quality scores: metrics, the synthetic distortion protocol, benchmark loaders, calibration.

Submodules: ``metrics`` (SROCC, PLCC, AUROC), ``synthetic`` (held-out distortion ladders),
``calibration`` (OK/WARN/ERROR thresholds from validation scores), ``datasets`` (public IQA
benchmarks in their authors' layouts). Nothing here imports torch except through the
distortion library, which ``synthetic`` loads only when it builds distorted images.
"""
from __future__ import annotations

from hirqa_ros.evaluation.metrics import auroc, plcc, srocc, threshold_for_false_reject_rate

__all__ = ["auroc", "plcc", "srocc", "threshold_for_false_reject_rate"]
