"""ARNIQA-style random compositions: distinct groups in random order, one type each, half-Gaussian levels."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .registry import DEFAULT_GROUPS, GROUPS, NUM_LEVELS

# half-Gaussian (mean 0, std 2.5) over level index 0..4 -> P(level 1..5) = 0.293, 0.270, 0.213, 0.143, 0.081
LEVEL_WEIGHTS = np.exp(-(np.arange(NUM_LEVELS) ** 2) / (2 * 2.5**2))
LEVEL_WEIGHTS = LEVEL_WEIGHTS / LEVEL_WEIGHTS.sum()


def sample_composition(rng: np.random.Generator, max_distortions: int = 4,
                       groups: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """Draw n ~ U{1..max_distortions} distinct groups (by default `DEFAULT_GROUPS`: ``camera`` and
    ``motion`` included, ``no_content`` not) in random order, one type per group uniformly, and a level
    per type from `LEVEL_WEIGHTS`."""
    names = list(DEFAULT_GROUPS) if groups is None else list(dict.fromkeys(groups))
    unknown = [gname for gname in names if gname not in GROUPS]
    if unknown:
        raise KeyError(f"unknown group(s) {unknown}; known: {', '.join(GROUPS)}")
    top = min(int(max_distortions), len(names))
    if top < 1:
        return []
    n = int(rng.integers(1, top + 1))
    chosen = rng.choice(len(names), size=n, replace=False)
    steps = []
    for gi in chosen:
        types = GROUPS[names[gi]]
        name = types[int(rng.integers(len(types)))]
        steps.append((name, int(rng.choice(NUM_LEVELS, p=LEVEL_WEIGHTS)) + 1))
    return steps
