"""The shared option table: config/hirqa.yaml sets every node parameter at its table default, and every
command-line flag of ``hirqa score``, ``bag-eval`` and ``eval`` parses to the node parameter's type,
default, range and choices (one table for both; no ROS needed)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from hirqa_ros.cli.main import build_parser
from hirqa_ros.cli.options import cli_default
from hirqa_ros.options import FRAME_CHECKS, GATE, MODEL, OPTIONS, Option
from hirqa_ros.reference import PARAM_NAMES, ReferenceParams

REPO = Path(__file__).resolve().parents[1]
# command -> (required arguments, the option groups it takes from the table)
COMMANDS = {
    "score": (["x.png"], MODEL + FRAME_CHECKS + GATE),
    "bag-eval": (["x.bag", "--out", "o"], MODEL + FRAME_CHECKS + GATE),
    "eval": ([], MODEL),
}
FLAGGED = [o for o in OPTIONS if o.cli_flag]


@functools.cache
def _parser():
    return build_parser()


def _parse(command: str, *flags: str):
    required, _ = COMMANDS[command]
    return _parser().parse_args([command, *required, *flags])


def _dest(opt: Option) -> str:
    return opt.cli_flag.lstrip("-").replace("-", "_")


def test_the_params_file_sets_every_node_parameter_at_its_default():
    params = yaml.safe_load((REPO / "config" / "hirqa.yaml").read_text())["/**"]["ros__parameters"]
    for opt in OPTIONS:
        if opt.default is None:  # the thresholds: the model card's unless a user sets them
            assert opt.name not in params, f"{opt.name} follows the model card; the file must not set it"
            continue
        assert opt.name in params, f"config/hirqa.yaml lacks {opt.name}"
        assert params[opt.name] == opt.default, f"{opt.name}: {params[opt.name]!r}, table {opt.default!r}"
    table = {o.name for o in OPTIONS}
    assert not set(params) - table, f"config/hirqa.yaml sets what the table lacks: {set(params) - table}"


def test_the_reference_gate_entries_are_the_gate_dataclass():
    d = ReferenceParams()
    by_name = {o.name: o for o in OPTIONS}
    for field, name in PARAM_NAMES.items():
        assert by_name[name].default == getattr(d, field)
        assert name in GATE and by_name[name].cli_flag == "--" + name.replace("_", "-")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_defaults_are_the_node_defaults(command):
    args = _parse(command)
    for name in COMMANDS[command][1]:
        opt = next(o for o in OPTIONS if o.name == name)
        assert getattr(args, _dest(opt)) == cli_default(opt), f"{command} {opt.cli_flag}"
    assert args.model is None and args.backend == "auto" and args.precision is None  # as before the table


def _values(opt: Option) -> list[tuple[str, object]]:
    """(flag text, parsed value) pairs every flag of ``opt`` must round-trip."""
    if opt.type in ("int", "double"):
        kind = int if opt.type == "int" else float
        lo, hi = opt.range
        return [(str(kind(v)), kind(v)) for v in (lo, hi, (lo + hi) / 2 if kind is float else (lo + hi) // 2)]
    if opt.choices:
        return [(c, None if c == opt.cli_unset else c) for c in opt.choices]
    text = {"device": "cuda:1", "input_policy": "crops:4x256"}.get(opt.name, "some/dir")
    return [(text, None)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_round_trips_and_refuses_out_of_range(command, capsys):
    names = set(COMMANDS[command][1])
    for opt in (o for o in FLAGGED if o.name in names):
        if opt.type == "bool":
            flag = "--no-" + opt.cli_flag[2:]
            assert getattr(_parse(command, flag), _dest(opt)) is False
            assert getattr(_parse(command, opt.cli_flag), _dest(opt)) is True
            continue
        for text, value in _values(opt):
            got = getattr(_parse(command, opt.cli_flag, text), _dest(opt))
            assert got == (text if value is None and not opt.choices else value), f"{opt.cli_flag} {text}"
        if opt.range:
            with pytest.raises(SystemExit):
                _parse(command, opt.cli_flag, str(opt.range[1] + 1))
            assert "is outside" in capsys.readouterr().err
        if opt.choices:
            with pytest.raises(SystemExit):
                _parse(command, opt.cli_flag, "nonsense")
            assert "invalid choice" in capsys.readouterr().err


def test_bag_eval_passes_precision_and_device_to_the_fleet_key():
    from hirqa_ros.cli.bag_eval import evaluate_kwargs
    from hirqa_ros.cli.fleet_eval import fleet_options

    args = _parse("bag-eval", "--precision", "int8", "--device", "cpu")
    opts = fleet_options(args, evaluate_kwargs(args))
    assert (opts.precision, opts.device) == ("int8", "cpu")
    assert opts.key_fields()["precision"] == "int8"
    plain = fleet_options(_parse("bag-eval"), evaluate_kwargs(_parse("bag-eval")))
    assert not {"precision", "device"} & set(plain.key_fields())  # unset: earlier results keep their key
