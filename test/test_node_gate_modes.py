"""gate_mode end to end through the real node over real DDS: a clean / black / clean stream at 20 Hz.

`state`: frames go out on arrival under an earlier scored frame's verdict (their quality message says
`inherited` and names that frame's stamp), the black stretch is held from its first frame (cue, then
the drop verdict), clean frames flow again after it, the accepted stream stays in order.
`scored`: exactly the frames whose own score was keep, each with a `scored` message.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")

from helpers_node import (
    NodeProcess,
    RosClient,
    domain_id,
    make_compressed,
    make_image,
    params_file,
    reliable_accepted,
    scene,
    status_values,
)

from hirqa_ros.quality_msg import parse

pytestmark = [pytest.mark.ros, pytest.mark.slow]

TOPIC = "/gate_cam/image_raw"
RATE_HZ = 20.0
CLEAN1, BLACK, CLEAN2 = 30, 10, 30
SCENARIO = 2_000_000_000  # first stamp of the checked frames (the warm-up's are below it)


def _jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    _, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()


def _run(mode: str, model_dir, tmp_path, offset: int, transport: str = "raw"):
    """Publish the stream to a node in ``mode``; return (black stamps, clean stamps, accepted stamps in
    arrival order, parsed quality reports, the camera's last /diagnostics values)."""
    domain = domain_id(offset)
    # thresholds 0: every frame with content is keep, so the test does not depend on the model's scores;
    # the black frames are ERROR by the no-content check whatever their score
    params = {"image_topics": [TOPIC], "model_path": str(model_dir), "backend": "onnxruntime",
              "gate_mode": mode, "warn_threshold": 0.0, "error_threshold": 0.0, "image_transport": transport}
    qos = params_file(tmp_path / "qos.yaml", reliable_accepted([TOPIC], [transport]))
    node = NodeProcess(params, domain, tmp_path / "node.log", params_files=[qos])
    client = None
    try:
        node.wait_ready(120)
        client = RosClient(domain)
        compressed = transport == "compressed"
        topic_in = TOPIC + "/compressed" if compressed else TOPIC
        client.publisher(topic_in, compressed=compressed, reliable=True)
        client.watch(TOPIC, transport=transport, accepted_reliable=True)
        client.watch_diagnostics()
        client.wait_matched([topic_in])
        clean = [scene(96, 128, seed=i) for i in range(4)]
        black = np.zeros_like(clean[0])

        def send(rgb: np.ndarray, stamp: int) -> None:
            msg = (make_compressed(_jpeg(rgb), stamp, frame_id="gate_cam") if compressed
                   else make_image(rgb, stamp, "gate_cam"))
            client.pubs[topic_in].publish(msg)

        # warm-up: clean frames until both outputs reach us (the node's writers may match our readers
        # after its first frames went out); only the frames after it are checked one by one
        for i in range(100):
            send(clean[i % 4], 1_000_000_000 + i * 50_000_000)
            time.sleep(1 / RATE_HZ)
            with client.lock:
                if client.quality[TOPIC] and client.accepted[TOPIC]:
                    break
        time.sleep(0.5)
        plan = ["clean"] * CLEAN1 + ["black"] * BLACK + ["clean"] * CLEAN2
        stamps: dict[str, list[int]] = {"clean": [], "black": []}
        t0 = time.monotonic()
        for i, kind in enumerate(plan):
            stamp = SCENARIO + i * 50_000_000
            stamps[kind].append(stamp)
            send(clean[i % 4] if kind == "clean" else black, stamp)
            time.sleep(max(0.0, t0 + (i + 1) / RATE_HZ - time.monotonic()))
        time.sleep(2.5)  # the last scores and a /diagnostics period
        with client.lock:
            accepted = [s for _, m in client.accepted[TOPIC]
                        if (s := m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec) >= SCENARIO]
            reports = [parse(m) for _, m in client.quality[TOPIC]]  # warm-up included: verdicts come from it
        status = client.latest_status(TOPIC)
        assert status is not None, "no /diagnostics status for the camera"
        return stamps["black"], stamps["clean"], accepted, reports, status_values(status)
    finally:
        if client is not None:
            client.close()
        node.stop()


@pytest.mark.parametrize("transport,offset", [("raw", 61), ("compressed", 63)])
def test_state_mode_forwards_on_arrival_with_inherited_flags_and_holds_the_dark(default_model_dir, tmp_path,
                                                                                 transport, offset):
    black, clean, accepted, reports, diag = _run("state", default_model_dir, tmp_path, offset, transport)
    assert not set(black) & set(accepted), "a black frame was forwarded"
    assert accepted == sorted(accepted) and len(set(accepted)) == len(accepted), "accepted out of order"
    scored = {r.stamp_ns: r for r in reports if not r.inherited}
    inherited = [r for r in reports if r.inherited and r.stamp_ns >= SCENARIO]
    assert all(r.verdict_stamp_ns == r.stamp_ns for r in scored.values())
    # every forwarded frame says why: an inherited keep naming an earlier scored keep frame, or its own score
    for stamp in accepted:
        own = [r for r in inherited if r.stamp_ns == stamp]
        if own:
            src = own[0].verdict_stamp_ns
            assert src < stamp and src in scored and scored[src].accepted, (stamp, src)
            assert own[0].accepted and own[0].verdict_age_ms >= 0 and own[0].frame == scored[src].frame
        else:
            assert stamp in scored and scored[stamp].accepted, stamp
    assert {r.stamp_ns for r in inherited} <= set(accepted), "an inherited message for a held frame"
    assert len(inherited) >= len(accepted) // 2, "most frames should go out on arrival (earlier verdict)"
    # clean frames flow before and after the fault
    assert sum(s in accepted for s in clean[:CLEAN1]) >= CLEAN1 // 2
    assert sum(s in accepted for s in clean[CLEAN1:]) >= CLEAN2 // 2
    assert diag["gate_mode"] == "state"
    # the counters include the warm-up frames
    assert int(diag["frames_forwarded_inherited"]) >= len(inherited) > 0
    assert int(diag["frames_forwarded"]) >= len(accepted)
    held = dict(item.split(":") for item in diag["frames_held_by_reason"].split(","))
    assert int(diag["frames_held"]) >= BLACK and ("cue" in held or "drop" in held)


def test_scored_mode_forwards_only_frames_scored_ok(default_model_dir, tmp_path):
    black, _clean, accepted, reports, diag = _run("scored", default_model_dir, tmp_path, 62)
    assert all(not r.inherited and r.verdict_stamp_ns == r.stamp_ns for r in reports)
    keep = [r.stamp_ns for r in reports if r.accepted and r.stamp_ns >= SCENARIO]
    assert accepted == keep, "B_accepted must be exactly the frames scored keep, in order"
    assert not set(black) & set(accepted)
    assert any(r.stamp_ns in black and not r.accepted for r in reports), "no black frame was scored"
    assert diag["gate_mode"] == "scored" and diag["frames_forwarded_inherited"] == "0"
    assert diag["frames_held"] == "0" and int(diag["frames_forwarded"]) >= len(accepted)  # + warm-up
