"""Where the bags of a fleet run are evaluated: in this process, in a local process pool, or on Ray
actors. Each worker loads the model once and evaluates whole bags (:func:`fleet_job.run_job`);
outcomes stream back to the driver as bags finish."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from hirqa_ros.bag.fleet import FleetOptions, card_sha256
from hirqa_ros.bag.fleet_job import BagJob, BagOutcome, load_worker_scorer, run_job

log = logging.getLogger(__name__)

TOKEN_HINT = ("; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token and its token "
              "in RAY_AUTH_TOKEN or ~/.ray/auth_token (`ray get-auth-token` on the head prints it)")
RAY_INSTALL = 'the Ray engine needs Ray: pip install "hirqa_ros[fleet]" (or pip install "ray>=2.9")'


class EngineError(RuntimeError):
    """The engine cannot run (Ray missing, cluster unreachable, no worker could load the model)."""


class BagWorker:
    """One worker: one scorer, loaded once, evaluating whole bags (also the Ray actor's class)."""

    def __init__(self, opts: FleetOptions, threads: int | None = None, quiet: bool = True,
                 progress: Any = None) -> None:
        if quiet:
            logging.getLogger("hirqa_ros").setLevel(logging.WARNING)
        self.opts, self.error, self.scorer = opts, "", None
        self.progress = progress  # a queue with put_nowait((bag, frames)) for live frame progress, or None
        try:
            scorer = load_worker_scorer(opts, threads)
            self.error = model_mismatch(scorer.model_dir, opts.card_sha256)
            self.scorer = None if self.error else scorer
        except Exception as exc:  # reported per bag and by ready(), never a silent worker
            self.error = f"the worker cannot load the model: {exc}"

    def ready(self) -> tuple[str, str]:
        """(error or '', host:pid)."""
        return self.error, f"{socket.gethostname()}:{os.getpid()}"

    def evaluate(self, job: BagJob, tick: Any = None) -> BagOutcome:
        """One whole bag; ``tick(bag, frames)`` (default: put into ``progress``) as frames are scored."""
        if self.scorer is None:
            return BagOutcome(job.name, "failed", error=self.error)
        if tick is None and self.progress is not None:
            tick = self._put
        return run_job(job, self.opts, self.scorer, tick)

    def _put(self, bag: str, frames: int) -> None:
        self.progress.put_nowait((bag, frames))


def model_mismatch(model_dir: Any, want: str | None) -> str:
    """Why a worker's model is not the driver's ('' when it is, or when nothing is expected)."""
    have = card_sha256(model_dir)
    if not want or have == want:
        return ""
    return (f"the worker's model {model_dir} on {socket.gethostname()} is not the driver's (card sha256 "
            f"{have[:12]}... vs {want[:12]}...); pass --model a path every node reads, or install the same "
            "model on every node")


class InlineEngine:
    """One worker in this process (``--engine local --workers 1``)."""

    name = "local"

    def __init__(self, opts: FleetOptions) -> None:
        self.worker = BagWorker(opts, quiet=False)  # this process's logging is the caller's: leave it be
        self.workers = 1
        self.on_frames: Any = None  # the driver's (bag, frames) callback
        if self.worker.error:
            raise EngineError(self.worker.error)

    def outcomes(self, jobs: Iterator[BagJob]) -> Iterator[tuple[BagJob, BagOutcome]]:
        for job in jobs:
            yield job, self.worker.evaluate(job, self.on_frames)

    def close(self, abort: bool = False) -> None:
        pass


_POOL_WORKER: BagWorker | None = None


def _pool_init(opts: FleetOptions, threads: int, progress: Any) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what an interrupt stops
    global _POOL_WORKER
    _POOL_WORKER = BagWorker(opts, threads, progress=progress)


def _pool_ready() -> tuple[str, str]:
    assert _POOL_WORKER is not None
    return _POOL_WORKER.ready()


def _pool_run(job: BagJob) -> BagOutcome:
    assert _POOL_WORKER is not None
    return _POOL_WORKER.evaluate(job)


class LocalPoolEngine:
    """``workers`` processes on this machine (spawned), each with one scorer of ``cpu/workers`` threads."""

    name = "local"

    def __init__(self, opts: FleetOptions, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        self.on_frames: Any = None
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = multiprocessing.get_context("spawn")
        self.progress = ctx.Queue()
        self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_pool_init,
                                        initargs=(opts, threads, self.progress))
        try:  # start the workers and load their models now (a model that does not load stops here)
            ready = [f.result() for f in [self.pool.submit(_pool_ready) for _ in range(workers)]]
        except BaseException:
            self.close(abort=True)
            raise
        errors = [e for e, _ in ready if e]
        if errors:
            self.close(abort=True)
            raise EngineError(errors[0])
        self.hosts = sorted({h for _, h in ready})

    def outcomes(self, jobs: Iterator[BagJob]) -> Iterator[tuple[BagJob, BagOutcome]]:
        pending: dict[Any, BagJob] = {}
        broken = False
        while True:
            while not broken and len(pending) < self.workers:
                job = next(jobs, None)
                if job is None:
                    break
                pending[self.pool.submit(_pool_run, job)] = job
            if not pending:
                return
            done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            self._drain()
            for f in done:
                job = pending.pop(f)
                try:
                    yield job, f.result()
                except Exception as exc:  # BrokenProcessPool: a worker died (killed, out of memory)
                    broken = True
                    yield job, BagOutcome(job.name, "lost", error=f"worker lost: {exc or type(exc).__name__}")

    def _drain(self) -> None:
        import queue

        while True:
            try:
                bag, n = self.progress.get_nowait()
            except queue.Empty:
                return
            if self.on_frames is not None:
                self.on_frames(bag, n)

    def close(self, abort: bool = False) -> None:
        """Stop the workers (``abort``: now, killing bags in flight)."""
        import multiprocessing

        if not abort:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.progress.close()
            return
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in multiprocessing.active_children():
            p.terminate()
        for p in multiprocessing.active_children():
            p.join(timeout=5)


def import_ray() -> Any:
    """The ray module, or :class:`EngineError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise EngineError(RAY_INSTALL) from None
    return ray


class RayEngine:
    """Ray actors (one scorer each) on a local cluster started here or on ``address``'s cluster."""

    name = "ray"

    def __init__(self, opts: FleetOptions, workers: int | None, address: str | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float | None = None,
                 local_cpus: int | None = None) -> None:
        self.ray = ray = import_ray()
        self.started = not ray.is_initialized()
        if self.started:
            self._init(address, local_cpus)
        res = ray.cluster_resources()
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if res.get("GPU", 0) > 0 else 0.0
        if workers is None:
            by_cpu = int(res.get("CPU", 1) // max(cpus_per_worker, 1e-9))
            by_gpu = int(res.get("GPU", 0) // gpus_per_worker) if gpus_per_worker else by_cpu
            workers = max(1, min(by_cpu, by_gpu))
        self.workers, self.gpus_per_worker = workers, gpus_per_worker
        self.resources = {k: v for k, v in res.items() if k in ("CPU", "GPU")}
        from ray.util.queue import Queue

        self.on_frames: Any = None
        self.progress = Queue(actor_options={"num_cpus": 0})
        self._cls = ray.remote(BagWorker).options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)
        self._args = (opts, max(1, int(cpus_per_worker)), True, self.progress)
        self.actors = [self._cls.remote(*self._args) for _ in range(workers)]
        self.hosts = self._check_ready(self.actors)

    def _init(self, address: str | None, local_cpus: int | None) -> None:
        ray = self.ray
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.WARNING}
        if address:
            kw["address"] = address
        else:  # a local cluster: its workers import this very package
            pkg_parent = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (pkg_parent, os.environ.get("PYTHONPATH", "")) if p)
            kw.update(num_cpus=local_cpus or os.cpu_count() or 1,
                      runtime_env={"env_vars": {"PYTHONPATH": path}})
        try:
            ray.init(**kw)
        except Exception as exc:
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = ""
            if address and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
                hint = TOKEN_HINT
            raise EngineError(f"cannot start or join the Ray cluster{f' at {address}' if address else ''}: "
                              f"{why}{hint} (docs/bag.md, joining a Ray cluster)") from None

    def _check_ready(self, actors: list[Any]) -> list[str]:
        ray = self.ray
        try:
            ready = ray.get([a.ready.remote() for a in actors])
        except Exception as exc:
            self.close()
            raise EngineError(f"the Ray workers did not start: {exc}") from None
        errors = [e for e, _ in ready if e]
        if errors:
            self.close()
            raise EngineError(errors[0])
        return [h for _, h in ready]

    def outcomes(self, jobs: Iterator[BagJob]) -> Iterator[tuple[BagJob, BagOutcome]]:
        ray = self.ray
        idle = list(self.actors)
        pending: dict[Any, tuple[BagJob, Any]] = {}
        while True:
            while idle:
                job = next(jobs, None)
                if job is None:
                    break
                actor = idle.pop()
                pending[actor.evaluate.remote(job)] = (job, actor)
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25)
            self._drain()
            for ref in ready:
                job, actor = pending.pop(ref)
                try:
                    yield job, ray.get(ref)
                except ray.exceptions.RayActorError as exc:  # the worker died: replace it, go on
                    yield job, BagOutcome(job.name, "lost", error=f"worker lost: {str(exc).splitlines()[0]}")
                    self.actors.remove(actor)
                    actor = self._cls.remote(*self._args)
                    self.actors.append(actor)
                idle.append(actor)

    def _drain(self) -> None:
        n = self.progress.qsize()
        for bag, frames in self.progress.get_nowait_batch(n) if n else ():
            if self.on_frames is not None:
                self.on_frames(bag, frames)

    def close(self, abort: bool = False) -> None:
        ray = self.ray
        if getattr(self, "progress", None) is not None:
            try:
                self.progress.shutdown(force=True)
            except Exception:
                pass
        for a in getattr(self, "actors", []):
            try:
                ray.kill(a)
            except Exception:
                pass
        self.actors = []
        if self.started and ray.is_initialized():
            ray.shutdown()


def make_engine(engine: str, opts: FleetOptions, workers: int | None, address: str | None = None,
                cpus_per_worker: float = 1.0, gpus_per_worker: float | None = None) -> Any:
    """The engine named ``engine`` ('local' or 'ray'); raises :class:`EngineError`."""
    if engine == "ray":
        return RayEngine(opts, workers, address, cpus_per_worker, gpus_per_worker)
    if address:
        raise EngineError("--address joins a Ray cluster; use it with --engine ray")
    if not workers or workers == 1:
        return InlineEngine(opts)
    return LocalPoolEngine(opts, workers)
