"""``hirqa release anchors``: put a model's full-frame evaluation beside NIQE, BRISQUE and the classical
cues, measured on the same frames by one ``hirqa eval --full-frame --json`` run, into its MODEL_CARD.md."""

from __future__ import annotations

from pathlib import Path

from hirqa_ros.training.release.cards import ANCHOR_NAMES, CUE_NAMES, full_frame_protocol
from hirqa_ros.training.release.tables import METRICS, metric_table

HEADING = "## Beside NIQE and BRISQUE (same frames)"


def anchors_section(report: dict) -> str:
    """The card section of one ``hirqa eval --full-frame --json`` report with the model and both anchors."""
    summaries = (report.get("synthetic") or {}).get("summaries") or {}
    missing = [n for n in ("model", *ANCHOR_NAMES) if n not in summaries]
    if missing:
        raise ValueError(f"the report has no {', '.join(missing)}: run `hirqa eval --full-frame --json` with "
                         "the model and the cues (NIQE and BRISQUE come with the cues)")
    model = summaries["model"]
    if not (model.get("config") or {}).get("frame_sizes"):  # () in the crop protocol
        raise ValueError("the report is not of the full-frame protocol (`hirqa eval --full-frame`)")
    info = report.get("model") or {}
    run = ", ".join(f"{k} {info[k]}" for k in ("backend", "device", "precision") if info.get(k))
    columns = {"this model": model, **{n: summaries[n] for n in ANCHOR_NAMES + CUE_NAMES if n in summaries}}
    m, niqe = model["pooled"], summaries["niqe"]["pooled"]
    paragraph = (
        f"{full_frame_protocol(model)} One run ({run or 'the model'}): this model, NIQE and an "
        "opinion-unaware BRISQUE (hirqa_ros/nss.py) and the classical cues score the same frames. Pooled, "
        f"this model vs NIQE: AUROC {m['auroc']:.3f} vs {niqe['auroc']:.3f}, ladder SROCC "
        f"{m['ladder_srocc']:.3f} vs {niqe['ladder_srocc']:.3f}, SROCC across content {m['srocc']:.3f} vs "
        f"{niqe['srocc']:.3f}."
    )
    lines = ["", HEADING, "", paragraph, ""]
    for metric, title in METRICS:
        lines += metric_table(columns, metric, title, per_type=True)
    return "\n".join(lines)


def without_section(sections: str, heading: str) -> str:
    """``sections`` (Markdown after the card's file table) without the ``heading`` section."""
    start = sections.find("\n" + heading + "\n")
    if start < 0:
        return sections
    end = sections.find("\n## ", start + len(heading) + 2)
    return sections[:start] + (sections[end:] if end >= 0 else "\n")


def add_anchors(out: Path, report: dict) -> str:
    """Write (or replace) the anchors section of the model directory ``out``; returns the section."""
    from hirqa_ros.artifacts import HUMAN_CARD_FILE, after_file_table, load_artifact
    from hirqa_ros.training.release.model_dir import rewrite_card

    section = anchors_section(report)
    card = load_artifact(out).card
    sections = after_file_table((Path(out) / HUMAN_CARD_FILE).read_text(encoding="utf-8"))
    rewrite_card(Path(out), dict(card), without_section(sections, HEADING).rstrip("\n") + "\n" + section)
    return section
