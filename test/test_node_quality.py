"""With the shipped model, through the real node: sharp frames score above blurred and dark versions,
and the gate republishes exactly the frames judged OK."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")

from helpers_node import (
    NodeProcess,
    RosClient,
    domain_id,
    level_of,
    make_image,
    params_file,
    reliable_accepted,
    status_values,
)

from hirqa_ros.decision import Level

pytestmark = pytest.mark.ros

SAMPLES = Path(__file__).resolve().parents[1] / "hirqa_ros" / "data" / "samples"
TOPIC = "/quality_cam/image_raw"


def _photos(n: int = 3) -> list:
    files = sorted(SAMPLES.glob("*.jpg"))[:n]
    if not files:
        pytest.skip(f"no sample photos in {SAMPLES}")
    out = []
    for f in files:
        bgr = cv2.imread(str(f))
        h, w = bgr.shape[:2]
        s = 320 / max(h, w)
        out.append(cv2.cvtColor(cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA),
                                cv2.COLOR_BGR2RGB))
    return out


@pytest.mark.slow
def test_sharp_scores_above_blurred_and_dark_and_gate_passes_ok_frames(default_model_dir, tmp_path):
    from hirqa_ros.degradations import degrade

    photos = _photos()
    frames = []  # (stamp, condition, photo index, rgb)
    for i, rgb in enumerate(photos):
        for cond, img in (("sharp", rgb), ("blurred", degrade(rgb, "defocus", 5, seed=i)),
                          ("dark", degrade(rgb, "low_light", 5, seed=i))):
            frames.append((1_000 + len(frames), cond, i, img))
    domain = domain_id(21)
    params = {"image_topics": [TOPIC], "model_path": str(default_model_dir), "backend": "onnxruntime",
              "gate_mode": "scored"}  # accepted = exactly the frames scored OK
    # B_accepted is reliable, keep last 5; deeper here so that every accepted frame is counted
    qos = params_file(tmp_path / "qos.yaml", reliable_accepted([TOPIC]))
    node = NodeProcess(params, domain, tmp_path / "node.log", params_files=[qos])
    client = None
    try:
        node.wait_ready(120)
        client = RosClient(domain)
        client.publisher(TOPIC, reliable=True)  # reliable in, so no frame is lost on a busy machine
        client.watch(TOPIC, accepted_reliable=True)
        client.wait_matched([TOPIC])
        for stamp, _, _, img in frames:
            # one at a time (the node keeps only the newest frame and we want every one scored); the
            # first may be lost while discovery settles, so send again until its score comes back
            msg = make_image(img, stamp, "quality_cam")
            for _attempt in range(10):
                client.pubs[TOPIC].publish(msg)
                try:
                    client.wait_for(lambda s=stamp: any(m.header.stamp.nanosec == s
                                                        for _, m in client.quality[TOPIC]), 6, "score")
                    break
                except AssertionError:
                    continue
        time.sleep(0.5)
        with client.lock:
            quality = {m.header.stamp.nanosec: m.status[0] for _, m in client.quality[TOPIC]}
            accepted = {m.header.stamp.nanosec for _, m in client.accepted[TOPIC]}
    finally:
        if client is not None:
            client.close()
        node.stop()
    scores = {stamp: float(status_values(quality[stamp])["score"]) for stamp, *_ in frames}
    for i in range(len(photos)):
        by = {cond: scores[stamp] for stamp, cond, j, _ in frames if j == i}
        assert by["sharp"] > by["blurred"], (i, by)
        assert by["sharp"] > by["dark"], (i, by)
    ok = {stamp for stamp, *_ in frames if level_of(quality[stamp]) == Level.OK}
    assert accepted == ok
