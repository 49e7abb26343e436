"""What the model cards say, shared by the three kinds of release: the training data and run entries
of the lineage, calibrated thresholds, the card's metrics and the Markdown sections of MODEL_CARD.md."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from hirqa_ros.training.release.tables import METRICS, metric_table

CUE_NAMES = ("laplacian_var", "tenengrad", "exposure", "dark_channel", "noise")
ANCHOR_NAMES = ("niqe", "brisque")  # the classical no-reference models (hirqa_ros/nss.py)


def full_frame_protocol(summary: dict) -> str:
    """The sentence that says which frames a full-frame summary (``summarize``'s dict) was measured on."""
    config = summary.get("config") or {}
    sizes = config.get("frame_sizes") or [[640, 480], [1280, 720], [1920, 1080]]
    size_text = ", ".join(f"{w}x{h}" for w, h in sizes) + (" in turn" if len(sizes) > 1 else "")
    render = "distortions rendered at that resolution"
    if config.get("noise_floor"):
        render += (f" in a camera's physical order (fault, a noise floor of sigma {config['noise_floor']:g} "
                   "grey levels on every frame, then noise faults and JPEG)")
    if config.get("transport_jpeg"):
        render += f", every frame then sent as JPEG {config['transport_jpeg']}"
    return (f"`hirqa eval --full-frame` protocol: {summary['n_views']} held-out photos as whole camera "
            f"frames ({size_text}), {render}, each frame scored whole with the card's input policy; "
            f"{summary['n_types']} types x levels 0..5.")


def others_text(columns: dict, first: int = 2) -> str:
    """``", the classical cues, NIQE, BRISQUE"``: what the columns after the first ``first`` are."""
    rest = list(columns)[first:]
    parts = ["the classical cues"] if any(c in CUE_NAMES for c in rest) else []
    parts += [c.upper() for c in ANCHOR_NAMES if c in rest]
    return "".join(", " + p for p in parts)


DESCRIPTION = (
    "HiRQA-S (ResNet-18 + attention pooling), an opinion-unaware no-reference image-quality model trained by "
    "the hirqa_ros project from scratch on synthetic distortion ladders of Debian wallpaper photographs. "
    "Score in (0, 1), higher = better."
)


def description(variant: str) -> str:
    """The card's description of a model of ``variant`` (HiRQA-S: :data:`DESCRIPTION`)."""
    from hirqa_ros.trunks import TRUNKS, canonical_variant

    trunk = TRUNKS[canonical_variant(variant)]
    if not trunk.weights_package:
        return DESCRIPTION
    return (f"HiRQA on {trunk.description} + attention pooling, an opinion-unaware no-reference "
            "image-quality model fine-tuned by the hirqa_ros project on synthetic distortion ladders of "
            "Debian photographs. Score in (0, 1), higher = better.")


def licence(variant: str) -> str:
    """The card's licence text; an ImageNet-initialised trunk adds its weights' licence."""
    from hirqa_ros.trunks import TRUNKS, canonical_variant

    trunk = TRUNKS[canonical_variant(variant)]
    if not trunk.weights_licence:
        return LICENCE
    return f"{LICENCE}; trunk initialised from ImageNet weights under {trunk.weights_licence}"


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


def init_text(summary: dict) -> str:
    """Where a run's weights started, and its teacher when it was distilled."""
    init = (f"from {summary['init_from']}" if summary.get("init_from")
            else f"trunk from {summary['trunk_init']}, heads random" if summary.get("trunk_init")
            else "from scratch (random init: no ImageNet weights are reachable offline)")
    teacher = summary.get("distilled_from")
    if teacher:
        init += f"; distilled from {teacher['name']} ({teacher['variant']}, weights sha256 " \
                f"{str(teacher.get('weights_sha256'))[:16]})"
    return init


def run_entry(summary: dict, data: dict, metrics: dict | None = None) -> dict:
    """One lineage entry for a finished run (its ``summary.json``)."""
    entry = {
        "run": summary["name"],
        "finished_at": summary.get("finished_at"),
        "init": init_text(summary),
        "steps": summary["step"],
        "images_seen": summary["images_seen"],
        "wall_time_min": round(summary["elapsed_s"] / 60.0, 1),
        "images_per_s": summary["images_per_s"],
        "hardware": summary.get("hardware_note") or summary.get("hardware"),
        "data": {"photos": data.get("photos"), "packages": list(data.get("packages", {}))},
    }
    if summary.get("parent"):
        entry["parent"] = summary["parent"]
    if metrics:
        entry["val_pooled"] = metrics
    return entry


def calibrated_thresholds(cal: dict, full_frame: bool = True) -> dict:
    """The card's thresholds from ``hirqa eval``'s calibration: described in a line (full-frame
    protocol) or, for the crop protocol of a training run's release, the calibration itself."""
    out = {
        "warn": round(cal["warn"], 4),
        "error": round(cal["error"], 4),
        "calibrated": True,
        "rule": "warn: <= 5 % of keep frames (level 0-1) below; error: <= 1 %",
        "calibration": cal,
    }
    if full_frame:
        out["calibration"] = (
            "full-frame protocol, validation keep frames (pristine + level 1): "
            f"warn rejects {cal['warn_false_reject_rate']:.1%} of them "
            f"({cal['drop_recall_at_warn']:.1%} of drop frames caught), error "
            f"{cal['error_false_reject_rate']:.1%} ({cal['drop_recall_at_error']:.1%})"
        )
    return out


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
    out = {
        # "published": the fault class the doors publish (gated by the level); "head_argmax": the head alone
        "basis": frep.get("basis", "head_argmax"),
        "accuracy_severity_ge_3": round(frep["accuracy_drop_level"], 4),
        "pristine_none": round(frep["pristine_none"], 4),
        "per_class": {c: round(d["accuracy"], 4) for c, d in frep["per_class"].items()},
    }
    if frep.get("head_argmax"):
        out["head_argmax"] = {k: round(v, 4) for k, v in frep["head_argmax"].items()}
    return out


def fault_section(frep: dict) -> list[str]:
    """Markdown section of the fault head's full-frame accuracy per class and per type."""
    lines = [
        "## Fault class (fault_head.npz)",
        "",
        f"Held-out full-frame protocol, frames with severity >= {frep['min_level']}: "
        f"**{frep['accuracy_drop_level']:.1%}** get the right class "
        + ("as the doors publish it (`faults.gated_fault`: a frame the gate keeps is `none`)"
           if frep.get("basis") == "published" else "(the head's arg-max)")
        + f"; pristine frames called `none`: {frep['pristine_none']:.1%}."
        + (f" The head's own arg-max, ungated: {frep['head_argmax']['accuracy_drop_level']:.1%}."
           if frep.get("head_argmax") else ""),
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


def compare_columns(this: dict, other: dict, heads: tuple[str, str], cues: dict | None = None) -> dict:
    """Table columns: this model, the other, then the classical cues and anchors present in ``cues``."""
    cues = cues or {}
    return {heads[0]: this, heads[1]: other, **{c: cues[c] for c in CUE_NAMES + ANCHOR_NAMES if c in cues}}


def full_frame_section(paragraph: str, columns: dict, faults: dict | None = None) -> str:
    """MODEL_CARD.md's "Full-frame evaluation (shipping decision)": the paragraph, a table per metric
    (per type and group), and the fault head's accuracy when ``faults`` is given."""
    lines = ["", "## Full-frame evaluation (shipping decision)", "", paragraph, ""]
    for metric, title in METRICS:
        lines += metric_table(columns, metric, title, per_type=True)
    if faults:
        lines += fault_section(faults)
    return "\n".join(lines)
