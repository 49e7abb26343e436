#!/usr/bin/env python3
"""Replay a bag-eval run's per-frame outputs (frames.csv: score, fault-head ``none``, cut flag, cues)
through ``CameraMonitor.decide`` with other gate settings, and print the decision metrics.

The same decision code as the node and bag-eval; no model is run, so a setting costs seconds, not the
minutes of a bag evaluation. A replay at the run's own settings reproduces its levels (checked and
printed as ``same level``).

  python scripts/replay_gate.py RUN_DIR BAG_PREFIX [--set margin=0.05 --set dark_luma=60 ...] [--recue]
      [--heads HEADS_DIR --embeddings BAG.npz [--thresholds WARN,ERROR]]

RUN_DIR: a bag-eval output (frames.csv, summary.json); BAG_PREFIX: the sequence (BAG.labels.yaml,
BAG.scenario.json for the "3 s after a cut" share). ``--set`` takes :class:`ReferenceParams` fields;
``--recue`` recomputes the cues and scene cuts from the bag's frames (``stream_cues.stream_cue``,
``reference.CutDetector``; seconds, no model): for a run recorded before a change to either.
``--heads`` replays other heads (``hirqa heads fit`` output: score_head.npz, fault_head.npz) on the
frames' embeddings (``scripts/bag_embeddings.py``), at ``--thresholds`` (default: the thresholds the fit
calibrated, its report.json): the release of new heads checked on the gate's sequences in seconds.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.bag.decoding import decoded_frames
from hirqa_ros.bag.frames import FrameRow, read_frames_csv, row_cue
from hirqa_ros.bag.labels import Labels
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.bag.summary import bag_decisions, decided_rows
from hirqa_ros.decision import Thresholds
from hirqa_ros.evaluation.decisions import clean_after_events
from hirqa_ros.heads import FaultHead
from hirqa_ros.monitor import CameraMonitor, Checked, ScoreOutcome
from hirqa_ros.reference import CutDetector, ReferenceParams
from hirqa_ros.stream_cues import stream_cue
from hirqa_ros.training.heads.fit import head_scores

FORCED = ("no_content", "frozen")  # reasons decided before the gate: kept as recorded
AFTER_CUT_S = 3.0


class Run:
    """One bag-eval run's rows, labels and scene cuts, ready to replay."""

    def __init__(self, run_dir: str | Path, bag_prefix: str | Path) -> None:
        run_dir, bag_prefix = Path(run_dir), str(bag_prefix)
        self.rows = read_frames_csv(run_dir / "frames.csv")
        for r in self.rows:
            r["cue"] = row_cue(r)
        summary = json.loads((run_dir / "summary.json").read_text())
        th = summary["thresholds"]
        self.thresholds = Thresholds(th["warn"], th["error"])
        self.labels = Labels.load(bag_prefix + ".labels.yaml", bag_start_ns=0)
        self.topics = sorted({r["topic"] for r in self.rows})
        self.cuts: dict[str, list[int]] = {}
        scen = Path(bag_prefix + ".scenario.json")
        if scen.exists():
            origin = self.labels.origin_ns or 0
            for topic, cuts in json.loads(scen.read_text()).get("cuts_s", {}).items():
                self.cuts[topic] = [origin + round(c * 1e9) for c in cuts]

    def recue(self, bag: str | Path, cut_corr: float = ReferenceParams().cut_corr) -> None:
        """Replace the recorded cues and cut flags with ``stream_cue`` and ``CutDetector`` (at ``cut_corr``)
        of the bag's decoded frames (by topic and stamp)."""
        detectors = {t: CutDetector() for t in self.topics}
        with BagReader(bag) as reader:
            seen = {(row.topic, row.stamp_ns): (stream_cue(rgb), detectors[row.topic].update(rgb, cut_corr))
                    for row, rgb in decoded_frames(reader, self.topics) if rgb is not None}
        for r in self.rows:
            r["cue"], r["cut"] = seen.get((r["topic"], r["stamp_ns"]), (r["cue"], r["cut"]))

    def swap_heads(self, embeddings: str | Path, heads: str | Path) -> int:
        """Replace the recorded scores and ``none`` probabilities with those of the heads in ``heads`` on the
        frames' recorded embeddings; returns the number of rows changed."""
        heads = Path(heads)
        z = np.load(embeddings)
        emb = z["embedding"].astype(np.float64)
        with np.load(heads / "score_head.npz") as sh:
            score = head_scores(emb, sh["weight"].reshape(-1), float(np.ravel(sh["bias"])[0]))
        fault = FaultHead.load(heads / "fault_head.npz")
        none = fault.predict(emb.astype(np.float32))[:, list(fault.classes).index("none")]
        at = {(t, int(s)): i for i, (t, s) in enumerate(zip(z["topic"], z["stamp_ns"]))}
        changed = 0
        for r in self.rows:
            i = at.get((r["topic"], r["stamp_ns"]))
            if i is not None and r["score"] is not None:
                r["score"], r["none_prob"] = float(score[i]), float(none[i])
                changed += 1
        return changed

    def replay(self, params: ReferenceParams) -> list[FrameRow]:
        """Every row through a fresh monitor per topic with ``params`` (rows without a score as recorded)."""
        monitors = {t: CameraMonitor(t, self.thresholds, reference=params) for t in self.topics}
        out = []
        for r in self.rows:
            row = FrameRow(r["topic"], r["bag_time_ns"], r["stamp_ns"], r["score"], level=r["level"],
                           verdict=r["verdict"], reason=r["reason"])
            if r["score"] is not None and not r["reason"].startswith(FORCED):
                m = monitors[r["topic"]]
                ranked = None if r["none_prob"] is None else (("none", r["none_prob"]),)
                t = r["stamp_ns"] / 1e9 if r["stamp_ns"] else r["bag_time_ns"] / 1e9
                res = m.decide(Checked(m, None, time_s=t, cut=r["cut"], cue=r["cue"]),
                               ScoreOutcome(r["score"], fault_ranked=ranked))
                row.apply(res)
            out.append(row)
        return out

    def metrics(self, rows: list[FrameRow]) -> dict[str, Any]:
        """Pooled decision metrics plus ``after_cut`` (clean frames rejected in the 3 s after a cut)."""
        _, pooled = bag_decisions(rows, self.labels, self.topics)
        near = [clean_after_events(decided_rows(rows, self.labels, t), self.cuts.get(t, []),
                                   round(AFTER_CUT_S * 1e9)) for t in self.topics]
        n = sum(x["clean_frames"] for x in near)
        rej = sum((x["clean_false_reject"] or 0.0) * x["clean_frames"] for x in near)
        pooled["after_cut"] = rej / n if n else None
        return pooled


def line(m: dict[str, Any]) -> str:
    """One line: recall, clean, after-cut, per type, delays."""
    def pct(x: float | None) -> str:
        return "  -  " if x is None else f"{100 * x:5.1f}"
    types = " ".join(f"{k}={pct(v['rejected'])}" for k, v in m["per_type"].items()
                     if v["category"] == "fault")
    d, r = m["detection_delay_frames"], m["recovery_delay_frames"]
    return (f"recall {pct(m['drop_recall'])} clean {pct(m['clean_false_reject'])}"
            f" cut {pct(m.get('after_cut'))}"
            f" | {types} | det {d['median']}/{d['max']} ({d['reached']}/{d['stretches']})"
            f" rec {r['median']}/{r['max']} | {m['rejected_by_reason']}")


def parse_set(items: list[str]) -> dict[str, Any]:
    kinds = {f.name: f.type for f in fields(ReferenceParams)}
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in kinds:
            raise SystemExit(f"--set {key}: not a ReferenceParams field ({', '.join(kinds)})")
        kind = kinds[key]
        out[key] = (value.lower() in ("1", "true")) if kind in (bool, "bool") else (
            int(value) if kind in (int, "int") else float(value))
    return out


def heads_thresholds(heads: str, given: str | None) -> Thresholds:
    """``WARN,ERROR`` as given, else the thresholds ``hirqa heads fit`` calibrated (report.json)."""
    if given:
        warn, error = (float(v) for v in given.split(","))
    else:
        cal = json.loads((Path(heads) / "report.json").read_text())["calibration_new"]
        warn, error = cal["warn"], cal["error"]
    return Thresholds(warn, error)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("bag_prefix")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--recue", action="store_true",
                    help="recompute the cues and scene cuts from the bag BAG_PREFIX")
    ap.add_argument("--heads", default=None, help="replay these heads (hirqa heads fit output)")
    ap.add_argument("--embeddings", default=None, help="the frames' embeddings (scripts/bag_embeddings.py)")
    ap.add_argument("--thresholds", default=None, metavar="WARN,ERROR",
                    help="with --heads (default: the thresholds in the heads' report.json)")
    args = ap.parse_args()
    run = Run(args.run_dir, args.bag_prefix)
    params = replace(ReferenceParams(), **parse_set(args.set))
    if args.recue:
        run.recue(args.bag_prefix, params.cut_corr)
    if args.heads:
        if not args.embeddings:
            raise SystemExit("--heads needs --embeddings")
        print(f"heads {args.heads}: {run.swap_heads(args.embeddings, args.heads)} frames rescored")
        run.thresholds = heads_thresholds(args.heads, args.thresholds)
    rows = run.replay(params)
    same = sum(a.level == b["level"] for a, b in zip(rows, run.rows))
    print(f"same level as the run: {same}/{len(rows)}" + " (other heads: not expected)" * bool(args.heads))
    print(line(run.metrics(rows)))


if __name__ == "__main__":
    main()
