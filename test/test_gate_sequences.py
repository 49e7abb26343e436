"""The gate's evaluation sequences (``bag.sequences``): per-camera scripts, fault segments with a
gradual onset, cuts; written as a real bag with labels and read back."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")

from hirqa_ros.bag.labels import Labels
from hirqa_ros.bag.make_bag import SegmentSpec
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.bag.sequences import CameraScript, Scenario, Shot, camera_frames, drive, moving, write_scenario


def _photos():
    rng = np.random.default_rng(0)
    return [(rng.random((90, 120, 3)) * 255).astype(np.uint8) for _ in range(3)]


def test_ramped_segment_levels_and_labels():
    s = SegmentSpec(10.0, 30.0, "haze", 4, "haze", ramp_s=8.0)
    assert [s.level_at(t) for t in (10.0, 12.5, 14.5, 16.5, 25.0)] == [1, 2, 3, 4, 4]
    assert s.label_spans() == [(10.0, 14.0, "haze_onset"), (14.0, 30.0, "haze")]
    assert SegmentSpec(1, 2, "glare", 3).label_spans() == [(1, 2, "glare")]


def test_camera_frames_follow_the_script_with_cuts():
    script = CameraScript([Shot(0, 1.0, "pan"), Shot(1, 1.0, "zoom"), Shot(1, 0.5, "still")], jitter_px=1.0)
    frames = list(camera_frames(script, _photos(), (64, 48), 10.0))
    assert len(frames) == 25 and all(f.shape == (48, 64, 3) for f in frames)
    assert script.cuts() == [1.0]  # same photo after 2 s: no cut
    assert not np.array_equal(frames[0], frames[9])  # the pan moves


def test_write_scenario_gives_each_camera_its_faults(tmp_path):
    cams = [CameraScript([Shot(0, 1.0), Shot(1, 1.0)], [SegmentSpec(0.0, 0.5, "low_light", 3, "low_light")]),
            CameraScript([Shot(2, 2.0)], [SegmentSpec(1.0, 2.0, "haze", 4, "haze", ramp_s=0.8)])]
    sc = Scenario("tiny", cams, (64, 48), 10.0, compressed=True)
    bag = write_scenario(sc, _photos(), tmp_path / "tiny", topics=("/a/image", "/b/image"))
    labels = Labels.load(str(bag) + ".labels.yaml", bag_start_ns=0)
    meta = json.loads((tmp_path / "tiny.scenario.json").read_text())
    assert meta["cuts_s"] == {"/a/image/compressed": [1.0], "/b/image/compressed": []}
    assert labels.drop_set == {"low_light", "haze"}
    t0 = labels.origin_ns
    assert labels.label_at("/a/image/compressed", t0 + 200_000_000) == "low_light"
    assert labels.label_at("/b/image/compressed", t0 + 200_000_000) == "clear"
    assert labels.label_at("/b/image/compressed", t0 + 1_100_000_000) == "haze_onset"
    assert labels.label_at("/b/image/compressed", t0 + 1_900_000_000) == "haze"
    r = BagReader(bag)
    try:
        counts = {t: i.count for t, i in r.topics.items()}
        assert counts == {"/a/image/compressed": 20, "/b/image/compressed": 20}
    finally:
        r.close()


def test_drive_and_moving_scripts():
    d = drive([0, 1])
    names = [s.name for s in d.cameras[0].faults]
    assert names == ["haze", "shake", "glare", "defocus", "noise", "low_light"]
    assert d.duration_s == pytest.approx(54.0) and d.size == (640, 480) and not d.compressed
    m = moving([0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11])
    assert m.compressed and m.size == (480, 360) and m.duration_s == pytest.approx(70.0)
    assert m.cameras[1].faults[0].start_s == 0.0  # a fault from the first frame
    assert len(m.cameras[0].cuts()) == 5


def _is_crop_of(frame, photo):
    fh, fw = frame.shape[:2]
    ph, pw = photo.shape[:2]
    return any(np.array_equal(frame, photo[y:y + fh, x:x + fw])
               for y in range(ph - fh + 1) for x in range(pw - fw + 1))


def test_views_are_never_upsampled_and_jitter_does_not_soften():
    """A zoom ends on the photo's own pixels (never an upsampled crop); the drive's deepest zoom likewise;
    jitter moves the window by whole pixels, so a still view's sharpness does not jitter."""
    rng = np.random.default_rng(3)
    photo = (rng.random((72, 96, 3)) * 255).astype(np.uint8)  # exactly 1.5x the 64x48 frame
    zoom = list(camera_frames(CameraScript([Shot(0, 1.0, "zoom")]), [photo], (64, 48), 10.0))
    assert _is_crop_of(zoom[-1], photo)
    drive_frames = list(camera_frames(CameraScript([Shot(0, 20.0, "drive")]), [photo], (64, 48), 10.0))
    assert _is_crop_of(drive_frames[150], photo)  # frac 0.65 of the photo < the frame: clamped, not upsampled
    big = cv2.resize((rng.random((60, 80)) * 255).astype(np.uint8), (800, 600), interpolation=cv2.INTER_CUBIC)
    still = camera_frames(CameraScript([Shot(0, 3.0, "still")], jitter_px=1.5), [np.dstack([big] * 3)],
                          (160, 120), 10.0)
    sharp = np.array([cv2.Laplacian(f[..., 0], cv2.CV_64F).var() for f in still])
    assert sharp.std() / sharp.mean() < 0.05  # sub-pixel resampling varied it by ~30 % (docs/gate.md)
