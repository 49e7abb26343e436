"""Release a finished training run as a model directory: the card (data, recipe, hardware, lineage;
after ``hirqa eval``, validation metrics and calibrated thresholds) and its MODEL_CARD.md sections."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hirqa_ros.constants import uncalibrated_thresholds
from hirqa_ros.training.release.cards import (
    calibrated_thresholds,
    data_card,
    description,
    init_text,
    licence,
    run_entry,
)
from hirqa_ros.training.release.tables import metric_table


def _training(summary: dict, data: dict, hardware_note: str | None) -> dict:
    """The card's ``training`` section: recipe, init, steps, speed, hardware, data, validation history."""
    return {
        "recipe": {
            "config": summary["config"],
            "objective": "ladder ranking + cross-content ranking + pair-of-pairs + "
            "embedding-distance consistency + InfoNCE prompt alignment + weak severity anchor "
            "(training/fit/losses.py; reconstruction, the paper's equations are unpublished)",
            # a run packed from its last checkpoint (cut short) has the config, not the run's own record
            "text_encoder": summary.get("text_encoder", summary["config"].get("text", {}).get("encoder")),
            "loss_weights": summary.get("loss_weights", summary["config"].get("losses")),
        },
        "init": init_text(summary),
        "steps": summary["step"],
        "stop_reason": summary.get("stop_reason"),
        "images_seen": summary["images_seen"],
        "wall_time_min": round(summary["elapsed_s"] / 60.0, 1),
        "images_per_s": summary.get("images_per_s"),
        "hardware": hardware_note or summary.get("hardware"),
        "device": summary.get("device"),
        "amp": summary.get("amp"),
        "data": data,
        "val_during_training": summary.get("val_history", []),
    }


def synthetic_metrics(eval_report: dict) -> dict:
    """The card's ``metrics.validation_synthetic`` from a ``hirqa eval --json`` report (crop protocol)."""
    syn = eval_report["synthetic"]
    summ = syn["summaries"]
    return {
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


def _lineage(summary: dict, data: dict, pooled: dict | None, hardware_note: str | None) -> list:
    """The parent's lineage, then this run (earlier runs of this same machine get the hardware note)."""
    lineage = [dict(e) for e in summary.get("lineage") or []]
    for e in lineage:  # earlier runs of this same machine (their checkpoint is here): same hardware note
        if (
            hardware_note
            and str(e.get("hardware", "")).startswith("CPU (")
            and Path(e.get("checkpoint", "")).exists()
        ):
            e["hardware"] = hardware_note
    lineage.append(run_entry(summary, data, pooled))
    return lineage


def _all_runs(lineage: list) -> dict:
    runs = [e for e in lineage if isinstance(e, dict) and "steps" in e]
    return {
        "runs": len(runs),
        "steps": sum(int(e["steps"]) for e in runs),
        "images_seen": sum(int(e.get("images_seen", 0)) for e in runs),
        "wall_time_min": round(sum(float(e.get("wall_time_min", 0)) for e in runs), 1),
        "first_init": runs[0].get("init", "") if runs else "",
    }


def build_card(run: Path, eval_report: dict | None = None, hardware_note: str | None = None) -> dict:
    """The ``card`` for :func:`hirqa_ros.export.model_dir.write_model_dir` from a run folder (+ eval)."""
    summary = json.loads((run / "summary.json").read_text())
    if hardware_note:
        summary["hardware_note"] = hardware_note
    cfg = summary["config"]
    data = data_card(Path(cfg["data"].get("manifest", "data/pristine/manifest.json")))
    training = _training(summary, data, hardware_note)
    card: dict = {
        "name": cfg.get("name", "hirqa-s"),
        "description": description(summary.get("variant") or cfg["variant"]),
        "input_policy": "native",
        "licence": licence(summary.get("variant") or cfg["variant"]),
        "training": training,
        "thresholds": uncalibrated_thresholds(),
    }
    pooled = None
    if eval_report:
        card["metrics"] = {"validation_synthetic": synthetic_metrics(eval_report)}
        cal = eval_report.get("calibration")
        if cal:
            card["thresholds"] = calibrated_thresholds(cal, full_frame=False)
        pooled = {k: round(v, 4) for k, v in eval_report["synthetic"]["summaries"]["model"]["pooled"].items()}
    card["lineage"] = _lineage(summary, data, pooled, hardware_note)
    training["all_runs"] = _all_runs(card["lineage"])
    return card


def tables_markdown(eval_report: dict) -> str:
    """Model vs each classical cue: AUROC, ladder SROCC and SROCC per group and pooled."""
    summ = eval_report["synthetic"]["summaries"]
    out: list[str] = []
    for metric, title in (
        ("auroc", "AUROC keep (level 0-1) vs drop (level >= 3)"),
        ("ladder_srocc", "ladder SROCC (score vs severity within each ladder)"),
        ("srocc", "SROCC pooled across content"),
    ):
        out += metric_table(summ, metric, title, level=3)
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


def release_run(run: Path, out: Path, eval_report: dict | None = None,
                hardware_note: str | None = None) -> Path:
    """The model directory of a finished run (``final.pt``, ``summary.json``); thresholds calibrated
    when ``eval_report`` (``hirqa eval --json``) is given."""
    import torch

    from hirqa_ros.training.release.model_dir import write_model

    final = torch.load(run / "final.pt", map_location="cpu", weights_only=True)
    card = build_card(run, eval_report, hardware_note)
    card["created"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_model(out, final["model_state_dict"], final["variant"], card,
                sections=human_sections(card, eval_report))
    return out
