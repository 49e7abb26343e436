"""The rclpy node: ROS wiring around the per-frame pipeline of ``hirqa_ros.monitor``.

Subscription callbacks only store the newest frame per camera; one worker thread decodes the
waiting frames, runs each camera's ``CameraMonitor`` checks, scores them as one batch
(``monitor.run_frames``) and publishes ``<topic>/quality`` and ``<topic>/accepted``; a
steady-clock timer publishes ``/diagnostics``.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from hirqa_ros.decision import Hysteresis, Level, Thresholds
from hirqa_ros.imgmsg import ImageDecodeError, compressed_msg_to_rgb, image_msg_to_rgb
from hirqa_ros.monitor import CameraMonitor, Checked, FrameResult, run_frames
from hirqa_ros.node.params import BY_NAME, DYNAMIC, PARAMS, ParamSpec, declared_names, topic_is_compressed
from hirqa_ros.node.stats import CameraStats
from hirqa_ros.quality_status import NODE_NAME, quality_status_fields, quality_topic

WARN_EVERY_S = 5.0  # throttle for repeated bad-input warnings (per camera and reason)

_PTYPE = {
    "string": ParameterType.PARAMETER_STRING,
    "string_array": ParameterType.PARAMETER_STRING_ARRAY,
    "bool": ParameterType.PARAMETER_BOOL,
    "int": ParameterType.PARAMETER_INTEGER,
    "double": ParameterType.PARAMETER_DOUBLE,
}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The rclpy descriptor of one parameter: description, range, choices, read-only unless dynamic."""
    d = ParameterDescriptor(name=spec.name, type=_PTYPE[spec.type], description=spec.description,
                            read_only=not spec.dynamic)
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.range is not None and spec.type == "double":
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]),
                                                     to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None and spec.type == "int":
        d.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return d


class Camera:
    """One input topic: subscription, publishers, the newest-frame slot, its monitor and its stats."""

    def __init__(self, topic: str, compressed: bool, monitor: CameraMonitor, stats: CameraStats) -> None:
        self.topic = topic
        self.compressed = compressed
        self.msg_type = CompressedImage if compressed else Image
        self.monitor = monitor
        self.stats = stats
        self.slot: tuple[Any, float] | None = None  # (message, receive time), guarded by the node's lock
        self.next_allowed = 0.0  # max_rate_hz bookkeeping (monotonic seconds)
        self.sequence = 0
        self.quality_pub = None
        self.accepted_pub = None
        self.subscription = None


class QualityNode(Node):
    """``hirqa_node``: per-frame quality of every configured camera topic (see docs/node.md)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._log = self.get_logger()
        # Humble-era loggers may lack .warning; Kilted deprecates .warn
        self._log_warning = getattr(self._log, "warning", None) or self._log.warn
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._pending = False
        self._warned: dict[tuple[str, str], tuple[float, int]] = {}
        self._infer_ms: deque[float] = deque(maxlen=200)
        self._batch_sizes: deque[int] = deque(maxlen=200)
        self.batches = 0
        self.max_batch = 0

        for spec in PARAMS:
            if spec.default is not None:
                self.declare_parameter(spec.name, spec.default, descriptor(spec))
        p = self._static_params()
        self._check_unknown_overrides()

        self.scorer = self._load_scorer(p)
        card = self.scorer.thresholds
        self.declare_parameter("warn_threshold", float(card.warn), descriptor(BY_NAME["warn_threshold"]))
        self.declare_parameter("error_threshold", float(card.error), descriptor(BY_NAME["error_threshold"]))
        thresholds = Thresholds(self._get("warn_threshold"), self._get("error_threshold"))  # raises if bad
        smoothing = self._get("smoothing")
        raise_after, clear_after = self._get("hysteresis_raise"), self._get("hysteresis_clear")
        self.add_on_set_parameters_callback(self._on_set_parameters)

        topics, kinds = p["image_topics"], p["image_types"]
        if not topics or any(not t.strip() for t in topics):
            raise ValueError(f"image_topics must list at least one non-empty topic, got {topics!r}")
        if len(kinds) == 1:
            kinds = kinds * len(topics)
        if len(kinds) != len(topics):
            raise ValueError(f"image_types needs 1 entry or one per topic ({len(topics)}), got {len(kinds)}")
        in_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p["input_depth"],
                            reliability=ReliabilityPolicy.RELIABLE if p["input_reliability"] == "reliable"
                            else ReliabilityPolicy.BEST_EFFORT)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p["output_depth"],
                             reliability=ReliabilityPolicy.RELIABLE)
        # separate groups so the node also behaves under a MultiThreadedExecutor (e.g. composed with others)
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._diag_group = MutuallyExclusiveCallbackGroup()
        self.cameras: list[Camera] = []
        seen: set[str] = set()
        for topic, kind in zip(topics, kinds):
            compressed = topic_is_compressed(topic.strip(), kind.strip().lower())
            name = self._resolve(topic.strip())
            if name in seen:
                raise ValueError(f"topic {name} is listed twice in image_topics")
            seen.add(name)
            cam = Camera(name, compressed, CameraMonitor(name, thresholds, smoothing, self._min_side),
                         CameraStats(name, window=p["stats_window"],
                                     hysteresis=Hysteresis(raise_after, clear_after)))
            cam.quality_pub = self.create_publisher(DiagnosticArray, quality_topic(name), out_qos)
            if p["publish_accepted"]:
                cam.accepted_pub = self.create_publisher(cam.msg_type, f"{name}/accepted", out_qos)
            cam.subscription = self.create_subscription(
                cam.msg_type, name, lambda msg, c=cam: self._on_image(c, msg), in_qos,
                callback_group=self._input_group)
            self.cameras.append(cam)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics",
                                               QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        # a steady clock: /diagnostics keeps its rate while a bag is paused under use_sim_time
        self._diag_timer = self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics,
                                             callback_group=self._diag_group,
                                             clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._worker = threading.Thread(target=self._worker_loop, name="hirqa_inference", daemon=True)
        self._worker.start()
        listing = ", ".join(f"{c.topic} ({c.msg_type.__name__})" for c in self.cameras)
        self._log.info(
            f"READY: scoring {len(self.cameras)} camera(s): {listing} | backend={self.scorer.backend} "
            f"model={self.scorer.model_dir} input_policy={self.scorer.input_policy} "
            f"thresholds warn={thresholds.warn:.3f} error={thresholds.error:.3f} smoothing={smoothing} "
            f"input QoS {p['input_reliability']}/depth {p['input_depth']}, outputs reliable")

    def _resolve(self, topic: str) -> str:
        """The fully qualified topic name (remappings applied where rclpy offers it)."""
        resolve = getattr(self, "resolve_topic_name", None)
        if resolve is not None:
            return resolve(topic)
        if topic.startswith("/"):
            return topic
        if topic.startswith("~"):
            return self.get_fully_qualified_name() + topic[1:]
        ns = self.get_namespace().rstrip("/")
        return f"{ns}/{topic}"

    # ---- parameters ----------------------------------------------------------------------------
    def _get(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _static_params(self) -> dict[str, Any]:
        p = {s.name: self._get(s.name) for s in PARAMS if s.default is not None}
        for s in PARAMS:
            if s.choices and s.type == "string" and p[s.name] not in s.choices:
                raise ValueError(f"parameter {s.name}={p[s.name]!r}: expected one of {', '.join(s.choices)}")
        p["image_topics"] = [str(t) for t in p["image_topics"]]
        p["image_types"] = [str(t).strip().lower() for t in p["image_types"]]
        for kind in p["image_types"]:
            if kind not in BY_NAME["image_types"].choices:
                raise ValueError(f"image_types entry {kind!r}: expected auto, raw or compressed")
        self._max_rate = float(p["max_rate_hz"])
        self._publish_accepted = bool(p["publish_accepted"])
        self._min_side = int(p["min_image_side"])
        self._stale_timeout = float(p["stale_timeout_s"])
        return p

    def _check_unknown_overrides(self) -> None:
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        unknown = sorted(set(overrides) - declared_names())
        if unknown:
            self._log_warning(f"ignoring unknown parameter(s) {', '.join(unknown)} (typo? see docs/node.md)")

    def _load_scorer(self, p: dict[str, Any]):
        from hirqa_ros import load_scorer

        kwargs: dict[str, Any] = {"model": p["model_path"] or None, "backend": p["backend"],
                                  "input_policy": p["input_policy"] or None, "device": p["device"] or None,
                                  "precision": None if p["precision"] == "auto" else p["precision"]}
        if p["engine_cache_dir"]:  # TensorRT engine cache (backend options, see hirqa_ros.backends)
            kwargs["cache_dir"] = p["engine_cache_dir"]
            kwargs["trt_cache_dir"] = p["engine_cache_dir"]
        if p["force_engine_update"]:
            kwargs["force_engine_update"] = True
        self._log.info(f"loading model {kwargs['model'] or '(default)'} with backend={p['backend']} ... "
                       "(building a TensorRT engine can take minutes; the node is ready only after it)")
        t0 = time.perf_counter()
        scorer = load_scorer(**kwargs)
        self._log.info(f"model loaded in {time.perf_counter() - t0:.1f} s: backend {scorer.backend}")
        return scorer

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        """Validate and apply run-time changes of thresholds, smoothing and hysteresis (Humble API)."""
        new = {p.name: p.value for p in params if p.name in DYNAMIC}
        if not new:
            return SetParametersResult(successful=True)
        warn = float(new.get("warn_threshold", self._get("warn_threshold")))
        error = float(new.get("error_threshold", self._get("error_threshold")))
        try:
            thresholds = Thresholds(warn, error)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        smoothing = float(new.get("smoothing", self._get("smoothing")))
        raise_after = int(new.get("hysteresis_raise", self._get("hysteresis_raise")))
        clear_after = int(new.get("hysteresis_clear", self._get("hysteresis_clear")))
        for cam in self.cameras:
            cam.monitor.thresholds = thresholds
            cam.monitor.smoothing = smoothing
            cam.stats.set_hysteresis(raise_after, clear_after)
        self._log.info(f"parameters changed: {new}")
        return SetParametersResult(successful=True)

    # ---- input ---------------------------------------------------------------------------------
    def _on_image(self, cam: Camera, msg: Any) -> None:
        """Subscription callback: count, throttle, keep only the newest frame. Never does real work."""
        now = time.monotonic()
        if cam.stats.on_receive(now):
            self._log.info(f"{cam.topic}: frames are arriving again")
        if self._max_rate > 0.0:
            if now < cam.next_allowed:
                cam.stats.on_throttled()
                return
            period = 1.0 / self._max_rate
            # keep the average at max_rate_hz while tolerating jitter of one period
            cam.next_allowed = max(cam.next_allowed + period, now)
        with self._cond:
            if cam.slot is not None:
                cam.stats.on_dropped()
            cam.slot = (msg, now)
            self._pending = True
            self._cond.notify()

    # ---- inference worker ----------------------------------------------------------------------
    def _worker_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._pending and not self._stop.is_set():
                    self._cond.wait(0.2)
                taken = [(c, c.slot) for c in self.cameras if c.slot is not None]
                for c, _ in taken:
                    c.slot = None
                self._pending = False
            if not taken or self._stop.is_set():
                continue
            try:
                self._score_batch(taken)
            except Exception as exc:  # never let one batch kill the worker
                if self._stop.is_set() or not rclpy.ok(context=self.context):
                    return
                self._log.error(f"scoring a batch failed: {type(exc).__name__}: {exc}")

    def _warn(self, cam: Camera, reason: str, text: str) -> None:
        """At most one warning per camera and kind of problem every WARN_EVERY_S seconds, with a count of
        the suppressed ones. The kind is the message with its numbers blanked out."""
        key = (cam.topic, reason, re.sub(r"\d+", "#", text))
        now = time.monotonic()
        last, suppressed = self._warned.get(key, (-math.inf, 0))
        if now - last >= WARN_EVERY_S:
            more = f" ({suppressed} more like this since the last warning)" if suppressed else ""
            self._log_warning(f"{cam.topic}: {text}{more}")
            self._warned[key] = (now, 0)
        else:
            self._warned[key] = (last, suppressed + 1)

    def _bad(self, cam: Camera, reason: str, text: str) -> None:
        cam.stats.on_bad(reason, text)
        self._warn(cam, reason, f"{text}; frame skipped (no score)")

    def _check(self, cam: Camera, msg: Any) -> Checked:
        """Decode one message and run the camera's frame checks (monitor.CameraMonitor.check)."""
        try:
            rgb = compressed_msg_to_rgb(msg) if cam.compressed else image_msg_to_rgb(msg)
        except ImageDecodeError as exc:
            return cam.monitor.refuse("decode_error", str(exc))
        stamp = msg.header.stamp
        checked = cam.monitor.check(rgb, stamp.sec * 1_000_000_000 + stamp.nanosec)
        if checked.result is None:
            cam.stats.resolution = cam.monitor.resolution
            cam.stats.frame_id = msg.header.frame_id
        return checked

    def _score_batch(self, taken: list[tuple[Camera, tuple[Any, float]]]) -> None:
        checked = [self._check(cam, msg) for cam, (msg, _) in taken]
        t0 = time.perf_counter()
        results = run_frames(self.scorer, checked)
        n = sum(c.result is None for c in checked)
        if n:
            self._infer_ms.append((time.perf_counter() - t0) * 1000.0)
            self._batch_sizes.append(n)
            self.batches += 1
            self.max_batch = max(self.max_batch, n)
        for (cam, (msg, t_recv)), result in zip(taken, results):
            for kind, text in result.notes:
                cam.stats.on_oddity(kind)
                self._warn(cam, kind, text)
            if not result.scored:
                self._bad(cam, result.reason, result.message)
                continue
            self._publish(cam, msg, t_recv, result)

    def _publish(self, cam: Camera, msg: Any, t_recv: float, result: FrameResult) -> None:
        """The frame's quality message, the frame itself on accepted when OK, and its statistics."""
        cam.sequence += 1
        latency_ms = (time.monotonic() - t_recv) * 1000.0
        fields = quality_status_fields(
            cam.topic, result.score, result.level, result.smoothed, cam.monitor.thresholds,
            str(self.scorer.backend), frame_id=msg.header.frame_id, sequence=cam.sequence,
            batch_size=result.batch_size,
            node_name=self.get_name(),
            extra=(("latency_ms", f"{latency_ms:.2f}"),
                   ("inference_ms", f"{result.batch_seconds * 1000.0:.2f}")))
        out = DiagnosticArray()
        out.header = msg.header
        status = DiagnosticStatus(
            level=bytes([fields["level"]]), name=fields["name"], message=fields["message"],
            hardware_id=fields["hardware_id"])
        status.values = [KeyValue(key=k, value=v) for k, v in fields["values"]]
        out.status = [status]
        cam.quality_pub.publish(out)
        if result.level == Level.OK and cam.accepted_pub is not None:
            cam.accepted_pub.publish(msg)
        cam.stats.on_scored(result.score, result.level, latency_ms, result.batch_size)

    # ---- /diagnostics --------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        for cam in self.cameras:
            level, message, values = cam.stats.report(now, self._stale_timeout)
            st = DiagnosticStatus(level=bytes([int(level)]), name=f"{self.get_name()}: {cam.topic}",
                                  message=message, hardware_id=cam.stats.frame_id or cam.topic)
            st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
            arr.status.append(st)
        inf = np.asarray(self._infer_ms, np.float64)
        bs = np.asarray(self._batch_sizes, np.float64)
        st = DiagnosticStatus(level=bytes([int(Level.OK)]), name=f"{self.get_name()}: inference",
                              message=f"{self.scorer.backend}, {self.batches} batches",
                              hardware_id=str(self.scorer.backend))
        st.values = [KeyValue(key=k, value=v) for k, v in (
            ("backend", str(self.scorer.backend)), ("model", str(self.scorer.model_dir)),
            ("input_policy", str(self.scorer.input_policy)), ("batches", str(self.batches)),
            ("mean_batch_size", f"{bs.mean():.2f}" if bs.size else ""),
            ("max_batch_size", str(self.max_batch)),
            ("inference_p50_ms", f"{np.percentile(inf, 50):.1f}" if inf.size else ""),
            ("inference_p95_ms", f"{np.percentile(inf, 95):.1f}" if inf.size else ""))]
        arr.status.append(st)
        self._diag_pub.publish(arr)

    # ---- shutdown ------------------------------------------------------------------------------
    def stop(self, timeout: float = 2.0) -> None:
        """Stop the inference worker (idempotent)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(timeout)


logging.getLogger(__name__).addHandler(logging.NullHandler())
