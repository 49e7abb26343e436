"""Training batches of distortion ladders: multi-scale, flipped pristine crops rendered at severities 0..5
with ``hirqa_ros.degradations`` on the training device (single types, or ARNIQA compositions whose last
step is laddered)."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from hirqa_ros.degradations import (
    DEFAULT_GROUPS,
    DEFAULT_TYPES,
    DEGRADATIONS,
    apply_composition,
    apply_ladder,
    sample_composition,
)
from hirqa_ros.degradations.physical import FLOOR_SIGMA_RANGE
from hirqa_ros.training.data.physical import physical_ladders
from hirqa_ros.training.data.prompts import prompt_index

# Prefixes of a composition must not be able to undo the laddered step (e.g. darken, then brighten).
PHOTOMETRIC_GROUPS = ("brightness_change", "sharpness_contrast")
PHOTOMETRIC_TYPES = ("low_light", "overexposure", "haze", "glare")


@dataclass
class SamplerConfig:
    """How a step's ladders are drawn (``sampler:`` in the training config)."""

    ladders: int = 8  # ladders per step (per process)
    per_type: int = 2  # ladders sharing a distortion type, on different content
    crop_sizes: tuple[int, ...] = (112, 128)  # one size per step, drawn uniformly
    scale_min: float = 0.15  # crops cover between crop/scale_min px and crop px of the photo
    levels: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    group_weights: dict = field(
        default_factory=lambda: {"camera": 3.0}
    )  # per-type weight by group, default 1
    type_weights: dict = field(default_factory=dict)  # overrides per type
    types: tuple[str, ...] | None = None  # None = every default type (no-content fades are opt-in)
    composition_prob: float = 0.3
    max_prefix: int = 3
    identical_eps: float = 0.5 / 255  # ladder pairs closer than this (mean abs diff) are ties
    # a camera's physical order (training/data/physical.py): steps sorted along the light path and a
    # sensor noise floor of sigma ~ U(noise_floor) grey levels on every rung; off keeps older runs identical
    physical_order: bool = False
    noise_floor: tuple[float, float] = FLOOR_SIGMA_RANGE

    @classmethod
    def from_dict(cls, d: dict | None) -> SamplerConfig:
        d = dict(d or {})
        unknown = [k for k in d if k not in cls.__dataclass_fields__]
        if unknown:
            raise ValueError(f"unknown sampler settings: {', '.join(unknown)}")
        for k in ("crop_sizes", "levels", "types", "noise_floor"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        out = cls(**d)
        lo, hi = out.noise_floor
        if not 0.0 <= lo <= hi <= 64.0:
            raise ValueError(f"sampler.noise_floor must be [lo, hi] grey levels with 0 <= lo <= hi <= 64, "
                             f"got {list(out.noise_floor)}")
        return out


@dataclass
class LadderBatch:
    images: torch.Tensor  # (B*L, 3, H, W) in [0, 1], ladder-major
    levels: torch.Tensor  # (L,)
    group: torch.Tensor  # (B,) ladders comparable across content share a group id
    pristine_base: torch.Tensor  # (B,) bool: level 0 is the pristine crop
    valid: torch.Tensor  # (B, L, L) bool: the two images differ
    type_idx: torch.Tensor  # (B,) index into the sampler's type list (laddered type)
    prompt_target: torch.Tensor  # (B, L) prompt row for the alignment loss

    @property
    def shape(self) -> tuple[int, int]:
        return self.group.shape[0], self.levels.shape[0]


class LadderSampler:
    """Draws ladder batches; all randomness comes from ``rng`` (numpy) and ``gen`` (torch), whose states
    are saved in checkpoints so a resumed run continues identically."""

    def __init__(
        self, images: list[np.ndarray], cfg: SamplerConfig, seed: int = 0, device: str | torch.device = "cpu"
    ) -> None:
        if not images:
            raise ValueError("no pristine training images")
        if cfg.ladders % cfg.per_type:
            raise ValueError("sampler.ladders must be a multiple of sampler.per_type")
        self.images = images
        self.cfg = cfg
        self.device = torch.device(device)
        self.types = list(cfg.types or DEFAULT_TYPES)
        unknown = [t for t in self.types if t not in DEGRADATIONS]
        if unknown:
            raise ValueError(f"unknown distortion types in sampler.types: {unknown}")
        w = np.array(
            [cfg.type_weights.get(t, cfg.group_weights.get(DEGRADATIONS[t].group, 1.0)) for t in self.types],
            dtype=np.float64,
        )
        self.type_p = w / w.sum()
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))

    # -- state for checkpoints
    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.gen.set_state(state["gen"])

    # -- drawing
    def crop(self, size: int) -> np.ndarray:
        """A random multi-scale crop (size x size) of a random photo, flipped half of the time."""
        img = self.images[int(self.rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        if min(h, w) < size:  # smaller than the crop: upscale so the shorter side fits
            f = size / min(h, w)
            img = cv2.resize(
                img, (max(size, round(w * f)), max(size, round(h * f))), interpolation=cv2.INTER_LINEAR
            )
            h, w = img.shape[:2]
        region, y, x = self.crop_window(h, w, size)
        patch = img[y : y + region, x : x + region]
        if region != size:
            patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        if self.rng.random() < 0.5:
            patch = patch[:, ::-1]
        return np.ascontiguousarray(patch)

    def _prefix_groups(self, name: str) -> list[str]:
        group = DEGRADATIONS[name].group
        banned = {group}
        if group in PHOTOMETRIC_GROUPS or name in PHOTOMETRIC_TYPES:
            banned |= set(PHOTOMETRIC_GROUPS) | {"camera"}
        return [g for g in DEFAULT_GROUPS if g not in banned]

    def crop_window(self, h: int, w: int, size: int) -> tuple[int, int, int]:
        """(side, y, x) of a random square region of an h x w photo covering between ``size`` /
        ``scale_min`` px and the whole shorter side (log-uniform), which a crop shrinks to ``size``."""
        lo = max(self.cfg.scale_min, size / min(h, w))
        scale = float(np.exp(self.rng.uniform(np.log(lo), 0.0))) if lo < 1.0 else 1.0
        region = max(size, min(min(h, w), round(size / scale)))
        y = int(self.rng.integers(0, h - region + 1))
        x = int(self.rng.integers(0, w - region + 1))
        return region, y, x

    def step_plan(self) -> tuple[int, np.ndarray, list[int]]:
        """The step's crop size, its distortion types (indices into ``types``, one per ``per_type``
        ladders, without repeats) and the levels."""
        cfg = self.cfg
        size = int(cfg.crop_sizes[int(self.rng.integers(len(cfg.crop_sizes)))])
        n_types = cfg.ladders // cfg.per_type
        chosen = self.rng.choice(len(self.types), size=n_types, replace=False, p=self.type_p)
        return size, chosen, list(cfg.levels)

    def floor_sigmas(self, n: int) -> torch.Tensor:
        """Noise-floor sigmas (grey levels) of ``n`` crops, drawn from ``rng``."""
        return torch.from_numpy(self.rng.uniform(*self.cfg.noise_floor, size=n)).float()

    def crop_batch(self, size: int) -> torch.Tensor:
        """``per_type`` random crops of ``size`` px as a float (N, 3, H, W) tensor in [0, 1] on the device."""
        crops = np.stack([self.crop(size) for _ in range(self.cfg.per_type)])
        return torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)

    def next(self) -> LadderBatch:
        cfg = self.cfg
        if cfg.physical_order:
            return self.next_physical()
        size, chosen, levels = self.step_plan()
        rungs, tags = [], LadderTags()
        for k, ti in enumerate(chosen):
            name = self.types[int(ti)]
            x = self.crop_batch(size)
            for i in range(cfg.per_type):
                comp = self.rng.random() < cfg.composition_prob
                if comp:
                    steps = sample_composition(self.rng, cfg.max_prefix, self._prefix_groups(name))
                    x[i : i + 1] = apply_composition(x[i : i + 1], steps, self.gen)
                tags.add(k, ti, comp)
            rungs.append(apply_ladder(x, name, levels, self.gen).transpose(0, 1))  # (per_type, L, 3, H, W)
        return assemble_ladders(rungs, levels, tags, self.device, cfg.identical_eps)

    def next_physical(self) -> LadderBatch:
        """:meth:`next` in a camera's physical order (:func:`physical_ladders`)."""
        cfg = self.cfg
        size, chosen, levels = self.step_plan()
        rungs, tags = [], LadderTags()
        for k, ti in enumerate(chosen):
            name = self.types[int(ti)]
            x = self.crop_batch(size)
            comps = []
            for _ in range(cfg.per_type):
                comp = self.rng.random() < cfg.composition_prob
                groups = self._prefix_groups(name)
                comps.append(sample_composition(self.rng, cfg.max_prefix, groups) if comp else [])
                tags.add(k, ti, comp)
            rungs.append(physical_ladders(x, name, comps, levels, self.floor_sigmas(cfg.per_type), self.gen))
        return assemble_ladders(rungs, levels, tags, self.device, cfg.identical_eps)


@dataclass
class LadderTags:
    """Per-ladder bookkeeping while a batch is drawn: comparable group, pristine base, type index."""

    groups: list = field(default_factory=list)
    base: list = field(default_factory=list)
    tids: list = field(default_factory=list)

    def add(self, k: int, ti, composed: bool) -> None:
        """Ladder of the k-th type of the step: a composed ladder is comparable to none (own negative
        group), a single-distortion one to the other contents of its type (group k)."""
        self.groups.append(-(len(self.groups) + 1) if composed else k)
        self.base.append(not composed)
        self.tids.append(int(ti))


def assemble_ladders(rungs: list, levels: list, tags: LadderTags, device,
                     identical_eps: float) -> LadderBatch:
    """Stack rendered ladders (each (k, L, 3, H, W)) into a LadderBatch; rungs that render
    identically (below ``identical_eps`` mean L1) are marked invalid so losses treat them as ties."""
    groups, base, tids = tags.groups, tags.base, tags.tids
    lad = torch.cat(rungs)  # (B, L, 3, H, W)
    b, n = lad.shape[:2]
    flat = lad.reshape(b, n, -1)
    diff = torch.cdist(flat, flat, p=1) / flat.shape[-1]
    lv = torch.tensor(levels, device=device)
    type_idx = torch.tensor(tids, device=device)
    target = prompt_index(type_idx.reshape(b, 1).expand(b, n), lv.reshape(1, n).expand(b, n))
    return LadderBatch(
        images=lad.reshape(b * n, *lad.shape[2:]).contiguous(),
        levels=lv,
        group=torch.tensor(groups, device=device),
        pristine_base=torch.tensor(base, device=device),
        valid=diff > identical_eps,
        type_idx=type_idx,
        prompt_target=target,
    )
