"""Rank and linear correlations and AUROC in plain numpy (no scipy, no sklearn).

Conventions follow the HiRQA evaluation script: a correlation with a constant vector (or
fewer than two samples) is reported as 0 instead of NaN. AUROC is the Mann-Whitney rank
statistic: the probability that a random positive scores above a random negative, ties
counting one half.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _vector(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = _vector(a, "first vector"), _vector(b, "second vector")
    if x.shape != y.shape:
        raise ValueError(f"vectors differ in length: {x.size} vs {y.size}")
    return x, y


def rankdata(x: ArrayLike) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy's ``rankdata(method='average')``)."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # start index of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = np.r_[starts[1:], a.size]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks starts+1..ends
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return 0.0
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    if denom == 0.0 or np.ptp(x) == 0.0 or np.ptp(y) == 0.0:
        return 0.0
    return float(np.clip(np.dot(xc, yc) / denom, -1.0, 1.0))


def plcc(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson linear correlation on raw values (no logistic fit); 0 if either vector is constant."""
    x, y = _pair(a, b)
    return _pearson(x, y)


def srocc(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman rank-order correlation (Pearson on average ranks); 0 if either vector is constant."""
    x, y = _pair(a, b)
    return _pearson(rankdata(x), rankdata(y))


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve for ``labels`` (1/True = positive) ranked by ``scores``.

    Equals P(score of a random positive > score of a random negative) + 0.5 P(tie), computed
    from the Mann-Whitney U statistic. Raises ``ValueError`` when a class is empty.
    """
    y = np.asarray(labels).reshape(-1).astype(bool)
    s = _vector(scores, "scores")
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes (got {n_pos} positives, {n_neg} negatives)")
    ranks = rankdata(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auroc_separation(keep_scores: ArrayLike, drop_scores: ArrayLike) -> float:
    """AUROC of "keep" (positives) versus "drop" (negatives) for a higher-is-better score."""
    k = _vector(keep_scores, "keep scores")
    d = _vector(drop_scores, "drop scores")
    labels = np.r_[np.ones(k.size, bool), np.zeros(d.size, bool)]
    return auroc(labels, np.r_[k, d])


def threshold_for_false_reject_rate(keep_scores: ArrayLike, rate: float) -> float:
    """The highest threshold ``t`` that rejects (``score < t``) at most ``rate`` of the keep frames.

    With sorted keep scores s_0 <= ... <= s_{n-1} this is ``s_k`` with ``k = floor(rate * n)``:
    only scores strictly below ``s_k`` are rejected, at most k of them.
    """
    s = np.sort(_vector(keep_scores, "keep scores"))
    if s.size == 0:
        raise ValueError("no keep scores to calibrate on")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"false-reject rate must be in [0, 1), got {rate}")
    k = min(int(np.floor(rate * s.size + 1e-9)), s.size - 1)
    return float(s[k])
