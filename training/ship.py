"""Turn a finished training run into the shipped model directory (contract 1): weights + ONNX + model card
with data, recipe, hardware, lineage, and (after ``hirqa eval``) validation metrics and calibrated thresholds.

    python -m hirqa_ros.training.ship write   --run runs/hirqa-s-cpu --out models/hirqa-s
    hirqa eval --model models/hirqa-s --json runs/hirqa-s-cpu/eval_val.json
    python -m hirqa_ros.training.ship finalize --run runs/hirqa-s-cpu --out models/hirqa-s \
        --eval runs/hirqa-s-cpu/eval_val.json
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import sys
from pathlib import Path

import yaml

from hirqa_ros.constants import uncalibrated_thresholds

log = logging.getLogger(__name__)

DESCRIPTION = (
    "HiRQA-S (ResNet-18 + attention pooling), an opinion-unaware no-reference image-quality model trained by "
    "the hirqa_ros project from scratch on synthetic distortion ladders of Debian wallpaper photographs. "
    "Score in (0, 1), higher = better."
)
LICENCE = (
    "Apache-2.0 (project licence) for the weights we trained; the training photos come from Debian packages "
    "under GPL-2+, LGPL-3, CC-BY-4.0, CC-BY-SA-3.0/4.0 and CC0-1.0 (see training.data and data/pristine/"
    "manifest.json)"
)


def data_card(manifest_path: Path) -> dict:
    """The card's training-data section from ``prepare-data``'s manifest (packages, licences, splits)."""
    if not manifest_path.is_file():
        return {"manifest": str(manifest_path), "note": "manifest not found"}
    m = json.loads(manifest_path.read_text())
    pkgs: dict = collections.OrderedDict()
    for i in m["images"]:
        p = pkgs.setdefault(
            i["package"],
            {
                "version": i.get("package_version", ""),
                "train": 0,
                "val": 0,
                "licences": collections.Counter(),
            },
        )
        p[i["split"]] += 1
        p["licences"][i.get("licence", {}).get("id", "unknown")] += 1
    for p in pkgs.values():
        p["licences"] = dict(p["licences"])
    return {
        "source": m.get("source", {}),
        "photos": {"train": m["counts"]["train"], "val": m["counts"]["val"]},
        "candidates_excluded": m["counts"]["excluded"],
        "duplicates_removed": m["counts"]["duplicates"],
        "packages": dict(pkgs),
        "policy": "photographs only (JPEG + natural-image statistics + a manual exclude list checked on a "
        "contact sheet), perceptual-hash dedupe, <= 1600 px, content-disjoint ~20 % validation split",
        "never_used": "OpenCV and scikit-image sample images (reserved for independent evaluation)",
    }


def run_entry(summary: dict, data: dict, metrics: dict | None = None) -> dict:
    """One lineage entry for a finished run (its ``summary.json``)."""
    entry = {
        "run": summary["name"],
        "finished_at": summary.get("finished_at"),
        "init": f"from {summary['init_from']}"
        if summary.get("init_from")
        else "from scratch (random init: no ImageNet weights are reachable offline)",
        "steps": summary["step"],
        "images_seen": summary["images_seen"],
        "wall_time_min": round(summary["elapsed_s"] / 60.0, 1),
        "images_per_s": summary["images_per_s"],
        "hardware": summary.get("hardware_note") or summary["hardware"],
        "data": {"photos": data.get("photos"), "packages": list(data.get("packages", {}))},
    }
    if summary.get("parent"):
        entry["parent"] = summary["parent"]
    if metrics:
        entry["val_pooled"] = metrics
    return entry


def build_card(run: Path, eval_report: dict | None = None, hardware_note: str | None = None) -> dict:
    """The ``card`` dict for :func:`hirqa_ros.export.write_model_dir` from a run folder (+ eval report)."""
    summary = json.loads((run / "summary.json").read_text())
    if hardware_note:
        summary["hardware_note"] = hardware_note
    cfg = summary["config"]
    data = data_card(Path(cfg["data"].get("manifest", "data/pristine/manifest.json")))
    training = {
        "recipe": {
            "config": cfg,
            "objective": "ladder ranking + cross-content ranking + pair-of-pairs + "
            "embedding-distance consistency + InfoNCE prompt alignment + weak severity anchor "
            "(training/losses.py; reconstruction, the paper's equations are unpublished)",
            "text_encoder": summary["text_encoder"],
            "loss_weights": summary["loss_weights"],
        },
        "init": "from scratch (random init: no ImageNet weights are reachable offline)"
        if not summary.get("init_from")
        else f"from {summary['init_from']}",
        "steps": summary["step"],
        "stop_reason": summary["stop_reason"],
        "images_seen": summary["images_seen"],
        "wall_time_min": round(summary["elapsed_s"] / 60.0, 1),
        "images_per_s": summary["images_per_s"],
        "hardware": hardware_note or summary["hardware"],
        "device": summary["device"],
        "amp": summary["amp"],
        "data": data,
        "val_during_training": summary.get("val_history", []),
    }
    card: dict = {
        "name": cfg.get("name", "hirqa-s"),
        "description": DESCRIPTION,
        "input_policy": "native",
        "licence": LICENCE,
        "training": training,
        "thresholds": uncalibrated_thresholds(),
    }
    pooled = None
    if eval_report:
        syn = eval_report["synthetic"]
        summ = syn["summaries"]
        metrics = {
            "protocol": {
                "images": syn["images"],
                "views": len(syn["views"]),
                **summ["model"]["config"],
                "types": summ["model"]["n_types"],
                "levels": "0..5",
                "keep": "levels 0-1",
                "drop": "levels >= 3",
            },
            "pooled": {n: s["pooled"] for n, s in summ.items()},
            "per_group": {
                n: {
                    g: {"auroc": v["auroc"], "ladder_srocc": v["ladder_srocc"], "srocc": v["srocc"]}
                    for g, v in s["per_group"].items()
                }
                for n, s in summ.items()
            },
            "model_vs_best_cue": syn.get("model_vs_best_cue", {}),
        }
        card["metrics"] = {"validation_synthetic": metrics}
        cal = eval_report.get("calibration")
        if cal:
            card["thresholds"] = {
                "warn": round(cal["warn"], 4),
                "error": round(cal["error"], 4),
                "calibrated": True,
                "rule": "warn: <= 5 % of keep frames (level 0-1) below; error: <= 1 %",
                "calibration": cal,
            }
        pooled = {k: round(v, 4) for k, v in summ["model"]["pooled"].items()}
    lineage = [dict(e) for e in summary.get("lineage") or []]
    for e in lineage:  # earlier runs of this same machine (their checkpoint is here): same hardware note
        if (
            hardware_note
            and str(e.get("hardware", "")).startswith("CPU (")
            and Path(e.get("checkpoint", "")).exists()
        ):
            e["hardware"] = hardware_note
    lineage.append(run_entry(summary, data, pooled))
    card["lineage"] = lineage
    runs = [e for e in lineage if isinstance(e, dict) and "steps" in e]
    training["all_runs"] = {
        "runs": len(runs),
        "steps": sum(int(e["steps"]) for e in runs),
        "images_seen": sum(int(e.get("images_seen", 0)) for e in runs),
        "wall_time_min": round(sum(float(e.get("wall_time_min", 0)) for e in runs), 1),
        "first_init": runs[0].get("init", "") if runs else "",
    }
    return card


def tables_markdown(eval_report: dict) -> str:
    """Model vs each classical cue: AUROC and ladder SROCC per group and pooled."""
    summ = eval_report["synthetic"]["summaries"]
    names = list(summ)
    groups = list(summ["model"]["per_group"])
    out = []
    for metric, title in (
        ("auroc", "AUROC keep (level 0-1) vs drop (level >= 3)"),
        ("ladder_srocc", "ladder SROCC (score vs severity within each ladder)"),
        ("srocc", "SROCC pooled across content"),
    ):
        out += [f"### {title}", "", "| group | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for g in [*groups, "POOLED"]:
            vals = [
                summ[n]["pooled"][metric] if g == "POOLED" else summ[n]["per_group"][g][metric] for n in names
            ]
            best = max(vals)
            cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in vals]
            out.append(f"| {'**pooled**' if g == 'POOLED' else g} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _data_line(d: dict) -> str:
    if "photos" not in d:
        return f"- Data: {d.get('note', 'unknown')} ({d.get('manifest', '')})."
    pkgs = ", ".join(
        f"`{k}` {v['version']} ({v['train']}+{v['val']}, " + ", ".join(v["licences"]) + ")"
        for k, v in d["packages"].items()
    )
    return (
        f"- Data: {d['photos']['train']} training + {d['photos']['val']} held-out validation photographs "
        f"({d.get('source', {}).get('kind', '')}: {pkgs})."
    )


def human_sections(card: dict, eval_report: dict | None) -> str:
    t = card["training"]
    d = t["data"]
    lines = [
        "",
        "## How this model was made",
        "",
        _data_line(d),
        f"- Training, all runs: {t['all_runs']['runs']} run(s), {t['all_runs']['steps']} steps, "
        f"{t['all_runs']['images_seen']} distorted images, {t['all_runs']['wall_time_min']} min; "
        f"first run {t['all_runs']['first_init']}"
        + (
            "; no ImageNet or other pretrained weights (none are reachable offline)."
            if str(t["all_runs"]["first_init"]).startswith("from scratch")
            else "."
        ),
        *[
            f"  - run {i + 1}: {e.get('init', '')}, {e['steps']} steps, {e.get('images_seen', '?')} images, "
            f"{e.get('wall_time_min', '?')} min on {e.get('hardware', '?')}"
            + (f" ({e['note']})" if e.get("note") else "")
            for i, e in enumerate(e for e in card["lineage"] if isinstance(e, dict) and "steps" in e)
        ],
        f"- Last run: {t['steps']} steps ({t['images_seen']} distorted images, {t['wall_time_min']} min, "
        f"{t['images_per_s']} images/s) on {t['hardware']}, config in `training.recipe.config`.",
        f"- Loss weights: {t['recipe']['loss_weights']}.",
        f"- Text encoder for the alignment loss (training only): {t['recipe']['text_encoder']}.",
        "",
    ]
    if eval_report:
        syn = eval_report["synthetic"]
        cfg = syn["summaries"]["model"]["config"]
        lines += [
            "## Validation on held-out photos (never trained on)",
            "",
            f"`hirqa eval` synthetic protocol: {len(syn['views'])} views of the validation photos "
            f"(crop {cfg['crop']}, resize_side {cfg['resize_side']}, seed {cfg['seed']}), "
            f"{syn['summaries']['model']['n_types']} distortion types x levels 0..5, model beside each "
            "classical cue (best per row in bold).",
            "",
            tables_markdown(eval_report),
        ]
        cmp = syn.get("model_vs_best_cue") or {}
        if cmp:
            lines += [
                "Model vs the best cue, pooled: "
                + "; ".join(
                    f"{m} {c['model']:.3f} vs {c['best_other_value']:.3f} ({c['best_other']}): "
                    f"{'beats' if c['beats'] else 'does NOT beat'}"
                    for m, c in cmp.items()
                ),
                "",
            ]
    th = card["thresholds"]
    if th.get("calibrated"):
        c = th["calibration"]
        lines += [
            "## Thresholds",
            "",
            f"OK >= {th['warn']}, WARN in [{th['error']}, {th['warn']}), ERROR < {th['error']}: "
            f"{c['warn_false_reject_rate']:.1%} of keep frames fall below warn "
            f"({c['drop_recall_at_warn']:.1%} of drop frames caught), {c['error_false_reject_rate']:.1%} "
            f"below error ({c['drop_recall_at_error']:.1%} caught); calibrated on the validation split.",
            "",
        ]
    return "\n".join(lines)


def write(run: Path, out: Path, eval_report: dict | None = None, hardware_note: str | None = None) -> Path:
    import torch

    from hirqa_ros.artifacts import HUMAN_CARD_FILE, atomic_write_bytes
    from hirqa_ros.export import write_model_dir

    final = torch.load(run / "final.pt", map_location="cpu", weights_only=True)
    card = build_card(run, eval_report, hardware_note)
    card["created"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = write_model_dir(out, final["model_state_dict"], final["variant"], card)
    md = (path / HUMAN_CARD_FILE).read_text() + human_sections(card, eval_report)
    atomic_write_bytes(path / HUMAN_CARD_FILE, md.encode())
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hirqa_ros.training.ship", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["write", "finalize"])
    p.add_argument("--run", required=True, help="finished run folder (summary.json, final.pt)")
    p.add_argument("--out", default="models/hirqa-s", help="model directory to write")
    p.add_argument("--eval", default=None, help="JSON written by `hirqa eval --json` (finalize)")
    p.add_argument("--hardware", default=None, help="hardware description for the card")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = json.loads(Path(args.eval).read_text()) if args.eval else None
    if args.action == "finalize" and report is None:
        p.error("finalize needs --eval")
    path = write(Path(args.run), Path(args.out), report, args.hardware)
    card = yaml.safe_load((path / "model.yaml").read_text())
    print(
        f"{path}: thresholds {card['thresholds']['warn']}/{card['thresholds']['error']} "
        f"(calibrated: {card['thresholds'].get('calibrated')})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
