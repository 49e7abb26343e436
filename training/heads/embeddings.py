"""Embeddings of a synthetic protocol run, for fitting heads on the frozen network; cached as ``.npz``.

``hirqa heads embed --images data/pristine_native/train --windows 384 --out F.npz`` renders ladders
on camera-scale views (``ProtocolConfig.frame_sizes``), runs the network once per
image (score + 1024-d embedding, ONNX Runtime on the CPU) and stores scores, embeddings, the
classical cues and the protocol layout. Fitting heads then takes seconds instead of re-running it.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hirqa_ros.batching import batched
from hirqa_ros.evaluation.synthetic import FULL_FRAME, ProtocolConfig, ProtocolScores

log = logging.getLogger("hirqa.embeddings")


def embedding_onnx(art, cache_dir: str | Path) -> Path:
    """An fp32 ONNX of a loaded model directory's weights with outputs ``score`` and ``embedding``, float
    input normalised on the host (cached by sha256)."""
    import torch

    sha = art.file_sha256("weights") or "unknown"
    path = Path(cache_dir) / f"embed_{sha[:16]}.onnx"
    if path.exists():
        return path
    model = art.torch_model().float().eval()

    class Both(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.m.score_and_embed(x)

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(Both(model), (torch.rand(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["score", "embedding"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "score": {0: "batch"}, "embedding": {0: "batch"}})
    return path


class EmbedFn:
    """``fn(frames) -> (scores (N,), embeddings (N, D))`` through ONNX Runtime with the input policy: a tiny
    adapter (heads are fitted on embeddings, not on a gated verdict) over the one preprocessing path and
    the one batching loop (``batching.batched``)."""

    def __init__(self, onnx_path: str | Path, norm, input_policy: str = "native", threads: int = 2,
                 batch_size: int = 8) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.policy = input_policy
        self.batch_size = batch_size
        self.norm = norm  # the model's trunk's (``Artifact.normalisation``): no default to forget

    @classmethod
    def of_model(cls, model_dir: str | Path | None, cache_dir: str | Path, threads: int = 2) -> EmbedFn:
        """The embedding function of a model directory (default: the installed model), normalising
        frames with its trunk's statistics."""
        from hirqa_ros.artifacts import load_artifact

        art = load_artifact(model_dir)
        return cls(embedding_onnx(art, cache_dir), art.normalisation, threads=threads)

    def __call__(self, frames) -> tuple[np.ndarray, np.ndarray]:
        from hirqa_ros.preprocess import prepare

        frames = list(frames)
        scores = np.zeros(len(frames), np.float64)
        embs: np.ndarray | None = None
        count = np.zeros(len(frames), np.int64)
        for batch in prepare(frames, self.policy, norm=self.norm):
            for rows in batched(range(len(batch.owners)), self.batch_size):
                owners = batch.owners[rows[0] : rows[-1] + 1]
                sc, emb = self.session.run(None, {"image": batch.array[rows[0] : rows[-1] + 1]})
                if embs is None:
                    embs = np.zeros((len(frames), emb.shape[1]), np.float64)
                np.add.at(scores, owners, sc)
                np.add.at(embs, owners, emb)
                np.add.at(count, owners, 1)
        c = np.maximum(count, 1)
        return (scores / c).astype(np.float32), (embs / c[:, None]).astype(np.float32)


def save(path: str | Path, ps: ProtocolScores, embedding_name: str = "model") -> None:
    """Scores of every score_fn, the embeddings (float16) and the protocol layout in one ``.npz``."""
    meta = {"types": ps.types, "groups": ps.groups, "view_names": ps.view_names, "config": asdict(ps.config),
            "score_fns": list(ps.scores)}
    arrays = {f"score__{k}": v for k, v in ps.scores.items()}
    arrays["embeddings"] = ps.aux[embedding_name].astype(np.float16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


def load(path: str | Path) -> tuple[ProtocolScores, np.ndarray]:
    """(ProtocolScores with every stored score_fn, embeddings (V, T, 6, D) float32)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        scores = {k: z[f"score__{k}"] for k in meta["score_fns"]}
        emb = z["embeddings"].astype(np.float32)
    ps = ProtocolScores(meta["types"], meta["groups"], meta["view_names"], _config(meta), scores)
    return ps, emb


def _config(meta: dict) -> ProtocolConfig:
    """The protocol config stored in a run's metadata."""
    cfg = dict(meta["config"])
    cfg["frame_sizes"] = tuple(tuple(s) for s in cfg.get("frame_sizes", ()))
    return ProtocolConfig(**cfg)


def shard_settings(paths: Sequence[str | Path]) -> list[tuple[ProtocolConfig, int]]:
    """(protocol config, views) of each run in ``paths``, from their metadata alone."""
    out = []
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
        out.append((_config(meta), len(meta["view_names"])))
    return out


def load_many(paths: Sequence[str | Path]) -> tuple[ProtocolScores, np.ndarray]:
    """``load`` of several runs of the same types (e.g. shards of the training photos), views concatenated."""
    parts = [load(p) for p in paths]
    ps0 = parts[0][0]
    for ps, _ in parts[1:]:
        if ps.types != ps0.types:
            raise ValueError(f"cannot join protocol runs with different types: {ps0.types} vs {ps.types}")
    names = [n for ps, _ in parts for n in ps.view_names]
    scores = {k: np.concatenate([ps.scores[k] for ps, _ in parts]) for k in ps0.scores
              if all(k in ps.scores for ps, _ in parts)}
    emb = np.concatenate([e for _, e in parts])
    return ProtocolScores(ps0.types, ps0.groups, names, ps0.config, scores), emb


def pristine_views(images, per_photo: int, window: int, seed: int = 0,
                   frame_sizes: tuple[tuple[int, int], ...] | None = None,
                   noise_floor: tuple[float, float] | None = None) -> list[np.ndarray]:
    """Undistorted ``window`` px views cut at native resolution from camera frames of each photo
    (frame sizes in turn, seeded; ``window`` 0 = the whole frames): extra clean examples for the heads;
    ``noise_floor`` (lo, hi): each with a sensor noise floor of sigma U(lo, hi) grey levels."""
    from hirqa_ros.degradations.physical import noise_floor_u8
    from hirqa_ros.evaluation.synthetic import camera_frame

    out = []
    sizes = frame_sizes or FULL_FRAME.frame_sizes
    for i, (_, rgb) in enumerate(images):
        rng = np.random.default_rng([seed, 1000 + i])
        for k in range(per_photo):
            frame = camera_frame(rgb, sizes[(i + k) % len(sizes)], rng)
            if noise_floor:
                frame = noise_floor_u8(frame, rng.uniform(*noise_floor), int(rng.integers(2**31)))
            if not window:
                out.append(frame)
                continue
            h, w = frame.shape[:2]
            c = min(window, h, w)
            y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
            out.append(np.ascontiguousarray(frame[y : y + c, x : x + c]))
    return out


def embed(images_dir: str, out: str, model: str | None = None, types: list[str] | None = None,
          windows: int = 0, views_per_image: int = 1, max_images: int | None = None, seed: int = 0,
          threads: int = 2, cache_dir: str = "runs/cache", pristine_only: int = 0,
          physical_order: tuple[float, float] | None = None,
          frame_sizes: tuple[tuple[int, int], ...] | None = None, cues: bool = True,
          transport_jpeg: int = 0) -> Path:
    """Run the network (and the classical cues) over the protocol views of the photos in ``images_dir``
    and store them in ``out`` (``types`` None: every default type); ``pristine_only`` N: only N clean
    views per photo (windows, or whole frames without ``windows``), embeddings + cues, no ladders.
    ``physical_order`` (lo, hi): render in a camera's physical order with a sensor noise floor of sigma
    U(lo, hi) grey levels per view (lo == hi: fixed), clean frames included; ``transport_jpeg`` Q: every
    frame then leaves as a JPEG of quality Q (a compressed topic)."""
    from hirqa_ros.classical import CUES, cue_score_fn
    from hirqa_ros.evaluation.images import load_folder
    from hirqa_ros.evaluation.synthetic import resolve_types, score_protocol

    if pristine_only and transport_jpeg:
        raise ValueError("--pristine-only does not take --transport-jpeg")
    lo, hi = physical_order or (0.0, 0.0)
    config = ProtocolConfig(crop=windows, resize_side=0, crops_per_image=views_per_image, seed=seed,
                            batch_size=16 if windows else 4,
                            frame_sizes=frame_sizes or FULL_FRAME.frame_sizes,
                            noise_floor=lo, noise_floor_max=hi if hi > lo else 0.0,
                            transport_jpeg=transport_jpeg)
    images = load_folder(images_dir, limit=max_images)
    fn = EmbedFn.of_model(model, cache_dir, threads)
    fns = {"model": fn, **({c: cue_score_fn(c) for c in CUES} if cues else {})}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if pristine_only:
        views = pristine_views(images, pristine_only, windows, seed, frame_sizes, physical_order)
        scores, emb = fn(views)
        names = [c for c in CUES if c in fns]
        cue_arr = np.stack([fns[c](views) for c in names], axis=1) if names else np.zeros((len(views), 0))
        photos = np.repeat(np.arange(len(images)), pristine_only)
        np.savez_compressed(out, embeddings=emb.astype(np.float16), scores=scores, cues=cue_arr,
                            cue_names=np.asarray(names), photos=photos)
        log.info("wrote %d clean views to %s", len(views), out)
        return Path(out)
    types = resolve_types(types)
    log.info("%d photos x %d views, %d types, windows %s, %s%s", len(images), views_per_image, len(types),
             windows or "whole frames",
             f"physical order, noise floor sigma {lo:g}-{hi:g}" if physical_order else "noise-free",
             f", topic JPEG {transport_jpeg}" if transport_jpeg else "")
    ps = score_protocol(fns, images, types=types, config=config, progress=True)
    save(out, ps)
    log.info("wrote %s", out)
    return Path(out)
