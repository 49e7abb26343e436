"""Release refitted heads (``hirqa release heads``): the parent model with the new score head ``fc.0``
(or the parent's, when the refit did not improve), the fault head file, full-frame-calibrated thresholds,
a lineage entry for the CPU head-refit track and the full-frame tables in MODEL_CARD.md."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np

from hirqa_ros.training.release.cards import (
    calibrated_thresholds,
    compare_columns,
    fault_metrics,
    full_frame_metrics,
    full_frame_protocol,
    full_frame_section,
    others_text,
)

log = logging.getLogger("hirqa.release")


def card_sections(report: dict, keep: bool = False) -> str:
    """MODEL_CARD.md's full-frame section of a head release (``report``: ``hirqa heads fit``'s report)."""
    new, old = report["val_new"], report["val_shipped"]
    n, o = new["pooled"], old["pooled"]
    intro = full_frame_protocol(new)
    cues = report.get("val_cue_summaries")
    if keep:  # the refit was not shipped: this model is the previous fc.0
        columns = compare_columns(old, new, ("this model", "refit fc.0 (not shipped)"), cues)
        paragraph = (
            f"{intro} Columns: this model; the score head `fc.0` refit on CPU on the frozen embedding "
            f"(training/heads/fit.py), which was NOT shipped: it raised pooled AUROC ({n['auroc']:.3f} vs "
            f"{o['auroc']:.3f}) and SROCC across content ({n['srocc']:.3f} vs {o['srocc']:.3f}) but lowered "
            f"the ladder SROCC ({n['ladder_srocc']:.3f} vs {o['ladder_srocc']:.3f}), and the rule is to ship "
            f"only when both AUROC and ladder SROCC improve{others_text(columns)}."
        )
    else:
        columns = compare_columns(new, old, ("new (this model)", "previous default"), cues)
        paragraph = (
            f"{intro} Columns: this model, the previous default (same network, previous `fc.0`)"
            f"{others_text(columns)}. Pooled: AUROC {n['auroc']:.3f} vs {o['auroc']:.3f}, ladder SROCC "
            f"{n['ladder_srocc']:.3f} vs {o['ladder_srocc']:.3f}, SROCC {n['srocc']:.3f} vs {o['srocc']:.3f}."
        )
    return full_frame_section(paragraph, columns, report.get("fault_val"))


def photo_summary(manifest: Path) -> dict:
    """Per package of a ``hirqa prepare-data`` manifest: training and validation photo counts and licences."""
    data = json.loads(Path(manifest).read_text())
    out: dict = {}
    for img in data.get("images", []):
        pkg = out.setdefault(img["package"], {"train": 0, "val": 0, "licences": []})
        pkg[img["split"]] = pkg.get(img["split"], 0) + 1
        lic = (img.get("licence") or {}).get("id", "unknown")
        if lic not in pkg["licences"]:
            pkg["licences"].append(lic)
    return out


def photo_section(summary: dict, manifest: str, sha256: str) -> str:
    """MODEL_CARD.md's table of the photos the heads were fitted on (``photo_summary``)."""
    rows = "\n".join(f"| {pkg} | {d['train']} | {d['val']} | {'; '.join(d['licences'])} |"
                     for pkg, d in sorted(summary.items()))
    n_tr = sum(d["train"] for d in summary.values())
    n_va = sum(d["val"] for d in summary.values())
    return (f"\n\n## Photos the heads were fitted on\n\n{n_tr} training photos (the heads' training data) "
            f"and {n_va} validation photos (the release gate only), from Debian packages; manifest "
            f"`{manifest}` (sha256 `{sha256}`, made by `hirqa prepare-data --round3`: source, licence and "
            "checksum per photo).\n\n"
            f"| package | training | validation | licences |\n|---|---:|---:|---|\n{rows}\n")


def _side_by_side(runs: dict) -> dict:
    """Pooled metrics, decisions and fault-family accuracy of candidate and shipped heads per held-out run."""
    keys = ("pooled", "decisions", "fault_drop_level", "fault_pristine_none")
    return {run: {k: {f: x[f] for f in keys} for k, x in r.items()} for run, r in runs.items()}


def _lineage_entry(report: dict, parent, hardware: str, keep: bool, note: str | None) -> dict:
    this = "val_shipped" if keep else "val_new"
    return {
        "run": "head-refit-cpu",
        "track": "CPU head refit on the frozen embedding (issues 9.3, 10.1); backbone, pooling unchanged",
        "finished_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parent": {"name": parent.name, "weights_sha256": parent.file_sha256("weights")},
        "data": report.get("train_data", "embeddings of ladders rendered at camera pixel scale on the "
                           "TRAINING photos; the validation photos only for the report"),
        "score_head": {
            "objective": "within-ladder rank + keep-vs-drop + cross-content pairs + anchor + L2 to "
            "the previous fc.0",
            "config": report.get("score_config"),
            "shipped": not keep,
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
        **({"val_protocol": {k: report["val_new"]["config"][k] for k in ("frame_sizes", "noise_floor")}}
           if "config" in report["val_new"] else {}),
        **({"release_gate": report["gate"]} if report.get("gate") else {}),
        **({"side_by_side_pooled": _side_by_side(report["side_by_side"])}
           if report.get("side_by_side") else {}),
        **({"photo_manifest": report["photo_manifest"]} if report.get("photo_manifest") else {}),
        **({"note": note} if note else {}),
    }


def heads_card(report: dict, parent, hardware: str, keep: bool, note: str | None) -> dict:
    """The parent's card with the heads' thresholds, full-frame metrics, lineage and description."""
    this, other = ("val_shipped", "val_new") if keep else ("val_new", "val_shipped")
    # the int8 entry records the previous heads' accuracy: `hirqa export --int8` remakes it afterwards
    card = {k: v for k, v in parent.card.items() if k not in ("files", "export", "format", "int8")}
    card["thresholds"] = calibrated_thresholds(report["calibration_shipped" if keep else "calibration_new"])
    metrics = dict(card.get("metrics") or {})
    if not keep:
        metrics.pop("validation_synthetic", None)  # crop-protocol numbers of the previous fc.0
    metrics["validation_full_frame"] = full_frame_metrics(
        report[this], report[other], "refit_fc0_not_shipped_pooled" if keep else "previous_default_pooled",
        report.get("val_cues", {}),
    )
    if report.get("fault_val"):
        metrics["fault_class_full_frame"] = fault_metrics(report["fault_val"])
    card["metrics"] = metrics
    card["lineage"] = [*(card.get("lineage") or []), _lineage_entry(report, parent, hardware, keep, note)]
    addition = (
        " With a fault-class head on the frozen embedding (fault_head.npz)."
        if keep
        else " Score head fc.0 refit on CPU on the frozen embedding (full-frame ladders);"
        " with a fault-class head."
    )
    description = str(card.get("description", "")).strip()
    card["description"] = description if addition.strip() in description else (description + addition).strip()
    return card


def release_heads(heads: Path, model: str | None, out: Path, hardware: str, note: str | None = None,
                  keep_score_head: bool = False, manifest: Path | None = None) -> Path:
    """The model directory ``out``: ``model``'s network with the heads of ``heads`` (``hirqa heads fit``'s
    output folder); ``keep_score_head`` keeps the parent's ``fc.0`` and ships the fault head only;
    ``manifest``: the training photos' manifest, referenced (path, sha256) in the lineage."""
    import torch

    from hirqa_ros.artifacts import load_artifact, sha256_file
    from hirqa_ros.heads import FAULT_HEAD_FILE
    from hirqa_ros.training.release.model_dir import write_model

    report = json.loads((heads / "report.json").read_text())
    photos = ""
    if manifest is not None:
        summary = photo_summary(manifest)
        sha = sha256_file(manifest)
        report["photo_manifest"] = {"path": str(manifest), "sha256": sha, "packages": summary}
        photos = photo_section(summary, str(manifest), sha)
    art = load_artifact(model)
    sd = dict(art.state_dict())
    if not keep_score_head:
        z = np.load(heads / "score_head.npz")
        sd["fc.0.weight"] = torch.from_numpy(z["weight"].reshape(1, -1).astype(np.float32))
        sd["fc.0.bias"] = torch.from_numpy(np.asarray(z["bias"], np.float32).reshape(1))
    card = heads_card(report, art, hardware, keep_score_head, note)
    write_model(out, sd, art.variant, card, fault_head=heads / FAULT_HEAD_FILE,
                sections=card_sections(report, keep_score_head) + photos)
    log.info("shipped %s", out)
    return out
