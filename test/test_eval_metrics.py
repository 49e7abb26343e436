"""Metrics (SROCC, PLCC, AUROC, false-reject thresholds) against scipy and hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from hirqa_ros.evaluation.calibration import calibrate_thresholds
from hirqa_ros.evaluation.metrics import (
    auroc,
    auroc_separation,
    plcc,
    rankdata,
    srocc,
    threshold_for_false_reject_rate,
)

stats = pytest.importorskip("scipy.stats", reason="scipy is the reference implementation")


def test_rankdata_matches_scipy_with_ties():
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], dtype=float)
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_srocc_plcc_match_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=50)
    b = 0.5 * a + rng.normal(size=50)
    b[:10] = np.round(b[:10])  # some ties
    assert srocc(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert plcc(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)


def test_correlations_hand_cases_and_constant_convention():
    assert srocc([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1.0)
    assert plcc([1, 2, 3, 4], [10, 20, 30, 1000]) < 0.9  # not linear
    assert srocc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert srocc([1, 2, 3], [5, 5, 5]) == 0.0
    assert plcc([7, 7, 7], [1, 2, 3]) == 0.0
    assert srocc([1.0], [2.0]) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        srocc([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        plcc([1, np.nan], [1, 2])


def test_auroc_hand_cases():
    # sklearn's documented example: 0.75
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([1, 1, 0, 0], [3, 4, 1, 2]) == 1.0
    assert auroc([0, 0, 1, 1], [3, 4, 1, 2]) == 0.0
    assert auroc([1, 0, 1, 0], [5, 5, 5, 5]) == 0.5  # ties count one half
    assert auroc_separation([2, 3], [1, 3]) == pytest.approx((1 + 0 + 1 + 0.5) / 4)  # (2,1) (2,3) (3,1) (3,3)
    with pytest.raises(ValueError, match="both classes"):
        auroc([1, 1], [0.2, 0.3])


def test_auroc_matches_pairwise_definition_and_mannwhitney():
    rng = np.random.default_rng(3)
    keep = np.round(rng.normal(1.0, 1.0, 40), 1)
    drop = np.round(rng.normal(0.0, 1.0, 30), 1)
    pairwise = np.mean([(k > d) + 0.5 * (k == d) for k in keep for d in drop])
    assert auroc_separation(keep, drop) == pytest.approx(pairwise)
    u = stats.mannwhitneyu(keep, drop).statistic
    assert auroc_separation(keep, drop) == pytest.approx(u / (keep.size * drop.size))


def test_threshold_for_false_reject_rate():
    keep = np.arange(100, dtype=float)[::-1]  # order must not matter
    t = threshold_for_false_reject_rate(keep, 0.05)
    assert t == 5.0 and np.mean(keep < t) == pytest.approx(0.05)
    assert threshold_for_false_reject_rate(keep, 0.0) == 0.0  # rejects nothing
    assert np.mean(keep < threshold_for_false_reject_rate(keep, 0.013)) <= 0.013
    with pytest.raises(ValueError):
        threshold_for_false_reject_rate([], 0.05)
    with pytest.raises(ValueError):
        threshold_for_false_reject_rate(keep, 1.0)


def test_calibrate_thresholds_rule():
    rng = np.random.default_rng(0)
    keep = rng.uniform(0.5, 1.0, 1000)
    drop = rng.uniform(0.0, 0.6, 500)
    cal = calibrate_thresholds(keep, drop)
    assert cal.error <= cal.warn
    assert cal.warn_false_reject_rate <= 0.05 and cal.error_false_reject_rate <= 0.01
    assert cal.warn == pytest.approx(0.525, abs=0.01)  # 5 % quantile of U(0.5, 1)
    assert cal.drop_recall_at_warn == pytest.approx(np.mean(drop < cal.warn))
    th = cal.thresholds()
    assert (th.warn, th.error) == (cal.warn, cal.error)
    with pytest.raises(ValueError):
        calibrate_thresholds(keep, drop, warn_frr=0.01, error_frr=0.05)
