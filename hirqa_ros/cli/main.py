"""Entry point of ``hirqa``: dispatches to one module per subcommand.

Each subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, and keeps heavy imports (torch, rclpy, rosbags) inside ``run``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> module under hirqa_ros.cli
SUBCOMMANDS = {
    "score": "score",
    "export": "export",
    "import-official": "import_official",
    "bench": "bench",
    "train": "train",
    "eval": "eval",
    "prepare-data": "prepare_data",
    "gpu-run": "gpu_run",
    "heads": "heads",
    "release": "release",
    "demo": "demo",
    "bag-eval": "bag_eval",
    "bag-play": "bag_play",
    "bag-quality": "bag_quality",
    "make-bag": "make_bag",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hirqa",
        description="HiRQA-S no-reference image quality: score, train, export, evaluate, run on ROS 2 bags.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(f"hirqa_ros.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hirqa_ros.cli.{module_name}":
                raise
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # stdout's reader went away (`| head -1`): end quietly, as cat would
        from hirqa_ros.interrupts import closed_pipe

        return closed_pipe()


if __name__ == "__main__":
    sys.exit(main())
