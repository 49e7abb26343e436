"""No-content and frozen checks: a lens cap, a white-out, a grey frame and a stuck driver are
named; real photographs (and their degradations up to level 5) are not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hirqa_ros.content import ContentLimits, FrozenDetector, no_content
from hirqa_ros.media import read_image

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "hirqa_ros" / "data" / "samples").glob("*.jpg"))
RNG = np.random.default_rng(0)


def _noisy(mean: float, std: float, shape=(480, 640, 3)) -> np.ndarray:
    return np.clip(RNG.normal(mean, std, shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "name,frame,reason",
    [
        ("lens cap: all black", np.zeros((480, 640, 3), np.uint8), "no_content: black"),
        ("lens cap: near-black sensor noise", _noisy(6, 4), "no_content: black"),
        ("saturated white", np.full((480, 640, 3), 255, np.uint8), "no_content: white"),
        ("white with noise", _noisy(250, 3), "no_content: white"),
        ("uniform grey", np.full((480, 640, 3), 128, np.uint8), "no_content: uniform"),
        ("grey with sensor noise", _noisy(128, 8), "no_content: uniform"),
        ("4K black", np.zeros((2160, 3840, 3), np.uint8), "no_content: black"),
    ],
)
def test_no_content_frames_are_named(name, frame, reason):
    assert no_content(frame) == reason, name


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_photographs_and_their_degradations_have_content(path):
    rgb = read_image(path)
    assert no_content(rgb) is None
    try:
        from hirqa_ros.degradations.registry import DEFAULT_TYPES, GROUPS, degrade
    except ImportError:  # torch missing: the photograph alone
        return
    for name in DEFAULT_TYPES:  # every distortion of the photo at its worst still has content
        assert no_content(degrade(rgb, name, 5, seed=1)) is None, name
    # the opt-in no-content fades at level 5 are what the check exists for
    expect = {"black_frame": "no_content: black", "white_frame": "no_content: white",
              "grey_frame": "no_content: uniform"}
    assert set(GROUPS["no_content"]) == set(expect)
    for name, reason in expect.items():
        assert no_content(degrade(rgb, name, 5, seed=1)) == reason, name


def test_levels_are_parameters():
    dark = np.repeat(np.linspace(20, 60, 640).astype(np.uint8)[None, :, None], 480, 0).repeat(3, 2)
    assert no_content(dark) is None  # a dark scene with structure
    assert no_content(dark, ContentLimits(black_level=70)) == "no_content: black"
    flat = np.full((48, 64, 3), 128, np.uint8)
    off = ContentLimits(black_level=-1, white_level=256, uniform_range=0)
    assert no_content(flat, off) == "no_content: uniform"
    assert no_content(_noisy(128, 20), ContentLimits(uniform_range=0)) is None
    with pytest.raises(ValueError):
        ContentLimits(frozen_s=-1)


def test_frozen_stream_is_reported_after_frozen_s():
    det = FrozenDetector(1.0)
    a, b = _noisy(100, 30, (48, 64, 3)), _noisy(100, 30, (48, 64, 3))
    assert [det.update(a, t) for t in (0.0, 0.5, 0.99)] == [False, False, False]
    assert det.update(a, 1.0) and det.update(a, 5.0)  # identical for >= 1 s
    assert not det.update(b, 5.1)  # new data: live again
    assert not det.update(a, 5.2)  # a different frame again, not the same as the last one
    # real sensors never repeat their noise: consecutive live frames are never frozen
    live = FrozenDetector(0.1)
    assert not any(live.update(_noisy(100, 3, (48, 64, 3)), t * 0.05) for t in range(50))
    # 0 turns it off; missing times never freeze
    off = FrozenDetector(0.0)
    assert not any(off.update(a, t) for t in range(10))
    assert not FrozenDetector(1.0).update(a, None)


def test_frozen_compares_bytes_not_looks():
    det = FrozenDetector(0.5)
    a = _noisy(100, 30, (48, 64, 3))
    b = a.copy()
    b[0, 0, 0] ^= 1  # one bit differs
    assert not det.update(a, 0.0) and not det.update(b, 1.0)
    assert not det.update(a.tobytes(), 2.0) and det.update(bytearray(a.tobytes()), 3.0)


def test_a_frozen_verdict_says_how_to_turn_the_check_off():
    """A static, noise-free simulator camera is byte-identical by design: the message names the switch."""
    from hirqa_ros.decision import Thresholds
    from hirqa_ros.monitor import CameraMonitor

    mon = CameraMonitor("sim", Thresholds(), content=ContentLimits(frozen_s=1.0))
    frame = _noisy(100, 30, (48, 64, 3))
    checked = [mon.check(frame, clock_s=t) for t in (0.0, 0.5, 1.5)]
    assert checked[-1].forced is not None and checked[-1].forced.reason == "frozen"
    assert "frozen_timeout_s 0 turns this check off" in checked[-1].forced.message
    off = CameraMonitor("sim", Thresholds(), content=ContentLimits(frozen_s=0.0))
    assert all(off.check(frame, clock_s=t).forced is None for t in (0.0, 5.0, 10.0))
