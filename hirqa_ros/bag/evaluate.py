"""Offline bag evaluation: every image message goes through the node's per-frame pipeline
(``monitor.CameraMonitor`` per topic, ``monitor.run_frames``), then frames.csv + summary.json
(+ label metrics, plots, a bag copy with ``B_quality`` messages) are written.

The output folder is checked before any work (:class:`OutputError`); results are written into a
staging folder inside it and moved into place at the end, so a failed write (full disk) leaves no
half-written file. Labels are validated before scoring and checked against the frames after it."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hirqa_ros.bag.decoding import decoded_frames
from hirqa_ros.bag.frames import CSV_COLUMNS, FrameRow, read_frames_csv, write_frames_csv
from hirqa_ros.bag.labels import Labels, LabelsError
from hirqa_ros.bag.quality_bag import write_quality_bag
from hirqa_ros.bag.reader import BagOpenError, BagReader
from hirqa_ros.bag.summary import build_summary
from hirqa_ros.constants import DEFAULT_MAX_PIXELS, DEFAULT_MIN_IMAGE_SIDE
from hirqa_ros.content import ContentLimits
from hirqa_ros.decision import Thresholds
from hirqa_ros.evaluation.label_metrics import label_metrics
from hirqa_ros.files import write_json
from hirqa_ros.interrupts import is_interrupt
from hirqa_ros.monitor import CameraMonitor, Checked, refused
from hirqa_ros.pipeline import stream_results
from hirqa_ros.reference import ReferenceParams

log = logging.getLogger(__name__)


class NothingToEvaluate(RuntimeError):
    """The bag opened but holds nothing that can be scored (no image topic, unknown topics)."""


class OutputError(RuntimeError):
    """The output folder cannot take the results (not a folder, not writable, no space)."""


MIN_FREE_BYTES = 10 * 2**20


def check_out_dir(out: Path) -> None:
    """Create ``out`` if needed and make sure a file can be written there; raises :class:`OutputError`."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".hirqa-write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise OutputError(f"--out {out}: only {free / 2**20:.1f} MB free; free some space or choose "
                          "another folder")


@dataclass
class EvalResult:
    rows: list[FrameRow]
    summary: dict[str, Any]
    problems: list[str]
    out_dir: Path
    files: dict[str, str] = field(default_factory=dict)

    interrupted: bool = False
    labels_error: str = ""  # labels that match no frame at all (the metrics are meaningless)

    @property
    def scored(self) -> int:
        return sum(r.score is not None for r in self.rows)

    @property
    def label_problems(self) -> list[str]:
        return [p for p in self.problems if p.startswith("labels:")]


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
    content: ContentLimits | None = None,
    reference: ReferenceParams | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    model: str | Path | None = None,
    backend: str = "auto",
    input_policy: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    batch: int = 8,
    target_frr: float = 0.01,
    write_bag: bool = False,
    plots: bool = True,
    progress: bool = True,
    scorer: Any = None,
) -> EvalResult:
    """Evaluate one bag into ``out_dir``. Raises BagOpenError / NothingToEvaluate when nothing is readable.

    ``thresholds``, ``smoothing`` and ``min_side`` mean what the node's parameters of the same names
    mean; each topic is one camera, judged exactly as the node judges it (``content``: the
    no-content and frozen limits, frozen on the bag's record clock; ``reference``: the reference gate,
    on the header stamps (None: its defaults); ``max_pixels``: larger frames are scored as
    native-resolution tiles; ``model``, ``backend``, ``input_policy``, ``device``, ``precision``: as
    ``load_scorer``'s, unless a loaded ``scorer`` is given). Raises :class:`OutputError` before any
    work when ``out_dir`` cannot take the results, and ``LabelsError`` when the labels file is unusable."""
    out = Path(out_dir)
    if labels is not None and not isinstance(labels, Labels):
        Labels.load(labels, bag_start_ns=0)  # the file's own problems, before any work
    check_out_dir(out)
    t_start = time.perf_counter()
    reader = BagReader(bag)
    problems = reader.problems  # shared list: reader keeps appending while iterating
    for p in problems:
        log.warning("%s", p)
    n_logged = len(problems)
    try:
        chosen = _labelled_topics(reader, topics, labels, problems)
        if scorer is None:
            from hirqa_ros import load_scorer

            scorer = load_scorer(model=model, backend=backend, input_policy=input_policy, device=device,
                                 precision=precision)
        th_source, thresholds = (("command line", thresholds) if thresholds is not None
                                 else ("model card", getattr(scorer, "thresholds", None) or Thresholds()))
        log.info(
            "scoring %s with backend %s, input policy %s, thresholds warn=%g error=%g (%s), smoothing %g, "
            "min image side %d, batch %d", ", ".join(chosen), getattr(scorer, "backend", "?"),
            getattr(scorer, "input_policy", "?"), thresholds.warn, thresholds.error, th_source, smoothing,
            min_side, batch,
        )
        reference = reference or ReferenceParams()
        monitors = {t: CameraMonitor(t, thresholds, smoothing, min_side, content=content, reference=reference)
                    for t in chosen}
        t_setup = time.perf_counter() - t_start
        t0 = time.perf_counter()
        rows, interrupted = _score_messages(reader, chosen, monitors, scorer, max(1, int(batch)), progress,
                                            max_pixels)
        t_loop = time.perf_counter() - t0

        lab, labels_error = _match_labels(labels, drop_labels, rows, chosen, problems)
        for p in problems[n_logged:]:
            log.warning("%s", p)
        summary = build_summary(rows, chosen, reader, scorer, thresholds, th_source, smoothing, t_loop, lab,
                                target_frr, problems, batch=batch, min_side=min_side)
        _add_run_facts(summary, rows, t_setup, interrupted, max_pixels, content, reference)
        result = EvalResult(rows, summary, problems, out, interrupted=interrupted, labels_error=labels_error)
        _write_outputs(result, reader, _bag_name(bag) + "_quality" if write_bag else None, plots, lab,
                       thresholds, str(getattr(scorer, "backend", "")))
        return result
    finally:
        reader.close()


def _labelled_topics(reader: BagReader, topics: Sequence[str] | None, labels: str | Path | Labels | None,
                     problems: list[str]) -> list[str]:
    """:func:`choose_topics`, then the labels' topics checked against them (problems appended)."""
    chosen = choose_topics(reader, topics, problems)
    if isinstance(labels, Labels):
        problems.extend(labels.check_topics(reader.topics, chosen))
    elif labels is not None:
        problems.extend(Labels.load(labels, bag_start_ns=0).check_topics(reader.topics, chosen))
    return chosen


def _match_labels(labels: str | Path | Labels | None, drop_labels: Sequence[str] | None, rows: list[FrameRow],
                  topics: list[str], problems: list[str]) -> tuple[Labels | None, str]:
    """The labels (with ``drop_labels``) checked against the scored frames' times: (labels or None,
    the error when they match no frame at all, else ""); problems are appended to ``problems``."""
    if labels is None:
        return None, ""
    if not isinstance(labels, Labels):
        labels = Labels.load(labels, bag_start_ns=_origin(rows, labels))
    lab = labels.with_drop_labels(drop_labels)
    times: dict[str, list[int]] = {t: [] for t in topics}
    for r in rows:
        t = r.stamp_ns if lab.clock == "stamp" else r.bag_time_ns
        if t is not None:
            times[r.topic].append(t)
    try:
        problems.extend(lab.check_times(times))
    except LabelsError as exc:
        problems.append(f"labels: {exc}")
        return lab, str(exc)
    return lab, ""


def _add_run_facts(summary: dict[str, Any], rows: list[FrameRow], t_setup: float, interrupted: bool,
                   max_pixels: int, content: ContentLimits | None, reference: ReferenceParams) -> None:
    """The summary's facts of the run itself: set-up time, completeness, frame checks, reasons."""
    summary["overall"]["setup_time_s"] = t_setup
    summary["interrupted"] = interrupted
    summary["complete"] = not interrupted
    summary["max_pixels"] = max_pixels
    summary["content_limits"] = vars(content or ContentLimits())
    summary["reference_gate"] = asdict(reference)
    reasons: dict[str, int] = {}
    for r in rows:
        if r.reason:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    summary["overall"]["reasons"] = reasons


def _write_outputs(result: EvalResult, reader: BagReader, bag_copy: str | None, plots: bool,
                   labels: Labels | None, thresholds: Thresholds, backend: str) -> None:
    """frames.csv, the bag copy (``bag_copy`` name, None: none), plots, then summary.json: written
    into a staging folder inside the output folder, then each moved into place (summary.json last),
    so no file is ever half-written. Raises :class:`OutputError` when writing fails (full disk)."""
    out = result.out_dir
    stage = Path(tempfile.mkdtemp(prefix=".hirqa-bag-eval-", dir=out))
    try:
        write_frames_csv(result.rows, stage / "frames.csv")
        result.files["frames"] = str(out / "frames.csv")
        if bag_copy:
            try:
                write_quality_bag(reader, result.rows, stage / bag_copy, thresholds, backend)
                result.files["bag"] = str(out / bag_copy)
            except OSError:
                raise
            except Exception as exc:
                shutil.rmtree(stage / bag_copy, ignore_errors=True)
                result.problems.append(f"could not write the bag copy with quality messages: {exc}")
        if plots and result.scored:
            _plot(result, labels, thresholds, stage)
        result.summary["files"] = {**result.files, "summary": str(out / "summary.json")}
        result.summary["problems"] = list(result.problems)
        write_json(stage / "summary.json", result.summary)
        for item in sorted(stage.iterdir(), key=lambda p: p.name == "summary.json"):
            dest = out / item.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(item, dest)
        result.files["summary"] = str(out / "summary.json")
    except OSError as exc:
        raise OutputError(f"cannot write the results to {out} ({exc.strerror or exc}); no half-written "
                          "file was left (free space or choose another --out and run again)") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _plot(result: EvalResult, labels: Labels | None, thresholds: Thresholds, stage: Path) -> None:
    try:
        from hirqa_ros.bag.plots import plot_histograms, plot_timeline

        out = result.out_dir
        timeline = plot_timeline(result.rows, stage, labels, thresholds)
        result.files["timeline"] = [str(out / Path(p).name) for p in timeline]
        plot_histograms(result.rows, stage / "score_histogram.png", labels, thresholds)
        result.files["histogram"] = str(out / "score_histogram.png")
    except OSError:
        raise
    except Exception as exc:  # plots are a convenience; never lose the numbers for them
        result.problems.append(f"plots failed: {exc}")


def _bag_name(bag: str | Path) -> str:
    p = Path(bag)
    return p.stem if p.is_file() else p.name


def _origin(rows: list[FrameRow], labels_path: str | Path) -> int | None:
    """Default origin of relative label times: first image message, in the labels' clock."""
    try:
        from hirqa_ros.files import load_untrusted

        clock = (load_untrusted(labels_path, "labels") or {}).get("clock", "stamp")
    except Exception:
        clock = "stamp"
    times = [r.stamp_ns if clock == "stamp" else r.bag_time_ns for r in rows]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def _score_messages(
    reader: BagReader, topics: list[str], monitors: dict[str, CameraMonitor], scorer: Any, batch: int,
    progress: bool, max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[FrameRow], bool]:
    """Every message through its topic's monitor in bag order, scored ``batch`` frames at a time;
    the rows and whether SIGINT interrupted the run (the rows so far are kept)."""
    from tqdm import tqdm

    counts = [reader.topics[t].count for t in topics]
    total = None if any(c is None for c in counts) else sum(counts)
    rows: list[FrameRow] = []
    bar = tqdm(total=total, unit="frame", desc="bag-eval", dynamic_ncols=True, disable=not progress)
    frames = decoded_frames(reader, topics)

    def admitted() -> Iterator[tuple[FrameRow, Checked]]:
        for row, rgb in frames:
            rows.append(row)
            bar.update(1)
            if rgb is None:  # refused while decoding (refusals: decode_error, too_large)
                continue
            checked = monitors[row.topic].check(rgb, row.stamp_ns, clock_s=row.bag_time_ns / 1e9)
            if checked.result is not None:
                row.apply(checked.result)
                continue
            yield row, checked

    interrupted = False
    try:
        for row, res in stream_results(scorer, admitted(), batch, max_pixels):  # the doors' batching loop
            row.apply(res)
    except (KeyboardInterrupt, SystemError) as exc:
        if not is_interrupt(exc):
            raise
        interrupted = True
        reader.problems.append(f"interrupted after {len(rows)} messages; partial results written")
        for r in rows:
            if r.score is None and not r.verdict:
                r.apply(refused("interrupted", "not scored (interrupted)"))
    finally:
        frames.close()
        bar.close()
    return rows, interrupted


__all__ = [
    "CSV_COLUMNS",
    "BagOpenError",
    "EvalResult",
    "FrameRow",
    "NothingToEvaluate",
    "OutputError",
    "evaluate_bag",
    "label_metrics",
    "read_frames_csv",
    "write_frames_csv",
    "write_quality_bag",
]
