"""hirqa_node over real rclpy + Fast DDS: headers, gate, batching, /diagnostics, parameters, bad input.

The node runs as a subprocess with seeded RANDOM weights (plumbing only: these tests never rely
on what the scores mean); frames come from this test process or from separate publisher processes.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")
pytest.importorskip("diagnostic_msgs.msg", reason="diagnostic_msgs not installed (pip install -e \".[ros]\")")

from helpers_node import (
    NodeProcess,
    RosClient,
    domain_id,
    level_of,
    make_compressed,
    make_image,
    params_file,
    reliable_accepted,
    scene,
    start_publisher,
    status_values,
)

from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.imgmsg import rgb_to_compressed_fields
from hirqa_ros.node.params import QOS_OVERRIDES, declared_names
from hirqa_ros.topics import CameraTopics

pytestmark = pytest.mark.ros

# base topics; C and BADC are compressed cameras (they publish on <base>/compressed)
A, B, C = "/it/a/image", "/it/b/image", "/it/c/image"
BAD, BADC, NEVER, DIES = "/it/bad/image", "/it/badc/image", "/it/never/image", "/it/dies/image"
TOPICS = [A, B, C, BAD, BADC, NEVER, DIES]
TRANSPORTS = ["compressed" if t in (C, BADC) else "raw" for t in TOPICS]
INPUT = {t: CameraTopics(t, k).input for t, k in zip(TOPICS, TRANSPORTS)}
NODE = "hirqa_it"


@pytest.fixture(scope="module")
def domain():
    return domain_id(1)


@pytest.fixture(scope="module")
def plumbing(random_model_dir, domain, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node")
    qos = params_file(tmp / "qos.yaml", reliable_accepted(TOPICS, TRANSPORTS))
    node = NodeProcess({"image_topics": TOPICS, "image_transport": TRANSPORTS,
                        "model_path": str(random_model_dir), "backend": "onnxruntime", "stale_timeout_s": 1.0,
                        "hysteresis_raise": 2, "hysteresis_clear": 2, "diagnostics_period_s": 0.5,
                        "warn_treshold": 0.4,  # a typo on purpose
                        "gate_mode": "scored"},  # these tests count one quality message per scored frame
                       domain, tmp / "hirqa_node.log", name=NODE, params_files=[qos])
    client = None
    try:
        node.wait_ready()
        client = RosClient(domain)
        for t in (A, B, C, BAD, BADC):
            kind = TRANSPORTS[TOPICS.index(t)]
            client.pubs[t] = client.publisher(INPUT[t], compressed=kind == "compressed")
            client.watch(t, transport=kind, accepted_reliable=True)
        client.watch_diagnostics()
        client.wait_matched([INPUT[t] for t in (A, B, C, BAD, BADC)])
        yield node, client
    finally:
        if client is not None:
            client.close()
        node.stop()


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _batch(msg) -> int:
    return int(status_values(msg.status[0])["batch_size"])


def _diag_after(client: RosClient, suffix: str, t: float, timeout: float = 10.0):
    client.wait_for(lambda: client.latest_status(suffix, after=t) is not None, timeout,
                    f"/diagnostics for {suffix}")
    return client.latest_status(suffix, after=t)


def test_unknown_parameter_is_reported(plumbing):
    node, _ = plumbing
    assert "ignoring unknown parameter(s) warn_treshold" in node.log()


def test_declared_parameters_are_the_documented_ones(plumbing):
    _, client = plumbing
    names = {n for n in client.list_params(NODE) if not n.startswith(QOS_OVERRIDES)}
    assert names <= declared_names()
    assert names >= declared_names() - {"start_type_description_service"}  # that one is Jazzy+ only


def test_one_quality_message_per_scored_frame_with_identical_header(plumbing):
    _, client = plumbing
    sent = {}
    for i in range(8):
        msg = make_image(scene(48, 64, seed=i), stamp_ns=5_000_000_000 + i * 1_000_003, frame_id=f"cam_a_{i}")
        sent[_stamp(msg)] = msg.header.frame_id
        client.pubs[A].publish(msg)
        time.sleep(0.1)
    client.wait_for(lambda: len(client.quality[A]) >= 6, 20, "quality messages on A")
    time.sleep(0.5)
    t = time.monotonic()
    st = _diag_after(client, A, t)
    with client.lock:
        got = [m for _, m in client.quality[A]]
    stamps = [_stamp(m) for m in got]
    assert len(stamps) == len(set(stamps)), "a frame was scored twice"
    for m in got:
        assert _stamp(m) in sent and sent[_stamp(m)] == m.header.frame_id
        assert len(m.status) == 1
        values = status_values(m.status[0])
        for key in ("score", "smoothed_score", "warn_threshold", "error_threshold", "backend", "latency_ms",
                    "inference_ms", "batch_size", "verdict"):
            assert key in values, key
        score = float(values["score"])
        assert 0.0 < score < 1.0
        th = Thresholds(float(values["warn_threshold"]), float(values["error_threshold"]))
        assert level_of(m.status[0]) == int(th.level(float(values["smoothed_score"])))
        assert values["backend"] == "onnxruntime"
    # the node says how many frames it scored: exactly one quality message each
    assert int(status_values(st)["frames_scored"]) == len(got)


def test_node_scores_equal_in_process_scores_for_every_encoding(plumbing, random_model_dir):
    """The node adds nothing to the score: the same frames scored in-process give the same numbers."""
    from hirqa_ros import load_scorer

    _, client = plumbing
    imgs = [scene(48, 64, seed=200 + i) for i in range(3)]
    expected = load_scorer(str(random_model_dir), backend="onnxruntime").score(imgs)
    base = 6_000_000_000
    sent = []  # (stamp, topic, image index)
    for k, enc in enumerate(("rgb8", "bgr8", "yuv422_yuy2", "png")):
        for i, img in enumerate(imgs):
            stamp = base + 10 * k + i
            if enc == "png":
                data = rgb_to_compressed_fields(img, "png")["data"].tobytes()
                client.pubs[C].publish(make_compressed(data, stamp, fmt="png"))
                sent.append((stamp, C, i, enc))
            else:
                client.pubs[A].publish(make_image(img, stamp, "cam_a", encoding=enc))
                sent.append((stamp, A, i, enc))
            time.sleep(0.12)
    time.sleep(1.0)
    with client.lock:
        got = {(t, _stamp(m)): float(status_values(m.status[0])["score"])
               for t in (A, C) for _, m in client.quality[t] if base <= _stamp(m) < base + 100}
    matched = 0
    for stamp, topic, i, enc in sent:
        if (topic, stamp) in got:
            matched += 1
            tol = 2e-2 if enc == "yuv422_yuy2" else 1e-4  # 4:2:2 chroma subsampling changes the pixels
            assert got[(topic, stamp)] == pytest.approx(float(expected[i]), abs=tol), (enc, i)
    assert matched >= len(sent) - 2


def test_gate_passes_only_ok_frames_and_thresholds_change_at_run_time(plumbing):
    _, client = plumbing
    imgs = [scene(48, 64, seed=100 + i) for i in range(6)]

    def send_round(base: int) -> list:
        for i, img in enumerate(imgs):
            client.pubs[B].publish(make_image(img, stamp_ns=base + i, frame_id="cam_b"))
            time.sleep(0.12)
        client.wait_for(lambda: sum(1 for _, m in client.quality[B] if _stamp(m) >= base) >= 5, 20, "scores")
        time.sleep(0.5)
        with client.lock:
            return [m for _, m in client.quality[B] if _stamp(m) >= base]

    first = send_round(7_000_000_000)
    scores = sorted(float(status_values(m.status[0])["score"]) for m in first)
    assert scores[0] < scores[-1], "random-weight scores should differ between scenes"
    mid = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2
    results = client.set_params(NODE, warn_threshold=mid, error_threshold=min(mid, 0.01))
    assert all(r.successful for r in results), [r.reason for r in results]

    second = send_round(8_000_000_000)
    ok = {_stamp(m) for m in second if level_of(m.status[0]) == Level.OK}
    bad = {_stamp(m) for m in second if level_of(m.status[0]) != Level.OK}
    assert ok and bad, "the threshold should split the frames"
    for m in second:
        assert float(status_values(m.status[0])["warn_threshold"]) == pytest.approx(mid, abs=1e-4)
    time.sleep(0.5)
    with client.lock:
        accepted = [m for _, m in client.accepted[B] if _stamp(m) >= 8_000_000_000]
    assert {_stamp(m) for m in accepted} == ok
    by_stamp = {8_000_000_000 + i: img for i, img in enumerate(imgs)}
    for m in accepted:  # republished unchanged
        expected = make_image(by_stamp[_stamp(m)], stamp_ns=_stamp(m), frame_id="cam_b")
        assert m.header.frame_id == "cam_b" and m.encoding == expected.encoding
        assert bytes(m.data) == bytes(expected.data)


def test_parameter_validation(plumbing):
    _, client = plumbing
    r = client.set_params(NODE, error_threshold=0.9, warn_threshold=0.2)  # error above warn
    assert not r[0].successful or not r[1].successful
    r = client.set_params(NODE, warn_threshold=1.5)  # outside the declared range
    assert not r[0].successful
    r = client.set_params(NODE, model_path="/elsewhere")  # read-only
    assert not r[0].successful
    r = client.set_params(NODE, smoothing=0.0, hysteresis_raise=2)
    assert all(x.successful for x in r)


def test_batching_two_cameras(plumbing):
    _, client = plumbing
    ia, ib = scene(48, 64, seed=1), scene(48, 64, seed=2)
    base = 9_000_000_000
    for i in range(60):
        client.pubs[A].publish(make_image(ia, base + i, "cam_a"))
        client.pubs[B].publish(make_image(ib, base + i, "cam_b"))
        time.sleep(0.025)
    time.sleep(1.0)
    with client.lock:
        sizes_a = [_batch(m) for _, m in client.quality[A] if _stamp(m) >= base]
        sizes_b = [_batch(m) for _, m in client.quality[B] if _stamp(m) >= base]
        pairs = {_stamp(m) for _, m in client.quality[A] if _stamp(m) >= base
                 and status_values(m.status[0])["batch_size"] == "2"}
    assert sizes_a and sizes_b
    assert max(sizes_a) == 2 and max(sizes_b) == 2, "frames of two cameras were never scored together"
    assert pairs
    st = _diag_after(client, ": inference", time.monotonic())
    assert int(status_values(st)["max_batch_size"]) >= 2
    # superseded frames are dropped and counted, never queued
    a = status_values(_diag_after(client, A, time.monotonic()))
    assert int(a["frames_received"]) == int(a["frames_scored"]) + int(a["frames_dropped"]) + \
        int(a["decode_errors"]) + int(a["too_small_frames"]) + int(a["inference_errors"])


def test_bad_inputs_get_no_score_are_counted_and_the_node_keeps_going(plumbing):
    node, client = plumbing
    good = scene(48, 64, seed=7)
    pub = client.pubs[BAD]
    seq = [
        ("good", make_image(good, 101, "bad_cam")),
        ("unsupported", make_image(good, 102, "bad_cam", override={"encoding": "32FC1"})),
        ("short", make_image(good, 103, "bad_cam", override={"data": bytes(64 * 3 * 10)})),
        ("zero-size", make_image(good, 104, "bad_cam", override={"height": 0, "width": 0, "step": 0,
                                                                 "data": b""})),
        ("1x1", make_image(np.zeros((1, 1, 3), np.uint8), 105, "bad_cam")),
        ("resolution switch", make_image(scene(60, 80, seed=8), 106, "bad_cam")),
        ("zero stamp", make_image(scene(60, 80, seed=9), 0, "bad_cam")),
    ]
    for _, msg in seq:
        pub.publish(msg)
        time.sleep(0.15)
    jpeg = rgb_to_compressed_fields(good, "jpeg")["data"].tobytes()
    cseq = [
        ("corrupt", make_compressed(b"\xff\xd8 definitely not a jpeg \xff\xd9", 201)),
        ("truncated", make_compressed(jpeg[: len(jpeg) // 2], 202)),
        ("empty", make_compressed(b"", 203)),
        ("good", make_compressed(jpeg, 204, fmt="nonsense format string")),
    ]
    for _, msg in cseq:
        client.pubs[BADC].publish(msg)
        time.sleep(0.15)
    client.wait_for(lambda: len(client.quality[BADC]) >= 1 and len(client.quality[BAD]) >= 3, 20,
                    "good frames")
    time.sleep(0.6)
    with client.lock:
        bad_stamps = sorted(_stamp(m) for _, m in client.quality[BAD])
        badc_stamps = sorted(_stamp(m) for _, m in client.quality[BADC])
    assert bad_stamps == [0, 101, 106]
    assert badc_stamps == [204]
    v = status_values(_diag_after(client, BAD, time.monotonic()))
    assert v["decode_errors"] == "3" and v["too_small_frames"] == "1"
    assert v["resolution_changes"] == "1" and v["zero_stamp_frames"] == "1"
    assert v["frames_scored"] == "3"
    vc = status_values(_diag_after(client, BADC, time.monotonic()))
    assert vc["decode_errors"] == "3" and vc["frames_scored"] == "1"
    log = node.log()
    for text in ("unsupported encoding '32FC1'", "step x height needs", "zero-size",
                 "below min_image_side", "resolution changed from 64x48 to 80x60", "zero header stamp",
                 "truncated JPEG", "cannot decode"):
        assert text in log, text
    assert node.proc.poll() is None


@pytest.mark.slow
def test_diagnostics_levels_follow_hysteresis_and_stale_input(plumbing):
    _, client = plumbing
    st = _diag_after(client, NEVER, time.monotonic())
    assert level_of(st) == Level.STALE and "first frame" in st.message
    # a live camera: every frame differs (one repeated buffer would be a frozen stream, ERROR)
    jpegs = [rgb_to_compressed_fields(scene(48, 64, seed=300 + i), "jpeg")["data"].tobytes()
             for i in range(8)]

    def stream_and_level(base: int, n: int = 8) -> int:
        for i in range(n):
            client.pubs[C].publish(make_compressed(jpegs[i % len(jpegs)], base + i))
            time.sleep(0.1)
        client.wait_for(lambda: any(_stamp(m) == base + n - 1 for _, m in client.quality[C]), 10,
                        "last frame")
        return level_of(_diag_after(client, C, time.monotonic()))

    assert all(r.successful for r in client.set_params(NODE, warn_threshold=0.0, error_threshold=0.0))
    assert stream_and_level(10_000) == Level.OK
    assert all(r.successful for r in client.set_params(NODE, warn_threshold=1.0, error_threshold=0.0))
    assert stream_and_level(20_000) == Level.WARN
    assert all(r.successful for r in client.set_params(NODE, warn_threshold=1.0, error_threshold=1.0))
    assert stream_and_level(30_000) == Level.ERROR
    assert all(r.successful for r in client.set_params(NODE, warn_threshold=0.0, error_threshold=0.0))
    assert stream_and_level(40_000) == Level.OK
    time.sleep(1.5)  # > stale_timeout_s: the camera stopped
    st = _diag_after(client, C, time.monotonic())
    assert level_of(st) == Level.ERROR and "stopped" in st.message


@pytest.mark.slow
def test_publisher_process_dies_and_returns(plumbing, domain):
    node, client = plumbing
    client.watch(DIES, accepted_reliable=True)  # B_accepted of DIES is reliable (fixture)
    first = start_publisher(domain, DIES, count=100000, rate=20.0, stamp_base=50_000)
    try:
        client.wait_for(lambda: len(client.quality[DIES]) >= 5, 60, "frames from the first publisher")
    except AssertionError:
        first.kill()
        out = first.communicate(timeout=10)[0]
        raise AssertionError(f"first publisher said: {out!r}\nnode log:\n{node.log()[-3000:]}") from None
    finally:
        first.kill()  # dies without saying goodbye
        first.wait(10)
    time.sleep(1.5)
    st = _diag_after(client, DIES, time.monotonic())
    assert level_of(st) == Level.ERROR and "stopped" in st.message
    second = start_publisher(domain, DIES, count=20, rate=20.0, stamp_base=90_000)
    try:
        client.wait_for(lambda: any(_stamp(m) >= 90_000 for _, m in client.quality[DIES]), 60,
                        "frames from the second publisher")
    except AssertionError:
        second.kill()
        out = second.communicate(timeout=10)[0]
        raise AssertionError(f"second publisher said: {out!r}\nnode log:\n{node.log()[-3000:]}") from None
    finally:
        second.wait(40)
    v = status_values(_diag_after(client, DIES, time.monotonic()))
    assert v["camera_resumed"] == "1"


@pytest.mark.slow
def test_sigint_shuts_down_cleanly(random_model_dir, tmp_path):
    domain = domain_id(2)
    node = NodeProcess({"image_topics": ["/sig/image"], "model_path": str(random_model_dir),
                        "backend": "onnxruntime"}, domain, tmp_path / "node.log")
    pub = None
    try:
        node.wait_ready()
        pub = start_publisher(domain, "/sig/image", count=100000, rate=30.0)
        deadline = time.monotonic() + 40
        while "matched" not in (pub.stdout.readline() if pub.stdout else "") and time.monotonic() < deadline:
            pass
        time.sleep(0.5)  # mid-stream
        code = node.interrupt(timeout=2.0)  # a functional timeout: launch tools escalate after a few s
        assert code == 0, f"exit code {code}\n{node.log()}"
        assert "Traceback" not in node.log()
    finally:
        if pub is not None:
            pub.kill()
            pub.wait(10)
        node.stop()


@pytest.mark.parametrize(("params", "message"), [
    ({"model_path": "/nonexistent/model"}, "cannot start"),
    ({"image_topics": ["/a", "/b"], "image_transport": ["raw", "raw", "raw"]},
     "image_transport needs one value or one per image topic"),
    ({"image_topics": ["/a/image/compressed"]}, "use '/a/image' with image_transport compressed"),
    ({"image_transport": "theora"}, "expected one of raw, compressed"),
    # a QoS override rclpy cannot apply fails the activate transition, with rclpy's reason
    ({"image_topics": ["/q/image"], "qos_overrides./q/image.subscription.reliability": "bogus"},
     "cannot start: RuntimeError: Unexpected QoS override for policy `reliability`: `bogus`"),
    ({"backend": "tensorflow"}, "expected one of"),
])
def test_bad_startup_exits_1_with_a_reason(random_model_dir, tmp_path, params, message):
    p = {"model_path": str(random_model_dir), "backend": "onnxruntime", **params}
    node = NodeProcess(p, domain_id(3), tmp_path / "node.log")
    try:
        assert node.proc.wait(60) == 1
        assert message in node.log()
    finally:
        node.stop()


@pytest.mark.slow
def test_max_rate_and_sim_time(random_model_dir, tmp_path):
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock

    domain = domain_id(4)
    node = NodeProcess({"image_topics": ["/rate/image"], "model_path": str(random_model_dir),
                        "backend": "onnxruntime", "max_rate_hz": 2.0, "use_sim_time": True,
                        "diagnostics_period_s": 0.5, "gate_mode": "scored"}, domain, tmp_path / "node.log")
    client = None
    try:
        node.wait_ready()
        client = RosClient(domain)
        clock_pub = client.node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
        client.publisher("/rate/image")
        client.watch("/rate/image", accepted=False)
        client.watch_diagnostics()
        client.wait_matched(["/rate/image"])
        img = scene(48, 64)
        for i in range(40):  # 20 Hz for 2 s into a 2 Hz limit
            clk = Clock()
            clk.clock.sec = 5000 + i
            clock_pub.publish(clk)
            client.pubs["/rate/image"].publish(make_image(img, 3_000_000_000 + i))
            time.sleep(0.05)
        time.sleep(1.0)
        v = status_values(_diag_after(client, "/rate/image", time.monotonic()))
        received, scored = int(v["frames_received"]), int(v["frames_scored"])
        throttled = int(v["frames_throttled"])
        assert throttled > 0 and scored < received / 2, v
        with client.lock:
            stamps = [d.header.stamp.sec for _, d in client.diagnostics[-3:]]
            q = [m for _, m in client.quality["/rate/image"]]
        assert all(s >= 5000 for s in stamps), f"/diagnostics is not stamped with sim time: {stamps}"
        assert q and all(_stamp(m) >= 3_000_000_000 for m in q)  # headers still copied from the images
    finally:
        if client is not None:
            client.close()
        node.stop()
