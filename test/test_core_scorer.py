"""The Scorer: backend choice and its log, crop averaging, default-model lookup, torch-free ORT path."""

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hirqa_ros import artifacts, load_scorer
from hirqa_ros.backends import BackendUnavailable, cuda_status, probe, try_import
from hirqa_ros.preprocess import InputPolicy, group_views, stage

ROOT = Path(__file__).resolve().parents[1]


def _frames():
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(64, 64), (96, 128), (64, 64)]]


def test_auto_picks_onnxruntime_here_and_says_why(random_model_dir, caplog):
    if try_import("tensorrt")[0] is not None or cuda_status()[0]:
        pytest.skip("this machine has TensorRT or CUDA: auto legitimately picks a GPU backend")
    with caplog.at_level(logging.INFO, logger="hirqa_ros"):
        scorer = load_scorer(random_model_dir)
    assert scorer.backend == "onnxruntime"
    text = caplog.text
    assert "chose onnxruntime" in text
    assert "tensorrt: not installed" in text
    assert "CUDA not available" in text or "torch not installed" in text


def test_scorer_attributes_and_levels(random_model_dir):
    scorer = load_scorer(random_model_dir, backend="onnxruntime")
    assert scorer.model_dir == Path(random_model_dir).resolve()
    assert scorer.input_policy == InputPolicy.parse("native")
    assert scorer.thresholds.warn == 0.5 and scorer.thresholds.error == 0.3
    scores = scorer.score(_frames())
    assert scores.dtype == np.float32 and scores.shape == (3,)
    assert ((scores > 0) & (scores < 1)).all()
    assert scorer.score([]).shape == (0,)
    assert scorer.level(0.9).name == "OK" and scorer.level(0.1).name == "ERROR"


def test_same_frame_same_score_across_batching(random_model_dir):
    frames = _frames()
    one = load_scorer(random_model_dir, backend="onnxruntime", batch_size=1).score(frames)
    many = load_scorer(random_model_dir, backend="onnxruntime", batch_size=8).score(frames)
    np.testing.assert_allclose(one, many, atol=1e-5)
    single = load_scorer(random_model_dir, backend="onnxruntime").score_one(frames[1])
    assert single == pytest.approx(float(many[1]), abs=1e-5)


def test_crop_scores_are_averaged_per_frame(random_model_dir):
    frames = _frames()[:2]
    scorer = load_scorer(random_model_dir, backend="onnxruntime", input_policy="crops:3x48", batch_size=2)
    got = scorer.score(frames)
    (group,) = group_views(frames, "crops:3x48")
    staged = stage(group.views, group.bgr, np.empty((6, 48, 48, 3), np.uint8))
    per_crop, per_crop_emb = scorer.impl.infer(staged)
    expected = [per_crop[group.owners == i].mean() for i in range(2)]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert str(scorer.input_policy) == "crops:3x48"
    emb = scorer.infer(frames).embeddings
    np.testing.assert_allclose(emb[1], per_crop_emb[group.owners == 1].mean(axis=0), atol=1e-5)


def test_infer_returns_scores_and_embeddings_beside_score(random_model_dir):
    scorer = load_scorer(random_model_dir, backend="onnxruntime")
    frames = _frames()
    out = scorer.infer(frames)
    assert out.scores.dtype == np.float32 and out.scores.shape == (3,)
    assert out.embeddings.dtype == np.float32 and out.embeddings.shape == (3, 1024)
    np.testing.assert_array_equal(out.scores, scorer.score(frames))
    assert not np.allclose(out.embeddings[0], out.embeddings[1])
    empty = scorer.infer([])
    assert empty.scores.shape == (0,) and empty.embeddings is None


def test_staging_buffers_are_reused_across_calls(random_model_dir):
    scorer = load_scorer(random_model_dir, backend="onnxruntime")
    frames = _frames()
    scorer.score(frames)
    first = scorer.staging.allocations
    for _ in range(3):
        scorer.score(frames)
    assert first >= 1 and scorer.staging.allocations == first


def test_bgr_input(random_model_dir):
    scorer = load_scorer(random_model_dir, backend="onnxruntime")
    f = _frames()[1]
    assert scorer.score([f[:, :, ::-1]], bgr=True)[0] == pytest.approx(scorer.score([f])[0], abs=1e-6)
    contiguous_bgr = np.ascontiguousarray(f[:, :, ::-1])
    both = scorer.score([contiguous_bgr, contiguous_bgr], bgr=True)
    np.testing.assert_allclose(both, scorer.score([f, f]), atol=1e-6)
    mixed = scorer.score([f, contiguous_bgr], bgr=[False, True])  # two cameras, two encodings
    np.testing.assert_allclose(mixed, scorer.score([f, f]), atol=1e-6)
    with pytest.raises(ValueError, match="bgr flags"):
        scorer.score([f, f], bgr=[True])


def test_unknown_backend_and_device_errors(random_model_dir):
    with pytest.raises(ValueError, match="unknown backend"):
        load_scorer(random_model_dir, backend="openvino")
    if not cuda_status()[0]:
        with pytest.raises(BackendUnavailable, match="torch"):
            load_scorer(random_model_dir, backend="torch", device="cuda")


@pytest.mark.parametrize("name", ["tensorrt", "torch2trt"])
def test_missing_gpu_backends_are_reported_with_a_reason(name, random_model_dir):
    p = probe(name)
    if p.ok:
        pytest.skip(f"{name} is usable here")
    assert p.reason  # e.g. "not installed" or "CUDA not available ..."
    with pytest.raises(BackendUnavailable, match=name):
        load_scorer(random_model_dir, backend=name)


def test_default_model_dir_env_var_pointing_at_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HIRQA_MODEL", str(tmp_path / "nothing"))
    with pytest.raises(artifacts.NoDefaultModelError, match="no default model is installed"):
        artifacts.default_model_dir()


def test_default_model_dir_search_and_message(tmp_path, monkeypatch, random_model_dir):
    monkeypatch.delenv("HIRQA_MODEL", raising=False)
    monkeypatch.setattr(artifacts, "default_model_candidates", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(artifacts.NoDefaultModelError) as exc:
        load_scorer()
    msg = str(exc.value)
    assert "No default model is installed" in msg and "import-official" in msg and str(tmp_path / "a") in msg
    monkeypatch.setenv("HIRQA_MODEL", str(random_model_dir))
    assert artifacts.default_model_dir() == Path(random_model_dir).resolve()


def test_default_model_fixture_loads_when_installed(default_model_dir):
    art = artifacts.load_artifact(default_model_dir)
    assert art.card["name"] != "random-test-weights", "random weights must never be the default model"
    assert sum(p.stat().st_size for p in Path(default_model_dir).iterdir()) < 80e6


def test_onnxruntime_path_works_without_torch(random_model_dir):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import hirqa_ros.scorer
        from hirqa_ros import load_scorer
        from hirqa_ros.backends import probe
        s = load_scorer({str(random_model_dir)!r})
        assert s.backend == "onnxruntime", s.backend
        out = s.score([np.zeros((40, 50, 3), np.uint8)])
        assert out.shape == (1,) and 0 < out[0] < 1
        assert probe("torch").reason == "not installed", probe("torch")
        assert not [m for m in sys.modules if m.startswith(("torch.", "torchvision"))]
        print("ok", float(out[0]))
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")


def test_auto_with_fp16_on_cpu_falls_back_to_fp32(random_model_dir):
    if try_import("tensorrt")[0] is not None or cuda_status()[0]:
        pytest.skip("this machine has TensorRT or CUDA: fp16 is available there")
    scorer = load_scorer(random_model_dir, precision="fp16")
    assert scorer.backend == "onnxruntime" and scorer.precision == "fp32"


@pytest.mark.slow
def test_auto_falls_back_to_torch_cpu_without_onnxruntime(random_model_dir):
    pytest.importorskip("torch", reason="torch not installed")
    if try_import("tensorrt")[0] is not None or cuda_status()[0]:
        pytest.skip("this machine has TensorRT or CUDA: auto picks those first")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["onnxruntime"] = None
        import logging
        logging.basicConfig(level=logging.INFO)
        import numpy as np
        from hirqa_ros import load_scorer
        s = load_scorer({str(random_model_dir)!r})
        assert (s.backend, s.device) == ("torch", "cpu"), (s.backend, s.device)
        print("ok", float(s.score([np.zeros((40, 50, 3), np.uint8)])[0]))
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "onnxruntime: not installed" in res.stderr


def _sample_photos():
    folder = ROOT / "hirqa_ros" / "data" / "samples"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_default_model_ranks_heavy_blur_and_noise_below_the_photo(default_model_dir):
    import cv2

    from hirqa_ros.media import read_image

    photos = _sample_photos()
    if not photos:
        pytest.skip("no sample photos in hirqa_ros/data/samples")
    scorer = load_scorer(default_model_dir, backend="onnxruntime", input_policy="max-side:512")
    rng = np.random.default_rng(0)
    for path in photos[:4]:
        rgb = read_image(path)
        blurred = cv2.GaussianBlur(rgb, (0, 0), 5)
        noisy = np.clip(rgb + rng.normal(0, 40, rgb.shape), 0, 255).astype(np.uint8)
        s_orig, s_blur, s_noise = scorer.score([rgb, blurred, noisy])
        assert s_blur < s_orig and s_noise < s_orig, (path.name, s_orig, s_blur, s_noise)


def test_default_model_torch_and_onnxruntime_agree(default_model_dir):
    pytest.importorskip("torch", reason="torch not installed")
    frames = _frames()
    a = load_scorer(default_model_dir, backend="torch", device="cpu").score(frames)
    b = load_scorer(default_model_dir, backend="onnxruntime").score(frames)
    assert np.abs(a - b).max() <= 1e-4
