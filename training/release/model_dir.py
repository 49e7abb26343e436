"""The one producer of a released model directory: weights + ONNX + card through
``hirqa_ros.export.write_model_dir``, the fault head (sha256 in the card), the human card with the
release's sections, no stale int8 model, and every sha256 checked at the end."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import yaml

log = logging.getLogger("hirqa.release")


def attach_fault_head(out: Path, source: Path) -> dict:
    """Copy a fault head file into a model directory and list it (sha256) in its card; returns the card."""
    from hirqa_ros.artifacts import CARD_FILE, atomic_write_bytes, sha256_file
    from hirqa_ros.heads import FAULT_HEAD_FILE, FAULT_HEAD_KEY, FaultHead

    head = FaultHead.load(source)
    if source.resolve() != (out / FAULT_HEAD_FILE).resolve():
        shutil.copyfile(source, out / FAULT_HEAD_FILE)
    full = yaml.safe_load((out / CARD_FILE).read_text())
    full["files"][FAULT_HEAD_KEY] = {
        "path": FAULT_HEAD_FILE,
        "sha256": sha256_file(out / FAULT_HEAD_FILE),
        "bytes": (out / FAULT_HEAD_FILE).stat().st_size,
    }
    full["fault_head"] = {
        "file": FAULT_HEAD_FILE,
        "classes": list(head.classes),
        "input": "embedding (1024-d)",
        "layers": len(head.layers),
        "temperature": round(head.temperature, 4),
    }
    atomic_write_bytes(out / CARD_FILE, yaml.safe_dump(full, sort_keys=False).encode())
    return full


def remove_stale_int8(out: Path) -> None:
    """Delete an int8 model made for other weights or heads (``hirqa export --int8`` remakes it)."""
    from hirqa_ros.quantize import INT8_FILE

    stale = out / INT8_FILE
    if stale.exists():
        stale.unlink()
        log.info("removed %s (made for the previous weights or heads): run `hirqa export --model %s --int8`",
                 stale, out)


def write_human_card(out: Path, card: dict, sections: str = "") -> None:
    """MODEL_CARD.md: the card rendered as ``hirqa export`` does, then the release's own ``sections``."""
    from hirqa_ros.artifacts import HUMAN_CARD_FILE, atomic_write_bytes
    from hirqa_ros.export import _render_human_card  # the exporter's renderer (not public yet)

    atomic_write_bytes(out / HUMAN_CARD_FILE, (_render_human_card(card) + sections).encode())


def write_model(out: Path, state_dict: dict, variant: str, card: dict, fault_head: Path | None = None,
                sections: str = "") -> dict:
    """Write the model directory ``out`` and return its full card: ``fault_head`` (a ``.npz``) attached,
    or a fault head left from an earlier model removed; MODEL_CARD.md with ``sections`` appended."""
    from hirqa_ros.artifacts import CARD_FILE, load_artifact
    from hirqa_ros.export import write_model_dir
    from hirqa_ros.heads import FAULT_HEAD_FILE

    out.mkdir(parents=True, exist_ok=True)
    write_model_dir(out, state_dict, variant, card)
    if fault_head is not None:
        full = attach_fault_head(out, Path(fault_head))
    else:
        full = yaml.safe_load((out / CARD_FILE).read_text())
        if (out / FAULT_HEAD_FILE).exists():
            (out / FAULT_HEAD_FILE).unlink()
    write_human_card(out, full, sections)
    remove_stale_int8(out)
    load_artifact(out)  # every sha256 checks out
    return full


def rewrite_card(out: Path, card: dict, sections: str = "") -> None:
    """Replace the card of an existing model directory (same files) and its MODEL_CARD.md."""
    from hirqa_ros.artifacts import CARD_FILE, atomic_write_bytes, load_artifact

    atomic_write_bytes(out / CARD_FILE, yaml.safe_dump(card, sort_keys=False).encode())
    write_human_card(out, card, sections)
    load_artifact(out)
