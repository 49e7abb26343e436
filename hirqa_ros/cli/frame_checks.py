"""The frame-check options shared by ``hirqa score`` and ``hirqa bag-eval`` (the node's parameters
of the same names): ``--min-image-side``, ``--max-pixels``, the no-content / frozen limits and the
per-camera reference gate (``--relative``/``--no-relative``, ``--reference-*``)."""
from __future__ import annotations

import argparse

from hirqa_ros.cli.ranges import ranged
from hirqa_ros.constants import (
    DEFAULT_BLACK_LEVEL,
    DEFAULT_FROZEN_S,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_IMAGE_SIDE,
    DEFAULT_UNIFORM_RANGE,
    DEFAULT_WHITE_LEVEL,
)
from hirqa_ros.content import ContentLimits
from hirqa_ros.reference import PARAM_NAMES, ReferenceParams, params_from


def add_frame_check_arguments(parser: argparse.ArgumentParser, frozen_clock: str) -> None:
    """Add the options; ``frozen_clock`` says which clock the frozen check runs on."""
    g = parser.add_argument_group("frame checks (as the node's parameters of the same names)")
    g.add_argument(
        "--min-image-side", type=ranged(int, 1, 100000), default=DEFAULT_MIN_IMAGE_SIDE, metavar="PX",
        help="frames whose shorter side is below this are refused, no score "
        f"(default {DEFAULT_MIN_IMAGE_SIDE})")
    g.add_argument(
        "--max-pixels", type=ranged(int, 0, 1_000_000_000), default=DEFAULT_MAX_PIXELS, metavar="N",
        help="frames with more pixels are scored as the mean of native-resolution tiles of at most N "
        f"pixels, never downscaled; 0 = no limit (default {DEFAULT_MAX_PIXELS} = 4096x2160)")
    g.add_argument(
        "--no-content-black-level", type=ranged(float, -1, 255), default=DEFAULT_BLACK_LEVEL, metavar="L",
        help="ERROR 'no_content: black' when 99%% of the frame's luma is <= L; -1 = off "
        f"(default {DEFAULT_BLACK_LEVEL:g})")
    g.add_argument(
        "--no-content-white-level", type=ranged(float, 0, 256), default=DEFAULT_WHITE_LEVEL, metavar="L",
        help="ERROR 'no_content: white' when 99%% of the frame's luma is >= L; 256 = off "
        f"(default {DEFAULT_WHITE_LEVEL:g})")
    g.add_argument(
        "--no-content-uniform-range", type=ranged(float, -1, 255), default=DEFAULT_UNIFORM_RANGE,
        metavar="R", help="ERROR 'no_content: uniform' when the 1st..99th percentile luma spread is <= R; "
        f"-1 = off (default {DEFAULT_UNIFORM_RANGE:g})")
    g.add_argument(
        "--frozen-timeout-s", type=ranged(float, 0, 3600), default=DEFAULT_FROZEN_S, metavar="S",
        help="ERROR 'frozen' when the image data stays byte-identical for S seconds of "
        f"{frozen_clock}; 0 = off (default {DEFAULT_FROZEN_S:g})")
    add_reference_arguments(parser)


#: (field, type, lo, hi, help) of the reference gate's numeric options (the node's reference_* parameters)
_REFERENCE_OPTIONS = (
    ("window_s", float, 0.1, 3600.0, "seconds of learned scores whose median is the camera's reference"),
    ("margin", float, 0.0, 1.0, "drop (relative_drop) a frame scoring more than this below the reference"),
    ("fall_per_s", float, 0.0, 1.0, "the reference falls at most this much per second"),
    ("warmup_s", float, 0.0, 3600.0, "no relative drop before the reference has learned this long"),
    ("max_age_s", float, 0.1, 86400.0, "forget the reference after this long without a learned frame"),
    ("reaccept_s", float, 0.0, 3600.0, "scene change: re-anchor after this long of drops the fault head "
                                       "calls clean"),
    ("reaccept_none", float, 0.0, 1.0, "... clean = the head's median none probability >= this; 0 = never"),
    ("learn_none", float, 0.0, 1.0, "learn only frames the fault head gives none >= this; 0 = every frame"),
    ("cut_corr", float, -1.0, 1.0, "scene cut (the reference re-anchors sooner) when consecutive frames' "
                                   "thumbnails correlate below this; -1 = never"),
    ("median_n", int, 1, 15, "judge a frame on the median of the camera's last N scores (1 = the frame "
                             "alone)"),
    ("spread_k", float, 0.0, 20.0, "margin at least this x the reference window's robust spread (MAD x "
                                   "1.4826); 0 = the margin alone"),
    ("dark_luma", float, 0.0, 255.0, "drop (too_dark) a frame whose mean luma (0..255) is <= this and whose "
                                     "noise floor is >= --reference-dark-noise; 0 = off"),
    ("dark_noise", float, 0.0, 255.0, "... noise floor (8-bit sigma of the flattest tiles) of too_dark"),
    ("noise_abs", float, 0.0, 255.0, "drop (noisy) a frame whose noise floor is >= this; 0 = off"),
    ("block_ratio", float, 0.0, 100.0, "drop (blocky) a frame whose JPEG blockiness is above this x the "
                                       "camera's reference's; 0 = off"),
)


def add_reference_arguments(parser: argparse.ArgumentParser) -> None:
    """The per-camera reference gate's options (docs/gate.md)."""
    d = ReferenceParams()
    g = parser.add_argument_group("per-camera reference gate (as the node's parameters of the same names)")
    g.add_argument("--relative", action=argparse.BooleanOptionalAction, default=d.relative,
                   help="also drop frames that fall more than --reference-margin below the camera's own "
                   f"recent accepted scores; --no-relative: absolute thresholds only (default {d.relative})")
    for name, typ, lo, hi, text in _REFERENCE_OPTIONS:
        g.add_argument("--" + PARAM_NAMES[name].replace("_", "-"), type=ranged(typ, lo, hi),
                       default=getattr(d, name), metavar="X", dest=PARAM_NAMES[name],
                       help=f"{text} (default {getattr(d, name):g})")


def reference_params(args: argparse.Namespace) -> ReferenceParams:
    """The :class:`ReferenceParams` the options ask for."""
    return params_from(lambda name: getattr(args, name))


def content_limits(args: argparse.Namespace) -> ContentLimits:
    """The :class:`ContentLimits` the options ask for."""
    return ContentLimits(args.no_content_black_level, args.no_content_white_level,
                         args.no_content_uniform_range, args.frozen_timeout_s)
