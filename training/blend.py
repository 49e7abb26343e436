"""Weight-space blend of a model and a continuation trained from it (WiSE-FT, Wortsman et al. 2022):
every float tensor, BatchNorm statistics included, becomes ``(1 - alpha) * base + alpha * tuned``.

A continuation that learns new faults but forgets some old ones (docs/gpu_training.md, round 3) keeps
much of both when averaged with the model it started from. The blend keeps the base's fault head (it
reads the embedding, so ``hirqa eval --full-frame`` measures it again) and is finalized only when the
full-frame gate passes (pooled AUROC and ladder SROCC both above the base's, same frames):

    python -m hirqa_ros.training.blend write --base models/hirqa-s --tuned runs/cpu_cont/run_keep \\
        --alpha 0.5 --out runs/blend/hirqa-s
    hirqa eval --full-frame --model runs/blend/hirqa-s --json runs/blend/new.json
    hirqa eval --full-frame --model models/hirqa-s --json runs/blend/old.json
    python -m hirqa_ros.training.blend finalize --out runs/blend/hirqa-s \\
        --eval runs/blend/new.json --baseline-eval runs/blend/old.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from pathlib import Path

import yaml

log = logging.getLogger("hirqa.blend")

# sections of the base card that describe the base's own files or numbers, not the blend's
STALE_SECTIONS = ("files", "export", "format", "int8", "metrics")


def blend_state_dicts(base: dict, tuned: dict, alpha: float) -> dict:
    """``(1 - alpha) * base + alpha * tuned`` for float tensors (in fp32); other tensors from ``base``."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if base.keys() != tuned.keys():
        diff = sorted(set(base) ^ set(tuned))
        raise ValueError(f"the two networks have different tensors: {diff[:5]}")
    out = {}
    for k, a in base.items():
        b = tuned[k]
        if a.shape != b.shape:
            raise ValueError(f"{k}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
        out[k] = (1.0 - alpha) * a.float() + alpha * b.float() if a.is_floating_point() else a.clone()
    return out


def write(
    base_dir: str | None, tuned_run: Path, alpha: float, out: Path, hardware: str, name: str | None = None
) -> Path:
    """The blended model directory: weights, ONNX, the base's fault head, a lineage entry; thresholds
    not calibrated until :func:`finalize`."""
    from hirqa_ros.artifacts import CARD_FILE, HUMAN_CARD_FILE, atomic_write_bytes, load_artifact
    from hirqa_ros.constants import uncalibrated_thresholds
    from hirqa_ros.export import _render_human_card, write_model_dir
    from hirqa_ros.heads import FAULT_HEAD_FILE
    from hirqa_ros.training.gpu_run import weights_of_run
    from hirqa_ros.training.head_ship import attach_fault_head, remove_stale_int8
    from hirqa_ros.training.ship import data_card, run_entry

    base = load_artifact(base_dir)
    summary = json.loads((tuned_run / "summary.json").read_text())
    cfg = summary["config"]
    manifest = Path(cfg["data"].get("manifest", "data/pristine/manifest.json"))
    tuned_entry = run_entry(summary, data_card(manifest))
    tuned_entry["hardware"] = hardware
    tuned_entry["loss_weights"] = summary.get("loss_weights")
    tuned_entry["sampler"] = cfg.get("sampler")
    tuned_entry["note"] = "a continuation of the base; used only through the blend below"
    sd = blend_state_dicts(dict(base.state_dict()), weights_of_run(tuned_run), alpha)
    card = {k: v for k, v in base.card.items() if k not in STALE_SECTIONS}
    card["name"] = name or f"{base.variant}-blend"
    card["thresholds"] = uncalibrated_thresholds()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    card["created"] = now
    card["lineage"] = [
        *(base.card.get("lineage") or []),
        tuned_entry,
        {
            "run": "blend",
            "track": "weight-space blend (WiSE-FT) of the base model and a continuation trained from it",
            "finished_at": now,
            "alpha": alpha,
            "formula": "(1 - alpha) * base + alpha * continuation, every float tensor",
            "parent": {"name": base.name, "weights_sha256": base.file_sha256("weights")},
            "continuation": {"run": summary["name"], "folder": str(tuned_run)},
            "fault_head": "the base's, unchanged (fit on the base's embedding; measured again on the blend)",
            "hardware": hardware,
        },
    ]
    description = str(card.get("description", "")).split(" Weights: a blend")[0].strip()
    card["description"] = (
        f"{description} Weights: a blend (alpha {alpha}) of the previous model and a continuation "
        "trained from it."
    )
    out.mkdir(parents=True, exist_ok=True)
    write_model_dir(out, sd, base.variant, card)
    full = yaml.safe_load((out / CARD_FILE).read_text())
    head = base.file("fault_head")
    if head is not None:
        full = attach_fault_head(out, Path(head))
    elif (out / FAULT_HEAD_FILE).exists():
        (out / FAULT_HEAD_FILE).unlink()
    atomic_write_bytes(out / HUMAN_CARD_FILE, _render_human_card(full).encode())
    remove_stale_int8(out)
    load_artifact(out)  # every sha256 checks out
    log.info("wrote %s: alpha %.2f of %s and %s (thresholds not calibrated: run the full-frame eval, then "
             "finalize)", out, alpha, base.path, tuned_run)
    return out


def _full_frame(report: dict, what: str) -> dict:
    syn = report.get("synthetic") or {}
    if syn.get("protocol") != "full-frame":
        raise ValueError(f"{what}: not a `hirqa eval --full-frame` report (protocol {syn.get('protocol')!r})")
    return syn


def finalize(out: Path, new_report: dict, baseline_report: dict) -> bool:
    """Calibrated thresholds, full-frame metrics and tables in the blend's cards, if it passes the gate.

    Returns False (and changes nothing) when it does not improve on the baseline; raises ValueError
    when a report is not full-frame or the two were not made on the same frames."""
    from hirqa_ros.artifacts import CARD_FILE, HUMAN_CARD_FILE, atomic_write_bytes, load_artifact
    from hirqa_ros.evaluation.synthetic import improves
    from hirqa_ros.export import _render_human_card
    from hirqa_ros.training.head_ship import (
        CUE_NAMES,
        calibrated_thresholds,
        fault_metrics,
        fault_section,
        full_frame_metrics,
        table,
    )

    new, old = _full_frame(new_report, "--eval"), _full_frame(baseline_report, "--baseline-eval")
    n, o = new["summaries"]["model"], old["summaries"]["model"]
    if (new["views"], n["config"], list(n["per_type"])) != (old["views"], o["config"], list(o["per_type"])):
        raise ValueError("the two reports were not made on the same frames (views, types or protocol differ)")
    if not improves(n["pooled"], o["pooled"]):
        log.error("the blend does not pass the gate: AUROC %.4f vs %.4f, ladder SROCC %.4f vs %.4f; not "
                  "finalized", n["pooled"]["auroc"], o["pooled"]["auroc"], n["pooled"]["ladder_srocc"],
                  o["pooled"]["ladder_srocc"])
        return False
    art = load_artifact(out)
    card = dict(art.card)
    cues = {k: v for k, v in {**old["summaries"], **new["summaries"]}.items() if k in CUE_NAMES}
    card["thresholds"] = calibrated_thresholds(new_report["calibration"])
    card["metrics"] = {
        "validation_full_frame": full_frame_metrics(
            n, o, "previous_default_pooled", {k: v["pooled"] for k, v in cues.items()}
        )
    }
    if new_report.get("faults"):
        card["metrics"]["fault_class_full_frame"] = fault_metrics(new_report["faults"])
    card["lineage"][-1]["val_full_frame_pooled"] = n["pooled"]
    card["lineage"][-1]["previous_default_pooled"] = o["pooled"]
    atomic_write_bytes(out / CARD_FILE, yaml.safe_dump(card, sort_keys=False).encode())
    report = {"val_new": n, "val_shipped": o, "val_cue_summaries": cues}
    p, q = n["pooled"], o["pooled"]
    lines = [
        "",
        "## Full-frame evaluation (shipping decision)",
        "",
        f"`hirqa eval --full-frame` protocol: {n['n_views']} held-out photos as whole camera frames "
        "(640x480, 1280x720, 1920x1080 in turn), distortions rendered at that resolution, each frame scored "
        f"whole with the card's input policy; {n['n_types']} types x levels 0..5. Columns: this blend, the "
        "previous default (its base), the classical cues. "
        f"Pooled: AUROC {p['auroc']:.3f} vs {q['auroc']:.3f}, ladder SROCC {p['ladder_srocc']:.3f} vs "
        f"{q['ladder_srocc']:.3f}, SROCC {p['srocc']:.3f} vs {q['srocc']:.3f}.",
        "",
    ]
    heads = ("this blend", "previous default")
    lines += table(report, "auroc", "AUROC keep (level 0-1) vs drop (level >= 3)", heads=heads)
    lines += table(report, "ladder_srocc", "ladder SROCC", heads=heads)
    lines += table(report, "srocc", "SROCC pooled across content", heads=heads)
    if new_report.get("faults"):
        lines += fault_section(new_report["faults"])
    atomic_write_bytes(out / HUMAN_CARD_FILE, (_render_human_card(card) + "\n".join(lines)).encode())
    load_artifact(out)
    log.info("finalized %s: AUROC %.4f vs %.4f, ladder SROCC %.4f vs %.4f; thresholds warn %.4f error %.4f",
             out, p["auroc"], q["auroc"], p["ladder_srocc"], q["ladder_srocc"], card["thresholds"]["warn"],
             card["thresholds"]["error"])
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m hirqa_ros.training.blend", description=__doc__.splitlines()[0]
    )
    sub = p.add_subparsers(dest="action", required=True)
    pw = sub.add_parser("write", help="blend a base model directory with a continuation run into --out")
    pw.add_argument("--base", default=None, help="model directory (default: the installed default model)")
    pw.add_argument("--tuned", required=True, help="run folder of a continuation from --base (summary.json)")
    pw.add_argument("--alpha", type=float, default=0.5, help="weight of the continuation, 0..1 (default 0.5)")
    pw.add_argument("--out", required=True, help="model directory to write")
    pw.add_argument("--name", default=None, help="model name in the card (default: VARIANT-blend)")
    pw.add_argument("--hardware", default="2-core dev VM CPU (AMD EPYC), shared with other jobs, no GPU",
                    help="hardware the continuation ran on (for the lineage)")
    pf = sub.add_parser(
        "finalize", help="thresholds + full-frame metrics into --out, only if it passes the gate"
    )
    pf.add_argument("--out", required=True, help="the blend's model directory")
    pf.add_argument("--eval", required=True, help="`hirqa eval --full-frame --json` of the blend")
    pf.add_argument("--baseline-eval", required=True, help="the same for the base model (same frames)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.action == "write":
            write(args.base, Path(args.tuned), args.alpha, Path(args.out), args.hardware, args.name)
            return 0
        ok = finalize(Path(args.out), json.loads(Path(args.eval).read_text()),
                      json.loads(Path(args.baseline_eval).read_text()))
    except (ValueError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
