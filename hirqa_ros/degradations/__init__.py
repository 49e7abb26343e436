"""Distortion library: the 24 ARNIQA types in 7 groups, camera faults, frame-scale motion, camera JPEG and
no-content fades, 5 severity levels each, batched torch on CPU or CUDA (see docs/degradations.md)."""
from __future__ import annotations

from .base import Degradation
from .registry import (
    DEFAULT_GROUPS,
    DEFAULT_TYPES,
    DEGRADATIONS,
    GROUPS,
    NUM_LEVELS,
    OPT_IN_GROUPS,
    apply,
    apply_composition,
    apply_compositions,
    apply_ladder,
    degrade,
    get,
)
from .sampling import LEVEL_WEIGHTS, sample_composition

__all__ = [
    "DEFAULT_GROUPS",
    "DEFAULT_TYPES",
    "DEGRADATIONS",
    "GROUPS",
    "LEVEL_WEIGHTS",
    "NUM_LEVELS",
    "OPT_IN_GROUPS",
    "Degradation",
    "apply",
    "apply_composition",
    "apply_compositions",
    "apply_ladder",
    "degrade",
    "get",
    "sample_composition",
]
