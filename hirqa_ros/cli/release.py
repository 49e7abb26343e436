"""``hirqa release``: turn what training made into a model directory: a training run (``run``), a
weight-space blend (``blend``), refitted heads (``heads``); the gate that decides (``gate`` on a run's
weights, ``finalize`` on two ``hirqa eval --full-frame`` reports); the card's table beside NIQE and BRISQUE
(``anchors``)."""

from __future__ import annotations

import argparse
import json
import logging

HELP = "make a model directory: run | blend | heads; the release gate: gate | finalize; anchors in the card"

log = logging.getLogger("hirqa.release")

HARDWARE = "2-core dev VM CPU (AMD EPYC), shared with other jobs, no GPU"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hirqa_ros.training.release.gate import GATE_IMAGES

    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pr = sub.add_parser("run", help="model directory of a finished training run (thresholds with --eval)")
    pr.add_argument("--run", required=True, help="finished run folder (summary.json, final.pt)")
    pr.add_argument("--out", default="models/hirqa-s", help="model directory to write")
    pr.add_argument("--eval", default=None, help="JSON of `hirqa eval --json` on it: calibrated thresholds")
    pr.add_argument("--hardware", default=None, help="hardware description for the card")
    pb = sub.add_parser("blend", help="blend a base model directory with a continuation run into --out")
    pb.add_argument("--base", default=None, help="model directory (default: the installed default model)")
    pb.add_argument("--tuned", required=True, help="run folder of a continuation from --base (summary.json)")
    pb.add_argument("--alpha", type=float, default=0.5, help="weight of the continuation, 0..1 (default 0.5)")
    pb.add_argument("--out", required=True, help="model directory to write")
    pb.add_argument("--name", default=None, help="model name in the card (default: VARIANT-blend)")
    pb.add_argument("--hardware", default=HARDWARE, help="hardware the continuation ran on (for the lineage)")
    ph = sub.add_parser("heads", help="model directory with the heads of `hirqa heads fit`")
    ph.add_argument("--heads", required=True, help="output folder of `hirqa heads fit`")
    ph.add_argument("--model", default=None, help="parent model directory (default: the installed default)")
    ph.add_argument("--out", required=True)
    ph.add_argument("--hardware", default=HARDWARE)
    ph.add_argument("--note", default=None)
    ph.add_argument("--manifest", default=None,
                    help="manifest of the training photos (e.g. data/pristine_r3/manifest.json), "
                         "referenced with its sha256 in the lineage")
    ph.add_argument("--keep-score-head", action="store_true",
                    help="keep the parent's fc.0 (the refit did not improve): ship the fault head only")
    pf = sub.add_parser("finalize",
        help="thresholds + full-frame metrics into --out, only if it passes the gate")
    pf.add_argument("--out", required=True, help="the candidate's model directory (e.g. a blend)")
    pf.add_argument("--eval", required=True, help="`hirqa eval --full-frame --json` of the candidate")
    pf.add_argument("--baseline-eval", required=True, help="the same for the baseline model (same frames)")
    pf.add_argument("--plain-eval", nargs=2, metavar=("CAND", "BASE"),
                    help="with physical-order reports: both models' reports on the same photos noise-free "
                         "(required there: the candidate may be lower on no pooled measure)")
    pf.add_argument("--topic-eval", nargs=2, metavar=("CAND", "BASE"),
                    help="both models' reports on the same photos as a compressed topic delivers them "
                         "(hirqa eval --transport-jpeg): none lower")
    pa = sub.add_parser("anchors",
        help="the card's table of this model beside NIQE, BRISQUE and the cues (one full-frame eval run)")
    pa.add_argument("--model", required=True, help="the model directory whose MODEL_CARD.md gets the section")
    pa.add_argument("--eval", required=True,
                    help="`hirqa eval --full-frame --json` of that model with the cues (the default)")
    pg = sub.add_parser("gate",
        help="full-frame evaluation of a run's weights vs a baseline model (gate.json)")
    pg.add_argument("--work", required=True, help="run folder (final.pt or checkpoints/last.pt)")
    pg.add_argument("--baseline", default="models/hirqa-s")
    pg.add_argument("--images", default=GATE_IMAGES)
    pg.add_argument("--out", required=True)
    pg.add_argument("--device", default="cpu")
    pg.add_argument("--types", nargs="*", default=None)
    pg.add_argument("--frame-sizes", nargs="*", default=None, metavar="WxH")
    pg.add_argument("--max-images", type=int, default=None)


def _release(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.action == "run":
        from hirqa_ros.training.release.run import release_run

        report = json.loads(Path(args.eval).read_text()) if args.eval else None
        path = release_run(Path(args.run), Path(args.out), report, args.hardware)
        from hirqa_ros.artifacts import load_artifact

        th = load_artifact(path).card["thresholds"]
        print(f"{path}: thresholds {th['warn']}/{th['error']} (calibrated: {th.get('calibrated')})")
        return 0
    if args.action == "blend":
        from hirqa_ros.training.release.blend import write

        write(args.base, Path(args.tuned), args.alpha, Path(args.out), args.hardware, args.name)
        return 0
    if args.action == "heads":
        from hirqa_ros.training.release.heads import release_heads

        release_heads(Path(args.heads), args.model, Path(args.out), args.hardware, args.note,
                      args.keep_score_head, Path(args.manifest) if args.manifest else None)
        return 0
    if args.action == "finalize":
        from hirqa_ros.training.release.finalize import finalize

        def pair(paths):
            return tuple(json.loads(Path(f).read_text()) for f in paths) if paths else None

        ok = finalize(Path(args.out), *pair([args.eval, args.baseline_eval]), pair(args.plain_eval),
                      pair(args.topic_eval))
        return 0 if ok else 1
    if args.action == "anchors":
        from hirqa_ros.training.release.anchors import add_anchors

        add_anchors(Path(args.model), json.loads(Path(args.eval).read_text()))
        print(f"{args.model}/MODEL_CARD.md: model beside NIQE, BRISQUE and the cues")
        return 0
    from hirqa_ros.training.release.gate import gate_run

    gate_run(Path(args.work), args.baseline, args.images, Path(args.out), args.device, args.types,
             args.frame_sizes, args.max_images)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return _release(args)
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
