"""The fleet side of ``hirqa bag-eval``: several bags, folders and glob patterns, on the local or
the Ray engine, resumable; options, the one-line messages and exit codes (docs/bag.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from hirqa_ros.cli.ranges import ranged

log = logging.getLogger("hirqa.bag-eval")


def add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    """The fleet options of ``hirqa bag-eval`` (engines, resume, curated output)."""
    g = p.add_argument_group("fleet runs (several bags; docs/bag.md)")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine (a process pool with --workers > 1); ray: Ray actors on a local "
                   "cluster started here or on --address's (pip install 'hirqa_ros[fleet]')")
    g.add_argument("--workers", type=ranged(int, 1, 4096), metavar="N",
                   help="workers, each loading the model once (default: local 1; ray: the cluster's CPUs, or "
                   "GPUs when it has them)")
    g.add_argument("--address",
                   help="join this Ray cluster (host:port or 'auto'); see docs/bag.md for its token")
    g.add_argument("--cpus-per-worker", type=ranged(float, 0.01, 1024), default=1.0, metavar="C",
                   help="CPUs each Ray worker reserves (and ONNX Runtime threads; default 1)")
    g.add_argument("--gpus-per-worker", type=ranged(float, 0.0, 64), metavar="G",
                   help="GPUs each Ray worker reserves (default: 1 when the cluster has GPUs, else 0)")
    g.add_argument("--force", action="store_true",
                   help="evaluate bags again even when --out holds their result for the same options, "
                   "and replace results of other options")
    g.add_argument("--write-accepted", action="store_true",
                   help="also write <bag>_accepted: the bag with only the accepted (keep) frames on the "
                   "evaluated camera topics, every other message unchanged")
    g.add_argument("--fleet", action="store_true",
                   help="fleet layout (bags/<name>/, fleet.json, report.html) even for one bag")
    g.add_argument("--no-report", action="store_true", help="no report.html")


def is_fleet_run(args: argparse.Namespace) -> bool:
    """One bag path without fleet options keeps the one-bag layout (results directly in --out)."""
    from hirqa_ros.bag.fleet import bags_in_folder, is_bag_dir

    if len(args.bags) > 1 or args.fleet or args.engine == "ray" or args.address or (args.workers or 1) > 1:
        return True
    p = Path(args.bags[0]).expanduser()
    if p.exists():
        return p.is_dir() and not is_bag_dir(p) and bags_in_folder(p) != [p]
    return any(c in args.bags[0] for c in "*?[")


def write_accepted(bag: str, res: Any) -> None:
    """One-bag layout: ``<bag>_accepted`` beside the results (a failure is a problem, not an exit)."""
    from hirqa_ros.bag.accepted_bag import write_accepted_into
    from hirqa_ros.bag.fleet import bag_name

    try:
        res.files["accepted"] = str(write_accepted_into(bag, res.rows, res.out_dir, bag_name(Path(bag))))
    except Exception as exc:
        res.problems.append(f"could not write the accepted-frames bag: {exc}")
        log.error("could not write the accepted-frames bag: %s", exc)


def fleet_options(args: argparse.Namespace, evaluate: dict[str, Any]) -> Any:
    """The :class:`FleetOptions` of the parsed command line; ``evaluate``: the one-bag path's
    ``evaluate_bag`` keyword arguments (``hirqa_ros.cli.bag_eval.evaluate_kwargs``)."""
    from hirqa_ros.bag.fleet import FleetOptions

    return FleetOptions(model=args.model, backend=args.backend, input_policy=args.input_policy,
                        device=args.device, precision=args.precision, labels=args.labels,
                        evaluate=dict(evaluate), write_accepted=args.write_accepted)


def run_fleet_cli(args: argparse.Namespace, evaluate: dict[str, Any]) -> int:
    """``evaluate``: evaluate_bag's keyword arguments from the command line. Exit 0: every bag has a
    result; 1: some failed; 2: nothing usable; 130: interrupted."""
    from hirqa_ros.artifacts import ArtifactError
    from hirqa_ros.bag.engines import EngineError
    from hirqa_ros.bag.evaluate import OutputError
    from hirqa_ros.bag.fleet import BusyError, InputError
    from hirqa_ros.bag.fleet_run import ConflictError
    from hirqa_ros.bag.labels import LabelsError

    refused = (InputError, OutputError, ConflictError, EngineError, ArtifactError, BusyError, LabelsError)
    try:
        run = _plan_and_run(args, fleet_options(args, evaluate))
    except refused as exc:
        log.error("%s", exc)
        return 2
    return _print_run(run)


def _plan_and_run(args: argparse.Namespace, opts: Any) -> Any:
    """Check what can be checked before any work, then run (raises the refusals of run_fleet_cli)."""
    from hirqa_ros.bag.engines import import_ray, make_engine
    from hirqa_ros.bag.evaluate import check_out_dir
    from hirqa_ros.bag.fleet import expand_inputs, plan_inputs
    from hirqa_ros.bag.fleet_run import run_fleet
    from hirqa_ros.bag.labels import Labels

    out = Path(args.out)
    if args.labels and not Path(args.labels).is_dir():
        Labels.load(args.labels, bag_start_ns=0)  # one labels file for every bag: its own problems first
    if args.engine == "ray":
        import_ray()  # before any work: say how to install it
    bags = plan_inputs(expand_inputs(args.bags), args.labels)
    check_out_dir(out)

    def factory() -> Any:
        return make_engine(args.engine, opts, args.workers, args.address, args.cpus_per_worker,
                           args.gpus_per_worker)

    return run_fleet(bags, out, opts, factory, force=args.force, progress=not args.no_progress,
                     report=not args.no_report)


def _print_run(run: Any) -> int:
    s = run.summary
    for b in s["bags"]:
        cams = b.get("cameras") or {}
        line = f"  {b['name']}: {b['status']}"
        for cam, c in cams.items():
            rej = c.get("rejected_fraction")
            line += (f"; {cam} {c.get('scored', 0)}/{c.get('frames', 0)} scored, rejected "
                     f"{'-' if rej is None else f'{rej:.1%}'}")
            if c.get("dominant_fault"):
                line += f" (mostly {c['dominant_fault']})"
        if b.get("error"):
            line += f": {b['error']}"
        print(line)
    r = s["run"]
    if r.get("frames_per_s"):
        rtf = r.get("real_time_factor")
        eng = s.get("engine") or {}
        print(f"{r['bags_evaluated']} bag(s) evaluated in {r['evaluation_s']:.1f} s "
              f"(+ {r['engine_start_s']:.1f} s to start the workers): "
              f"{r['frames_per_s']:.1f} frames/s" + (f", real-time factor {rtf:.2f}" if rtf else "")
              + f" ({eng.get('engine')}, {eng.get('workers')} worker(s))")
    print(f"fleet summary: {run.out / 'fleet.json'}" + (f", report: {run.report}" if run.report else ""))
    if run.interrupted or run.left:
        log.error("interrupted: every finished bag is kept; %d bag(s) left: %s; run the same command "
                  "again to finish them", len(run.left), ", ".join(run.left))
        return 130 if run.interrupted else 1
    if run.failed:
        log.error("%d bag(s) failed: %s", len(run.failed), ", ".join(run.failed))
        done = [b for b in s["bags"] if b["status"] in ("done", "skipped")]
        return 1 if done else 2
    return 0
