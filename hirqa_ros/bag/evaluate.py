"""Offline bag evaluation: every image message goes through the node's per-frame pipeline
(``monitor.CameraMonitor`` per topic, ``monitor.run_frames``), then frames.csv + summary.json
(+ label metrics, plots, a bag copy with ``B_quality`` messages) are written."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hirqa_ros.bag.decoding import decoded_frames
from hirqa_ros.bag.frames import CSV_COLUMNS, FrameRow, read_frames_csv, write_frames_csv
from hirqa_ros.bag.labels import Labels
from hirqa_ros.bag.quality_bag import write_quality_bag
from hirqa_ros.bag.reader import BagOpenError, BagReader
from hirqa_ros.bag.summary import build_summary
from hirqa_ros.constants import DEFAULT_MIN_IMAGE_SIDE
from hirqa_ros.decision import Thresholds
from hirqa_ros.evaluation.label_metrics import label_metrics
from hirqa_ros.files import write_json
from hirqa_ros.monitor import CameraMonitor, Checked, refused, run_frames

log = logging.getLogger(__name__)


class NothingToEvaluate(RuntimeError):
    """The bag opened but holds nothing that can be scored (no image topic, unknown topics)."""


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
                have = ", ".join(sorted(reader.topics)) or "none"
                problems.append(f"topic {t} is not in the bag (it has: {have})")
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
    skipped = f" (not images, skipped: {', '.join(others)})" if others else ""
    log.info("image topics found: %s%s", ", ".join(chosen), skipped)
    for t in chosen:
        if reader.topics[t].count == 0:
            problems.append(f"topic {t} has no messages")
    return chosen


def evaluate_bag(
    bag: str | Path,
    out_dir: str | Path,
    *,
    topics: Sequence[str] | None = None,
    labels: str | Path | Labels | None = None,
    drop_labels: Sequence[str] | None = None,
    thresholds: Thresholds | None = None,
    smoothing: float = 0.0,
    min_side: int = DEFAULT_MIN_IMAGE_SIDE,
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
    """Evaluate one bag into ``out_dir``. Raises BagOpenError / NothingToEvaluate when nothing is readable.

    ``thresholds``, ``smoothing`` and ``min_side`` mean what the node's parameters of the same names
    mean; each topic is one camera, judged exactly as the node judges it."""
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
        th_source = "command line" if thresholds is not None else "model card"
        if thresholds is None:
            thresholds = getattr(scorer, "thresholds", None) or Thresholds()
        log.info(
            "scoring %s with backend %s, input policy %s, thresholds warn=%g error=%g (%s), smoothing %g, "
            "min image side %d, batch %d", ", ".join(chosen), getattr(scorer, "backend", "?"),
            getattr(scorer, "input_policy", "?"), thresholds.warn, thresholds.error, th_source, smoothing,
            min_side, batch,
        )
        monitors = {t: CameraMonitor(t, thresholds, smoothing, min_side) for t in chosen}
        t_setup = time.perf_counter() - t_start
        t0 = time.perf_counter()
        rows = _score_messages(reader, chosen, monitors, scorer, max(1, int(batch)), progress)
        t_loop = time.perf_counter() - t0
        for p in problems[n_logged:]:
            log.warning("%s", p)

        lab = None
        if labels is not None:
            if not isinstance(labels, Labels):
                labels = Labels.load(labels, bag_start_ns=_origin(rows, labels))
            lab = labels
            lab = lab.with_drop_labels(drop_labels)
        summary = build_summary(rows, chosen, reader, scorer, thresholds, th_source, smoothing, t_loop, lab,
                                target_frr, problems, batch=batch, min_side=min_side)
        summary["overall"]["setup_time_s"] = t_setup
        result = EvalResult(rows, summary, problems, out)
        _write_outputs(result, reader, _bag_name(bag) + "_quality" if write_bag else None, plots, lab,
                       thresholds, str(getattr(scorer, "backend", "")))
        return result
    finally:
        reader.close()


def _write_outputs(result: EvalResult, reader: BagReader, bag_copy: str | None, plots: bool,
                   labels: Labels | None, thresholds: Thresholds, backend: str) -> None:
    """frames.csv, the bag copy (``bag_copy`` name, None: none), plots, then summary.json."""
    out = result.out_dir
    result.files["frames"] = str(write_frames_csv(result.rows, out / "frames.csv"))
    if bag_copy:
        try:
            path = write_quality_bag(reader, result.rows, out / bag_copy, thresholds, backend)
            result.files["bag"] = str(path)
        except Exception as exc:
            result.problems.append(f"could not write the bag copy with quality messages: {exc}")
    if plots and result.scored:
        _plot(result, labels, thresholds)
    result.summary["files"] = result.files
    result.summary["problems"] = list(result.problems)
    result.files["summary"] = str(write_json(out / "summary.json", result.summary))


def _plot(result: EvalResult, labels: Labels | None, thresholds: Thresholds) -> None:
    try:
        from hirqa_ros.bag.plots import plot_histograms, plot_timeline

        out = result.out_dir
        result.files["timeline"] = [str(p) for p in plot_timeline(result.rows, out, labels, thresholds)]
        hist = plot_histograms(result.rows, out / "score_histogram.png", labels, thresholds)
        result.files["histogram"] = str(hist)
    except Exception as exc:  # plots are a convenience; never lose the numbers for them
        result.problems.append(f"plots failed: {exc}")


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
    reader: BagReader, topics: list[str], monitors: dict[str, CameraMonitor], scorer: Any, batch: int,
    progress: bool,
) -> list[FrameRow]:
    """Every message through its topic's monitor in bag order, scored ``batch`` frames at a time."""
    from tqdm import tqdm

    counts = [reader.topics[t].count for t in topics]
    total = None if any(c is None for c in counts) else sum(counts)
    rows: list[FrameRow] = []
    pending: list[tuple[FrameRow, Checked]] = []

    def flush() -> None:
        for (row, _), res in zip(pending, run_frames(scorer, [c for _, c in pending], batch)):
            row.apply(res)
        pending.clear()

    bar = tqdm(total=total, unit="frame", desc="bag-eval", dynamic_ncols=True, disable=not progress)
    frames = decoded_frames(reader, topics)
    try:
        for row, rgb in frames:
            rows.append(row)
            bar.update(1)
            if rgb is None:
                continue
            checked = monitors[row.topic].check(rgb, row.stamp_ns)
            if checked.result is not None:
                row.apply(checked.result)
                continue
            pending.append((row, checked))
            if len(pending) >= batch:
                flush()
        flush()
    except KeyboardInterrupt:
        reader.problems.append(f"interrupted after {len(rows)} messages; partial results written")
        for r in rows:
            if r.score is None and not r.verdict:
                r.apply(refused("interrupted", "not scored (interrupted)"))
    finally:
        frames.close()
        bar.close()
    return rows


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
