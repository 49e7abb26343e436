"""Helpers for the bag tests: tiny synthetic frames, tiny labelled bags, hand-made broken bags."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

W, H = 64, 48
START_NS = 1_700_000_000_000_000_000


def frames(n: int = 4, w: int = 96, h: int = 72, seed: int = 0) -> list[np.ndarray]:
    """``n`` photo-like RGB frames (gradients, shapes, texture), reproducible."""
    rng = np.random.default_rng(seed)
    out = []
    y, x = np.mgrid[0:h, 0:w]
    for k in range(n):
        img = np.stack([60 + 120 * x / w, 70 + 100 * y / h, 160 - 80 * x / w], axis=2).astype(np.uint8)
        for _ in range(10):
            c = tuple(int(v) for v in rng.integers(0, 255, 3))
            p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            if rng.random() < 0.5:
                cv2.circle(img, p, int(rng.integers(3, 15)), c, -1)
            else:
                cv2.rectangle(
                    img, p, (p[0] + int(rng.integers(4, 25)), p[1] + int(rng.integers(4, 20))), c, -1
                )
        img = np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
        out.append(np.ascontiguousarray(np.roll(img, 3 * k, axis=1)))
    return out


def write_images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames(n)):
        cv2.imwrite(str(folder / f"photo_{i}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return folder


def tiny_bag(
    path: Path,
    *,
    storage: str = "mcap",
    compressed: bool = False,
    duration_s: float = 2.0,
    rate_hz: float = 10.0,
    topics=("/cam/image_raw",),
    segments=None,
    qos: str = "sensor",
    labels: bool = True,
):
    """A small labelled bag from make_bag (64x48 frames); default: one haze and one defocus segment."""
    from hirqa_ros.bag.make_bag import SegmentSpec, make_bag

    if segments is None:
        segments = [SegmentSpec(0.5, 1.0, "haze", 4), SegmentSpec(1.3, 1.7, "defocus", 4, "blur")]
    return make_bag(
        path,
        frames_from=frames(4),
        topics=topics,
        storage=storage,
        compressed=compressed,
        rate_hz=rate_hz,
        size=(W, H),
        duration_s=duration_s,
        segments=segments,
        labels_out=path.with_name(path.name + ".labels.yaml") if labels else None,
        hold_frames=5,
        qos=qos,
        start_ns=START_NS,
    )


def write_custom_bag(
    path: Path, *, storage: str = "sqlite3", n_good: int = 6, garbage: int = 2, extra_topics: bool = True
) -> dict:
    """A bag written message by message: good CompressedImages, CompressedImages with garbage bytes,
    a raw Image with too little data, a custom-type topic, a std_msgs topic and an empty image topic."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_types_from_msg

    from hirqa_ros.bag.reader import default_typestore
    from hirqa_ros.imgmsg import rgb_to_compressed_fields, rgb_to_image_fields

    ts = default_typestore()
    ts.register(get_types_from_msg("float64 gain\nstring note", "my_msgs/msg/Exposure"))
    T = ts.types
    cimg = "sensor_msgs/msg/CompressedImage"
    img = "sensor_msgs/msg/Image"

    def header(t):
        return T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9), frame_id="cam"
        )

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    fr = frames(2, W, H)
    info = {"good": [], "bad": []}
    with Writer(path, version=9, storage_plugin=plugin) as w:
        c = w.add_connection("/cam/compressed", cimg, typestore=ts)
        r = w.add_connection("/cam/raw", img, typestore=ts)
        w.add_connection("/cam/empty", img, typestore=ts)  # a topic without messages
        if extra_topics:
            x = w.add_connection("/cam/exposure", "my_msgs/msg/Exposure", typestore=ts)
            s = w.add_connection("/status", "std_msgs/msg/String", typestore=ts)
        t = START_NS
        total = n_good + garbage
        bad_idx = list(range(1, total, 3))[:garbage]
        bad_idx += [i for i in range(total) if i not in bad_idx][: garbage - len(bad_idx)]
        for i in range(total):
            t += 100_000_000
            if i in bad_idx:
                msg = T[cimg](
                    header=header(t), format="jpeg", data=np.frombuffer(b"not a jpeg" * 7, np.uint8)
                )
                info["bad"].append(t)
            else:
                msg = T[cimg](header=header(t), **rgb_to_compressed_fields(fr[i % 2], "jpeg", 90))
                info["good"].append(t)
            w.write(c, t, ts.serialize_cdr(msg, cimg))
            if extra_topics:
                w.write(
                    x,
                    t,
                    ts.serialize_cdr(T["my_msgs/msg/Exposure"](gain=1.5, note="x"), "my_msgs/msg/Exposure"),
                )
                w.write(s, t, ts.serialize_cdr(T["std_msgs/msg/String"](data="hi"), "std_msgs/msg/String"))
        f = rgb_to_image_fields(fr[0], "rgb8")
        good_raw = T[img](header=header(START_NS + 50_000_000), **f)
        w.write(r, START_NS + 50_000_000, ts.serialize_cdr(good_raw, img))
        f["data"] = f["data"][: len(f["data"]) // 2]  # short data: must be refused, not scored
        w.write(
            r, START_NS + 60_000_000, ts.serialize_cdr(T[img](header=header(START_NS + 60_000_000), **f), img)
        )
    return info


def corrupt_bytes(path: Path, at_fraction: float, n: int = 4096, seed: int = 0) -> None:
    b = bytearray(path.read_bytes())
    pos = int(len(b) * at_fraction)
    rng = np.random.default_rng(seed)
    b[pos : pos + n] = rng.integers(0, 256, min(n, len(b) - pos), dtype=np.uint8).tobytes()
    path.write_bytes(bytes(b))


def storage_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def write_image_bag(path: Path, rgbs: list[np.ndarray], topic: str = "/cam/image_raw",
                    start_ns: int = START_NS, period_ns: int = 100_000_000, frame_id: str = "cam") -> Path:
    """A rosbag2 (MCAP) with one raw rgb8 Image per frame, ``period_ns`` apart (record time = stamp)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from hirqa_ros.bag.reader import default_typestore
    from hirqa_ros.imgmsg import rgb_to_image_fields

    ts = default_typestore()
    T = ts.types
    img = "sensor_msgs/msg/Image"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(topic, img, typestore=ts)
        for i, rgb in enumerate(rgbs):
            t = start_ns + i * period_ns
            header = T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9), frame_id=frame_id)
            w.write(conn, t, ts.serialize_cdr(T[img](header=header, **rgb_to_image_fields(rgb, "rgb8")), img))
    return path
