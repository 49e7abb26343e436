"""Throughput of the distortion library, images/s per type: ``python -m hirqa_ros.degradations.bench``."""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from .registry import DEGRADATIONS, apply, apply_composition, apply_compositions
from .sampling import sample_composition


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str | None, x: torch.Tensor, repeats: int, seed: int = 0,
            per_sample: bool = False) -> float:
    """Images/s of ``apply(x, name, level)``, levels cycling 1..5. ``name=None``: ARNIQA compositions,
    one for the whole batch, or one per sample through `apply_compositions` if ``per_sample``."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    def once(i: int) -> None:
        if name is None and per_sample:
            apply_compositions(x, [sample_composition(rng) for _ in range(x.shape[0])], g)
        elif name is None:
            apply_composition(x, sample_composition(rng), g)
        else:
            apply(x, name, 1 + i % 5, g)

    once(0)  # warm-up
    _sync(x.device)
    t0 = time.perf_counter()
    for i in range(repeats):
        once(i)
    _sync(x.device)
    return repeats * x.shape[0] / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hirqa_ros.degradations.bench", description=__doc__)
    p.add_argument("--size", type=int, default=224, help="square image side in px (default 224)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per type (levels cycle 1..5)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--types", default="", help="comma-separated subset of types (default: all)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)  # some spatial correlation, like a photo
    names = [n for n in args.types.split(",") if n] or list(DEGRADATIONS)
    unknown = [n for n in names if n not in DEGRADATIONS]
    if unknown:
        p.error(f"unknown type(s) {', '.join(unknown)}; known: {', '.join(DEGRADATIONS)}")
    print(f"# device={device} torch_threads={torch.get_num_threads()} batch={args.batch} "
          f"size={args.size} repeats={args.repeats}")
    print(f"| {'type':18s} | {'group':18s} | images/s |")
    print(f"|{'-' * 20}|{'-' * 20}|---------:|")
    for name in names:
        ips = measure(name, x, args.repeats)
        print(f"| {name:18s} | {DEGRADATIONS[name].group:18s} | {ips:8.1f} |", flush=True)
    if not args.types:
        ips = measure(None, x, args.repeats)
        print(f"| {'composition (<=4)':18s} | {'one per batch':18s} | {ips:8.1f} |")
        ips = measure(None, x, args.repeats, per_sample=True)
        print(f"| {'composition (<=4)':18s} | {'one per sample':18s} | {ips:8.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
