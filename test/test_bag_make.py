"""hirqa make-bag: labelled bags from an image folder or a video, with degradation segments."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")

from helpers_bag import H, W, frames, write_images

from hirqa_ros.bag.labels import Labels
from hirqa_ros.bag.make_bag import SegmentSpec, default_segments, make_bag
from hirqa_ros.bag.reader import BagReader, stamp_ns
from hirqa_ros.cli.main import main as hirqa
from hirqa_ros.imgmsg import msg_to_rgb


def _decoded(path, topic):
    with BagReader(path) as r:
        return [(m.bag_time_ns, r.deserialize(m)) for m in r.messages([topic])], r.topics[topic]


def test_segment_spec_parsing():
    assert SegmentSpec.parse("2:4:haze") == SegmentSpec(2.0, 4.0, "haze", 3, "")
    s = SegmentSpec.parse("6:7.5:defocus:4:blur")
    assert (s.level, s.name) == (4, "blur")
    for bad in ("2:haze", "4:2:haze", "1:2:haze:9", "a:b:haze"):
        with pytest.raises(ValueError, match="START:END"):
            SegmentSpec.parse(bad)
    segs = default_segments(10.0)
    assert [s.name for s in segs] == ["haze", "blur", "low_light", "glare"]
    assert all(0 < s.start_s < s.end_s <= 10 for s in segs)


def test_cli_from_image_folder_sqlite_raw(tmp_path):
    write_images(tmp_path / "photos")
    out = tmp_path / "bag"
    assert (
        hirqa(
            [
                "make-bag",
                "--images",
                str(tmp_path / "photos"),
                "--out",
                str(out),
                "--size",
                f"{W}x{H}",
                "--rate",
                "10",
                "--duration",
                "2",
                "--segments",
                "0.5:1.0:haze:4",
                "1.2:1.6:defocus:4:blur",
                "--hold",
                "4",
            ]
        )
        == 0
    )
    assert (out / "metadata.yaml").exists() and any(p.suffix == ".db3" for p in out.iterdir())
    msgs, info = _decoded(out, "/camera/image_raw")
    assert len(msgs) == 20 and info.msgtype == "sensor_msgs/msg/Image"
    assert info.qos and info.qos[0].reliability.name == "BEST_EFFORT"  # a camera's sensor-data QoS
    for bt, m in msgs:
        assert stamp_ns(m) == bt and (m.width, m.height, m.encoding) == (W, H, "rgb8")
    lab = Labels.load(tmp_path / "bag.labels.yaml")
    assert [(s.label, s.topic) for s in lab.segments] == [
        ("haze", "/camera/image_raw"),
        ("blur", "/camera/image_raw"),
    ]
    assert lab.drop_set == {"haze", "blur"} and lab.clock == "stamp"
    t0 = msgs[0][0]
    assert lab.label_at("/camera/image_raw", t0 + 600_000_000) == "haze"
    assert lab.label_at("/camera/image_raw", t0 + 100_000_000) == "clear"
    # the haze frames are really degraded: lower contrast than the clean frames around them
    contrast = [msg_to_rgb(m).astype(np.float32).std() for _, m in msgs]
    assert np.mean(contrast[5:10]) < 0.8 * np.mean(contrast[0:5])


def test_cli_refuses_existing_output_and_bad_input(tmp_path):
    write_images(tmp_path / "photos", 1)
    (tmp_path / "exists").mkdir()
    base = ["make-bag", "--images", str(tmp_path / "photos"), "--size", "32x32", "--duration", "0.5"]
    assert hirqa([*base, "--out", str(tmp_path / "exists")]) == 2
    assert hirqa([*base, "--out", str(tmp_path / "x"), "--segments", "0:1:no_such_thing"]) == 2
    (tmp_path / "empty").mkdir()
    assert hirqa(["make-bag", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "y")]) == 2


def test_from_video_mcap_compressed_two_topics(tmp_path):
    video = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 72))
    if not vw.isOpened():
        pytest.skip("OpenCV has no MJPG writer here")
    for f in frames(6, 96, 72):
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    made = make_bag(
        tmp_path / "bag",
        video=video,
        topics=["/front/image_raw", "/rear/image_raw"],
        storage="mcap",
        compressed=True,
        rate_hz=5,
        size=(W, H),
        duration_s=2.0,
        segments=[],
        labels_out=tmp_path / "l.yaml",
        qos="reliable",
    )
    assert made.topics == ["/front/image_raw/compressed", "/rear/image_raw/compressed"]
    for t in made.topics:
        msgs, info = _decoded(made.path, t)
        assert len(msgs) == 10 and info.msgtype == "sensor_msgs/msg/CompressedImage"
        assert info.qos[0].reliability.name == "RELIABLE"
        assert msg_to_rgb(msgs[0][1]).shape == (H, W, 3)
    assert Labels.load(tmp_path / "l.yaml").segments == []


def test_make_bag_is_reproducible(tmp_path):
    segs = [SegmentSpec(0.2, 0.6, "whitenoise", 3)]
    a = make_bag(
        tmp_path / "a", frames_from=frames(2), size=(W, H), rate_hz=10, duration_s=1.0, segments=segs
    )
    b = make_bag(
        tmp_path / "b", frames_from=frames(2), size=(W, H), rate_hz=10, duration_s=1.0, segments=segs
    )
    ma, _ = _decoded(a.path, a.topics[0])
    mb, _ = _decoded(b.path, b.topics[0])
    for (ta, x), (tb, y) in zip(ma, mb):
        assert ta == tb
        np.testing.assert_array_equal(msg_to_rgb(x), msg_to_rgb(y))
