"""The synthetic evaluation protocol: distortion ladders of held-out pristine images, scored by any score_fn.

Protocol (docs/evaluation.md): each pristine image is shrunk so its shorter side is at most
``resize_side`` and ``crops_per_image`` seeded ``crop`` x ``crop`` views are cut from it
(``crop=0``: the whole shrunk image). For every view and every distortion type, the ladder is
the view itself (level 0) and ``degrade(view, type, level, seed)`` for levels 1..5, with one
seed per (view, type) so that all levels of a ladder share their randomness. Metrics, all
oriented so that higher is better and 1 is perfect:

* ``ladder_srocc``: SROCC between the score and minus the level within one ladder (6 points),
  averaged over the views; for a group or pooled, the mean over its types.
* ``srocc``: SROCC between score and minus the level over all samples of a type / group / all
  types pooled across content (each pristine view counted once).
* ``auroc``: probability that a "keep" sample (level 0 or 1) scores above a "drop" sample
  (level >= 3); level 2 is left out as the grey zone. Pooled the same way as ``srocc``.

Full-frame mode (``frame_sizes``, see :data:`FULL_FRAME`): each photo becomes a whole camera frame
(shrunk so that it covers the frame size, then cut to it at a seeded position; sizes taken in turn
per view), the distortions are rendered on that frame at its resolution, and the frame is scored
whole, as the node scores it. With ``crop`` > 0 as well, a ``crop`` x ``crop`` window of the frame
is cut at native resolution (training views for heads: camera pixel scale, less compute).
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hirqa_ros.batching import batched
from hirqa_ros.evaluation.images import load_folder
from hirqa_ros.evaluation.metrics import auroc_separation, srocc

LOG = logging.getLogger(__name__)

ScoreFn = Callable[[Sequence[np.ndarray]], np.ndarray]
LEVELS = (0, 1, 2, 3, 4, 5)
KEEP_LEVELS = (0, 1)
DROP_MIN_LEVEL = 3


@dataclass(frozen=True)
class ProtocolConfig:
    """How views are cut and distorted. ``crop=0`` evaluates the whole (shrunk) image."""

    crop: int = 256
    resize_side: int = 512
    crops_per_image: int = 1
    seed: int = 0
    batch_size: int = 32
    frame_sizes: tuple[tuple[int, int], ...] = ()  # (width, height) camera frames; () = shrink + crop mode
    noise_floor: float = 0.0  # > 0: a camera's physical order with this sensor noise floor (grey levels)
    # > noise_floor: each view's floor sigma drawn (seeded) from U(noise_floor, noise_floor_max) (training)
    noise_floor_max: float = 0.0
    # > 0: every frame (clean ones included) leaves as a JPEG of this quality, last, like a camera's
    # compressed image topic (sensor_msgs/CompressedImage); 0: raw
    transport_jpeg: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.transport_jpeg <= 100:
            raise ValueError(f"transport_jpeg: 0 (raw) or a JPEG quality 1..100, not {self.transport_jpeg}")
        if (self.crop < 0 or self.resize_side < 0 or self.crops_per_image < 1 or self.batch_size < 1
                or not 0.0 <= self.noise_floor <= 64.0 or not 0.0 <= self.noise_floor_max <= 64.0
                or (self.noise_floor_max and self.noise_floor_max < self.noise_floor)):
            raise ValueError(f"bad protocol config {self}")
        object.__setattr__(self, "frame_sizes", tuple((int(w), int(h)) for w, h in self.frame_sizes))
        if any(w < 32 or h < 32 for w, h in self.frame_sizes):
            raise ValueError(f"frame sizes must be at least 32x32 px, got {self.frame_sizes}")


# Small protocol for periodic validation during training on a CPU.
QUICK = ProtocolConfig(crop=128, resize_side=256, crops_per_image=1)

# Camera frame sizes (width, height) of the full-frame protocol, used in turn per view.
FRAME_SIZES = ((640, 480), (1280, 720), (1920, 1080))
# The deployment-like protocol: whole frames at camera resolution, scored whole (batches of 4 frames).
FULL_FRAME = ProtocolConfig(crop=0, resize_side=0, crops_per_image=1, batch_size=4, frame_sizes=FRAME_SIZES)
# Its default types: the faults a robot camera meets (every fault class of the fault head) plus three
# other ARNIQA types (class `other`). The no-content fades are opt-in.
FULL_FRAME_TYPES = (
    "gaublur", "lensblur", "defocus",
    "motionblur", "camera_shake", "shake", "platform_motion",
    "haze", "low_light", "darken", "overexposure", "brighten", "glare",
    "whitenoise", "whitenoiseCC", "impulsenoise", "multnoise",
    "jpeg", "jpeg2000", "jpeg_camera",
    "colordiff", "pixelate", "nonlincontrchange",
)


@dataclass
class ProtocolScores:
    """Scores of one protocol run: ``scores[name]`` has shape (views, types, 6 levels)."""

    types: list[str]
    groups: list[str]
    view_names: list[str]
    config: ProtocolConfig
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    # extra per-image outputs of a score_fn that returned (scores, extra (N, C)): (views, types, 6, C)
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    # the fault class a door publishes per image (index into heads.FAULT_CLASSES), from a score_fn that
    # returned (scores, extra, published (N,)): evaluation.model_fn's pipeline score_fn
    published: dict[str, np.ndarray] = field(default_factory=dict)


def resolve_types(types: Sequence[str] | None = None) -> list[str]:
    """Distortion type names from type and/or group names (None = every default type: all but the
    opt-in ``no_content`` group)."""
    from hirqa_ros.degradations import DEFAULT_TYPES, DEGRADATIONS, GROUPS

    if not types:
        return list(DEFAULT_TYPES)
    out: list[str] = []
    for name in types:
        if name in GROUPS:
            out.extend(GROUPS[name])
        elif name in DEGRADATIONS:
            out.append(name)
        else:
            raise ValueError(
                f"unknown distortion type or group {name!r}; groups: {', '.join(GROUPS)}; "
                f"types: {', '.join(DEGRADATIONS)}"
            )
    return list(dict.fromkeys(out))


def group_of(type_name: str) -> str:
    from hirqa_ros.degradations import DEGRADATIONS

    return DEGRADATIONS[type_name].group


def camera_frame(rgb: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``rgb`` as a (width, height) = ``size`` camera frame: shrunk (area) so it just covers the frame,
    cut at a position drawn from ``rng``. Enlarged (bicubic) only when the photo is smaller."""
    fw, fh = size
    h, w = rgb.shape[:2]
    s = max(fw / w, fh / h)
    if abs(s - 1.0) > 1e-9:
        nw, nh = max(fw, round(w * s)), max(fh, round(h * s))
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        h, w = nh, nw
    y, x = int(rng.integers(0, h - fh + 1)), int(rng.integers(0, w - fw + 1))
    return np.ascontiguousarray(rgb[y : y + fh, x : x + fw])


def make_views(
    images: Sequence[tuple[str, np.ndarray]], config: ProtocolConfig
) -> list[tuple[str, np.ndarray]]:
    """Deterministic views (name, rgb uint8) of the pristine images, as the module docstring says."""
    views: list[tuple[str, np.ndarray]] = []
    if config.frame_sizes:
        sizes = config.frame_sizes
        for i, (name, rgb) in enumerate(images):
            rng = np.random.default_rng([config.seed, i])
            for k in range(config.crops_per_image):
                fw, fh = sizes[(i * config.crops_per_image + k) % len(sizes)]
                frame = camera_frame(np.ascontiguousarray(rgb), (fw, fh), rng)
                label = f"{name}#{k}@{fw}x{fh}"
                if config.crop:
                    c = min(config.crop, fw, fh)
                    y, x = int(rng.integers(0, fh - c + 1)), int(rng.integers(0, fw - c + 1))
                    frame = np.ascontiguousarray(frame[y : y + c, x : x + c])
                    label += f"/{c}"
                views.append((label, frame))
        return views
    for i, (name, rgb) in enumerate(images):
        img = np.ascontiguousarray(rgb)
        h, w = img.shape[:2]
        if config.resize_side and min(h, w) > config.resize_side:
            s = config.resize_side / min(h, w)
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            h, w = img.shape[:2]
        if not config.crop:
            views.append((name, img))
            continue
        c = min(config.crop, h, w)
        if c < config.crop:
            LOG.info("%s: %dx%d is smaller than the %d px crop; using %d px views", name, w, h,
                     config.crop, c)
        rng = np.random.default_rng([config.seed, i])
        for k in range(config.crops_per_image):
            y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
            views.append((f"{name}#{k}", np.ascontiguousarray(img[y : y + c, x : x + c])))
    return views


def ladder_seed(seed: int, view_index: int, type_name: str) -> int:
    """Seed shared by all levels of one ladder (stable across runs and Python processes)."""
    return zlib.crc32(f"{seed}:{view_index}:{type_name}".encode()) & 0x7FFFFFFF


def floor_sigma(noise_floor: float, noise_floor_max: float, seed: int, view_index: int) -> float:
    """The noise floor sigma of one view: ``noise_floor``, or with ``noise_floor_max`` above it a seeded
    draw from U(noise_floor, noise_floor_max)."""
    if noise_floor_max <= noise_floor:
        return noise_floor
    u = ladder_seed(seed, view_index, "noise_sigma") / 0x7FFFFFFF
    return noise_floor + u * (noise_floor_max - noise_floor)


def _jobs(
    views: Sequence[tuple[str, np.ndarray]], types: Sequence[str], config: ProtocolConfig,
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """(view, type index or -1 for pristine, level, image) for the whole protocol.

    ``config.noise_floor`` > 0: a camera's physical order (:mod:`hirqa_ros.degradations.physical`): one
    seeded noise field per view (sigma :func:`floor_sigma`), added after scene/optics/exposure faults and
    before noise faults, ISP and JPEG; the pristine frame carries it too. ``config.transport_jpeg``: every
    frame is then JPEG-encoded for the topic."""
    from hirqa_ros.degradations import degrade
    from hirqa_ros.degradations.compression import jpeg_u8
    from hirqa_ros.degradations.physical import FLOOR, noise_floor_u8, stage

    seed, noise_floor, noise_floor_max = config.seed, config.noise_floor, config.noise_floor_max
    if config.transport_jpeg:
        for v, t, level, img in _jobs(views, types, replace(config, transport_jpeg=0)):
            yield v, t, level, jpeg_u8(img, config.transport_jpeg)
        return

    def floor(img: np.ndarray, v: int) -> np.ndarray:
        if noise_floor <= 0:
            return img
        sigma = floor_sigma(noise_floor, noise_floor_max, seed, v)
        return noise_floor_u8(img, sigma, ladder_seed(seed, v, "noise_floor"))

    for v, (_, view) in enumerate(views):
        floored = floor(view, v)
        yield v, -1, 0, floored
        for t, name in enumerate(types):
            s = ladder_seed(seed, v, name)
            before = noise_floor > 0 and stage(name) < FLOOR  # the fault happens before the sensor
            for level in LEVELS[1:]:
                try:
                    out = floor(degrade(view, name, level, seed=s), v) if before else degrade(
                        floored, name, level, seed=s)
                except Exception as exc:
                    raise RuntimeError(f"distortion {name!r} level {level} failed: {exc}") from exc
                yield v, t, level, out


def _call(name: str, fn: ScoreFn, batch: list[np.ndarray]
          ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Scores (N,) and, when the score_fn returns ``(scores, extra[, published])``, the extra (N, C)
    array (and the published fault class per image, (N,) int)."""
    res = fn(batch)
    extra = published = None
    if isinstance(res, tuple):
        res, extra, *rest = res
        extra = np.asarray(extra, dtype=np.float32).reshape(len(batch), -1)
        if rest:
            published = np.asarray(rest[0], dtype=np.int64).reshape(len(batch))
    out = np.asarray(res, dtype=np.float64).reshape(-1)
    if out.size != len(batch):
        raise ValueError(f"score_fn {name!r} returned {out.size} scores for {len(batch)} images")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"score_fn {name!r} returned NaN or infinite scores")
    return out, extra, published


@dataclass
class Protocol:
    """A protocol with its distorted images built once and kept in memory, for repeated scoring
    (periodic validation during training). Build with :func:`build_protocol`."""

    types: list[str]
    groups: list[str]
    view_names: list[str]
    config: ProtocolConfig
    jobs: list[tuple[int, int, int, np.ndarray]]

    def score(self, score_fns: Mapping[str, ScoreFn], progress: bool = False) -> ProtocolScores:
        return _score_jobs(score_fns, iter(self.jobs), self.types, self.groups, self.view_names, self.config,
                           progress)

    def evaluate(self, score_fn: ScoreFn, name: str = "model") -> dict:
        """:func:`summarize` of one score_fn on this protocol."""
        return summarize(self.score({name: score_fn}), name)


def _named(images: str | Path | Sequence, max_images: int | None) -> list[tuple[str, np.ndarray]]:
    if isinstance(images, (str, Path)):
        return load_folder(images, limit=max_images)
    items = list(images)[:max_images] if max_images else list(images)
    return [it if isinstance(it, tuple) else (f"image{i}", it) for i, it in enumerate(items)]


def build_protocol(
    images: str | Path | Sequence[np.ndarray] | Sequence[tuple[str, np.ndarray]],
    types: Sequence[str] | None = None,
    config: ProtocolConfig = QUICK,
    max_images: int | None = None,
) -> Protocol:
    """Cut the views and render every ladder once (memory: views x (1 + 5 x types) images)."""
    type_list = resolve_types(types)
    views = make_views(_named(images, max_images), config)
    if not views:
        raise ValueError("no pristine images to evaluate on")
    return Protocol(type_list, [group_of(t) for t in type_list], [n for n, _ in views], config,
                    list(_jobs(views, type_list, config)))


def score_protocol(
    score_fns: Mapping[str, ScoreFn],
    images: Sequence[tuple[str, np.ndarray]],
    types: Sequence[str] | None = None,
    config: ProtocolConfig = ProtocolConfig(),
    progress: bool = False,
) -> ProtocolScores:
    """Render the protocol's images on the fly (little memory) and score each batch with every score_fn."""
    type_list = resolve_types(types)
    views = make_views(images, config)
    if not views:
        raise ValueError("no pristine images to evaluate on")
    jobs = _jobs(views, type_list, config)
    return _score_jobs(score_fns, jobs, type_list, [group_of(t) for t in type_list], [n for n, _ in views],
                       config, progress)


def _score_jobs(
    score_fns: Mapping[str, ScoreFn],
    jobs: Iterator[tuple[int, int, int, np.ndarray]],
    type_list: list[str],
    groups: list[str],
    view_names: list[str],
    config: ProtocolConfig,
    progress: bool,
) -> ProtocolScores:
    n_v, n_t, n_l = len(view_names), len(type_list), len(LEVELS)
    result = ProtocolScores(
        types=type_list,
        groups=groups,
        view_names=view_names,
        config=config,
        scores={name: np.full((n_v, n_t, n_l), np.nan) for name in score_fns},
    )
    total = n_v * (1 + n_t * (n_l - 1))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="eval", unit="img", dynamic_ncols=True)

    def put(arrays: dict[str, np.ndarray], name: str, shape: tuple, dtype: Any, fill: Any,
            pending: list, values: np.ndarray) -> None:
        if name not in arrays:
            arrays[name] = np.full((n_v, n_t, n_l, *shape), fill, dtype)
        arr = arrays[name]
        for (v, t, level, _), val in zip(pending, values):
            if t < 0:  # a pristine view is level 0 of every ladder
                arr[v, :, 0] = val
            else:
                arr[v, t, level] = val

    for pending in batched(jobs, config.batch_size):  # the one batching loop
        batch = [p[3] for p in pending]
        for name, fn in score_fns.items():
            s, extra, published = _call(name, fn, batch)
            put(result.scores, name, (), np.float64, np.nan, pending, s)
            if extra is not None:
                put(result.aux, name, (extra.shape[1],), np.float32, np.nan, pending, extra)
            if published is not None:
                put(result.published, name, (), np.int64, -1, pending, published)
        if bar is not None:
            bar.update(len(pending))
    if bar is not None:
        bar.close()
    return result


def _block_metrics(arr: np.ndarray, type_idx: Sequence[int]) -> dict[str, float]:
    """srocc and auroc pooled over views and the given types; pristine counted once per view."""
    levels = np.asarray(LEVELS, dtype=np.float64)
    pristine = arr[:, type_idx[0], 0]
    dist = arr[:, type_idx, 1:]  # (V, k, 5)
    scores = np.r_[pristine, dist.reshape(-1)]
    lv = np.r_[np.zeros(pristine.size), np.broadcast_to(levels[1:], dist.shape).reshape(-1)]
    keep = np.r_[pristine, arr[:, type_idx, 1].reshape(-1)]
    drop = arr[:, type_idx, DROP_MIN_LEVEL:].reshape(-1)
    return {"srocc": srocc(scores, -lv), "auroc": auroc_separation(keep, drop)}


def summarize(ps: ProtocolScores, name: str) -> dict:
    """Per-type, per-group and pooled metrics of one score_fn (see the module docstring)."""
    arr = ps.scores[name]
    neg_levels = -np.asarray(LEVELS, dtype=np.float64)
    per_type: dict[str, dict] = {}
    for t, (type_name, group) in enumerate(zip(ps.types, ps.groups)):
        ladders = [srocc(arr[v, t], neg_levels) for v in range(arr.shape[0])]
        per_type[type_name] = {
            "group": group,
            "ladder_srocc": float(np.mean(ladders)),
            **_block_metrics(arr, [t]),
            "mean_score_by_level": [float(x) for x in arr[:, t].mean(axis=0)],
        }
    per_group: dict[str, dict] = {}
    for group in dict.fromkeys(ps.groups):
        idx = [t for t, g in enumerate(ps.groups) if g == group]
        per_group[group] = {
            "types": [ps.types[t] for t in idx],
            "ladder_srocc": float(np.mean([per_type[ps.types[t]]["ladder_srocc"] for t in idx])),
            **_block_metrics(arr, idx),
        }
    pooled = {
        "ladder_srocc": float(np.mean([d["ladder_srocc"] for d in per_type.values()])),
        **_block_metrics(arr, list(range(len(ps.types)))),
    }
    return {
        "name": name,
        "n_views": int(arr.shape[0]),
        "n_types": len(ps.types),
        "config": asdict(ps.config),
        "pooled": pooled,
        "per_group": per_group,
        "per_type": per_type,
    }


def improves(candidate: Mapping[str, float], baseline: Mapping[str, float]) -> bool:
    """The shipping rule on pooled full-frame metrics: AUROC and ladder SROCC both strictly higher."""
    return candidate["auroc"] > baseline["auroc"] and candidate["ladder_srocc"] > baseline["ladder_srocc"]


# evaluate_model keeps the last rendered protocol when it is small, so periodic validation on the
# same photos does not re-render the distortions (same key = same pixels, types and config).
CACHE_MAX_BYTES = 256 * 2**20
_cache: dict[tuple, Protocol] = {}


def _protocol_key(named: Sequence[tuple[str, np.ndarray]], types: list[str], config: ProtocolConfig) -> tuple:
    pixels = tuple((n, a.shape, zlib.crc32(np.ascontiguousarray(a).data)) for n, a in named)
    return (pixels, tuple(types), config.crop, config.resize_side, config.crops_per_image, config.seed,
            config.noise_floor, config.noise_floor_max, config.transport_jpeg)


def evaluate_model(
    score_fn: ScoreFn,
    images: str | Path | Sequence[np.ndarray] | Sequence[tuple[str, np.ndarray]],
    types: Sequence[str] | None = None,
    crop: int = QUICK.crop,
    resize_side: int = QUICK.resize_side,
    max_images: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
    cache: bool = True,
) -> dict:
    """Run the protocol for one score_fn; returns :func:`summarize`'s dict (``["pooled"]`` holds
    ``ladder_srocc``, ``srocc`` and ``auroc``). Defaults are the small CPU validation protocol;
    pass a folder path or a list of RGB arrays; ``types`` may name types and/or groups. With
    ``cache`` the rendered distortions of the last call are reused when photos, types and config
    are the same (at most ``CACHE_MAX_BYTES`` of images kept).
    """
    named = _named(images, max_images)
    config = ProtocolConfig(crop=crop, resize_side=resize_side, seed=seed, batch_size=batch_size)
    type_list = resolve_types(types)
    if not cache:
        ps = score_protocol({"model": score_fn}, named, types=type_list, config=config, progress=progress)
        return summarize(ps, "model")
    key = _protocol_key(named, type_list, config)
    proto = _cache.get(key)
    if proto is None:
        proto = build_protocol(named, type_list, config)
        _cache.clear()
        if sum(j[3].nbytes for j in proto.jobs) <= CACHE_MAX_BYTES:
            _cache[key] = proto
    else:
        proto.config = config  # batch size may differ
    return summarize(proto.score({"model": score_fn}, progress=progress), "model")


def _fmt(x: float) -> str:
    return f"{x:6.3f}"


def format_tables(summaries: Mapping[str, dict]) -> str:
    """Side-by-side tables (ladder SROCC, pooled SROCC, AUROC) for several summaries of one protocol run.

    Rows: each type under its group, the group row, then ``pooled``. The best value in a row is
    marked ``*``.
    """
    names = list(summaries)
    first = summaries[names[0]]
    width = max(12, *(len(n) for n in names))
    label_w = max(22, *(len(t) + 2 for t in first["per_type"]))
    blocks = []
    titles = {
        "ladder_srocc": "ladder SROCC (score vs severity within each image's ladder; 1 = perfect order)",
        "srocc": "SROCC pooled over images (score vs severity across content)",
        "auroc": f"AUROC keep (level {KEEP_LEVELS[0]}-{KEEP_LEVELS[-1]}) vs drop (level >= {DROP_MIN_LEVEL})",
    }
    for metric, title in titles.items():
        lines = [title, "".ljust(label_w) + "".join(n.rjust(width + 1) for n in names)]

        def row(label: str, values: list[float]) -> str:
            best = max(values)
            marks = ["*" if v == best and len(values) > 1 else " " for v in values]
            cells = [(_fmt(v) + m).rjust(width + 1) for v, m in zip(values, marks)]
            return label.ljust(label_w) + "".join(cells)

        for group, g in first["per_group"].items():
            for t in g["types"]:
                lines.append(row(f"  {t}", [summaries[n]["per_type"][t][metric] for n in names]))
            lines.append(row(f"[{group}]", [summaries[n]["per_group"][group][metric] for n in names]))
        lines.append(row("POOLED", [summaries[n]["pooled"][metric] for n in names]))
        blocks.append("\n".join(lines))
    cfg = first["config"]
    setting = (f"whole frames {', '.join(f'{w}x{h}' for w, h in cfg['frame_sizes'])}"
               + (f", {cfg['crop']} px windows" if cfg["crop"] else "")
               if cfg.get("frame_sizes") else f"crop {cfg['crop']}, resize_side {cfg['resize_side']}")
    header = (
        f"{first['n_views']} views x {first['n_types']} types x levels 0..5 "
        f"({setting}, seed {cfg['seed']})"
    )
    return header + "\n\n" + "\n\n".join(blocks)


def compare_to_best(summaries: Mapping[str, dict], subject: str = "model") -> dict:
    """Per pooled metric: the subject's value, the best other score_fn, whether the subject beats it."""
    out: dict[str, dict] = {}
    others = [n for n in summaries if n != subject]
    for metric in ("ladder_srocc", "srocc", "auroc"):
        value = summaries[subject]["pooled"][metric]
        best = max(others, key=lambda n: summaries[n]["pooled"][metric]) if others else None
        best_value = summaries[best]["pooled"][metric] if best else float("nan")
        out[metric] = {subject: value, "best_other": best, "best_other_value": best_value,
                       "beats": bool(best is None or value > best_value)}
    return out
