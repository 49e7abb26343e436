"""The registry of distortion types (`DEGRADATIONS`, `GROUPS`) and the functions that apply them."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from . import (
    blur,
    brightness,
    camera,
    color_distortion,
    compression,
    motion,
    no_content,
    noise,
    sharpness,
    spatial,
)
from .base import Degradation, device_generator

DEGRADATIONS: dict[str, Degradation] = {
    d.name: d
    for module in (blur, color_distortion, compression, noise, brightness, spatial, sharpness, camera, motion,
                   no_content)
    for d in module.DEGRADATIONS
}

GROUPS: dict[str, list[str]] = {}
for _d in DEGRADATIONS.values():
    GROUPS.setdefault(_d.group, []).append(_d.name)
del _d

# groups left out unless named: training sampler, compositions and evaluation defaults
OPT_IN_GROUPS = ("no_content",)
DEFAULT_TYPES: tuple[str, ...] = tuple(n for n, d in DEGRADATIONS.items() if d.group not in OPT_IN_GROUPS)
DEFAULT_GROUPS: tuple[str, ...] = tuple(g for g in GROUPS if g not in OPT_IN_GROUPS)

NUM_LEVELS = 5
Levels = int | Sequence[int] | np.ndarray | torch.Tensor


def get(name: str) -> Degradation:
    """The `Degradation` called ``name`` (clear error listing the known names otherwise)."""
    try:
        return DEGRADATIONS[name]
    except KeyError:
        raise KeyError(f"unknown degradation {name!r}; known: {', '.join(DEGRADATIONS)}") from None


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a (N,3,H,W) float tensor in [0,1], got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"expected a float tensor in [0,1], got dtype {x.dtype}")


def _levels(level: Levels, n: int) -> list[int]:
    if isinstance(level, (int, np.integer)) or (hasattr(level, "ndim") and level.ndim == 0):
        out = [int(level)] * n
    else:
        out = [int(v) for v in (level.tolist() if hasattr(level, "tolist") else level)]
        if len(out) != n:
            raise ValueError(f"got {len(out)} levels for a batch of {n}")
    bad = [v for v in out if not 0 <= v <= NUM_LEVELS]
    if bad:
        raise ValueError(f"severity levels must be 0..{NUM_LEVELS} (0 = identity), got {bad[0]}")
    return out


def _run(d: Degradation, x: torch.Tensor, level: int, g: torch.Generator | None) -> torch.Tensor:
    y = d.op(x.float(), float(d.value(level)), g)
    return y.clamp(0.0, 1.0).to(x.dtype)


def apply(x: torch.Tensor, name: str, level: Levels,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply distortion ``name`` to a batch (N,3,H,W) in [0,1] at severity ``level``.

    ``level`` is an int 0..5 or one per sample (0 = identity). Runs on x's device; never modifies ``x``;
    deterministic for a seeded ``generator`` (a CPU generator also drives CUDA inputs, via a derived seed).
    """
    _check_batch(x)
    d = get(name)
    levels = _levels(level, x.shape[0])
    g = device_generator(generator, x.device)
    distinct = sorted(set(levels) - {0})
    if not distinct:
        return x.clone()
    if len(distinct) == 1 and 0 not in levels:
        return _run(d, x, distinct[0], g)
    out = x.clone()
    lv = torch.tensor(levels, device=x.device)
    for value in distinct:  # one vectorised call per distinct level (<= 5)
        idx = (lv == value).nonzero().squeeze(1)
        out[idx] = _run(d, x[idx], value, g)
    return out


def apply_ladder(x: torch.Tensor, name: str, levels: Sequence[int] = (0, 1, 2, 3, 4, 5),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Render every image at each severity in ``levels`` with the SAME random draws (angle, noise field,
    positions...), so only the severity differs along the ladder. Returns (len(levels), N, 3, H, W)."""
    _check_batch(x)
    d = get(name)
    g = device_generator(generator, x.device)
    if g is None:
        g = torch.Generator(device=x.device)
        g.manual_seed(int(torch.randint(0, 2**62, (1,), device="cpu").item()))
    start = g.get_state()
    outs = []
    end = start
    for level in levels:
        _levels(int(level), 1)
        g.set_state(start)
        outs.append(x.clone() if level == 0 else _run(d, x, int(level), g))
        if level != 0:
            end = g.get_state()
    g.set_state(end)
    return torch.stack(outs)


def apply_composition(x: torch.Tensor, steps: Sequence[tuple[str, Levels]],
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the (name, level) ``steps`` in order (each result clipped to [0,1]); never modifies ``x``."""
    y = x.clone() if not steps else x
    for name, level in steps:
        y = apply(y, name, level, generator)
    return y


def apply_compositions(x: torch.Tensor, compositions: Sequence[Sequence[tuple[str, int]]],
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply a different composition to every sample (``compositions[i]`` to ``x[i]``), batched.

    Stage k applies every sample's k-th step with one `apply` call per distinct type, so a batch
    costs at most (steps x types) calls instead of one call per image. Never modifies ``x``.
    """
    _check_batch(x)
    if len(compositions) != x.shape[0]:
        raise ValueError(f"got {len(compositions)} compositions for a batch of {x.shape[0]}")
    y = x.clone()
    for k in range(max((len(c) for c in compositions), default=0)):
        by_name: dict[str, tuple[list[int], list[int]]] = {}
        for i, steps in enumerate(compositions):
            if k < len(steps):
                name, level = steps[k]
                rows, levels = by_name.setdefault(name, ([], []))
                rows.append(i)
                levels.append(int(level))
        for name, (rows, levels) in by_name.items():
            idx = torch.tensor(rows, device=x.device)
            y[idx] = apply(y[idx], name, levels, generator)
    return y


def degrade(rgb: np.ndarray, name: str, level: int, seed: int = 0) -> np.ndarray:
    """Numpy convenience: distort one HxWx3 uint8 RGB image, return HxWx3 uint8 (rounded)."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = getattr(rgb, "shape", type(rgb).__name__)
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {got}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, got {rgb.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    g = torch.Generator().manual_seed(int(seed))
    y = apply(x, name, int(level), g)
    return (y[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
