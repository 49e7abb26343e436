"""The HiRQA network: ResNet trunk, single-query attention pooling, linear + sigmoid score.

Parameter names match the authors' released checkpoints (``backbone.features.*``,
``global_pool_quality.{q,k,v,c}_proj.*``, ``fc.0.*``), so their ``model_state_dict`` loads with
``strict=True``. Nothing is downloaded at construction.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = {
    # variant name -> (torchvision constructor name, trunk output channels)
    "hirqa-s": ("resnet18", 512),
    "hirqa": ("resnet50", 2048),
}
EMBED_DIM = 1024
HEADS = 16


def canonical_variant(name: str) -> str:
    """Map 'HiRQA-S', 'hirqa_s', 'resnet18', ... onto a key of ``VARIANTS``."""
    key = name.strip().lower().replace("_", "-")
    aliases = {"hirqa-s": "hirqa-s", "resnet18": "hirqa-s", "hirqa": "hirqa", "resnet50": "hirqa"}
    if key not in aliases:
        raise ValueError(f"unknown variant {name!r}; expected one of {sorted(VARIANTS)}")
    return aliases[key]


class Backbone(nn.Module):
    """A torchvision ResNet without its global average pool and classifier."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        import torchvision

        resnet = getattr(torchvision.models, arch)(weights=None)
        self.features = nn.Sequential(*list(resnet.children())[:-2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class AttentionPool(nn.Module):
    """CLIP-style attention pooling without positional embedding (works at any H x W).

    The spatial mean of the feature map is prepended as a token and is the only query; keys
    and values are all tokens. Written with plain linear/matmul/softmax ops so that ONNX,
    TensorRT and torch2trt all parse it.
    """

    def __init__(self, channels: int, out_dim: int = EMBED_DIM, heads: int = HEADS) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError("channels must be divisible by heads")
        self.heads = heads
        self.head_dim = channels // heads
        self.q_proj = nn.Linear(channels, channels)
        self.k_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.c_proj = nn.Linear(channels, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        tokens = x.flatten(2).transpose(1, 2)  # N, HW, C
        mean = tokens.mean(dim=1, keepdim=True)  # N, 1, C
        tokens = torch.cat([mean, tokens], dim=1)  # N, 1+HW, C
        q = self.q_proj(mean) * (1.0 / math.sqrt(self.head_dim))
        k = self.k_proj(tokens)
        v = self.v_proj(tokens)
        q = q.reshape(n, 1, self.heads, self.head_dim).transpose(1, 2)  # N, h, 1, d
        k = k.reshape(n, -1, self.heads, self.head_dim).transpose(1, 2)  # N, h, L, d
        v = v.reshape(n, -1, self.heads, self.head_dim).transpose(1, 2)  # N, h, L, d
        attn = F.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)  # N, h, 1, L
        out = torch.matmul(attn, v).transpose(1, 2).reshape(n, c)  # N, C
        return self.c_proj(out)


class HiRQA(nn.Module):
    """HiRQA (ResNet-50) or HiRQA-S (ResNet-18). ``forward`` returns scores in (0, 1), shape (N,)."""

    def __init__(self, variant: str = "hirqa-s") -> None:
        super().__init__()
        self.variant = canonical_variant(variant)
        arch, channels = VARIANTS[self.variant]
        self.backbone = Backbone(arch)
        self.global_pool_quality = AttentionPool(channels)
        self.fc = nn.Sequential(nn.Linear(EMBED_DIM, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024-d quality embedding F_emb."""
        return self.global_pool_quality(self.backbone(x))

    def score_and_embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (N,) and embeddings (N, 1024) in one pass (training uses both)."""
        emb = self.embed(x)
        return torch.sigmoid(self.fc(emb)).squeeze(1), emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(self.embed(x))).squeeze(1)


def build_model(variant: str = "hirqa-s", state_dict: dict | None = None) -> HiRQA:
    """Construct a model in eval mode; load ``state_dict`` strictly when given."""
    model = HiRQA(variant)
    if state_dict is not None:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()},
                              strict=True)
    return model.eval()
