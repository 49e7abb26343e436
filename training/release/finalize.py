"""``hirqa release finalize``: the release gate on ``hirqa eval --full-frame`` reports of a candidate
model directory (a blend, refitted heads, a model on another trunk) and of today's default, made on the
same frames. Only a candidate that passes gets calibrated thresholds, the full-frame metrics and the
before/after tables in its card; otherwise nothing changes.

The rule depends on the frames (``gate.passes`` / ``gate.passes_physical``): frames without a noise floor,
pooled AUROC and ladder SROCC both higher; frames rendered in a camera's physical order, every pooled
measure higher there, and none lower on the same photos noise-free (``--plain-eval``, required) and as a
compressed topic delivers them (``--topic-eval``, when given)::

    hirqa release finalize --out CAND --eval cand.json --baseline-eval old.json \\
        --plain-eval cand_plain.json old_plain.json --topic-eval cand_topic.json old_topic.json
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("hirqa.release")

Pair = tuple[dict, dict]  # (candidate's report, baseline's report)


def gate_verdict(main: Pair, plain: Pair | None = None, topic: Pair | None = None,
                 ) -> tuple[bool, list[str], dict]:
    """(passes, one line per failing measure, the card's ``release_gate``) of the reports' pairs.

    Raises ValueError when a report is not full-frame or a pair was not made on the same frames."""
    from hirqa_ros.training.release.gate import (
        PHYSICAL_RULE,
        PLAIN_RULE,
        compare_reports,
        passes_physical,
        passes_plain,
    )

    n, o, _ = compare_reports(*main)
    if not (n.get("config") or {}).get("noise_floor"):
        ok, fails = passes_plain(n, o)
        return ok, fails, {"passes": ok, "rule": PLAIN_RULE, "fails": fails}
    runs = (("plain", plain), ("topic", topic))
    summaries = {name: compare_reports(*pair)[:2] for name, pair in runs if pair}
    ok, fails = passes_physical((n, o), summaries.get("plain"), summaries.get("topic"))
    runs_pooled = {name: {"candidate": c["pooled"], "baseline": b["pooled"]}
                   for name, (c, b) in summaries.items()}
    record = {"passes": ok, "fails": fails, "rule": PHYSICAL_RULE, **runs_pooled}
    return ok, fails, record


def finalize(out: Path, new_report: dict, baseline_report: dict, plain: Pair | None = None,
             topic: Pair | None = None) -> bool:
    """Calibrated thresholds, full-frame metrics and tables in the cards of the model directory ``out``,
    if it passes the release gate against the baseline's reports.

    Returns False (and changes nothing) when it does not; raises ValueError when a report is not
    full-frame or a pair was not made on the same frames."""
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.training.release import cards
    from hirqa_ros.training.release.model_dir import rewrite_card

    ok, fails, record = gate_verdict((new_report, baseline_report), plain, topic)
    if not ok:
        log.error("%s does not pass the release gate (%s); not finalized", out, "; ".join(fails))
        return False
    n = new_report["synthetic"]["summaries"]["model"]
    o = baseline_report["synthetic"]["summaries"]["model"]
    p, q = n["pooled"], o["pooled"]
    card = dict(load_artifact(out).card)
    summaries = {**baseline_report["synthetic"]["summaries"], **new_report["synthetic"]["summaries"]}
    cues = {k: v for k, v in summaries.items() if k in cards.CUE_NAMES + cards.ANCHOR_NAMES}
    columns = cards.compare_columns(n, o, ("this model", "previous default"), cues)
    card["thresholds"] = cards.calibrated_thresholds(new_report["calibration"])
    card["metrics"] = {
        "validation_full_frame": cards.full_frame_metrics(
            n, o, "previous_default_pooled", {k: v["pooled"] for k, v in cues.items()}
        )
    }
    if new_report.get("faults"):
        card["metrics"]["fault_class_full_frame"] = cards.fault_metrics(new_report["faults"])
    card["release_gate"] = record
    if isinstance(card.get("lineage"), list) and card["lineage"]:  # the run or refit that made this model
        card["lineage"][-1].update(val_full_frame_pooled=p, previous_default_pooled=q)
    rewrite_card(out, card, cards.full_frame_section(_paragraph(n, o, columns, new_report, baseline_report,
                                                                record), columns, new_report.get("faults")))
    log.info("finalized %s: AUROC %.4f vs %.4f, ladder SROCC %.4f vs %.4f; thresholds warn %.4f error %.4f",
             out, p["auroc"], q["auroc"], p["ladder_srocc"], q["ladder_srocc"], card["thresholds"]["warn"],
             card["thresholds"]["error"])
    return True


def _paragraph(n: dict, o: dict, columns: dict, new_report: dict, baseline_report: dict, record: dict) -> str:
    """The card's sentence on the frames, the pooled numbers, the decisions and the other runs of the gate."""
    from hirqa_ros.training.release import cards

    p, q = n["pooled"], o["pooled"]
    text = (cards.full_frame_protocol(n)
            + f" Columns: this model, the previous default{cards.others_text(columns)}. "
            f"Pooled: AUROC {p['auroc']:.3f} vs {q['auroc']:.3f}, ladder SROCC {p['ladder_srocc']:.3f} vs "
            f"{q['ladder_srocc']:.3f}, SROCC {p['srocc']:.3f} vs {q['srocc']:.3f}.")
    cal, old = new_report.get("calibration") or {}, baseline_report.get("calibration") or {}
    if "drop_recall_at_warn" in cal and "drop_recall_at_warn" in old:
        text += (f" At a WARN that rejects {100 * cal['warn_false_reject_rate']:.0f} % of the keep frames it "
                 f"catches {100 * cal['drop_recall_at_warn']:.1f} % of the drop frames (previous default "
                 f"{100 * old['drop_recall_at_warn']:.1f} %).")
    for name, label in (("plain", "Noise-free"), ("topic", "As a compressed topic")):
        if name in record:
            c, b = record[name]["candidate"], record[name]["baseline"]
            text += (f" {label}: AUROC {c['auroc']:.3f} vs {b['auroc']:.3f}, ladder SROCC "
                     f"{c['ladder_srocc']:.3f} vs {b['ladder_srocc']:.3f}, SROCC {c['srocc']:.3f} vs "
                     f"{b['srocc']:.3f}.")
    return text
