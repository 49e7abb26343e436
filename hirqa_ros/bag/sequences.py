"""Long two-camera evaluation sequences for the gate: camera motion (pans, zooms, jitter) over photos,
scene cuts (also to plainer scenes) and fault stretches (sudden, gradual, from the first frame, long).

A :class:`Scenario` is a script per camera (shots of photos with a motion, fault segments); its
frames come from :func:`camera_frames` and :func:`write_scenario` writes it with
``bag.make_bag.make_bag`` (labels YAML) plus a ``<bag>.scenario.json`` that lists the cuts.
:func:`drive` and :func:`moving` are the two scripts of docs/gate.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hirqa_ros.bag.make_bag import SegmentSpec, make_bag
from hirqa_ros.files import is_image_file, read_image

MOTIONS = ("pan", "zoom", "drive", "still")
OVERSCAN = 1.5  # a still/pan view is 1/1.5 of the photo (cropped to the frame's aspect) wide


@dataclass(frozen=True)
class Shot:
    """``seconds`` of photo ``photo`` seen with ``motion`` (pan: a window sliding sideways; zoom:
    a window shrinking, as when driving towards the scene; drive: slow zoom and pan waves; still)."""

    photo: int
    seconds: float
    motion: str = "pan"


@dataclass
class CameraScript:
    shots: list[Shot]
    faults: list[SegmentSpec] = field(default_factory=list)
    jitter_px: float = 0.0  # small random shifts of the view, per frame

    def cuts(self) -> list[float]:
        """Times (s) where the view jumps to another photo."""
        t, out = 0.0, []
        for a, b in zip(self.shots, self.shots[1:]):
            t += a.seconds
            if b.photo != a.photo:
                out.append(round(t, 3))
        return out


@dataclass
class Scenario:
    name: str
    cameras: list[CameraScript]
    size: tuple[int, int] = (640, 480)
    rate_hz: float = 10.0
    compressed: bool = False

    @property
    def duration_s(self) -> float:
        return min(sum(s.seconds for s in c.shots) for c in self.cameras)


def _native(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photo centre-cropped to the frame's aspect at its native resolution; upscaled (once) only when
    it is smaller than ``OVERSCAN`` x the frame, so every view is a downscale of real detail."""
    w, h = size
    ih, iw = photo.shape[:2]
    cw, ch = (round(ih * w / h), ih) if iw * h > ih * w else (iw, round(iw * h / w))
    x0, y0 = (iw - cw) // 2, (ih - ch) // 2
    crop = np.ascontiguousarray(photo[y0 : y0 + ch, x0 : x0 + cw])
    if cw < round(w * OVERSCAN):
        crop = cv2.resize(crop, (round(w * OVERSCAN), round(h * OVERSCAN)), interpolation=cv2.INTER_CUBIC)
    return crop


def _window(big: np.ndarray, size: tuple[int, int], frac: float, cx: float, cy: float,
            shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The frame ``size`` view of ``big``: a window of ``frac`` of its size centred at (cx, cy) in 0..1,
    moved by ``shift`` frame pixels (whole pixels of ``big``). The window is never smaller than the
    frame: a view is always a downscale (INTER_AREA), never an upsampled (softened) crop."""
    bh, bw = big.shape[:2]
    ww = min(bw, max(size[0], round(bw * frac)))
    wh = min(bh, max(size[1], round(ww * size[1] / size[0])))
    k = ww / size[0]
    x0 = int(np.clip(round(cx * bw - ww / 2 + shift[0] * k), 0, bw - ww))
    y0 = int(np.clip(round(cy * bh - wh / 2 + shift[1] * k), 0, bh - wh))
    crop = big[y0 : y0 + wh, x0 : x0 + ww]
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def _view(big: np.ndarray, size: tuple[int, int], motion: str, phase: float, t: float,
          shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    base = 1.0 / OVERSCAN
    if motion == "pan":
        return _window(big, size, base, 0.5 + 0.3 * (phase - 0.5), 0.5 + 0.08 * np.sin(np.pi * phase), shift)
    if motion == "zoom":
        return _window(big, size, 1.0 - (1.0 - base) * phase, 0.52, 0.55, shift)
    if motion == "drive":
        frac = 0.8 + 0.15 * np.sin(2 * np.pi * t / 20.0)
        return _window(big, size, frac, 0.5 + 0.1 * np.sin(2 * np.pi * t / 27.0),
                       0.5 + 0.05 * np.sin(2 * np.pi * t / 13.0), shift)
    if motion == "still":
        return _window(big, size, base, 0.5, 0.5, shift)
    raise ValueError(f"unknown motion {motion!r}; known: {', '.join(MOTIONS)}")


def camera_frames(script: CameraScript, photos: Sequence[np.ndarray], size: tuple[int, int], rate_hz: float,
                  seed: int = 0) -> Iterator[np.ndarray]:
    """The clean RGB frames of one camera's script (faults are added by the bag writer). Views are cut
    from the photo at its native resolution; jitter moves the window by whole native pixels (no
    sub-pixel resampling, which would soften frames by a random amount)."""
    rng = np.random.default_rng(seed)
    cache: dict[int, np.ndarray] = {}
    i = 0
    for shot in script.shots:
        if shot.photo not in cache:
            cache.clear()
            cache[shot.photo] = _native(photos[shot.photo % len(photos)], size)
        n = max(1, round(shot.seconds * rate_hz))
        for j in range(n):
            shift = tuple(rng.normal(0.0, script.jitter_px, 2)) if script.jitter_px > 0 else (0.0, 0.0)
            i += 1
            yield _view(cache[shot.photo], size, shot.motion, j / max(1, n - 1), (i - 1) / rate_hz, shift)


def load_photos(folder: str | Path) -> list[np.ndarray]:
    """Every readable photo under ``folder``, sorted by path."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p))
    photos = [read_image(p) for p in files]
    if not photos:
        raise ValueError(f"{folder}: no readable images")
    return photos


def detail(rgb: np.ndarray) -> float:
    """Texture of a photo: variance of the Laplacian of its 480x360 grey version."""
    g = cv2.cvtColor(cv2.resize(rgb, (480, 360), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(g, cv2.CV_64F).var())


def split_by_detail(photos: Sequence[np.ndarray], min_detail: float = 40.0) -> tuple[list[int], list[int]]:
    """(detailed, plain) photo indices: above / below the median texture (near-black photos dropped)."""
    d = np.array([detail(p) for p in photos])
    keep = np.flatnonzero(d >= min_detail)
    med = float(np.median(d[keep]))
    return [int(i) for i in keep if d[i] >= med], [int(i) for i in keep if d[i] < med]


DRIVE_FAULTS = (("haze", "haze"), ("camera_shake", "shake"), ("glare", "glare"), ("defocus", "defocus"),
                ("whitenoise", "noise"), ("low_light", "low_light"))


def drive(detailed: Sequence[int], level: int = 3, clean_start_s: float = 6.0, fault_s: float = 4.0,
          gap_s: float = 4.0) -> Scenario:
    """Two cameras at 640x480, 10 Hz, raw: slow zoom/pan waves with jitter over one photo each; after a
    clean start, 4-s stretches of haze, shake, glare, defocus, noise and low light (4-s clean gaps),
    the second camera in a rotated order."""
    cams = []
    for k in range(2):
        order = DRIVE_FAULTS[3 * k:] + DRIVE_FAULTS[:3 * k]
        faults, t = [], clean_start_s
        for deg, label in order:
            faults.append(SegmentSpec(t, t + fault_s, deg, level, label))
            t += fault_s + gap_s
        cams.append(CameraScript([Shot(detailed[k], t, "drive")], faults, jitter_px=1.5))
    return Scenario("drive", cams, (640, 480), 10.0, compressed=False)


def moving(detailed: Sequence[int], plain: Sequence[int], level: int = 3) -> Scenario:
    """Two cameras at 480x360, 10 Hz, compressed: pans and zooms with cuts between detailed and plainer
    photos; sudden faults, a fault from the first frame (camera 2), a gradual haze that becomes a long
    fault (camera 1) and a long shake across a cut (camera 2)."""
    d, p = list(detailed), list(plain)
    cam1 = CameraScript(
        [Shot(d[0], 9, "pan"), Shot(p[0], 8, "pan"), Shot(d[1], 10, "zoom"), Shot(p[1], 8, "pan"),
         Shot(d[2], 9, "pan"), Shot(p[2], 26, "pan")],
        [SegmentSpec(11, 15, "glare", level, "glare"), SegmentSpec(20, 24, "camera_shake", level, "shake"),
         SegmentSpec(29, 33, "jpeg_camera", level, "jpeg"),
         SegmentSpec(38.5, 42.5, "low_light", level, "low_light"),
         SegmentSpec(48, 70, "haze", 4, "haze", ramp_s=16.0)],
        jitter_px=1.0)
    cam2 = CameraScript(
        [Shot(p[3 % len(p)], 10, "pan"), Shot(d[3 % len(d)], 9, "zoom"), Shot(p[4 % len(p)], 8, "pan"),
         Shot(d[4 % len(d)], 10, "pan"), Shot(p[5 % len(p)], 9, "still"), Shot(d[5 % len(d)], 24, "pan")],
        [SegmentSpec(0, 5, "low_light", level, "low_light"),
         SegmentSpec(13, 17, "whitenoise", level, "noise"),
         SegmentSpec(22.5, 26.5, "defocus", level, "defocus"), SegmentSpec(31, 35, "glare", level, "glare"),
         SegmentSpec(40, 70, "camera_shake", level, "shake")],
        jitter_px=1.0)
    return Scenario("moving", [cam1, cam2], (480, 360), 10.0, compressed=True)


def write_scenario(scenario: Scenario, photos: Sequence[np.ndarray], out: str | Path, seed: int = 0,
                   topics: Sequence[str] = ("/cam_left/image_raw", "/cam_right/image_raw"),
                   progress: bool = False) -> Path:
    """Write the bag, its labels YAML (``<out>.labels.yaml``) and ``<out>.scenario.json`` (cuts per topic,
    the script); returns the bag path."""
    out = Path(out)
    cams = scenario.cameras
    frames = [camera_frames(c, photos, scenario.size, scenario.rate_hz, seed + 7 * k)
              for k, c in enumerate(cams)]
    made = make_bag(out, frames_per_topic=frames, segments_per_topic=[c.faults for c in cams],
                    topics=list(topics)[:len(cams)], compressed=scenario.compressed, rate_hz=scenario.rate_hz,
                    size=scenario.size, duration_s=scenario.duration_s, seed=seed,
                    labels_out=out.with_name(out.name + ".labels.yaml"), progress=progress)
    meta = {"name": scenario.name, "seed": seed, "size": list(scenario.size), "rate_hz": scenario.rate_hz,
            "cuts_s": {t: c.cuts() for t, c in zip(made.topics, cams)},
            "cameras": [asdict(c) for c in cams]}
    out.with_name(out.name + ".scenario.json").write_text(json.dumps(meta, indent=1))
    return made.path
