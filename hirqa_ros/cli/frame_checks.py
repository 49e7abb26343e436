"""The frame-check and gate options shared by ``hirqa score`` and ``hirqa bag-eval`` (the node's
parameters of the same names, from the shared option table): ``--min-image-side``, ``--max-pixels``,
the no-content / frozen limits, ``--smoothing`` and the per-camera reference gate
(``--relative``/``--no-relative``, ``--reference-*``)."""
from __future__ import annotations

import argparse

from hirqa_ros.cli.options import add_options
from hirqa_ros.content import ContentLimits
from hirqa_ros.options import FRAME_CHECKS, GATE
from hirqa_ros.reference import ReferenceParams, params_from


def add_frame_check_arguments(parser: argparse.ArgumentParser, frozen_clock: str) -> None:
    """Add the frame-check and gate options; ``frozen_clock`` says which clock the frozen check runs on."""
    add_options(parser, FRAME_CHECKS, "frame checks (as the node's parameters of the same names)",
                notes={"frozen_timeout_s": f"on {frozen_clock}"})
    add_options(parser, GATE, "gate: smoothing and the per-camera reference gate (as the node's parameters "
                "of the same names; docs/gate.md)")


def reference_params(args: argparse.Namespace) -> ReferenceParams:
    """The :class:`ReferenceParams` the options ask for."""
    return params_from(lambda name: getattr(args, name))


def content_limits(args: argparse.Namespace) -> ContentLimits:
    """The :class:`ContentLimits` the options ask for."""
    return ContentLimits(args.no_content_black_level, args.no_content_white_level,
                         args.no_content_uniform_range, args.frozen_timeout_s)


def gate_options(args: argparse.Namespace) -> dict:
    """The pipeline's gate options (``pipeline.Monitor``'s keywords) from the frame-check and gate flags:
    ``hirqa score`` and ``hirqa bag-eval`` judge with the same options as the node's parameters."""
    return dict(thresholds=getattr(args, "threshold", None),
                smoothing=getattr(args, "smoothing", 0.0),  # --smoothing: the shared option table's flag
                min_side=args.min_image_side, content=content_limits(args), reference=reference_params(args),
                max_pixels=args.max_pixels)
