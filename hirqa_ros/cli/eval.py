"""``hirqa eval``: synthetic distortion protocol (model beside classical cues) and public IQA benchmarks."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hirqa_ros.cli.options import add_options
from hirqa_ros.cli.ranges import ranged
from hirqa_ros.options import MODEL

HELP = "evaluate a model beside classical cues: synthetic distortion ladders (SROCC, AUROC), IQA benchmarks"

log = logging.getLogger("hirqa.eval")
DEFAULT_IMAGES = "data/pristine/val"
# full-frame protocol: photos kept at up to 4096 px
# (`hirqa prepare-data --max-side 4096 --out data/pristine_native`)
# so that 1920x1080 frames are cut from a larger photo, not enlarged
DEFAULT_NATIVE_IMAGES = "data/pristine_native/val"


def add_arguments(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    add_options(m, MODEL)  # --model, --backend, --device, --precision, --input-policy
    m.add_argument("--no-model", action="store_true", help="evaluate only the classical cues")
    s = p.add_argument_group("synthetic protocol")
    s.add_argument("--full-frame", action="store_true",
                   help="deployment-like protocol: whole camera frames (640x480 .. 1920x1080) cut from the "
                        "photos, distortions rendered at that resolution, each frame scored whole with the "
                        "input policy; "
                        "also reports the fault class when the model has a fault head")
    s.add_argument("--frame-sizes", nargs="+", default=None, metavar="WxH",
                   help="camera frame sizes for --full-frame, used in turn per view "
                        "(default: 640x480 1280x720 1920x1080)")
    s.add_argument("--physical-order", nargs="?", type=ranged(float, 0.0, 64.0, lo_open=True), const=1.5,
                   default=0.0, metavar="SIGMA",
                   help="render in a camera's physical order: fault, then a sensor noise floor of SIGMA grey "
                        "levels (default 1.5) on every frame, clean ones included, then noise faults, JPEG")
    s.add_argument("--transport-jpeg", type=ranged(int, 1, 100), default=0, metavar="Q",
                   help="with --full-frame: every frame, clean ones included, leaves as a JPEG of quality Q, "
                        "last, like a compressed image topic (default: raw)")
    s.add_argument("--images", default=None,
                   help=f"folder of held-out pristine photos (default: {DEFAULT_IMAGES}; with --full-frame "
                        f"{DEFAULT_NATIVE_IMAGES} when it exists; "
                        "with --dataset the synthetic protocol runs only if --images is given)")
    s.add_argument("--max-images", type=ranged(int, 1, 10_000_000), default=None,
                   help="use at most N images of the folder")
    s.add_argument("--types", nargs="+", default=None, metavar="NAME",
                   help="distortion types and/or groups (default: every type of hirqa_ros.degradations)")
    s.add_argument("--crop", type=ranged(int, 0, 16384), default=256,
                   help="square view size in px; 0 = the whole (shrunk) image (default 256)")
    s.add_argument("--resize-side", type=ranged(int, 0, 16384), default=512,
                   help="shrink each photo so its shorter side is at most N px before cropping; 0 = native "
                        "(default 512)")
    s.add_argument("--crops-per-image", type=ranged(int, 1, 1000), default=1,
                   help="seeded views per photo (default 1)")
    s.add_argument("--seed", type=ranged(int, 0, 2**32 - 1), default=0,
                   help="seed of crops and distortions (default 0)")
    s.add_argument("--batch-size", type=ranged(int, 1, 1024), default=None,
                   help="images per scoring call (default 32; 4 with --full-frame)")
    s.add_argument("--cues", action=argparse.BooleanOptionalAction, default=True,
                   help="also score the classical cues and the NIQE / BRISQUE anchors side by side "
                        "(default: on)")
    s.add_argument("--nss-model", default=None, metavar="NPZ",
                   help="pristine model of the NIQE / BRISQUE anchors (default: the packaged one, fitted "
                        "on the training photos)")
    s.add_argument("--fit-nss", default=None, metavar="PHOTOS",
                   help="fit the NIQE / BRISQUE pristine model on clean frames of these TRAINING photos, "
                        "write it to --nss-model (default: the packaged file) and exit")
    s.add_argument("--warn-frr", type=ranged(float, 0.0, 1.0, lo_open=True, hi_open=True), default=0.05,
                   help="false-reject rate on keep frames that sets the WARN threshold (default 0.05)")
    s.add_argument("--error-frr", type=ranged(float, 0.0, 1.0, lo_open=True, hi_open=True), default=0.01,
                   help="false-reject rate on keep frames that sets the ERROR threshold (default 0.01)")
    b = p.add_argument_group("benchmark")
    b.add_argument("--dataset", default=None,
                   help="kadid10k | csiq | tid2013 | live | clive | koniq10k | spaq | flive")
    b.add_argument("--root", default=None, help="the dataset's folder, in its authors' layout")
    b.add_argument("--limit", type=ranged(int, 1, 10_000_000), default=None,
                   help="evaluate N evenly spaced images of the dataset")
    o = p.add_argument_group("output")
    o.add_argument("--json", default=None, metavar="FILE", help="write every number to FILE")
    o.add_argument("--plot", default=None, metavar="PNG", help="bar chart of AUROC per group, model vs cues")
    o.add_argument("--confusion", default=None, metavar="PNG",
                   help="confusion matrix of the fault class (models with a fault head)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def _score_fns(args: argparse.Namespace) -> tuple[dict, dict | None]:
    """Score functions by column name (model first) and a description of the model (None: no model).
    The model is judged through the pipeline, image by image, as the doors judge a frame
    (``evaluation.model_fn``): its scores, and with a fault head the published (gated) fault."""
    from hirqa_ros.classical import CUES, cue_score_fn

    fns: dict = {}
    info = None
    if not args.no_model:
        from hirqa_ros import load_scorer
        from hirqa_ros.evaluation.model_fn import evaluation_monitor, pipeline_score_fn

        scorer = load_scorer(args.model, backend=args.backend, input_policy=args.input_policy,
                             device=args.device, precision=args.precision)
        monitor = evaluation_monitor(scorer)  # the card's thresholds (a card without them is refused)
        fns["model"] = pipeline_score_fn(monitor)
        info = {"name": scorer.model_name, "dir": str(scorer.model_dir), "backend": scorer.backend,
                "device": scorer.device, "precision": scorer.precision,
                "input_policy": str(scorer.input_policy),
                "card_thresholds": {"warn": monitor.thresholds.warn, "error": monitor.thresholds.error}}
        log.info("model: %s", scorer.describe())
    if args.cues:
        fns.update({name: cue_score_fn(name) for name in CUES})
        fns.update(_anchor_fns(args.nss_model))
    return fns, info


def _anchor_fns(path: str | None) -> dict:
    """NIQE and BRISQUE score_fns (empty, with a warning, when no pristine model is fitted)."""
    from hirqa_ros import nss

    try:
        model = nss.load_pristine(path or str(nss.PRISTINE_FILE))
    except FileNotFoundError as exc:
        log.warning("%s; NIQE and BRISQUE are left out", exc)
        return {}
    return {name: nss.anchor_score_fn(name, model) for name in nss.ANCHORS}


def fit_nss(photos: str, out: str | None) -> int:
    """``--fit-nss``: the NIQE / BRISQUE pristine model of clean frames of the training photos."""
    import numpy as np

    from hirqa_ros import nss

    try:
        frames = nss.pristine_frames(photos)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    if not frames:
        log.error("no readable photos in %s", photos)
        return 2
    model = nss.fit_pristine(frames)
    path = Path(out or nss.PRISTINE_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **model)
    log.info("wrote %s: NIQE pristine MVG of %d sharp patches, BRISQUE variant of %d whole frames, from %s",
             path, model["niqe_patches"], model["brisque_frames"], photos)
    return 0


def frame_sizes(specs: list[str] | None) -> tuple[tuple[int, int], ...]:
    from hirqa_ros.evaluation.synthetic import FRAME_SIZES

    if not specs:
        return FRAME_SIZES
    out = []
    for spec in specs:
        try:
            w, h = (int(v) for v in spec.lower().split("x"))
        except ValueError:
            raise ValueError(f"bad frame size {spec!r}: expected WxH, e.g. 1280x720") from None
        out.append((w, h))
    return tuple(out)


def _protocol(args: argparse.Namespace):
    """(ProtocolConfig, type names, default image folder) of the chosen protocol."""
    from hirqa_ros.evaluation import synthetic

    if args.full_frame:
        config = synthetic.ProtocolConfig(crop=0, resize_side=0, crops_per_image=args.crops_per_image,
                                          seed=args.seed, batch_size=args.batch_size or 4,
                                          frame_sizes=frame_sizes(args.frame_sizes),
                                          noise_floor=args.physical_order, transport_jpeg=args.transport_jpeg)
        types = synthetic.resolve_types(args.types or list(synthetic.FULL_FRAME_TYPES))
        default = DEFAULT_NATIVE_IMAGES if Path(DEFAULT_NATIVE_IMAGES).is_dir() else DEFAULT_IMAGES
        return config, types, default
    config = synthetic.ProtocolConfig(crop=args.crop, resize_side=args.resize_side,
                                      crops_per_image=args.crops_per_image, seed=args.seed,
                                      batch_size=args.batch_size or 32, noise_floor=args.physical_order)
    return config, synthetic.resolve_types(args.types), DEFAULT_IMAGES


def plot_auroc(summaries: dict, path: str) -> None:
    """Grouped bars: AUROC per distortion group and pooled, one bar per score_fn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(summaries)
    groups = [*next(iter(summaries.values()))["per_group"], "pooled"]
    vals = np.array([[s["per_group"][g]["auroc"] if g != "pooled" else s["pooled"]["auroc"] for g in groups]
                     for s in summaries.values()])
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(groups) + 2), 4.5))
    width = 0.8 / len(names)
    x = np.arange(len(groups))
    for i, name in enumerate(names):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, vals[i], width, label=name)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, groups, rotation=25, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("AUROC keep (lv 0-1) vs drop (lv >= 3)")
    ax.set_title("Synthetic protocol: separating usable from degraded frames")
    ax.legend(fontsize=8, ncol=min(6, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from hirqa_ros.artifacts import ArtifactError

    if args.fit_nss:
        return fit_nss(args.fit_nss, args.nss_model)
    if args.no_model and not args.cues:
        log.error("nothing to evaluate: --no-model together with --no-cues")
        return 2
    if args.dataset and not args.root:
        log.error("--dataset needs --root DIR (the dataset folder in its authors' layout)")
        return 2
    try:
        fns, model_info = _score_fns(args)
    except ArtifactError as exc:  # includes NoDefaultModelError
        log.error("%s\n(or run with --no-model to evaluate only the classical cues)", exc)
        return 2
    report: dict = {"model": model_info, "score_fns": list(fns)}
    rc = _run_synthetic(args, fns, model_info, report)
    if rc == 0 and args.dataset:
        rc = _run_benchmark(args, fns, report)
    if rc == 0 and args.json:
        from hirqa_ros.files import write_json

        write_json(args.json, report)  # atomic: an earlier report is replaced only by a complete one
        log.info("wrote %s", args.json)
    return rc


def _run_synthetic(args: argparse.Namespace, fns: dict, model_info: dict | None, report: dict) -> int:
    """The synthetic (or full-frame) protocol into ``report``; the exit code so far."""
    from hirqa_ros.evaluation import synthetic
    from hirqa_ros.evaluation.images import load_folder

    try:
        config, types, default_images = _protocol(args)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    images_dir = args.images or (None if args.dataset else default_images)
    if not images_dir:
        return 0
    try:
        images = load_folder(images_dir, limit=args.max_images)
    except FileNotFoundError as exc:
        hint = " (build it with `hirqa prepare-data`)" if images_dir == default_images else ""
        log.error("%s%s", exc, hint)
        return 2
    if not images:
        log.error("no readable images in %s", images_dir)
        return 2
    _log_protocol(args, config, len(images), images_dir, len(types), model_info)
    ps = synthetic.score_protocol(fns, images, types=types, config=config, progress=not args.no_progress)
    summaries = {name: synthetic.summarize(ps, name) for name in fns}
    print(synthetic.format_tables(summaries))
    report["synthetic"] = {"images": str(images_dir), "views": ps.view_names, "summaries": summaries,
                           "protocol": "full-frame" if config.frame_sizes else "crops"}
    if "model" in fns and len(fns) > 1:
        cmp = synthetic.compare_to_best(summaries, "model")
        report["synthetic"]["model_vs_best_cue"] = cmp
        print("\nmodel vs the best classical cue (pooled): " + "; ".join(
            f"{m} {c['model']:.3f} vs {c['best_other_value']:.3f} ({c['best_other']}): "
            f"{'beats' if c['beats'] else 'does NOT beat'}" for m, c in cmp.items()))
    if "model" in fns and _decisions(args, ps, model_info, report):
        return 2
    _faults(args, ps, report)
    if args.plot:
        plot_auroc(summaries, args.plot)
        log.info("wrote %s", args.plot)
    return 0


def _log_protocol(args: argparse.Namespace, config, n_images: int, images_dir: str, n_types: int,
                  model_info: dict | None) -> None:
    if not config.frame_sizes:
        log.info("synthetic protocol: %d images from %s, %d types, levels 0..5, crop %s, resize_side %s",
                 n_images, images_dir, n_types, args.crop or "whole image", args.resize_side or "native")
        return
    policy = model_info["input_policy"] if model_info else "-"
    log.info("full-frame protocol: %d photos from %s, %d types, levels 0..5, whole frames %s scored with "
             "input policy %s", n_images, images_dir, n_types,
             ", ".join(f"{w}x{h}" for w, h in config.frame_sizes), policy)
    if model_info and policy != "native":
        log.warning("input policy %s: shrinking frames hides blur, noise and compression from the model; "
                    "the model card's policy is what the node uses", policy)


def _decisions(args: argparse.Namespace, ps, model_info: dict, report: dict) -> bool:
    """Calibration and decisions at the card's thresholds into ``report``; True on failure."""
    from hirqa_ros.decision import Thresholds
    from hirqa_ros.evaluation import calibration, decisions, synthetic

    try:
        cal = calibration.calibrate_protocol(ps, "model", args.warn_frr, args.error_frr)
    except ValueError as exc:
        log.error("%s", exc)
        return True
    report["calibration"] = cal.as_dict()
    card = model_info["card_thresholds"]
    dec = decisions.protocol_decisions(ps, "model", Thresholds(card["warn"], card["error"]))
    report["decisions"] = dec
    print(f"\ndecisions at the model card's thresholds (warn {card['warn']:.4f}, error "
          f"{card['error']:.4f}; clean = pristine and level {max(synthetic.KEEP_LEVELS)}, faults = "
          f"level >= {synthetic.DROP_MIN_LEVEL}):\n" + decisions.format_decisions(dec))
    print(f"\nthresholds calibrated on these keep frames: warn {cal.warn:.4f} "
          f"({cal.warn_false_reject_rate:.1%} false rejects, {cal.drop_recall_at_warn:.1%} of drop "
          f"frames caught), error {cal.error:.4f} ({cal.error_false_reject_rate:.1%} false rejects, "
          f"{cal.drop_recall_at_error:.1%} caught); the model card has warn {card['warn']:.4f}, "
          f"error {card['error']:.4f}")
    return False


def _faults(args: argparse.Namespace, ps, report: dict) -> None:
    """The fault class as the doors publish it (gated; the head's arg-max beside it) into ``report``."""
    from hirqa_ros.evaluation import faults

    if "model" not in ps.aux:
        if args.confusion:
            log.warning("--confusion: the model has no fault head, so there is no fault class to plot")
        return
    rep_f = faults.fault_report(ps, "model")
    report["faults"] = rep_f
    print("\n" + faults.format_fault_report(rep_f))
    if args.confusion:
        faults.plot_confusion(rep_f, args.confusion)
        log.info("wrote %s", args.confusion)


def _run_benchmark(args: argparse.Namespace, fns: dict, report: dict) -> int:
    """A public IQA benchmark into ``report``; the exit code."""
    from hirqa_ros.evaluation import datasets

    try:
        bench = datasets.subset(datasets.load_benchmark(args.dataset, args.root), args.limit)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as exc:
        log.error("cannot load %s from %s: %s", args.dataset, args.root, exc)
        return 2
    log.info("benchmark %s: %d images (%d reference keys), labels %s", bench.name, len(bench.items),
             len(bench.keys()), "MOS" if bench.higher_is_better else "DMOS, sign flipped")
    bench_report = datasets.evaluate_benchmark(fns, bench, batch_size=args.batch_size or 32,
                                               progress=not args.no_progress)
    print()
    print(datasets.format_benchmark(bench_report))
    report["benchmark"] = bench_report
    return 0
