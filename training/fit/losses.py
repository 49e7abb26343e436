"""The HiRQA training objective as reconstructed in research/hirqa_paper.md §4.2 (the paper's equations are
not available): ladder ranking, pair-of-pairs (higher-order) ranking, embedding-distance consistency and
image-text InfoNCE alignment, plus two terms of ours that tie scores across content (cross-ladder ranking
and a weak severity anchor). Every term takes a batch of ladders: scores ``q`` (B, L), embeddings (B, L, D),
``levels`` (L,) increasing severities (0 = the ladder's base image).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def _pairs(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (i, j) with levels[i] < levels[j]."""
    i, j = torch.triu_indices(len(levels), len(levels), offset=1, device=levels.device)
    keep = levels[i] < levels[j]
    return i[keep], j[keep]


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean() if x.numel() else x.sum()
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def ladder_rank_loss(
    q: torch.Tensor, levels: torch.Tensor, valid: torch.Tensor | None = None, margin: float = 0.02
) -> torch.Tensor:
    """(a) Hinge on every within-ladder pair: q_i - q_j >= margin * (level_j - level_i) for level_i < level_j.

    ``valid`` (B, L, L) bool masks pairs whose images are identical (e.g. a level-1 setting that is a
    no-op on this content), which must not be forced apart.
    """
    i, j = _pairs(levels)
    gap = (levels[j] - levels[i]).to(q.dtype)
    loss = F.relu(margin * gap - (q[:, i] - q[:, j]))
    return _masked_mean(loss, None if valid is None else valid[:, i, j])


def cross_rank_loss(
    q: torch.Tensor,
    levels: torch.Tensor,
    mask: torch.Tensor | None = None,
    min_gap: int = 2,
    margin: float = 0.05,
) -> torch.Tensor:
    """(a') Across ladders (other content, other distortion): a sample at least ``min_gap`` levels less
    severe must score higher by ``margin``. Ties scores to severity across content, as pooled AUROC needs.
    ``mask`` (B,) selects ladders whose level 0 is pristine (not compositions)."""
    b, n = q.shape
    if mask is not None:
        q = q[mask]
        b = q.shape[0]
    if b < 2:
        return q.sum() * 0.0
    qa = q.reshape(b, 1, n, 1)
    qb = q.reshape(1, b, 1, n)
    la = levels.reshape(1, 1, n, 1)
    lb = levels.reshape(1, 1, 1, n)
    sel = ((lb - la) >= min_gap) & ~torch.eye(b, dtype=torch.bool, device=q.device).reshape(b, b, 1, 1)
    loss = F.relu(margin - (qa - qb))
    return _masked_mean(loss, sel.expand_as(loss))


def pair_of_pairs_loss(
    q: torch.Tensor,
    levels: torch.Tensor,
    group: torch.Tensor,
    valid: torch.Tensor | None = None,
    margin: float = 0.01,
) -> torch.Tensor:
    """(b) Higher-order ranking: for two pairs of the same distortion type (same ladder or another content
    with the same type, ``group`` (B,) ids), the pair spanning the larger severity gap must have the larger
    score gap: (q_a - q_b) - (q_c - q_d) >= margin * (gap_ab - gap_cd) whenever gap_ab > gap_cd."""
    i, j = _pairs(levels)
    d = q[:, i] - q[:, j]  # (B, P) score drop of each pair
    g = (levels[j] - levels[i]).to(q.dtype)  # (P,)
    b, p = d.shape
    same = group.reshape(b, 1) == group.reshape(1, b)  # (B, B)
    gdiff = g.reshape(1, p, 1, 1) - g.reshape(1, 1, 1, p)  # (1, P, 1, P)
    sel = same.reshape(b, 1, b, 1) & (gdiff > 0)
    if valid is not None:
        pv = valid[:, i, j]
        sel = sel & pv.reshape(b, p, 1, 1) & pv.reshape(1, 1, b, p)
    loss = F.relu(margin * gdiff - (d.reshape(b, p, 1, 1) - d.reshape(1, 1, b, p)))
    return _masked_mean(loss, sel.expand_as(loss))


def embedding_distance_loss(
    emb: torch.Tensor, levels: torch.Tensor, group: torch.Tensor, margin: float = 0.02, cross_min_gap: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """(c) Embedding-distance consistency with cosine distance. Returns (ladder term, content term):

    * ladder: from any anchor in a ladder, a sample further away in severity is further away in
      embedding: dist(a, k) >= dist(a, j) + margin when |l_a - l_k| > |l_a - l_j|;
    * content: the same (type, level) on different content is closer than that content at a level
      ``cross_min_gap`` or more away: dist(A_l, B_l) + margin <= dist(A_l, B_k).
    """
    e = F.normalize(emb.float(), dim=-1)
    b, n, _ = e.shape
    lv = levels.to(e.dtype)
    dist = 1.0 - torch.einsum("bid,bjd->bij", e, e)  # (B, L, L)
    sev = (lv.reshape(n, 1) - lv.reshape(1, n)).abs()  # (L, L)
    sel = sev.reshape(n, 1, n) > sev.reshape(n, n, 1)  # [a, j, k]: |a-k| > |a-j|
    ladder = F.relu(margin + dist.reshape(b, n, n, 1) - dist.reshape(b, n, 1, n))
    ladder = _masked_mean(ladder, sel.unsqueeze(0).expand_as(ladder))
    same = (group.reshape(b, 1) == group.reshape(1, b)) & ~torch.eye(b, dtype=torch.bool, device=e.device)
    if not bool(same.any()):
        return ladder, e.sum() * 0.0
    cross = 1.0 - torch.einsum("ald,bkd->albk", e, e)  # (B, L, B, L)
    pos = torch.diagonal(cross, dim1=1, dim2=3)  # (B, B, L): dist(A_l, B_l)
    pos = pos.permute(0, 2, 1).unsqueeze(-1)  # (B, L, B, 1)
    far = (lv.reshape(n, 1) - lv.reshape(1, n)).abs() >= cross_min_gap  # (L, L) [l, k]
    sel_c = same.reshape(b, 1, b, 1) & far.reshape(1, n, 1, n)
    content = F.relu(margin + pos - cross)
    return ladder, _masked_mean(content, sel_c.expand_as(content))


def alignment_loss(
    proj: torch.Tensor,
    text: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 0.07,
) -> torch.Tensor:
    """(d) InfoNCE between projected image embeddings (N, D) and all prompt embeddings (P, D): each image
    must be closest to its own prompt ("a photo with {severity} {distortion}", or the pristine prompt)."""
    logits = F.normalize(proj.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T / temperature
    ce = F.cross_entropy(logits, target, reduction="none")
    return _masked_mean(ce, mask)


def anchor_loss(
    q: torch.Tensor,
    levels: torch.Tensor,
    mask: torch.Tensor | None = None,
    top: float = 0.95,
    step: float = 0.16,
) -> torch.Tensor:
    """Weak severity anchor (ours): Bernoulli KL of q from the target top - step * level (pristine 0.95 ...
    level 5 0.15); zero when every score sits on its target."""
    t = (top - step * levels.to(torch.float32)).clamp(0.01, 0.99).expand_as(q)
    p = q.float().clamp(1e-6, 1 - 1e-6)
    kl = t * (t.log() - p.log()) + (1 - t) * ((1 - t).log() - (1 - p).log())
    m = None if mask is None else mask.reshape(-1, 1).expand_as(q)
    return _masked_mean(kl, m)


def teacher_loss(q: torch.Tensor, emb: torch.Tensor, q0: torch.Tensor, emb0: torch.Tensor) -> torch.Tensor:
    """Squared distance of the score logits and of the embeddings (relative to the teacher's embedding
    spread) from a frozen teacher's on the same images: the initial model (``keep``: continuation without
    forgetting) or another model (``distill``: its score, embedding and so its fault head, learned)."""
    eps = 1e-4
    z, z0 = torch.logit(q.float().clamp(eps, 1 - eps)), torch.logit(q0.float().clamp(eps, 1 - eps))
    e, e0 = emb.float(), emb0.float()
    return F.mse_loss(z, z0) + F.mse_loss(e, e0) / e0.var().clamp_min(1e-8)


@dataclass
class LossConfig:
    """Loss weights and margins (``losses:`` in the training config)."""

    rank: float = 1.0
    cross: float = 0.5
    pairs: float = 0.5
    dist: float = 0.5
    content: float = 0.25
    align: float = 0.1
    anchor: float = 0.2
    keep: float = 0.0  # continuation: stay close to the --init-from model (0 = off; see teacher_loss)
    distill: float = 0.0  # distillation: match the model directory ``distill_from`` (0 = off; teacher_loss)
    rank_margin: float = 0.02
    cross_margin: float = 0.05
    cross_min_gap: int = 2
    pairs_margin: float = 0.01
    dist_margin: float = 0.02
    temperature: float = 0.07
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict | None) -> LossConfig:
        d = dict(d or {})
        known = {k: d.pop(k) for k in list(d) if k in cls.__dataclass_fields__ and k != "extra"}
        if d:
            raise ValueError(f"unknown loss settings: {', '.join(d)}")
        return cls(**known)


def hirqa_loss(
    cfg: LossConfig,
    q: torch.Tensor,
    emb: torch.Tensor,
    proj: torch.Tensor | None,
    levels: torch.Tensor,
    group: torch.Tensor,
    pristine_base: torch.Tensor,
    valid: torch.Tensor | None = None,
    text: torch.Tensor | None = None,
    prompt_target: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of all terms; returns (total, {term: value}). ``pristine_base`` (B,) marks ladders whose
    level 0 is the pristine crop (single distortions); compositions are left out of cross/anchor/align."""
    q = q.float()
    terms: dict[str, torch.Tensor] = {}
    if cfg.rank:
        terms["rank"] = ladder_rank_loss(q, levels, valid, cfg.rank_margin)
    if cfg.cross:
        terms["cross"] = cross_rank_loss(q, levels, pristine_base, cfg.cross_min_gap, cfg.cross_margin)
    if cfg.pairs:
        terms["pairs"] = pair_of_pairs_loss(q, levels, group, valid, cfg.pairs_margin)
    if cfg.dist or cfg.content:
        lad, con = embedding_distance_loss(emb, levels, group, cfg.dist_margin, cfg.cross_min_gap)
        if cfg.dist:
            terms["dist"] = lad
        if cfg.content:
            terms["content"] = con
    if cfg.align and proj is not None and text is not None and prompt_target is not None:
        b, n = q.shape
        mask = pristine_base.reshape(b, 1).expand(b, n).reshape(-1)
        terms["align"] = alignment_loss(
            proj.reshape(b * n, -1), text, prompt_target.reshape(-1), mask, cfg.temperature
        )
    if cfg.anchor:
        terms["anchor"] = anchor_loss(q, levels, pristine_base)
    total = sum(getattr(cfg, k) * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}
