"""The one producer of a released model directory: weights + ONNX + card through
``hirqa_ros.export.model_dir.write_model_dir``, the fault head (sha256 in the card), the human card
with the release's sections, no stale int8 model, and every sha256 checked at the end. The cards
are written only through ``hirqa_ros.artifacts.update_card``."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger("hirqa.release")


def attach_fault_head(out: Path, source: Path, sections: str = "") -> dict:
    """Copy a fault head file into a model directory and list it (sha256) in its cards (``sections``
    after MODEL_CARD.md's file table); returns the card."""
    from hirqa_ros.artifacts import load_artifact, update_card
    from hirqa_ros.heads import FAULT_HEAD_FILE, FAULT_HEAD_KEY, FaultHead

    head = FaultHead.load(source)
    if source.resolve() != (out / FAULT_HEAD_FILE).resolve():
        shutil.copyfile(source, out / FAULT_HEAD_FILE)
    full = dict(load_artifact(out, verify=False).card)
    full["fault_head"] = {
        "file": FAULT_HEAD_FILE,
        "classes": list(head.classes),
        "input": "embedding (1024-d)",
        "layers": len(head.layers),
        "temperature": round(head.temperature, 4),
    }
    return update_card(out, full, files={FAULT_HEAD_KEY: FAULT_HEAD_FILE}, sections=sections)


def remove_stale_int8(out: Path) -> None:
    """Delete an int8 model made for other weights or heads (``hirqa export --int8`` remakes it)."""
    from hirqa_ros.artifacts import INT8_FILE

    stale = out / INT8_FILE
    if stale.exists():
        stale.unlink()
        log.info("removed %s (made for the previous weights or heads): run `hirqa export --model %s --int8`",
                 stale, out)


def write_model(out: Path, state_dict: dict, variant: str, card: dict, fault_head: Path | None = None,
                sections: str = "") -> dict:
    """Write the model directory ``out`` and return its full card: ``fault_head`` (a ``.npz``) attached,
    or a fault head left from an earlier model removed; MODEL_CARD.md with ``sections`` appended."""
    from hirqa_ros.artifacts import load_artifact, update_card
    from hirqa_ros.export.model_dir import write_model_dir
    from hirqa_ros.heads import FAULT_HEAD_FILE

    out.mkdir(parents=True, exist_ok=True)
    write_model_dir(out, state_dict, variant, card)
    if fault_head is not None:
        full = attach_fault_head(out, Path(fault_head), sections)
    else:
        if (out / FAULT_HEAD_FILE).exists():
            (out / FAULT_HEAD_FILE).unlink()
        full = update_card(out, load_artifact(out, verify=False).card, sections=sections)
    remove_stale_int8(out)
    load_artifact(out)  # every sha256 checks out
    return full


def rewrite_card(out: Path, card: dict, sections: str = "") -> None:
    """Replace the card of an existing model directory (same files) and its MODEL_CARD.md."""
    from hirqa_ros.artifacts import load_artifact, update_card

    update_card(out, card, sections=sections)
    load_artifact(out)
