"""Ladders rendered in a camera's physical order (``sampler.physical_order``): composition steps and the
laddered fault sorted along the light path, with a sensor noise floor on every rung; used by both samplers."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hirqa_ros.degradations import apply_compositions, apply_ladder
from hirqa_ros.degradations.base import device_generator, randn
from hirqa_ros.degradations.physical import FLOOR, add_noise_floor, split_around, stage

Steps = Sequence[tuple[str, int]]


def _compose(x: torch.Tensor, comps: list[list[tuple[str, int]]], gen: torch.Generator) -> torch.Tensor:
    return apply_compositions(x, comps, gen) if any(comps) else x


def physical_ladders(x: torch.Tensor, name: str, comps: Sequence[Steps], levels: Sequence[int],
                     sigma: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Ladders of type ``name`` on crops ``x`` (n,3,H,W) in [0,1], as (n, L, 3, H, W).

    Per crop: its composition steps (``comps[i]``, may be empty) of stages up to the laddered fault's,
    then the fault at each level, then the later steps, all in stage order; the noise floor of
    ``sigma[i]`` grey levels goes in at the sensor stage (after scene, optics and exposure, before
    noise faults, ISP and JPEG). The floor's noise field and the later steps' random draws are shared
    by all rungs of a ladder, so only the fault's severity differs along it."""
    n, s = x.shape[0], stage(name)
    if len(comps) != n:
        raise ValueError(f"got {len(comps)} compositions for {n} crops")
    parts = [split_around(c, name) for c in comps]
    before, after = [p[0] for p in parts], [p[1] for p in parts]
    pre_sensor = [[t for t in b if stage(t[0]) < FLOOR] for b in before]
    post_sensor = [[t for t in b if stage(t[0]) >= FLOOR] for b in before]
    field = randn(device_generator(gen, x.device), *x.shape, device=x.device)  # one field per crop
    sig = sigma.to(device=x.device, dtype=x.dtype)
    y = _compose(x, pre_sensor, gen)
    if s > FLOOR:  # the fault is a noise fault, ISP or compression: the floor comes first
        y = add_noise_floor(y, sig, None, noise=field)
    y = _compose(y, post_sensor, gen)
    lad = apply_ladder(y, name, list(levels), gen)  # (L, n, 3, H, W)
    if s < FLOOR:
        lad = add_noise_floor(lad.flatten(0, 1), sig.repeat(len(levels)), None,
                              noise=field.repeat(len(levels), 1, 1, 1)).view_as(lad)
    if any(after):
        start = gen.get_state()
        out = []
        for rung in lad:  # the same draws on every rung
            gen.set_state(start)
            out.append(apply_compositions(rung, after, gen))
        lad = torch.stack(out)
    return lad.transpose(0, 1)
