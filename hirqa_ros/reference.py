"""The per-camera reference gate (ROS-free): a robust reference of the camera's own recent accepted
scores, and ``relative_drop`` when a frame falls more than a margin below it (docs/gate.md).

The absolute thresholds stay the floor; this gate only adds rejections. Guards: the reference
learns only from frames the absolute thresholds accept and that lie near it (so neither a fault
present from the first frame nor a slowly thickening one becomes "normal"); it resets when time
goes backwards (bag loop), after ``max_age_s`` without learning, and on :meth:`ReferenceGate.reset`
(the node calls it on lifecycle transitions); after a scene change, a run of ``reaccept_s`` seconds of
dropped frames that the fault head calls clean (median ``none`` probability) re-anchors it on the
new scene; after a scene cut (:class:`CutDetector`: the edges of consecutive frames' small grey
thumbnails no longer correlate) ``warmup_s`` seconds at ``learn_none`` suffice, and ``cut_reanchor_s``
seconds of a new scene that scores lower (median more than half the margin below) re-anchor it whatever
the head says (on content the model has not seen the head is often unsure). Until it is warm, every
accepted frame is learned. A frame is judged on the median of the camera's last ``median_n`` scores or
its own, whichever is higher (single-frame jitter is not a drop, a clean frame after a fault is accepted
at once), against a margin that widens with the reference window's robust spread (``spread_k`` x MAD
x 1.4826) on a camera whose clean score is noisy.

Classical cue rules (``stream_cues``; faults the score barely sees): ``too_dark`` (dark with a high noise
floor: underexposed), ``noisy`` (noise floor above a limit) as absolute floors (off by default), and,
against the camera's reference cue (the median of its accepted frames since the last cut), ``blocky``
(JPEG blockiness well above it), ``noisy`` (noise floor above 2x it), ``too_dark`` (darker while the
noise floor rose) and ``veiled`` (black level well above it, contrast down, score below its reference:
glare, haze): held while they last, never re-anchored away. ``shaky`` is a floor on the frames'
blur effect flickering: a shaking camera blurs each exposure along another path, so the blur changes
from frame to frame, while a steady view's blur changes slowly (it needs no reference: a shake that
continues across a cut stays rejected). The fault-head rule ``fault_head`` is a
floor too: the head's ``none`` probability near 0 in the frame and in most of the camera's last frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np

from hirqa_ros.stream_cues import StreamCue

RELATIVE_DROP = "relative_drop"  # FrameResult.reason of a frame rejected by this gate on its score
TOO_DARK = "too_dark"  # ... on its mean luma and noise floor (darker and noisier: underexposed)
BLOCKY = "blocky"  # ... on its JPEG blockiness (well above the camera's reference's)
NOISY = "noisy"  # ... on its noise floor (above the camera's own, or an absolute limit)
FAULT_HEAD = "fault_head"  # ... on the fault head: its median ``none`` probability over a few frames is ~0
VEILED = "veiled"  # ... on its black level (well above the camera's reference's: glare, haze)
SHAKY = "shaky"  # ... on its blur flickering from frame to frame (a shaking camera)
SHAKE_N = 3  # ``shaky`` judges the median of the camera's last SHAKE_N frame-to-frame blur changes
CUE_MIN_FRAMES = 5  # accepted frames behind a reference cue before the relative cue rules judge
NOISE_REF_MIN = 1.5  # the relative noise rule reads a reference noise floor below this (8-bit sigma) as this
DARK_NOISE_RISE = 1.5  # relative too_dark also needs the noise floor above this x the reference's ...
DARK_NOISE_REF_MIN = 0.5  # ... read as at least this (underexposed at high gain: darker AND noisier)


@dataclass(frozen=True)
class ReferenceParams:
    """The gate's parameters (the node's parameters and CLI flags of the same names).

    ``relative``: on/off (off = absolute thresholds only); ``window_s``: the reference follows the median
    of the learned scores of the last ``window_s`` seconds of learning, up at once, down at most
    ``fall_per_s`` per second (a slow drift, e.g. thickening haze, cannot drag it along); ``margin``:
    a frame more than this below the reference is dropped; ``warmup_s``: no relative drop before the
    reference has learned for this long; ``max_age_s``: forget the reference after this long without learning;
    ``reaccept_s`` and ``reaccept_none``: re-anchor after ``reaccept_s`` seconds of relative drops
    whose median fault-head ``none`` probability is >= ``reaccept_none`` (a clean new scene; 0 = never);
    ``learn_none``: with a fault head, only frames whose ``none`` probability is at least this are
    learned (a fault the score sees only slowly never moves the reference; 0 = every frame);
    ``cut_corr``: a frame whose structure (64x48 grey thumbnail minus its blur) correlates less than this
    with the previous frame's is a scene cut, after which the reference re-anchors sooner (-1 = never);
    ``median_n``: the drop is judged on the higher of the frame's score and the median of the camera's
    last ``median_n`` scores, this frame's included (1 = the frame alone; n adds at most n // 2 frames of
    detection delay and none of recovery); ``spread_k``: the margin is at least ``spread_k`` x the robust
    spread (MAD x 1.4826) of the learned scores in the window (0 = fixed);
    ``dark_luma``/``dark_noise``: ``too_dark`` when the mean luma (0..255) is <= ``dark_luma`` and the noise
    floor (8-bit sigma) >= ``dark_noise``; ``noise_abs``: ``noisy`` when the noise floor is >= this;
    ``block_ratio``: ``blocky`` when the JPEG blockiness is above this x the reference cue's (0: rule off);
    ``noise_ratio``: ``noisy`` when the noise floor is above this x the reference cue's (read as at least
    ``NOISE_REF_MIN``; 0: rule off); ``dark_ratio``: ``too_dark`` when the mean luma is below this x the
    reference cue's and the noise floor above ``DARK_NOISE_RISE`` x its (0: rule off); ``shake_flicker``:
    ``shaky`` when the median of the camera's last ``SHAKE_N`` frame-to-frame changes of the blur effect
    (since the last cut) is above this (0: rule off); ``veil_rise``: ``veiled`` when the black level is more
    than this above the reference cue's (0..255) while the range from black to white level shrank (a veil
    lifts the blacks more than the whites; light coming back after a dark start lifts both) and the score
    is below the reference (0: rule off);
    ``head_none``/``head_n``: ``fault_head`` when the frame's ``none`` probability and the median of the
    camera's last ``head_n`` are both below ``head_none`` (0: rule off); ``cut_reanchor_s``: after a scene
    cut, re-anchor on the new scene after this long when its frames' median score is more than half the
    margin below the reference (they would never be learned) and the floors passed at least half of them,
    whatever the fault head says (0: only the head re-anchors)."""

    relative: bool = True
    window_s: float = 5.0
    margin: float = 0.07
    fall_per_s: float = 0.005
    warmup_s: float = 1.0
    max_age_s: float = 300.0
    reaccept_s: float = 2.0
    reaccept_none: float = 0.2
    learn_none: float = 0.06
    cut_corr: float = 0.2
    median_n: int = 3
    spread_k: float = 0.0
    dark_luma: float = 0.0
    dark_noise: float = 0.8
    noise_abs: float = 0.0
    block_ratio: float = 1.3
    noise_ratio: float = 2.0
    dark_ratio: float = 0.75
    shake_flicker: float = 0.008
    veil_rise: float = 20.0
    head_none: float = 0.0
    head_n: int = 3
    cut_reanchor_s: float = 0.5

    def __post_init__(self) -> None:
        for name, (lo, hi) in RANGES.items():
            value = getattr(self, name)
            if not lo <= float(value) <= hi:
                raise ValueError(f"reference gate: {name} must be in [{lo:g}, {hi:g}], got {value}")


#: allowed [lo, hi] of each numeric :class:`ReferenceParams` field (also the node's and CLI's ranges)
RANGES = {"window_s": (0.1, 3600.0), "margin": (0.0, 1.0), "fall_per_s": (0.0, 1.0),
          "warmup_s": (0.0, 3600.0), "max_age_s": (0.1, 86400.0), "reaccept_s": (0.0, 3600.0),
          "reaccept_none": (0.0, 1.0), "learn_none": (0.0, 1.0), "cut_corr": (-1.0, 1.0),
          "median_n": (1, 15), "spread_k": (0.0, 20.0), "dark_luma": (0.0, 255.0),
          "dark_noise": (0.0, 255.0), "noise_abs": (0.0, 255.0), "block_ratio": (0.0, 100.0),
          "noise_ratio": (0.0, 100.0), "dark_ratio": (0.0, 1.0), "shake_flicker": (0.0, 1.0),
          "veil_rise": (0.0, 255.0),
          "head_none": (0.0, 1.0), "head_n": (1, 50),
          "cut_reanchor_s": (0.0, 60.0)}

#: node parameter / CLI flag (``--reference-window-s``...) of each :class:`ReferenceParams` field
PARAM_NAMES = {"relative": "relative", "window_s": "reference_window_s", "margin": "reference_margin",
               "fall_per_s": "reference_fall_per_s",
               "warmup_s": "reference_warmup_s", "max_age_s": "reference_max_age_s",
               "reaccept_s": "reference_reaccept_s", "reaccept_none": "reference_reaccept_none",
               "learn_none": "reference_learn_none", "cut_corr": "reference_cut_corr",
               "median_n": "reference_median_n", "spread_k": "reference_spread_k",
               "dark_luma": "reference_dark_luma", "dark_noise": "reference_dark_noise",
               "noise_abs": "reference_noise_abs", "block_ratio": "reference_block_ratio",
               "noise_ratio": "reference_noise_ratio", "dark_ratio": "reference_dark_ratio",
               "shake_flicker": "reference_shake_flicker", "veil_rise": "reference_veil_rise",
               "head_none": "reference_head_none", "head_n": "reference_head_n",
               "cut_reanchor_s": "reference_cut_reanchor_s"}


def params_from(get: Callable[[str], Any]) -> ReferenceParams:
    """:class:`ReferenceParams` from a getter of the node parameters / CLI options by their names."""
    return ReferenceParams(**{f.name: get(PARAM_NAMES[f.name]) for f in fields(ReferenceParams)})


@dataclass
class ReferenceGate:
    """One camera's reference. :meth:`update` once per scored frame, in stream order."""

    params: ReferenceParams = field(default_factory=ReferenceParams)
    _samples: deque = field(default_factory=deque)  # (t, score) learned
    _first_t: float | None = None  # first learned frame since the last reset
    _level: float | None = None  # the reference level (median, slew-limited downwards)
    _last_t: float | None = None  # last frame seen
    _clean_run: list = field(default_factory=list)  # (t, score, none_prob): the last reaccept_s of drops
    _run_start: float = 0.0  # when the current run of drops began
    _after_cut: bool = False  # a scene cut since the last accepted frame: re-anchor sooner
    _recent: deque = field(default_factory=deque)  # the camera's last median_n scores
    _spread: float = 0.0  # robust spread (MAD x 1.4826) of the learned scores in the window
    _cues: deque = field(default_factory=deque)  # (t, StreamCue) of the accepted frames since the last cut
    _nones: deque = field(default_factory=deque)  # the fault head's last head_n ``none`` probabilities
    _cut_t: float | None = None  # the last scene cut, for cut_reanchor_s (None: none pending)
    _cut_frames: int = 0  # frames since it
    _cut_run: list = field(default_factory=list)  # (t, score, cue) of the frames judged since it
    _blurs: deque = field(default_factory=deque)  # the blur effect of the last SHAKE_N + 1 frames since a cut
    resets: int = 0

    def reset(self) -> None:
        """Forget the reference (lifecycle transition, stamp jump, too old, scene change)."""
        self._samples.clear()
        self._first_t = None
        self._level = None
        self._clean_run = []
        self._after_cut = False
        self._recent.clear()
        self._spread = 0.0
        self._cues.clear()
        self._nones.clear()
        self._cut_t = None
        self._blurs.clear()
        self.resets += 1

    @property
    def margin(self) -> float:
        """The drop margin now: ``margin``, widened to ``spread_k`` x the reference window's robust spread."""
        return max(self.params.margin, self.params.spread_k * self._spread)

    @property
    def reference(self) -> float | None:
        """The reference level once warmed up, else None."""
        if len(self._samples) < 3 or self._first_t is None or self._level is None:
            return None
        if self._samples[-1][0] - self._first_t < self.params.warmup_s:
            return None
        return self._level

    @property
    def reference_cue(self) -> StreamCue | None:
        """Per-field median cue of the accepted frames in the window since the last cut (None: too few)."""
        if len(self._cues) < CUE_MIN_FRAMES:
            return None
        rows = [tuple(vars(c).values()) for _, c in self._cues]  # per frame: astuple is 50x slower
        med = np.median(np.array(rows), axis=0)
        return StreamCue(*(float(v) for v in med))

    def absolute_cue_fault(self, cue: StreamCue | None) -> str:
        """``too_dark`` for a dark frame with a high noise floor (an underexposed sensor at high gain: mean
        luma <= ``dark_luma``, noise floor >= ``dark_noise``), ``noisy`` for a noise floor >= ``noise_abs``,
        else "" (floors like the thresholds: no reference needed, never re-accepted; 0 turns a rule off)."""
        p = self.params
        if not p.relative or cue is None:
            return ""
        if p.dark_luma > 0 and cue.luma <= p.dark_luma and cue.noise >= p.dark_noise:
            return TOO_DARK
        if p.noise_abs > 0 and cue.noise >= p.noise_abs:
            return NOISY
        return ""

    def _head_fault(self, none_prob: float | None) -> str:
        """``fault_head`` when the frame's ``none`` probability and the median of the camera's last ``head_n``
        frames' are both below ``head_none`` (0: rule off), else ""."""
        p = self.params
        if p.head_none <= 0 or none_prob is None:
            return ""
        self._nones.append(float(none_prob))
        while len(self._nones) > p.head_n:
            self._nones.popleft()
        judged = max(float(none_prob), float(np.median(self._nones)))  # a clean frame after a fault passes
        return FAULT_HEAD if judged < p.head_none else ""

    def _shake_fault(self, cue: StreamCue | None) -> str:
        """``shaky`` when the median of the last ``SHAKE_N`` frame-to-frame changes of the blur effect (since
        the last cut) is above ``shake_flicker`` (0: rule off), else ""; every frame with a cue counts,
        rejected ones too. One step (a pan onto softer content) is one change; one odd frame is two (in and
        out), so it is dropped with the frame after it."""
        p = self.params
        if p.shake_flicker <= 0 or cue is None:
            return ""
        self._blurs.append(cue.blur)
        while len(self._blurs) > SHAKE_N + 1:
            self._blurs.popleft()
        if len(self._blurs) <= SHAKE_N:
            return ""
        flicker = float(np.median(np.abs(np.diff(np.array(self._blurs)))))
        return SHAKY if flicker > p.shake_flicker else ""

    def _relative_cue_fault(self, cue: StreamCue | None, score: float) -> str:
        """Against the camera's reference cue: ``blocky`` (blockiness above ``block_ratio`` x), ``noisy``
        (noise floor above ``noise_ratio`` x, the reference read as at least ``NOISE_REF_MIN``), ``too_dark``
        (luma below ``dark_ratio`` x and noise floor above ``DARK_NOISE_RISE`` x), ``veiled`` (black level
        ``veil_rise`` above, black-to-white range narrower, and ``score`` below the score reference: a
        brighter new scene that scores higher is not veiled), else ""."""
        p = self.params
        on = p.block_ratio > 0 or p.noise_ratio > 0 or p.dark_ratio > 0 or p.veil_rise > 0
        ref = self.reference_cue if cue is not None and on else None  # the median is per frame: skip when off
        if ref is None:
            return ""
        if p.block_ratio > 0 and cue.blockiness > p.block_ratio * ref.blockiness:
            return BLOCKY
        if p.noise_ratio > 0 and cue.noise > p.noise_ratio * max(ref.noise, NOISE_REF_MIN):
            return NOISY
        if p.dark_ratio > 0 and cue.luma < p.dark_ratio * ref.luma \
                and cue.noise > DARK_NOISE_RISE * max(ref.noise, DARK_NOISE_REF_MIN):
            return TOO_DARK
        if p.veil_rise > 0 and cue.black > ref.black + p.veil_rise \
                and cue.white - cue.black < ref.white - ref.black \
                and self.reference is not None and score < self.reference:
            return VEILED
        return ""

    def update(self, t: float | None, score: float, absolute_ok: bool,
               none_prob: float | None = None, cut: bool = False,
               cue: StreamCue | None = None) -> tuple[str, float | None]:
        """(why the frame is dropped: ``relative_drop``, ``too_dark``, ``blocky``, ``noisy``, ``shaky``,
        ``fault_head``, or "" when it is not; the reference the frame was judged against) for a frame at
        stream time ``t``
        (seconds; None: no clock, no relative gate) with ``score``; ``absolute_ok``: the absolute thresholds
        accept it; ``none_prob``: the fault head's probability of ``none`` (None: no head); ``cut``: the
        frame starts a new scene (:class:`CutDetector`); ``cue``: its classical cues (``stream_cues``; None:
        the cue rules are off)."""
        p = self.params
        if not p.relative or t is None:
            return "", None
        if self._last_t is not None and t < self._last_t:
            self.reset()  # time went backwards: a bag loop or a restarted clock
        self._last_t = t
        if self._samples and t - self._samples[-1][0] > p.max_age_s:
            self.reset()
        if cut:  # a new scene: re-anchor quickly once the head calls it clean (_reaccept), keep it until then
            self._clean_run = []
            self._after_cut = True
            self._cues.clear()  # the reference cue is the scene's: relearned on the new one
            self._blurs.clear()  # a blur change across a cut is the scene's, not a shake
            self._cut_t, self._cut_frames, self._cut_run = t, 0, []
        self._cut_frames += 1
        self._recent.append(float(score))
        while len(self._recent) > p.median_n:
            self._recent.popleft()
        ref, margin = self.reference, self.margin
        judged = max(float(score), float(np.median(self._recent)))  # a clean frame after a fault is not held
        head, shaky = self._head_fault(none_prob), self._shake_fault(cue)
        floor = (self.absolute_cue_fault(cue) or shaky or head) if absolute_ok else ""
        usable = absolute_ok and not floor  # no floor rejects it: the reference may judge and learn it
        reason = ""
        if usable:
            reason = self._judge(t, score, ref is not None and judged < ref - margin, none_prob, cue)
        else:
            self._end_run()
        # until the reference is warm every accepted frame counts: without one nothing is dropped anyway,
        # and on content the model has not seen the head may call every clean frame unclean
        clean = none_prob is None or none_prob >= p.learn_none or ref is None
        near = ref is None or score >= ref - margin / 2.0
        if usable and reason != RELATIVE_DROP and clean and near:
            self._learn(t, score)  # a frame only the cues drop still tells the score of this content
        if usable and not reason:  # the cues of every accepted frame, whatever the head
            self._learn_cue(t, cue)  # says (on content the model has not seen it is often unsure)
        return floor or reason, ref

    def _judge(self, t: float, score: float, dropped: bool, none_prob: float | None,
               cue: StreamCue | None) -> str:
        """The reason of a frame no floor rejects: ``relative_drop`` (``dropped``: below the reference by the
        margin) unless the reference re-anchors on the run it ends (scene change), else a relative cue
        rule's. A cue rule holds whatever the score reference does; its frames' cues are never learned."""
        cue_fault = self._relative_cue_fault(cue, score)
        run_cue = None if cue_fault else cue
        reanchored = self._cut_reanchor(t, score, run_cue)
        if dropped and not (reanchored or self._reaccept(t, score, none_prob, run_cue)):
            return RELATIVE_DROP
        if not dropped and not cue_fault:
            self._end_run()
        return cue_fault

    def _end_run(self) -> None:
        """A frame that is not a relative drop ends the run of drops that may re-anchor the reference."""
        self._clean_run = []
        self._after_cut = False

    def _reaccept(self, t: float, score: float, none_prob: float | None, cue: StreamCue | None) -> bool:
        """Scene change: True (and the reference re-anchored on the run) once the run of dropped frames
        has lasted ``reaccept_s`` and the fault head's median ``none`` probability over its last
        ``reaccept_s`` seconds is at least ``reaccept_none`` (faults drive it to ~0; clean frames of
        any content keep it up); after a scene cut, ``warmup_s`` at ``learn_none`` suffice."""
        p = self.params
        if p.reaccept_none <= 0 or none_prob is None:
            return False
        span, need = (p.warmup_s, p.learn_none) if self._after_cut else (p.reaccept_s, p.reaccept_none)
        if not self._clean_run:
            self._run_start = t
        self._clean_run.append((t, score, none_prob, cue))
        while self._clean_run[0][0] < t - span:
            self._clean_run.pop(0)
        if t - self._run_start < span:
            return False
        if float(np.median([q for _, _, q, _ in self._clean_run])) < need:
            return False
        self._reanchor([(ti, si, ci) for ti, si, _, ci in self._clean_run])
        return True

    def _cut_reanchor(self, t: float, score: float, cue: StreamCue | None) -> bool:
        """After a scene cut, without the fault head's word: True (and the reference re-anchored on the
        frames judged since the cut) at the first judged frame ``cut_reanchor_s`` after the cut when their
        median score is more than half the margin below the reference (such frames are never learned:
        the new scene scores lower) and the floors passed at least half of the frames since the cut (a
        fault that continues across it, e.g. a shake, is not a new scene)."""
        p = self.params
        if p.cut_reanchor_s <= 0 or self._cut_t is None:
            return False
        self._cut_run.append((t, score, cue))
        if t - self._cut_t < p.cut_reanchor_s:
            return False
        run, self._cut_t = self._cut_run, None
        if len(run) < 0.5 * self._cut_frames or self.reference is None:
            return False
        if float(np.median([si for _, si, _ in run])) >= self.reference - self.margin / 2.0:
            return False  # near the reference: the new scene's frames are learned as they come
        self._reanchor(run)
        return True

    def _reanchor(self, run: list) -> None:
        """Start the score reference again on ``run``, (t, score, cue) of the new scene's frames, warmed up;
        the reference cue is kept (a scene cut clears it)."""
        cues, blurs = list(self._cues), list(self._blurs)
        self.reset()
        self._cues.extend(cues)
        self._blurs.extend(blurs)
        for ti, si, ci in run:
            self._learn(ti, si, ci)
        self._first_t = run[0][0] - self.params.warmup_s  # the run itself was the warm-up

    def _learn_cue(self, t: float, cue: StreamCue | None) -> None:
        """Add an accepted frame's cues; the cue window spans the last ``window_s`` of such frames."""
        if cue is None:
            return
        self._cues.append((t, cue))
        while self._cues[0][0] < t - self.params.window_s:
            self._cues.popleft()

    def _learn(self, t: float, score: float, cue: StreamCue | None = None) -> None:
        dt = t - self._samples[-1][0] if self._samples else 0.0
        if self._first_t is None:
            self._first_t = t
        self._samples.append((t, float(score)))
        while self._samples and self._samples[0][0] < t - self.params.window_s:
            self._samples.popleft()
        self._learn_cue(t, cue)
        scores = np.array([s for _, s in self._samples])
        med = float(np.median(scores))
        self._spread = 1.4826 * float(np.median(np.abs(scores - med)))
        if self._level is None or med >= self._level:
            self._level = med
        else:
            self._level = max(med, self._level - self.params.fall_per_s * max(dt, 0.0))


class CutDetector:
    """Scene cuts of one camera: the zero-mean, unit-norm structure of each frame (its 64x48 grey thumbnail
    minus a Gaussian blur of sigma 3 px: edges and texture, not lighting) against the previous frame's; a
    correlation below ``threshold`` is a cut. Measured on the gate's 14 sequences (docs/gate.md): the 70
    cuts -0.1..0.12; consecutive frames of pans, zooms and every fault 0.31 and above (clean 0.41, glare
    0.55). The plain thumbnail used before read a glare flare as a cut (0.29) and missed 3 cuts (0.36-0.5)."""

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None

    def update(self, rgb: np.ndarray, threshold: float) -> bool:
        """True when ``rgb`` (HxWx3 uint8 RGB) does not continue the previous frame's scene."""
        corr = self.correlation(rgb)
        return corr is not None and corr < threshold

    def correlation(self, rgb: np.ndarray) -> float | None:
        """The correlation of ``rgb``'s structure with the previous frame's (None: no previous frame, or
        one of the two is flat); ``rgb`` becomes the previous frame."""
        small = cv2.resize(rgb, (64, 48), interpolation=cv2.INTER_AREA).astype(np.float32)
        g = small @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        g -= cv2.GaussianBlur(g, (0, 0), 3.0)
        g -= g.mean()
        norm = float(np.linalg.norm(g))
        g = g / norm if norm > 1e-6 else g
        prev, self._prev = self._prev, g
        if prev is None or norm <= 1e-6 or float(np.linalg.norm(prev)) == 0.0:
            return None
        return float((g * prev).sum())

    def reset(self) -> None:
        self._prev = None
