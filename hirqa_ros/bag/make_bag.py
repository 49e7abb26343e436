"""Build a labelled test bag (rosbag2, sqlite3 or MCAP; raw Image or CompressedImage) from a video or
an image folder, with degradation segments from hirqa_ros.degradations, plus its labels YAML."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hirqa_ros.bag.labels import KEEP_NAMES, Labels, Segment
from hirqa_ros.bag.reader import default_typestore
from hirqa_ros.files import is_image_file, read_image

log = logging.getLogger(__name__)

DEFAULT_START_NS = 1_700_000_000_000_000_000  # fixed, so bags are reproducible
# default segments, as fractions of the bag duration: camera faults of the distortion library
DEFAULT_SEGMENTS = (
    (0.15, 0.28, "haze", 4, "haze"),
    (0.38, 0.50, "defocus", 4, "blur"),
    (0.60, 0.72, "low_light", 4, "low_light"),
    (0.82, 0.94, "glare", 4, "glare"),
)


@dataclass(frozen=True)
class SegmentSpec:
    """Frames with ``start_s <= t - t0 < end_s`` get ``degradation`` at ``level``, labelled ``label``."""

    start_s: float
    end_s: float
    degradation: str
    level: int = 3
    label: str = ""
    ramp_s: float = 0.0  # gradual onset: the level climbs from 1 to ``level`` over the first ramp_s seconds

    @property
    def name(self) -> str:
        return self.label or self.degradation

    def level_at(self, rel_s: float) -> int:
        """The severity at ``rel_s`` seconds from the bag start (inside the segment)."""
        if self.ramp_s <= 0 or self.level <= 1:
            return self.level
        return min(self.level, 1 + int(self.level * max(0.0, rel_s - self.start_s) / self.ramp_s))

    def label_spans(self) -> list[tuple[float, float, str]]:
        """(start_s, end_s, label) of the segment: a ramped segment's frames below level 3 are labelled
        ``<name>_onset`` (a fault too faint to demand a drop), the rest ``<name>``."""
        if self.ramp_s <= 0 or self.level < 3:
            return [(self.start_s, self.end_s, self.name)]
        t3 = min(self.end_s, self.start_s + 2.0 * self.ramp_s / self.level)
        return [(self.start_s, t3, self.name + "_onset"), (t3, self.end_s, self.name)]

    @classmethod
    def parse(cls, text: str) -> SegmentSpec:
        """``START:END:DEGRADATION[:LEVEL[:LABEL]]`` (seconds from the bag start, level 1..5)."""
        parts = text.split(":")
        try:
            if len(parts) < 3 or len(parts) > 5:
                raise ValueError("wrong number of fields")
            start, end = float(parts[0]), float(parts[1])
            level = int(parts[3]) if len(parts) > 3 and parts[3] else 3
            label = parts[4] if len(parts) > 4 else ""
            if end <= start or not 0 <= level <= 5:
                raise ValueError("need END > START and LEVEL in 0..5")
        except ValueError as exc:
            raise ValueError(
                f"bad segment {text!r} ({exc}); expected START:END:DEGRADATION[:LEVEL[:LABEL]], "
                "e.g. 2:4:haze:4 or 6:7.5:defocus:3:blur"
            ) from None
        return cls(start, end, parts[2], level, label)


def default_segments(duration_s: float) -> list[SegmentSpec]:
    return [
        SegmentSpec(round(a * duration_s, 3), round(b * duration_s, 3), d, lv, lab)
        for a, b, d, lv, lab in DEFAULT_SEGMENTS
    ]


# --- frame sources ---
def fit_frame(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize + centre-crop a frame to exactly ``size`` = (W, H)."""
    w, h = size
    ih, iw = img.shape[:2]
    scale = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * scale)), max(h, round(ih * scale))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])


_fit = fit_frame


def _pan(img: np.ndarray, size: tuple[int, int], phase: float) -> np.ndarray:
    """A ``size`` view of ``img`` (scaled to 1.25x the frame) panned along ``phase`` in [0, 1]."""
    w, h = size
    big = _fit(img, (round(w * 1.25), round(h * 1.25)))
    bh, bw = big.shape[:2]
    x0 = round((bw - w) * phase)
    y0 = round((bh - h) * (0.5 + 0.5 * np.sin(np.pi * phase)) * 0.5)
    return np.ascontiguousarray(big[y0 : y0 + h, x0 : x0 + w])


def image_folder_frames(
    folder: str | Path, size: tuple[int, int], n: int, hold: int, offset: int = 0
) -> Iterator[np.ndarray]:
    """``n`` RGB frames from the photos in ``folder`` (sorted, cycled): each photo is shown for
    ``hold`` frames with a slow pan, so consecutive frames differ like a moving camera's."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p))
    photos = []
    for p in files:
        try:
            photos.append(read_image(p))
        except ValueError as exc:
            log.warning("skipping unreadable image %s: %s", p, exc)
    if not photos:
        raise ValueError(f"{folder}: no readable images")
    hold = max(1, hold)
    for i in range(n):
        k = i // hold + offset
        yield _pan(photos[k % len(photos)], size, (i % hold) / max(1, hold - 1) if hold > 1 else 0.5)


def video_frames(path: str | Path, size: tuple[int, int], n: int, offset: int = 0) -> Iterator[np.ndarray]:
    """``n`` RGB frames of a video (rewinding at its end), starting ``offset`` frames in."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open this video")
    try:
        got = 0
        skip = offset
        rewinds = 0
        while got < n:
            ok, frame = cap.read()
            if not ok:
                rewinds += 1
                if rewinds > 2 and got == 0:
                    raise ValueError(f"{path}: no frame could be read")
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            if skip > 0:
                skip -= 1
                continue
            got += 1
            yield _fit(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size)
    finally:
        cap.release()


# --- QoS ---
def recorded_qos(profile: str = "sensor") -> list[Any]:
    """The offered QoS stored with each image topic: ``sensor`` (best effort, keep last 5, as camera
    drivers publish) or ``reliable`` (keep last 10)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    inf = QosTime(sec=9223372036, nsec=854775807)  # rmw's "infinite"
    if profile not in ("sensor", "reliable"):
        raise ValueError(f"qos must be 'sensor' or 'reliable', got {profile!r}")
    best = profile == "sensor"
    return [
        Qos(
            QosHistory.KEEP_LAST,
            5 if best else 10,
            QosReliability.BEST_EFFORT if best else QosReliability.RELIABLE,
            QosDurability.VOLATILE,
            inf,
            inf,
            QosLiveliness.AUTOMATIC,
            inf,
            False,
        )
    ]


# --- the bag ---
@dataclass
class MadeBag:
    path: Path
    labels: Labels
    labels_path: Path | None
    topics: list[str]
    frames: int


def make_bag(
    out: str | Path,
    *,
    images: str | Path | None = None,
    video: str | Path | None = None,
    frames_from: Sequence[np.ndarray] | None = None,
    frames_per_topic: Sequence[Iterator[np.ndarray]] | None = None,
    segments_per_topic: Sequence[Sequence[SegmentSpec]] | None = None,
    topics: Sequence[str] = ("/camera/image_raw",),
    storage: str = "sqlite3",
    compressed: bool = False,
    encoding: str = "rgb8",
    jpeg_quality: int = 90,
    rate_hz: float = 10.0,
    size: tuple[int, int] = (640, 480),
    duration_s: float = 10.0,
    segments: Sequence[SegmentSpec] | None = None,
    labels_out: str | Path | None = None,
    hold_frames: int = 20,
    start_ns: int = DEFAULT_START_NS,
    qos: str = "sensor",
    seed: int = 0,
    progress: bool = False,
) -> MadeBag:
    """Write a bag of ``round(duration_s * rate_hz)`` frames per topic with ``segments`` degraded.

    Each frame's header stamp equals its bag time. Topic k starts ``k * hold_frames // 2`` frames
    later in the source, so cameras do not see identical images. Segments apply to every topic, or
    ``segments_per_topic`` (one list per topic) give each camera its own; ``frames_per_topic``: one
    iterator of ready-sized RGB frames per topic (e.g. ``bag.sequences``), instead of a source.
    """
    from rosbags.rosbag2 import StoragePlugin

    if sum(x is not None for x in (images, video, frames_from, frames_per_topic)) != 1:
        raise ValueError("give exactly one frame source: an image folder or a video")
    if storage not in ("sqlite3", "mcap"):
        raise ValueError(f"storage must be sqlite3 or mcap, got {storage!r}")
    if rate_hz <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    segs = list(default_segments(duration_s) if segments is None else segments)
    per_topic = [list(x) for x in segments_per_topic] if segments_per_topic is not None else None
    if per_topic is not None and len(per_topic) != len(topics):
        raise ValueError(f"segments_per_topic has {len(per_topic)} lists for {len(topics)} topics")
    _check_degradations(segs + [x for lst in per_topic or [] for x in lst])
    n = max(1, round(duration_s * rate_hz))
    out = Path(out)
    topic_names = [
        t if not compressed or t.endswith("/compressed") else t.rstrip("/") + "/compressed" for t in topics
    ]
    topic_segs = [(t, segs if per_topic is None else per_topic[k]) for k, t in enumerate(topic_names)]

    def source(k: int) -> Iterator[np.ndarray]:
        if frames_per_topic is not None:
            return iter(frames_per_topic[k])
        off = k * max(1, hold_frames // 2)
        if images is not None:
            return image_folder_frames(images, size, n, hold_frames, offset=k)
        if video is not None:
            return video_frames(video, size, n, offset=off)
        return (_fit(frames_from[(i + off) % len(frames_from)], size) for i in range(n))

    encode = _Encoder(compressed, encoding, jpeg_quality)
    _write_frames(out, StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3, encode,
                  [(t, lst, source(k)) for k, (t, lst) in enumerate(topic_segs)], n, rate_hz, start_ns,
                  qos, seed, progress)
    labels = _labels_of(topic_segs, start_ns)
    labels_path = labels.dump(labels_out) if labels_out else None
    log.info("wrote %s: %d frames x %d topic(s) (%s, %s, %gx%g at %g Hz), %d degraded segments%s", out, n,
             len(topic_names), storage, encode.msgtype.split("/")[-1], size[0], size[1], rate_hz,
             sum(len(lst) for _, lst in topic_segs), f"; labels {labels_path}" if labels_path else "")
    return MadeBag(out, labels, labels_path, topic_names, n)


def _check_degradations(segments: Sequence[SegmentSpec]) -> None:
    from hirqa_ros.degradations import DEGRADATIONS

    for s in segments:
        if s.level and s.degradation not in DEGRADATIONS:
            raise ValueError(
                f"unknown degradation {s.degradation!r}; known: {', '.join(sorted(DEGRADATIONS))}"
            )


class _Encoder:
    """RGB frame + stamp + topic -> a serialized Image or CompressedImage message."""

    def __init__(self, compressed: bool, encoding: str, jpeg_quality: int) -> None:
        self.typestore = default_typestore()
        self.msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        self.compressed, self.encoding, self.jpeg_quality = compressed, encoding, jpeg_quality

    def __call__(self, rgb: np.ndarray, t_ns: int, topic: str) -> bytes:
        from hirqa_ros.imgmsg import rgb_to_compressed_fields, rgb_to_image_fields

        types = self.typestore.types
        stamp = types["builtin_interfaces/msg/Time"](sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000)
        header = types["std_msgs/msg/Header"](stamp=stamp, frame_id=_frame_id(topic))
        if self.compressed:
            fields = rgb_to_compressed_fields(rgb, "jpeg", self.jpeg_quality)
        else:
            fields = rgb_to_image_fields(rgb, self.encoding)
        return self.typestore.serialize_cdr(types[self.msgtype](header=header, **fields), self.msgtype)


def _write_frames(out: Path, plugin: Any, encode: _Encoder,
                  topics: list[tuple[str, list[SegmentSpec], Iterator[np.ndarray]]], n: int, rate_hz: float,
                  start_ns: int, qos: str, seed: int, progress: bool) -> None:
    """``n`` frames per (topic, segments, frame source), interleaved in time, each degraded by the
    segment it falls in; header stamp = bag time."""
    from rosbags.rosbag2 import Writer
    from tqdm import tqdm

    from hirqa_ros.degradations import degrade

    period_ns = round(1e9 / rate_hz)
    with Writer(out, version=9, storage_plugin=plugin) as w, \
            tqdm(total=n * len(topics), unit="frame", desc="make-bag", disable=not progress) as bar:
        conns = [w.add_connection(t, encode.msgtype, typestore=encode.typestore,
                                  offered_qos_profiles=recorded_qos(qos)) for t, _, _ in topics]
        for i in range(n):
            t_ns = start_ns + i * period_ns
            rel = i / rate_hz
            for k, (conn, (_, mine, src)) in enumerate(zip(conns, topics)):
                seg = next((s for s in mine if s.start_s <= rel < s.end_s), None)
                rgb = next(src)
                if seg is not None and seg.level > 0:
                    rgb = degrade(rgb, seg.degradation, seg.level_at(rel), seed=seed + 1000 * k + i)
                w.write(conn, t_ns, encode(rgb, t_ns, conn.topic))
                bar.update(1)


def _labels_of(topic_segs: list[tuple[str, list[SegmentSpec]]], start_ns: int) -> Labels:
    """The labels of the segments (per topic, on the header stamps)."""
    return Labels(
        segments=[
            Segment(start_ns + round(a * 1e9), start_ns + round(b * 1e9), name, t)
            for t, lst in topic_segs
            for s in lst
            for a, b, name in s.label_spans()
        ],
        default_label="clear",
        drop_labels=frozenset(s.name for _, lst in topic_segs for s in lst
                              if s.name.lower() not in KEEP_NAMES and s.level > 0),
        clock="stamp",
        origin_ns=start_ns,
    )


def _frame_id(topic: str) -> str:
    parts = [p for p in topic.split("/") if p and p not in ("image_raw", "compressed", "image")]
    return (parts[0] if parts else "camera") + "_optical_frame"
