"""Behaviour unchanged: the shipped model (models/hirqa-s) gives the recorded scores, embeddings'
norms and fault probabilities on fixed crops of the sample photos, with ONNX Runtime fp32 and int8
on the CPU (one intra-op thread, so the reduction order is fixed); the one card writer rewrites its
cards byte for byte.

The values in test/data/shipped_scores.json were recorded with the code before the model-directory
refactor of issue 27 (``python test/test_core_shipped_scores.py --record``). ONNX Runtime on one
CPU thread is deterministic, so the comparison is exact (no tolerance) on the machine that recorded
them; another CPU (other SIMD kernels) may differ in the last bits, hence RECORDED_ON.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "hirqa-s"
SAMPLES = ROOT / "hirqa_ros" / "data" / "samples"
RECORD = ROOT / "test" / "data" / "shipped_scores.json"
# (photo, top, left, height, width): fixed crops, two per photo, of different shapes
CROPS = [(name, *box) for name in ("boats", "dune", "fig", "sunset", "wine")
         for box in ((0, 0, 224, 224), (40, 64, 256, 320))]


def _frames() -> list[np.ndarray]:
    from hirqa_ros.files import read_image

    frames = []
    for name, top, left, h, w in CROPS:
        rgb = read_image(SAMPLES / f"{name}.jpg")
        frames.append(np.ascontiguousarray(rgb[top:top + h, left:left + w]))
    return frames


def _measure(precision: str) -> dict[str, list[float]]:
    from hirqa_ros.scorer import load_scorer

    scorer = load_scorer(MODEL, backend="onnxruntime", device="cpu", precision=precision,
                         input_policy="native", threads=1, batch_size=1)
    out = {"scores": [], "embedding_norms": [], "fault_probs": []}
    for frame in _frames():
        inf = scorer.infer([frame])
        out["scores"].append(float(inf.scores[0]))
        if inf.embeddings is not None:
            out["embedding_norms"].append(float(np.linalg.norm(inf.embeddings[0].astype(np.float64))))
        if inf.fault_probs is not None:
            out["fault_probs"].append([float(p) for p in inf.fault_probs[0]])
    return out


def _record() -> None:
    doc = {"recorded_on": platform.machine(), "crops": CROPS,
           "fp32": _measure("fp32"), "int8": _measure("int8")}
    RECORD.write_text(json.dumps(doc, indent=1) + "\n")  # json writes floats with full (repr) precision
    print(f"wrote {RECORD}")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_shipped_model_scores_are_unchanged(precision):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e \".[cpu]\")")
    if not (MODEL / "model.onnx").is_file():
        pytest.skip("models/hirqa-s is not in this checkout")
    recorded = json.loads(RECORD.read_text())
    if recorded["recorded_on"] != platform.machine():
        pytest.skip(f"values recorded on {recorded['recorded_on']}, this is {platform.machine()}")
    assert [list(c) for c in CROPS] == recorded["crops"]
    now = _measure(precision)
    assert len(now["scores"]) == len(CROPS)
    # bit-identical: the same floats, not merely close
    assert now == recorded[precision]


def test_the_card_writer_reproduces_the_shipped_cards(tmp_path):
    """``artifacts.update_card`` (the one writer) rewrites the shipped model's card unchanged: the
    same ``model.yaml`` and ``MODEL_CARD.md``, byte for byte (the sections after the file table kept)."""
    import shutil

    from hirqa_ros.artifacts import CARD_FILE, HUMAN_CARD_FILE, load_artifact, update_card

    if not (MODEL / CARD_FILE).is_file():
        pytest.skip("models/hirqa-s is not in this checkout")
    d = tmp_path / "m"
    d.mkdir()
    for name in (CARD_FILE, HUMAN_CARD_FILE):
        shutil.copyfile(MODEL / name, d / name)
    update_card(d, load_artifact(MODEL).card)
    for name in (CARD_FILE, HUMAN_CARD_FILE):
        assert (d / name).read_bytes() == (MODEL / name).read_bytes(), name


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        _record()
    else:
        print(__doc__)
