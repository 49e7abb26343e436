"""The rclpy lifecycle node ``hirqa_node``: ROS wiring around the per-frame pipeline of
``hirqa_ros.monitor`` (subscribe cameras, score the newest frames in one batch, publish verdicts).

Lifecycle: ``configure`` checks the parameters, loads the model (or builds / loads a TensorRT
engine) and creates the ``B_quality`` publishers and the /diagnostics timer; ``activate``
subscribes, creates ``B_accepted`` (reliable by default) and starts the inference thread;
``deactivate`` unsubscribes and stops it; ``cleanup`` frees everything ``configure`` made.

Subscription callbacks only store the newest frame per camera; one worker thread decodes, runs
the per-frame pipeline of ``hirqa_ros.monitor`` on every waiting frame in one batch and publishes;
a steady-clock timer publishes ``/diagnostics``. Topic names follow ``hirqa_ros.topics``, the
per-frame message ``hirqa_ros.quality_msg``.

With ``gate_mode: state`` the subscription callback first forwards or holds the frame on
``B_accepted`` under the camera's last verdict and a cheap per-frame cue (``hirqa_ros.state_gate``).
"""
from __future__ import annotations

import array
import gc
import logging
import math
import re
import sys
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
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from hirqa_ros.artifacts import MissingThresholds
from hirqa_ros.content import ContentLimits
from hirqa_ros.decision import Hysteresis, Level, Thresholds
from hirqa_ros.frame_cue import FrameCue, cue_of_msg
from hirqa_ros.imgmsg import (
    ImageDecodeError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    rgb_to_image_fields,
)
from hirqa_ros.monitor import CameraMonitor, Checked, FrameResult, run_frames
from hirqa_ros.node.lifecycle_guard import guard_change_state
from hirqa_ros.node.log_bridge import route_package_logs, unroute_package_logs
from hirqa_ros.node.params import BY_NAME, DYNAMIC, PARAMS, QOS_OVERRIDES, ParamSpec, engine_options, is_known
from hirqa_ros.node.stats import CameraStats
from hirqa_ros.node.topic_checks import FrequencyCheck, StampDelayCheck
from hirqa_ros.overlay import draw_overlay
from hirqa_ros.quality_msg import KEY_NAMES, NODE_NAME, quality_status_fields
from hirqa_ros.reference import params_from
from hirqa_ros.refusals import decode_reason
from hirqa_ros.state_gate import Admission, StateGate, Verdict
from hirqa_ros.topics import TRANSPORTS, CameraTopics, check_base, per_camera, status_label

WARN_EVERY_S = 5.0  # throttle for repeated bad-input warnings (per camera and reason)
THRESHOLDS = ("warn_threshold", "error_threshold")  # their default comes from the model card
USE_FQN = "diagnostic_updater.use_fqn"  # diagnostic_updater's own parameter name
_LATENCY, _AGE = KEY_NAMES.index("latency_ms"), KEY_NAMES.index("verdict_age_ms")  # per-frame values

_PTYPE = {
    "string": ParameterType.PARAMETER_STRING,
    "string_array": ParameterType.PARAMETER_STRING_ARRAY,
    "bool": ParameterType.PARAMETER_BOOL,
    "int": ParameterType.PARAMETER_INTEGER,
    "double": ParameterType.PARAMETER_DOUBLE,
}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The rclpy descriptor of one parameter: description, range, choices. Not ``read_only``: a start-up
    parameter may change while the node is unconfigured (applied on configure); the node refuses it
    while configured (``_on_set_parameters``). A ``strings`` parameter (one value or a list) is
    dynamically typed."""
    d = ParameterDescriptor(name=spec.name, description=spec.description)
    if spec.type == "strings":
        d.dynamic_typing = True
    else:
        d.type = _PTYPE[spec.type]
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.range is not None and spec.type == "double":
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]),
                                                     to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None and spec.type == "int":
        d.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return d


def input_qos() -> QoSProfile:
    """Camera subscriptions: sensor data, newest frame only (a fresh object: overrides mutate it)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


def accepted_qos() -> QoSProfile:
    """B_accepted: reliable, keep last 5 (a product: default-QoS subscribers and image_transport
    republish receive it; best-effort readers match too); overridable with qos_overrides."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)


def output_qos() -> QoSProfile:
    """B_quality and /diagnostics: reliable, keep last 10 (matches reliable and best-effort readers)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _overridable() -> QoSOverridingOptions:
    """Every subscription and publisher: history, depth and reliability settable with qos_overrides.*"""
    return QoSOverridingOptions.with_default_policies()


def _qos_text(qos: QoSProfile) -> str:
    return f"{qos.reliability.name.lower()}/depth {qos.depth}"


class Camera:
    """One camera: its topics, subscription, publishers, the newest-frame slot, monitor and stats."""

    def __init__(self, topics: CameraTopics, label: str, hardware_id: str, monitor: CameraMonitor,
                 stats: CameraStats) -> None:
        self.topics = topics
        self.topic = topics.input  # the subscribed topic, used in logs
        self.label = label  # the camera's part of status names
        self.hardware_id = hardware_id  # fixed by the parameter, else latched from the first frame
        self.compressed = topics.compressed
        self.msg_type = CompressedImage if topics.compressed else Image
        self.monitor = monitor
        self.stats = stats
        self.slot: tuple[Any, float] | None = None  # (message, receive time), guarded by the node's lock
        self.next_allowed = 0.0  # max_rate_hz bookkeeping (monotonic seconds)
        self.sequence = 0
        self.quality_pub = None
        self.accepted_pub = None
        self.overlay_pub = None  # B_quality_overlay (publish_overlay)
        self.overlay_frames = 0
        self.frame = None  # the decoded frame being scored, kept for the overlay only
        self.subscription = None
        self.gate: StateGate | None = None  # gate_mode state (with publish_accepted)
        self.forward_lock = threading.Lock()  # decide + publish on B_accepted as one step (keeps the order)
        self.inherited: tuple[Verdict, dict, list] | None = None  # its quality status, built once per verdict


class QualityNode(LifecycleNode):
    """``hirqa_node``: per-frame quality of every configured camera (see docs/node.md)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._log = self.get_logger()
        # Humble-era loggers may lack .warning; Kilted deprecates .warn
        self._log_warning = getattr(self._log, "warning", None) or self._log.warn
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._pending = False
        self._active = False
        self._warned: dict[tuple[str, str], tuple[float, int]] = {}
        self._infer_ms: deque[float] = deque(maxlen=200)
        self._batch_sizes: deque[int] = deque(maxlen=200)
        self.batches = 0
        self.max_batch = 0
        self.scorer = None
        self.cameras: list[Camera] = []
        self.transition_error = ""  # why the last configure/activate failed (main prints it)
        self._diag_pub = None
        self._diag_timer = None
        # separate groups so the node also behaves under a MultiThreadedExecutor (e.g. composed with others)
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._diag_group = MutuallyExclusiveCallbackGroup()
        self._configured = False  # start-up parameters are refused while True (configure .. cleanup)
        self._setting_card_thresholds = False  # set by configure itself, not by a user
        for spec in PARAMS:
            if spec.default is not None:
                self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self._declare_thresholds()
        self._check_unknown_overrides()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        guard_change_state(self, self._log)
        self._log_route = route_package_logs(self._log)
        if not self.autostart:
            self._log.info(f"autostart:=false: waiting for lifecycle transitions "
                           f"(ros2 lifecycle set {self.get_fully_qualified_name()} configure)")

    def destroy_node(self) -> None:
        unroute_package_logs(self._log_route)  # package messages go back to Python logging
        super().destroy_node()

    @property
    def autostart(self) -> bool:
        return bool(self._get("autostart"))

    # ---- lifecycle -----------------------------------------------------------------------------
    def on_configure(self, state: Any) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # bad parameter, no model, unusable backend: stay unconfigured, say why
            self._failed("configure", exc)
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._configured = True
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: Any) -> TransitionCallbackReturn:
        for cam in self.cameras:  # a camera's history over time starts again (reference gate, smoothing)
            cam.monitor.reset()
        try:
            self._subscribe()
        except Exception as exc:  # e.g. a QoS override with an impossible value: stay inactive, say why
            self._failed("activate", exc)
            self._deactivate()
            return TransitionCallbackReturn.FAILURE
        ret = super().on_activate(state)  # activates the lifecycle publishers, before any frame is scored
        self._start_worker()
        self._active = True
        self._warn_unused_qos_overrides()
        self._log_ready()
        return ret

    def _failed(self, transition: str, exc: Exception) -> None:
        """Log why a transition failed (rclpy's lifecycle code would swallow the exception)."""
        self.transition_error = f"{type(exc).__name__}: {exc}"
        self._log.error(f"{transition} failed: {self.transition_error}")

    def _subscribe(self) -> None:
        """Subscribe every camera; create B_accepted (first activation), reliable by default."""
        self.transition_error = ""
        for cam in self.cameras:
            cam.subscription = self.create_subscription(
                cam.msg_type, cam.topics.input, lambda msg, c=cam: self._on_image(c, msg), input_qos(),
                callback_group=self._input_group, qos_overriding_options=_overridable())
            if self._publish_accepted and cam.accepted_pub is None:
                cam.accepted_pub = self.create_lifecycle_publisher(
                    cam.msg_type, cam.topics.accepted, accepted_qos(), qos_overriding_options=_overridable())

    def _log_ready(self) -> None:
        listing = ", ".join(
            f"{c.topics.input} ({c.msg_type.__name__}, {_qos_text(c.subscription.qos_profile)}) -> "
            f"{c.topics.quality}" + (f", {c.topics.accepted} ({_qos_text(c.accepted_pub.qos_profile)})"
                                     if c.accepted_pub is not None else "")
            for c in self.cameras)
        t = self.cameras[0].monitor.thresholds
        self._log.info(
            f"READY: scoring {len(self.cameras)} camera(s): {listing} | backend={self.scorer.backend} "
            f"model={self.scorer.model_dir} input_policy={self.scorer.input_policy} "
            f"thresholds warn={t.warn:.3f} error={t.error:.3f} smoothing={self._get('smoothing')}")

    def on_deactivate(self, state: Any) -> TransitionCallbackReturn:
        self._deactivate()
        self._log.info("deactivated: unsubscribed, inference stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: Any) -> TransitionCallbackReturn:
        self._release()
        self._log.info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: Any) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: Any) -> TransitionCallbackReturn:
        self._log.error("error while changing state: releasing everything (back to unconfigured)")
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        self.transition_error = ""
        p = self._static_params()
        cameras = self._camera_topics(p)
        self.scorer = self._load_scorer(p, len(cameras))
        self._apply_card_thresholds(self._card_thresholds())
        thresholds = Thresholds(self._get("warn_threshold"), self._get("error_threshold"))  # raises if bad
        smoothing = self._get("smoothing")
        hysteresis = (self._get("hysteresis_raise"), self._get("hysteresis_clear"))
        reference = params_from(self._get)
        ns = self.get_namespace()
        self._gate_mode = p["gate_mode"]
        for topics, hw_id in cameras:
            stats = CameraStats(topics.input, window=p["stats_window"], hysteresis=Hysteresis(*hysteresis),
                                rate=FrequencyCheck(p["expected_rate_hz"], p["rate_tolerance"]),
                                stamps=StampDelayCheck(p["min_stamp_delay_s"], p["max_stamp_delay_s"]))
            cam = Camera(topics, status_label(topics.base, ns), hw_id,
                         CameraMonitor(topics.input, thresholds, smoothing, self._min_side,
                                       content=self._content, reference=reference), stats)
            if self._gate_mode == "state" and self._publish_accepted:
                cam.gate = StateGate(float(p["max_verdict_age_s"]))
            cam.quality_pub = self.create_lifecycle_publisher(
                DiagnosticArray, topics.quality, output_qos(), qos_overriding_options=_overridable())
            self._create_overlay(cam, p)
            self.cameras.append(cam)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", output_qos(),
                                               qos_overriding_options=_overridable())
        # a steady clock: /diagnostics keeps its rate while a bag is paused under use_sim_time
        self._diag_timer = self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics,
                                             callback_group=self._diag_group,
                                             clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._log.info(f"configured {len(self.cameras)} camera(s): "
                       + ", ".join(f"{c.topics.input} -> {c.topics.quality}" for c in self.cameras))

    def _camera_topics(self, p: dict[str, Any]) -> list[tuple[CameraTopics, str]]:
        """Resolve every base topic (namespace + remappings); pair it with its transport and hardware_id."""
        bases = [check_base(str(t)) for t in p["image_topics"]]
        if not bases:
            raise ValueError("image_topics must list at least one base image topic")
        kinds = [k.strip().lower() for k in per_camera(p["image_transport"], len(bases), "image_transport")]
        for kind in kinds:
            if kind not in TRANSPORTS:
                raise ValueError(f"image_transport {kind!r}: expected one of {', '.join(TRANSPORTS)}")
        hw = p["hardware_id"] or ""
        if isinstance(hw, str) and hw and len(bases) > 1:
            raise ValueError(f"hardware_id {hw!r} would name {len(bases)} cameras alike: give one per camera")
        hw_ids = per_camera(hw, len(bases), "hardware_id")
        out, seen = [], set()
        for base, kind, hw_id in zip(bases, kinds, hw_ids):
            topics = CameraTopics(self._resolve(base), kind)
            if topics.base in seen:
                raise ValueError(f"{topics.base} is listed twice in image_topics (after remapping)")
            seen.add(topics.base)
            out.append((topics, hw_id))
        return out

    def _resolve(self, topic: str) -> str:
        """The fully qualified topic name with remappings applied (Node.resolve_topic_name, Galactic+);
        without it, the name expanded in the node's namespace."""
        resolve = getattr(self, "resolve_topic_name", None)
        if resolve is not None:
            return resolve(topic)
        if topic.startswith("/"):
            return topic
        if topic.startswith("~"):
            return self.get_fully_qualified_name() + topic[1:]
        return f"{self.get_namespace().rstrip('/')}/{topic}"

    def _deactivate(self) -> None:
        """Unsubscribe and stop the inference thread (the batch it is scoring is finished first)."""
        self._active = False
        for cam in self.cameras:
            if cam.subscription is not None:
                self.destroy_subscription(cam.subscription)
                cam.subscription = None
        self.stop()
        with self._cond:
            for cam in self.cameras:
                cam.slot = None
            self._pending = False

    def _release(self) -> None:
        """Undo configure: publishers, timer, cameras and the model (memory, GPU buffers)."""
        self._configured = False
        for cam in self.cameras:
            for pub in (cam.quality_pub, cam.accepted_pub, cam.overlay_pub):
                if pub is not None:
                    self.destroy_lifecycle_publisher(pub)
        self.cameras = []
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
            self._diag_pub = None
        if self.scorer is not None:
            self.scorer = None
            gc.collect()
            torch = sys.modules.get("torch")  # only if a backend imported it
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()

    # ---- parameters ----------------------------------------------------------------------------
    def _get(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _static_params(self) -> dict[str, Any]:
        p = {s.name: self._get(s.name) for s in PARAMS if s.default is not None}
        for s in PARAMS:
            if s.choices and s.type == "string" and p[s.name] not in s.choices:
                raise ValueError(f"parameter {s.name}={p[s.name]!r}: expected one of {', '.join(s.choices)}")
        self._max_rate = float(p["max_rate_hz"])
        self._publish_accepted = bool(p["publish_accepted"])
        self._min_side = int(p["min_image_side"])
        self._max_pixels = int(p["max_pixels"])
        self._content = ContentLimits(float(p["no_content_black_level"]), float(p["no_content_white_level"]),
                                      float(p["no_content_uniform_range"]), float(p["frozen_timeout_s"]))
        self._stale_timeout = float(p["stale_timeout_s"])
        return p

    def _declare_thresholds(self) -> None:
        """Declare warn/error_threshold at construction, so they can be read before configure.

        "Unset" means neither given at start-up (params file, -p, launch) nor set through the parameter
        services since: such a threshold follows the model card, at first the fp32 card of the model
        ``model_path`` names (read without loading it; decision's defaults if it cannot be read), then,
        on every configure, the loaded scorer's card (int8 has its own). A threshold a user set is kept."""
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        self._user_thresholds = {n for n in THRESHOLDS if n in overrides}
        try:
            from hirqa_ros.artifacts import load_artifact

            card = load_artifact(self._get("model_path") or None, verify=False).thresholds
        except Exception:  # no model yet or a bad path: configure says why
            card = Thresholds()
        for name, value in zip(THRESHOLDS, (card.warn, card.error)):
            self.declare_parameter(name, float(value), descriptor(BY_NAME[name]))

    def _card_thresholds(self) -> Thresholds | None:
        """The loaded model card's thresholds for the precision that runs; None when the card has none
        and the user set both warn_threshold and error_threshold (else the card's refusal, with how)."""
        try:
            return self.scorer.thresholds
        except MissingThresholds as exc:
            if set(THRESHOLDS) <= self._user_thresholds:
                return None
            raise MissingThresholds(f"{exc} (node: -p warn_threshold:=W -p error_threshold:=E)") from exc

    def _apply_card_thresholds(self, card: Thresholds | None) -> None:
        """Configure: the thresholds no user set take the loaded model card's values (None: the card
        has none and the user set both)."""
        if card is None:
            return
        unset = [Parameter(n, value=float(v)) for n, v in zip(THRESHOLDS, (card.warn, card.error))
                 if n not in self._user_thresholds]
        if not unset:
            return
        self._setting_card_thresholds = True
        try:
            result = self.set_parameters_atomically(unset)
        finally:
            self._setting_card_thresholds = False
        if not result.successful:
            raise ValueError(f"the model card's thresholds with the ones set: {result.reason}")

    def _check_unknown_overrides(self) -> None:
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        unknown = sorted(name for name in overrides if not is_known(name))
        if unknown:
            self._log_warning(f"ignoring unknown parameter(s) {', '.join(unknown)} (typo? see docs/node.md)")

    def _warn_unused_qos_overrides(self) -> None:
        """A qos_overrides.* value for a topic the node does not use (a wrong topic name) is said once."""
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        unused = sorted(n for n in overrides if n.startswith(QOS_OVERRIDES) and not self.has_parameter(n))
        if unused:
            self._log_warning(f"QoS override(s) for topics this node does not use: {', '.join(unused)} "
                              "(the topic part must be the fully qualified name, see the READY line)")

    def _load_scorer(self, p: dict[str, Any], n_cameras: int):
        from hirqa_ros import load_scorer

        kwargs: dict[str, Any] = {"model": p["model_path"] or None, "backend": p["backend"],
                                  "input_policy": p["input_policy"] or None, "device": p["device"] or None,
                                  "precision": None if p["precision"] == "auto" else p["precision"],
                                  **engine_options(p, n_cameras)}  # TensorRT cache, engine, profile
        self._log.info(f"loading model {kwargs['model'] or '(default)'} with backend={p['backend']} ... "
                       "(building a TensorRT engine can take minutes; the node is ready only after it)")
        t0 = time.perf_counter()
        scorer = load_scorer(**kwargs)
        classes = getattr(scorer, "fault_classes", None)
        head = f"fault head with {len(classes)} classes" if classes else "no fault head (fault left empty)"
        self._log.info(f"model loaded in {time.perf_counter() - t0:.1f} s: backend {scorer.backend}, {head}")
        return scorer

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        """Validate and apply run-time changes of thresholds, smoothing and hysteresis (Humble API)."""
        static = [p.name for p in params if p.name in BY_NAME and not BY_NAME[p.name].dynamic]
        if static and self._configured:
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(static)}: start-up parameter(s), applied on configure: set them while the node "
                "is unconfigured (deactivate, cleanup, set, configure, activate)"))
        new = {p.name: p.value for p in params if p.name in DYNAMIC}

        def value(name: str) -> Any:  # the new value, else the current one (None: not declared yet)
            return new[name] if name in new else (self._get(name) if self.has_parameter(name) else None)

        warn, error = value("warn_threshold"), value("error_threshold")
        if warn is None or error is None:  # not declared (cannot happen after __init__): nothing to check
            return SetParametersResult(successful=True)
        try:
            thresholds = Thresholds(float(warn), float(error))
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        smoothing, raise_after, clear_after = (value(n) for n in ("smoothing", "hysteresis_raise",
                                                                   "hysteresis_clear"))
        for cam in self.cameras:
            cam.monitor.thresholds = thresholds
            cam.monitor.smoothing = float(smoothing)
            cam.stats.set_hysteresis(int(raise_after), int(clear_after))
        if new and self.cameras:
            self._log.info(f"parameters changed: {new}")
        if not self._setting_card_thresholds:  # a threshold a user set is theirs from now on
            self._user_thresholds.update(n for n in new if n in THRESHOLDS)
        return SetParametersResult(successful=True)

    # ---- input ---------------------------------------------------------------------------------
    def _on_image(self, cam: Camera, msg: Any) -> None:
        """Subscription callback: count, gate (state mode: the frame's cue, then forward or hold it),
        throttle, keep only the newest frame for scoring. Never runs inference."""
        now = time.monotonic()
        stamp = msg.header.stamp
        delay = None
        if stamp.sec or stamp.nanosec:
            delay = (self.get_clock().now().nanoseconds - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e9
        if cam.stats.on_receive(now, delay):
            self._log.info(f"{cam.topic}: frames are arriving again")
        cue = self._gate_frame(cam, msg, now) if cam.gate is not None else None
        if self._max_rate > 0.0:
            if now < cam.next_allowed:
                cam.stats.on_throttled()
                return
            period = 1.0 / self._max_rate
            # keep the average at max_rate_hz while tolerating jitter of one period
            cam.next_allowed = max(cam.next_allowed + period, now)
        if cam.gate is not None:
            cam.gate.note_scored(now, cue)
        with self._cond:
            if cam.slot is not None:
                cam.stats.on_dropped()
            cam.slot = (msg, now)
            self._pending = True
            self._cond.notify()

    def _gate_frame(self, cam: Camera, msg: Any, now: float) -> FrameCue | None:
        """gate_mode state: the frame's cue (~0.5 ms for 640x480 raw, ~1 ms JPEG), then forward it at once
        under the camera's verdict or hold it; returns the cue (None when the frame cannot be decoded)."""
        try:
            cue = cue_of_msg(msg, cam.compressed)
        except Exception:  # any unreadable frame is held; the scoring thread says why
            cue = None
        with cam.forward_lock:
            admission = cam.gate.admit(now, cue)
            if admission.forward:
                cam.accepted_pub.publish(msg)
        if admission.forward:
            cam.stats.on_forwarded(inherited=True)
            self._publish_inherited(cam, msg, now, admission)
        else:
            cam.stats.on_held(admission.reason)
        return cue

    def _publish_inherited(self, cam: Camera, msg: Any, t_recv: float, admission: Admission) -> None:
        """The quality message of a frame forwarded under an earlier scored frame's verdict. The status
        is built once per verdict; each frame replaces only its latency and verdict age (cheap)."""
        v = admission.verdict
        if cam.inherited is None or cam.inherited[0] is not v:
            result, sequence = v.info
            fields = quality_status_fields(
                cam.topics.input, result.score, result.level, result.smoothed, cam.monitor.thresholds,
                str(self.scorer.backend), frame_id=msg.header.frame_id, sequence=sequence,
                batch_size=result.batch_size, node_name=self.get_fully_qualified_name(), label=cam.label,
                hardware_id=cam.hardware_id, reason=result.reason, fault=result.fault,
                fault_confidence=result.fault_confidence, fault_top3=result.fault_top3 or (),
                verdict_source="inherited", verdict_stamp_ns=v.stamp_ns)
            cam.inherited = (v, fields, [KeyValue(key=k, value=x) for k, x in fields["values"]])
        _, fields, values = cam.inherited
        values = list(values)
        values[_LATENCY] = KeyValue(key="latency_ms", value=f"{(time.monotonic() - t_recv) * 1000.0:.2f}")
        values[_AGE] = KeyValue(key="verdict_age_ms", value=f"{admission.age_s * 1000.0:.2f}")
        out = DiagnosticArray()
        out.header = msg.header
        out.status = [DiagnosticStatus(level=bytes([int(fields["level"])]), name=fields["name"],
                                       message=fields["message"], hardware_id=fields["hardware_id"],
                                       values=values)]
        cam.quality_pub.publish(out)

    def _publish_quality(self, cam: Camera, msg: Any, fields: dict[str, Any]) -> None:
        out = DiagnosticArray()
        out.header = msg.header
        out.status = [_status(fields["level"], fields["name"], fields["message"], fields["hardware_id"],
                              fields["values"])]
        cam.quality_pub.publish(out)

    # ---- inference worker ----------------------------------------------------------------------
    def _start_worker(self) -> None:
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._worker_loop, args=(self._stop,), name="hirqa_inference",
                                        daemon=True)
        self._worker.start()

    def _worker_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._cond:
                while not self._pending and not stop.is_set():
                    self._cond.wait(0.2)
                taken = [(c, c.slot) for c in self.cameras if c.slot is not None]
                for c, _ in taken:
                    c.slot = None
                self._pending = False
            if not taken or stop.is_set():
                continue
            try:
                self._score_batch(taken)
            except Exception as exc:  # never let one batch kill the worker
                if stop.is_set() or not rclpy.ok(context=self.context):
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

    def _check(self, cam: Camera, msg: Any, t_recv: float) -> Checked:
        """Decode one message and run the camera's frame checks (monitor.CameraMonitor.check);
        the frozen check runs on the receive clock."""
        if not cam.hardware_id and msg.header.frame_id:
            cam.hardware_id = msg.header.frame_id  # latched: the status keeps it from now on
        try:
            rgb = compressed_msg_to_rgb(msg) if cam.compressed else image_msg_to_rgb(msg)
        except ImageDecodeError as exc:  # too_large or decode_error (refusals.py)
            return cam.monitor.refuse(decode_reason(exc), str(exc))
        stamp = msg.header.stamp
        checked = cam.monitor.check(rgb, stamp.sec * 1_000_000_000 + stamp.nanosec, clock_s=t_recv)
        cam.frame = rgb if cam.overlay_pub is not None else None
        if checked.result is None:
            cam.stats.resolution = cam.monitor.resolution
            cam.stats.frame_id = msg.header.frame_id
        return checked

    def _score_batch(self, taken: list[tuple[Camera, tuple[Any, float]]]) -> None:
        checked = [self._check(cam, msg, t_recv) for cam, (msg, t_recv) in taken]
        t0 = time.perf_counter()
        results = run_frames(self.scorer, checked, max_pixels=self._max_pixels)
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
                if cam.gate is not None:  # a refused frame (too small, undecodable) is no keep verdict
                    stamp = msg.header.stamp
                    cam.gate.on_verdict(Verdict(False, t_recv, stamp.sec * 1_000_000_000 + stamp.nanosec))
                self._bad(cam, result.reason, result.message)
                continue
            if result.reason:  # no content / frozen: scored, ERROR whatever the score
                cam.stats.on_finding(result.reason, result.message)
                self._warn(cam, result.reason, result.message)
            self._publish(cam, msg, t_recv, result)
            self._publish_overlay(cam, msg, result)

    def _publish(self, cam: Camera, msg: Any, t_recv: float, result: FrameResult) -> None:
        """The frame's quality message, the frame itself on accepted when OK, and its statistics."""
        cam.sequence += 1
        latency_ms = (time.monotonic() - t_recv) * 1000.0
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        keep = result.level == Level.OK
        if cam.gate is not None:  # every verdict updates the camera's state
            cam.gate.on_verdict(Verdict(keep, t_recv, stamp_ns, info=(result, cam.sequence)))
        fields = quality_status_fields(
            cam.topics.input, result.score, result.level, result.smoothed, cam.monitor.thresholds,
            str(self.scorer.backend), frame_id=msg.header.frame_id, sequence=cam.sequence,
            batch_size=result.batch_size,
            node_name=self.get_fully_qualified_name(), label=cam.label, hardware_id=cam.hardware_id,
            latency_ms=latency_ms, inference_ms=result.batch_seconds * 1000.0, reason=result.reason,
            fault=result.fault, fault_confidence=result.fault_confidence, fault_top3=result.fault_top3 or (),
            verdict_source="scored", verdict_stamp_ns=stamp_ns,
            reference=result.reference)
        self._publish_quality(cam, msg, fields)
        # state mode: a frame held on arrival that scores keep goes out now, unless a newer one already did
        with cam.forward_lock:
            forward = (keep and cam.accepted_pub is not None
                       and (cam.gate is None or cam.gate.forward_scored(t_recv)))
            if forward:
                cam.accepted_pub.publish(msg)  # the received message itself: original bytes, same header
        if forward:
            cam.stats.on_forwarded()
        cam.stats.on_scored(result.score, result.level, latency_ms, result.batch_size, result.fault)

    # ---- overlay -------------------------------------------------------------------------------
    def _create_overlay(self, cam: Camera, p: dict[str, Any]) -> None:
        """B_quality_overlay when publish_overlay: reliable, keep last 1 (RViz's and Foxglove's default
        readers match it), overridable."""
        self._overlay_side = int(p["overlay_max_side"])
        if p["publish_overlay"]:
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
            cam.overlay_pub = self.create_lifecycle_publisher(
                Image, cam.topics.overlay, qos, qos_overriding_options=_overridable())

    def _publish_overlay(self, cam: Camera, msg: Any, result: FrameResult) -> None:
        """Draw and publish the overlay of a scored frame, only while someone subscribes to it."""
        rgb, cam.frame = cam.frame, None
        if cam.overlay_pub is None or rgb is None or cam.overlay_pub.get_subscription_count() == 0:
            return
        img = draw_overlay(rgb, result.score, result.level, result.fault or "", result.reason,
                           self._overlay_side)
        fields = rgb_to_image_fields(img, "rgb8")
        fields["data"] = array.array("B", fields["data"].tobytes())
        out = Image(**fields)
        out.header = msg.header
        cam.overlay_pub.publish(out)
        cam.overlay_frames += 1

    # ---- /diagnostics --------------------------------------------------------------------------
    def _status_prefix(self) -> str:
        """diagnostic_updater's status-name prefix: the node name, or its fully qualified name with
        ``diagnostic_updater.use_fqn`` (namespaced nodes that would otherwise collide)."""
        return self.get_fully_qualified_name() if self._get(USE_FQN) else self.get_name()

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        fqn = self._status_prefix()
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        for cam in self.cameras:
            level, message, values = cam.stats.report(now, self._stale_timeout)
            if not self._active:
                level, message = Level.STALE, "node inactive: not subscribed (lifecycle state inactive)"
            values = {"topic": cam.topics.input, "image_transport": cam.topics.transport,
                      "gate_mode": self._gate_mode,
                      "gate_state": cam.gate.state if cam.gate is not None else "", **values}
            if cam.overlay_pub is not None:
                values["overlay_frames"] = str(cam.overlay_frames)
            arr.status.append(_status(level, f"{fqn}: {cam.label}", message, cam.hardware_id, values.items()))
        if self.scorer is not None:
            arr.status.append(self._inference_status(fqn))
        self._diag_pub.publish(arr)

    def _inference_status(self, fqn: str) -> DiagnosticStatus:
        """The inference engine: hardware_id is the device it runs on (cpu, cuda:0), the backend a value."""
        inf = np.asarray(self._infer_ms, np.float64)
        bs = np.asarray(self._batch_sizes, np.float64)
        device = str(self.scorer.device)
        message = f"{self.scorer.backend} on {device}, {self.batches} batches"
        return _status(Level.OK, f"{fqn}: inference", message, device, (
                           ("backend", str(self.scorer.backend)), ("device", device),
                           ("model", str(self.scorer.model_dir)),
                           ("input_policy", str(self.scorer.input_policy)), ("batches", str(self.batches)),
                           ("mean_batch_size", f"{bs.mean():.2f}" if bs.size else ""),
                           ("max_batch_size", str(self.max_batch)),
                           ("inference_p50_ms", f"{np.percentile(inf, 50):.1f}" if inf.size else ""),
                           ("inference_p95_ms", f"{np.percentile(inf, 95):.1f}" if inf.size else "")))

    # ---- shutdown ------------------------------------------------------------------------------
    def stop(self, timeout: float = 2.0) -> None:
        """Stop the inference worker (idempotent)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        worker = self._worker
        if worker is not None and worker.is_alive() and worker is not threading.current_thread():
            worker.join(timeout)


def _status(level: int, name: str, message: str, hardware_id: str, values) -> DiagnosticStatus:
    st = DiagnosticStatus(level=bytes([int(level)]), name=name, message=message, hardware_id=hardware_id)
    st.values = [KeyValue(key=k, value=v) for k, v in values]
    return st


logging.getLogger(__name__).addHandler(logging.NullHandler())
