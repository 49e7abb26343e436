"""Offline bag evaluation: score every image message with the shared Scorer, decide levels with
decision.FrameGate, write frames.csv + summary.json (+ label metrics, plots, a bag copy with
`T/quality` messages)."""

from __future__ import annotations

import csv
import json
import logging
import math
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.bag.labels import Labels
from hirqa_ros.bag.reader import BagOpenError, BagReader, RawMessage, stamp_ns
from hirqa_ros.decision import VERDICTS, FrameGate, Level, Thresholds

log = logging.getLogger(__name__)

CSV_COLUMNS = ["topic", "stamp_ns", "bag_time_ns", "score", "level", "verdict", "error"]
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


class NothingToEvaluate(RuntimeError):
    """The bag opened but holds nothing that can be scored (no image topic, unknown topics)."""


@dataclass
class FrameRow:
    """One image message. ``score`` None + ``verdict`` 'error' when it could not be scored."""

    topic: str
    bag_time_ns: int
    stamp_ns: int | None = None
    score: float | None = None
    smoothed: float | None = None
    level: str = ""
    verdict: str = ""
    error: str = ""
    frame_id: str = ""
    seconds: float = 0.0  # decode + scoring time attributed to this frame
    batch_size: int = 0

    def csv_row(self) -> list[Any]:
        return [
            self.topic,
            "" if self.stamp_ns is None else self.stamp_ns,
            self.bag_time_ns,
            "" if self.score is None else f"{self.score:.7f}",
            self.level,
            self.verdict,
            self.error,
        ]


@dataclass
class EvalResult:
    rows: list[FrameRow]
    summary: dict[str, Any]
    problems: list[str]
    out_dir: Path
    files: dict[str, str] = field(default_factory=dict)

    @property
    def scored(self) -> int:
        return sum(r.score is not None for r in self.rows)


def choose_topics(reader: BagReader, topics: Sequence[str] | None, problems: list[str]) -> list[str]:
    """The image topics to evaluate: the requested ones that exist and are images, else all image topics."""
    if topics:
        chosen = []
        for t in topics:
            info = reader.topics.get(t)
            if info is None:
                problems.append(
                    f"topic {t} is not in the bag (it has: {', '.join(sorted(reader.topics)) or 'none'})"
                )
            elif not info.kind:
                problems.append(
                    f"topic {t} has type {info.msgtype}, not sensor_msgs/Image or CompressedImage; skipped"
                )
            else:
                chosen.append(t)
        if not chosen:
            raise NothingToEvaluate(
                "none of the requested topics can be evaluated: " + "; ".join(problems[-len(topics) :])
            )
        return chosen
    chosen = reader.image_topics()
    others = sorted(set(reader.topics) - set(chosen))
    if not chosen:
        listing = ", ".join(f"{t} ({reader.topics[t].msgtype})" for t in others) or "no topics at all"
        raise NothingToEvaluate(f"{reader.path}: no sensor_msgs/Image or CompressedImage topic ({listing})")
    log.info(
        "image topics found: %s%s",
        ", ".join(chosen),
        f" (not images, skipped: {', '.join(others)})" if others else "",
    )
    for t in chosen:
        if reader.topics[t].count == 0:
            problems.append(f"topic {t} has no messages")
    return chosen


class _Batcher:
    """Collects decoded frames and scores them in batches; falls back to one by one on failure."""

    def __init__(self, scorer: Any, batch: int, gates: dict[str, FrameGate]) -> None:
        self.scorer = scorer
        self.batch = max(1, int(batch))
        self.gates = gates
        self.pending: list[tuple[FrameRow, np.ndarray]] = []

    def add(self, row: FrameRow, rgb: np.ndarray) -> None:
        self.pending.append((row, rgb))
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        items, self.pending = self.pending, []
        t0 = time.perf_counter()
        try:
            scores = np.asarray(self.scorer.score([rgb for _, rgb in items]), dtype=np.float64).reshape(-1)
            if scores.size != len(items):
                raise RuntimeError(f"scorer returned {scores.size} scores for {len(items)} frames")
            per = (time.perf_counter() - t0) / len(items)
            for (row, _), s in zip(items, scores):
                row.seconds += per
                row.batch_size = len(items)
                self._decide(row, float(s))
        except Exception as exc:
            if len(items) == 1:
                row = items[0][0]
                row.seconds += time.perf_counter() - t0
                _mark_error(row, f"scoring failed: {exc}")
                return
            log.warning("batch of %d failed (%s); scoring those frames one by one", len(items), exc)
            for item in items:
                self.pending = [item]
                self.flush()

    def _decide(self, row: FrameRow, score: float) -> None:
        if not math.isfinite(score):
            _mark_error(row, f"scorer returned {score}")
            return
        level, smoothed = self.gates[row.topic].update(score)
        row.score, row.smoothed = score, float(smoothed)
        row.level, row.verdict = level.name, VERDICTS[level]


def _mark_error(row: FrameRow, why: str) -> None:
    row.score = row.smoothed = None
    row.level, row.verdict, row.error = "", "error", why.replace("\n", " ")[:300]


def evaluate_bag(
    bag: str | Path,
    out_dir: str | Path,
    *,
    topics: Sequence[str] | None = None,
    labels: str | Path | Labels | None = None,
    drop_labels: Sequence[str] | None = None,
    thresholds: Thresholds | None = None,
    smoothing: float = 0.0,
    model: str | Path | None = None,
    backend: str = "auto",
    input_policy: str | None = None,
    batch: int = 8,
    target_frr: float = 0.01,
    write_bag: bool = False,
    plots: bool = True,
    progress: bool = True,
    scorer: Any = None,
) -> EvalResult:
    """Evaluate one bag into ``out_dir``. Raises BagOpenError / NothingToEvaluate when nothing is readable."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    reader = BagReader(bag)
    problems = reader.problems  # shared list: reader keeps appending while iterating
    for p in problems:
        log.warning("%s", p)
    n_logged = len(problems)
    try:
        chosen = choose_topics(reader, topics, problems)
        if scorer is None:
            from hirqa_ros import load_scorer

            scorer = load_scorer(model=model, backend=backend, input_policy=input_policy)
        if thresholds is None:
            thresholds = getattr(scorer, "thresholds", None) or Thresholds()
            th_source = "model card"
        else:
            th_source = "command line"
        log.info(
            "scoring %s with backend %s, input policy %s, thresholds warn=%g error=%g (%s), batch %d",
            ", ".join(chosen),
            getattr(scorer, "backend", "?"),
            getattr(scorer, "input_policy", "?"),
            thresholds.warn,
            thresholds.error,
            th_source,
            batch,
        )
        gates = {t: FrameGate(thresholds, smoothing) for t in chosen}
        t_setup = time.perf_counter() - t_start
        t0 = time.perf_counter()
        rows = _score_messages(reader, chosen, _Batcher(scorer, batch, gates), progress)
        t_loop = time.perf_counter() - t0
        for p in problems[n_logged:]:
            log.warning("%s", p)

        lab = None
        if labels is not None:
            lab = (
                labels
                if isinstance(labels, Labels)
                else Labels.load(labels, bag_start_ns=_origin(rows, labels))
            )
            lab = lab.with_drop_labels(drop_labels)
        summary = build_summary(
            rows,
            chosen,
            reader,
            scorer,
            thresholds,
            th_source,
            smoothing,
            t_loop,
            lab,
            target_frr,
            problems,
            batch=batch,
        )
        summary["overall"]["setup_time_s"] = t_setup
        result = EvalResult(rows, summary, problems, out)
        result.files["frames"] = str(write_frames_csv(rows, out / "frames.csv"))
        if write_bag:
            try:
                path = write_quality_bag(
                    reader,
                    rows,
                    out / (_bag_name(bag) + "_quality"),
                    thresholds,
                    str(getattr(scorer, "backend", "")),
                )
                result.files["bag"] = str(path)
            except Exception as exc:
                problems.append(f"could not write the bag copy with quality messages: {exc}")
        if plots and result.scored:
            try:
                from hirqa_ros.bag.plots import plot_histograms, plot_timeline

                result.files["timeline"] = [str(p) for p in plot_timeline(rows, out, lab, thresholds)]
                hist = plot_histograms(rows, out / "score_histogram.png", lab, thresholds)
                result.files["histogram"] = str(hist)
            except Exception as exc:  # plots are a convenience; never lose the numbers for them
                problems.append(f"plots failed: {exc}")
        summary["files"] = result.files
        summary["problems"] = list(problems)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        result.files["summary"] = str(out / "summary.json")
        return result
    finally:
        reader.close()


def _bag_name(bag: str | Path) -> str:
    p = Path(bag)
    return p.stem if p.is_file() else p.name


def _origin(rows: list[FrameRow], labels_path: str | Path) -> int | None:
    """Default origin of relative label times: first image message, in the labels' clock."""
    try:
        import yaml

        clock = (yaml.safe_load(Path(labels_path).read_text()) or {}).get("clock", "stamp")
    except Exception:
        clock = "stamp"
    times = [r.stamp_ns if clock == "stamp" else r.bag_time_ns for r in rows]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def _score_messages(
    reader: BagReader, topics: list[str], batcher: _Batcher, progress: bool
) -> list[FrameRow]:
    counts = [reader.topics[t].count for t in topics]
    total = None if any(c is None for c in counts) else sum(counts)
    rows: list[FrameRow] = []
    bar = _progress(total, progress)
    frames = _decoded_frames(reader, topics)
    try:
        for row, rgb in frames:
            rows.append(row)
            if rgb is not None:
                batcher.add(row, rgb)
            bar.update(1)
        batcher.flush()
    except KeyboardInterrupt:
        reader.problems.append(f"interrupted after {len(rows)} messages; partial results written")
        batcher.pending = []
        for r in rows:
            if r.score is None and not r.verdict:
                _mark_error(r, "not scored (interrupted)")
    finally:
        frames.close()
        bar.close()
    return rows


_END = object()


def _decoded_frames(
    reader: BagReader, topics: list[str], depth: int = 32
) -> Generator[tuple[FrameRow, np.ndarray | None], None, None]:
    """Read, deserialise and decode the messages in a background thread, so that this work overlaps
    inference (numpy, OpenCV and the backends release the GIL); yields in bag order."""
    from hirqa_ros.imgmsg import msg_to_rgb

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for m in reader.messages(topics):
                row = FrameRow(m.topic, m.bag_time_ns)
                t0 = time.perf_counter()
                rgb = _decode(reader, m, row, msg_to_rgb)
                row.seconds += time.perf_counter() - t0
                if not put((row, rgb)):
                    return
        except BaseException as exc:  # a bug, not bad data (the reader reports damaged input itself)
            put(exc)
        finally:
            put(_END)

    worker = threading.Thread(target=produce, name="bag-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _decode(reader: BagReader, m: RawMessage, row: FrameRow, msg_to_rgb: Any) -> np.ndarray | None:
    try:
        msg = reader.deserialize(m)
    except Exception as exc:
        _mark_error(row, f"cannot deserialize {m.msgtype}: {exc}")
        return None
    row.stamp_ns = stamp_ns(msg)
    header = getattr(msg, "header", None)
    row.frame_id = str(getattr(header, "frame_id", "") or "")
    try:
        return msg_to_rgb(msg)
    except Exception as exc:
        _mark_error(row, f"cannot decode image: {exc}")
        return None


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="bag-eval", dynamic_ncols=True)


# --- outputs ---
def write_frames_csv(rows: list[FrameRow], path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow(r.csv_row())
    return path


def read_frames_csv(path: str | Path) -> list[dict[str, Any]]:
    """frames.csv back as dicts (stamp_ns/bag_time_ns int, score float or None)."""
    out = []
    with Path(path).open(newline="") as f:
        for r in csv.DictReader(f):
            r["stamp_ns"] = int(r["stamp_ns"]) if r["stamp_ns"] else None
            r["bag_time_ns"] = int(r["bag_time_ns"])
            r["score"] = float(r["score"]) if r["score"] else None
            out.append(r)
    return out


def _stats(scores: np.ndarray) -> dict[str, float] | None:
    if scores.size == 0:
        return None
    d = {"min": float(scores.min())}
    d.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(scores, PERCENTILES))})
    d.update({"max": float(scores.max()), "mean": float(scores.mean())})
    return d


def _topic_summary(rows: list[FrameRow]) -> dict[str, Any]:
    scored = [r for r in rows if r.score is not None]
    scores = np.array([r.score for r in scored], dtype=np.float64)
    rejected = sum(r.verdict == "drop" for r in scored)
    seconds = sum(r.seconds for r in rows)
    levels = {lv.name: sum(r.level == lv.name for r in scored) for lv in (Level.OK, Level.WARN, Level.ERROR)}
    errors = [r.error for r in rows if r.verdict == "error"]
    bag_times = [r.bag_time_ns for r in rows]
    return {
        "frames": len(rows),
        "scored": len(scored),
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:5],
        "rejected": rejected,
        "rejected_fraction": rejected / len(scored) if scored else None,
        "levels": levels,
        "score": _stats(scores),
        "bag_duration_s": (max(bag_times) - min(bag_times)) / 1e9 if bag_times else 0.0,
        "wall_time_s": seconds,
        "frames_per_s": len(scored) / seconds if seconds > 0 else None,
    }


def build_summary(
    rows: list[FrameRow],
    topics: list[str],
    reader: BagReader,
    scorer: Any,
    thresholds: Thresholds,
    th_source: str,
    smoothing: float,
    wall: float,
    labels: Labels | None,
    target_frr: float,
    problems: list[str],
    batch: int = 8,
) -> dict[str, Any]:
    by_topic: dict[str, list[FrameRow]] = defaultdict(list)
    for r in rows:
        by_topic[r.topic].append(r)
    bag_times = [r.bag_time_ns for r in rows]
    duration = (max(bag_times) - min(bag_times)) / 1e9 if bag_times else 0.0
    n_scored = sum(r.score is not None for r in rows)
    summary: dict[str, Any] = {
        "bag": str(reader.path),
        "model": str(getattr(scorer, "model_dir", "") or ""),
        "backend": str(getattr(scorer, "backend", "")),
        "input_policy": str(getattr(scorer, "input_policy", "")),
        "batch": batch,
        "thresholds": {"warn": thresholds.warn, "error": thresholds.error, "source": th_source},
        "smoothing": smoothing,
        "overall": {
            "topics": len(topics),
            "frames": len(rows),
            "scored": n_scored,
            "errors": sum(r.verdict == "error" for r in rows),
            "bag_duration_s": duration,
            "wall_time_s": wall,  # reading + decoding + scoring (model loading excluded: setup_time_s)
            "frames_per_s": n_scored / wall if wall > 0 else None,
            "real_time_factor": duration / wall if wall > 0 and duration > 0 else None,
        },
        "topics": {
            t: {"type": reader.topics[t].msgtype, **_topic_summary(by_topic.get(t, []))} for t in topics
        },
    }
    if labels is not None:
        summary["labels"] = {
            "file": labels.source,
            "clock": labels.clock,
            "drop_labels": sorted(labels.drop_set),
            "default_label": labels.default_label,
            "target_false_reject_rate": target_frr,
            "notes": labels.notes,
        }
        for t in topics:
            summary["topics"][t]["labels"] = label_metrics(
                by_topic.get(t, []), labels, thresholds, target_frr, t
            )
        summary["labels"]["all_topics"] = label_metrics(rows, labels, thresholds, target_frr, None)
    return summary


# --- label metrics ---
def _prf(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    tp = int(np.sum(pred & truth))
    fp = int(np.sum(pred & ~truth))
    fn = int(np.sum(~pred & truth))
    tn = int(np.sum(~pred & ~truth))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision and recall
        else (0.0 if tp + fp + fn else None)
    )
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "false_reject_rate": fp / (fp + tn) if fp + tn else None,
    }


def label_metrics(
    rows: list[FrameRow], labels: Labels, thresholds: Thresholds, target_frr: float, topic: str | None
) -> dict[str, Any]:
    """Metrics of the scored frames of ``rows`` against ``labels`` (``topic`` None: rows of all topics)."""
    from hirqa_ros.evaluation.metrics import auroc_separation, threshold_for_false_reject_rate

    items = []  # (row, t, label, should_drop)
    for r in rows:
        if r.score is None:
            continue
        t = r.stamp_ns if labels.clock == "stamp" else r.bag_time_ns
        if t is None:
            continue
        name = labels.label_at(r.topic, t)
        if name is not None:
            items.append((r, t, name, labels.should_drop(name)))
    out: dict[str, Any] = {"frames_labelled": len(items)}
    if not items:
        return out
    scores = np.array([it[0].score for it in items])
    truth = np.array([it[3] for it in items], dtype=bool)
    lv = np.array([it[0].level for it in items])
    keep_s, drop_s = scores[~truth], scores[truth]
    out["frames_should_drop"] = int(truth.sum())
    out["auroc"] = auroc_separation(keep_s, drop_s) if keep_s.size and drop_s.size else None
    out["at_thresholds"] = {
        "warn": {"threshold": thresholds.warn, **_prf(lv != Level.OK.name, truth)},
        "error": {"threshold": thresholds.error, **_prf(lv == Level.ERROR.name, truth)},
    }
    per_label: dict[str, Any] = {}
    for name in sorted({it[2] for it in items}):
        sel = np.array([it[2] == name for it in items])
        per_label[name] = {
            "frames": int(sel.sum()),
            "should_drop": labels.should_drop(name),
            "rejected": int(np.sum(lv[sel] != Level.OK.name)),
            "rejection_rate": float(np.mean(lv[sel] != Level.OK.name)),
            "mean_score": float(scores[sel].mean()),
        }
    out["per_label"] = per_label
    if keep_s.size:
        thr = threshold_for_false_reject_rate(keep_s, target_frr)
        out["threshold_for_target_frr"] = {
            "target_false_reject_rate": target_frr,
            "threshold": thr,
            "false_reject_rate": float(np.mean(keep_s < thr)),
            "recall": float(np.mean(drop_s < thr)) if drop_s.size else None,
            "keep_frames": int(keep_s.size),
        }
    if topic is not None:
        out["segments"] = _segment_delays(items, labels, topic)
    return out


def _segment_delays(items: list, labels: Labels, topic: str) -> list[dict[str, Any]]:
    segs = []
    origin = labels.origin_ns or 0
    for s in labels.segments_for(topic):
        inside = sorted(
            ((t, r) for r, t, _, _ in items if s.contains(t) and labels.label_at(topic, t) == s.label),
            key=lambda x: x[0],
        )
        first = next(((i, t) for i, (t, r) in enumerate(inside) if r.verdict == "drop"), None)
        segs.append(
            {
                "label": s.label,
                "should_drop": labels.should_drop(s.label),
                "start_s": (s.start_ns - origin) / 1e9,
                "end_s": (s.end_ns - origin) / 1e9,
                "frames": len(inside),
                "rejected": sum(r.verdict == "drop" for _, r in inside),
                "detected": first is not None,
                "detection_delay_s": (first[1] - s.start_ns) / 1e9 if first else None,
                "detection_delay_frames": first[0] if first else None,
            }
        )
    return segs


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


# --- bag copy with quality messages ---
def write_quality_bag(
    reader: BagReader,
    rows: list[FrameRow],
    out_path: Path,
    thresholds: Thresholds,
    backend: str,
    storage: str = "mcap",
) -> Path:
    """Copy every readable message of ``reader`` into a new rosbag2 at ``out_path`` and add one
    ``T/quality`` DiagnosticArray per scored frame, at the frame's bag time."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from hirqa_ros.bag.quality import DIAGNOSTIC_ARRAY, diagnostic_array, quality_status_fields, quality_topic

    if any(not s.is_cdr for s in reader.sources):
        raise ValueError("only ROS 2 (CDR) bags can be copied; convert ROS 1 bags with rosbags-convert first")
    if out_path.exists():
        raise FileExistsError(f"{out_path} exists; remove it or choose another --out")
    by_key: dict[tuple[str, int], deque[FrameRow]] = defaultdict(deque)
    for r in rows:
        if r.score is not None and r.stamp_ns is not None:
            by_key[(r.topic, r.bag_time_ns)].append(r)
    ts = reader.typestore
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    hdr_t = ts.types["std_msgs/msg/Header"]
    time_t = ts.types["builtin_interfaces/msg/Time"]
    with Writer(out_path, version=9, storage_plugin=plugin) as w:
        conns: dict[str, Any] = {}
        for topic, info in reader.topics.items():
            conns[topic] = _add_copy_connection(w, info, reader)
        qconns = {
            t: w.add_connection(quality_topic(t), DIAGNOSTIC_ARRAY, typestore=ts)
            for t in {r.topic for r in rows}
        }
        seq: dict[str, int] = defaultdict(int)
        for m in reader.messages():
            conn = conns.get(m.topic)
            if conn is not None and m.msgtype == reader.topics[m.topic].msgtype:
                w.write(conn, m.bag_time_ns, m.raw)
            queue = by_key.get((m.topic, m.bag_time_ns))
            if queue:
                r = queue.popleft()
                header = hdr_t(
                    stamp=time_t(sec=r.stamp_ns // 1_000_000_000, nanosec=r.stamp_ns % 1_000_000_000),
                    frame_id=r.frame_id,
                )
                seq[r.topic] += 1
                status = quality_status_fields(
                    r.topic,
                    r.score,
                    Level[r.level],
                    r.smoothed,
                    thresholds,
                    backend,
                    frame_id=r.frame_id,
                    sequence=seq[r.topic],
                    batch_size=r.batch_size,
                )
                msg = diagnostic_array(ts, header, status)
                w.write(qconns[r.topic], m.bag_time_ns, ts.serialize_cdr(msg, DIAGNOSTIC_ARRAY))
    return out_path


def _add_copy_connection(w: Any, info: Any, reader: BagReader) -> Any:
    kw = {"offered_qos_profiles": info.qos}
    if info.msgdef and info.digest:
        return w.add_connection(info.topic, info.msgtype, msgdef=info.msgdef, rihs01=info.digest, **kw)
    for src in reader.sources:
        if info.msgtype in src.typestore.fielddefs:
            return w.add_connection(info.topic, info.msgtype, typestore=src.typestore, **kw)
    reader.problems.append(f"bag copy: no definition for {info.msgtype}; topic {info.topic} not copied")
    return None


__all__ = [
    "CSV_COLUMNS",
    "BagOpenError",
    "EvalResult",
    "FrameRow",
    "NothingToEvaluate",
    "evaluate_bag",
    "label_metrics",
    "read_frames_csv",
    "write_frames_csv",
    "write_quality_bag",
]
