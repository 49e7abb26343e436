"""The one preprocessing path: camera frames -> input-policy views -> one uint8 NHWC batch per size.

The network input is the camera's bytes: uint8 (N, H, W, 3), RGB (or BGR for a BGR export);
normalisation and the NHWC -> NCHW transpose run inside the model graph (``model.DeployedHiRQA``),
on the backend's own kernels. The host does one copy per view, into a reusable staging buffer
(:func:`stage`). :func:`prepare` (float NCHW, normalised on the host) is the entry point for
training and for ONNX files exported before the camera-bytes input.

Input policies: ``native`` (whole frame), ``max-side:N`` (shrink so the longer side is at most
N, aspect kept), ``crops:KxS`` (K crops of SxS at native resolution, scores averaged by the
scorer). Frames whose shorter side is below ``MIN_SIDE`` px are upscaled (bilinear, aspect kept)
until it is ``MIN_SIDE``: the network downsamples by 32, so smaller inputs would vanish.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MEAN = (0.481, 0.458, 0.408)  # the authors' HiRQA statistics (RGB in [0, 1]); a model card may name others
STD = (0.290, 0.295, 0.300)
MIN_SIDE = 32

CHANNEL_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and std of RGB in [0, 1] that the network was trained with.

    The single source of the normalisation numbers, used on the host (:func:`normalize`) and
    inside the graph (``model.DeployedHiRQA``), so both paths compute the same float32 values.
    """

    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"normalisation needs 3 means and 3 positive stds, got {self.mean}, {self.std}")

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) such that ``uint8 * scale - shift`` is the normalised value, each (3, 1, 1)."""
        std = np.asarray(self.std, np.float32)
        shift = np.asarray(self.mean, np.float32) / std
        return (1.0 / (255.0 * std)).reshape(3, 1, 1), shift.reshape(3, 1, 1)


AUTHORS_NORMALISATION = Normalisation()


@dataclass(frozen=True)
class InputPolicy:
    """How a frame becomes network input. Build with :meth:`parse`."""

    kind: str = "native"
    max_side: int = 0
    crops: int = 0
    crop_size: int = 0

    @classmethod
    def parse(cls, text: str | InputPolicy | None) -> InputPolicy:
        if isinstance(text, InputPolicy):
            return text
        spec = (text or "native").strip().lower()
        try:
            if spec == "native":
                return cls()
            if spec.startswith("max-side:"):
                n = int(spec.split(":", 1)[1])
                if n < MIN_SIDE:
                    raise ValueError
                return cls(kind="max-side", max_side=n)
            if spec.startswith("crops:"):
                k, s = spec.split(":", 1)[1].split("x")
                k, s = int(k), int(s)
                if k < 1 or s < MIN_SIDE:
                    raise ValueError
                return cls(kind="crops", crops=k, crop_size=s)
        except ValueError:
            pass
        raise ValueError(
            f"bad input policy {text!r}: expected 'native', 'max-side:N' (N >= {MIN_SIDE}) "
            f"or 'crops:KxS' (K >= 1, S >= {MIN_SIDE})"
        )

    def __str__(self) -> str:
        if self.kind == "max-side":
            return f"max-side:{self.max_side}"
        if self.kind == "crops":
            return f"crops:{self.crops}x{self.crop_size}"
        return "native"


def to_rgb8(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Convert grey, grey+1, RGB/BGR, RGBA/BGRA, uint8/uint16/float arrays to HxWx3 uint8 RGB."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise ValueError(f"expected HxW, HxWx1, HxWx3 or HxWx4 image, got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"empty image (shape {img.shape})")
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64, np.float16):
        img = np.clip(np.nan_to_num(img.astype(np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if bgr:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def _ensure_min_side(rgb: np.ndarray, min_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if min(h, w) >= min_side:
        return rgb
    f = min_side / min(h, w)
    size = (max(min_side, round(w * f)), max(min_side, round(h * f)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)


def _crop_origins(length: int, size: int, count: int) -> list[int]:
    if count <= 1 or length <= size:
        return [(length - size) // 2] * max(count, 1)
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def policy_views(rgb: np.ndarray, policy: InputPolicy) -> list[np.ndarray]:
    """The HxWx3 uint8 views that one RGB frame contributes under ``policy``."""
    if policy.kind == "max-side":
        h, w = rgb.shape[:2]
        if max(h, w) > policy.max_side:
            f = policy.max_side / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        return [_ensure_min_side(rgb, MIN_SIDE)]
    if policy.kind == "crops":
        s = policy.crop_size
        rgb = _ensure_min_side(rgb, s)
        h, w = rgb.shape[:2]
        # a g x g grid of evenly spread crop positions, the first K of them in reading order
        g = max(1, math.ceil(math.sqrt(policy.crops)))
        ys, xs = _crop_origins(h, s, g), _crop_origins(w, s, g)
        grid = [(y, x) for y in ys for x in xs]
        if policy.crops == 1:
            grid = [((h - s) // 2, (w - s) // 2)]
        picks = [grid[round(i * (len(grid) - 1) / max(1, policy.crops - 1))] for i in range(policy.crops)]
        return [rgb[y:y + s, x:x + s] for y, x in picks]
    return [_ensure_min_side(rgb, MIN_SIDE)]


def normalize(views: Sequence[np.ndarray], norm: Normalisation = AUTHORS_NORMALISATION) -> np.ndarray:
    """Stack same-size HxWx3 uint8 RGB views into normalised float32 NCHW (host-side float path)."""
    scale, shift = norm.scale_shift()
    stacked = views if isinstance(views, np.ndarray) else np.stack(views)
    batch = stacked.astype(np.float32).transpose(0, 3, 1, 2)
    return batch * scale - shift


def frame_bytes(frame: np.ndarray, bgr: bool = False) -> tuple[np.ndarray, bool]:
    """(HxWx3 uint8 array, is_bgr) without copying when ``frame`` already is HxWx3 uint8.

    Other formats (grey, alpha, 16-bit, float...) are converted to RGB by :func:`to_rgb8`.
    """
    img = np.asarray(frame)
    if img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.shape[0] and img.shape[1]:
        return img, bgr
    return to_rgb8(img, bgr=bgr), False


@dataclass
class ViewGroup:
    """Same-size views (HxWx3 uint8, views into the frames where the policy allows) of some frames."""

    views: list[np.ndarray]
    bgr: list[bool]  # per view: its channels are in BGR order
    owners: np.ndarray  # per view: index of the frame it came from (int64)

    @property
    def shape(self) -> tuple[int, int]:
        return self.views[0].shape[:2]


def group_views(frames: Sequence[np.ndarray], policy: InputPolicy | str | None = None,
                bgr: bool | Sequence[bool] = False) -> list[ViewGroup]:
    """The views of ``frames`` under ``policy``, grouped by spatial size (one group per size).

    ``bgr``: one flag for all frames, or one per frame (cameras with different encodings in one
    batch); BGR frames are swapped during the staging copy, not before.

    ``native`` and ``crops`` views are slices of the frames (no pixel copies); ``max-side`` and
    the upscaling of tiny frames resize (a copy, unavoidable).
    """
    policy = InputPolicy.parse(policy)
    flags = [bool(bgr)] * len(frames) if isinstance(bgr, (bool, np.bool_)) else [bool(b) for b in bgr]
    if len(flags) != len(frames):
        raise ValueError(f"got {len(flags)} bgr flags for {len(frames)} frames")
    by_size: dict[tuple[int, int], tuple[list[np.ndarray], list[bool], list[int]]] = {}
    for i, frame in enumerate(frames):
        img, is_bgr = frame_bytes(frame, flags[i])
        for view in policy_views(img, policy):
            views, orders, owners = by_size.setdefault(view.shape[:2], ([], [], []))
            views.append(view)
            orders.append(is_bgr)
            owners.append(i)
    return [ViewGroup(v, b, np.asarray(o, np.int64)) for v, b, o in by_size.values()]


def stage(views: Sequence[np.ndarray], bgr: Sequence[bool], out: np.ndarray,
          channel_order: str = "RGB") -> np.ndarray:
    """Copy views into ``out`` (a C-contiguous uint8 (N, H, W, 3) buffer) in ``channel_order``.

    The one pixel copy of the scoring path; a view whose order differs is swapped during that
    same copy (OpenCV's SIMD ``cvtColor`` writing into the buffer). Returns ``out``.
    """
    want_bgr = channel_order.upper() == "BGR"
    for i, (view, is_bgr) in enumerate(zip(views, bgr)):
        if is_bgr == want_bgr:
            out[i] = view
        else:
            cv2.cvtColor(view, cv2.COLOR_BGR2RGB, dst=out[i])
    return out


def as_batch(group: ViewGroup, channel_order: str = "RGB") -> np.ndarray | None:
    """The group as a uint8 NHWC batch WITHOUT copying, when it is one contiguous frame in the
    wanted order (``frame[None]``); None otherwise (then :func:`stage` it)."""
    if len(group.views) != 1 or group.bgr[0] != (channel_order.upper() == "BGR"):
        return None
    view = group.views[0]
    return view[None] if view.flags.c_contiguous else None


@dataclass
class Batch:
    """Network input of one size plus, per row, the index of the frame it came from."""

    array: np.ndarray  # N, 3, H, W float32
    owners: np.ndarray  # N int64


def prepare(frames: Sequence[np.ndarray], policy: InputPolicy | str | None = None,
            bgr: bool | Sequence[bool] = False, norm: Normalisation = AUTHORS_NORMALISATION) -> list[Batch]:
    """Normalised float32 NCHW batches grouped by spatial size, normalised on the host with ``norm``.

    The float entry point (training, ONNX files that predate the camera-bytes input); scoring
    uses :func:`group_views` + :func:`stage` and normalises inside the graph.
    """
    out = []
    for g in group_views(frames, policy, bgr):
        h, w = g.shape
        rgb = stage(g.views, g.bgr, np.empty((len(g.views), h, w, 3), np.uint8))
        out.append(Batch(normalize(rgb, norm), g.owners))
    return out
