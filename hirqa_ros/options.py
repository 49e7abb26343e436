"""The one option table of the ROS node's parameters and the ``hirqa`` command line's shared flags:
name, type, default, range, description, CLI flag, start-up or runtime (plain data, no rclpy)."""
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
from hirqa_ros.reference import PARAM_NAMES, RANGES, ReferenceParams
from hirqa_ros.state_gate import DEFAULT_MAX_VERDICT_AGE_S
from hirqa_ros.topics import TRANSPORTS

PRECISION_CHOICES = ("auto", "fp32", "fp16", "int8")
GATE_MODES = ("state", "scored")
FROM_MODEL_CARD = None  # default of the thresholds: the loaded model card's calibrated values


@dataclass(frozen=True)
class Option:
    """One option: a node parameter ``name`` and, when ``flag`` is set, a ``hirqa`` flag (True: ``--name``
    with dashes; a string: that spelling) parsed to the same type, range and choices."""

    name: str
    # "string" | "string_array" | "strings" (a string or a string array) | "bool" | "int" | "double"
    type: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    dynamic: bool = False  # a runtime parameter (ros2 param set); all others are start-up parameters
    flag: bool | str = False
    metavar: str | None = None
    cli_unset: str | None = None  # the node value meaning "not set": the flag's default is None instead

    @property
    def cli_flag(self) -> str | None:
        """The command-line spelling, or None for a node-only parameter."""
        if self.flag is True:
            return "--" + self.name.replace("_", "-")
        return self.flag or None


def _reference(field: str, description: str) -> Option:
    """A reference-gate parameter: name, default and range from :mod:`hirqa_ros.reference`."""
    default = getattr(ReferenceParams, field)
    return Option(PARAM_NAMES[field], "int" if isinstance(default, int) else "double", default, description,
                  range=RANGES[field], flag=True, metavar="X")


_REFERENCE = (
    _reference("window_s", "Seconds of learned (accepted, near-reference) scores whose median is the "
                           "reference."),
    _reference("margin", "A frame scoring more than this below the camera's reference is dropped "
                         "(relative_drop)."),
    _reference("fall_per_s", "The reference follows the median of learned scores up at once but down at most "
                             "this much per second (a slowly thickening fault cannot drag it along)."),
    _reference("warmup_s", "No relative drop until the reference has learned for this many seconds (after a "
                           "reset)."),
    _reference("max_age_s", "Forget the reference after this many seconds without a learned frame (a fault "
                            "lasting longer becomes the new normal)."),
    _reference("reaccept_s", "Scene change: re-anchor the reference after this many seconds of relative "
                             "drops that the fault head calls clean."),
    _reference("reaccept_none", "... 'clean' = the fault head's median none probability is at least this; "
                                "0 = never re-anchor."),
    _reference("learn_none", "With a fault head, only frames whose none probability is at least this move "
                             "the reference (a fault never becomes the reference); 0 = every accepted frame "
                             "near it."),
    _reference("cut_corr", "Scene cut: a frame whose structure (64x48 grey thumbnail minus its blur: "
                           "edges, not lighting) correlates less than this with the previous frame's is a "
                           "cut: the reference then re-anchors after reference_warmup_s of frames the fault "
                           "head calls clean (none >= reference_learn_none); -1 = never."),
    _reference("median_n", "A frame is judged on the median of the camera's last N scores, its own included "
                           "(single-frame jitter is no drop; adds at most N // 2 frames of delay); 1 = the "
                           "frame alone."),
    _reference("spread_k", "The margin is at least this times the robust spread (MAD x 1.4826) of the "
                           "reference window's scores (a camera whose clean score is noisy); 0 = "
                           "reference_margin alone."),
    _reference("dark_luma", "Drop (too_dark) a frame whose mean luma (0..255) is at most this and whose "
                            "noise floor is at least reference_dark_noise (underexposed at high gain); "
                            "0 = off."),
    _reference("dark_noise", "... noise floor (8-bit sigma of the frame's flattest 16x16 tiles) of "
                             "too_dark."),
    _reference("noise_abs", "Drop (noisy) a frame whose noise floor is at least this; 0 = off."),
    _reference("block_ratio", "Drop (blocky) a frame whose JPEG blockiness is above this times the "
                              "camera's reference blockiness (median of its accepted frames since the last "
                              "cut); 0 = off."),
    _reference("noise_ratio", "Drop (noisy) a frame whose noise floor is above this times the camera's "
                              "reference noise floor (median of its accepted frames since the last cut, read "
                              "as at least 1.5 grey levels); 0 = off."),
    _reference("dark_ratio", "Drop (too_dark) a frame whose mean luma is below this times the camera's "
                             "reference luma while its noise floor rose above 1.5x the reference's "
                             "(underexposed at high gain); 0 = off."),
    _reference("shake_flicker", "Drop (shaky) a frame when the median of the camera's last 3 frame-to-frame "
                                "changes of the blur effect (0 sharp .. 1 blurred) is above this: a shaking "
                                "camera blurs each exposure differently; 0 = off."),
    _reference("veil_rise", "Drop (veiled) a frame whose black level (2nd percentile of its luma, 0..255) "
                            "is more than this above the camera's reference black level (median of its "
                            "accepted frames since the last cut) while its black-to-white range shrank and "
                            "its score is below the reference: glare and haze add light to every pixel; "
                            "0 = off."),
    _reference("head_none", "Drop (fault_head) a frame when its fault-head none probability and the median "
                            "of the camera's last reference_head_n frames' are both below this (a fault the "
                            "head sees, e.g. from the first frame, with no reference needed); 0 = off."),
    _reference("head_n", "... frames in that median (detection waits for N // 2 + 1 of them)."),
    _reference("cut_reanchor_s", "After a scene cut, re-anchor the reference on the new scene after this "
                                 "many seconds when its frames' median score is more than half "
                                 "reference_margin below the reference and the floors passed at least half "
                                 "of them, whatever the fault head says (a fault that starts with the cut "
                                 "is then accepted); 0 = only the fault head re-anchors."),
)

OPTIONS: tuple[Option, ...] = (
    Option("image_topics", "string_array", ["image"],
              "Base image topics (image_transport names), relative to the node's namespace unless they "
              "start with /; one camera each. For base B the node subscribes B (raw) or B/compressed and "
              "publishes B_quality and B_accepted (or B_accepted/compressed)."),
    Option("image_transport", "strings", "raw",
              "raw (sensor_msgs/Image on B) or compressed (sensor_msgs/CompressedImage on B/compressed): "
              "one value for every camera or a list with one per image topic.", choices=TRANSPORTS),
    Option("autostart", "bool", True,
              "Configure and activate at start-up (plain `ros2 run`); false = wait unconfigured for "
              "lifecycle transitions (ros2 lifecycle set, a lifecycle manager)."),
    Option("model_path", "string", "",
              "Model directory (model.yaml, model.onnx, weights.pth); empty = $HIRQA_MODEL or the "
              "installed default models/hirqa-s.", flag="--model", metavar="DIR", cli_unset=""),
    Option("backend", "string", "auto",
              "Inference backend: auto (tensorrt > torch on CUDA > onnxruntime), tensorrt, torch, "
              "onnxruntime, torch2trt.", choices=BACKEND_CHOICES, flag=True),
    Option("device", "string", "",
              "Device for torch/TensorRT backends, e.g. cuda:0 or cpu (onnxruntime: cpu, cuda[:i] or "
              "tensorrt = its TensorRT provider); empty = auto.", flag=True, cli_unset=""),
    Option("precision", "string", "auto",
              "Inference precision: auto (fp16 on GPUs; on the CPU int8 when the model directory has a "
              "model.int8.onnx whose card says its accuracy loss is within tolerance, else fp32), fp32, "
              "fp16 (GPU backends) or int8 (onnxruntime on the CPU; its own thresholds from the card).",
              choices=PRECISION_CHOICES, flag=True, cli_unset="auto"),
    Option("engine_cache_dir", "string", "",
              "Where TensorRT engines are cached; empty = the backend's default cache folder."),
    Option("force_engine_update", "bool", False,
              "Rebuild the TensorRT engine even if a cached one matches (slow; happens in configure)."),
    Option("engine_path", "string", "",
              "Pre-built TensorRT engine (.plan from `hirqa export --engine`), used as is when it loads "
              "(its own profile is enforced), else built there; empty = the engine cache."),
    Option("camera_sizes", "string_array", ["auto"],
              "Largest frame HxW per camera (one for all topics or one per topic), e.g. ['720x1280']; "
              "sizes the TensorRT engine profile (smaller = less GPU memory on a Jetson); "
              "auto = frames up to 1088x1920."),
    Option("max_batch", "int", 0,
              "Largest batch the engine is built for and the scorer sends; 0 = one frame per camera "
              "(times K for crops:KxS).", range=(0, 256)),
    Option("input_policy", "string", "",
              "How a frame becomes network input: native, max-side:N or crops:KxS; "
              "empty = the model card's.", flag=True, metavar="P", cli_unset=""),
    Option("warn_threshold", "double", FROM_MODEL_CARD,
              "Frames scoring below this are WARN (rejected); default from the model card.",
              range=(0.0, 1.0), dynamic=True),
    Option("error_threshold", "double", FROM_MODEL_CARD,
              "Frames scoring below this are ERROR; must be <= warn_threshold; default from the model card.",
              range=(0.0, 1.0), dynamic=True),
    Option("smoothing", "double", 0.0,
              "Weight of the past in an exponential moving average of each camera's score before the "
              "thresholds (0 = judge every frame on its own score).", range=(0.0, 0.99), dynamic=True,
              flag=True, metavar="W"),
    Option("relative", "bool", ReferenceParams.relative,
              "Per-camera reference gate: also drop (WARN, reason relative_drop) a frame whose score falls "
              "more than reference_margin below the median of the camera's recent accepted scores; false = "
              "absolute thresholds only (docs/gate.md).", flag=True),
    *_REFERENCE,
    Option("hysteresis_raise", "int", 3,
              "A camera's /diagnostics level rises to WARN/ERROR after this many consecutive bad frames.",
              range=(1, 10000), dynamic=True),
    Option("hysteresis_clear", "int", 3,
              "A camera's /diagnostics level returns to OK after this many consecutive OK frames.",
              range=(1, 10000), dynamic=True),
    Option("publish_accepted", "bool", True,
              "Republish OK frames unchanged on B_accepted (B_accepted/compressed for compressed input)."),
    Option("publish_overlay", "bool", False,
              "Offer B_quality_overlay (sensor_msgs/Image): a downscaled frame with score, level, fault and "
              "reason drawn on it, for RViz/Foxglove; computed only while someone subscribes."),
    Option("overlay_max_side", "int", 640,
              "Longest side in pixels of the B_quality_overlay image (frames are only ever shrunk).",
              range=(64, 4096)),
    Option("diagnostic_updater.use_fqn", "bool", False,
              "As in diagnostic_updater: /diagnostics status names start with the node's fully qualified "
              "name (/ns/hirqa_node: camera) instead of its name (hirqa_node: camera)."),
    Option("max_rate_hz", "double", 0.0,
              "Score at most this many frames per second per camera (frames arriving sooner are skipped "
              "and counted as throttled); 0 = as fast as inference allows.", range=(0.0, 1000.0)),
    Option("min_image_side", "int", DEFAULT_MIN_IMAGE_SIDE,
              "Frames whose shorter side is below this many pixels are refused (no score).",
              range=(1, 100000), flag=True, metavar="PX"),
    Option("max_pixels", "int", DEFAULT_MAX_PIXELS,
              "Most pixels one frame is scored in one piece (default covers 4K); larger frames are scored "
              "as the mean of native-resolution tiles (never downscaled); 0 = no limit.",
              range=(0, 1_000_000_000), flag=True, metavar="N"),
    Option("no_content_black_level", "double", DEFAULT_BLACK_LEVEL,
              "A frame whose luma is at or below this (of 255) in 99 % of it is ERROR 'no_content: black' "
              "(lens cap, dead sensor); -1 = off.", range=(-1.0, 255.0), flag=True, metavar="L"),
    Option("no_content_white_level", "double", DEFAULT_WHITE_LEVEL,
              "A frame whose luma is at or above this in 99 % of it is ERROR 'no_content: white'; 256 = off.",
              range=(0.0, 256.0), flag=True, metavar="L"),
    Option("no_content_uniform_range", "double", DEFAULT_UNIFORM_RANGE,
              "A frame whose 1st..99th percentile luma spread is at most this is ERROR "
              "'no_content: uniform'; -1 = off.", range=(-1.0, 255.0), flag=True, metavar="R"),
    Option("frozen_timeout_s", "double", DEFAULT_FROZEN_S,
              "A camera whose image data stays byte-identical for this long is ERROR 'frozen' "
              "(stuck driver); 0 = off.", range=(0.0, 3600.0), flag=True, metavar="S"),
    Option("hardware_id", "strings", "",
              "hardware_id of each camera's statuses: one value per image topic (or one for a single "
              "camera); empty = the camera's frame_id from its first frame, kept from then on."),
    Option("expected_rate_hz", "double", 0.0,
              "Expected input rate per camera: /diagnostics WARN when the rate over the last 5 periods "
              "leaves expected x (1 +/- rate_tolerance), ERROR when no frame came; 0 = no check.",
              range=(0.0, 10000.0)),
    Option("rate_tolerance", "double", 0.1,
              "Relative tolerance of the expected_rate_hz check.", range=(0.0, 1.0)),
    Option("max_stamp_delay_s", "double", 0.0,
              "/diagnostics ERROR when a frame's header stamp is more than this many seconds behind "
              "the node clock on arrival; 0 = no stamp check.", range=(0.0, 3600.0)),
    Option("min_stamp_delay_s", "double", -1.0,
              "/diagnostics ERROR when a frame's stamp is more than -min_stamp_delay_s seconds in the "
              "future (checked only with max_stamp_delay_s > 0).", range=(-3600.0, 0.0)),
    Option("stale_timeout_s", "double", 2.0,
              "A camera that sent frames and then sends none for this long is reported ERROR (stopped).",
              range=(0.1, 3600.0)),
    Option("diagnostics_period_s", "double", 1.0, "Period of the /diagnostics status.", range=(0.1, 60.0)),
    Option("stats_window", "int", 100,
              "Frames per camera behind the latency percentiles, mean score and reject fraction.",
              range=(1, 100000)),
    Option("gate_mode", "string", "state",
              "What B_accepted carries: state = every frame at camera rate, forwarded on arrival while the "
              "camera's fresh verdict is keep and a cheap per-frame check (sharpness, exposure, clipping) "
              "sees no sudden drop; scored = only frames that were scored themselves and OK, after "
              "their inference (the strict guarantee, at the inference rate).", choices=GATE_MODES),
    Option("max_verdict_age_s", "double", DEFAULT_MAX_VERDICT_AGE_S,
              "gate_mode state: a verdict is fresh while the frame it was scored on was received at most "
              "this many seconds ago; frames are held while it is older.", range=(0.05, 60.0)),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}

#: the flag groups the commands share (``hirqa_ros.cli.options.add_options``)
MODEL = ("model_path", "backend", "device", "precision", "input_policy")
GATE = ("smoothing", "relative", *(o.name for o in _REFERENCE))
FRAME_CHECKS = ("min_image_side", "max_pixels", "no_content_black_level", "no_content_white_level",
                "no_content_uniform_range", "frozen_timeout_s")
