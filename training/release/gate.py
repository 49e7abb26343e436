"""The one release gate: a candidate ships only when its pooled AUROC and ladder SROCC are both higher
than the baseline's on the same full-frame protocol frames (``hirqa eval --full-frame``). Applied to two
eval reports (``compare_reports``) or to a run's weights scored beside a model directory (``gate_run``).
Frames rendered in a camera's physical order (a noise floor) raise the bar (``passes_physical``): every
pooled measure higher there, and no pooled measure lower on the same photos rendered noise-free, nor (when
given) on them as a compressed image topic delivers them (smaller, JPEG-encoded)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger("hirqa.release")

GATE_FILE = "gate.json"
GATE_IMAGES = "data/pristine_native/val"


def passes(candidate: dict, baseline: dict) -> bool:
    """The rule on two protocol summaries of the same frames: pooled AUROC and ladder SROCC both higher
    (ties are not improvements)."""
    from hirqa_ros.evaluation.synthetic import improves

    return improves(candidate["pooled"], baseline["pooled"])


POOLED_MEASURES = ("auroc", "ladder_srocc", "srocc")
PHYSICAL_RULE = "physical order: every pooled measure higher; noise-free and compressed topic: none lower"
PLAIN_RULE = "pooled AUROC and ladder SROCC both higher"


def passes_plain(candidate: dict, baseline: dict) -> tuple[bool, list[str]]:
    """:func:`passes` with one line per measure that fails."""
    fails = [f"{m} {candidate['pooled'][m]:.4f} is not above {baseline['pooled'][m]:.4f}"
             for m in ("auroc", "ladder_srocc") if not candidate["pooled"][m] > baseline["pooled"][m]]
    return not fails, fails


def passes_physical(physical: tuple[dict, dict], plain: tuple[dict, dict] | None,
                    topic: tuple[dict, dict] | None = None) -> tuple[bool, list[str]]:
    """The rule for frames in a camera's physical order: on the (candidate, baseline) summaries of the
    physical-order frames every pooled measure (AUROC, ladder SROCC, SROCC across content) strictly higher,
    and on the (candidate, baseline) summaries of the same photos noise-free, and given, as a compressed
    topic delivers them, none lower. Returns (passes, one line per measure that fails); ``plain`` None fails
    (it must be shown not to be worse)."""
    pn, po = physical
    fails = [f"physical order: {m} {pn['pooled'][m]:.4f} is not above {po['pooled'][m]:.4f}"
             for m in POOLED_MEASURES if not pn["pooled"][m] > po["pooled"][m]]
    if plain is None:
        fails.append("noise-free: no evaluation given")
    for name, pair in (("noise-free", plain), ("compressed topic", topic)):
        if pair is not None:
            qn, qo = pair
            fails += [f"{name}: {m} {qn['pooled'][m]:.4f} is below {qo['pooled'][m]:.4f}"
                      for m in POOLED_MEASURES if qn["pooled"][m] < qo["pooled"][m]]
    return not fails, fails


def full_frame(report: dict, what: str) -> dict:
    """The ``synthetic`` part of a ``hirqa eval --full-frame`` report (ValueError for another protocol)."""
    syn = report.get("synthetic") or {}
    if syn.get("protocol") != "full-frame":
        raise ValueError(f"{what}: not a `hirqa eval --full-frame` report (protocol {syn.get('protocol')!r})")
    return syn


def compare_reports(new_report: dict, baseline_report: dict) -> tuple[dict, dict, bool]:
    """(candidate summary, baseline summary, passes) of two full-frame eval reports; ValueError when a
    report is not full-frame or the two were not made on the same frames."""
    new, old = full_frame(new_report, "--eval"), full_frame(baseline_report, "--baseline-eval")
    n, o = new["summaries"]["model"], old["summaries"]["model"]
    if (new["views"], n["config"], list(n["per_type"])) != (old["views"], o["config"], list(o["per_type"])):
        raise ValueError("the two reports were not made on the same frames (views, types or protocol differ)")
    return n, o, passes(n, o)


def torch_score_fn(model, device: str, artifact, batch: int = 8, own_trunk: bool = False):
    """score_fn(frames) of a torch HiRQA module (fp32), each frame judged through the pipeline as
    ``hirqa eval`` judges it (``evaluation.model_fn``): the same preprocessing, batching and scoring as
    every door. Input normalisation: ``artifact``'s card, or the module's own trunk's (``own_trunk``: a
    candidate whose trunk differs from the baseline's). The gate reads the scores only."""
    from hirqa_ros.backends.torch_backend import TorchBackend
    from hirqa_ros.decision import Thresholds
    from hirqa_ros.evaluation.model_fn import evaluation_monitor, pipeline_score_fn
    from hirqa_ros.scorer import Scorer

    backend = TorchBackend(None if own_trunk else artifact, device=device, precision="fp32",
                           model=model.float().eval(), max_batch=batch)
    scorer = Scorer(artifact, backend, artifact.input_policy, batch)
    return pipeline_score_fn(evaluation_monitor(scorer, thresholds=Thresholds()))


def gate_run(work: Path, baseline: str, images: str, out: Path, device: str = "cpu",
             types: list[str] | None = None, frame_sizes: list[str] | None = None,
             max_images: int | None = None) -> dict:
    """Full-frame evaluation of a run's weights beside the ``baseline`` model directory on the same
    rendered frames; writes and returns ``gate.json`` (``improves``: :func:`passes`)."""
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.evaluation.images import load_folder
    from hirqa_ros.evaluation.synthetic import (
        FULL_FRAME,
        FULL_FRAME_TYPES,
        ProtocolConfig,
        score_protocol,
        summarize,
    )
    from hirqa_ros.model import build_model
    from hirqa_ros.training.fit.checkpoint import run_weights

    out.mkdir(parents=True, exist_ok=True)
    base = load_artifact(baseline)
    photos = load_folder(images, limit=max_images)
    if not photos:
        raise ValueError(f"gate: no photos in {images}")
    weights, variant, *_ = run_weights(work)  # the run's own trunk (may differ from the baseline's)
    cand = build_model(variant, {k: v.float() for k, v in weights.items()})
    sizes = tuple(tuple(int(v) for v in s.split("x")) for s in frame_sizes) if frame_sizes else None
    cfg = ProtocolConfig(crop=0, resize_side=0, batch_size=4, frame_sizes=sizes or FULL_FRAME.frame_sizes)
    types = types or list(FULL_FRAME_TYPES)
    t0 = time.time()
    fns = {"candidate": torch_score_fn(cand, device, base, own_trunk=True),
           "baseline": torch_score_fn(base.torch_model(), device, base)}
    ps = score_protocol(fns, photos, types, cfg)
    summ = {k: summarize(ps, k) for k in fns}
    c, b = summ["candidate"]["pooled"], summ["baseline"]["pooled"]
    better = passes(summ["candidate"], summ["baseline"])
    gate = {"improves": better, "candidate": c, "baseline": b, "baseline_dir": str(base.path),
            "baseline_weights_sha256": base.file_sha256("weights"), "images": str(images),
            "views": ps.view_names, "types": types, "seconds": round(time.time() - t0, 1),
            "per_type": {t: {"candidate": summ["candidate"]["per_type"][t]["auroc"],
                             "baseline": summ["baseline"]["per_type"][t]["auroc"]} for t in types}}
    (out / GATE_FILE).write_text(json.dumps(gate, indent=1))
    log.info("gate: full-frame pooled AUROC %.4f vs %.4f, ladder SROCC %.4f vs %.4f -> %s", c["auroc"],
             b["auroc"], c["ladder_srocc"], b["ladder_srocc"], "IMPROVES" if better else "does not improve")
    return gate
