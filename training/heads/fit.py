"""Fit heads on the frozen 1024-d embedding (CPU, minutes): the score head ``fc.0`` and the fault head.

Input: protocol runs stored by ``training/heads/embeddings.py`` (ladders rendered at camera pixel scale on
the TRAINING photos; shape (views, types, 6 levels, D)). Configurations are chosen by photo-fold
cross-validation on the training photos (``cv_score_head``, ``cv_fault_head``); the held-out
validation photos are only used for the final report.

* Score head (authors' format ``fc.0``: Linear(1024 -> 1), then sigmoid): a ranking objective on the
  logits: within-ladder order, keep (level 0-1) above drop (level >= 3) across content and types,
  a larger severity gap across content scores lower, a weak calibration anchor and an L2 pull
  towards the shipped head (`fit_score_head`).
* Fault head: softmax regression (or one hidden ReLU layer) on standardised embeddings, class
  balanced, temperature fitted on out-of-fold logits (`fit_fault_head`); see ``hirqa_ros.heads``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hirqa_ros.evaluation.synthetic import ProtocolScores
from hirqa_ros.heads import FAULT_CLASSES, FaultHead, fault_class_of


@dataclass
class Samples:
    """Flattened protocol samples: one row per distinct image (pristine once per view)."""

    x: np.ndarray  # (N, D) float32 embeddings
    level: np.ndarray  # (N,) 0..5
    view: np.ndarray  # (N,) view index
    type_idx: np.ndarray  # (N,) type index (-1 for pristine)
    types: list[str]


def flatten(emb: np.ndarray, types: list[str], views: np.ndarray | None = None) -> Samples:
    """Rows of a (V, T, 6, D) array: each view's pristine once, then every (type, level >= 1)."""
    v_n, t_n, l_n, _ = emb.shape
    views = np.arange(v_n) if views is None else np.asarray(views)
    xs, lv, vv, tt = [], [], [], []
    for v in views:
        xs.append(emb[v, 0, 0][None])
        lv.append([0])
        vv.append([v])
        tt.append([-1])
        xs.append(emb[v, :, 1:].reshape(-1, emb.shape[-1]))
        lv.append(np.tile(np.arange(1, l_n), t_n))
        vv.append(np.full(t_n * (l_n - 1), v))
        tt.append(np.repeat(np.arange(t_n), l_n - 1))
    return Samples(np.concatenate(xs).astype(np.float32), np.concatenate(lv), np.concatenate(vv),
                   np.concatenate(tt), list(types))


@dataclass
class ScoreHeadConfig:
    rank: float = 1.0  # within-ladder order (levels i < j: z_i > z_j + margin * (j - i))
    keep_drop: float = 1.0  # pooled keep vs drop (AUROC surrogate) across content and types
    cross: float = 0.5  # pooled pairs with a severity gap >= 2 (SROCC surrogate)
    anchor: float = 0.05  # BCE of the score towards 0.95 - 0.16 * level (keeps the score range)
    l2: float = 1e-3  # pull towards the initial head (per weight, on the scale of the embedding)
    margin: float = 0.1  # logit margin per level in the ladder term
    sharpness: float = 4.0  # slope of the logistic pair losses on logit differences
    steps: int = 300
    lr: float = 0.01
    pairs_per_step: int = 50_000
    seed: int = 0


def _ladder_index(emb: np.ndarray, views: np.ndarray) -> np.ndarray:
    """(L, 6) row indices into ``flatten(emb, ..., views)`` of every ladder (pristine first)."""
    v_n = len(views)
    t_n, l_n = emb.shape[1], emb.shape[2]
    per_view = 1 + t_n * (l_n - 1)
    rows = []
    for k in range(v_n):
        base = k * per_view
        for t in range(t_n):
            rows.append([base] + [base + 1 + t * (l_n - 1) + (lv - 1) for lv in range(1, l_n)])
    return np.asarray(rows, np.int64)


def fit_score_head(emb: np.ndarray, w0: np.ndarray, b0: float, views: np.ndarray | None = None,
                   cfg: ScoreHeadConfig | None = None,
                   extra_keep: np.ndarray | None = None) -> tuple[np.ndarray, float, dict]:
    """Refit Linear(D -> 1) on protocol embeddings (V, T, 6, D) (+ ``extra_keep`` (M, D) clean views, used as
    level 0 outside the ladders). Returns (w (D,), b, loss log)."""
    cfg = cfg or ScoreHeadConfig()
    views = np.arange(emb.shape[0]) if views is None else np.asarray(views)
    s = flatten(emb, [str(i) for i in range(emb.shape[1])], views)
    xs, lv = s.x, s.level
    if extra_keep is not None and len(extra_keep):
        xs = np.concatenate([xs, extra_keep.astype(np.float32)])
        lv = np.concatenate([lv, np.zeros(len(extra_keep), lv.dtype)])
    x = torch.from_numpy(xs)
    level = torch.from_numpy(lv).float()
    ladders = torch.from_numpy(_ladder_index(emb, views))
    keep = torch.nonzero(level <= 1).squeeze(1)
    drop = torch.nonzero(level >= 3).squeeze(1)
    w_init = torch.tensor(np.asarray(w0, np.float32).reshape(-1))
    w = w_init.clone().requires_grad_(True)
    b = torch.tensor(float(b0), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    ii, jj = torch.triu_indices(6, 6, offset=1)
    gap = (jj - ii).float()
    target = (0.95 - 0.16 * level).clamp(0.02, 0.98)
    x_scale = float(x.std())
    log: dict[str, float] = {}
    for _ in range(cfg.steps):
        z = x @ w + b
        zl = z[ladders]  # (L, 6)
        rank = F.softplus(-cfg.sharpness * (zl[:, ii] - zl[:, jj] - cfg.margin * gap)).mean()
        ki = keep[torch.randint(len(keep), (cfg.pairs_per_step,), generator=g)]
        di = drop[torch.randint(len(drop), (cfg.pairs_per_step,), generator=g)]
        keep_drop = F.softplus(-cfg.sharpness * (z[ki] - z[di])).mean()
        a = torch.randint(len(z), (cfg.pairs_per_step,), generator=g)
        c = torch.randint(len(z), (cfg.pairs_per_step,), generator=g)
        d = level[c] - level[a]  # > 0: a is less severe, should score higher
        m = d.abs() >= 2
        cross = F.softplus(-cfg.sharpness * torch.sign(d[m]) * (z[a[m]] - z[c[m]])).mean()
        anchor = F.binary_cross_entropy_with_logits(z, target)
        l2 = ((w - w_init) ** 2).sum() * x_scale**2
        loss = (cfg.rank * rank + cfg.keep_drop * keep_drop + cfg.cross * cross + cfg.anchor * anchor
                + cfg.l2 * l2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log = {k: float(v.detach()) for k, v in (("loss", loss), ("rank", rank), ("keep_drop", keep_drop),
                                                  ("cross", cross), ("anchor", anchor), ("l2", l2))}
    return w.detach().numpy().astype(np.float32), float(b.detach()), log


def head_scores(emb: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """sigmoid(emb @ w + b) for an array (..., D)."""
    return _sigmoid(emb.astype(np.float64) @ np.asarray(w, np.float64) + float(b))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def scale_stats(z: np.ndarray) -> tuple[float, float]:
    """(median clean score, median clean-to-drop gap) of logits ``z`` (V, T, 6) of protocol ladders: the
    gap is each ladder's clean score minus its level >= 3 scores."""
    s = _sigmoid(z)
    return float(np.median(s[:, :, 0])), float(np.median(s[:, :, :1] - s[:, :, 3:]))


def head_scale(emb: np.ndarray, w: np.ndarray, b: float) -> tuple[float, float]:
    """:func:`scale_stats` of the head (w, b) on ``emb`` (V, T, 6, D)."""
    return scale_stats(emb.astype(np.float64) @ np.asarray(w, np.float64) + b)


def score_scale(scores: np.ndarray) -> tuple[float, float]:
    """:func:`scale_stats` of scores in (0, 1) (V, T, 6), e.g. another model's stored in an embed run."""
    p = np.clip(scores.astype(np.float64), 1e-6, 1 - 1e-6)
    return scale_stats(np.log(p / (1.0 - p)))


def match_scale(emb: np.ndarray, w: np.ndarray, b: float,
                target: tuple[float, float]) -> tuple[np.ndarray, float, dict]:
    """The head (w, b) with its logit mapped affinely, z -> a z + c, so that on ``emb`` (V, T, 6, D) its
    median clean score and median clean-to-drop gap (:func:`scale_stats`) equal ``target``: those of the
    model it replaces (:func:`head_scale`, :func:`score_scale`) on the same frames. The score's order is
    unchanged (every ranking metric too); what changes is its unit, so settings in score units (the gate's
    reference margin) mean for the refit what they mean for the model it replaces."""
    z = emb.astype(np.float64) @ np.asarray(w, np.float64) + b
    clean0, gap0 = target
    mid = float(np.median(z[:, :, 0]))

    def mapped(a: float) -> np.ndarray:
        return a * (z - mid) + _logit(clean0)

    lo, hi = 1e-3, 1e3
    for _ in range(60):  # the gap grows with a: bisection on a log scale
        a = float(np.sqrt(lo * hi))
        lo, hi = (a, hi) if scale_stats(mapped(a))[1] < gap0 else (lo, a)
    a = float(np.sqrt(lo * hi))
    c = _logit(clean0) - a * mid
    info = {"a": a, "c": c, "target": {"clean": clean0, "gap": gap0}, "before": dict(zip(("clean", "gap"),
            scale_stats(z))), "after": dict(zip(("clean", "gap"), scale_stats(mapped(a))))}
    return (a * np.asarray(w, np.float64)).astype(np.float32), float(a * b + c), info


# ----------------------------------------------------------------------------------------- fault head
def fault_labels(types: list[str], level: np.ndarray, type_idx: np.ndarray) -> np.ndarray:
    """Class index per row (level 0 -> none)."""
    cls = {c: i for i, c in enumerate(FAULT_CLASSES)}
    return np.asarray([cls[fault_class_of(types[t] if t >= 0 else "", int(lv))]
                       for t, lv in zip(type_idx, level)])


@dataclass
class FaultHeadConfig:
    hidden: int = 0  # 0 = linear softmax regression
    weight_decay: float = 1e-3
    steps: int = 400
    lr: float = 0.01
    min_level: int = 2  # distorted samples below this level are left out (level 1 is often invisible)
    keep_none: bool = False  # level-1 frames (the gate's "keep" frames) are class none too
    seed: int = 0


def keep_as_none(s: Samples) -> Samples:
    """``s`` with its level-1 rows relabelled level 0 (class ``none``): frames fit to use, not only pristine
    ones, teach ``none``."""
    return Samples(s.x, np.where(s.level == 1, 0, s.level), s.view, s.type_idx, s.types)


def training_rows(s: Samples, min_level: int) -> np.ndarray:
    return np.nonzero((s.level == 0) | (s.level >= min_level))[0]


def with_clean(s: Samples, clean: np.ndarray | None) -> Samples:
    """``s`` plus clean views (M, D) as pristine rows (class ``none``)."""
    if clean is None or not len(clean):
        return s
    m = len(clean)
    return Samples(np.concatenate([s.x, clean.astype(np.float32)]),
                   np.concatenate([s.level, np.zeros(m, int)]), np.concatenate([s.view, np.full(m, -1)]),
                   np.concatenate([s.type_idx, np.full(m, -1)]), s.types)


def fit_fault_head(train: Samples, cfg: FaultHeadConfig | None = None,
                   calib: Samples | None = None) -> FaultHead:
    """Fit the fault head on ``train`` samples; temperature on ``calib`` (held-out photos) when given."""
    cfg = cfg or FaultHeadConfig()
    torch.manual_seed(cfg.seed)
    if cfg.keep_none:
        train = keep_as_none(train)
    rows = training_rows(train, cfg.min_level)
    x = train.x[rows]
    y = fault_labels(train.types, train.level[rows], train.type_idx[rows])
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    xt = torch.from_numpy((x - mean) / scale)
    yt = torch.from_numpy(y).long()
    n_cls = len(FAULT_CLASSES)
    counts = np.bincount(y, minlength=n_cls).astype(np.float64)
    weights = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_cls, 0.0),
                           dtype=torch.float32)
    dim = x.shape[1]
    if cfg.hidden:
        net = torch.nn.Sequential(torch.nn.Linear(dim, cfg.hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(cfg.hidden, n_cls))
    else:
        net = torch.nn.Sequential(torch.nn.Linear(dim, n_cls))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.steps):
        loss = F.cross_entropy(net(xt), yt, weight=weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]
    head = FaultHead(layers, mean, scale, 1.0)
    if calib is not None:
        head.temperature = fit_temperature(head, calib, cfg.min_level)
    return head


def fit_temperature(head: FaultHead, s: Samples, min_level: int = 2) -> float:
    """Temperature minimising the NLL of held-out samples (grid search on a log scale)."""
    rows = training_rows(s, min_level)
    y = fault_labels(s.types, s.level[rows], s.type_idx[rows])
    return temperature_from_logits(head.logits(s.x[rows]), y)


def temperature_from_logits(z: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the NLL of labels ``y`` under logits ``z`` (N, C) (log-scale grid)."""
    z = np.asarray(z, np.float64)
    best, best_t = np.inf, 1.0
    for t in np.exp(np.linspace(np.log(0.05), np.log(20), 121)):
        zt = z / t
        zt = zt - zt.max(axis=1, keepdims=True)
        nll = -(zt[np.arange(len(y)), y] - np.log(np.exp(zt).sum(axis=1))).mean()
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def fault_accuracy(head: FaultHead, s: Samples, min_level: int = 3) -> dict:
    """Accuracy on rows with level >= ``min_level`` (and pristine, reported apart): per class and pooled."""
    return accuracy_of(head.logits(s.x).argmax(axis=1), s, min_level)


def accuracy_of(pred: np.ndarray, s: Samples, min_level: int = 3) -> dict:
    """``fault_accuracy`` of predicted class indices ``pred`` (one per row of ``s``)."""
    y = fault_labels(s.types, s.level, s.type_idx)
    out: dict = {"per_class": {}}
    sel = s.level >= min_level
    for i, c in enumerate(FAULT_CLASSES):
        m = sel & (y == i)
        if m.any():
            out["per_class"][c] = float((pred[m] == i).mean())
    out["drop_level"] = float((pred[sel] == y[sel]).mean())
    out["pristine_none"] = float((pred[s.level == 0] == 0).mean()) if (s.level == 0).any() else float("nan")
    return out


def take_rows(s: Samples, rows: np.ndarray) -> Samples:
    """The rows ``rows`` (index or mask) of ``s``."""
    return Samples(s.x[rows], s.level[rows], s.view[rows], s.type_idx[rows], s.types)


def concat_samples(parts: list[Samples]) -> Samples:
    """Rows of several ``Samples`` with the same types, in order."""
    fields = ("x", "level", "view", "type_idx")
    return Samples(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields), parts[0].types)


# --------------------------------------------------------------------------------------------- driver
def photo_of(view_name: str) -> str:
    """The photo a protocol view was cut from (view names are ``photo#k@WxH``)."""
    return view_name.split("#")[0]


def photo_folds(view_names: list[str], k: int = 5) -> np.ndarray:
    """Fold index per view, by photo (all views of a photo in one fold)."""
    photos = sorted({photo_of(n) for n in view_names})
    fold = {p: i % k for i, p in enumerate(photos)}
    return np.asarray([fold[photo_of(n)] for n in view_names])


def protocol_summary(ps_like: ProtocolScores, scores: np.ndarray, views: np.ndarray | None = None) -> dict:
    from hirqa_ros.evaluation.synthetic import summarize

    arr = scores if views is None else scores[views]
    names = ps_like.view_names if views is None else [ps_like.view_names[v] for v in views]
    sub = ProtocolScores(ps_like.types, ps_like.groups, names, ps_like.config, {"x": arr})
    return summarize(sub, "x")


def objective(pooled: dict) -> float:
    return pooled["auroc"] + pooled["ladder_srocc"] + 0.5 * pooled["srocc"]


CUE_FEATURES = ("laplacian_var", "tenengrad", "exposure", "dark_channel", "noise")


def cue_features(ps: ProtocolScores) -> np.ndarray:
    """(V, T, 6, 5) classical cues as head inputs: log of the two sharpness energies, the rest raw."""
    feats = []
    for name in CUE_FEATURES:
        v = ps.scores[name]
        feats.append(np.log1p(np.maximum(v, 0)) if name in ("laplacian_var", "tenengrad") else v)
    return np.stack(feats, axis=-1).astype(np.float32)


def fused_inputs(ps_tr: ProtocolScores, emb_tr: np.ndarray, ps_va: ProtocolScores, emb_va: np.ndarray,
                 ) -> tuple[np.ndarray, np.ndarray, dict]:
    """[embedding, standardised cues on the embedding's scale] for training and validation runs."""
    c_tr, c_va = cue_features(ps_tr), cue_features(ps_va)
    mu, sd = c_tr.reshape(-1, 5).mean(0), c_tr.reshape(-1, 5).std(0) + 1e-6
    scale = float(emb_tr.std())  # cues on the embedding's scale so that one learning rate fits both
    x_tr = np.concatenate([emb_tr, (c_tr - mu) / sd * scale], axis=-1)
    x_va = np.concatenate([emb_va, (c_va - mu) / sd * scale], axis=-1)
    return x_tr, x_va, {"cue_mean": mu.tolist(), "cue_std": sd.tolist(), "cue_scale": scale}


def cv_score_head(ps: ProtocolScores, x: np.ndarray, eval_idx: list[int], folds: np.ndarray, w0: np.ndarray,
                  b0: float, cfg: ScoreHeadConfig | None, clean: np.ndarray | None = None,
                  clean_folds: np.ndarray | None = None) -> dict:
    """Pooled metrics of a score-head config, averaged over photo folds (each fold scored by a head fitted
    on the others, on the ``eval_idx`` types); ``cfg`` None scores the starting head (w0, b0)."""
    eval_ps = ProtocolScores([ps.types[i] for i in eval_idx], [ps.groups[i] for i in eval_idx], ps.view_names,
                             ps.config)
    per = []
    for k in np.unique(folds):
        tr, va = np.nonzero(folds != k)[0], np.nonzero(folds == k)[0]
        w, b = w0, b0
        if cfg is not None:
            extra = None if clean is None else clean[clean_folds != k]
            w, b, _ = fit_score_head(x, w0, b0, tr, cfg, extra)
        per.append(protocol_summary(eval_ps, head_scores(x[:, eval_idx], w, b), va)["pooled"])
    return {m: float(np.mean([q[m] for q in per])) for m in per[0]}


def cv_fault_head(ps: ProtocolScores, emb: np.ndarray, folds: np.ndarray, cfg: FaultHeadConfig,
                  clean: np.ndarray | None = None, clean_folds: np.ndarray | None = None,
                  extra: Samples | None = None, extra_folds: np.ndarray | None = None,
                  ) -> tuple[dict, np.ndarray, Samples]:
    """Out-of-fold accuracy of a fault-head config over photo folds, with the out-of-fold logits and
    samples (for the temperature). ``extra`` rows (e.g. windows of the same photos) only train."""
    zs, held = [], []
    for k in np.unique(folds):
        tr, va = np.nonzero(folds != k)[0], np.nonzero(folds == k)[0]
        c_tr = c_va = None
        if clean is not None:
            c_tr, c_va = clean[clean_folds != k], clean[clean_folds == k]
        train = with_clean(flatten(emb, ps.types, tr), c_tr)
        if extra is not None:
            train = concat_samples([train, take_rows(extra, extra_folds != k)])
        head = fit_fault_head(train, cfg)
        s_va = with_clean(flatten(emb, ps.types, va), c_va)
        zs.append(head.logits(s_va.x))
        held.append(s_va)
    z, s = np.concatenate(zs), concat_samples(held)
    return accuracy_of(z.argmax(axis=1), s), z, s
