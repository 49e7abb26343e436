"""The frame-check options shared by ``hirqa score`` and ``hirqa bag-eval`` (the node's parameters
of the same names): ``--min-image-side``, ``--max-pixels`` and the no-content / frozen limits."""
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


def content_limits(args: argparse.Namespace) -> ContentLimits:
    """The :class:`ContentLimits` the options ask for."""
    return ContentLimits(args.no_content_black_level, args.no_content_white_level,
                         args.no_content_uniform_range, args.frozen_timeout_s)
