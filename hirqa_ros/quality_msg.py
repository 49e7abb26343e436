"""The per-frame ``B_quality`` message: a ``diagnostic_msgs/DiagnosticArray`` with a versioned key set.

One place defines it: :func:`quality_status_fields` builds the status (the live node and the bag
writer ``hirqa bag-eval --write-bag`` both use it) and :func:`parse` reads one back into a
:class:`QualityReport` (the project's tests, bench and demo use it; so can any consumer).

The array carries the image's header (stamp and frame_id, for exact-time sync) and one
``DiagnosticStatus``: ``level`` OK/WARN/ERROR, ``name`` ``<node>: <camera>``, ``message`` the
verdict, ``hardware_id`` the camera's, and the string key/values of :data:`KEYS`, the first of
which is ``schema``. Consumers check the schema's major version (``hirqa_quality/2``); keys are
only ever added within a major version. Messages without a ``schema`` key are version 1 (before
it was introduced) and parse too.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hirqa_ros.decision import VERDICTS, Level, Thresholds
from hirqa_ros.topics import status_label

SCHEMA = "hirqa_quality/2"
SCHEMA_FAMILY, SCHEMA_MAJOR = SCHEMA.split("/")
NODE_NAME = "hirqa_node"  # the node's default name
VERDICT_SOURCES = ("scored", "inherited")


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # str | float | int
    meaning: str


#: The key/values of the status, in publishing order (docs/node.md prints this table).
KEYS: tuple[Key, ...] = (
    Key("schema", "str", f"key-set version, `{SCHEMA}`; a consumer refuses another major version"),
    Key("score", "float", "the model's score of this frame, 0..1 (higher = better)"),
    Key("smoothed_score", "float", "the score after the camera's exponential moving average (`smoothing`)"),
    Key("verdict", "str", "`keep` (level OK, the frame went to `B_accepted`) or `drop`"),
    Key("warn_threshold", "float", "threshold in force: below it the frame is WARN"),
    Key("error_threshold", "float", "threshold in force: below it the frame is ERROR"),
    Key("backend", "str", "inference backend that scored it (onnxruntime, tensorrt, ...)"),
    Key("batch_size", "int", "frames scored in the same inference call (one per waiting camera)"),
    Key("frame", "int", "sequence number of scored frames of this camera, from 1"),
    Key("topic", "str", "the input topic the frame came from (fully qualified)"),
    Key("latency_ms", "float", "receive -> publish inside the node; empty in bag copies"),
    Key("inference_ms", "float", "duration of the inference call of the batch; empty in bag copies"),
    Key("reason", "str", "why the frame was judged apart from its score (e.g. `no_content: black`); "
                         "empty if none"),
    Key("fault", "str", "why the frame is bad (model with a fault head): `none` when kept, else the head's "
                        "most likely fault (docs/faults.md); empty without a head"),
    Key("fault_confidence", "float", "the head's probability of that class, 0..1; empty without a head"),
    Key("fault_top3", "str", "the head's own top 3, `class:prob` comma-separated; empty without a head"),
    Key("verdict_source", "str", "`scored` (this frame's own score) or `inherited` (`gate_mode: state`: "
                                 "forwarded on arrival under the verdict of an earlier scored frame)"),
    Key("verdict_stamp", "int", "header stamp (ns) of the scored frame the verdict is from (its own when "
                                "scored)"),
    Key("verdict_age_ms", "float", "inherited: receive time of this frame minus that of the scored frame; "
                                   "empty when scored"),
    Key("reference", "float", "the camera's reference score (median of its recent accepted scores) the "
                              "frame was judged against; reason `relative_drop` when it fell more than the "
                              "margin below; empty while there is none or `relative` is off"),
)
KEY_NAMES = tuple(k.name for k in KEYS)
#: keys added to hirqa_quality/2 after its first release (older messages parse without them)
_OPTIONAL = ("verdict_source", "verdict_stamp", "verdict_age_ms", "reference")
_V1_REQUIRED = ("score", "smoothed_score", "verdict", "warn_threshold", "error_threshold", "backend",
                "batch_size", "frame")


class QualityMessageError(ValueError):
    """A message that is not a readable hirqa quality message (says which field and why)."""


def status_message(level: Level, score: float) -> str:
    """The short text of a frame's status: level, verdict and score (``WARN: drop (score 0.412)``)."""
    level = Level(level)
    return f"{level.name}: {VERDICTS[level]} (score {score:.3f})"


def _num(x: float | None, fmt: str) -> str:
    return "" if x is None else format(float(x), fmt)


def quality_status_fields(
    topic: str,
    score: float,
    level: Level,
    smoothed: float,
    thresholds: Thresholds,
    backend: str,
    frame_id: str = "",
    sequence: int = 0,
    batch_size: int = 1,
    node_name: str = NODE_NAME,
    extra: Iterable[tuple[str, str]] = (),
    *,
    label: str | None = None,
    hardware_id: str | None = None,
    latency_ms: float | None = None,
    inference_ms: float | None = None,
    reason: str = "",
    fault: str | None = None,
    fault_confidence: float | None = None,
    fault_top3: Sequence[tuple[str, float]] = (),
    verdict_source: str = "scored",
    verdict_stamp_ns: int | None = None,
    verdict_age_ms: float | None = None,
    reference: float | None = None,
) -> dict[str, Any]:
    """The DiagnosticStatus of one frame as plain fields: ``level`` (int), ``name``, ``message``,
    ``hardware_id`` and ``values`` (the :data:`KEYS` in order, then any ``extra`` pairs).

    ``node_name`` is the node's fully qualified name (a leading ``/`` is added if missing),
    ``label`` the camera's name in it (default: :func:`hirqa_ros.topics.status_label` of ``topic``);
    ``hardware_id`` defaults to
    ``frame_id`` (or the topic when there is none). ``verdict_source``/``verdict_stamp_ns``/
    ``verdict_age_ms``: where the verdict came from (see :data:`KEYS`; stamp empty when not given)."""
    if verdict_source not in VERDICT_SOURCES:
        raise ValueError(f"verdict_source {verdict_source!r}: expected one of {', '.join(VERDICT_SOURCES)}")
    level = Level(level)
    verdict = VERDICTS[level]
    fqn = node_name if node_name.startswith("/") else "/" + node_name
    top3 = ",".join(f"{c}:{float(p):.4f}" for c, p in fault_top3)
    values = [
        ("schema", SCHEMA),
        ("score", f"{float(score):.6f}"),
        ("smoothed_score", f"{float(smoothed):.6f}"),
        ("verdict", verdict),
        ("warn_threshold", f"{thresholds.warn:.4f}"),
        ("error_threshold", f"{thresholds.error:.4f}"),
        ("backend", str(backend)),
        ("batch_size", str(int(batch_size))),
        ("frame", str(int(sequence))),
        ("topic", topic),
        ("latency_ms", _num(latency_ms, ".2f")),
        ("inference_ms", _num(inference_ms, ".2f")),
        ("reason", reason),
        ("fault", fault or ""),
        ("fault_confidence", _num(fault_confidence, ".4f")),
        ("fault_top3", top3),
        ("verdict_source", verdict_source),
        ("verdict_stamp", "" if verdict_stamp_ns is None else str(int(verdict_stamp_ns))),
        ("verdict_age_ms", _num(verdict_age_ms, ".2f")),
        ("reference", _num(reference, ".6f")),
    ]
    assert tuple(k for k, _ in values) == KEY_NAMES
    extra = list(extra)
    clash = {k for k, _ in extra} & set(KEY_NAMES)
    if clash:
        raise ValueError(f"extra keys {sorted(clash)} would shadow schema keys")
    return {
        "level": int(level),
        "name": f"{fqn}: {label if label is not None else status_label(topic)}",
        "message": status_message(level, float(score)) + (f" [{reason}]" if reason else ""),
        "hardware_id": hardware_id if hardware_id is not None else (frame_id or topic),
        "values": [*values, *extra],
    }


@dataclass(frozen=True)
class QualityReport:
    """One parsed quality message. Optional numbers are None when the message left them empty."""

    schema: str
    stamp_ns: int
    frame_id: str
    name: str
    hardware_id: str
    level: Level
    message: str
    score: float
    smoothed_score: float
    verdict: str
    warn_threshold: float
    error_threshold: float
    backend: str
    batch_size: int
    frame: int
    topic: str = ""
    latency_ms: float | None = None
    inference_ms: float | None = None
    reason: str = ""
    fault: str | None = None
    fault_confidence: float | None = None
    fault_top3: tuple[tuple[str, float], ...] = ()
    reference: float | None = None
    extra: dict[str, str] = field(default_factory=dict)  # keys this version does not know
    verdict_source: str = "scored"
    verdict_stamp_ns: int = 0  # the scored frame's stamp (this frame's own when scored or not given)
    verdict_age_ms: float | None = None

    @property
    def accepted(self) -> bool:
        """True when the frame passed the gate (it was republished on ``B_accepted``)."""
        return self.verdict == "keep"

    @property
    def inherited(self) -> bool:
        """True when the verdict is an earlier scored frame's (``gate_mode: state``), not this frame's."""
        return self.verdict_source == "inherited"


def _level(raw: Any) -> Level:
    value = raw[0] if isinstance(raw, (bytes, bytearray)) and len(raw) == 1 else raw
    try:
        return Level(int(value))
    except (TypeError, ValueError) as exc:
        raise QualityMessageError(f"status level {raw!r} is not a diagnostic level 0..3") from exc


def _float(values: dict[str, str], key: str, optional: bool = False) -> float | None:
    text = values.get(key, "")
    if text == "" and optional:
        return None
    try:
        x = float(text)
    except ValueError as exc:
        raise QualityMessageError(f"key {key!r} = {text!r} is not a number") from exc
    if not math.isfinite(x):
        raise QualityMessageError(f"key {key!r} = {text!r} is not finite")
    return x


def _int(values: dict[str, str], key: str) -> int:
    try:
        return int(values[key])
    except ValueError as exc:
        raise QualityMessageError(f"key {key!r} = {values[key]!r} is not an integer") from exc


def _top3(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        cls, sep, prob = item.rpartition(":")
        try:
            out.append((cls, float(prob)))
        except ValueError as exc:
            raise QualityMessageError(f"fault_top3 entry {item!r} is not class:probability") from exc
        if not sep:
            raise QualityMessageError(f"fault_top3 entry {item!r} is not class:probability")
    return tuple(out)


def parse(msg: Any) -> QualityReport:
    """Read a quality DiagnosticArray (an rclpy message or a rosbags-deserialized one).

    Raises :class:`QualityMessageError` for anything that is not a hirqa quality message of a
    known major version: no status, a missing key, a number that does not parse."""
    statuses = list(getattr(msg, "status", None) or [])
    if not statuses:
        raise QualityMessageError("DiagnosticArray has no status")
    st = statuses[0]
    values = {str(kv.key): str(kv.value) for kv in st.values}
    schema = values.get("schema", f"{SCHEMA_FAMILY}/1")
    family, _, major = schema.partition("/")
    if family != SCHEMA_FAMILY or major.split(".")[0] not in ("1", SCHEMA_MAJOR):
        raise QualityMessageError(
            f"schema {schema!r} is not {SCHEMA_FAMILY}/1 or {SCHEMA} (a newer hirqa_ros?)")
    required = tuple(k for k in KEY_NAMES if k not in _OPTIONAL) if major.split(".")[0] == SCHEMA_MAJOR \
        else _V1_REQUIRED
    missing = [k for k in required if k not in values]
    if missing:
        raise QualityMessageError(f"{schema} message lacks key(s) {', '.join(missing)}")
    verdict = values["verdict"]
    if verdict not in ("keep", "drop"):
        raise QualityMessageError(f"verdict {verdict!r} is neither keep nor drop")
    source = values.get("verdict_source") or "scored"
    if source not in VERDICT_SOURCES:
        raise QualityMessageError(f"verdict_source {source!r} is neither scored nor inherited")
    stamp = msg.header.stamp
    stamp_ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    return QualityReport(
        schema=schema,
        stamp_ns=stamp_ns,
        frame_id=str(msg.header.frame_id),
        name=str(st.name),
        hardware_id=str(st.hardware_id),
        level=_level(st.level),
        message=str(st.message),
        score=_float(values, "score"),
        smoothed_score=_float(values, "smoothed_score"),
        verdict=verdict,
        warn_threshold=_float(values, "warn_threshold"),
        error_threshold=_float(values, "error_threshold"),
        backend=values["backend"],
        batch_size=_int(values, "batch_size"),
        frame=_int(values, "frame"),
        topic=values.get("topic", ""),
        latency_ms=_float(values, "latency_ms", optional=True),
        inference_ms=_float(values, "inference_ms", optional=True),
        reason=values.get("reason", ""),
        fault=values.get("fault") or None,
        fault_confidence=_float(values, "fault_confidence", optional=True),
        fault_top3=_top3(values.get("fault_top3", "")),
        reference=_float(values, "reference", optional=True),
        extra={k: v for k, v in values.items() if k not in KEY_NAMES},
        verdict_source=source,
        verdict_stamp_ns=_int(values, "verdict_stamp") if values.get("verdict_stamp") else stamp_ns,
        verdict_age_ms=_float(values, "verdict_age_ms", optional=True),
    )


def keys_table() -> str:
    """The key table as Markdown (docs/node.md holds a copy; a test keeps them equal)."""
    rows = ["| key | type | meaning |", "|---|---|---|"]
    rows += [f"| `{k.name}` | {k.type} | {k.meaning} |" for k in KEYS]
    return "\n".join(rows)
