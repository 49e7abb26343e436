"""Where the GPU sampler's time and kernel launches go, measured with ``torch.profiler`` on any device.

``hirqa gpu-run profile [--device cpu|cuda] [--size 96] [--batch 8]`` prints, per
distortion type, the aten calls of one ladder (levels 0..5 on a batch of crops; on a GPU each call is
roughly one kernel launch), the host syncs among them (``item``/``nonzero``/``_local_scalar_dense``:
each stalls the CPU until the GPU catches up) and the time; then the same for whole sampler batches
(``DeviceLadderSampler.draw``). Used for docs/gpu_training.md.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

SYNC_OPS = ("aten::item", "aten::_local_scalar_dense", "aten::nonzero", "aten::equal", "aten::is_nonzero")


def _counts(prof) -> tuple[int, int]:
    """(aten calls, host-sync calls) of a finished profile (top-level and nested aten ops)."""
    calls = syncs = 0
    for e in prof.key_averages():
        if e.key.startswith("aten::"):
            calls += e.count
            if e.key in SYNC_OPS:
                syncs += e.count
    return calls, syncs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile_call(fn, device: torch.device, repeats: int = 2) -> dict:
    """Aten calls and host syncs of one call of ``fn`` (profiled), and its mean wall time (not profiled)."""
    fn()  # warm-up
    _sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        fn()
        _sync(device)
    calls, syncs = _counts(prof)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return {"aten_calls": calls, "host_syncs": syncs, "ms": 1000 * (time.perf_counter() - t0) / repeats}


def profile_types(
    device: torch.device, size: int, batch: int, types: list[str] | None = None
) -> dict[str, dict]:
    from hirqa_ros.degradations import DEFAULT_TYPES, apply_ladder

    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    out = {}
    for name in types or DEFAULT_TYPES:
        g = torch.Generator(device=device).manual_seed(0)
        out[name] = profile_call(lambda name=name, g=g: apply_ladder(x, name, (0, 1, 2, 3, 4, 5), g), device)
    return out


def profile_draw(
    device: torch.device, ladders: int, per_type: int, sizes: list[int], photos: int = 6
) -> dict:
    """Aten calls / syncs / time of one ``DeviceLadderSampler.draw`` on synthetic 'photos'."""
    from hirqa_ros.training.data.device_ladders import DeviceLadderSampler
    from hirqa_ros.training.data.ladders import SamplerConfig

    rng = np.random.default_rng(0)
    images = [(rng.random((480, 640, 3)) * 255).astype(np.uint8) for _ in range(photos)]
    cfg = SamplerConfig(ladders=ladders, per_type=per_type, crop_sizes=sizes)
    sampler = DeviceLadderSampler(images, cfg, seed=0, device=device, prefetch=0)
    res = profile_call(sampler.draw, device, repeats=2)
    res["images"] = ladders * len(cfg.levels)
    res["images_per_s"] = res["images"] / (res["ms"] / 1000)
    return res


def print_profile(device: str = "cpu", size: int = 96, batch: int = 8, types: list[str] | None = None,
                  ladders: int = 16, per_type: int = 2, draw: bool = True) -> None:
    """Print the per-type table (Markdown) and, with ``draw``, one whole sampler batch."""
    device = torch.device(device)
    print(
        f"# device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"ladder of {batch} crops x 6 levels at {size} px"
    )
    print("| type | aten calls | host syncs | ms per ladder |")
    print("|---|---:|---:|---:|")
    total = {"aten_calls": 0, "host_syncs": 0, "ms": 0.0}
    for name, r in profile_types(device, size, batch, types).items():
        print(f"| {name} | {r['aten_calls']} | {r['host_syncs']} | {r['ms']:.1f} |", flush=True)
        for k in total:
            total[k] += r[k]
    print(f"| **sum** | {total['aten_calls']} | {total['host_syncs']} | {total['ms']:.1f} |")
    if draw:
        r = profile_draw(device, ladders, per_type, [size])
        print(
            f"\nsampler draw: {ladders} ladders x 6 levels at {size} px: {r['aten_calls']} aten "
            "calls, "
            f"{r['host_syncs']} host syncs, {r['ms']:.0f} ms ({r['images_per_s']:.0f} images/s)"
        )
