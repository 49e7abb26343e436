"""The per-camera reference gate's guards, each on a synthetic score sequence through the real
``CameraMonitor.decide`` (no network: scores and fault probabilities are given), plus the decision metrics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.evaluation.decisions import CLEAN, FAULT, Decided, decision_metrics, stream_delays
from hirqa_ros.monitor import CameraMonitor, Checked, ScoreOutcome
from hirqa_ros.reference import RELATIVE_DROP, ReferenceGate, ReferenceParams

TH = Thresholds(warn=0.46, error=0.44)
RATE = 10.0


def run(scores, params=None, none_probs=None, times=None, monitor=None, median_n=1):
    """Levels and reasons of ``scores`` at 10 Hz (or at ``times``) through one monitor. The guards are
    checked frame by frame (``median_n`` 1); the ``test_median_*`` tests check the temporal statistic."""
    params = replace(params or ReferenceParams(), median_n=median_n)
    m = monitor or CameraMonitor("cam", TH, reference=params)
    out = []
    for i, s in enumerate(scores):
        t = times[i] if times is not None else 100.0 + i / RATE
        ranked = None
        if none_probs is not None:
            p = float(none_probs[i])
            ranked = (("none", p), ("haze", 1.0 - p)) if p >= 0.5 else (("haze", 1.0 - p), ("none", p))
        res = m.decide(Checked(m, None, time_s=t), ScoreOutcome(float(s), fault_ranked=ranked))
        out.append(res)
    return out


def rejected(results):
    return np.array([r.level != Level.OK for r in results])


def noisy(level, n, seed=0, sd=0.008):
    return level + np.random.default_rng(seed).normal(0.0, sd, n)


def test_sudden_drop_is_rejected_with_reason_and_reference():
    scores = np.concatenate([noisy(0.58, 50), noisy(0.49, 40, 1), noisy(0.58, 30, 2)])
    res = run(scores)
    rej = rejected(res)
    assert not rej[:50].any()
    assert rej[50:90].all()  # 0.49 is above WARN 0.46: only the reference catches it
    assert all(r.reason == RELATIVE_DROP and r.level == Level.WARN for r in res[50:90])
    assert abs(res[60].reference - 0.58) < 0.01
    assert not rej[90:].any()  # recovers on the first clean frame
    off = rejected(run(scores, ReferenceParams(relative=False)))
    assert not off.any()
    assert all(r.reference is None for r in run(scores[:5], ReferenceParams(relative=False)))


def test_fault_from_the_first_frame_is_not_learned_as_normal():
    """Floor-rejected frames from the start are never learned: the reference forms only on clean frames."""
    scores = np.concatenate([noisy(0.41, 60), noisy(0.58, 40, 1), noisy(0.49, 30, 2)])
    res = run(scores)
    rej = rejected(res)
    assert rej[:60].all() and all(r.reason == "" for r in res[:60])  # the floor, not the reference
    assert all(r.reference is None for r in res[:61])
    assert not rej[62:100].any()
    assert rej[100:].all()  # the later drop is judged against the clean reference
    assert abs(res[110].reference - 0.58) < 0.01


def _gradual(seconds: float):
    n = int(seconds * RATE)
    ramp = np.linspace(0.60, 0.48, n)  # 0.12 deep: past the margin (0.07) where the reference froze
    scores = np.concatenate([noisy(0.60, 100), ramp + noisy(0.0, n, 1, 0.004), noisy(0.48, 200, 2, 0.004)])
    return n, scores


@pytest.mark.parametrize("seconds", [20.0, 40.0, 60.0])
def test_gradual_onset_is_rejected_when_the_head_sees_it(seconds):
    """Haze thickening over 20-60 s: the score falls 0.60 -> 0.48 (still above WARN) while the fault head's
    ``none`` probability falls from 0.3 to ~0 (as measured on hazy frames): the reference stops learning,
    so the thickening fault is rejected before the end of the ramp and stays rejected."""
    n, scores = _gradual(seconds)
    none = np.concatenate([np.full(100, 0.3), np.clip(0.3 * (1 - 3 * np.linspace(0, 1, n)), 0.0, 1.0),
                           np.zeros(200)])
    res = run(scores, none_probs=none)
    rej = rejected(res)
    assert not rej[:100].any()
    first = int(np.argmax(rej))
    assert 100 < first < 100 + n * 0.8, first
    assert rej[100 + n:].all()
    refs = [r.reference for r in res[100 + n:]]
    assert max(refs) - min(refs) < 1e-9  # frozen while the fault lasts


def test_gradual_onset_without_a_head_only_faster_than_the_fall_limit():
    """Without a fault head the reference falls at most ``fall_per_s``: a drift well faster than that (0.1
    in 5 s) is rejected; the reference never falls faster than the limit."""
    n, scores = _gradual(5.0)
    res = run(scores)
    rej = rejected(res)
    assert not rej[:100].any() and rej[100 + n:].all()
    refs = np.array([r.reference for r in res[20:]])
    assert np.all(np.diff(refs) >= -ReferenceParams().fall_per_s / RATE - 1e-9)


def test_persistent_fault_stays_rejected_for_minutes():
    scores = np.concatenate([noisy(0.60, 50), noisy(0.49, 10 * 180, 1)])  # three minutes of fault
    res = run(scores)
    assert rejected(res)[50:].all()


def test_a_head_unsure_of_every_clean_frame_still_lets_the_reference_warm_up():
    """On content the model has not seen the head can give clean frames ``none`` 0.004-0.05, below
    ``reference_learn_none`` (a drive camera of unseen photos): the reference warms up on the accepted
    frames anyway, and a defocus that drops the score by 0.12 is rejected (until 2026-12-07 it never
    warmed up there and the defocus passed)."""
    scores = np.concatenate([noisy(0.64, 60, sd=0.004), noisy(0.52, 40, 1, sd=0.004),
                             noisy(0.64, 20, 2, sd=0.004)])
    res = run(scores, none_probs=np.full(scores.size, 0.01))
    rej = rejected(res)
    assert not rej[:60].any() and rej[61:100].all() and not rej[101:].any()
    assert {r.reason for r in res[61:100]} == {RELATIVE_DROP}


def test_max_age_without_learning_resets_the_reference():
    params = ReferenceParams(max_age_s=30.0)
    scores = np.concatenate([noisy(0.60, 50), noisy(0.49, 10 * 60, 1)])
    rej = rejected(run(scores, params))
    assert rej[50:50 + 290].all()  # for ~30 s
    assert not rej[50 + 330:].any()  # then the fault is the new normal (documented trade-off)


def test_scene_change_reaccepted_when_the_fault_head_calls_it_clean():
    """A cut to a plainer scene (0.60 -> 0.50): a brief reject, then re-accepted within reaccept_s."""
    scores = np.concatenate([noisy(0.60, 50), noisy(0.50, 100, 1)])
    clean = np.full(scores.size, 0.9)
    res = run(scores, ReferenceParams(reaccept_s=2.0, reaccept_none=0.5), none_probs=clean)
    rej = rejected(res)
    assert rej[50:52].all()
    assert rej[50:].sum() <= 2.0 * RATE + 1
    assert not rej[50 + 25:].any()
    assert abs(res[-1].reference - 0.50) < 0.01  # re-anchored on the new scene
    # the same drop with the head saying "haze": stays rejected
    faulty = np.concatenate([np.full(50, 0.9), np.full(100, 0.02)])
    assert rejected(run(scores, ReferenceParams(reaccept_s=2.0), none_probs=faulty))[50:].all()
    # and without a head (no probabilities) it stays rejected too
    assert rejected(run(scores, ReferenceParams(reaccept_s=2.0)))[50:].all()


def test_stamp_going_backwards_resets_the_reference():
    scores = np.concatenate([noisy(0.60, 50), noisy(0.52, 50, 1)])
    times = np.concatenate([100.0 + np.arange(50) / RATE, 10.0 + np.arange(50) / RATE])  # bag loop
    res = run(scores, times=times)
    assert res[50].reference is None  # forgotten at the jump
    assert not rejected(res)[50:].any()  # the new stream learns its own level


def test_reset_on_lifecycle_transition_and_no_clock():
    m = CameraMonitor("cam", TH)
    run(noisy(0.6, 30), monitor=m)
    assert m.reference.reference is not None
    m.reset()
    assert m.reference.reference is None
    res = m.decide(Checked(m, None, time_s=None), ScoreOutcome(0.5))  # no clock: thresholds only
    assert res.level == Level.OK and res.reference is None


def test_warm_up_before_any_relative_drop():
    scores = np.concatenate([np.full(5, 0.6), np.full(5, 0.5)])
    res = run(scores, ReferenceParams(warmup_s=1.0))
    assert not rejected(res).any()  # 1 s of learning not reached before the drop


def test_params_reject_out_of_range_values():
    with pytest.raises(ValueError, match="margin"):
        ReferenceParams(margin=-0.1)
    with pytest.raises(ValueError, match="window_s"):
        ReferenceGate(ReferenceParams(window_s=0.0))


def test_decision_metrics_and_delays():
    def d(label, cat, level):
        return Decided(label, cat, level)

    frames = ([d("clear", CLEAN, "OK")] * 5 + [d("haze", FAULT, "OK")] * 2 + [d("haze", FAULT, "WARN")] * 2
              + [d("clear", CLEAN, "WARN")] * 3 + [d("clear", CLEAN, "OK")] * 8
              + [d("glare", FAULT, "ERROR")] * 4)
    m = decision_metrics(frames)
    assert m["faulty_frames"] == 8 and m["clean_frames"] == 16
    assert m["drop_recall"] == pytest.approx(6 / 8)
    assert m["error_recall"] == pytest.approx(4 / 8)
    assert m["clean_false_reject"] == pytest.approx(3 / 16)
    assert m["balanced_accuracy"] == pytest.approx((6 / 8 + 13 / 16) / 2)
    assert m["per_type"]["haze"]["rejected"] == pytest.approx(0.5)
    s = stream_delays(frames)
    assert s["detection_delay_frames"]["each"] == [2, 0]
    assert s["recovery_delay_frames"]["each"] == [3]  # glare ends the stream: no recovery to measure


def test_cut_detector_sees_cuts_not_pans_or_faults():
    """A cut is a change of structure (edges), not of light: a pan, low light and a glare flare that
    covers a third of the frame continue the scene; another scene is a cut."""
    from hirqa_ros.reference import CutDetector

    rng = np.random.default_rng(3)
    a = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    a = np.ascontiguousarray(np.repeat(np.repeat(a[::8, ::8], 8, 0), 8, 1)[:120, :160])  # blocky scene
    b = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    b = np.ascontiguousarray(np.repeat(np.repeat(b[::8, ::8], 8, 0), 8, 1)[:120, :160])
    yy, xx = np.mgrid[:120, :160]
    flare = 300.0 * np.exp(-((xx - 110) ** 2 + (yy - 40) ** 2) / (2 * 35.0 ** 2))
    glare = np.clip(a * 0.5 + 60 + flare[..., None], 0, 255).astype(np.uint8)  # veil + flare (the plain
    # 32x24 thumbnail used before correlated 0.11 with the clean frame here: a false cut)
    th = ReferenceParams().cut_corr
    det = CutDetector()
    assert not det.update(a, th)  # first frame: nothing to compare
    assert not det.update(np.roll(a, 2, axis=1), th)  # a small pan
    assert not det.update((a * 0.4).astype(np.uint8), th)  # low light: same scene, darker
    assert not det.update(glare, th)  # glare
    assert not det.update(a, th)  # and back
    assert det.update(b, th)  # another scene
    det.reset()
    assert not det.update(a, th)


def test_after_a_cut_the_reference_re_anchors_only_when_the_head_calls_the_new_scene_clean():
    """With ``cut_reanchor_s`` 0 only the fault head re-anchors after a cut."""
    scores = np.concatenate([noisy(0.62, 50), noisy(0.52, 60, 1)])  # the new scene scores 0.1 lower

    def go(none_after):
        mon = CameraMonitor("cam", TH, reference=ReferenceParams(median_n=1, cut_reanchor_s=0.0))
        out = []
        for i, s in enumerate(scores):
            p = 0.3 if i < 50 else none_after
            ranked = (("motion_blur", 1 - p), ("none", p))
            c = Checked(mon, None, time_s=100.0 + i / RATE, cut=(i == 50))
            out.append(mon.decide(c, ScoreOutcome(float(s), fault_ranked=ranked)))
        return rejected(out)

    clean_scene = go(0.15)  # the head calls it clean (none above learn_none, below reaccept_none)
    assert clean_scene[50:55].all() and not clean_scene[50 + 12:].any()  # back within ~1 s
    shaken = go(0.01)  # a fault across the cut: the old reference stays
    assert shaken[50:].all()


def cut_run(scores, cut_at, none=0.03, params=None):
    """Levels of ``scores`` at 10 Hz with a scene cut at frame ``cut_at`` and a head that is unsure (``none``
    below ``reference_learn_none``: as on content the model has not seen)."""
    mon = CameraMonitor("cam", TH, reference=params or ReferenceParams(median_n=1))
    out = []
    for i, s in enumerate(scores):
        p = 0.3 if i < cut_at else none
        c = Checked(mon, None, time_s=100.0 + i / RATE, cut=(i == cut_at))
        out.append(mon.decide(c, ScoreOutcome(float(s), fault_ranked=(("haze", 1 - p), ("none", p)))))
    return rejected(out)


def test_after_a_cut_the_new_scene_is_re_accepted_after_cut_reanchor_s_whatever_the_head_says():
    """A cut to a scene scoring 0.1 lower that the head does not call clean: dropped for
    ``cut_reanchor_s`` (0.5 s), then re-anchored on it; a fault that starts later in the new shot is
    judged against the new scene's reference; with the rule off the drop lasts."""
    scores = np.concatenate([noisy(0.62, 50), noisy(0.52, 100, 1)])
    rej = cut_run(scores, 50)
    assert rej[50:50 + 4].all() and not rej[50 + 6:].any()
    later = np.concatenate([noisy(0.62, 50), noisy(0.60, 40, 1), noisy(0.52, 40, 2)])
    rej = cut_run(later, 50)
    assert not rej[50:90].any() and rej[91:].all()  # a drop 4 s after the cut is not re-anchored
    off = cut_run(scores, 50, params=ReferenceParams(median_n=1, cut_reanchor_s=0.0))
    assert off[50:].all()


def test_after_a_cut_a_scene_scoring_a_little_lower_is_re_anchored_at_cut_reanchor_s():
    """A new scene whose frames straddle the margin (0.07 lower, half of them dropped) would never be
    learned (only frames within half the margin are): at ``cut_reanchor_s`` the reference re-anchors on
    it, also when the frame that ends the window is floor-rejected (the decision waits for the next
    judged frame). A new scene near the reference is learned as it comes; with floors rejecting most
    frames since the cut (a fault across it) the old reference stays."""
    scores = np.concatenate([np.full(50, 0.62), 0.55 + 0.01 * (-1) ** np.arange(100)])
    rej = cut_run(scores, 50)
    assert rej[50:55].any() and not rej[56:].any()
    floored = scores.copy()
    floored[55] = 0.45  # below WARN at the window's end
    rej = cut_run(floored, 50)
    assert rej[55] and not rej[57:].any()
    faulty = scores.copy()
    faulty[50:56] = 0.45  # every frame of the window floored: not a new scene
    assert cut_run(faulty, 50)[56:].sum() > 40


def test_median_of_three_ignores_single_frame_dips_and_delays_a_fault_by_one_frame():
    """Clean frames whose score jitters down by more than the margin for one frame at a time are dropped
    frame by frame but not on the median of the last 3; a real drop costs one frame at its onset and none
    at its end (the higher of the score and the median is judged)."""
    clean = noisy(0.60, 120)
    clean[55::7] -= 0.095  # single-frame dips (one in seven frames), 0.025 past the margin
    assert rejected(run(clean, median_n=1))[55::7].all()
    assert not rejected(run(clean, median_n=3)).any()
    assert ReferenceParams().median_n == 3
    fault = np.concatenate([noisy(0.60, 50), noisy(0.50, 40, 1), noisy(0.60, 30, 2)])
    rej = rejected(run(fault, median_n=3))
    assert not rej[:51].any() and rej[51:90].all() and not rej[90:].any()  # onset +1 frame, recovery at once


def test_median_window_is_cleared_on_reset():
    g = ReferenceGate(ReferenceParams(median_n=3, warmup_s=0.0))
    for i in range(20):
        g.update(10.0 + i / RATE, 0.60, True)
    g.reset()
    assert g.reference is None and not g.update(20.0, 0.40, True)[0]


def test_spread_widens_the_margin_on_a_noisy_camera_only():
    noisy_cam = noisy(0.60, 300, sd=0.03)
    quiet = ReferenceGate(ReferenceParams(spread_k=3.0, median_n=1, margin=0.055))
    loud = ReferenceGate(ReferenceParams(spread_k=3.0, median_n=1, margin=0.055))
    fixed = ReferenceGate(ReferenceParams(spread_k=0.0, median_n=1, margin=0.055))
    drops = {id(g): 0 for g in (loud, fixed)}
    for i, (a, b) in enumerate(zip(noisy(0.60, 300, 5, sd=0.004), noisy_cam)):
        t = 10.0 + i / RATE
        quiet.update(t, a, True)
        for g in (loud, fixed):
            drops[id(g)] += bool(g.update(t, b, True)[0])
    assert quiet.margin == pytest.approx(0.055)  # 3 x 0.004 < margin: unchanged
    assert 0.07 < loud.margin < 0.12  # ~3 x 0.03
    assert drops[id(loud)] < drops[id(fixed)] / 3
    big = np.concatenate([noisy(0.60, 100, sd=0.03), np.full(30, 0.45)])  # a fault still falls past it
    assert rejected(run(big, ReferenceParams(spread_k=3.0), median_n=3))[102:130].all()


def test_temporal_params_ranges():
    for bad in ({"median_n": 0}, {"median_n": 16}, {"spread_k": -0.1}, {"spread_k": 21.0}):
        with pytest.raises(ValueError):
            ReferenceParams(**bad)
