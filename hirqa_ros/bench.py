"""Latency, throughput and peak memory per backend x precision x batch x input size.

The plain torch eager fp32 path is measured in the same run as the baseline and every row
gets its speed-up against it; the baseline may be another model directory's network (a new trunk
against today's model, one run). Two timings per row:

- ``p50_ms`` (network): the backend's own call on a ready uint8 NHWC batch (in-graph
  normalisation, host <-> device copies and result copy-back included);
- ``e2e_p50_ms`` (frame in, score out): ``Scorer.infer`` on a list of separate HxWx3 uint8
  frames, everything included; ``host_ms_per_frame`` is the part spent outside the backend's
  call (views, the staging copy, bookkeeping), per frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

from hirqa_ros.backends import BackendUnavailable, cuda_status, onnxruntime_on_cpu, open_backend, probe

log = logging.getLogger(__name__)

DEFAULT_SIZES = ((224, 224), (480, 640), (720, 1280))
DEFAULT_BATCHES = (1, 4, 8)
BASELINE = "torch-eager"
HOST_NORM = "onnxruntime-hostnorm"


@dataclass
class BenchRow:
    backend: str
    device: str
    precision: str
    batch: int
    height: int
    width: int
    p50_ms: float  # network: the backend's call on a ready batch
    p95_ms: float
    throughput: float  # images per second (network)
    peak_rss_mb: float
    gpu_peak_mb: float | None = None
    speedup: float | None = None  # baseline p50 / this p50
    e2e_p50_ms: float | None = None  # frames in -> scores out, per batch
    host_ms_per_frame: float | None = None  # e2e time outside the backend's call, per frame
    model: str | None = None  # the model directory's name whose network was timed


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (since the last reset where supported)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_calls(fn, iters: int, warmup: int) -> np.ndarray:
    """Per-call wall times in ms of ``fn()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        times[i] = (time.perf_counter() - t0) * 1000.0
    return times


class _TimedBackend:
    """Wraps a backend and adds up the time spent inside its network call (host-time accounting:
    a backend's host-side input conversion, ``network_input``, counts as host time)."""

    def __init__(self, impl) -> None:
        self.impl = impl
        self.seconds = 0.0

    def infer(self, frames: np.ndarray):
        if hasattr(self.impl, "run_network"):
            x = self.impl.network_input(frames)
            call = lambda: self.impl.run_network(x)  # noqa: E731
        else:
            call = lambda: self.impl.infer(frames)  # noqa: E731
        t0 = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name: str):
        return getattr(self.impl, name)


def time_frames(scorer, frames: list[np.ndarray], iters: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """(end-to-end ms, host ms outside the backend) per ``scorer.infer(frames)`` call."""
    timed = _TimedBackend(scorer.impl)
    scorer.impl = timed
    try:
        for _ in range(warmup):
            scorer.infer(frames)
        e2e, host = np.empty(iters), np.empty(iters)
        for i in range(iters):
            timed.seconds = 0.0
            t0 = time.perf_counter()
            scorer.infer(frames)
            e2e[i] = (time.perf_counter() - t0) * 1000.0
            host[i] = e2e[i] - timed.seconds * 1000.0
    finally:
        scorer.impl = timed.impl
    return e2e, host


def _gpu_peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def measure(backend, name: str, batches, sizes, iters: int, warmup: int, seed: int = 0,
            artifact=None) -> list[BenchRow]:
    """Rows for one opened backend over every batch x size (network and end-to-end timings)."""
    from hirqa_ros.preprocess import group_views, stage
    from hirqa_ros.scorer import Scorer
    from hirqa_ros.staging import numpy_alloc

    rows = []
    rng = np.random.default_rng(seed)
    device = str(getattr(backend, "device", "cpu"))
    scorer = Scorer(artifact, backend, "native", batch_size=max(batches)) if artifact is not None else None
    for h, w in sizes:
        for n in batches:
            frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
            (group,) = group_views(frames)
            batch = stage(group.views, group.bgr, getattr(backend, "alloc_host", numpy_alloc)((n, h, w, 3)))
            _reset_peak_rss()
            _gpu_peak_reset(device)
            if hasattr(backend, "run_network"):  # time the network on exactly what it is fed
                ready = backend.network_input(batch)
                t = time_calls(lambda x=ready: backend.run_network(x), iters, warmup)
            else:
                t = time_calls(lambda b=batch: backend.infer(b), iters, warmup)
            row = BenchRow(
                name,
                device,
                backend.precision,
                n,
                h,
                w,
                float(np.percentile(t, 50)),
                float(np.percentile(t, 95)),
                n * 1000.0 / float(t.mean()),
                peak_rss_mb(),
                _gpu_peak_mb(device),
            )
            if artifact is not None:
                row.model = artifact.name
            if scorer is not None:
                e2e, host = time_frames(scorer, frames, iters, warmup)
                row.e2e_p50_ms = float(np.percentile(e2e, 50))
                row.host_ms_per_frame = float(np.percentile(host, 50)) / n
            rows.append(row)
            log.info("%s %s b%d %dx%d: network p50 %.2f ms, e2e p50 %s ms", name, backend.precision, n, h, w,
                     row.p50_ms, "-" if row.e2e_p50_ms is None else f"{row.e2e_p50_ms:.2f}")
    return rows


def _host_norm_rows(artifact, device, max_batch, batches, sizes, iters, warmup) -> list[BenchRow]:
    """ONNX Runtime with a float NCHW ONNX and host normalisation (how frames were scored before)."""
    import tempfile
    from pathlib import Path

    from hirqa_ros.export.onnx import export_onnx

    with tempfile.TemporaryDirectory(prefix="hirqa-bench-") as tmp:
        path = export_onnx(artifact.torch_model(), Path(tmp) / "float_input.onnx", frames=False)
        backend = open_backend("onnxruntime", artifact, device=device, max_batch=max_batch, onnx_path=path)
        return measure(backend, HOST_NORM, batches, sizes, iters, warmup, artifact=artifact)


def valid_precisions(name: str, device: str | None, precisions) -> list[str]:
    """Precisions a backend runs on a device: fp32 everywhere; fp16 on GPUs (ONNX Runtime: through
    its TensorRT provider only); int8 with ONNX Runtime on the CPU (``model.int8.onnx``)."""
    if name == "onnxruntime":
        allowed = {"fp32", "fp16" if device == "tensorrt" else "fp32",
                   "int8" if onnxruntime_on_cpu(device) else "fp32"}
    else:
        gpu = str(device or "cpu").startswith("cuda")
        allowed = {"fp32", "fp16"} if gpu else {"fp32"}
    return [p for p in precisions if p in allowed]


def run_bench(
    artifact,
    backends=("onnxruntime", "torch", "tensorrt"),
    precisions=("fp32", "fp16"),
    batches=DEFAULT_BATCHES,
    sizes=DEFAULT_SIZES,
    iters: int = 10,
    warmup: int = 2,
    device: str | None = None,
    progress=None,
    host_norm_baseline: bool = False,
    baseline_artifact=None,
) -> tuple[list[BenchRow], list[str]]:
    """Baseline (torch eager fp32) plus every usable backend x precision; returns rows and skip notes.

    ``host_norm_baseline``: also time ONNX Runtime on a float-input ONNX of the same weights with
    host normalisation (``HOST_NORM``: the path before the camera-bytes input), in the same run.
    ``baseline_artifact``: the baseline runs this model instead (``artifact``'s own network when None).
    """
    from hirqa_ros.backends.torch_backend import TorchBackend

    skipped: list[str] = []
    gpu_ok = cuda_status()[0] and not (device or "").startswith("cpu")
    base_device = (device or "cuda") if gpu_ok else "cpu"
    base_artifact = baseline_artifact or artifact
    baseline = TorchBackend(base_artifact, device=base_device, precision="fp32", cuda_graphs=False)
    rows = measure(baseline, BASELINE, batches, sizes, iters, warmup, artifact=base_artifact)
    if progress:
        progress()
    base_p50 = {(r.batch, r.height, r.width): r.p50_ms for r in rows}
    del baseline
    max_batch = max(batches)
    max_hw = (max(h for h, _ in sizes), max(w for _, w in sizes))
    for name in backends:
        p = probe(name, device)
        if not p.ok:
            skipped.append(str(p))
            continue
        dev = device
        if dev is None:
            dev = "cuda" if name in ("tensorrt", "torch2trt") or (name == "torch" and gpu_ok) else None
        if name == "torch" and not (dev or "cpu").startswith("cuda") and baseline_artifact is None:
            skipped.append("torch: on the CPU it is the torch-eager baseline row")
            continue
        for prec in valid_precisions(name, dev, precisions):
            opts = {"max_batch": max_batch}
            if name in ("tensorrt", "torch2trt"):
                opts.update(max_hw=max_hw, input_policy="native")
            try:
                backend = open_backend(name, artifact, device=dev, precision=prec, **opts)
            except (BackendUnavailable, ValueError, RuntimeError) as exc:
                skipped.append(f"{name} {prec}: {exc}")
                continue
            label = f"{name}+graphs" if name == "torch" and getattr(backend, "cuda_graphs", False) else name
            rows += measure(backend, label, batches, sizes, iters, warmup, artifact=artifact)
            del backend
            if progress:
                progress()
            if name == "onnxruntime" and prec == "fp32" and host_norm_baseline:
                rows += _host_norm_rows(artifact, dev, max_batch, batches, sizes, iters, warmup)
                if progress:
                    progress()
    for r in rows:
        b = base_p50.get((r.batch, r.height, r.width))
        r.speedup = b / r.p50_ms if b and r.p50_ms > 0 else None
    return rows, skipped


def format_table(rows: list[BenchRow]) -> str:
    """A plain-text table of bench rows."""
    header = (
        "backend",
        "device",
        "prec",
        "batch",
        "size",
        "net p50 ms",
        "net p95 ms",
        "img/s",
        "e2e p50 ms",
        "host ms/frame",
        "peak RSS MB",
        "GPU MB",
        "x eager",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.backend,
                r.device,
                r.precision,
                str(r.batch),
                f"{r.height}x{r.width}",
                f"{r.p50_ms:.2f}",
                f"{r.p95_ms:.2f}",
                f"{r.throughput:.1f}",
                "-" if r.e2e_p50_ms is None else f"{r.e2e_p50_ms:.2f}",
                "-" if r.host_ms_per_frame is None else f"{r.host_ms_per_frame:.3f}",
                f"{r.peak_rss_mb:.0f}",
                "-" if r.gpu_peak_mb is None else f"{r.gpu_peak_mb:.0f}",
                "-" if r.speedup is None else f"{r.speedup:.2f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        for line in lines
    )


def rows_as_dicts(rows: list[BenchRow]) -> list[dict]:
    return [asdict(r) for r in rows]
