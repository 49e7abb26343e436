"""Each term of the HiRQA objective on toy ladders: ~0 when the order is right, large when reversed,
gradients reach the scores / embeddings."""

import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")

from hirqa_ros.training.fit.losses import (  # noqa: E402
    LossConfig,
    alignment_loss,
    anchor_loss,
    cross_rank_loss,
    embedding_distance_loss,
    hirqa_loss,
    ladder_rank_loss,
    pair_of_pairs_loss,
    teacher_loss,
)

LEVELS = torch.arange(6)
GROUP = torch.tensor([0, 0, 1, 1])


def _ladders(reverse=False, requires_grad=True):
    q = torch.linspace(0.95, 0.15, 6).repeat(4, 1)
    q = q.flip(1) if reverse else q
    return q.clone().requires_grad_(requires_grad)


def _grad_flows(loss, x):
    loss.backward()
    return x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.parametrize("fn", [ladder_rank_loss, cross_rank_loss, anchor_loss])
def test_score_ranking_terms(fn):
    good, bad = _ladders(requires_grad=False), _ladders(reverse=True)
    assert float(fn(good, LEVELS)) < 1e-6
    loss = fn(bad, LEVELS)
    assert float(loss.detach()) > 0.1
    assert _grad_flows(loss, bad)


def test_ladder_rank_ignores_identical_pairs():
    q = torch.tensor([[0.5, 0.5, 0.4, 0.3, 0.2, 0.1]])  # level 1 is a no-op on this content: a tie
    valid = torch.ones(1, 6, 6, dtype=torch.bool)
    assert float(ladder_rank_loss(q, LEVELS, valid)) > 0
    valid[0, 0, 1] = valid[0, 1, 0] = False
    assert float(ladder_rank_loss(q, LEVELS, valid)) < 1e-6


def test_cross_rank_compares_other_content():
    # each ladder is ordered, but ladder 1 sits far below ladder 0: its pristine loses to ladder 0's level 3
    q = torch.stack([torch.linspace(0.95, 0.75, 6), torch.linspace(0.40, 0.10, 6)])
    assert float(ladder_rank_loss(q, LEVELS)) < 1e-6
    assert float(cross_rank_loss(q, LEVELS)) > 0.05


def test_pair_of_pairs():
    good, bad = _ladders(requires_grad=False), _ladders(reverse=True)
    assert float(pair_of_pairs_loss(good, LEVELS, GROUP)) < 1e-6
    loss = pair_of_pairs_loss(bad, LEVELS, GROUP)
    assert float(loss.detach()) > 0.1
    assert _grad_flows(loss, bad)
    # ordered but all the drop in the last step: bigger severity gaps do not give bigger score gaps
    bunched = torch.tensor([0.9, 0.89, 0.88, 0.87, 0.86, 0.1]).repeat(4, 1)
    assert float(ladder_rank_loss(bunched, LEVELS)) < float(pair_of_pairs_loss(bunched, LEVELS, GROUP))


def test_embedding_distance_terms():
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(1, 1, 64, generator=g)
    origin = torch.randn(1, 1, 64, generator=g) * 3
    content = torch.randn(4, 1, 64, generator=g) * 0.05
    good = (origin + LEVELS.reshape(1, 6, 1).float() * direction + content).requires_grad_(True)
    lad, con = embedding_distance_loss(good.detach(), LEVELS, GROUP)
    assert float(lad) < 0.01 and float(con) < 1e-6
    # severity-blind embeddings: each ladder a fixed content point plus noise
    bad = (torch.randn(4, 1, 64, generator=g) * 3 + torch.randn(4, 6, 64, generator=g) * 0.3).requires_grad_(
        True
    )
    lad_b, con_b = embedding_distance_loss(bad, LEVELS, GROUP)
    assert float(lad_b.detach()) > 5 * float(lad) and float(con_b.detach()) > 0.01
    assert _grad_flows(lad_b + con_b, bad)


def test_alignment_infonce():
    text = torch.nn.functional.normalize(
        torch.randn(5, 16, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    target = torch.tensor([0, 1, 2, 3, 4])
    right = (text * 10).requires_grad_(True)
    wrong = (text[[1, 2, 3, 4, 0]] * 10).requires_grad_(True)
    assert float(alignment_loss(right.detach(), text, target)) < 0.01
    loss = alignment_loss(wrong, text, target)
    assert float(loss.detach()) > 5
    assert _grad_flows(loss, wrong)


def test_total_uses_config_weights():
    q, emb = _ladders(reverse=True), torch.randn(4, 6, 32, requires_grad=True)
    base = torch.ones(4, dtype=torch.bool)
    full, terms = hirqa_loss(LossConfig(), q, emb, None, LEVELS, GROUP, base)
    only_rank, terms_r = hirqa_loss(
        LossConfig.from_dict({"cross": 0, "pairs": 0, "dist": 0, "content": 0, "align": 0, "anchor": 0}),
        q,
        emb,
        None,
        LEVELS,
        GROUP,
        base,
    )
    assert set(terms_r) == {"rank"} and {"rank", "pairs", "dist"} <= set(terms)
    rank_only, total = float(only_rank.detach()), float(full.detach())
    assert rank_only == pytest.approx(terms["rank"]) and total > rank_only
    with pytest.raises(ValueError, match="unknown loss"):
        LossConfig.from_dict({"rnak": 1.0})


def test_teacher_loss_is_zero_at_the_initial_model_and_grows_with_drift():
    g = torch.Generator().manual_seed(0)
    q0 = torch.rand(24, generator=g) * 0.8 + 0.1
    e0 = torch.randn(24, 16, generator=g)
    noise = torch.randn(24, 16, generator=g)
    assert float(teacher_loss(q0, e0, q0, e0)) == pytest.approx(0.0, abs=1e-9)
    small = teacher_loss(q0 + 0.01, e0 + 0.05 * noise, q0, e0)
    q = (q0 - 0.2).clamp(0.01, 0.99).requires_grad_(True)
    big = teacher_loss(q, e0 + 0.5 * noise, q0, e0)
    assert 0 < float(small) < float(big)
    assert _grad_flows(big, q)
