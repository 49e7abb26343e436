"""The HiRQA network: a trunk (ResNet, or an ImageNet-initialised MobileNetV2 / EfficientNet-Lite0;
``hirqa_ros.trunks``), single-query attention pooling, linear + sigmoid score.

Parameter names match the authors' released checkpoints (``backbone.features.*``,
``global_pool_quality.{q,k,v,c}_proj.*``, ``fc.0.*``), so their ``model_state_dict`` loads with
``strict=True``. Nothing is downloaded at construction.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hirqa_ros.trunks import TRUNKS, canonical_variant, imagenet_features_state

VARIANTS = {
    # variant name -> (trunk constructor name, trunk output channels); hirqa_ros.trunks has the rest
    name: (t.arch, t.channels) for name, t in TRUNKS.items()
}
EMBED_DIM = 1024
HEADS = 16

__all__ = ["EMBED_DIM", "VARIANTS", "AttentionPool", "Backbone", "DeployedHiRQA", "HiRQA", "build_model",
           "canonical_variant", "load_imagenet_trunk", "norm_tensors", "normalise_frames"]


class Backbone(nn.Module):
    """A trunk without its global pool and classifier (``features``: an ``nn.Sequential``)."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        from hirqa_ros.trunks import build_features

        self.features = build_features(variant)

    def first_conv(self) -> nn.Conv2d:
        """The convolution that reads the image (BGR exports reverse its input channels)."""
        return next(m for m in self.features.modules() if isinstance(m, nn.Conv2d))

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
    """HiRQA (ResNet-50), HiRQA-S (ResNet-18) or a variant on another trunk (``hirqa_ros.trunks``).
    ``forward`` returns scores in (0, 1), shape (N,)."""

    def __init__(self, variant: str = "hirqa-s") -> None:
        super().__init__()
        self.variant = canonical_variant(variant)
        _, channels = VARIANTS[self.variant]
        self.backbone = Backbone(self.variant)
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


def load_imagenet_trunk(model: HiRQA) -> str:
    """Load the installed ImageNet weights into ``model``'s trunk (strict); returns their source."""
    model.backbone.features.load_state_dict(imagenet_features_state(model.variant), strict=True)
    return TRUNKS[model.variant].weights_source or ""


def norm_tensors(channel_order: str = "RGB", device=None, norm=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) float32 (1, 3, 1, 1) of ``norm`` (a ``preprocess.Normalisation``; the
    authors' when None), in ``channel_order``."""
    from hirqa_ros.preprocess import AUTHORS_NORMALISATION

    consts = (norm or AUTHORS_NORMALISATION).scale_shift()
    scale, shift = (torch.from_numpy(c.copy()).reshape(1, 3, 1, 1).to(device) for c in consts)
    if channel_order.upper() == "BGR":
        scale, shift = scale.flip(1), shift.flip(1)
    return scale.contiguous(), shift.contiguous()


def normalise_frames(frames: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised NCHW in ``dtype`` (channels-last strides: no data movement
    for the transpose). Computed in float32: ``x * scale - shift``. The cast comes first, so the
    uint8 input feeds a Cast node (what TensorRT wants of a UINT8 network input)."""
    return (frames.float().permute(0, 3, 1, 2) * scale - shift).to(dtype)


class DeployedHiRQA(nn.Module):
    """HiRQA as backends and exports run it: input contract and precision fixed, two outputs.

    ``frames=True``: input uint8 (N, H, W, 3) camera bytes in ``channel_order``; the cast,
    normalisation (``norm``, a ``preprocess.Normalisation``, float32) and NHWC -> NCHW transpose are part
    of the graph. The transpose is a stride permutation, so the network sees a channels-last
    tensor at no cost. ``BGR`` is folded into the first convolution (its input channels
    reversed) and the normalisation constants: no extra op. ``frames=False``: the float NCHW
    entry point (host-normalised; training, older ONNX files). ``precision="fp16"``: trunk and
    pooling in fp16, normalisation, final linear and sigmoid in fp32. Returns
    ``(score (N,) float32, embedding (N, 1024) float32)``.
    """

    def __init__(self, model: HiRQA, frames: bool = True, channel_order: str = "RGB",
                 precision: str = "fp32", norm=None) -> None:
        super().__init__()
        import copy

        from hirqa_ros.preprocess import CHANNEL_ORDERS

        order = channel_order.upper()
        if order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        if order == "BGR" and not frames:
            raise ValueError("channel_order BGR needs the camera-bytes (frames) input")
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
        m = copy.deepcopy(model).eval().float()
        self.variant = getattr(model, "variant", "hirqa-s")
        self.frames, self.channel_order, self.precision = frames, order, precision
        if order == "BGR":
            conv = m.backbone.first_conv()
            with torch.no_grad():
                conv.weight.copy_(conv.weight.flip(1))
        scale, shift = norm_tensors(order, norm=norm)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.backbone = m.backbone.to(self.dtype)
        self.global_pool_quality = m.global_pool_quality.to(self.dtype)
        self.fc = m.fc.float()

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> normalised NCHW (channels-last strides) in the network's dtype."""
        return normalise_frames(frames, self.scale, self.shift, self.dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalise(x) if self.frames else x.to(self.dtype)
        emb = self.global_pool_quality(self.backbone(x)).float()
        return torch.sigmoid(self.fc(emb)).squeeze(1), emb
