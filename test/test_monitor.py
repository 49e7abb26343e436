"""monitor.py: frame checks, resolution changes, gating and batch scoring with per-frame fallback,
with the real ONNX Runtime scorer (seeded random weights: plumbing only)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_bag import frames

from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.monitor import CameraMonitor, Refusal, refused, run_frames, score_frames


@pytest.fixture(scope="module")
def scorer(random_model_dir):
    from hirqa_ros import load_scorer

    return load_scorer(random_model_dir, backend="onnxruntime")


def test_too_small_frames_are_refused_and_do_not_touch_the_gate(scorer):
    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3), smoothing=0.5, min_side=16)
    big = frames(3, 64, 48)
    checked = [mon.check(big[0]), mon.check(np.zeros((10, 40, 3), np.uint8)), mon.check(big[1])]
    assert checked[1].result is not None and checked[1].result.reason == "too_small"
    assert checked[1].result.message == "40x10 frame is below min_image_side=16"
    assert checked[1].result.verdict == "error" and checked[1].result.level is None
    assert mon.resolution == (48, 64) and not checked[2].restart  # the refused frame is not a resolution
    results = run_frames(scorer, checked)
    ref = scorer.score([big[0], big[1]])
    assert results[0].score == pytest.approx(float(ref[0]), abs=1e-6)
    assert results[2].smoothed == pytest.approx(0.5 * float(ref[0]) + 0.5 * float(ref[1]), abs=1e-6)
    assert results[1] is checked[1].result


def test_resolution_change_restarts_smoothing_in_stream_order(scorer):
    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3), smoothing=0.9)
    a, b = frames(2, 64, 48), frames(2, 80, 60, seed=1)
    checked = [mon.check(f) for f in (a[0], a[1], b[0], b[1])]  # all checked before any is decided
    assert [c.restart for c in checked] == [False, False, True, False]
    assert checked[2].notes == (("resolution_change",
                                 "resolution changed from 64x48 to 80x60 (smoothing restarted)"),)
    results = run_frames(scorer, checked, batch_size=3)
    assert results[1].smoothed != pytest.approx(results[1].score)  # smoothing on within one resolution
    assert results[2].smoothed == pytest.approx(results[2].score)  # and restarted at the change
    assert [r.batch_size for r in results] == [3, 3, 3, 1]


def test_zero_stamp_is_noted_but_scored(scorer):
    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3))
    (res,) = run_frames(scorer, [mon.check(frames(1, 64, 48)[0], stamp_ns=0)])
    assert res.scored and [k for k, _ in res.notes] == ["zero_stamp"]
    assert res.level == Thresholds(0.5, 0.3).level(res.score) and res.message.startswith(res.level.name)
    assert res.fault is None and res.fault_confidence is None and res.fault_top3 is None


def test_a_failing_batch_is_retried_frame_by_frame(scorer):
    good = frames(2, 64, 48)
    bad = np.zeros((48, 64, 2), np.uint8)  # two channels: the scorer refuses it (a real ValueError)
    out = score_frames(scorer, [good[0], bad, good[1]])
    ref = scorer.score(good)
    assert out[0].score == pytest.approx(float(ref[0]), abs=1e-6) and out[0].batch_size == 1
    assert out[2].score == pytest.approx(float(ref[1]), abs=1e-6)
    assert out[1].score is None and out[1].error.startswith("inference failed: ValueError: expected HxW")


class BrokenBackendScorer:
    """Stand-in for a backend that returns garbage (NaN, wrong count): no real backend here does that."""

    def __init__(self, scores):
        self.scores = scores

    def score(self, frames):
        return np.asarray(self.scores, np.float32)


def test_non_finite_and_missing_scores_are_inference_errors():
    f = frames(2, 64, 48)
    out = score_frames(BrokenBackendScorer([0.7, np.nan]), f)
    assert out[0].score == pytest.approx(0.7) and out[1].score is None
    assert out[1].error == "the model returned a non-finite score (nan)"
    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3))
    results = run_frames(BrokenBackendScorer([0.7, 0.6, 0.5]), [mon.check(x) for x in f])  # always 3 scores
    assert all(r.reason == "inference_error" and r.score is None and r.verdict == "error" for r in results)
    # the batch of 2 failed, then each frame alone: the message is the single frame's
    assert results[0].message == "inference failed: RuntimeError: scorer returned 3 scores for 1 frames"


def test_checks_are_an_ordered_list_that_can_grow():
    def black(mon, rgb):
        return Refusal("no_content: black", "frame is black") if rgb.max() < 8 else None

    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3))
    mon.checks.append(black)
    assert mon.check(np.zeros((48, 64, 3), np.uint8)).result.reason == "no_content: black"
    assert mon.check(np.zeros((4, 4, 3), np.uint8)).result.reason == "too_small"  # size runs first
    assert refused("x", "y").verdict == "error"


def test_thresholds_and_smoothing_can_change_at_run_time(scorer):
    mon = CameraMonitor("/cam", Thresholds(0.5, 0.3))
    mon.thresholds, mon.smoothing = Thresholds(1.0, 1.0), 0.2
    (res,) = run_frames(scorer, [mon.check(frames(1, 64, 48)[0])])
    assert res.level == Level.ERROR and mon.gate.smoothing == 0.2
