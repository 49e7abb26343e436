"""The node's parameter table: names, types, defaults, ranges, descriptions, which are dynamic.

Plain data (no rclpy import) so docs, launch-file tests and the node share one list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hirqa_ros.constants import (
    BACKEND_CHOICES,
    DEFAULT_BLACK_LEVEL,
    DEFAULT_FROZEN_S,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_IMAGE_SIDE,
    DEFAULT_UNIFORM_RANGE,
    DEFAULT_WHITE_LEVEL,
)
from hirqa_ros.reference import ReferenceParams
from hirqa_ros.state_gate import DEFAULT_MAX_VERDICT_AGE_S
from hirqa_ros.topics import TRANSPORTS

PRECISION_CHOICES = ("auto", "fp32", "fp16", "int8")
GATE_MODES = ("state", "scored")
FROM_MODEL_CARD = None  # default of the thresholds: the loaded model card's calibrated values


@dataclass(frozen=True)
class ParamSpec:
    name: str
    # "string" | "string_array" | "strings" (a string or a string array) | "bool" | "int" | "double"
    type: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    dynamic: bool = False  # settable at run time (ros2 param set); all others are read-only


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("image_topics", "string_array", ["image"],
              "Base image topics (image_transport names), relative to the node's namespace unless they "
              "start with /; one camera each. For base B the node subscribes B (raw) or B/compressed and "
              "publishes B_quality and B_accepted (or B_accepted/compressed)."),
    ParamSpec("image_transport", "strings", "raw",
              "raw (sensor_msgs/Image on B) or compressed (sensor_msgs/CompressedImage on B/compressed): "
              "one value for every camera or a list with one per image topic.", choices=TRANSPORTS),
    ParamSpec("autostart", "bool", True,
              "Configure and activate at start-up (plain `ros2 run`); false = wait unconfigured for "
              "lifecycle transitions (ros2 lifecycle set, a lifecycle manager)."),
    ParamSpec("model_path", "string", "",
              "Model directory (model.yaml, model.onnx, weights.pth); empty = $HIRQA_MODEL or the "
              "installed default models/hirqa-s."),
    ParamSpec("backend", "string", "auto",
              "Inference backend: auto (tensorrt > torch on CUDA > onnxruntime), tensorrt, torch, "
              "onnxruntime, torch2trt.", choices=BACKEND_CHOICES),
    ParamSpec("device", "string", "",
              "Device for torch/TensorRT backends, e.g. cuda:0 or cpu; empty = auto."),
    ParamSpec("precision", "string", "auto",
              "Inference precision: auto (fp16 on GPUs; on the CPU int8 when the model directory has a "
              "model.int8.onnx whose card says its accuracy loss is within tolerance, else fp32), fp32, "
              "fp16 (GPU backends) or int8 (onnxruntime on the CPU; its own thresholds from the card).",
              choices=PRECISION_CHOICES),
    ParamSpec("engine_cache_dir", "string", "",
              "Where TensorRT engines are cached; empty = the backend's default cache folder."),
    ParamSpec("force_engine_update", "bool", False,
              "Rebuild the TensorRT engine even if a cached one matches (slow; happens in configure)."),
    ParamSpec("engine_path", "string", "",
              "Pre-built TensorRT engine (.plan from `hirqa export --engine`), used as is when it loads "
              "(its own profile is enforced), else built there; empty = the engine cache."),
    ParamSpec("camera_sizes", "string_array", ["auto"],
              "Largest frame HxW per camera (one for all topics or one per topic), e.g. ['720x1280']; "
              "sizes the TensorRT engine profile (smaller = less GPU memory on a Jetson); "
              "auto = frames up to 1088x1920."),
    ParamSpec("max_batch", "int", 0,
              "Largest batch the engine is built for and the scorer sends; 0 = one frame per camera "
              "(times K for crops:KxS).", range=(0, 256)),
    ParamSpec("input_policy", "string", "",
              "How a frame becomes network input: native, max-side:N or crops:KxS; "
              "empty = the model card's."),
    ParamSpec("warn_threshold", "double", FROM_MODEL_CARD,
              "Frames scoring below this are WARN (rejected); default from the model card.",
              range=(0.0, 1.0), dynamic=True),
    ParamSpec("error_threshold", "double", FROM_MODEL_CARD,
              "Frames scoring below this are ERROR; must be <= warn_threshold; default from the model card.",
              range=(0.0, 1.0), dynamic=True),
    ParamSpec("smoothing", "double", 0.0,
              "Weight of the past in an exponential moving average of each camera's score before the "
              "thresholds (0 = judge every frame on its own score).", range=(0.0, 0.99), dynamic=True),
    ParamSpec("relative", "bool", ReferenceParams.relative,
              "Per-camera reference gate: also drop (WARN, reason relative_drop) a frame whose score falls "
              "more than reference_margin below the median of the camera's recent accepted scores; false = "
              "absolute thresholds only (docs/gate.md)."),
    ParamSpec("reference_window_s", "double", ReferenceParams.window_s,
              "Seconds of learned (accepted, near-reference) scores whose median is the reference.",
              range=(0.1, 3600.0)),
    ParamSpec("reference_margin", "double", ReferenceParams.margin,
              "A frame scoring more than this below the camera's reference is dropped (relative_drop).",
              range=(0.0, 1.0)),
    ParamSpec("reference_fall_per_s", "double", ReferenceParams.fall_per_s,
              "The reference follows the median of learned scores up at once but down at most this much per "
              "second (a slowly thickening fault cannot drag it along).", range=(0.0, 1.0)),
    ParamSpec("reference_warmup_s", "double", ReferenceParams.warmup_s,
              "No relative drop until the reference has learned for this many seconds (after a reset).",
              range=(0.0, 3600.0)),
    ParamSpec("reference_max_age_s", "double", ReferenceParams.max_age_s,
              "Forget the reference after this many seconds without a learned frame (a fault lasting longer "
              "becomes the new normal).", range=(0.1, 86400.0)),
    ParamSpec("reference_reaccept_s", "double", ReferenceParams.reaccept_s,
              "Scene change: re-anchor the reference after this many seconds of relative drops that the "
              "fault head calls clean.", range=(0.0, 3600.0)),
    ParamSpec("reference_reaccept_none", "double", ReferenceParams.reaccept_none,
              "... 'clean' = the fault head's median none probability is at least this; 0 = never re-anchor.",
              range=(0.0, 1.0)),
    ParamSpec("reference_learn_none", "double", ReferenceParams.learn_none,
              "With a fault head, only frames whose none probability is at least this move the reference "
              "(a fault never becomes the reference); 0 = every accepted frame near it.", range=(0.0, 1.0)),
    ParamSpec("reference_cut_corr", "double", ReferenceParams.cut_corr,
              "Scene cut: a frame whose 32x24 grey thumbnail correlates less than this with the previous "
              "frame's is a cut: the reference then re-anchors after reference_warmup_s of frames the fault "
              "head calls clean (none >= reference_learn_none); -1 = never.", range=(-1.0, 1.0)),
    ParamSpec("reference_median_n", "int", ReferenceParams.median_n,
              "A frame is judged on the median of the camera's last N scores, its own included (single-frame "
              "jitter is no drop; adds at most N // 2 frames of delay); 1 = the frame alone.", range=(1, 15)),
    ParamSpec("reference_spread_k", "double", ReferenceParams.spread_k,
              "The margin is at least this times the robust spread (MAD x 1.4826) of the reference window's "
              "scores (a camera whose clean score is noisy); 0 = reference_margin alone.", range=(0.0, 20.0)),
    ParamSpec("reference_dark_luma", "double", ReferenceParams.dark_luma,
              "Drop (too_dark) a frame whose mean luma (0..255) is at most this and whose noise floor is at "
              "least reference_dark_noise (underexposed at high gain); 0 = off.", range=(0.0, 255.0)),
    ParamSpec("reference_dark_noise", "double", ReferenceParams.dark_noise,
              "... noise floor (8-bit sigma of the frame's flattest 16x16 tiles) of too_dark.",
              range=(0.0, 255.0)),
    ParamSpec("reference_noise_abs", "double", ReferenceParams.noise_abs,
              "Drop (noisy) a frame whose noise floor is at least this; 0 = off.", range=(0.0, 255.0)),
    ParamSpec("reference_block_ratio", "double", ReferenceParams.block_ratio,
              "Drop (blocky) a frame whose JPEG blockiness is above this times the camera's reference "
              "blockiness (median of its learned frames since the last cut); 0 = off.", range=(0.0, 100.0)),
    ParamSpec("hysteresis_raise", "int", 3,
              "A camera's /diagnostics level rises to WARN/ERROR after this many consecutive bad frames.",
              range=(1, 10000), dynamic=True),
    ParamSpec("hysteresis_clear", "int", 3,
              "A camera's /diagnostics level returns to OK after this many consecutive OK frames.",
              range=(1, 10000), dynamic=True),
    ParamSpec("publish_accepted", "bool", True,
              "Republish OK frames unchanged on B_accepted (B_accepted/compressed for compressed input)."),
    ParamSpec("publish_overlay", "bool", False,
              "Offer B_quality_overlay (sensor_msgs/Image): a downscaled frame with score, level, fault and "
              "reason drawn on it, for RViz/Foxglove; computed only while someone subscribes."),
    ParamSpec("overlay_max_side", "int", 640,
              "Longest side in pixels of the B_quality_overlay image (frames are only ever shrunk).",
              range=(64, 4096)),
    ParamSpec("diagnostic_updater.use_fqn", "bool", False,
              "As in diagnostic_updater: /diagnostics status names start with the node's fully qualified "
              "name (/ns/hirqa_node: camera) instead of its name (hirqa_node: camera)."),
    ParamSpec("max_rate_hz", "double", 0.0,
              "Score at most this many frames per second per camera (frames arriving sooner are skipped "
              "and counted as throttled); 0 = as fast as inference allows.", range=(0.0, 1000.0)),
    ParamSpec("min_image_side", "int", DEFAULT_MIN_IMAGE_SIDE,
              "Frames whose shorter side is below this many pixels are refused (no score).",
              range=(1, 100000)),
    ParamSpec("max_pixels", "int", DEFAULT_MAX_PIXELS,
              "Most pixels one frame is scored in one piece (default covers 4K); larger frames are scored "
              "as the mean of native-resolution tiles (never downscaled); 0 = no limit.",
              range=(0, 1_000_000_000)),
    ParamSpec("no_content_black_level", "double", DEFAULT_BLACK_LEVEL,
              "A frame whose luma is at or below this (of 255) in 99 % of it is ERROR 'no_content: black' "
              "(lens cap, dead sensor); -1 = off.", range=(-1.0, 255.0)),
    ParamSpec("no_content_white_level", "double", DEFAULT_WHITE_LEVEL,
              "A frame whose luma is at or above this in 99 % of it is ERROR 'no_content: white'; 256 = off.",
              range=(0.0, 256.0)),
    ParamSpec("no_content_uniform_range", "double", DEFAULT_UNIFORM_RANGE,
              "A frame whose 1st..99th percentile luma spread is at most this is ERROR "
              "'no_content: uniform'; -1 = off.", range=(-1.0, 255.0)),
    ParamSpec("frozen_timeout_s", "double", DEFAULT_FROZEN_S,
              "A camera whose image data stays byte-identical for this long is ERROR 'frozen' "
              "(stuck driver); 0 = off.", range=(0.0, 3600.0)),
    ParamSpec("hardware_id", "strings", "",
              "hardware_id of each camera's statuses: one value per image topic (or one for a single "
              "camera); empty = the camera's frame_id from its first frame, kept from then on."),
    ParamSpec("expected_rate_hz", "double", 0.0,
              "Expected input rate per camera: /diagnostics WARN when the rate over the last 5 periods "
              "leaves expected x (1 +/- rate_tolerance), ERROR when no frame came; 0 = no check.",
              range=(0.0, 10000.0)),
    ParamSpec("rate_tolerance", "double", 0.1,
              "Relative tolerance of the expected_rate_hz check.", range=(0.0, 1.0)),
    ParamSpec("max_stamp_delay_s", "double", 0.0,
              "/diagnostics ERROR when a frame's header stamp is more than this many seconds behind "
              "the node clock on arrival; 0 = no stamp check.", range=(0.0, 3600.0)),
    ParamSpec("min_stamp_delay_s", "double", -1.0,
              "/diagnostics ERROR when a frame's stamp is more than -min_stamp_delay_s seconds in the "
              "future (checked only with max_stamp_delay_s > 0).", range=(-3600.0, 0.0)),
    ParamSpec("stale_timeout_s", "double", 2.0,
              "A camera that sent frames and then sends none for this long is reported ERROR (stopped).",
              range=(0.1, 3600.0)),
    ParamSpec("diagnostics_period_s", "double", 1.0, "Period of the /diagnostics status.", range=(0.1, 60.0)),
    ParamSpec("stats_window", "int", 100,
              "Frames per camera behind the latency percentiles, mean score and reject fraction.",
              range=(1, 100000)),
    ParamSpec("gate_mode", "string", "state",
              "What B_accepted carries: state = every frame at camera rate, forwarded on arrival while the "
              "camera's fresh verdict is keep and a cheap per-frame check (sharpness, exposure, clipping) "
              "sees no sudden drop; scored = only frames that were scored themselves and OK, after "
              "their inference (the strict guarantee, at the inference rate).", choices=GATE_MODES),
    ParamSpec("max_verdict_age_s", "double", DEFAULT_MAX_VERDICT_AGE_S,
              "gate_mode state: a verdict is fresh while the frame it was scored on was received at most "
              "this many seconds ago; frames are held while it is older.", range=(0.05, 60.0)),
)

BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMS}
#: declared by rclpy itself on every node
BUILTIN = ("use_sim_time", "start_type_description_service")
#: prefix of rclpy's QoS override parameters (QoSOverridingOptions),
#: e.g. qos_overrides./image.subscription.depth
QOS_OVERRIDES = "qos_overrides."
DYNAMIC = tuple(p.name for p in PARAMS if p.dynamic)


def declared_names() -> set[str]:
    """Every parameter name the node accepts (its own plus rclpy's built-ins); QoS overrides aside."""
    return {p.name for p in PARAMS} | set(BUILTIN)


def is_known(name: str) -> bool:
    """True for a parameter the node declares, or an rclpy QoS override (``qos_overrides.<topic>...``)."""
    return name in declared_names() or name.startswith(QOS_OVERRIDES)


def engine_options(p: dict[str, Any], n_cameras: int) -> dict[str, Any]:
    """``load_scorer`` options from the engine parameters: cache folder, pre-built engine, rebuild
    flag, and an engine profile sized for the declared cameras and batch (see
    ``tensorrt_backend.profile_options_for_cameras``)."""
    from hirqa_ros.backends.tensorrt_backend import parse_hw

    sizes = [str(s).strip().lower() for s in p.get("camera_sizes") or ["auto"]]
    if sizes == ["auto"]:
        parsed: list[tuple[int, int]] = []
    elif len(sizes) in (1, n_cameras):
        try:
            parsed = [parse_hw(s) for s in sizes]
        except ValueError as exc:
            raise ValueError(f"parameter camera_sizes: {exc}") from exc
    else:
        raise ValueError(
            f"parameter camera_sizes has {len(sizes)} entries for {n_cameras} topics: "
            "give one for all or one per topic"
        )
    opts: dict[str, Any] = {"cameras": n_cameras, "camera_sizes": parsed}
    if int(p.get("max_batch") or 0) > 0:
        opts["max_batch"] = int(p["max_batch"])
    if p.get("engine_cache_dir"):
        opts["cache_dir"] = opts["trt_cache_dir"] = p["engine_cache_dir"]
    if p.get("engine_path"):
        opts["engine_path"] = p["engine_path"]
    if p.get("force_engine_update"):
        opts["force_engine_update"] = True
    return opts
