"""hirqa_node over real DDS: a black (lens cap), white, uniform grey and frozen stream are ERROR with a
reason on T/quality, never republished on T/accepted, and counted in /diagnostics."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")
pytest.importorskip("diagnostic_msgs.msg", reason="diagnostic_msgs not installed (pip install -e \".[ros]\")")

from helpers_node import NodeProcess, RosClient, domain_id, level_of, make_image, scene, status_values

from hirqa_ros.decision import Level

pytestmark = pytest.mark.ros

T = {"black": "/fc/black/image", "white": "/fc/white/image", "grey": "/fc/grey/image",
     "frozen": "/fc/frozen/image", "live": "/fc/live/image"}
RNG = np.random.default_rng(11)


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def node_and_client(random_model_dir, tmp_path_factory):
    domain = domain_id(8)
    # thresholds 0/0: every frame with content is OK, so an ERROR can only come from the frame checks
    params = {"image_topics": list(T.values()), "model_path": str(random_model_dir), "backend": "onnxruntime",
              "warn_threshold": 0.0, "error_threshold": 0.0, "frozen_timeout_s": 0.6,
              "diagnostics_period_s": 0.5, "hysteresis_raise": 2,
              "gate_mode": "scored"}  # never accepted = no frame scored ERROR is forwarded
    node = NodeProcess(params, domain, tmp_path_factory.mktemp("fc") / "node.log")
    client = None
    try:
        node.wait_ready()
        client = RosClient(domain, name="frame_check_client")
        for t in T.values():
            client.publisher(t, reliable=True)
            client.watch(t)
        client.watch_diagnostics()
        client.wait_matched(list(T.values()), timeout=60)
        yield node, client
    finally:
        if client is not None:
            client.close()
        node.stop()


def _stream(client, topic, frames, base, period=0.1):
    for i, rgb in enumerate(frames):
        client.pubs[topic].publish(make_image(rgb, base + i))
        time.sleep(period)


@pytest.mark.parametrize("kind,reason", [("black", "no_content: black"), ("white", "no_content: white"),
                                         ("grey", "no_content: uniform")])
def test_no_content_stream_is_error_with_reason_and_never_accepted(node_and_client, kind, reason):
    _, client = node_and_client
    topic = T[kind]
    make = {"black": lambda: np.clip(RNG.normal(5, 3, (120, 160, 3)), 0, 255),
            "white": lambda: np.full((120, 160, 3), 255.0) - RNG.integers(0, 3, (120, 160, 3)),
            "grey": lambda: np.clip(RNG.normal(128, 4, (120, 160, 3)), 0, 255)}[kind]
    frames = [make().astype(np.uint8) for _ in range(6)]  # live sensor noise: not frozen
    _stream(client, topic, frames, 1_000_000_000)
    client.wait_for(lambda: len(client.quality[topic]) >= 4, 30, f"quality messages on {topic}")
    with client.lock:
        got = [m for _, m in client.quality[topic]]
    for m in got:
        st = m.status[0]
        v = status_values(st)
        assert level_of(st) == Level.ERROR and v["reason"] == reason and reason.split(": ")[1] in st.message
        assert 0.0 < float(v["score"]) < 1.0  # still scored (the model's view is reported)
    time.sleep(0.5)
    assert not client.accepted[topic], "a frame without content was republished as accepted"
    client.wait_for(lambda: (s := client.latest_status(topic)) is not None
                    and int(status_values(s)["no_content_frames"]) >= len(got), 10, "no_content_frames")
    st = client.latest_status(topic)
    assert level_of(st) == Level.ERROR and "no content" in st.message


def test_frozen_stream_is_error_after_frozen_timeout_and_live_is_ok(node_and_client):
    _, client = node_and_client
    still = scene(120, 160, seed=5)
    _stream(client, T["frozen"], [still] * 20, 2_000_000_000)  # 2 s of one buffer, timeout 0.6 s
    live = [np.clip(scene(120, 160, seed=6).astype(np.int16) + RNG.integers(-2, 3, (120, 160, 3)), 0, 255)
            .astype(np.uint8) for _ in range(20)]
    _stream(client, T["live"], live, 3_000_000_000)
    client.wait_for(lambda: len(client.quality[T["frozen"]]) >= 15 and len(client.quality[T["live"]]) >= 15,
                    30, "quality messages")
    with client.lock:
        frozen = [m for _, m in client.quality[T["frozen"]]]
        alive = [m for _, m in client.quality[T["live"]]]
    reasons = [status_values(m.status[0]).get("reason", "") for m in frozen]
    assert reasons[:3] == ["", "", ""] and reasons[-1] == "frozen", reasons  # live at first, then frozen
    first = reasons.index("frozen")
    assert all(r == "frozen" for r in reasons[first:])
    assert all(level_of(m.status[0]) == Level.ERROR for m in frozen[first:])
    assert all(status_values(m.status[0]).get("reason", "") == "" for m in alive)
    assert all(level_of(m.status[0]) == Level.OK for m in alive)
    accepted = {_stamp(m) for _, m in client.accepted[T["frozen"]]}
    assert not accepted & {_stamp(m) for m in frozen[first:]}
    client.wait_for(lambda: (s := client.latest_status(T["frozen"])) is not None
                    and int(status_values(s)["frozen_frames"]) >= len(frozen) - first, 10, "frozen_frames")
