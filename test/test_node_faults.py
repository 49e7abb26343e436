"""The fault class over real rclpy + Fast DDS: per-frame `B_quality` keys and the `/diagnostics`
dominant fault, with a toy head (test fixture, helpers_faults) on random weights; and the SHIPPED model
naming a blurred, a dark and a hazy photo (skipped while the shipped model has no fault head)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")
pytest.importorskip("diagnostic_msgs.msg", reason="diagnostic_msgs not installed (pip install -e \".[ros]\")")

from helpers_faults import TOY_CLASSES, toy_frames, toy_head_model_dir
from helpers_node import NodeProcess, RosClient, domain_id, make_image, status_values

from hirqa_ros.content import ContentLimits
from hirqa_ros.decision import Thresholds
from hirqa_ros.monitor import CameraMonitor, run_frames
from hirqa_ros.quality_msg import parse

pytestmark = pytest.mark.ros

CAM = "/ft/image"
NODE = "hirqa_faults"
NO_CONTENT_CHECKS = ContentLimits(black_level=-1, white_level=256, uniform_range=-1, frozen_s=0)


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _start(model_dir: Path, domain: int, tmp: Path, **params) -> tuple[NodeProcess, RosClient]:
    node = NodeProcess({"image_topics": [CAM], "model_path": str(model_dir), "backend": "onnxruntime",
                        "diagnostics_period_s": 0.5, "hysteresis_raise": 1, "hysteresis_clear": 1,
                        "gate_mode": "scored", **params},  # one quality message per frame stamp
                       domain, tmp / "hirqa_node.log", name=NODE)
    client = None
    try:
        node.wait_ready(timeout=120)
        client = RosClient(domain)
        client.publisher(CAM)
        client.watch(CAM)
        client.watch_diagnostics()
        client.wait_matched([CAM])
        return node, client
    except BaseException:
        if client is not None:
            client.close()
        node.stop()
        raise


def _send(client: RosClient, frames: list[np.ndarray], base: int) -> list:
    """Publish ``frames`` (stamps base, base+1, ...) one at a time, each until its quality message
    comes back (the input is best effort and the node keeps only the newest waiting frame, so a
    frame can be lost; it is sent again), and return the parsed messages in order."""

    def received(stamp: int):
        return next((m for _, m in client.quality[CAM] if _stamp(m) == stamp), None)

    out = []
    for i, f in enumerate(frames):
        stamp = base + i
        for attempt in range(6):
            client.pubs[CAM].publish(make_image(f, stamp_ns=stamp))
            try:
                client.wait_for(lambda s=stamp: received(s) is not None, 20, f"quality of frame {i}")
                break
            except AssertionError:
                if attempt == 5:
                    raise
        with client.lock:
            out.append(parse(received(stamp)))
    return out


@pytest.fixture(scope="module")
def toy(random_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node_faults")
    model = toy_head_model_dir(random_model_dir, tmp / "with_head")
    # the toy frames are flat colour fields: the no-content checks are off, these tests are about faults
    node, client = _start(model, domain_id(41), tmp, warn_threshold=1.0, error_threshold=1.0,
                          no_content_black_level=-1.0, no_content_white_level=256.0,
                          no_content_uniform_range=-1.0, frozen_timeout_s=0.0)
    try:
        yield model, node, client
    finally:
        client.close()
        node.stop()


def test_quality_messages_carry_the_class_the_pipeline_gives(toy):
    from hirqa_ros import load_scorer

    model, node, client = toy
    assert "fault head with 10 classes" in node.log()
    frames = toy_frames()
    classes = ["blur", "low_light", "none", "blur", "blur"]  # blur is the majority of the window
    sent = [frames[c][i % len(frames[c])] for i, c in enumerate(classes)]
    reports = _send(client, sent, 3_000_000_000)
    # the same frames through the in-process pipeline with the node's thresholds (everything dropped)
    sc = load_scorer(model, backend="onnxruntime")
    monitor = CameraMonitor(CAM, Thresholds(1.0, 1.0), content=NO_CONTENT_CHECKS)
    expected = run_frames(sc, [monitor.check(f) for f in sent])
    for rep, exp, cls in zip(reports, expected, classes):
        assert rep.verdict == "drop" and rep.schema.endswith("/2")
        assert rep.fault == exp.fault
        assert rep.fault_confidence == pytest.approx(exp.fault_confidence, abs=1e-3)
        assert [c for c, _ in rep.fault_top3] == [c for c, _ in exp.fault_top3]
        assert rep.fault_top3[0][0] == cls  # the toy head's class of the frame
        if cls != "none":
            assert rep.fault == cls
    # /diagnostics: the dominant fault of the window, in the message
    t = time.monotonic()
    client.wait_for(lambda: client.latest_status(CAM, after=t) is not None, 20, "/diagnostics")
    st = client.latest_status(CAM, after=t)
    values = status_values(st)
    assert values["dominant_fault"] == "blur" and values["reject_fraction"] == "1.000"
    assert "rejecting 100 % of frames: blur" in st.message


def test_kept_frames_say_none(toy):
    _, _, client = toy
    results = client.set_params(NODE, warn_threshold=0.0, error_threshold=0.0)
    assert all(r.successful for r in results), [r.reason for r in results]
    frames = toy_frames()
    reports = _send(client, [frames[c][1] for c in TOY_CLASSES], 4_000_000_000)
    assert [r.verdict for r in reports] == ["keep"] * 3
    assert [r.fault for r in reports] == ["none"] * 3
    assert [r.fault_top3[0][0] for r in reports] == list(TOY_CLASSES)  # the head's view stays in top3
    for r in reports:
        p_none = dict(r.fault_top3).get("none", r.fault_confidence)
        assert r.fault_confidence == pytest.approx(p_none, abs=1e-4)


@pytest.mark.slow
def test_shipped_model_names_blur_dark_and_haze_over_dds(default_model_dir, tmp_path):
    """A blurred, a dark and a hazy held-out photo (severity 4, the shipped samples) through the node
    with the shipped model and its card's thresholds: three different, correct classes."""
    pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
    import cv2

    import hirqa_ros
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.degradations import degrade
    from hirqa_ros.heads import load_fault_head

    if load_fault_head(load_artifact(default_model_dir)) is None:
        pytest.skip("shipped model has no fault head")
    photo = cv2.cvtColor(cv2.imread(str(Path(hirqa_ros.__file__).parent / "data" / "samples" / "boats.jpg")),
                         cv2.COLOR_BGR2RGB)
    conditions = (("blur", "gaublur"), ("low_light", "low_light"), ("haze", "haze"))
    frames = [degrade(photo, name, 4) for _, name in conditions]
    node, client = _start(default_model_dir, domain_id(42), tmp_path)
    try:
        reports = _send(client, frames, 5_000_000_000)
    finally:
        client.close()
        node.stop()
    got = [r.fault for r in reports]
    assert got == [c for c, _ in conditions], [(r.fault, r.fault_confidence, r.score) for r in reports]


def test_docs_example_slows_down_on_motion_blur():
    """The rclpy example of docs/faults.md runs: it reads real quality messages (built by the
    project's own builder) and lowers the speed limit after `frames` motion-blurred ones."""
    import re

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    from hirqa_ros.decision import Level
    from hirqa_ros.quality_msg import quality_status_fields

    text = (Path(__file__).resolve().parents[1] / "docs" / "faults.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    ns: dict = {"__name__": "docs_example"}
    exec(compile(code, "docs/faults.md", "exec"), ns)

    def quality(fault: str, conf: float) -> DiagnosticArray:
        f = quality_status_fields("/camera/image_raw", 0.3, Level.ERROR, 0.3, Thresholds(), "onnxruntime",
                                  fault=fault, fault_confidence=conf, fault_top3=[(fault, conf)])
        st = DiagnosticStatus(level=bytes([f["level"]]), name=f["name"], message=f["message"],
                              hardware_id=f["hardware_id"])
        st.values = [KeyValue(key=k, value=v) for k, v in f["values"]]
        return DiagnosticArray(status=[st])

    rclpy.init()  # the example uses the default context, as a node's main() does
    try:
        node = ns["SlowDownOnMotionBlur"]()
        sent = []
        publish = node.pub.publish
        node.pub.publish = lambda m: (sent.append(m.data), publish(m))  # observe what it publishes
        for fault, conf in [("motion_blur", 0.9)] * 3 + [("motion_blur", 0.2), ("haze", 0.9)]:
            node.on_quality(quality(fault, conf))
        assert sent == [1.5, 1.5, 0.5, 1.5, 1.5]
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
