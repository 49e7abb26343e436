"""scripts/bag_embeddings.py + scripts/replay_gate.py --heads: other heads replayed on a real bag-eval run
of the shipped model. The model's own heads reproduce the run's decision on every frame; other heads
change it."""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bag_embeddings import record  # noqa: E402
from replay_gate import Run, heads_thresholds  # noqa: E402

from hirqa_ros.reference import ReferenceParams  # noqa: E402


def _bag(tmp_path: Path):
    import cv2

    import hirqa_ros
    from hirqa_ros.bag.make_bag import SegmentSpec, make_bag

    samples = sorted((Path(hirqa_ros.__file__).parent / "data" / "samples").glob("*.jpg"))
    photos = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in samples[:2]]
    segs = [SegmentSpec(2.0, 3.0, "haze", 4), SegmentSpec(4.0, 5.0, "gaublur", 4, "blur")]
    return make_bag(tmp_path / "bag", frames_from=photos, size=(320, 240), rate_hz=5, duration_s=6.0,
                    segments=segs, labels_out=tmp_path / "bag.labels.yaml", hold_frames=15)


def _heads(model_dir: Path, out: Path, weight_scale: float = 1.0) -> Path:
    from hirqa_ros.artifacts import load_artifact

    sd = load_artifact(model_dir).state_dict()
    out.mkdir()
    np.savez(out / "score_head.npz", weight=sd["fc.0.weight"].float().numpy().reshape(-1) * weight_scale,
             bias=np.float32(sd["fc.0.bias"].float().numpy()[0]))
    shutil.copy(model_dir / "fault_head.npz", out / "fault_head.npz")
    return out


@pytest.mark.slow
def test_own_heads_reproduce_the_run_and_other_heads_change_it(tmp_path, default_model_dir):
    from hirqa_ros import load_scorer
    from hirqa_ros.bag.evaluate import evaluate_bag

    if not (Path(default_model_dir) / "fault_head.npz").exists():
        pytest.skip("the installed model has no fault head")
    made = _bag(tmp_path)
    sc = load_scorer(default_model_dir, backend="onnxruntime", device="cpu", batch_size=1)
    evaluate_bag(made.path, tmp_path / "run", labels=made.labels_path, scorer=sc, progress=False)
    n = record(str(made.path), str(tmp_path / "emb.npz"), str(default_model_dir))
    assert n == 30
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["thresholds"]
    prefix = str(made.path)

    own = Run(tmp_path / "run", prefix)
    recorded = [(r["score"], r["level"]) for r in own.rows]
    assert own.swap_heads(tmp_path / "emb.npz", _heads(Path(default_model_dir), tmp_path / "own")) == n
    np.testing.assert_allclose([r["score"] for r in own.rows], [s for s, _ in recorded], atol=1e-5)
    rows = own.replay(replace(ReferenceParams()))
    assert [r.level for r in rows] == [lv for _, lv in recorded]  # every frame's decision reproduced

    other = Run(tmp_path / "run", prefix)
    other.swap_heads(tmp_path / "emb.npz", _heads(Path(default_model_dir), tmp_path / "neg", -1.0))
    assert max(abs(a["score"] - s) for a, (s, _) in zip(other.rows, recorded)) > 0.05
    given = heads_thresholds(str(tmp_path / "own"), f"{summary['warn']},{summary['error']}")
    assert (given.warn, given.error) == (summary["warn"], summary["error"])
