"""Ship refitted heads: a model directory with the new ``fc.0`` (authors' format, fp16), a re-exported
ONNX (the project's exporter), the fault head file (sha256 in the card), full-frame-calibrated thresholds,
a lineage entry for the CPU head-refit track and the full-frame tables in MODEL_CARD.md.

    python -m hirqa_ros.training.head_ship --heads runs/heads --model models/hirqa-s --out models/hirqa-s \\
        --hardware "2-core dev VM CPU (AMD EPYC), shared with other jobs, no GPU"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import yaml

log = logging.getLogger("hirqa.head_ship")

CUE_NAMES = ("laplacian_var", "tenengrad", "exposure", "dark_channel", "noise")


def table(
    report: dict, metric: str, title: str, keep: bool = False, heads: tuple[str, str] | None = None
) -> list[str]:
    """Markdown table of one metric per type and group: this model, the other, the classical cues."""
    new, old = report["val_new"], report["val_shipped"]
    cues = report.get("val_cue_summaries") or {}
    if keep:  # the refit was not shipped: this model is the previous fc.0
        new, old = old, new
    if heads is None:
        kept, refit = ("this model", "refit fc.0 (not shipped)"), ("new (this model)", "previous default")
        heads = kept if keep else refit
    cols = [*heads, *[c for c in CUE_NAMES if c in cues]]
    lines = [
        f"#### {title}",
        "",
        "| type / group | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]

    def row(label: str, values: list[float]) -> str:
        best = max(values)
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in values]
        return f"| {label} | " + " | ".join(cells) + " |"

    srcs = [new, old, *[cues[c] for c in CUE_NAMES if c in cues]]
    for group, g in new["per_group"].items():
        for t in g["types"]:
            lines.append(row(t, [s["per_type"][t][metric] for s in srcs]))
        lines.append(row(f"**[{group}]**", [s["per_group"][group][metric] for s in srcs]))
    lines.append(row("**POOLED**", [s["pooled"][metric] for s in srcs]))
    return [*lines, ""]


def fault_section(frep: dict) -> list[str]:
    """Markdown section of the fault head's full-frame accuracy per class and per type."""
    lines = [
        "## Fault class (fault_head.npz)",
        "",
        f"Held-out full-frame protocol, frames with severity >= {frep['min_level']}: "
        f"**{frep['accuracy_drop_level']:.1%}** get the right class; pristine frames called `none`: "
        f"{frep['pristine_none']:.1%}.",
        "",
        "| class | accuracy | frames |",
        "|---|---:|---:|",
    ]
    for c, d in frep["per_class"].items():
        lines.append(f"| `{c}` | {d['accuracy']:.3f} | {d['n']} |")
    lines += ["", "| type | class | accuracy (severity >= 3) |", "|---|---|---:|"]
    for t, d in frep["per_type"].items():
        lines.append(f"| {t} | `{d['class']}` | {d['accuracy']:.3f} |")
    return [*lines, ""]


def card_sections(report: dict, keep: bool = False) -> str:
    n = report["val_new"]["pooled"]
    o = report["val_shipped"]["pooled"]
    if keep:
        return _kept_sections(report)
    lines = [
        "",
        "## Full-frame evaluation (shipping decision)",
        "",
        f"`hirqa eval --full-frame` protocol: {report['val_new']['n_views']} held-out photos as whole camera "
        "frames (640x480, 1280x720, 1920x1080 in turn), distortions rendered at that resolution, each frame "
        f"scored whole with the card's input policy; {report['val_new']['n_types']} types x levels 0..5. "
        "Columns: this model, the previous default (same network, previous `fc.0`), the classical cues. "
        f"Pooled: AUROC {n['auroc']:.3f} vs {o['auroc']:.3f}, ladder SROCC {n['ladder_srocc']:.3f} vs "
        f"{o['ladder_srocc']:.3f}, SROCC {n['srocc']:.3f} vs {o['srocc']:.3f}.",
        "",
    ]
    lines += table(report, "auroc", "AUROC keep (level 0-1) vs drop (level >= 3)")
    lines += table(report, "ladder_srocc", "ladder SROCC")
    lines += table(report, "srocc", "SROCC pooled across content")
    if report.get("fault_val"):
        lines += fault_section(report["fault_val"])
    return "\n".join(lines)


def _kept_sections(report: dict) -> str:
    s, r = report["val_shipped"]["pooled"], report["val_new"]["pooled"]
    lines = [
        "",
        "## Full-frame evaluation (shipping decision)",
        "",
        f"`hirqa eval --full-frame` protocol: {report['val_new']['n_views']} held-out photos as whole "
        "camera frames (640x480, 1280x720, 1920x1080 in turn), distortions rendered at that resolution, "
        f"each frame scored whole with the card's input policy; {report['val_new']['n_types']} types x "
        "levels 0..5. Columns: this model; the score head `fc.0` refit on CPU on the frozen embedding "
        f"(training/head_fit.py), which was NOT shipped: it raised pooled AUROC ({r['auroc']:.3f} vs "
        f"{s['auroc']:.3f}) and SROCC across content ({r['srocc']:.3f} vs {s['srocc']:.3f}) but lowered "
        f"the ladder SROCC ({r['ladder_srocc']:.3f} vs {s['ladder_srocc']:.3f}), and the rule is to ship "
        "only when both AUROC and ladder SROCC improve; "
        "the classical cues.",
        "",
    ]
    lines += table(report, "auroc", "AUROC keep (level 0-1) vs drop (level >= 3)", keep=True)
    lines += table(report, "ladder_srocc", "ladder SROCC", keep=True)
    lines += table(report, "srocc", "SROCC pooled across content", keep=True)
    if report.get("fault_val"):
        lines += fault_section(report["fault_val"])
    return "\n".join(lines)


def calibrated_thresholds(cal: dict) -> dict:
    """The card's thresholds from ``hirqa eval``'s full-frame calibration."""
    return {
        "warn": round(cal["warn"], 4),
        "error": round(cal["error"], 4),
        "calibrated": True,
        "rule": "warn: <= 5 % of keep frames (level 0-1) below; error: <= 1 %",
        "calibration": "full-frame protocol, validation keep frames (pristine + level 1): "
        f"warn rejects {cal['warn_false_reject_rate']:.1%} of them "
        f"({cal['drop_recall_at_warn']:.1%} of drop frames caught), error "
        f"{cal['error_false_reject_rate']:.1%} ({cal['drop_recall_at_error']:.1%})",
    }


def full_frame_metrics(this: dict, other: dict, other_key: str, cues_pooled: dict) -> dict:
    """The card's ``metrics.validation_full_frame`` from two full-frame summaries (this model, another)."""
    return {
        "pooled": this["pooled"],
        "per_type_auroc": {t: round(v["auroc"], 4) for t, v in this["per_type"].items()},
        "per_type_ladder_srocc": {t: round(v["ladder_srocc"], 4) for t, v in this["per_type"].items()},
        other_key: other["pooled"],
        "cues_pooled": cues_pooled,
    }


def fault_metrics(frep: dict) -> dict:
    """The card's ``metrics.fault_class_full_frame`` from a fault report (``hirqa eval``'s ``faults``)."""
    return {
        "accuracy_severity_ge_3": round(frep["accuracy_drop_level"], 4),
        "pristine_none": round(frep["pristine_none"], 4),
        "per_class": {c: round(d["accuracy"], 4) for c, d in frep["per_class"].items()},
    }


def attach_fault_head(out: Path, source: Path) -> dict:
    """Copy a fault head file into a model directory and list it (sha256) in its card; returns the card."""
    from hirqa_ros.artifacts import CARD_FILE, atomic_write_bytes, sha256_file
    from hirqa_ros.heads import FAULT_HEAD_FILE, FAULT_HEAD_KEY, FaultHead

    head = FaultHead.load(source)
    if source.resolve() != (out / FAULT_HEAD_FILE).resolve():
        shutil.copyfile(source, out / FAULT_HEAD_FILE)
    full = yaml.safe_load((out / CARD_FILE).read_text())
    full["files"][FAULT_HEAD_KEY] = {
        "path": FAULT_HEAD_FILE,
        "sha256": sha256_file(out / FAULT_HEAD_FILE),
        "bytes": (out / FAULT_HEAD_FILE).stat().st_size,
    }
    full["fault_head"] = {
        "file": FAULT_HEAD_FILE,
        "classes": list(head.classes),
        "input": "embedding (1024-d)",
        "layers": len(head.layers),
        "temperature": round(head.temperature, 4),
    }
    atomic_write_bytes(out / CARD_FILE, yaml.safe_dump(full, sort_keys=False).encode())
    return full


def remove_stale_int8(out: Path) -> None:
    """Delete an int8 model made for other weights or heads (``hirqa export --int8`` remakes it)."""
    from hirqa_ros.quantize import INT8_FILE

    stale = out / INT8_FILE
    if stale.exists():
        stale.unlink()
        log.info("removed %s (made for the previous weights or heads): run `hirqa export --model %s --int8`",
                 stale, out)


def ship(
    heads: Path,
    model: str | None,
    out: Path,
    hardware: str,
    note: str | None = None,
    keep_score_head: bool = False,
) -> Path:
    import torch

    from hirqa_ros.artifacts import HUMAN_CARD_FILE, atomic_write_bytes, load_artifact
    from hirqa_ros.export import _render_human_card, write_model_dir
    from hirqa_ros.heads import FAULT_HEAD_FILE

    report = json.loads((heads / "report.json").read_text())
    art = load_artifact(model)
    sd = dict(art.state_dict())
    if not keep_score_head:
        z = np.load(heads / "score_head.npz")
        sd["fc.0.weight"] = torch.from_numpy(z["weight"].reshape(1, -1).astype(np.float32))
        sd["fc.0.bias"] = torch.from_numpy(np.asarray(z["bias"], np.float32).reshape(1))
    this, other = ("val_shipped", "val_new") if keep_score_head else ("val_new", "val_shipped")
    # the int8 entry records the previous heads' accuracy: `hirqa export --int8` remakes it afterwards
    card = {k: v for k, v in art.card.items() if k not in ("files", "export", "format", "int8")}
    cal = report["calibration_shipped" if keep_score_head else "calibration_new"]
    card["thresholds"] = calibrated_thresholds(cal)
    metrics = dict(card.get("metrics") or {})
    if not keep_score_head:
        metrics.pop("validation_synthetic", None)  # crop-protocol numbers of the previous fc.0
    metrics["validation_full_frame"] = full_frame_metrics(
        report[this],
        report[other],
        "refit_fc0_not_shipped_pooled" if keep_score_head else "previous_default_pooled",
        report.get("val_cues", {}),
    )
    if report.get("fault_val"):
        metrics["fault_class_full_frame"] = fault_metrics(report["fault_val"])
    card["metrics"] = metrics
    lineage = list(card.get("lineage") or [])
    lineage.append(
        {
            "run": "head-refit-cpu",
            "track": "CPU head refit on the frozen embedding (issues 9.3, 10.1); backbone, pooling unchanged",
            "finished_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "parent": {"name": art.name, "weights_sha256": art.file_sha256("weights")},
            "data": report.get("train_data", "embeddings of ladders rendered at camera pixel scale on the "
                               "TRAINING photos; the validation photos only for the report"),
            "score_head": {
                "objective": "within-ladder rank + keep-vs-drop + cross-content pairs + anchor + L2 to "
                "the previous fc.0",
                "config": report.get("score_config"),
                "shipped": not keep_score_head,
                "val_full_frame_pooled": report["val_new"]["pooled"],
            },
            "fault_head": {
                "config": report.get("fault_config"),
                "temperature": report.get("fault_temperature"),
                **({"extra_training_data": report["fault_extra_train"]}
                   if report.get("fault_extra_train") else {}),
            },
            "hardware": hardware,
            "val_full_frame_pooled": report[this]["pooled"],
            **({"note": note} if note else {}),
        }
    )
    card["lineage"] = lineage
    addition = (
        " With a fault-class head on the frozen embedding (fault_head.npz)."
        if keep_score_head
        else " Score head fc.0 refit on CPU on the frozen embedding (full-frame ladders);"
        " with a fault-class head."
    )
    description = str(card.get("description", "")).strip()
    card["description"] = description if addition.strip() in description else (description + addition).strip()
    out.mkdir(parents=True, exist_ok=True)
    write_model_dir(out, sd, art.variant, card)
    full = attach_fault_head(out, heads / FAULT_HEAD_FILE)
    human = _render_human_card(full) + card_sections(report, keep_score_head)
    atomic_write_bytes(out / HUMAN_CARD_FILE, human.encode())
    remove_stale_int8(out)
    load_artifact(out)  # every sha256 checks out
    log.info("shipped %s", out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heads", required=True, help="output folder of training/head_fit.py")
    p.add_argument("--model", default=None, help="parent model directory (default: the installed default)")
    p.add_argument("--out", required=True)
    p.add_argument("--hardware", default="2-core dev VM CPU (AMD EPYC), shared with other jobs, no GPU")
    p.add_argument("--note", default=None)
    p.add_argument(
        "--keep-score-head",
        action="store_true",
        help="keep the parent's fc.0 (the refit did not improve): ship the fault head only",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ship(Path(args.heads), args.model, Path(args.out), args.hardware, args.note, args.keep_score_head)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
