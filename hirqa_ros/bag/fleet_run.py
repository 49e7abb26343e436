"""The driver of a fleet run: plan the bags, skip finished ones, hand the rest to an engine, commit
each finished bag atomically as it streams back, and on SIGINT/SIGTERM or a lost worker keep every
finished bag and say which are left; then ``fleet.json`` and ``report.html``."""

from __future__ import annotations

import logging
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hirqa_ros.bag.fleet import BagInput, FleetOptions, ResultStore, model_fingerprint, result_key
from hirqa_ros.bag.fleet_job import TOKEN_FILE, BagJob, BagOutcome, untar
from hirqa_ros.bag.fleet_summary import FLEET_FILE, bag_entry, totals
from hirqa_ros.bag.safe_output import relocate_summary
from hirqa_ros.files import write_json

log = logging.getLogger("hirqa.bag-eval")


class ConflictError(RuntimeError):
    """``--out`` holds results of other options, model or bag content, and ``force`` was not given."""


@dataclass
class FleetRun:
    """What a fleet run did: status per bag (done, skipped = finished earlier, failed, left)."""

    out: Path
    status: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None

    @property
    def left(self) -> list[str]:
        return [n for n, s in self.status.items() if s == "left"]

    @property
    def failed(self) -> list[str]:
        return [n for n, s in self.status.items() if s == "failed"]


def _count_frames(path: Path, topics: list[str] | None) -> int | None:
    """Image messages of the bag from its index (None when unknown), for the progress bar."""
    from hirqa_ros.bag.reader import BagReader

    try:
        with BagReader(path) as r:
            ts = [t for t in (topics or r.image_topics()) if t in r.topics]
            counts = [r.topics[t].count for t in ts]
            return None if any(c is None for c in counts) else sum(counts)
    except Exception:
        return None


def run_fleet(bags: list[BagInput], out: Path, opts: FleetOptions, engine_factory: Any, *,
              force: bool = False, progress: bool = True, report: bool = True) -> FleetRun:
    """Evaluate ``bags`` into ``out`` (``bags/<name>/`` each, ``fleet.json``, ``report.html``).
    ``engine_factory()`` makes the engine once there is work. Raises :class:`ConflictError`."""
    model = model_fingerprint(opts.model)
    opts.card_sha256 = model["card_sha256"]
    store = ResultStore(out)
    try:
        return _run(bags, store, model, opts, engine_factory, force, progress, report)
    finally:
        store.close()


def _run(bags: list[BagInput], store: ResultStore, model: dict[str, Any], opts: FleetOptions,
         engine_factory: Any, force: bool, progress: bool, report: bool) -> FleetRun:
    out = store.out
    keys = {b.name: result_key(b, model, opts) for b in bags}
    states = {b.name: store.state(b.name, keys[b.name]) for b in bags}
    other = [n for n, s in states.items() if s == "other"]
    if other and not force:
        raise ConflictError(
            f"--out {out} holds results of other options, another model or another version of the bag for "
            f"{len(other)} bag(s) ({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}); "
            "use --force to replace them (each only once its new result is complete) or choose another --out")
    run = FleetRun(out)
    todo = [b for b in bags if force or states[b.name] != "done"]
    for b in bags:
        run.status[b.name] = "left" if b in todo else "skipped"
    if len(todo) < len(bags):
        print(f"{len(bags) - len(todo)} of {len(bags)} bag(s) already evaluated with the same bag content, "
              "model and options: skipped (--force redoes them)")
    t0 = time.perf_counter()
    if todo:
        _evaluate(todo, store, keys, opts, engine_factory, run, progress)
    wall = time.perf_counter() - t0
    if force:  # a bag redone but interrupted still has its earlier result with the same key
        for b in todo:
            if run.status[b.name] == "left" and states[b.name] == "done":
                run.status[b.name] = "skipped"
    _write_summary(run, bags, store, model, opts, wall)
    if report:
        from hirqa_ros.bag.report import write_report

        run.report = write_report(out, run.summary)
    return run


def _evaluate(todo: list[BagInput], store: ResultStore, keys: dict[str, Any], opts: FleetOptions,
              engine_factory: Any, run: FleetRun, progress: bool) -> None:
    from tqdm import tqdm

    counts = {b.name: _count_frames(b.path, opts.topics) for b in todo}
    known = [c for c in counts.values() if c is not None]
    total = sum(known) if known else None  # a bag without an index (salvaged) adds no total
    kw = {"disable": not progress, "dynamic_ncols": True}
    bars: list[Any] = []
    stages: dict[str, Path] = {}
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    engine = None
    run.summary["engine"] = {}
    t0 = time.perf_counter()
    try:
        engine = engine_factory()
        run.summary["engine"] = engine_info(engine) | {"start_s": time.perf_counter() - t0}
        bars = [tqdm(total=len(todo), unit="bag", desc="bags", position=0, **kw),  # ETA from here on
                tqdm(total=total, unit="frame", desc="frames", position=1, **kw)]
        bar_b, frames = bars[0], FrameProgress(bars[1], counts)
        engine.on_frames = frames.tick
        for job, outcome in engine.outcomes(_jobs(todo, store, stages)):
            stage = stages.pop(job.name)
            _land(job, outcome, stage, store, keys, run)
            bar_b.update(1)
            frames.finish(job.name, outcome.frames)
            if outcome.status == "interrupted":  # SIGINT reached the scoring loop (in-process worker)
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        signal.signal(signal.SIGTERM, old_term)
        for bar in reversed(bars):
            bar.close()
        if engine is not None:
            engine.close(abort=run.interrupted)
        for name, stage in stages.items():  # in flight when the run stopped: nothing of them is kept
            store.discard(stage)
            run.status[name] = "left"


class FrameProgress:
    """The frame bar: live ticks from the workers (scored frames), topped up to each bag's frame
    count when it finishes; never more than a bag's count (late or tiled ticks are clamped)."""

    def __init__(self, bar: Any, counts: dict[str, int | None]) -> None:
        self.bar, self.counts = bar, counts
        self.shown: dict[str, int] = {}
        self.done: set[str] = set()

    def tick(self, bag: str, n: int) -> None:
        if bag in self.done:
            return
        cap = self.counts.get(bag)
        have = self.shown.get(bag, 0)
        add = n if cap is None else max(0, min(n, cap - have))
        self.shown[bag] = have + add
        self.bar.update(add)

    def finish(self, bag: str, frames: int) -> None:
        target = frames or self.counts.get(bag) or 0
        self.bar.update(max(0, target - self.shown.get(bag, 0)))
        self.done.add(bag)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _jobs(todo: list[BagInput], store: ResultStore, stages: dict[str, Path]) -> Iterator[BagJob]:
    """One job per bag, its staging folder made only when a worker is free to take it."""
    for b in todo:
        stage = store.stage(b.name)
        token = secrets.token_hex(8)
        (stage / TOKEN_FILE).write_text(token)
        stages[b.name] = stage
        yield BagJob(b.name, str(b.path), str(b.labels) if b.labels else None, str(stage), token)


def _land(job: BagJob, outcome: BagOutcome, stage: Path, store: ResultStore, keys: dict[str, Any],
          run: FleetRun) -> None:
    """Commit a finished bag's result, or discard its stage and note why it is not done."""
    if outcome.status != "done":
        store.discard(stage)
        run.status[job.name] = "failed" if outcome.status == "failed" else "left"  # lost: try again
        run.errors[job.name] = " ".join(outcome.error.split())  # one line
        log.error("bag %s: %s", job.name, run.errors[job.name] or outcome.status)
        return
    for p in outcome.problems:
        if p.startswith("thumbnails/accepted"):
            log.warning("bag %s: %s", job.name, p)
    if outcome.archive is not None:
        untar(outcome.archive, stage)
    (stage / TOKEN_FILE).unlink(missing_ok=True)
    relocate_summary(stage, store.dir(job.name))
    store.commit(job.name, stage, keys[job.name])
    run.status[job.name] = "done"


def engine_info(engine: Any) -> dict[str, Any]:
    """What ran the bags, for fleet.json and the report."""
    d = {"engine": engine.name, "workers": engine.workers}
    for k in ("resources", "hosts", "gpus_per_worker"):
        if hasattr(engine, k):
            d[k] = getattr(engine, k)
    return d


def _speed(bags: int, frames: int, seconds: float, wall: float, start: float) -> dict[str, Any]:
    """Speed of this run: ``frames_per_s`` and ``real_time_factor`` (bag seconds per wall second) over
    the evaluation after the engine started (workers up, models loaded); ``wall_time_s`` includes it."""
    ev = wall - start
    return {"bags_evaluated": bags, "wall_time_s": wall, "engine_start_s": start, "evaluation_s": ev,
            "frames_per_s": frames / ev if ev > 0 and frames else None,
            "real_time_factor": seconds / ev if ev > 0 and seconds else None,
            "frames_per_s_with_start": frames / wall if wall > 0 and frames else None}


def _write_summary(run: FleetRun, bags: list[BagInput], store: ResultStore, model: dict[str, Any],
                   opts: FleetOptions, wall: float) -> None:
    entries = []
    for b in bags:
        st = run.status[b.name]
        result = store.dir(b.name) if st in ("done", "skipped") else None
        entries.append(bag_entry(b.name, str(b.path), st, result, run.errors.get(b.name, "")))
    evaluated = [e for e in entries if e["status"] == "done"]
    engine = run.summary.setdefault("engine", {})
    frames = sum(e.get("scored") or 0 for e in evaluated)
    seconds = sum(e.get("bag_duration_s") or 0 for e in evaluated)
    run.summary.update({
        "version": 1, "complete": not run.left and not run.interrupted,
        "interrupted": run.interrupted, "left": run.left, "failed": run.failed,
        "model": model, "options": opts.key_fields() | {"batch": opts.evaluate.get("batch")},
        "run": _speed(len(evaluated), frames, seconds, wall, engine.get("start_s", 0.0)),
        "totals": totals(entries), "bags": entries})
    write_json(run.out / FLEET_FILE, run.summary)
