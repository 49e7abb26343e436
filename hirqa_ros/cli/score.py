"""``hirqa score``: quality scores for images, folders (recursive) and videos."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hirqa_ros.cli.frame_checks import add_frame_check_arguments, gate_options
from hirqa_ros.cli.options import add_model_options
from hirqa_ros.cli.ranges import ranged, thresholds
from hirqa_ros.interrupts import is_interrupt

if TYPE_CHECKING:
    from hirqa_ros.monitor import FrameResult
    from hirqa_ros.pipeline import Monitor

HELP = "score images, folders (recursive) and videos (every Nth frame); higher = better quality"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, video files or folders")
    add_model_options(parser)
    parser.add_argument(
        "--every", type=ranged(int, 1, 1_000_000), default=1, metavar="N",
        help="score every Nth video frame (default 1)"
    )
    parser.add_argument("--batch-size", type=ranged(int, 1, 1024), default=8, metavar="B",
                        help="frames per inference batch, 1..1024 (default 8)")
    parser.add_argument("--threshold", type=thresholds, metavar="WARN[,ERROR]",
                        help="score thresholds, as bag-eval's (default: the model card's for the precision "
                        "that runs; a card without thresholds needs this)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument(
        "--jsonl",
        action="store_true",
        help='one JSON object per frame: {"source", "frame", "score", "level", "fault", "fault_confidence"} '
        '(fault keys null without a fault head; + "reason" for a frame that is ERROR whatever its score, '
        'e.g. "no_content: black", "tiles" for one above --max-pixels, and "notes", e.g. '
        '{"fault_head_disagrees": ...} when the score and a confident fault head contradict each other)',
    )
    fmt.add_argument(
        "--csv",
        action="store_true",
        help="CSV with a header row: " + ",".join(COLUMNS) + " (fault columns empty without a fault head)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_frame_check_arguments(parser, "video time (still images are never frozen)")


COLUMNS = ("source", "frame", "score", "level", "reason", "fault", "fault_confidence", "error")


class _Output:
    """Streams jsonl/csv rows, or collects rows for an aligned table printed at the end (its fault
    columns only when the model has a fault head: ``faults``). A refused frame (``refusals``) is a row
    too, with no score, its ``reason`` and the message as ``error`` (and on stderr); ``scored`` and
    ``failures`` count the two kinds."""

    def __init__(self, mode: str, stream=None, faults: bool = True) -> None:
        self.mode, self.stream, self.rows = mode, stream or sys.stdout, []
        self.columns = COLUMNS[:7] if faults or mode != "table" else COLUMNS[:5]
        self.scored = self.failures = 0
        if mode == "csv":
            self.writer = csv.writer(self.stream, lineterminator="\n")
            self.writer.writerow(COLUMNS)

    def result(self, source: str, frame: int | None, res: FrameResult) -> None:
        """One frame's result from the pipeline."""
        if not res.scored:
            self.refused(source, frame, res.reason, res.message)
            return
        self.scored += 1
        self.add(source, frame, res.score, res.level.name, res.reason, res.tiles, res.fault,
                 res.fault_confidence, res.notes)

    def refused(self, source: str, frame: int | None, reason: str, message: str) -> None:
        """A frame (or file) with no score: ``reason`` from ``refusals``, ``message`` the detail."""
        from tqdm import tqdm

        self.failures += 1
        where = "" if frame is None else f"frame {frame}: "
        tqdm.write(f"error: {source}: {where}{message}", file=sys.stderr)
        self.add(source, frame, None, None, reason, error=message)

    def add(self, source: str, frame: int | None, score: float | None, level: str | None, reason: str = "",
            tiles: int = 1, fault: str | None = None, fault_confidence: float | None = None,
            notes: tuple[tuple[str, str], ...] = (), error: str = "") -> None:
        conf = None if fault_confidence is None else round(float(fault_confidence), 4)
        if self.mode == "jsonl":
            row = {"source": source, "frame": frame, "score": None if score is None else round(score, 6),
                   "level": level, "fault": fault, "fault_confidence": conf}
            if reason:
                row["reason"] = reason
            if error:
                row["error"] = error
            if notes:
                row["notes"] = dict(notes)
            if tiles > 1:
                row["tiles"] = tiles
            self.stream.write(json.dumps(row) + "\n")
            self.stream.flush()  # a stream: consumers (and a Ctrl-C) see every finished row
        else:  # the CSV and the table have fixed columns: notes go to stderr
            where = source if frame is None else f"{source} frame {frame}"
            for kind, text in notes:
                print(f"note: {where}: {kind}: {text}", file=sys.stderr)
        if self.mode == "csv":
            self.writer.writerow([source, "" if frame is None else frame,
                                  "" if score is None else f"{score:.6f}", level or "", reason, fault or "",
                                  "" if conf is None else f"{conf:.4f}", error])
            self.stream.flush()
        elif self.mode == "table":
            row = (source, "" if frame is None else str(frame), "-" if score is None else f"{score:.4f}",
                   level or "-", reason or "-", fault or "-", "-" if conf is None else f"{conf:.2f}")
            self.rows.append(row[: len(self.columns)])

    def close(self, interrupted: bool = False) -> None:
        """Print the table (table mode); ``interrupted`` labels it as partial."""
        if self.mode != "table" or not self.rows:
            self.stream.flush()
            return
        n = len(self.columns)
        widths = [max(len(r[i]) for r in [self.columns, *self.rows]) for i in range(n)]
        align = ["<", ">", ">", "<", "<", "<", ">"]
        for r in [self.columns, *self.rows]:
            cells = [f"{r[i]:{align[i]}{widths[i]}}" for i in range(n)]
            self.stream.write("  ".join(cells).rstrip() + "\n")
        if interrupted:
            self.stream.write(f"# INTERRUPTED: partial results ({self.scored} frame(s) scored before "
                              "SIGINT)\n")
        self.stream.flush()


def open_pipeline(args: argparse.Namespace) -> Monitor | int:
    """The pipeline (``pipeline.open_monitor``) for the model and gate options of ``args``, or the exit
    code after saying why there is none."""
    from hirqa_ros.artifacts import ArtifactError
    from hirqa_ros.backends.base import BackendUnavailable
    from hirqa_ros.pipeline import open_monitor

    try:
        return open_monitor(args.model, args.backend, input_policy=args.input_policy, device=args.device,
                            precision=args.precision, batch_size=args.batch_size, **gate_options(args))
    except (ArtifactError, BackendUnavailable, ValueError) as exc:  # a card without thresholds too
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted while loading the model; nothing scored", file=sys.stderr)
        return 130


def _score_file(path: Path, monitor: Monitor, every: int, out: _Output, bar: bool) -> None:
    """One file (an image, or a video as one stream) through the pipeline, rows to ``out``."""
    from tqdm import tqdm

    from hirqa_ros import media

    cam = monitor.camera(str(path))
    frames_bar = None
    if bar and media.kind_of(path) == "video":
        n = media.video_frame_count(path)
        frames_bar = tqdm(total=(n + every - 1) // every or None, desc=path.name, unit="frame",
                          file=sys.stderr, leave=False, position=1)

    def checked():
        for item in media.iter_file(path, every):
            if frames_bar is not None:
                frames_bar.update(1)
            if isinstance(item, media.MediaError):
                out.refused(item.source, None, item.reason, item.message)
                continue
            yield item, cam.check(item.rgb, clock_s=item.t_s)

    try:
        for frame, res in monitor.results(checked()):
            out.result(frame.source, frame.frame, res)
    finally:
        if frames_bar is not None:
            frames_bar.close()


def run(args: argparse.Namespace) -> int:
    import logging

    from tqdm import tqdm

    from hirqa_ros import media

    monitor = open_pipeline(args)
    if isinstance(monitor, int):
        return monitor
    out = _Output("jsonl" if args.jsonl else "csv" if args.csv else "table",
                  faults=monitor.fault_classes is not None)
    files, missing = media.expand(args.paths)
    for err in missing:
        out.refused(err.source, None, err.reason, err.message)
    progress = tqdm(files, desc="scoring", unit="file", file=sys.stderr,
                    disable=True if args.no_progress else None, leave=False)
    interrupted = False
    try:
        for path in progress:  # one stream per file
            _score_file(path, monitor, args.every, out, not progress.disable)
    except (KeyboardInterrupt, SystemError) as exc:  # keep what was scored, say it is partial
        if not is_interrupt(exc):
            raise
        interrupted = True
    progress.close()
    out.close(interrupted)
    if interrupted:
        print(f"interrupted: partial results, {out.scored} frame(s) scored; exit 130", file=sys.stderr)
        return 130
    if out.scored == 0 and out.failures == 0:
        print("error: no images or videos found in " + " ".join(args.paths), file=sys.stderr)
        return 1
    logging.getLogger("hirqa.score").info("scored %d frame(s) from %d file(s) with %s; %d failure(s)",
                                          out.scored, len(files), monitor.scorer.backend, out.failures)
    return 1 if out.failures else 0
