"""OK/WARN/ERROR thresholds calibrated on validation scores by target false-reject rates.

Rule: ``warn`` is the highest threshold that rejects at most ``warn_frr`` (default 5 %) of the
"keep" frames (pristine and level-1 views of the synthetic protocol), ``error`` the one that
rejects at most ``error_frr`` (default 1 %) of them. A frame is OK at or above ``warn``, so at
most 5 % of good frames are dropped, and ERROR below ``error``, where at most 1 % of good frames
ever land. The drop-frame recall (share of level >= 3 frames below each threshold) is reported
so the price of the rule is visible.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hirqa_ros.evaluation.metrics import threshold_for_false_reject_rate
from hirqa_ros.evaluation.synthetic import DROP_MIN_LEVEL, KEEP_LEVELS, ProtocolScores

WARN_FALSE_REJECT = 0.05
ERROR_FALSE_REJECT = 0.01


@dataclass(frozen=True)
class Calibration:
    warn: float
    error: float
    warn_false_reject_rate: float
    error_false_reject_rate: float
    drop_recall_at_warn: float  # share of drop frames scoring below warn
    drop_recall_at_error: float
    n_keep: int
    n_drop: int

    def as_dict(self) -> dict:
        return asdict(self)

    def thresholds(self):
        """As :class:`hirqa_ros.decision.Thresholds` (only for scores in [0, 1])."""
        from hirqa_ros.decision import Thresholds

        return Thresholds(warn=self.warn, error=self.error)


def calibrate_thresholds(
    keep_scores: np.ndarray,
    drop_scores: np.ndarray,
    warn_frr: float = WARN_FALSE_REJECT,
    error_frr: float = ERROR_FALSE_REJECT,
) -> Calibration:
    """Thresholds from keep/drop validation scores by the module's rule (needs ``error_frr <= warn_frr``)."""
    if error_frr > warn_frr:
        raise ValueError(f"error false-reject rate {error_frr} must not exceed the warn one {warn_frr}")
    keep = np.asarray(keep_scores, dtype=np.float64).reshape(-1)
    drop = np.asarray(drop_scores, dtype=np.float64).reshape(-1)
    warn = threshold_for_false_reject_rate(keep, warn_frr)
    error = threshold_for_false_reject_rate(keep, error_frr)
    return Calibration(
        warn=warn,
        error=error,
        warn_false_reject_rate=float((keep < warn).mean()),
        error_false_reject_rate=float((keep < error).mean()),
        drop_recall_at_warn=float((drop < warn).mean()) if drop.size else float("nan"),
        drop_recall_at_error=float((drop < error).mean()) if drop.size else float("nan"),
        n_keep=int(keep.size),
        n_drop=int(drop.size),
    )


def keep_drop_scores(ps: ProtocolScores, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Keep (pristine once per view + level 1 of every type) and drop (level >= 3) scores of a run."""
    arr = ps.scores[name]
    keep = [arr[:, 0, 0]] + [arr[:, :, lv].reshape(-1) for lv in KEEP_LEVELS if lv > 0]
    return np.concatenate(keep), arr[:, :, DROP_MIN_LEVEL:].reshape(-1)


def calibrate_protocol(
    ps: ProtocolScores, name: str, warn_frr: float = WARN_FALSE_REJECT, error_frr: float = ERROR_FALSE_REJECT
) -> Calibration:
    """:func:`calibrate_thresholds` on one score_fn of a synthetic protocol run."""
    keep, drop = keep_drop_scores(ps, name)
    return calibrate_thresholds(keep, drop, warn_frr, error_frr)
