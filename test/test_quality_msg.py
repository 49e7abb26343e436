"""The B_quality message: writer and parser agree, the key set is versioned and documented, bad
input is refused; the image_transport-style topic names."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from hirqa_ros.decision import Level, Thresholds
from hirqa_ros.quality_msg import (
    KEY_NAMES,
    SCHEMA,
    QualityMessageError,
    keys_table,
    parse,
    quality_status_fields,
)
from hirqa_ros.topics import CameraTopics, check_base, per_camera, split_transport, status_label

REPO = Path(__file__).resolve().parents[1]


def _msg(fields, stamp_ns=1_500_000_123, frame_id="cam_optical"):
    """A message shaped like rclpy's and rosbags' (attribute access only)."""
    kv = [SimpleNamespace(key=k, value=v) for k, v in fields["values"]]
    status = SimpleNamespace(level=bytes([fields["level"]]), name=fields["name"], message=fields["message"],
                             hardware_id=fields["hardware_id"], values=kv)
    stamp = SimpleNamespace(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp, frame_id=frame_id), status=[status])


def _fields(**kw):
    base = dict(topic="/r1/front/image", score=0.41234567, level=Level.WARN, smoothed=0.45,
                thresholds=Thresholds(0.5, 0.3), backend="onnxruntime", sequence=7, batch_size=2,
                node_name="/r1/hirqa_node", label="front.image", hardware_id="front_cam", latency_ms=12.345,
                inference_ms=10.0)
    base.update(kw)
    return quality_status_fields(**base)


def test_round_trip_through_the_parser():
    f = _fields(reason="no_content: black", fault="haze", fault_confidence=0.81,
                fault_top3=[("haze", 0.81), ("blur", 0.1), ("none", 0.05)])
    assert [k for k, _ in f["values"]] == list(KEY_NAMES) and f["values"][0] == ("schema", SCHEMA)
    r = parse(_msg(f))
    assert r.schema == SCHEMA and r.stamp_ns == 1_500_000_123 and r.frame_id == "cam_optical"
    assert r.name == "/r1/hirqa_node: front.image" and r.hardware_id == "front_cam"
    assert r.level == Level.WARN and not r.accepted and r.verdict == "drop"
    assert r.score == pytest.approx(0.412346) and r.smoothed_score == pytest.approx(0.45)
    assert (r.warn_threshold, r.error_threshold) == (0.5, 0.3)
    assert (r.batch_size, r.frame, r.topic, r.backend) == (2, 7, "/r1/front/image", "onnxruntime")
    assert r.latency_ms == pytest.approx(12.35) and r.inference_ms == pytest.approx(10.0)
    assert r.reason == "no_content: black" and "[no_content: black]" in r.message
    assert r.fault == "haze" and r.fault_confidence == pytest.approx(0.81)
    assert r.fault_top3 == (("haze", 0.81), ("blur", 0.1), ("none", 0.05))
    assert r.extra == {}


def test_optional_fields_are_empty_not_made_up():
    r = parse(_msg(_fields(level=Level.OK, score=0.9, latency_ms=None, inference_ms=None)))
    assert r.accepted and r.latency_ms is None and r.inference_ms is None
    assert r.fault is None and r.fault_confidence is None and r.fault_top3 == () and r.reason == ""


def test_extra_keys_are_kept_and_cannot_shadow_schema_keys():
    r = parse(_msg(_fields(extra=[("camera_model", "x")])))
    assert r.extra == {"camera_model": "x"}
    with pytest.raises(ValueError, match="shadow"):
        _fields(extra=[("score", "1.0")])


def test_version_1_messages_from_old_bags_parse():
    old = [("score", "0.700000"), ("smoothed_score", "0.700000"), ("verdict", "keep"),
           ("warn_threshold", "0.5000"), ("error_threshold", "0.3000"), ("backend", "onnxruntime"),
           ("batch_size", "1"), ("frame", "3"),
           ("latency_ms", "5.00"), ("inference_ms", "4.00")]
    r = parse(_msg({"level": 0, "name": "hirqa_node: /cam", "message": "OK: keep (score 0.700)",
                    "hardware_id": "cam", "values": old}))
    assert r.schema == "hirqa_quality/1" and r.accepted and r.frame == 3 and r.latency_ms == 5.0


@pytest.mark.parametrize("mutate, match", [
    (lambda v: [kv for kv in v if kv[0] != "frame"], "lacks key"),
    (lambda v: [(k, "abc" if k == "score" else x) for k, x in v], "not a number"),
    (lambda v: [(k, "nan" if k == "score" else x) for k, x in v], "not finite"),
    (lambda v: [(k, "hirqa_quality/3" if k == "schema" else x) for k, x in v], "newer hirqa_ros"),
    (lambda v: [(k, "other/2" if k == "schema" else x) for k, x in v], "is not"),
    (lambda v: [(k, "maybe" if k == "verdict" else x) for k, x in v], "neither keep nor drop"),
    (lambda v: [(k, "haze" if k == "fault_top3" else x) for k, x in v], "class:probability"),
])
def test_bad_messages_are_refused_with_the_reason(mutate, match):
    f = _fields()
    f["values"] = mutate(f["values"])
    with pytest.raises(QualityMessageError, match=match):
        parse(_msg(f))


def test_no_status_and_bad_level_are_refused():
    with pytest.raises(QualityMessageError, match="no status"):
        parse(SimpleNamespace(header=None, status=[]))
    f = _fields()
    f["level"] = 9
    with pytest.raises(QualityMessageError, match="diagnostic level"):
        parse(_msg(f))


def test_parses_a_real_rosbags_message():
    typestore = pytest.importorskip("rosbags.typesys", reason="rosbags not installed (pip extra [bag])")
    from hirqa_ros.bag.quality import DIAGNOSTIC_ARRAY, diagnostic_array

    ts = typestore.get_typestore(typestore.Stores.ROS2_HUMBLE)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=3, nanosec=5), frame_id="f")
    msg = diagnostic_array(ts, header, _fields())
    back = ts.deserialize_cdr(ts.serialize_cdr(msg, DIAGNOSTIC_ARRAY), DIAGNOSTIC_ARRAY)
    r = parse(back)
    assert r.stamp_ns == 3_000_000_005 and r.level == Level.WARN and r.frame == 7


def test_docs_hold_the_key_table():
    doc = (REPO / "docs" / "node.md").read_text()
    assert keys_table() in doc, "docs/node.md must contain hirqa_ros.quality_msg.keys_table() verbatim"


# ---- topic names (image_transport style) ---------------------------------------------------------
def test_camera_topics_are_siblings():
    raw = CameraTopics("/r1/image")
    assert (raw.input, raw.quality, raw.accepted) == ("/r1/image", "/r1/image_quality", "/r1/image_accepted")
    c = CameraTopics("/r1/image", "compressed")
    assert (c.input, c.quality, c.accepted) == ("/r1/image/compressed", "/r1/image_quality",
                                                "/r1/image_accepted/compressed")
    assert CameraTopics("image").quality == "image_quality"  # relative stays relative


def test_transport_topics_are_refused_as_bases():
    with pytest.raises(ValueError, match="use '/cam/image_raw' with image_transport compressed"):
        check_base("/cam/image_raw/compressed")
    with pytest.raises(ValueError, match="empty"):
        check_base(" ")
    with pytest.raises(ValueError, match="expected one of raw, compressed"):
        CameraTopics("/x", "theora")
    assert split_transport("/cam/image_raw/compressed") == CameraTopics("/cam/image_raw", "compressed")
    assert split_transport("/cam/image_raw") == CameraTopics("/cam/image_raw", "raw")


def test_per_camera_values_and_status_labels():
    assert per_camera("raw", 3) == ["raw"] * 3
    assert per_camera(["raw", "compressed"], 2) == ["raw", "compressed"]
    with pytest.raises(ValueError, match="one value or one per image topic"):
        per_camera(["raw", "raw"], 3)
    assert status_label("/r1/front/image", "/r1") == "front.image"
    assert status_label("/sensors/front/image_raw", "/r1") == "sensors.front.image_raw"
    assert status_label("/image", "/") == "image"


def test_verdict_source_round_trips_and_defaults_to_scored():
    r = parse(_msg(_fields(level=Level.OK, verdict_source="inherited", verdict_stamp_ns=1_400_000_000,
                           verdict_age_ms=87.5)))
    assert r.inherited and r.verdict_source == "inherited" and r.accepted
    assert r.verdict_stamp_ns == 1_400_000_000 and r.verdict_age_ms == pytest.approx(87.5)
    own = parse(_msg(_fields()))  # no stamp given: the frame's own
    assert not own.inherited and own.verdict_stamp_ns == 1_500_000_123 and own.verdict_age_ms is None
    with pytest.raises(ValueError, match="verdict_source"):
        _fields(verdict_source="guessed")


def test_messages_from_before_the_verdict_source_keys_still_parse():
    f = _fields()
    f["values"] = [(k, v) for k, v in f["values"] if not k.startswith("verdict_")]
    r = parse(_msg(f))
    assert r.verdict_source == "scored" and r.verdict_stamp_ns == r.stamp_ns
    f = _fields()
    f["values"] = [(k, "maybe" if k == "verdict_source" else v) for k, v in f["values"]]
    with pytest.raises(QualityMessageError, match="verdict_source"):
        parse(_msg(f))
