"""LadderSampler for a GPU: pristine photos resident on the device, crops cut and resized there, every
composition of a step applied in one batched pass, and batches drawn by a background thread one or two
steps ahead, so the GPU is not starved by per-crop CPU work."""

from __future__ import annotations

import logging
import queue
import threading

import numpy as np
import torch
import torch.nn.functional as F

from hirqa_ros.degradations import DEGRADATIONS, GROUPS, apply_compositions, apply_ladder, sample_composition
from hirqa_ros.training.data.ladders import (
    LadderBatch,
    LadderSampler,
    LadderTags,
    SamplerConfig,
    assemble_ladders,
)
from hirqa_ros.training.data.physical import physical_ladders

log = logging.getLogger(__name__)

# Types never used inside a composition here: CPU-only codecs far slower than the GPU path
# (OpenJPEG: ~50 ms per 224 px image). Its group (jpeg) then contributes plain JPEG.
COMPOSITION_EXCLUDE = ("jpeg2000",)


class DeviceLadderSampler(LadderSampler):
    """Same batches as :class:`LadderSampler` (same config, crop geometry, types, compositions, ladder
    layout) drawn on the training device; ``prefetch`` > 0 draws that many batches ahead in a thread.

    The thread works on the same CUDA stream as training, so ordering is safe; a checkpoint's sampler
    state is then up to ``prefetch`` batches ahead (a resumed run skips those batches)."""

    def __init__(
        self,
        images: list[np.ndarray],
        cfg: SamplerConfig,
        seed: int = 0,
        device: str | torch.device = "cpu",
        prefetch: int = 2,
        composition_exclude: tuple[str, ...] = COMPOSITION_EXCLUDE,
    ) -> None:
        super().__init__(images, cfg, seed=seed, device=device)
        self.dev_images = [
            torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1) for im in images
        ]
        self.composition_exclude = set(composition_exclude)
        self.prefetch = int(prefetch)
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        mb = sum(t.numel() for t in self.dev_images) / 2**20
        log.info(
            "device sampler: %d photos (%.0f MiB uint8) on %s, prefetch %d, never in compositions: %s",
            len(images),
            mb,
            self.device,
            self.prefetch,
            ", ".join(sorted(self.composition_exclude)) or "-",
        )

    # -- drawing on the device
    def crop_tensor(self, size: int) -> torch.Tensor:
        """A (3, size, size) float crop in [0, 1], same geometry as :meth:`LadderSampler.crop` (random photo,
        multi-scale area downscale, flip), quantised to 8 bits like a decoded image."""
        img = self.dev_images[int(self.rng.integers(len(self.dev_images)))]
        h, w = img.shape[1:]
        x = img.unsqueeze(0)
        if min(h, w) < size:  # smaller than the crop: upscale so the shorter side fits
            f = size / min(h, w)
            nh, nw = max(size, round(h * f)), max(size, round(w * f))
            x = F.interpolate(x.float(), size=(nh, nw), mode="bilinear", align_corners=False)
            x = x.round().clamp(0, 255)
            h, w = nh, nw
        region, y0, x0 = self.crop_window(h, w, size)
        patch = x[:, :, y0 : y0 + region, x0 : x0 + region].float()
        if region != size:
            patch = F.interpolate(patch, size=(size, size), mode="area").round()
        if self.rng.random() < 0.5:
            patch = patch.flip(-1)
        return patch[0].div_(255.0)

    def _composition(self, name: str) -> list[tuple[str, int]]:
        steps = sample_composition(self.rng, self.cfg.max_prefix, self._prefix_groups(name))
        out = []
        for t, level in steps:
            if t in self.composition_exclude:
                alt = [a for a in GROUPS[DEGRADATIONS[t].group] if a not in self.composition_exclude]
                if not alt:
                    continue
                t = alt[int(self.rng.integers(len(alt)))]
            out.append((t, level))
        return out

    @torch.no_grad()
    def draw(self) -> LadderBatch:
        """One batch, drawn now (no prefetch)."""
        cfg = self.cfg
        size, chosen, levels = self.step_plan()
        x = torch.stack([self.crop_tensor(size) for _ in range(len(chosen) * cfg.per_type)])
        comps, tags = [], LadderTags()
        for k, ti in enumerate(chosen):
            for _ in range(cfg.per_type):
                comp = self.rng.random() < cfg.composition_prob
                comps.append(self._composition(self.types[int(ti)]) if comp else [])
                tags.add(k, ti, comp)
        pt = cfg.per_type
        if cfg.physical_order:  # per type: its compositions sorted around the laddered fault
            sig = self.floor_sigmas(len(comps))
            part = [slice(k * pt, (k + 1) * pt) for k in range(len(chosen))]
            rungs = [physical_ladders(x[part[k]], self.types[int(ti)], comps[part[k]], levels, sig[part[k]],
                                      self.gen) for k, ti in enumerate(chosen)]
            return assemble_ladders(rungs, levels, tags, self.device, cfg.identical_eps)
        if any(comps):
            x = apply_compositions(x, comps, self.gen)
        rungs = [
            apply_ladder(x[k * pt : (k + 1) * pt], self.types[int(ti)], levels, self.gen).transpose(0, 1)
            for k, ti in enumerate(chosen)
        ]
        return assemble_ladders(rungs, levels, tags, self.device, cfg.identical_eps)

    # -- prefetching
    def _produce(self) -> None:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                item: object = self.draw()
            except BaseException as exc:  # handed to the consumer, which re-raises it
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def next(self) -> LadderBatch:
        if self.prefetch <= 0:
            return self.draw()
        if self._thread is None:
            self._queue = queue.Queue(maxsize=self.prefetch)
            self._thread = threading.Thread(target=self._produce, name="ladder-prefetch", daemon=True)
            self._thread.start()
        assert self._queue is not None
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise RuntimeError(f"ladder sampler thread failed: {item!r}") from item
        return item

    def close(self) -> None:
        """Stop the prefetch thread (drains its queue so it can exit)."""
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    assert self._queue is not None
                    self._queue.get(timeout=0.1)
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.1)
            self._thread = None
