"""Import the authors' released HiRQA / HiRQA-S checkpoints (``{"model_state_dict": ...}``) into
a model directory."""

from __future__ import annotations

import os
from pathlib import Path

from hirqa_ros.artifacts import sha256_file
from hirqa_ros.constants import uncalibrated_thresholds
from hirqa_ros.export.model_dir import strip_wrapper_prefixes, write_model_dir

OFFICIAL_LICENCE = (
    "none published: the authors' repository (uf-robopi/HiRQA) has no LICENSE file, so all rights are "
    "reserved by default; using or redistributing these weights is the user's responsibility"
)



def read_official_checkpoint(ckpt: str | os.PathLike) -> dict:
    """The state dict of an authors'-format ``.pth`` (``{"model_state_dict": ...}``)."""
    import torch

    from hirqa_ros.artifacts import torch_load_weights

    obj = torch_load_weights(ckpt)
    if isinstance(obj, dict) and "model_state_dict" in obj:
        sd = obj["model_state_dict"]
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj  # a bare state dict
    else:
        raise ValueError(f"{ckpt}: not a HiRQA checkpoint (expected a dict with 'model_state_dict')")
    return strip_wrapper_prefixes(sd)


def import_official(
    ckpt: str | os.PathLike, variant: str, out_dir: str | os.PathLike, storage: str = "float32"
) -> Path:
    """Turn the authors' released HiRQA / HiRQA-S checkpoint into a model directory.

    Loads strictly (a wrong variant or file fails with the offending keys). Weights are kept
    fp32 by default (exactly the authors' values); ``storage="float16"`` halves the size.
    """
    from hirqa_ros.model import HiRQA, canonical_variant

    variant = canonical_variant(variant)
    sd = read_official_checkpoint(ckpt)
    expected = HiRQA(variant).state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    bad_shape = sorted(k for k in set(expected) & set(sd) if tuple(expected[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or bad_shape:
        other = "hirqa" if variant == "hirqa-s" else "hirqa-s"
        raise ValueError(
            f"{ckpt} does not match variant {variant!r} (is it --variant {other}?): "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, "
            f"{len(bad_shape)} with other shapes {bad_shape[:3]}"
        )
    card = {
        "name": f"official-{variant}",
        "description": (
            f"The authors' released {'HiRQA-S (ResNet-18)' if variant == 'hirqa-s' else 'HiRQA (ResNet-50)'} "
            "weights (uf-robopi/HiRQA), imported unchanged. Thresholds are defaults, not calibrated."
        ),
        "input_policy": "native",
        "thresholds": uncalibrated_thresholds(),
        "licence": OFFICIAL_LICENCE,
        "lineage": {
            "source": "authors' weights (uf-robopi/HiRQA)",
            "checkpoint": Path(ckpt).name,
            "checkpoint_sha256": sha256_file(ckpt),
        },
    }
    return write_model_dir(out_dir, sd, variant, card, storage=storage)
