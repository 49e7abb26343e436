"""Command-line flags from the shared option table (``hirqa_ros.options``): the same names, types,
ranges, choices, defaults and descriptions as the node's parameters."""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from hirqa_ros.cli.ranges import ranged
from hirqa_ros.options import BY_NAME, MODEL, Option


def flag_type(opt: Option) -> Callable[[str], object] | None:
    """The argparse ``type=`` of a numeric or string option (range-checked; ``cli_unset`` -> None)."""
    if opt.type in ("int", "double"):
        lo, hi = opt.range if opt.range is not None else (None, None)
        return ranged(int if opt.type == "int" else float, lo, hi)
    if opt.type != "string":
        raise ValueError(f"option {opt.name} ({opt.type}) has no command-line form")

    def parse(text: str) -> str | None:
        if opt.choices and text not in opt.choices:
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from "
                                             f"{', '.join(opt.choices)})")
        return None if text == opt.cli_unset else text

    parse.__name__ = opt.name
    return parse


def cli_default(opt: Option) -> object:
    """The flag's default: the node's, or None where the node's value means "not set"."""
    return None if opt.cli_unset is not None and opt.default == opt.cli_unset else opt.default


def add_options(parser: argparse.ArgumentParser, names: Iterable[str], title: str | None = None,
                notes: dict[str, str] | None = None) -> None:
    """Add the flags of the options ``names`` (in a group ``title`` when given); ``notes``: text added to
    an option's help for this command (e.g. which clock the frozen check runs on)."""
    group = parser.add_argument_group(title) if title else parser
    for name in names:
        opt = BY_NAME[name]
        default = cli_default(opt)
        help_text = opt.description.rstrip(".")
        if notes and name in notes:
            help_text += f" ({notes[name]})"
        shown = opt.default if default is not None or opt.default else "not set"  # precision: auto
        shown = f"{shown:g}" if isinstance(shown, float) else shown
        help_text = f"{help_text} (default: {shown})".replace("%", "%%")
        dest = opt.cli_flag.lstrip("-").replace("-", "_")  # --model: args.model
        if opt.type == "bool":
            group.add_argument(opt.cli_flag, action=argparse.BooleanOptionalAction, default=default,
                               dest=dest, help=help_text)
            continue
        choices = "{" + ",".join(opt.choices) + "}" if opt.choices else None
        group.add_argument(opt.cli_flag, type=flag_type(opt), default=default, dest=dest, help=help_text,
                           metavar=opt.metavar or choices)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model/--backend/--device/--precision/--input-policy (the node's model parameters)."""
    add_options(parser, MODEL, "model (as the node's parameters model_path, backend, device, precision, "
                "input_policy)")
