"""ROS 2 conventions over real rclpy + Fast DDS: namespaced relative topics, image_transport naming,
lifecycle transitions through the lifecycle services, QoS overrides and the reliable accepted QoS,
/diagnostics naming and hardware_id, and a launch file's command line (issue 12).

The node runs as a subprocess with seeded RANDOM weights (plumbing only; scores mean nothing here).
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")
pytest.importorskip("lifecycle_msgs.msg", reason="lifecycle_msgs not installed (pip install -e \".[ros]\")")

from helpers_node import (
    NodeProcess,
    RosClient,
    domain_id,
    level_of,
    make_compressed,
    make_image,
    params_file,
    scene,
    status_values,
)
from launch_recording_standin import node_command, run_launch_file

from hirqa_ros.decision import Level
from hirqa_ros.imgmsg import rgb_to_compressed_fields
from hirqa_ros.quality_msg import parse

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
UNCONFIGURED, INACTIVE, ACTIVE, FINALIZED = 1, 2, 3, 4
CONFIGURE, CLEANUP, ACTIVATE, DEACTIVATE, UNCONFIGURED_SHUTDOWN = 1, 2, 3, 4, 5


def _endpoint_qos(get_infos, topic, node_name="hirqa_node", timeout=20.0):
    """The QoS of the node's endpoint on ``topic`` as the DDS graph reports it. The graph learns a
    participant's node names after its endpoints (`_NODE_NAME_UNKNOWN_` until then): poll."""
    deadline = time.monotonic() + timeout
    while True:
        infos = get_infos(topic)
        ours = [i for i in infos if i.node_name == node_name]
        if len(ours) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(ours) == 1, [(i.node_name, i.node_namespace) for i in infos]
    return ours[0].qos_profile


def _wait_count(what, fn, expected, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn() == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: {fn()} != {expected} after {timeout} s")


def _send_until(client, pub, make, base, received, n=40, period=0.1):
    """Publish frames (stamps base, base+1, ...) until ``received()`` holds or n were sent."""
    for i in range(n):
        pub.publish(make(base + i))
        time.sleep(period)
        with client.lock:
            if received():
                return i + 1
    raise AssertionError("no frame made it through the node")


def _assert_r1_qos(client) -> None:
    """Input best effort (sensor data), outputs reliable (B_accepted is a product)."""
    from rclpy.qos import ReliabilityPolicy

    sub_qos = _endpoint_qos(client.node.get_subscriptions_info_by_topic, "/r1/image/compressed")
    acc_qos = _endpoint_qos(client.node.get_publishers_info_by_topic, "/r1/image_accepted/compressed")
    q_qos = _endpoint_qos(client.node.get_publishers_info_by_topic, "/r1/image_quality")
    assert sub_qos.reliability == ReliabilityPolicy.BEST_EFFORT
    assert acc_qos.reliability == ReliabilityPolicy.RELIABLE
    assert q_qos.reliability == ReliabilityPolicy.RELIABLE


def _assert_r1_outputs(client, fqn: str, jpeg: bytes) -> None:
    """Every quality report names the camera; every accepted frame is the original bytes and header."""
    with client.lock:
        reports = [parse(m) for _, m in client.quality["/r1/image"]]
        accepted = [m for _, m in client.accepted["/r1/image"]]
    for r in reports:
        assert r.name == f"{fqn}: image" and r.hardware_id == "cam_r1" and r.frame_id == "cam_r1"
        assert r.topic == "/r1/image/compressed" and r.accepted and r.level == Level.OK
    for m in accepted:
        assert bytes(m.data) == jpeg and m.format == "rgb8; jpeg compressed bgr8"
        assert m.header.frame_id == "cam_r1"


def _assert_not_scored_while_inactive(client, pub, jpeg: bytes) -> None:
    with client.lock:
        before = len(client.quality["/r1/image"])
    for i in range(5):
        pub.publish(make_compressed(jpeg, 5_000 + i, frame_id="cam_r1"))
        time.sleep(0.1)
    time.sleep(1.0)
    with client.lock:
        assert len(client.quality["/r1/image"]) == before, "scored while inactive"


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_lifecycle_namespace_and_compressed_naming(random_model_dir, tmp_path):
    """`-r __ns:=/r1 -p image_transport:=compressed -p autostart:=false`: the node waits unconfigured;
    configure loads, activate subscribes /r1/image/compressed and publishes /r1/image_quality and
    /r1/image_accepted/compressed (the original bytes); deactivate unsubscribes; cleanup frees."""
    domain = domain_id(11)
    node = NodeProcess({"model_path": str(random_model_dir), "backend": "onnxruntime", "autostart": False,
                        "image_transport": "compressed", "diagnostics_period_s": 0.5,
                        "frozen_timeout_s": 0.0},  # one repeated test buffer would be a frozen stream
                       domain, tmp_path / "node.log", ros_args=["-r", "__ns:=/r1"])
    client = None
    fqn = "/r1/hirqa_node"
    diag = "hirqa_node: image"  # /diagnostics status of the camera
    try:
        node.wait_ready(text="waiting for lifecycle transitions")
        assert "/r1/image/compressed" not in node.log()
        client = RosClient(domain)
        pub = client.publisher("/r1/image/compressed", compressed=True)
        client.watch("/r1/image", transport="compressed")
        client.watch_diagnostics()
        assert client.lifecycle(fqn) == UNCONFIGURED
        time.sleep(1.0)
        assert pub.get_subscription_count() == 0, "subscribed before activate"

        assert client.lifecycle(fqn, CONFIGURE) and client.lifecycle(fqn) == INACTIVE
        assert "loading model" in node.log() and "READY" not in node.log()
        quality_publishers = lambda: client.node.count_publishers("/r1/image_quality")  # noqa: E731
        _wait_count("quality publisher after configure", quality_publishers, 1)
        assert pub.get_subscription_count() == 0, "subscribed while inactive"
        client.wait_for(lambda: client.latest_status(diag, time.monotonic() - 0.1) is not None, 10,
                        "/diagnostics while inactive")
        st = client.latest_status(diag)
        assert st.name == diag  # diagnostic_updater's `node name: task` (no namespace, no leading /)
        assert level_of(st) == Level.STALE and "inactive" in st.message

        assert client.lifecycle(fqn, ACTIVATE) and client.lifecycle(fqn) == ACTIVE
        node.wait_ready()
        client.wait_matched(["/r1/image/compressed"])
        _assert_r1_qos(client)
        assert all(r.successful for r in client.set_params(fqn, warn_threshold=0.0, error_threshold=0.0))

        jpeg = rgb_to_compressed_fields(scene(48, 64, seed=4), "jpeg")["data"].tobytes()
        _send_until(client, pub, lambda s: make_compressed(jpeg, s, fmt="rgb8; jpeg compressed bgr8",
                                                           frame_id="cam_r1"),
                    1_000, lambda: client.quality["/r1/image"] and client.accepted["/r1/image"])
        _assert_r1_outputs(client, fqn, jpeg)
        client.wait_for(lambda: level_of(client.latest_status(diag, time.monotonic() - 0.1)
                                         or st) != Level.STALE, 10, "camera status after frames")
        st = client.latest_status(diag)
        assert st.hardware_id == "cam_r1" and status_values(st)["topic"] == "/r1/image/compressed"
        inference = client.latest_status("hirqa_node: inference")
        assert inference.name == "hirqa_node: inference" and inference.hardware_id == "cpu"  # the device
        assert status_values(inference)["backend"] == "onnxruntime"

        assert client.lifecycle(fqn, DEACTIVATE) and client.lifecycle(fqn) == INACTIVE
        _wait_count("subscriptions after deactivate", pub.get_subscription_count, 0)
        _assert_not_scored_while_inactive(client, pub, jpeg)

        assert client.lifecycle(fqn, ACTIVATE) and client.lifecycle(fqn) == ACTIVE  # again, same topics
        client.wait_matched(["/r1/image/compressed"])
        _send_until(client, pub, lambda s: make_compressed(jpeg, s, frame_id="cam_r1"), 9_000,
                    lambda: any(parse(m).stamp_ns >= 9_000 for _, m in client.quality["/r1/image"]))

        assert client.lifecycle(fqn, DEACTIVATE) and client.lifecycle(fqn, CLEANUP)
        assert client.lifecycle(fqn) == UNCONFIGURED
        assert "cleaned up: model released" in node.log()
        _wait_count("quality publisher after cleanup", quality_publishers, 0)
        assert client.lifecycle(fqn, UNCONFIGURED_SHUTDOWN) and client.lifecycle(fqn) == FINALIZED
        assert node.interrupt(timeout=10.0) == 0, node.log()
        assert "Traceback" not in node.log()
    finally:
        if client is not None:
            client.close()
        node.stop()


@pytest.mark.slow
def test_launch_file_command_line_qos_overrides_and_diagnostics(random_model_dir, tmp_path):
    """hirqa.launch.py (through the recording stand-in) with namespace:=robot1, image_topic remapped to
    /front/camera/image_raw, backend:=onnxruntime over a params file that says torch: the node started
    with that command line uses onnxruntime, keeps the file's other values, applies the file's QoS
    override (reliable input), offers B_accepted reliable, names its statuses /robot1/hirqa_node: ...
    (diagnostic_updater.use_fqn),
    keeps hardware_id from the parameter, and flags the input rate against expected_rate_hz."""
    from rclpy.qos import ReliabilityPolicy

    domain = domain_id(12)
    topic = "/front/camera/image_raw"
    yaml_file = params_file(tmp_path / "robot.yaml", {
        "backend": "torch", "model_path": str(random_model_dir), "hardware_id": "front_cam",
        "expected_rate_hz": 1000.0, "diagnostics_period_s": 0.5, "stats_window": 50,
        "diagnostic_updater.use_fqn": True,  # /robot1/hirqa_node: ... status names
        "qos_overrides": {topic: {"subscription": {"reliability": "reliable", "depth": 5}},
                          "/front/typo/image_raw": {"subscription": {"depth": 3}}},
    })
    rec = run_launch_file(REPO / "launch" / "hirqa.launch.py", {
        "namespace": "robot1", "image_topic": topic, "backend": "onnxruntime", "params_file": str(yaml_file)})
    argv = node_command(rec.nodes[0], tmp_path, rec.context)
    node = NodeProcess({}, domain, tmp_path / "node.log", argv=argv)
    client = None
    fqn = "/robot1/hirqa_node"
    try:
        node.wait_ready()
        assert "QoS override(s) for topics this node does not use: " \
               "qos_overrides./front/typo/image_raw.subscription.depth" in node.log()
        client = RosClient(domain)
        pub = client.publisher(topic, reliable=True)
        client.watch(topic, accepted_reliable=True)  # B_accepted is reliable by default
        client.watch_diagnostics()
        client.wait_matched([topic])
        got = client.get_params(fqn, ["backend", "stats_window", "hardware_id", "min_image_side",
                                      f"qos_overrides.{topic}.subscription.depth"])
        assert got == {"backend": "onnxruntime", "stats_window": 50, "hardware_id": "front_cam",
                       "min_image_side": 16, f"qos_overrides.{topic}.subscription.depth": 5}
        assert _endpoint_qos(client.node.get_subscriptions_info_by_topic, topic).reliability == \
            ReliabilityPolicy.RELIABLE
        assert _endpoint_qos(client.node.get_publishers_info_by_topic, topic + "_accepted").reliability == \
            ReliabilityPolicy.RELIABLE
        assert client.node.count_publishers(topic + "_quality") == 1

        img = scene(48, 64, seed=5)
        for i in range(15):
            pub.publish(make_image(img, 2_000_000_000 + i, frame_id="cam"))
            time.sleep(0.1)
        client.wait_for(lambda: client.quality[topic], 10, "quality messages")
        r = parse(client.quality[topic][0][1])
        assert r.name == f"{fqn}: front.camera.image_raw" and r.hardware_id == "front_cam"
        client.wait_for(lambda: (s := client.latest_status(f"{fqn}: front.camera.image_raw",
                                                           time.monotonic() - 0.1)) is not None
                        and level_of(s) != Level.STALE, 10, "camera status")
        st = client.latest_status(f"{fqn}: front.camera.image_raw")
        v = status_values(st)
        assert st.hardware_id == "front_cam"  # the parameter, not the frames' frame_id
        assert level_of(st) >= Level.WARN and "input rate too low" in st.message, st.message
        assert v["expected_rate_hz"] == "1000" and float(v["window_rate_hz"]) < 900
        assert client.latest_status(f"{fqn}: inference") is not None
    finally:
        if client is not None:
            client.close()
        node.stop()
