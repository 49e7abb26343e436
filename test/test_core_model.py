"""The network: authors' key names/shapes, attention pooling maths, any input size."""

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed")
F = torch.nn.functional

from hirqa_ros.model import EMBED_DIM, HEADS, AttentionPool, HiRQA, build_model, canonical_variant  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "data" / "official_checkpoint_keys.json").read_text())


@pytest.mark.parametrize("variant,ref", [("hirqa-s", "HiRQA-S"), ("hirqa", "HiRQA")])
def test_state_dict_keys_and_shapes_equal_the_authors(variant, ref):
    sd = HiRQA(variant).state_dict()
    expected = REFERENCE[ref]["state_dict"]
    assert list(sd) == list(expected) or set(sd) == set(expected)
    for key, shape in expected.items():
        assert list(sd[key].shape) == shape, key
    n_params = sum(p.numel() for p in HiRQA(variant).parameters())
    assert n_params == REFERENCE[ref]["parameters"]


def test_variant_aliases_and_errors():
    assert canonical_variant("HiRQA-S") == "hirqa-s"
    assert canonical_variant("resnet50") == "hirqa"
    with pytest.raises(ValueError, match="unknown variant"):
        canonical_variant("vit")


def test_attention_pool_equals_torch_multi_head_attention():
    torch.manual_seed(0)
    pool = AttentionPool(64, out_dim=48, heads=HEADS).eval()
    for p in pool.parameters():  # non-trivial biases
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(3, 64, 5, 7)
    ours = pool(x)

    # The authors' formulation (CLIP AttentionPool2d without positional embedding):
    tokens = x.flatten(2).permute(2, 0, 1)  # HW, N, C
    tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens], dim=0)  # 1+HW, N, C
    ref, _ = F.multi_head_attention_forward(
        query=tokens[:1],
        key=tokens,
        value=tokens,
        embed_dim_to_check=64,
        num_heads=HEADS,
        q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None,
        bias_v=None,
        add_zero_attn=False,
        dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True,
        training=False,
        need_weights=False,
    )
    assert ours.shape == (3, 48)
    torch.testing.assert_close(ours, ref.squeeze(0), atol=1e-5, rtol=1e-5)


def test_attention_pool_equals_nn_multihead_attention():
    torch.manual_seed(1)
    c = 32
    pool = AttentionPool(c, out_dim=c, heads=HEADS).eval()
    mha = torch.nn.MultiheadAttention(c, HEADS, bias=True, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([pool.q_proj.weight, pool.k_proj.weight, pool.v_proj.weight]))
        mha.in_proj_bias.copy_(torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]))
        mha.out_proj.weight.copy_(pool.c_proj.weight)
        mha.out_proj.bias.copy_(pool.c_proj.bias)
    x = torch.randn(2, c, 4, 3)
    tokens = x.flatten(2).transpose(1, 2)
    tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1)
    with torch.no_grad():
        ref, _ = mha(tokens[:, :1], tokens, tokens, need_weights=False)
        torch.testing.assert_close(pool(x), ref[:, 0], atol=1e-5, rtol=1e-5)


def test_forward_any_size_scores_in_unit_interval():
    torch.manual_seed(0)
    model = build_model("hirqa-s")
    with torch.no_grad():
        for h, w in [(32, 32), (65, 97), (33, 200)]:
            s = model(torch.randn(2, 3, h, w))
            assert s.shape == (2,)
            assert bool(((s > 0) & (s < 1)).all())
        _, emb = model.score_and_embed(torch.randn(1, 3, 64, 64))
        assert emb.shape == (1, EMBED_DIM)


def test_build_model_is_strict():
    sd = HiRQA("hirqa-s").state_dict()
    sd.pop("fc.0.bias")
    with pytest.raises(RuntimeError, match=r"fc\.0\.bias"):
        build_model("hirqa-s", sd)
