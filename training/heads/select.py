"""Choose and fit the heads (``hirqa heads fit``): score-head and fault-head candidates compared by
photo-fold cross-validation on the TRAINING photos' cached embeddings, the winners refit on all of
them, then reported (tables, calibration, fault confusion) on the held-out validation photos."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from hirqa_ros.evaluation.synthetic import ProtocolScores
from hirqa_ros.heads import FaultHead
from hirqa_ros.training.heads.fit import (
    FaultHeadConfig,
    ScoreHeadConfig,
    concat_samples,
    cv_fault_head,
    cv_score_head,
    fault_labels,
    fit_fault_head,
    fit_score_head,
    flatten,
    fused_inputs,
    head_scale,
    head_scores,
    keep_as_none,
    match_scale,
    objective,
    photo_folds,
    photo_of,
    protocol_summary,
    score_scale,
    temperature_from_logits,
    training_rows,
    with_clean,
)

log = logging.getLogger("hirqa.heads")

# Candidates, chosen by photo-fold cross-validation on the training photos.
SCORE_GRID = (
    ScoreHeadConfig(rank=2.0, keep_drop=0.25, cross=0.25, l2=1.0),
    ScoreHeadConfig(rank=2.0, keep_drop=0.25, cross=0.25, l2=3.0),
    ScoreHeadConfig(rank=2.0, keep_drop=0.5, cross=0.5, l2=1.0),
    # round 3 (physical-order training frames): more weight on the within-ladder order
    ScoreHeadConfig(rank=4.0, keep_drop=0.5, cross=0.5, l2=1.0),
    ScoreHeadConfig(rank=4.0, keep_drop=1.0, cross=0.5, l2=0.3),
    # 131 training photos (2026-12-07): a weaker pull towards the shipped head
    ScoreHeadConfig(rank=2.0, keep_drop=1.0, cross=1.0, l2=0.1),
)
FAULT_GRID = (
    FaultHeadConfig(hidden=256, weight_decay=1e-2, min_level=3),
    FaultHeadConfig(hidden=256, weight_decay=1e-2, min_level=2),
    # round 3: clean frames of unseen photos were rarely `none`; level-1 ("keep") frames teach it too
    FaultHeadConfig(hidden=256, weight_decay=1e-2, min_level=3, keep_none=True),
)


def _frames_kind(cfg) -> str:
    """How a protocol run's frames were made, in a few words (a topic's JPEG quality left out)."""
    sizes = "/".join(f"{w}x{h}" for w, h in cfg.frame_sizes) or f"photos shrunk to {cfg.resize_side} px"
    what = f"{cfg.crop} px windows cut at native resolution from {sizes} frames" if cfg.crop \
        else f"whole {sizes} frames"
    if cfg.noise_floor:
        hi = f"-{cfg.noise_floor_max:g}" if cfg.noise_floor_max > cfg.noise_floor else ""
        what += f" in physical order (noise floor {cfg.noise_floor:g}{hi})"
    return what


def describe_training_data(ps: ProtocolScores, shards: list | None = None) -> str:
    """One line for the card's lineage: what the heads were fitted on; ``shards``: (config, views) of each
    joined run (:func:`shard_settings`), else ``ps.config`` for all views."""
    photos = len({photo_of(n) for n in ps.view_names})
    views: dict[str, int] = {}
    qualities: dict[str, set[int]] = {}
    for cfg, n in shards or [(ps.config, len(ps.view_names))]:
        kind = _frames_kind(cfg)
        views[kind] = views.get(kind, 0) + n
        qualities.setdefault(kind, set()).add(cfg.transport_jpeg)
    parts = []
    for kind, n in views.items():
        topic = sorted(v for v in qualities[kind] if v)
        if topic:
            kind += f" as a JPEG topic (quality {topic[0]}" + (f"-{topic[-1]})" if len(topic) > 1 else ")")
        parts.append(f"{n} views: {kind}")
    return (f"embeddings of ladders rendered at camera pixel scale on {photos} TRAINING photos "
            f"({'; '.join(parts)}; {len(ps.types)} types x levels 0..5); the validation photos only for "
            "the report")


def _rounded(metrics: dict) -> dict:
    return {k: round(v, 4) for k, v in metrics.items()}


def _short(cfg: ScoreHeadConfig) -> str:
    return f"rank={cfg.rank:g} keep_drop={cfg.keep_drop:g} cross={cfg.cross:g} l2={cfg.l2:g}"


class Inputs:
    """The cached embeddings of one ``hirqa heads fit`` run and what is derived from them."""

    def __init__(self, train: list[str], val: list[str], model: str | None, folds: int,
                 clean: str | None, scale_from: list[str] | None = None) -> None:
        from hirqa_ros.artifacts import load_artifact
        from hirqa_ros.training.heads.embeddings import load_many

        self.ps_tr, self.emb_tr = load_many(train)
        self.ps_va, self.emb_va = load_many(val)
        sd = load_artifact(model).state_dict()
        self.w0 = sd["fc.0.weight"].float().numpy().reshape(-1)
        self.b0 = float(sd["fc.0.bias"].float().numpy().reshape(-1)[0])
        self.n_folds = folds
        # photo folds of the training photos choose the configs (the validation photos never take part)
        self.folds = photo_folds(self.ps_tr.view_names, folds)
        self.clean = self.clean_folds = None
        if clean:
            with np.load(clean) as z:
                self.clean = z["embeddings"].astype(np.float32)
                self.clean_folds = z["photos"] % folds  # sorted photo order, as photo_folds numbers them
            log.info("extra clean views: %d", len(self.clean))
        self.eval_idx = [self.ps_tr.types.index(t) for t in self.ps_va.types if t in self.ps_tr.types]
        self.scale_ref = scale_reference(train, self.ps_tr, scale_from) if scale_from else None

    def cv_score(self, cfg: ScoreHeadConfig | None) -> dict:
        return cv_score_head(self.ps_tr, self.emb_tr, self.eval_idx, self.folds, self.w0, self.b0, cfg,
                             self.clean, self.clean_folds)


def scale_reference(train: list[str], ps_tr: ProtocolScores,
                    scale_from: list[str]) -> tuple[np.ndarray, tuple[float, float], str]:
    """(rows of the training views, target unit, description) from another model's embed runs of some of
    the training runs' frames (same protocol, views and types): that model's scores set the score's unit.
    ValueError when a run is not the frames of a training run."""
    from hirqa_ros.training.heads.embeddings import load_many, shard_settings

    ps_ref, _ = load_many(scale_from)
    configs = [cfg for cfg, _ in shard_settings(train)]
    index = {name: i for i, name in enumerate(ps_tr.view_names)}
    missing = [n for n in ps_ref.view_names if n not in index]
    other_frames = any(c not in configs for c, _ in shard_settings(scale_from))
    if ps_ref.types != ps_tr.types or missing or other_frames:
        where = f": views {', '.join(missing[:3])} are not in --train" if missing else ""
        raise ValueError(f"--scale-from must be embed runs of --train frames (the same protocol, views and "
                         f"types){where}")
    return (np.asarray([index[n] for n in ps_ref.view_names]), score_scale(ps_ref.scores["model"]),
            "the scores in " + ", ".join(Path(p).name for p in scale_from))


def choose_score_head(inp: Inputs, report: dict) -> tuple[np.ndarray, float, ScoreHeadConfig | None]:
    """The score head: a candidate must beat the shipped head on the CV mean of every pooled metric; the
    best objective among those wins; none -> the shipped head is kept (config None)."""
    base = cv_score_head(inp.ps_tr, inp.emb_tr, inp.eval_idx, inp.folds, inp.w0, inp.b0, None)
    log.info("%d-fold photo CV: shipped head %s", inp.n_folds, _rounded(base))
    report.update({"cv_folds": inp.n_folds, "cv_shipped": base, "score_candidates": []})
    best = None
    for cfg in SCORE_GRID:
        cv = inp.cv_score(cfg)
        better = all(cv[m] > base[m] for m in base)
        report["score_candidates"].append({"config": cfg.__dict__, "cv": cv, "beats_shipped": better})
        log.info("score head %s: CV %s%s", _short(cfg), _rounded(cv), " (beats the shipped head)" * better)
        if better and (best is None or objective(cv) > objective(best[1])):
            best = (cfg, cv)
    if best is None:
        log.info("no candidate beats the shipped head in CV: keeping it")
        return inp.w0, inp.b0, None
    cfg = best[0]
    log.info("chosen score head: %s", _short(cfg))
    w, b, _ = fit_score_head(inp.emb_tr, inp.w0, inp.b0, None, cfg, inp.clean)
    if inp.scale_ref is None:
        emb, target, whose = inp.emb_tr, head_scale(inp.emb_tr, inp.w0, inp.b0), "the shipped head's"
    else:
        rows, target, whose = inp.scale_ref
        emb = inp.emb_tr[rows]
    w, b, scale = match_scale(emb, w, b, target)
    report["score_scale"] = {**scale, "unit_of": whose}
    log.info("score scale matched to %s on the training photos: logit x %.3f %+.3f (median clean score "
             "%.3f, clean-to-drop gap %.3f -> %.3f)", whose, scale["a"], scale["c"], scale["after"]["clean"],
             scale["before"]["gap"], scale["after"]["gap"])
    return w, b, cfg


def report_score_head(inp: Inputs, w: np.ndarray, b: float, cfg, out: Path, report: dict) -> None:
    """Held-out tables and calibrations of the new and the shipped score head."""
    from hirqa_ros.evaluation import calibration
    from hirqa_ros.evaluation.synthetic import format_tables

    ps_va = inp.ps_va
    new_va = head_scores(inp.emb_va, w, b)
    old_sum = protocol_summary(ps_va, ps_va.scores["model"])
    new_sum = protocol_summary(ps_va, new_va)
    cues = {k: protocol_summary(ps_va, v) for k, v in ps_va.scores.items() if k != "model"}
    tables = format_tables({"new": new_sum, "shipped": old_sum, **cues})
    (out / "fullframe_tables.txt").write_text(tables)
    print(tables)
    ps_new = ProtocolScores(ps_va.types, ps_va.groups, ps_va.view_names, ps_va.config, {"model": new_va})
    cal = calibration.calibrate_protocol(ps_new, "model")
    ps_old = ProtocolScores(ps_va.types, ps_va.groups, ps_va.view_names, ps_va.config,
                            {"model": ps_va.scores["model"]})
    cal_old = calibration.calibrate_protocol(ps_old, "model")
    report.update({"score_config": cfg.__dict__ if cfg else "shipped head kept", "val_new": new_sum,
                   "val_shipped": old_sum,
                   "val_cues": {k: v["pooled"] for k, v in cues.items()}, "val_cue_summaries": cues,
                   "calibration_new": cal.as_dict(), "calibration_shipped": cal_old.as_dict()})


def report_fused_head(inp: Inputs, cfg: ScoreHeadConfig | None, report: dict) -> None:
    """The chosen objective on [embedding, classical cues] (cues start at weight 0): CV and held-out."""
    fcfg_s = cfg or SCORE_GRID[0]
    x_tr, x_va, cue_norm = fused_inputs(inp.ps_tr, inp.emb_tr, inp.ps_va, inp.emb_va)
    wf0 = np.concatenate([inp.w0, np.zeros(x_tr.shape[-1] - len(inp.w0), np.float32)])
    cv = cv_score_head(inp.ps_tr, x_tr, inp.eval_idx, inp.folds, wf0, inp.b0, fcfg_s)
    wf, bf, _ = fit_score_head(x_tr, wf0, inp.b0, None, fcfg_s)
    val = protocol_summary(inp.ps_va, head_scores(x_va, wf, bf))
    report["fused_with_cues"] = {"cv": cv, "val": val["pooled"], "val_summary": val,
                                 "cue_weights": wf[len(inp.w0):].tolist(), **cue_norm}
    log.info("fused head (embedding + cues): CV %s, held-out %s", _rounded(cv), _rounded(val["pooled"]))


def extra_fault_rows(inp: Inputs, paths: list[str], report: dict):
    """Rows of ``paths`` (e.g. 256 px windows of the same training photos, on the --train types) that only
    add training rows to the fault head, with the fold of each row."""
    from hirqa_ros.training.heads.embeddings import load_many

    ps_x, emb_x = load_many(paths)
    emb_x = emb_x[:, [ps_x.types.index(t) for t in inp.ps_tr.types]]
    extra = flatten(emb_x, inp.ps_tr.types)
    fold_of = {photo_of(n): f for n, f in zip(inp.ps_tr.view_names, inp.folds)}
    unknown = {photo_of(n) for n in ps_x.view_names} - set(fold_of)
    if unknown:
        raise ValueError(f"--extra-fault-train has photos that --train lacks: {sorted(unknown)[:3]}")
    extra_folds = np.asarray([fold_of[photo_of(ps_x.view_names[v])] for v in extra.view])
    log.info("fault head: %d extra training rows (%s)", len(extra.x), ", ".join(paths))
    report["fault_extra_train"] = describe_training_data(ps_x)
    return extra, extra_folds


def choose_fault_head(inp: Inputs, extra, extra_folds, report: dict) -> FaultHead:
    """The fault-head candidate with the best CV accuracy (+ 1/4 pristine-as-none), refit on every
    training row, its temperature from the out-of-fold logits."""
    fbest = None
    report["fault_candidates"] = []
    for fcfg in FAULT_GRID:
        acc, z, s_oof = cv_fault_head(inp.ps_tr, inp.emb_tr, inp.folds, fcfg, inp.clean, inp.clean_folds,
                                      extra, extra_folds)
        report["fault_candidates"].append({"config": fcfg.__dict__, "cv": acc})
        log.info("fault head hidden=%d wd=%g levels>=%d%s: CV drop-level accuracy %.3f (pristine none %.3f)",
                 fcfg.hidden, fcfg.weight_decay, fcfg.min_level, ", level 1 as none" * fcfg.keep_none,
                 acc["drop_level"], acc["pristine_none"])
        score = acc["drop_level"] + 0.25 * acc["pristine_none"]
        if fbest is None or score > fbest[0]:
            s_oof = keep_as_none(s_oof) if fcfg.keep_none else s_oof
            rows = training_rows(s_oof, fcfg.min_level)
            y = fault_labels(s_oof.types, s_oof.level[rows], s_oof.type_idx[rows])
            fbest = (score, fcfg, temperature_from_logits(z[rows], y))
    _, fcfg, temperature = fbest
    train = with_clean(flatten(inp.emb_tr, inp.ps_tr.types), inp.clean)
    head = fit_fault_head(train if extra is None else concat_samples([train, extra]), fcfg)
    head.temperature = temperature
    report.update({"fault_config": fcfg.__dict__, "fault_temperature": temperature})
    return head


def reuse_fault_head(path: str, out: Path, report: dict) -> FaultHead:
    """A head fitted by an earlier run of ``hirqa heads fit`` (its report.json beside it)."""
    prev = json.loads((Path(path).parent / "report.json").read_text())
    head = FaultHead.load(path)
    for k in ("fault_candidates", "fault_config", "fault_temperature"):
        report[k] = prev.get(k)
    if Path(path).resolve() != (out / "fault_head.npz").resolve():
        head.save(out / "fault_head.npz")
    return head


def finish_fault(report: dict, head: FaultHead, ps_va: ProtocolScores, emb_va: np.ndarray, out: Path) -> None:
    """The fault head's held-out report and confusion plot; writes ``report.json``."""
    from hirqa_ros.evaluation.faults import fault_report, format_fault_report, plot_confusion

    v, t, lv, d = emb_va.shape
    ps_va.aux["model"] = head.predict(emb_va.reshape(-1, d)).reshape(v, t, lv, -1)
    frep = fault_report(ps_va, "model")
    print(format_fault_report(frep))
    plot_confusion(frep, out / "fault_confusion.png")
    report["fault_val"] = frep
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))


def side_by_side(ps: ProtocolScores, emb: np.ndarray, heads: dict, shipped_scores: np.ndarray) -> dict:
    """Pooled metrics, decisions at each head's thresholds and fault-family accuracy of score/fault heads
    ``heads`` ({name: (w, b, Thresholds, FaultHead)}) on one cached protocol run (same frames for all)."""
    from hirqa_ros.evaluation.decisions import protocol_decisions
    from hirqa_ros.evaluation.faults import fault_report

    v, t, lv, d = emb.shape
    out = {}
    for name, (w, b, th, fhead) in heads.items():
        sc = shipped_scores if w is None else head_scores(emb, w, b)
        run = ProtocolScores(ps.types, ps.groups, ps.view_names, ps.config, {"model": sc})
        summ = protocol_summary(ps, sc)
        dec = protocol_decisions(run, "model", th)
        frep = {"accuracy_drop_level": None, "pristine_none": None}  # a model without a fault head
        if fhead is not None:
            run.aux["model"] = fhead.predict(emb.reshape(-1, d)).reshape(v, t, lv, -1)
            frep = fault_report(run, "model")
        keys = ("drop_recall", "clean_false_reject", "error_recall", "clean_error", "thresholds")
        out[name] = {"pooled": summ["pooled"], "summary": summ, "decisions": {k: dec[k] for k in keys},
            "decisions_per_type": {k: d["rejected"] for k, d in dec["per_type"].items()},
            "fault_drop_level": frep["accuracy_drop_level"], "fault_pristine_none": frep["pristine_none"]}
    return out


def gate_report(inp: Inputs, w: np.ndarray, b: float, head: FaultHead, val_plain: list[str] | None,
                report: dict, model: str | None, val_topic: list[str] | None = None) -> None:
    """Candidate (new heads, thresholds calibrated on the held-out run) vs the shipped heads (its card's
    thresholds) on the held-out run and, given, its noise-free and compressed-topic twins; the release
    gate's verdict."""
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.decision import Thresholds
    from hirqa_ros.heads import load_fault_head
    from hirqa_ros.training.heads.embeddings import load_many
    from hirqa_ros.training.release.gate import PHYSICAL_RULE, PLAIN_RULE, passes, passes_physical

    art = load_artifact(model)
    old_th = Thresholds(float(art.card["thresholds"]["warn"]), float(art.card["thresholds"]["error"]))
    cal = report["calibration_new"]
    heads = {"candidate": (w, b, Thresholds(cal["warn"], cal["error"]), head),
             "shipped": (None, None, old_th, load_fault_head(art))}
    runs = {"val": side_by_side(inp.ps_va, inp.emb_va, heads, inp.ps_va.scores["model"])}
    for key, paths in (("val_plain", val_plain), ("val_topic", val_topic)):
        if paths:
            ps_p, emb_p = load_many(paths)
            photos = [photo_of(n) for n in ps_p.view_names]
            if photos != [photo_of(n) for n in inp.ps_va.view_names] or ps_p.types != inp.ps_va.types:
                flag = "--" + key.replace("_", "-")
                raise ValueError(f"{flag} must be the same photos, views and types as --val")
            runs[key] = side_by_side(ps_p, emb_p, heads, ps_p.scores["model"])
    report["side_by_side"] = runs
    if inp.ps_va.config.noise_floor > 0:
        pair = {k: (r["candidate"]["summary"], r["shipped"]["summary"]) for k, r in runs.items()}
        ok, fails = passes_physical(pair["val"], pair.get("val_plain"), pair.get("val_topic"))
        rule = PHYSICAL_RULE
    else:
        ok = passes(runs["val"]["candidate"]["summary"], runs["val"]["shipped"]["summary"])
        rule = PLAIN_RULE
        fails = [] if ok else [f"{rule}: no"]
    report["gate"] = {"passes": ok, "rule": rule, "fails": fails}
    for name, r in runs.items():
        for k, x in r.items():
            log.info("%s %s: %s; caught %.1f %% / keep rejected %.1f %%; fault family %s", name, k,
                     _rounded(x["pooled"]), 100 * x["decisions"]["drop_recall"],
                     100 * x["decisions"]["clean_false_reject"], x["fault_drop_level"])
    log.info("release gate (%s): %s %s", rule, "PASSES" if ok else "does NOT pass", "; ".join(fails))


def fit_heads(train: list[str], val: list[str], out: Path, model: str | None = None,
              fault_head: str | None = None, fused: bool = False, extra_fault_train: list[str] | None = None,
              folds: int = 5, clean: str | None = None, val_plain: list[str] | None = None,
              val_topic: list[str] | None = None, scale_from: list[str] | None = None) -> dict:
    """Fit the score head and the fault head on cached embeddings into ``out`` (score_head.npz,
    fault_head.npz, report.json, tables); ``val_plain``: the held-out photos noise-free too (physical-order
    ``val``: the gate needs both); ``val_topic``: them as a compressed topic delivers them; returns the
    report; ``scale_from``: another model's embed runs of training frames whose scores set the score's unit
    (:func:`scale_reference`; default: the ``model``'s head)."""
    from hirqa_ros.training.heads.embeddings import shard_settings

    out.mkdir(parents=True, exist_ok=True)
    inp = Inputs(train, val, model, folds, clean, scale_from)
    drift = float(np.abs(head_scores(inp.emb_va, inp.w0, inp.b0) - inp.ps_va.scores["model"]).max())
    log.info("stored scores vs embeddings @ fc.0: max diff %.2e (fp16 cache)", drift)
    report: dict = {"drift": drift, "train_data": describe_training_data(inp.ps_tr, shard_settings(train))}
    w, b, cfg = choose_score_head(inp, report)
    np.savez(out / "score_head.npz", weight=w.astype(np.float32), bias=np.float32(b))
    report_score_head(inp, w, b, cfg, out, report)
    if fused:
        report_fused_head(inp, cfg, report)
    if fault_head:
        head = reuse_fault_head(fault_head, out, report)
    else:
        extra = extra_folds = None
        if extra_fault_train:
            extra, extra_folds = extra_fault_rows(inp, extra_fault_train, report)
        head = choose_fault_head(inp, extra, extra_folds, report)
        head.save(out / "fault_head.npz")
    gate_report(inp, w, b, head, val_plain, report, model, val_topic)
    finish_fault(report, head, inp.ps_va, inp.emb_va, out)
    return report
