"""``hirqa score``: quality scores for images, folders (recursive) and videos."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from hirqa_ros.cli.frame_checks import add_frame_check_arguments, content_limits, reference_params
from hirqa_ros.cli.options import add_model_options
from hirqa_ros.cli.ranges import ranged, thresholds
from hirqa_ros.interrupts import is_interrupt

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


COLUMNS = ("source", "frame", "score", "level", "reason", "fault", "fault_confidence")


class _Output:
    """Streams jsonl/csv rows, or collects rows for an aligned table printed at the end (its fault
    columns only when the model has a fault head: ``faults``)."""

    def __init__(self, mode: str, stream=None, faults: bool = True) -> None:
        self.mode, self.stream, self.rows = mode, stream or sys.stdout, []
        self.columns = COLUMNS if faults or mode != "table" else COLUMNS[:5]
        if mode == "csv":
            self.writer = csv.writer(self.stream, lineterminator="\n")
            self.writer.writerow(self.columns)

    def add(self, source: str, frame: int | None, score: float, level: str, reason: str = "",
            tiles: int = 1, fault: str | None = None, fault_confidence: float | None = None,
            notes: tuple[tuple[str, str], ...] = ()) -> None:
        conf = None if fault_confidence is None else round(float(fault_confidence), 4)
        if self.mode == "jsonl":
            row = {"source": source, "frame": frame, "score": round(score, 6), "level": level,
                   "fault": fault, "fault_confidence": conf}
            if reason:
                row["reason"] = reason
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
            self.writer.writerow([source, "" if frame is None else frame, f"{score:.6f}", level, reason,
                                  fault or "", "" if conf is None else f"{conf:.4f}"])
            self.stream.flush()
        elif self.mode == "table":
            row = (source, "" if frame is None else str(frame), f"{score:.4f}", level, reason or "-",
                   fault or "-", "-" if conf is None else f"{conf:.2f}")
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
            self.stream.write(f"# INTERRUPTED: partial results ({len(self.rows)} frame(s) scored before "
                              "SIGINT)\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    import logging

    from tqdm import tqdm

    from hirqa_ros import media
    from hirqa_ros.artifacts import ArtifactError, NoDefaultModelError
    from hirqa_ros.backends import BackendUnavailable
    from hirqa_ros.monitor import CameraMonitor, Checked, run_frames
    from hirqa_ros.scorer import load_scorer

    log = logging.getLogger("hirqa.score")
    try:
        scorer = load_scorer(
            args.model,
            backend=args.backend,
            input_policy=args.input_policy,
            device=args.device,
            precision=args.precision,
            batch_size=args.batch_size,
        )
        gate = args.threshold or scorer.thresholds  # a card without thresholds is refused here
    except NoDefaultModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ArtifactError, BackendUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted while loading the model; nothing scored", file=sys.stderr)
        return 130

    out = _Output("jsonl" if args.jsonl else "csv" if args.csv else "table",
                  faults=scorer.fault_classes is not None)
    files, missing = media.expand(args.paths)
    failures = 0
    scored = 0

    def report(err: media.MediaError) -> None:
        nonlocal failures
        failures += 1
        tqdm.write(f"error: {err}", file=sys.stderr)

    for err in missing:
        report(err)
    pending: list[tuple[media.Frame, Checked]] = []

    def flush() -> None:
        nonlocal scored
        results = run_frames(scorer, [c for _, c in pending], args.batch_size, args.max_pixels)
        for (f, _), res in zip(pending, results):
            if res.scored:
                out.add(f.source, f.frame, res.score, res.level.name, res.reason, res.tiles, res.fault,
                        res.fault_confidence, res.notes)
                scored += 1
            else:  # keep going: report the frame as failed
                where = "" if f.frame is None else f"frame {f.frame}: "
                report(media.MediaError(f.source, f"{where}{res.message}"))
        pending.clear()

    interrupted = False
    frames_bar = None
    progress = tqdm(
        files,
        desc="scoring",
        unit="file",
        file=sys.stderr,
        disable=True if args.no_progress else None,
        leave=False,
    )
    try:
        for path in progress:
            # one stream per file
            monitor = CameraMonitor(str(path), gate, 0.0, args.min_image_side,
                                    content=content_limits(args), reference=reference_params(args))
            frames_bar = None
            if media.kind_of(path) == "video" and not progress.disable:
                n = media.video_frame_count(path)
                frames_bar = tqdm(
                    total=(n + args.every - 1) // args.every or None,
                    desc=path.name,
                    unit="frame",
                    file=sys.stderr,
                    leave=False,
                    position=1,
                )
            for item in media.iter_file(path, args.every):
                if frames_bar is not None:
                    frames_bar.update(1)
                if isinstance(item, media.MediaError):
                    report(item)
                    continue
                pending.append((item, monitor.check(item.rgb, clock_s=item.t_s)))
                if len(pending) >= args.batch_size:
                    flush()
            flush()
            if frames_bar is not None:
                frames_bar.close()
    except (KeyboardInterrupt, SystemError) as exc:  # keep what was scored, say it is partial
        if not is_interrupt(exc):
            raise
        interrupted = True
        pending.clear()
        if frames_bar is not None:
            frames_bar.close()
    progress.close()
    out.close(interrupted)
    if interrupted:
        print(f"interrupted: partial results, {scored} frame(s) scored; exit 130", file=sys.stderr)
        return 130
    if scored == 0 and failures == 0:
        print("error: no images or videos found in " + " ".join(args.paths), file=sys.stderr)
        return 1
    log.info(
        "scored %d frame(s) from %d file(s) with %s; %d failure(s)",
        scored,
        len(files),
        scorer.backend,
        failures,
    )
    return 1 if failures else 0
