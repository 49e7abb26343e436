"""``hirqa bag-eval``: score the image messages of a rosbag offline (no ROS needed) and measure thresholds."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hirqa_ros.cli.fleet_eval import add_fleet_arguments, is_fleet_run, run_fleet_cli, write_accepted
from hirqa_ros.cli.frame_checks import add_frame_check_arguments, gate_options
from hirqa_ros.cli.options import add_model_options
from hirqa_ros.cli.ranges import ranged, thresholds

HELP = "score the camera frames of a rosbag2 (sqlite3/MCAP) or ROS 1 bag offline; label metrics, plots"


log = logging.getLogger("hirqa.bag-eval")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bags", nargs="+", metavar="BAG",
                   help="rosbag2 directory, .mcap or .db3 file, ROS 1 .bag, a folder of bags or a glob "
                   "pattern; several or a folder: a fleet run (docs/bag.md)")
    p.add_argument("--out", required=True, help="output directory (frames.csv, summary.json, plots)")
    p.add_argument(
        "--topic",
        action="append",
        dest="topics",
        metavar="T",
        help="image topic to evaluate (repeatable); default: every Image/CompressedImage topic",
    )
    p.add_argument("--labels", help="labels YAML (time ranges per topic with a label; see docs/bag.md)")
    p.add_argument(
        "--drop-labels",
        help="comma-separated labels that mean 'should be dropped' "
        "(default: from the labels file, else every label except the default/clear one)",
    )
    p.add_argument(
        "--threshold",
        type=thresholds,
        metavar="WARN[,ERROR]",
        help="score thresholds; default: the model card's",
    )
    p.add_argument(
        "--target-frr",
        type=ranged(float, 0.0, 1.0, lo_open=True, hi_open=True),
        default=0.01,
        help="false-reject rate on keep-labelled frames for the suggested threshold, in (0, 1) "
        "(default 0.01)",
    )
    add_model_options(p)
    p.add_argument("--batch", type=ranged(int, 1, 1024), default=8,
                   help="frames per inference call, 1..1024 (default 8)")
    p.add_argument(
        "--write-bag",
        action="store_true",
        help="also write OUT/<bag>_quality: a copy of the bag with B_quality DiagnosticArray messages",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_frame_check_arguments(p, "the bag's record time")
    add_fleet_arguments(p)


def evaluate_kwargs(args: argparse.Namespace) -> dict:
    """``evaluate_bag``'s options from the command line: the same for one bag and for every bag of a
    fleet run (and part of each fleet result's key), so add new evaluation options here."""
    drop = [x.strip() for x in args.drop_labels.split(",") if x.strip()] if args.drop_labels else None
    return dict(
        topics=args.topics,
        drop_labels=drop,
        **gate_options(args),
        batch=args.batch,
        target_frr=args.target_frr,
        write_bag=args.write_bag,
        plots=not args.no_plots,
    )


def run(args: argparse.Namespace) -> int:
    from hirqa_ros.artifacts import ArtifactError
    from hirqa_ros.backends import BackendUnavailable
    from hirqa_ros.bag.evaluate import BagOpenError, NothingToEvaluate, OutputError
    from hirqa_ros.bag.labels import LabelsError
    from hirqa_ros.bag.safe_output import evaluate_into

    kw = evaluate_kwargs(args)
    if is_fleet_run(args):
        return run_fleet_cli(args, kw)
    try:
        res = evaluate_into(args.bags[0], args.out, labels=args.labels, model=args.model,
                            backend=args.backend, input_policy=args.input_policy, device=args.device,
                            precision=args.precision, progress=not args.no_progress, **kw)
    except (BagOpenError, NothingToEvaluate, LabelsError, OutputError, ArtifactError,
            BackendUnavailable) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:  # before scoring began (loading): nothing to keep
        log.error("interrupted before any frame was scored; nothing written")
        return 130
    if args.write_accepted and not res.interrupted:
        write_accepted(args.bags[0], res)
    print_result(res)
    return exit_code(res)


def print_result(res: Any) -> None:
    """The one-bag run's summary on stdout: counts, per topic, decisions, fault classes, speed, problems."""
    from hirqa_ros.faults import format_confusion

    s = res.summary
    o = s["overall"]
    th = s["thresholds"]
    print(
        f"bag {s['bag']}: {o['frames']} image messages, {o['scored']} scored, {o['errors']} not scorable; "
        f"backend {s['backend']}, thresholds warn={th['warn']:g} error={th['error']:g}"
    )
    for t, d in s["topics"].items():
        print(_topic_line(t, d))
    if s.get("decisions"):
        from hirqa_ros.evaluation.decisions import format_decisions

        print("  decisions against the labels (all topics; rejected = WARN or worse):")
        print(format_decisions(s["decisions"], "    "))
    confusion = s.get("labels", {}).get("all_topics", {}).get("fault_confusion")
    if confusion:
        acc = confusion["rejected_accuracy"]
        print("  fault class against the labels (rows: label, columns: reported fault; all topics)"
              + ("" if acc is None else f"; rejected frames with the right class: {acc:.1%}") + ":")
        print("\n".join("    " + line for line in format_confusion(confusion).splitlines()))
    if o["frames_per_s"]:
        rtf = o["real_time_factor"]
        print(
            f"  {o['frames_per_s']:.1f} frames/s, wall {o['wall_time_s']:.1f} s"
            + (f", real-time factor {rtf:.2f}" if rtf else "")
        )
    for p in res.problems:
        print(f"  problem: {p}")
    reasons = o.get("reasons") or {}
    if reasons:
        print("  frames by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    print(f"results in {res.out_dir}: " + ", ".join(sorted(res.files)))


def _topic_line(topic: str, d: dict) -> str:
    med = d["score"]["p50"] if d["score"] else float("nan")
    rej = d["rejected_fraction"]
    line = (
        f"  {topic}: {d['scored']}/{d['frames']} scored, median score {med:.3f}, "
        f"rejected {'-' if rej is None else f'{rej:.1%}'}"
    )
    if d["rejected_by_fault"]:
        line += " (" + ", ".join(f"{f} {n}" for f, n in d["rejected_by_fault"].items()) + ")"
    lab = d.get("labels")
    if lab and lab.get("auroc") is not None:
        line += f", AUROC {lab['auroc']:.3f}"
    return line


def exit_code(res: Any) -> int:
    """130 interrupted, 2 labels that match no frame, 1 nothing scored or label problems, else 0
    (the reason logged)."""
    if res.interrupted:
        kept = "; the complete earlier run in --out is kept" if res.out_dir.name == "partial" else ""
        log.error("interrupted: the results in %s are PARTIAL (summary.json: \"complete\": false)%s",
                  res.out_dir, kept)
        return 130
    if res.labels_error:
        log.error("the labels match no frame of the bag; label metrics are meaningless (exit 2)")
        return 2
    if res.scored == 0:
        log.error("no frame could be scored")
        return 1
    if res.label_problems:
        log.error("%d label problem(s) (listed above); the label metrics cover only what matched",
                  len(res.label_problems))
        return 1
    return 0
