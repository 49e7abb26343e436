"""``fleet.json``: the bags of a fleet run side by side, per bag and camera: frames, share rejected,
fault families, worst stretches and whatever else each bag's ``summary.json`` holds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from hirqa_ros.bag.fleet_job import THUMBS_FILE
from hirqa_ros.bag.frames import read_frames_csv

FLEET_FILE = "fleet.json"
STRETCHES = 3  # worst stretches kept per camera
#: per-topic summary keys that the fleet entry condenses; every other key is carried through as is
_CONDENSED_TOPIC_KEYS = {"score", "labels", "first_errors", "levels", "errors_by_reason", "wall_time_s",
                         "frames_per_s"}
#: per-bag summary keys shown elsewhere in the fleet entry; every other key is carried through as is
_KNOWN_BAG_KEYS = {"bag", "model", "backend", "input_policy", "batch", "thresholds", "smoothing",
                   "min_image_side", "overall", "topics", "labels", "problems", "files", "interrupted",
                   "complete", "max_pixels", "content_limits"}


def worst_stretches(rows: list[dict[str, Any]], n: int = STRETCHES) -> list[dict[str, Any]]:
    """The ``n`` longest runs of consecutive rejected frames of one camera's rows (ties: lowest
    score first): start/end seconds from the camera's first frame, frames, min score, main fault."""
    if not rows:
        return []
    t0 = rows[0]["bag_time_ns"]
    runs: list[list[dict[str, Any]]] = []
    cur: list[dict[str, Any]] = []
    for r in rows:
        if r["verdict"] == "drop":
            cur.append(r)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    out = []
    for run in runs:
        scores = [r["score"] for r in run if r["score"] is not None]
        faults = Counter(r["fault"] for r in run if r["fault"])
        out.append({"start_s": (run[0]["bag_time_ns"] - t0) / 1e9,
                    "end_s": (run[-1]["bag_time_ns"] - t0) / 1e9,
                    "frames": len(run), "min_score": min(scores) if scores else None,
                    "fault": faults.most_common(1)[0][0] if faults else None})
    out.sort(key=lambda s: (-s["frames"], s["min_score"] if s["min_score"] is not None else 1.0))
    return out[:n]


def camera_entry(d: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One camera of one bag for the fleet table, from its ``summary.json`` topic entry and rows."""
    e = {k: v for k, v in d.items() if k not in _CONDENSED_TOPIC_KEYS}
    score = d.get("score") or {}
    e["score_min"], e["score_p50"] = score.get("min"), score.get("p50")
    e["worst_stretches"] = worst_stretches(rows)
    lab = d.get("labels")
    if lab:
        e["labels"] = {"frames_labelled": lab.get("frames_labelled"), "auroc": lab.get("auroc"),
                       "at_thresholds": lab.get("at_thresholds")}
    return e


def bag_entry(name: str, path: str, status: str, result: Path | None, error: str = "") -> dict[str, Any]:
    """One bag of the fleet: its status and, for a finished bag, its cameras and every other key of
    its ``summary.json`` (e.g. decision metrics added by other stages) carried through."""
    e: dict[str, Any] = {"name": name, "path": path, "status": status}
    if error:
        e["error"] = error
    if result is None or not (result / "summary.json").is_file():
        return e
    s = json.loads((result / "summary.json").read_text())
    rows = read_frames_csv(result / "frames.csv") if (result / "frames.csv").is_file() else []
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_topic.setdefault(r["topic"], []).append(r)
    o = s.get("overall", {})
    e.update({"dir": str(result), "frames": o.get("frames"), "scored": o.get("scored"),
              "errors": o.get("errors"), "bag_duration_s": o.get("bag_duration_s"),
              "wall_time_s": o.get("wall_time_s"), "thresholds": s.get("thresholds"),
              "problems": s.get("problems", []),
              "cameras": {t: camera_entry(d, by_topic.get(t, [])) for t, d in s.get("topics", {}).items()}})
    if "labels" in s:
        e["labels"] = {"file": s["labels"].get("file"),
                       "auroc": (s["labels"].get("all_topics") or {}).get("auroc")}
    e.update({k: v for k, v in s.items() if k not in _KNOWN_BAG_KEYS})
    thumbs = result / THUMBS_FILE
    e["thumbs"] = json.loads(thumbs.read_text()) if thumbs.is_file() else []
    return e


def totals(bags: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts over the fleet: bags per status, frames, rejected frames and fault families."""
    status = Counter(b["status"] for b in bags)
    cams = [c for b in bags for c in (b.get("cameras") or {}).values()]
    faults: Counter = Counter()
    for c in cams:
        faults.update(c.get("rejected_by_fault") or {})
    scored = sum(c.get("scored") or 0 for c in cams)
    rejected = sum(c.get("rejected") or 0 for c in cams)
    return {"bags": len(bags), "by_status": dict(status), "cameras": len(cams),
            "frames": sum(c.get("frames") or 0 for c in cams), "scored": scored, "rejected": rejected,
            "rejected_fraction": rejected / scored if scored else None,
            "bag_duration_s": sum(b.get("bag_duration_s") or 0 for b in bags),
            "rejected_by_fault": dict(faults.most_common())}
