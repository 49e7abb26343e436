"""The node, ``hirqa bag-eval`` and ``hirqa score`` are one per-frame pipeline: the same frames through
hirqa_node (a subprocess, real rclpy over Fast DDS), through ``evaluate_bag`` and through ``hirqa score``
give the same levels and scores, including frames refused as too small and a resolution change
(smoothing restarts), the refusal reasons of undecodable and too-large frames, and the fault names.

Seeded RANDOM weights (plumbing only: the scores mean nothing, they only have to agree)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")
pytest.importorskip("diagnostic_msgs.msg", reason="diagnostic_msgs not installed (pip install -e \".[ros]\")")
pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")

from helpers_bag import write_image_bag
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

from hirqa_ros.decision import Thresholds

pytestmark = pytest.mark.ros

TOPIC = "/eq/cam/image"
SMOOTHING = 0.6
BASE_NS = 7_000_000_000
# (width, height) per frame, in order: 12x10 and 64x8 are below min_image_side (16);
# the switch to 80x60 restarts the smoothing
SIZES = [(64, 48)] * 5 + [(12, 10)] + [(64, 48)] * 2 + [(80, 60)] * 4 + [(64, 8)] + [(80, 60)] * 2


def _frames() -> list[np.ndarray]:
    return [scene(h, w, seed=300 + i) for i, (w, h) in enumerate(SIZES)]


def _write_bag(path: Path, frames: list[np.ndarray]) -> None:
    write_image_bag(path, frames, TOPIC, BASE_NS, frame_id="eq_cam")


def _thresholds_between(values: list[float]) -> Thresholds:
    """warn/error half-way between neighbouring smoothed scores (no value sits on a threshold), so that
    the frames fall into all three levels."""
    v = sorted(set(values))
    assert len(v) >= 4, v
    mid = [(a + b) / 2 for a, b in itertools.pairwise(v)]
    return Thresholds(warn=mid[2 * len(mid) // 3], error=mid[len(mid) // 3])


@pytest.mark.slow
def test_node_and_bag_eval_agree_frame_by_frame(random_model_dir, tmp_path):
    from hirqa_ros import load_scorer
    from hirqa_ros.bag.evaluate import evaluate_bag

    frames = _frames()
    bag = tmp_path / "eq_bag"
    _write_bag(bag, frames)
    scorer = load_scorer(str(random_model_dir), backend="onnxruntime")
    # the smoothed scores do not depend on the thresholds: a first pass places the thresholds
    probe = evaluate_bag(bag, tmp_path / "probe", scorer=scorer, smoothing=SMOOTHING, progress=False,
                         plots=False)
    th = _thresholds_between([r.smoothed for r in probe.rows if r.smoothed is not None])
    res = evaluate_bag(bag, tmp_path / "out", scorer=scorer, thresholds=th, smoothing=SMOOTHING,
                       progress=False, plots=False)
    rows = res.rows
    assert len(rows) == len(SIZES)
    small = [i for i, (w, h) in enumerate(SIZES) if min(w, h) < 16]
    for i, r in enumerate(rows):
        if i in small:
            assert (r.verdict, r.reason, r.score) == ("error", "too_small", None), r
            assert "below min_image_side=16" in r.error
        else:
            assert r.score is not None and r.level in ("OK", "WARN", "ERROR"), r
    first_80 = SIZES.index((80, 60))
    assert rows[first_80].smoothed == pytest.approx(rows[first_80].score, abs=1e-9)  # smoothing restarted
    assert rows[1].smoothed != pytest.approx(rows[1].score, abs=1e-9)  # ... and is on otherwise
    assert {r.level for r in rows if r.score is not None} == {"OK", "WARN", "ERROR"}

    domain = domain_id(7)
    node = NodeProcess({"image_topics": [TOPIC], "model_path": str(random_model_dir),
                        "backend": "onnxruntime", "warn_threshold": th.warn, "error_threshold": th.error,
                        "smoothing": SMOOTHING, "diagnostics_period_s": 0.2,
                        "gate_mode": "scored"},  # one quality message per scored frame, as bag-eval
                       domain, tmp_path / "node.log", name="hirqa_eq",
                       # a reliable input queue: no frame may be lost between the test and the node
                       params_files=[params_file(tmp_path / "qos.yaml", {"qos_overrides": {
                           TOPIC: {"subscription": {"reliability": "reliable", "depth": 10}}}})])
    client = None
    try:
        node.wait_ready()
        client = RosClient(domain, name="hirqa_eq_client")
        client.publisher(TOPIC, reliable=True)
        client.watch(TOPIC)
        client.watch_diagnostics()
        client.wait_matched([TOPIC])
        for i, rgb in enumerate(frames):  # one at a time: the node's newest-frame slot never drops one
            before = len(client.quality[TOPIC])
            client.pubs[TOPIC].publish(make_image(rgb, BASE_NS + i * 100_000_000, "eq_cam"))
            if i in small:
                n_small = small.index(i) + 1
                client.wait_for(lambda n=n_small: _too_small(client) >= n, 30, f"too_small count {n_small}")
            else:
                client.wait_for(lambda b=before: len(client.quality[TOPIC]) > b, 30, f"quality of frame {i}")
        with client.lock:
            got = {_stamp(m): m.status[0] for _, m in client.quality[TOPIC]}
    finally:
        if client is not None:
            client.close()
        node.stop()

    assert len(got) == len(SIZES) - len(small)
    for i, r in enumerate(rows):
        stamp = BASE_NS + i * 100_000_000
        if i in small:
            assert stamp not in got  # refused by both: no quality message
            continue
        st = got[stamp]
        values = status_values(st)
        assert level_of(st) == {"OK": 0, "WARN": 1, "ERROR": 2}[r.level], (i, r)
        assert values["verdict"] == r.verdict
        assert float(values["score"]) == pytest.approx(r.score, abs=2e-6), i
        assert float(values["smoothed_score"]) == pytest.approx(r.smoothed, abs=2e-6), i


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _too_small(client: RosClient) -> int:
    st = client.latest_status(TOPIC)
    return int(status_values(st).get("too_small_frames", "0")) if st is not None else 0


REF_TOPIC = "/eq/ref/image"
N_REF = 40


def _ref_frames() -> list[np.ndarray]:
    """Frames whose (random-model) scores wander: a few scenes, each held for several frames; the last 4
    dark and noisy (underexposed: the cue rule ``too_dark`` of ``reference``)."""
    frames = [scene(48, 64, seed=500 + (i // 4) % 6) for i in range(N_REF - 4)]
    rng = np.random.default_rng(7)
    return frames + [np.clip(f * 0.45 + rng.normal(0.0, 8.0, f.shape), 0, 255).astype(np.uint8)
                     for f in frames[-4:]]


@pytest.mark.slow
def test_node_and_bag_eval_agree_with_the_reference_gate(random_model_dir, tmp_path):
    """The reference gate on (the default): the node and bag-eval give the same level, reason
    (``relative_drop`` and the cue rule ``too_dark`` included) and reference value for every frame of the
    same bag."""
    from hirqa_ros import load_scorer
    from hirqa_ros.bag.evaluate import evaluate_bag
    from hirqa_ros.reference import RELATIVE_DROP, TOO_DARK, ReferenceParams

    frames = _ref_frames()
    bag = tmp_path / "ref_bag"
    write_image_bag(bag, frames, REF_TOPIC, BASE_NS, frame_id="ref_cam")
    scorer = load_scorer(str(random_model_dir), backend="onnxruntime")
    probe = evaluate_bag(bag, tmp_path / "probe", scorer=scorer, progress=False, plots=False,
                         reference=ReferenceParams(relative=False))
    scores = [r.score for r in probe.rows]
    th = Thresholds(warn=min(scores) - 1e-3, error=min(scores) - 2e-3)  # the floor accepts every frame
    spread = max(scores) - min(scores)
    rows = None
    for frac in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2):  # a margin: some, not all, frames relative drops
        # learn_none 0: no fault head on the random model (the head's paths are the same code)
        params = ReferenceParams(margin=frac * spread, warmup_s=0.3, learn_none=0.0, dark_luma=95.0)
        res = evaluate_bag(bag, tmp_path / f"out{frac}", scorer=scorer, thresholds=th, progress=False,
                           plots=False, reference=params)
        n_rel = sum(r.reason == RELATIVE_DROP for r in res.rows)
        if 0 < n_rel < N_REF // 2:
            rows = res.rows
            break
    assert rows is not None, f"no margin gave relative drops on {scores}"
    assert [r.reason for r in rows[-4:]] == [TOO_DARK] * 4

    domain = domain_id(8)
    node = NodeProcess({"image_topics": [REF_TOPIC], "model_path": str(random_model_dir),
                        "backend": "onnxruntime", "warn_threshold": th.warn, "error_threshold": th.error,
                        "reference_margin": params.margin, "reference_warmup_s": params.warmup_s,
                        "reference_learn_none": params.learn_none, "reference_dark_luma": params.dark_luma,
                        "diagnostics_period_s": 0.2,
                        # one B_quality message per scored frame (state mode adds inherited copies that
                        # would end the wait below early, so a later frame could replace one unscored)
                        "gate_mode": "scored"},
                       domain, tmp_path / "node.log", name="hirqa_eq_ref",
                       params_files=[params_file(tmp_path / "qos.yaml", {"qos_overrides": {
                           REF_TOPIC: {"subscription": {"reliability": "reliable", "depth": 10}}}})])
    client = None
    try:
        node.wait_ready()
        client = RosClient(domain, name="hirqa_eq_ref_client")
        client.publisher(REF_TOPIC, reliable=True)
        client.watch(REF_TOPIC)
        client.wait_matched([REF_TOPIC])
        for i, rgb in enumerate(frames):
            before = len(client.quality[REF_TOPIC])
            client.pubs[REF_TOPIC].publish(make_image(rgb, BASE_NS + i * 100_000_000, "ref_cam"))
            client.wait_for(lambda b=before: len(client.quality[REF_TOPIC]) > b, 30, f"quality of frame {i}")
        with client.lock:
            got = {_stamp(m): m.status[0] for _, m in client.quality[REF_TOPIC]}
    finally:
        if client is not None:
            client.close()
        node.stop()

    assert len(got) == N_REF
    for i, r in enumerate(rows):
        st = got[BASE_NS + i * 100_000_000]
        values = status_values(st)
        assert level_of(st) == {"OK": 0, "WARN": 1, "ERROR": 2}[r.level], (i, r)
        assert values["reason"] == r.reason, i
        if r.reference is None:
            assert values["reference"] == "", i
        else:
            assert float(values["reference"]) == pytest.approx(r.reference, abs=2e-6), i


# ---- hirqa score, refusals and the fault head -------------------------------------------------------
DOORS_TOPIC = "/eq/doors/image"


def _png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _huge_png_header(width: int = 20_000, height: int = 20_000) -> bytes:
    """The first bytes of a PNG that declares width x height (400 MP): refused before decoding."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    crc = struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + crc + bytes(64)


def _door_inputs() -> list[tuple[str, bytes]]:
    """(what, PNG bytes) in stream order: toy frames of the three toy classes (a fault head tells them
    apart), a frame below min_image_side, an undecodable one and one that declares 400 MP."""
    from helpers_faults import toy_frames

    toy = toy_frames(seeds=(0, 1, 2))
    good = [(c, _png(toy[c][i])) for i in range(3) for c in ("none", "blur", "low_light")]
    tiny = ("too_small", _png(scene(10, 12, seed=9)))
    corrupt = ("decode_error", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    huge = ("too_large", _huge_png_header())
    return [*good[:3], tiny, *good[3:6], corrupt, *good[6:], huge]


def _write_compressed_bag(path: Path, datas: list[bytes], topic: str) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    from hirqa_ros.bag.reader import default_typestore

    ts = default_typestore()
    T, cimg = ts.types, "sensor_msgs/msg/CompressedImage"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(topic, cimg, typestore=ts)
        for i, data in enumerate(datas):
            t = BASE_NS + i * 100_000_000
            header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=t // 10**9,
                                                                                     nanosec=t % 10**9),
                                              frame_id="doors_cam")
            msg = T[cimg](header=header, format="png", data=np.frombuffer(data, np.uint8))
            w.write(conn, t, ts.serialize_cdr(msg, cimg))


def _count(client: RosClient, topic: str, key: str) -> int:
    st = client.latest_status(topic)
    return int(status_values(st).get(key, "0")) if st is not None else 0


def _node_door_results(model, th, inputs, refused, tmp_path):
    """Publish ``inputs`` (PNG bytes) as CompressedImage to a hirqa_node; its B_quality status per stamp
    and its /diagnostics refusal counters."""
    from hirqa_ros.node.stats import BAD_INPUT

    domain = domain_id(9)
    node = NodeProcess({"image_topics": [DOORS_TOPIC], "image_transport": "compressed",
                        "model_path": str(model), "backend": "onnxruntime", "warn_threshold": th.warn,
                        "error_threshold": th.error, "smoothing": 0.0, "relative": False,
                        "diagnostics_period_s": 0.2, "gate_mode": "scored"},
                       domain, tmp_path / "node.log", name="hirqa_eq_doors",
                       params_files=[params_file(tmp_path / "qos.yaml", {"qos_overrides": {
                           DOORS_TOPIC + "/compressed": {"subscription": {"reliability": "reliable",
                                                                          "depth": 10}}}})])
    client = None
    try:
        node.wait_ready()
        client = RosClient(domain, name="hirqa_eq_doors_client")
        client.publisher(DOORS_TOPIC + "/compressed", compressed=True, reliable=True)
        client.watch(DOORS_TOPIC, transport="compressed")
        client.watch_diagnostics()
        client.wait_matched([DOORS_TOPIC + "/compressed"])
        for i, (what, data) in enumerate(inputs):
            before = len(client.quality[DOORS_TOPIC])
            client.pubs[DOORS_TOPIC + "/compressed"].publish(
                make_compressed(data, BASE_NS + i * 100_000_000, fmt="png", frame_id="doors_cam"))
            if i in refused:  # no quality message: wait for the /diagnostics counter of that reason
                key, n = BAD_INPUT[what], sum(1 for j, w in refused.items() if w == what and j <= i)
                client.wait_for(lambda k=key, n=n: _count(client, DOORS_TOPIC, k) >= n, 30, f"{key} {n}")
            else:
                client.wait_for(lambda b=before: len(client.quality[DOORS_TOPIC]) > b, 30, f"quality {i}")
        with client.lock:
            got = {_stamp(m): m.status[0] for _, m in client.quality[DOORS_TOPIC]}
        counts = {key: _count(client, DOORS_TOPIC, key) for key in BAD_INPUT.values()}
    finally:
        if client is not None:
            client.close()
        node.stop()
    return got, counts


@pytest.mark.slow  # ~27 s on a loaded 2-core machine
def test_score_bag_eval_and_node_agree_on_refusals_and_faults(random_model_dir, tmp_path, capsys):
    """The same PNG bytes as files (``hirqa score``), as CompressedImage messages of a bag (bag-eval)
    and published to hirqa_node: the same score, level, reason and fault name per frame, and the same
    refusal reason (``refusals``: too_small, decode_error, too_large) for the frames none can score.
    Each file is its own stream in ``hirqa score``, so smoothing is 0 and the reference gate off."""
    import json

    from helpers_faults import toy_head_model_dir

    from hirqa_ros import open_monitor
    from hirqa_ros.bag.evaluate import evaluate_bag
    from hirqa_ros.cli.main import main
    from hirqa_ros.node.stats import BAD_INPUT
    from hirqa_ros.reference import ReferenceParams

    model = toy_head_model_dir(random_model_dir, tmp_path / "head_model")
    inputs = _door_inputs()
    refused = {i: what for i, (what, _) in enumerate(inputs) if what in BAD_INPUT}
    bag = tmp_path / "doors_bag"
    _write_compressed_bag(bag, [d for _, d in inputs], DOORS_TOPIC + "/compressed")
    folder = tmp_path / "files"
    folder.mkdir()
    for i, (_, data) in enumerate(inputs):
        (folder / f"{i:02d}.png").write_bytes(data)

    off = ReferenceParams(relative=False)
    mon = open_monitor(model, "onnxruntime", reference=off)
    common = dict(scorer=mon.scorer, reference=off, progress=False, plots=False)
    probe = evaluate_bag(bag, tmp_path / "probe", **common)
    th = _thresholds_between([r.score for r in probe.rows if r.score is not None])
    rows = evaluate_bag(bag, tmp_path / "out", thresholds=th, **common).rows
    assert [r.reason for i, r in enumerate(rows) if i in refused] == list(refused.values())
    assert all(r.score is None and r.verdict == "error" and r.error for r in (rows[i] for i in refused))
    scored = [r for r in rows if r.score is not None]
    assert {r.level for r in scored} == {"OK", "WARN", "ERROR"}
    faults = {r.fault for r in scored}
    assert "none" in faults and len(faults) >= 3, faults  # kept frames say none, dropped ones name a fault

    # hirqa score: one JSON row per file, refused ones with their reason and no score
    assert main(["score", "--model", str(model), "--backend", "onnxruntime", "--jsonl", "--no-progress",
                 "--threshold", f"{th.warn!r},{th.error!r}", "--no-relative", str(folder)]) == 1
    got_score = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(g["source"]).name for g in got_score] == [f"{i:02d}.png" for i in range(len(inputs))]
    for i, (r, g) in enumerate(zip(rows, got_score)):
        assert (g["reason"] if "reason" in g else "") == r.reason, (i, g, r)
        assert (g["level"] or "", g["fault"]) == (r.level, r.fault), (i, g, r)
        if r.score is None:
            assert g["score"] is None and g["error"], (i, g)
        else:
            assert g["score"] == pytest.approx(r.score, abs=2e-6), i

    # the node: the same bytes published as CompressedImage
    got, counts = _node_door_results(model, th, inputs, refused, tmp_path)

    assert len(got) == len(inputs) - len(refused)
    for reason, key in BAD_INPUT.items():  # every refusal counted under its reason, nothing else
        assert counts[key] == sum(1 for w in refused.values() if w == reason), (key, counts)
    for i, r in enumerate(rows):
        stamp = BASE_NS + i * 100_000_000
        if i in refused:
            assert stamp not in got
            continue
        values = status_values(got[stamp])
        assert level_of(got[stamp]) == {"OK": 0, "WARN": 1, "ERROR": 2}[r.level], (i, r)
        assert (values["reason"], values["fault"]) == (r.reason, r.fault), (i, values, r)
        assert float(values["score"]) == pytest.approx(r.score, abs=2e-6), i
