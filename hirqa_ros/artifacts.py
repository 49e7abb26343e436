"""Model directories: find the default one, read and validate its card (``model.yaml``), verify
file checksums, and write the cards (:func:`update_card`, the one writer of both).

A model directory holds ``model.yaml`` (machine card), ``MODEL_CARD.md`` (human card),
``weights.pth`` (``{"model_state_dict": ...}``, the authors' format) and ``model.onnx``.
This module never imports torch at import time (the ONNX Runtime path must work without it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.constants import ONNX_EMBEDDING_NAME as EMBEDDING_OUTPUT
from hirqa_ros.constants import ONNX_FLOAT_INPUT_NAME as FLOAT_INPUT
from hirqa_ros.constants import ONNX_INPUT_NAME as FRAMES_INPUT
from hirqa_ros.constants import ONNX_OUTPUT_NAME as SCORE_OUTPUT
from hirqa_ros.decision import Thresholds
from hirqa_ros.files import (
    UntrustedFileError,
    atomic_write_bytes,
    load_untrusted,
)
from hirqa_ros.preprocess import Normalisation
from hirqa_ros.trunks import TRUNKS, trunk_normalisation

CARD_FILE = "model.yaml"
HUMAN_CARD_FILE = "MODEL_CARD.md"
FORMAT_VERSION = 1
DEFAULT_MODEL_NAME = "hirqa-s"
VARIANTS = tuple(TRUNKS)  # as written by export.model_dir.write_model_dir (model.canonical_variant)
ENV_VAR = "HIRQA_MODEL"


HOW_TO_GET_ONE = (
    "Get a model in one of these ways and pass it with --model DIR (or set HIRQA_MODEL=DIR):\n"
    "  - train one:   hirqa prepare-data && hirqa train   (writes a model directory)\n"
    "  - import the authors' released checkpoint:\n"
    "        hirqa import-official --ckpt HiRQA-S.pth --variant hirqa-s --out models/hirqa-s\n"
    "  - install a package/checkout that ships models/hirqa-s/ (model.yaml, weights.pth, model.onnx)."
)


class ArtifactError(RuntimeError):
    """A model directory is missing, malformed or fails its sha256 check."""


class NoDefaultModelError(ArtifactError):
    """No model was named and no default model is installed."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def torch_load_weights(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a file that is not a plain weights
    checkpoint raises :class:`ArtifactError` with a one-line reason. torch's own message advises
    retrying with ``weights_only=False``, which would run the code in the pickle: never shown."""
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{p}: not a regular file" if p.exists() else f"{p}: no such file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, OSError,
            AttributeError, ImportError, IndexError, KeyError, UnicodeDecodeError) as exc:
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()] or [type(exc).__name__]
        first = lines[0]
        if first.startswith("Weights only load failed"):  # drop torch's advice, keep the reason
            advice = ("Weights only load failed", "Please file an issue", "Check the documentation")
            reasons = [x for x in lines if not x.startswith(advice) and "weights_only" not in x.lower()]
            reason = reasons[0] if reasons else "refused by the weights-only reader"
            first = f"not a plain-tensor checkpoint: {reason.removeprefix('WeightsUnpickler error:').strip()}"
        raise ArtifactError(
            f"{p}: not a loadable PyTorch weights file ({first[:200]}); only plain tensors are read "
            "(weights_only=True), never code"
        ) from None


@dataclass(frozen=True)
class InputContract:
    """What the ONNX of a model directory takes. A card without ``input`` is an older directory
    whose ONNX takes host-normalised float NCHW (``image``) and outputs only ``score``."""

    name: str = FLOAT_INPUT
    dtype: str = "float32"
    layout: str = "NCHW"
    channels: str = "RGB"
    outputs: tuple[str, ...] = (SCORE_OUTPUT,)

    @property
    def camera_bytes(self) -> bool:
        """True when the network takes uint8 NHWC frames and normalises them itself."""
        return self.name == FRAMES_INPUT

    @classmethod
    def frames(cls, channels: str = "RGB") -> InputContract:
        return cls(FRAMES_INPUT, "uint8", "NHWC", channels.upper(), (SCORE_OUTPUT, EMBEDDING_OUTPUT))

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> InputContract:
        entry = card.get("input")
        if not isinstance(entry, dict):
            return cls()
        try:
            contract = cls(
                str(entry["name"]),
                str(entry["dtype"]),
                str(entry["layout"]),
                str(entry.get("channels", "RGB")).upper(),
                tuple(str(o) for o in entry.get("outputs", (SCORE_OUTPUT,))),
            )
        except KeyError as exc:
            raise ArtifactError(f"{CARD_FILE}: input entry lacks {exc} (name, dtype, layout)") from exc
        if (contract.name, contract.dtype, contract.layout) not in (
            (FRAMES_INPUT, "uint8", "NHWC"), (FLOAT_INPUT, "float32", "NCHW")
        ) or contract.channels not in ("RGB", "BGR"):
            raise ArtifactError(f"{CARD_FILE}: unsupported input contract {entry}")
        return contract

    def as_card(self) -> dict[str, Any]:
        how = (
            "uint8 camera bytes; x/255, minus mean, over std and NHWC->NCHW run inside the graph"
            if self.camera_bytes
            else "float32, normalised on the host"
        )
        return {"name": self.name, "dtype": self.dtype, "layout": self.layout, "channels": self.channels,
                "outputs": list(self.outputs), "preprocessing": how}


@dataclass
class ModelArtifact:
    """A loaded (and verified) model directory."""

    path: Path
    card: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.name))

    @property
    def variant(self) -> str:
        return str(self.card.get("variant", "hirqa-s"))

    @property
    def input_policy(self) -> str:
        """The card's input policy; ``native`` (the authors' whole-frame input) when it names none."""
        return str(self.card.get("input_policy", "native"))

    @property
    def input_contract(self) -> InputContract:
        """What ``model.onnx`` takes and returns (older directories: float NCHW, score only)."""
        return InputContract.from_card(self.card)

    @property
    def normalisation(self) -> Normalisation:
        """The card's ``normalisation`` (RGB in [0, 1], mean, std); its trunk's (the authors' for
        ResNet) when absent."""
        n = self.card.get("normalisation") or {}
        default = trunk_normalisation(self.variant if self.variant in TRUNKS else DEFAULT_MODEL_NAME)
        colour, value_range = str(n.get("colour", "RGB")).upper(), list(n.get("range", [0, 1]))
        if colour != "RGB" or value_range != [0, 1]:
            raise ArtifactError(f"{self.path}: normalisation colour {colour} range {value_range} is not "
                                "supported (expected RGB in [0, 1])")
        try:
            return Normalisation(tuple(float(v) for v in n.get("mean", default.mean)),
                                 tuple(float(v) for v in n.get("std", default.std)))
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{self.path}: bad normalisation in {CARD_FILE}: {exc}") from exc

    @property
    def thresholds(self) -> Thresholds:
        """The card's thresholds of the fp32 model (``thresholds``)."""
        return self.thresholds_for("fp32")

    def thresholds_for(self, precision: str) -> Thresholds:
        """Thresholds calibrated for the model that runs at ``precision``: ``int8`` has its own
        (the card's ``int8.thresholds``: its scores move by a few hundredths); fp32 and fp16
        share the card's ``thresholds``."""
        where = str(self.path / CARD_FILE)
        if precision != "int8":
            t = card_thresholds(self.card.get("thresholds"), where)
            if t is None:
                raise MissingThresholds(f"{where} has no 'thresholds' (warn, error): {NO_THRESHOLDS_HINT}")
            return t
        t = card_thresholds((self.card.get("int8") or {}).get("thresholds"), where + " (int8)")
        if t is None:
            raise MissingThresholds(
                f"{self.path}: {CARD_FILE} has no int8 thresholds (re-run `hirqa export --int8`, or "
                "pass --threshold WARN,ERROR)"
            )
        return t

    def file(self, key: str) -> Path | None:
        """Absolute path of the file listed under ``files.<key>`` (None when not listed)."""
        entry = (self.card.get("files") or {}).get(key)
        if not entry:
            return None
        return self.path / entry["path"]

    @property
    def weights(self) -> Path | None:
        return self.file("weights")

    @property
    def onnx(self) -> Path | None:
        return self.file("onnx")

    def file_sha256(self, key: str) -> str | None:
        entry = (self.card.get("files") or {}).get(key)
        return entry.get("sha256") if entry else None

    def state_dict(self) -> dict:
        """The weights as stored (``torch.load(..., weights_only=True)``); needs torch."""
        if self.weights is None:
            raise ArtifactError(f"{self.path}: model card lists no weights file")
        obj = torch_load_weights(self.weights)
        if not isinstance(obj, dict) or "model_state_dict" not in obj:
            raise ArtifactError(f"{self.weights}: expected a dict with 'model_state_dict'")
        return obj["model_state_dict"]

    def torch_model(self):
        """A ``HiRQA`` module in eval mode with these weights (fp32); needs torch."""
        from hirqa_ros.model import build_model

        return build_model(self.variant, self.state_dict())


NO_THRESHOLDS_HINT = (
    "pass thresholds for this run (`hirqa score` / `hirqa bag-eval`: --threshold WARN,ERROR) or add "
    "calibrated ones to the card (`thresholds: {warn: W, error: E, calibrated: true}`; `hirqa bag-eval "
    "--labels` suggests them; the node: set its warn_threshold and error_threshold parameters); "
    "built-in defaults are never used silently"
)


class MissingThresholds(ArtifactError):
    """The card has no thresholds for the precision that runs, and none were given."""


def card_thresholds(t: Any, where: str) -> Thresholds | None:
    """The thresholds of a card entry (``{warn, error[, calibrated]}``), None when absent; raises
    :class:`ArtifactError` unless both are present, real numbers (not booleans or strings), finite and
    ``0 <= error <= warn <= 1``."""
    if t is None:
        return None
    if not isinstance(t, dict):
        raise ArtifactError(f"{where}: 'thresholds' must be a mapping with 'warn' and 'error', got {t!r}")
    missing = [k for k in ("warn", "error") if k not in t]
    if missing:
        raise ArtifactError(f"{where}: thresholds lack {' and '.join(map(repr, missing))}")
    for key in ("warn", "error"):
        v = t[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ArtifactError(f"{where}: thresholds must be numbers, got {key}={v!r} ({type(v).__name__})")
        if not math.isfinite(v):
            raise ArtifactError(f"{where}: thresholds must be finite, got {key}={v}")
    if "calibrated" in t and not isinstance(t["calibrated"], bool):
        raise ArtifactError(f"{where}: thresholds.calibrated must be true or false, got {t['calibrated']!r}")
    try:
        return Thresholds(warn=float(t["warn"]), error=float(t["error"]))
    except ValueError as exc:
        raise ArtifactError(f"{where}: bad thresholds: {exc}") from None


def validate_card(card: dict[str, Any], where: str | os.PathLike = CARD_FILE) -> None:
    """Check a model card's fields before anything is loaded or scored; raises :class:`ArtifactError`.

    Checks ``format``, ``variant``, ``input_policy``, ``thresholds`` and ``int8.thresholds``
    (:func:`card_thresholds`: numbers, finite, 0 <= error <= warn <= 1; a card may lack fp32
    thresholds, then the user passes them) and ``files`` (a mapping of entries with a relative
    ``path`` and a 64-hex ``sha256``, listing weights or ONNX). Keys it does not know are left to
    the modules that read them.
    """
    from hirqa_ros.preprocess import InputPolicy

    where = str(where)
    fmt = card.get("format")
    if fmt != FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: model card format {fmt!r} is not supported (this hirqa_ros reads format "
            f"{FORMAT_VERSION}); re-export the model or upgrade hirqa_ros"
        )
    variant = card.get("variant", DEFAULT_MODEL_NAME)
    if variant not in VARIANTS:
        raise ArtifactError(f"{where}: unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    try:
        InputPolicy.parse(card.get("input_policy", "native"))
    except ValueError as exc:
        raise ArtifactError(f"{where}: {exc}") from None
    card_thresholds(card.get("thresholds"), where)
    int8 = card.get("int8")
    if int8 is not None:
        if not isinstance(int8, dict):
            raise ArtifactError(f"{where}: 'int8' must be a mapping")
        if card_thresholds(int8.get("thresholds"), where + " (int8)") is None:
            raise ArtifactError(f"{where}: the int8 section has no thresholds (re-run `hirqa export --int8`)")
    files = card.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(
            f"{where}: no 'files' section (the card must list weights and/or onnx with sha256)"
        )
    if not (files.get("weights") or files.get("onnx")):
        raise ArtifactError(f"{where}: 'files' lists neither 'weights' nor 'onnx'")
    for key, entry in files.items():
        if not entry:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise ArtifactError(f"{where}: files.{key} needs a 'path'")
        rel = Path(entry["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise ArtifactError(
                f"{where}: files.{key}.path {entry['path']!r} must stay inside the model directory"
            )
        want = entry.get("sha256")
        hexdigits = "0123456789abcdef"
        if not (isinstance(want, str) and len(want) == 64 and all(c in hexdigits for c in want.lower())):
            raise ArtifactError(
                f"{where}: files.{key} has no valid sha256, so {entry['path']} cannot be verified; "
                f"add `sha256: <sha256sum of the file>` or re-export the model directory"
            )


def verify_files(path: Path, card: dict[str, Any]) -> None:
    """Check that every file listed in the card is a regular file matching its sha256."""
    for key, entry in (card.get("files") or {}).items():
        if not entry:
            continue
        f = path / entry["path"]
        if not f.exists():
            raise ArtifactError(f"{path}: file {entry['path']!r} ({key}) listed in {CARD_FILE} is missing")
        if not stat.S_ISREG(f.stat().st_mode):
            raise ArtifactError(f"{path}: {entry['path']!r} ({key}) is not a regular file")
        want = entry.get("sha256")
        if want and sha256_file(f) != want.lower():
            raise ArtifactError(
                f"{f}: sha256 mismatch (card says {want[:12]}..., file is {sha256_file(f)[:12]}...); "
                "the file is corrupt or was replaced - re-download or re-export the model directory"
            )


def load_artifact(path: str | os.PathLike | None = None, verify: bool = True) -> ModelArtifact:
    """Read a model directory (or its ``model.yaml``); ``None`` means :func:`default_model_dir`."""
    p = default_model_dir() if path is None else Path(path).expanduser()
    if p.is_file() and p.name == CARD_FILE:
        p = p.parent
    if p.is_file() and p.suffix in (".pth", ".pt"):
        raise ArtifactError(
            f"{p} is a checkpoint file, not a model directory; convert it first with "
            f"`hirqa import-official --ckpt {p} --variant hirqa-s --out DIR` and use --model DIR"
        )
    if not p.exists():
        raise ArtifactError(f"model directory {p} does not exist")
    if not p.is_dir():
        raise ArtifactError(f"{p} is not a model directory (expected a folder holding {CARD_FILE})")
    card_path = p / CARD_FILE
    if not card_path.is_file():
        raise ArtifactError(f"{p} is not a model directory: no {CARD_FILE}")
    try:
        card = load_untrusted(card_path, "model card") or {}
    except UntrustedFileError as exc:
        raise ArtifactError(str(exc)) from None
    if not isinstance(card, dict):
        raise ArtifactError(f"{card_path}: expected a mapping at top level")
    validate_card(card, card_path)
    if verify:
        verify_files(p, card)
    return ModelArtifact(path=p.resolve(), card=card)


def _is_model_dir(p: Path) -> bool:
    return (p / CARD_FILE).is_file()


def default_model_candidates() -> list[Path]:
    """Where the default model is looked for, in order (after $HIRQA_MODEL)."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "models" / DEFAULT_MODEL_NAME]  # source checkout / editable install
    candidates.append(Path(sys.prefix) / "share" / "hirqa_ros" / "models" / DEFAULT_MODEL_NAME)
    try:  # colcon / ament install
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("hirqa_ros")) / "models" / DEFAULT_MODEL_NAME)
    except Exception:  # not a ROS environment, or the package is not in the ament index
        pass
    out: list[Path] = []
    for c in candidates:
        if c not in out:
            out.append(c)
    return out


def default_model_dir() -> Path:
    """The model used when none is named: $HIRQA_MODEL, then ``models/hirqa-s`` beside the
    package source, then the installed share dir. Raises :class:`NoDefaultModelError`."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        p = Path(env).expanduser()
        if _is_model_dir(p):
            return p.resolve()
        raise NoDefaultModelError(
            f"{ENV_VAR}={env} does not point at a model directory (no {CARD_FILE} there), "
            f"so no default model is installed.\n{HOW_TO_GET_ONE}"
        )
    searched = default_model_candidates()
    for c in searched:
        if _is_model_dir(c):
            return c.resolve()
    where = "\n".join(f"  - {c}" for c in searched)
    raise NoDefaultModelError(
        f"No default model is installed (looked for {CARD_FILE} in ${ENV_VAR} (unset) and:\n{where})\n"
        f"{HOW_TO_GET_ONE}"
    )


# ---- writing a model directory's card: the one writer is update_card() ----

WEIGHTS_FILE = "weights.pth"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"  # listed as files.onnx_int8; its facts under the card's ``int8``
INT8_FILE_KEY = "onnx_int8"
INT8_CARD_KEY = "int8"
INT8_TOLERANCE = 0.01  # the most int8's pooled AUROC / ladder SROCC may drop below fp32's
INT8_GATED_METRICS = ("auroc", "ladder_srocc")


def update_card(folder: str | os.PathLike, card: dict[str, Any], files: dict[str, str] | None = None,
                sections: str | None = None) -> dict[str, Any]:
    """Write the two cards of the model directory ``folder`` (the only writer of either) and
    return the machine card written.

    ``card`` is the whole machine card (``model.yaml``); ``files`` ({key: file name in ``folder``})
    are (re)listed under its ``files`` with sha256 and size. ``MODEL_CARD.md`` is rendered from the
    card (:func:`render_human_card`) followed by ``sections`` (Markdown; None keeps what the
    existing one holds after its file table). Both files are replaced atomically."""
    import yaml

    folder = Path(folder)
    card = dict(card)
    listed = dict(card.get("files") or {})
    for key, name in (files or {}).items():
        listed[key] = file_entry(folder, name)
    card["files"] = listed
    card = plain(card)
    human = folder / HUMAN_CARD_FILE
    if sections is None:
        sections = after_file_table(human.read_text(encoding="utf-8")) if human.is_file() else ""
    atomic_write_bytes(folder / CARD_FILE, yaml.safe_dump(card, sort_keys=False).encode())
    atomic_write_bytes(human, (render_human_card(card) + sections).encode())
    return card


def plain(value: Any) -> Any:
    """Recursively turn numpy scalars, paths, tuples and str subclasses into plain YAML types."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (Path, _dt.datetime, _dt.date)):
        return str(value)
    if hasattr(value, "item"):  # 0-d tensors
        return plain(value.item())
    return str(value)


def _input_line(card: dict[str, Any]) -> str:
    c = InputContract.from_card(card)
    if c.camera_bytes:
        return (
            f"- Input (`model.onnx`): `{c.name}`, {c.dtype} {c.layout} {c.channels} camera bytes; "
            "normalisation and transpose run inside the graph"
        )
    return f"- Input (`model.onnx`): `{c.name}`, {c.dtype} {c.layout}, normalised on the host"


def _trunk_line(card: dict[str, Any]) -> list[str]:
    """The human card's trunk line: architecture; for an ImageNet start, the weights' source and licence."""
    t = card.get("trunk")
    if not isinstance(t, dict):
        return []
    w = t.get("imagenet_weights") or {}
    start = f"; ImageNet weights: {w.get('source')} (licence: {w.get('licence')})" if w else ""
    return [f"- Trunk: `{t.get('arch')}` ({t.get('library')}, {t.get('channels')} channels){start}"]


def render_human_card(card: dict[str, Any]) -> str:
    """``MODEL_CARD.md`` up to and including its file table, from the machine card."""
    import yaml

    lines = [f"# Model card: {card['name']}", ""]
    if card.get("description"):
        lines += [str(card["description"]).strip(), ""]
    lines += [
        f"- Variant: `{card['variant']}`",
        *_trunk_line(card),
        f"- Input policy: `{card['input_policy']}` (see docs/scoring.md)",
        f"- Normalisation: RGB in [0, 1], mean {tuple(card['normalisation']['mean'])}, "
        f"std {tuple(card['normalisation']['std'])}",
        _input_line(card),
        "- Output: `score` in (0, 1), higher = better quality"
        + (", then `embedding` (the pooled embedding the score head reads)" if card.get("input") else ""),
        f"- Thresholds: warn < {card['thresholds']['warn']}, error < {card['thresholds']['error']}"
        + ("" if card["thresholds"].get("calibrated") else " (NOT calibrated: defaults)"),
        f"- Licence: {card.get('licence', 'unknown')}",
        f"- Created: {card.get('created', '?')}",
        "",
    ]
    lines += _int8_section(card)
    for section in ("training", "metrics", "lineage"):
        value = card.get(section)
        if value:
            lines += [
                f"## {section.capitalize()}",
                "",
                "```yaml",
                yaml.safe_dump(value, sort_keys=False).rstrip(),
                "```",
                "",
            ]
    lines += ["## Files", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    for entry in card["files"].values():
        lines.append(f"| `{entry['path']}` | {entry['bytes']} | `{entry['sha256']}` |")
    lines.append("")
    return "\n".join(lines)


def _int8_section(card: dict[str, Any]) -> list[str]:
    """The human card's int8 section: decision, thresholds and accuracy fp32 vs int8 per type."""
    q = card.get("int8")
    if not isinstance(q, dict) or "accuracy" not in q:
        return []
    acc, t, quant = q["accuracy"], q["thresholds"], q["quantisation"]
    proto = acc["protocol"]
    lines = [
        "## int8 model (CPU)",
        "",
        f"`{(card.get('files') or {}).get(q.get('file', ''), {}).get('path', 'model.int8.onnx')}`: "
        f"static QDQ ({quant['weights']} weights, {quant['activations']} activations; fp32 kept: "
        f"{', '.join(quant['kept_fp32']) or 'nothing'}), calibrated on {quant['calibration_frames']} "
        f"frames ({', '.join(quant['calibration_sizes'])}) cut from the training photos, half degraded.",
        "",
        f"- CPU default for `backend: auto`: **{'yes' if q['cpu_default'] else 'no'}** ({q['decision']})",
        f"- Own thresholds (same rule and frames as fp32): warn < {t['warn']}, error < {t['error']}",
        f"- Protocol: {proto['views']} views of {proto.get('images', '?')}, "
        + (f"whole frames {', '.join(f'{w}x{h}' for w, h in proto['frame_sizes'])} in turn, "
           if proto.get("frame_sizes") else
           f"crop {proto['crop'] or 'whole image'}, resize_side {proto['resize_side'] or 'native'}, ")
        + f"{proto['types']} types x levels 0..5; "
        f"|score fp32 - int8|: max {acc['score_abs_diff']['max']}, mean {acc['score_abs_diff']['mean']}"
        + (f"; fault head: same top class as fp32 on {acc['fault_top1_agreement']['same_class']:.1%} of "
           f"{acc['fault_top1_agreement']['frames']} frames" if "fault_top1_agreement" in acc else ""),
        "",
        "| type | AUROC fp32 | AUROC int8 | delta | ladder SROCC fp32 | ladder SROCC int8 | delta |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("**pooled**", acc["pooled"])] + [(f"group {g}", v) for g, v in acc["per_group"].items()]
    rows += list(acc["per_type"].items())
    for name, v in rows:
        a, r = v["auroc"], v["ladder_srocc"]
        lines.append(f"| {name} | {a['fp32']:.4f} | {a['int8']:.4f} | {a['delta']:+.4f} | {r['fp32']:.4f} | "
                     f"{r['int8']:.4f} | {r['delta']:+.4f} |")
    return [*lines, ""]


def file_entry(folder: Path, name: str) -> dict[str, Any]:
    return {"path": name, "sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}


def after_file_table(text: str) -> str:
    """What a human card holds after its ``## Files`` table (sections added by training)."""
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("## Files"))
    except StopIteration:
        return ""
    i = start + 1
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    while i < len(lines) and lines[i].startswith("|"):
        i += 1
    return "".join(lines[i:])


def int8_within_tolerance(accuracy: dict[str, Any], tolerance: float = INT8_TOLERANCE) -> tuple[bool, str]:
    """Whether int8's pooled AUROC and ladder SROCC are at most ``tolerance`` below fp32's."""
    pooled = accuracy.get("pooled") or {}
    worst = []
    for m in INT8_GATED_METRICS:
        if m not in pooled:
            return False, f"the accuracy report has no pooled {m}"
        drop = float(pooled[m]["fp32"]) - float(pooled[m]["int8"])
        worst.append(f"{m} {pooled[m]['fp32']:.4f} -> {pooled[m]['int8']:.4f}")
        if not drop <= tolerance:
            return False, f"pooled {m} drops by {drop:.4f} > {tolerance} ({'; '.join(worst)})"
    return True, f"pooled {'; '.join(worst)} (drops <= {tolerance})"


def int8_status(artifact) -> tuple[bool, str]:
    """(True, why) when ``auto`` may run this model directory's int8 ONNX on the CPU: the file is
    listed and present, it was made from the current ``model.onnx``, its thresholds are
    calibrated, and the card's accuracy report keeps the drop within the card's tolerance."""
    entry = artifact.card.get(INT8_CARD_KEY)
    path = artifact.file(INT8_FILE_KEY)
    if not isinstance(entry, dict) or path is None:
        return False, "the model directory has no int8 model (make one with `hirqa export --int8`)"
    if not path.is_file():
        return False, f"{path} is missing"
    if entry.get("source_onnx_sha256") != artifact.file_sha256("onnx"):
        return False, f"{path.name} was made from another model.onnx (re-run `hirqa export --int8`)"
    if not (entry.get("thresholds") or {}).get("calibrated"):
        return False, "its thresholds are not calibrated"
    tolerance = float(entry.get("tolerance", INT8_TOLERANCE))
    ok, why = int8_within_tolerance(entry.get("accuracy") or {}, tolerance)
    return ok, ("accuracy within tolerance: " if ok else "accuracy loss too large: ") + why
