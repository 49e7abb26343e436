"""One unit of fleet work, the same on every engine: evaluate a whole bag into a staging folder with
one loaded scorer, then add the worst frames' thumbnails and the accepted-frames bag."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hirqa_ros.bag.fleet import FleetOptions

THUMBS_DIR = "thumbs"
THUMBS_FILE = "thumbs.json"
THUMB_WIDTH = 192
TOKEN_FILE = ".driver-token"


@dataclass
class BagJob:
    """A bag to evaluate: ``stage`` is the driver's staging folder, holding ``token`` in
    :data:`TOKEN_FILE` so a worker can tell whether it sees the driver's file system."""

    name: str
    path: str
    labels: str | None
    stage: str
    token: str


@dataclass
class BagOutcome:
    """What a worker sends back: ``status`` done / failed / interrupted, and when the worker did not
    share the driver's file system, the result folder as a tar archive (``archive``)."""

    name: str
    status: str
    error: str = ""
    frames: int = 0
    scored: int = 0
    bag_duration_s: float = 0.0
    wall_s: float = 0.0
    worker: str = ""
    archive: bytes | None = None
    problems: list[str] = field(default_factory=list)


def load_worker_scorer(opts: FleetOptions, threads: int | None = None) -> Any:
    """The worker's one scorer (``threads``: ONNX Runtime intra-op threads, None = its default)."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    from hirqa_ros import load_scorer

    return load_scorer(model=opts.model, backend=opts.backend, input_policy=opts.input_policy,
                       device=opts.device, precision=opts.precision)


class FrameCounter:
    """``scorer`` that calls ``tick(bag, frames)`` after each inference call (live frame progress);
    everything else is the scorer's own."""

    def __init__(self, scorer: Any, bag: str, tick: Callable[[str, int], None]) -> None:
        self._scorer = scorer
        for name in ("infer", "score"):
            fn = getattr(scorer, name, None)
            if fn is not None:
                setattr(self, name, self._counted(fn, bag, tick))

    @staticmethod
    def _counted(fn: Callable, bag: str, tick: Callable[[str, int], None]) -> Callable:
        def call(frames: Any, *a: Any, **kw: Any) -> Any:
            out = fn(frames, *a, **kw)
            try:
                tick(bag, len(frames))
            except Exception:  # progress is a convenience: never lose a bag for it
                pass
            return out
        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)


def run_job(job: BagJob, opts: FleetOptions, scorer: Any,
            tick: Callable[[str, int], None] | None = None) -> BagOutcome:
    """Evaluate ``job``'s bag with ``scorer`` into its staging folder (or a local one, shipped back);
    ``tick(bag, frames)`` is called as frames are scored."""
    if tick is not None:
        scorer = FrameCounter(scorer, job.name, tick)
    stage = Path(job.stage)
    shared = _sees_driver(stage, job.token)
    work = stage if shared else Path(tempfile.mkdtemp(prefix="hirqa-fleet-"))
    who = f"{socket.gethostname()}:{os.getpid()}"
    t0 = time.perf_counter()
    try:
        return _evaluate(job, opts, scorer, work, shared, who, t0)
    finally:
        if not shared:
            shutil.rmtree(work, ignore_errors=True)


def _evaluate(job: BagJob, opts: FleetOptions, scorer: Any, work: Path, shared: bool, who: str,
              t0: float) -> BagOutcome:
    from hirqa_ros.artifacts import ArtifactError
    from hirqa_ros.bag.evaluate import BagOpenError, NothingToEvaluate, OutputError, evaluate_bag
    from hirqa_ros.bag.labels import LabelsError

    try:
        res = evaluate_bag(job.path, work, labels=job.labels, progress=False, scorer=scorer, **opts.evaluate)
    except (BagOpenError, NothingToEvaluate, LabelsError, OutputError, ArtifactError) as exc:
        return BagOutcome(job.name, "failed", error=str(exc), worker=who, wall_s=time.perf_counter() - t0)
    o = res.summary["overall"]
    out = BagOutcome(job.name, "interrupted" if res.interrupted else "done", frames=o["frames"],
                     scored=o["scored"], bag_duration_s=o["bag_duration_s"], worker=who,
                     problems=list(res.problems))
    if not res.interrupted:
        _extras(job, opts, res, work, out)
        if not shared:
            out.archive = _tar(work)
    out.wall_s = time.perf_counter() - t0
    return out


def _extras(job: BagJob, opts: FleetOptions, res: Any, work: Path, out: BagOutcome) -> None:
    """Thumbnails of the worst frames and the accepted-frames bag (problems noted, never fatal)."""
    from hirqa_ros.bag.reader import BagReader

    try:
        with BagReader(job.path) as reader:
            if opts.thumbs:
                write_thumbnails(reader, res.rows, work, opts.thumbs)
            if opts.write_accepted:
                from hirqa_ros.bag.accepted_bag import write_accepted_bag

                counts = write_accepted_bag(reader, res.rows, work / f"{job.name}_accepted")
                (work / "accepted.json").write_text(json.dumps(counts, indent=2) + "\n")
    except Exception as exc:  # the scores are written; an extra failing must not lose them
        out.problems.append(f"thumbnails/accepted bag failed: {exc}")


def worst_frames(rows: list[Any], per_family: int) -> list[Any]:
    """The ``per_family`` lowest-scored rejected frames of each fault family (``rejected`` without a
    fault head), in score order."""
    fams: dict[str, list[Any]] = {}
    for r in rows:
        if r.verdict == "drop" and r.score is not None:
            fams.setdefault(r.fault or "rejected", []).append(r)
    picked = []
    for rs in fams.values():
        picked.extend(sorted(rs, key=lambda r: r.score)[:per_family])
    return picked


def write_thumbnails(reader: Any, rows: list[Any], out: Path, per_family: int) -> list[dict[str, Any]]:
    """``thumbs/*.jpg`` (JPEG, :data:`THUMB_WIDTH` px wide) and ``thumbs.json`` for :func:`worst_frames`."""
    import cv2

    from hirqa_ros.imgmsg import msg_to_rgb

    want = {(r.topic, r.bag_time_ns): r for r in worst_frames(rows, per_family)}
    entries: list[dict[str, Any]] = []
    (out / THUMBS_DIR).mkdir(exist_ok=True)
    topics = sorted({t for t, _ in want})
    for m in reader.messages(topics) if want else ():
        r = want.pop((m.topic, m.bag_time_ns), None)
        if r is None:
            continue
        rgb = msg_to_rgb(reader.deserialize(m))
        h, w = rgb.shape[:2]
        size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        name = f"{THUMBS_DIR}/{len(entries):03d}.jpg"
        cv2.imwrite(str(out / name), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        entries.append({"file": name, "topic": r.topic, "bag_time_ns": r.bag_time_ns, "stamp_ns": r.stamp_ns,
                        "score": r.score, "level": r.level, "fault": r.fault or "rejected",
                        "fault_confidence": r.fault_confidence})
        if not want:
            break
    (out / THUMBS_FILE).write_text(json.dumps(entries, indent=2) + "\n")
    return entries


def _sees_driver(stage: Path, token: str) -> bool:
    try:
        return (stage / TOKEN_FILE).read_text() == token
    except OSError:
        return False


def _tar(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(folder.iterdir()):
            if p.name != TOKEN_FILE:
                tar.add(p, arcname=p.name)
    return buf.getvalue()


def untar(archive: bytes, dest: Path) -> None:
    """Unpack a worker's result archive into the driver's staging folder."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        tar.extractall(dest, filter="data")
