"""The prepared GPU training run (``training/gpu_run.sh``): make a carryable fp16 init from a CPU checkpoint,
train with the GPU sampler under a wall-time budget, pack the fp16 weights into <= 15 MiB parts with the
metrics, and reassemble them on the CPU side into a run folder that ``training.ship`` can turn into a model.

    python -m hirqa_ros.training.gpu_run init   --checkpoint runs/hirqa-s-cpu/checkpoints/last.pt
    python -m hirqa_ros.training.gpu_run train  --work /tmp/run --minutes 5
    python -m hirqa_ros.training.gpu_run pack   --work /tmp/run --out $OUT
    python -m hirqa_ros.training.gpu_run unpack --parts DIR --run runs/hirqa-s-gpu
    python -m hirqa_ros.training.gpu_run gate   --work /tmp/run --baseline models/hirqa-s --out $OUT
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

log = logging.getLogger("hirqa.gpu_run")

DEFAULT_INIT = "models/hirqa-s"  # continue from the shipped model (a model dir, a checkpoint or an init file)
GATE_FILE = "gate.json"
GATE_IMAGES = "data/pristine_native/val"
PART_PREFIX = "weights.pt.part"
MANIFEST = "gpu_run.json"
COPIED = ("metrics.csv", "val.csv", "config.yaml")  # + MANIFEST, GATE_FILE, train.log, 2 parts: 8 files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fp16(sd: dict) -> dict:
    return {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().clone() for k, v in sd.items()
    }


# ----------------------------------------------------------------------------- init


def make_init(checkpoint: Path, out: Path, hardware: str | None) -> Path:
    """A slim copy of a training checkpoint that ``--init-from`` accepts: the model's weights in fp16
    (no optimizer, no projection), its config, step counts and lineage (~25 MB instead of ~150 MB)."""
    import torch

    from hirqa_ros.training.trainer import load_checkpoint

    ck = load_checkpoint(checkpoint)
    net = {k: v for k, v in ck["net"].items() if k.startswith("model.")}
    slim = {
        "net": _fp16(net),
        "config": ck["config"],
        "step": int(ck["step"]),
        "images_seen": int(ck["images_seen"]),
        "elapsed_s": float(ck["elapsed_s"]),
        "lineage": ck.get("lineage") or [],
        "init_from": ck.get("init_from"),
        "parent": ck.get("parent"),
        "world_size": int(ck.get("world_size", 1)),
        "source_checkpoint": str(checkpoint),
        "hardware": hardware,
        "weights": "fp16 (model only)",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(slim, buf)
    out.write_bytes(buf.getvalue())
    log.info(
        "%s: step %d of run %s, %.1f MiB (from %s)",
        out,
        slim["step"],
        ck["config"].get("name"),
        out.stat().st_size / 2**20,
        checkpoint,
    )
    return out


# ----------------------------------------------------------------------------- train


def _check_text_cache(cfg: dict) -> None:
    """The alignment loss needs prompt embeddings: from the cache, or from an encoder if one loads. With
    neither (a bare GPU machine whose cache misses) the term is switched off instead of failing the run."""
    if not float(cfg["losses"].get("align", 0) or 0):
        return
    from hirqa_ros.degradations import DEFAULT_TYPES
    from hirqa_ros.training.text import prompt_embeddings

    types = cfg["sampler"].get("types") or list(DEFAULT_TYPES)
    try:
        _, info = prompt_embeddings(types, cfg["text"]["cache_dir"], cfg["text"]["encoder"])
        log.info(
            "prompt embeddings: %s (%s)", info.get("path"), "cached" if info.get("cached") else "computed"
        )
    except Exception as exc:
        log.warning("no prompt embeddings (no cache hit, no encoder: %s): align loss switched OFF", exc)
        cfg["losses"]["align"] = 0.0


def _environment(device: str) -> dict:
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "host_cpus": os.cpu_count(),
    }
    if torch.cuda.is_available() and device != "cpu":
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count)
    return env


def run_train(args: argparse.Namespace) -> int:
    import torch

    from hirqa_ros.training import trainer
    from hirqa_ros.training.device_sampler import DeviceLadderSampler

    over: dict = {"train": {"wall_time_minutes": args.minutes}, "sampler": {}}
    if args.max_steps:
        over["train"]["max_steps"] = args.max_steps
    if args.smoke:  # CPU rehearsal: same code path, tiny batches
        over["sampler"].update(ladders=8, per_type=2, crop_sizes=[64, 80])
        over["train"].update(checkpoint_every=5, log_every=2, threads=1)
        over["optim"] = {"warmup_steps": 2}
        over["validation"] = {"types": ["gaublur", "jpeg", "jpeg2000", "low_light", "glare"]}
    cfg = trainer.load_config(args.config, over)
    work = Path(args.work)
    if (work / "checkpoints" / trainer.CKPT_NAME).exists():
        log.error("%s already holds a run; choose another --work", work)
        return 2
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.error("--device %s but torch sees no CUDA device", device)
        return 2
    env = _environment(device)
    log.info("environment: %s", env)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    _check_text_cache(cfg)

    init = args.init_from
    if init and init != "none" and not Path(init).exists():
        log.warning("init %s not found: training from scratch", init)
        init = None
    if init == "none":
        init = None
    log.info("init: %s", init or "from scratch (random init)")

    samplers: list[DeviceLadderSampler] = []

    def factory(*a, **kw):
        s = DeviceLadderSampler(*a, prefetch=args.prefetch, **kw)
        samplers.append(s)
        return s

    # the trainer builds its sampler by this module-level name; swap in the GPU sampler for this run
    trainer.LadderSampler = factory
    t0 = time.time()
    try:
        summary = trainer.train(cfg, work, init_from=init, device=device, progress=not args.no_progress)
    finally:
        for s in samplers:
            s.close()
    summary["gpu_run"] = {
        "environment": env,
        "command_wall_s": round(time.time() - t0, 1),
        "sampler": f"hirqa_ros.training.device_sampler.DeviceLadderSampler (prefetch {args.prefetch})",
        "composition_exclude": sorted(samplers[0].composition_exclude) if samplers else [],
        "init_file": init,
    }
    if init and Path(init).is_file() and summary.get("lineage"):
        # the trainer describes the parent run with THIS machine's CPU: use what the init file recorded
        meta = torch.load(init, map_location="cpu", weights_only=False)
        src = meta.get("source_checkpoint") if isinstance(meta, dict) else None
        if src:
            summary["init_from"] = f"{src} (step {meta.get('step')}; carried as the fp16 copy {init})"
            summary["lineage"][-1]["checkpoint"] = src
            if isinstance(summary.get("parent"), dict):
                summary["parent"]["checkpoint"] = src
        if isinstance(meta, dict) and meta.get("hardware"):
            summary["lineage"][-1]["hardware"] = meta["hardware"]
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    last = summary["val_history"][-1] if summary["val_history"] else {}
    print(
        f"{work}: step {summary['step']} ({summary['stop_reason']}), {summary['elapsed_s']:.0f} s, "
        f"{summary['images_per_s']} images/s on {summary['hardware']}"
        + (
            f", val pooled AUROC {last.get('pooled_auroc')}, ladder SROCC {last.get('pooled_ladder_srocc')}"
            if last
            else ""
        ),
        flush=True,
    )
    return 0


# ----------------------------------------------------------------------------- pack / unpack


def run_pack(args: argparse.Namespace) -> int:
    """fp16 state dict of ``final.pt`` (or of the last checkpoint, if training was cut short) in parts."""
    import torch

    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = json.loads((work / "summary.json").read_text()) if (work / "summary.json").is_file() else None
    if (work / "final.pt").is_file():
        final = torch.load(work / "final.pt", map_location="cpu", weights_only=True)
        sd, variant, source = final["model_state_dict"], final["variant"], "final.pt"
    elif (work / "checkpoints" / "last.pt").is_file():
        ck = torch.load(work / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
        sd = {k[len("model.") :]: v for k, v in ck["net"].items() if k.startswith("model.")}
        variant, source = ck["config"]["variant"], f"checkpoints/last.pt (step {ck['step']}, run cut short)"
        if summary is None:
            summary = {
                k: ck.get(k) for k in ("step", "images_seen", "elapsed_s", "lineage", "init_from", "parent")
            }
            summary.update(
                config=ck["config"], name=ck["config"].get("name"), val_history=ck.get("val_history")
            )
    else:
        log.error("%s holds neither final.pt nor checkpoints/last.pt: nothing to pack", work)
        return 1
    buf = io.BytesIO()
    torch.save({"model_state_dict": _fp16(sd), "variant": variant}, buf)
    blob = buf.getvalue()
    size = int(args.part_mib * 2**20)
    parts = []
    for i in range(0, len(blob), size):
        name = f"{PART_PREFIX}{i // size:02d}"
        (out / name).write_bytes(blob[i : i + size])
        parts.append({"file": name, "bytes": len(blob[i : i + size]), "sha256": _sha256(blob[i : i + size])})
    for name in COPIED:
        if (work / name).is_file():
            shutil.copyfile(work / name, out / name)
    manifest = {
        "weights": {
            "source": source,
            "variant": variant,
            "bytes": len(blob),
            "sha256": _sha256(blob),
            "parts": parts,
        },
        "summary": summary,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
    log.info("packed %s (%d bytes) into %d part(s) in %s", source, len(blob), len(parts), out)
    return 0


def run_unpack(args: argparse.Namespace) -> int:
    """Reassemble the parts (sha256 checked) into ``RUN/final.pt`` + ``RUN/summary.json`` (+ metrics)."""
    src, run = Path(args.parts), Path(args.run)
    manifest = json.loads((src / MANIFEST).read_text())
    w = manifest["weights"]
    chunks = []
    for p in w["parts"]:
        data = (src / p["file"]).read_bytes()
        if _sha256(data) != p["sha256"]:
            log.error("%s: sha256 mismatch", p["file"])
            return 1
        chunks.append(data)
    blob = b"".join(chunks)
    if len(blob) != w["bytes"] or _sha256(blob) != w["sha256"]:
        log.error("reassembled weights do not match the manifest (%d bytes)", len(blob))
        return 1
    run.mkdir(parents=True, exist_ok=True)
    (run / "final.pt").write_bytes(blob)
    if manifest.get("summary"):
        (run / "summary.json").write_text(json.dumps(manifest["summary"], indent=1, default=str))
    for name in (*COPIED, "train.log", MANIFEST):
        if (src / name).is_file():
            shutil.copyfile(src / name, run / name)
    log.info(
        "%s/final.pt: %d bytes, sha256 %s ok (from %d parts)",
        run,
        len(blob),
        w["sha256"][:16],
        len(w["parts"]),
    )
    return 0


# ----------------------------------------------------------------------------- gate


def weights_of_run(work: Path) -> dict:
    """The run's weights: ``final.pt``, else the last checkpoint (a cut run)."""
    import torch

    if (work / "final.pt").is_file():
        return torch.load(work / "final.pt", map_location="cpu", weights_only=True)["model_state_dict"]
    ck = torch.load(work / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    return {k[len("model.") :]: v for k, v in ck["net"].items() if k.startswith("model.")}


def torch_score_fn(model, device: str, input_policy: str = "native", batch: int = 8):
    """score_fn(frames) of a torch HiRQA module through the one preprocessing path (fp32, no grad)."""
    import numpy as np
    import torch

    from hirqa_ros.preprocess import prepare

    model = model.to(device).eval()

    @torch.no_grad()
    def fn(frames):
        total = np.zeros(len(frames))
        count = np.zeros(len(frames))
        for b in prepare(list(frames), input_policy):
            for s in range(0, len(b.owners), batch):
                x = torch.from_numpy(b.array[s : s + batch]).to(device)
                np.add.at(total, b.owners[s : s + batch], model(x).float().cpu().numpy())
                np.add.at(count, b.owners[s : s + batch], 1)
        return total / np.maximum(count, 1)

    return fn


def run_gate(args: argparse.Namespace) -> int:
    """Full-frame evaluation (hirqa eval --full-frame protocol) of the run's weights beside the baseline
    model, on the same rendered frames; writes ``gate.json`` with ``improves`` (pooled AUROC and ladder
    SROCC both higher). Only a run that improves should be shipped (the CPU side checks again)."""
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.evaluation.images import load_folder
    from hirqa_ros.evaluation.synthetic import (
        FULL_FRAME,
        FULL_FRAME_TYPES,
        ProtocolConfig,
        improves,
        score_protocol,
        summarize,
    )
    from hirqa_ros.model import build_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = load_artifact(args.baseline)
    images = load_folder(args.images, limit=args.max_images)
    if not images:
        log.error("gate: no photos in %s", args.images)
        return 2
    cand = build_model(base.variant, {k: v.float() for k, v in weights_of_run(Path(args.work)).items()})
    sizes = tuple(tuple(int(v) for v in s.split("x")) for s in args.frame_sizes) if args.frame_sizes else None
    cfg = ProtocolConfig(crop=0, resize_side=0, batch_size=4, frame_sizes=sizes or FULL_FRAME.frame_sizes)
    types = args.types or list(FULL_FRAME_TYPES)
    t0 = time.time()
    fns = {"candidate": torch_score_fn(cand, args.device, base.input_policy),
           "baseline": torch_score_fn(base.torch_model(), args.device, base.input_policy)}
    ps = score_protocol(fns, images, types, cfg)
    summ = {k: summarize(ps, k) for k in fns}
    c, b = summ["candidate"]["pooled"], summ["baseline"]["pooled"]
    better = improves(c, b)
    gate = {"improves": better, "candidate": c, "baseline": b, "baseline_dir": str(base.path),
            "baseline_weights_sha256": base.file_sha256("weights"), "images": str(args.images),
            "views": ps.view_names, "types": types, "seconds": round(time.time() - t0, 1),
            "per_type": {t: {"candidate": summ["candidate"]["per_type"][t]["auroc"],
                             "baseline": summ["baseline"]["per_type"][t]["auroc"]} for t in types}}
    (out / GATE_FILE).write_text(json.dumps(gate, indent=1))
    log.info("gate: full-frame pooled AUROC %.4f vs %.4f, ladder SROCC %.4f vs %.4f -> %s", c["auroc"],
             b["auroc"], c["ladder_srocc"], b["ladder_srocc"], "IMPROVES" if better else "does not improve")
    return 0


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m hirqa_ros.training.gpu_run", description=__doc__.splitlines()[0]
    )
    sub = p.add_subparsers(dest="action", required=True)
    pi = sub.add_parser("init", help="slim fp16 init file from a training checkpoint")
    pi.add_argument("--checkpoint", required=True, help="RUN/checkpoints/last.pt")
    pi.add_argument("--out", default=DEFAULT_INIT)
    pi.add_argument("--hardware", default=None, help="hardware the checkpoint's run used (for the lineage)")
    pt = sub.add_parser("train", help="train with the GPU sampler under a wall-time budget")
    pt.add_argument("--config", default="config/train_hirqa_s_gpu.yaml")
    pt.add_argument("--work", required=True, help="run folder (checkpoints, final.pt, metrics)")
    pt.add_argument("--minutes", type=float, default=7.0, help="wall-time budget of the training loop")
    pt.add_argument("--max-steps", type=int, default=None)
    pt.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    pt.add_argument("--init-from", default=DEFAULT_INIT, help="init file / checkpoint / model dir, or 'none'")
    pt.add_argument("--prefetch", type=int, default=2, help="batches drawn ahead by a thread (0: none)")
    pt.add_argument("--smoke", action="store_true", help="tiny batches (CPU rehearsal of the same code path)")
    pt.add_argument("--no-progress", action="store_true")
    pk = sub.add_parser("pack", help="fp16 weights in parts + metrics into an output folder")
    pk.add_argument("--work", required=True)
    pk.add_argument("--out", required=True)
    pk.add_argument("--part-mib", type=float, default=15.0)
    pu = sub.add_parser("unpack", help="reassemble packed parts into a run folder")
    pu.add_argument("--parts", required=True)
    pu.add_argument("--run", required=True)
    pg = sub.add_parser("gate", help="full-frame evaluation of the run vs the baseline model (gate.json)")
    pg.add_argument("--work", required=True)
    pg.add_argument("--baseline", default="models/hirqa-s")
    pg.add_argument("--images", default=GATE_IMAGES)
    pg.add_argument("--out", required=True)
    pg.add_argument("--device", default="cpu")
    pg.add_argument("--types", nargs="*", default=None)
    pg.add_argument("--frame-sizes", nargs="*", default=None, metavar="WxH")
    pg.add_argument("--max-images", type=int, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    if args.action == "init":
        make_init(Path(args.checkpoint), Path(args.out), args.hardware)
        return 0
    return {"train": run_train, "pack": run_pack, "unpack": run_unpack, "gate": run_gate}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
