"""Training ladders in a camera's physical order (training/data/physical.py): a noise floor on every rung,
faults sorted along the light path, both samplers; older configs draw the same batches as before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from hirqa_ros.degradations.physical import COMPRESSION, FLOOR, SCENE, order_steps, split_around, stage
from hirqa_ros.training.data.device_ladders import DeviceLadderSampler
from hirqa_ros.training.data.ladders import LadderSampler, SamplerConfig
from hirqa_ros.training.fit.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLERS = [
    pytest.param(LadderSampler, {}, id="host"),
    # the device sampler runs on any torch device; CPU here (no CUDA on the test machine)
    pytest.param(DeviceLadderSampler, {"prefetch": 0}, id="device-on-cpu"),
]


def textured_photos() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for h, w in ((160, 200), (180, 150)):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 1.3) % 256, (yy * 0.9 + xx * 0.2) % 256, (xx * yy / 97) % 256], -1)
        out.append(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))
    return out


def flat_photos() -> list[np.ndarray]:
    return [np.full((120, 140, 3), 128, np.uint8), np.full((100, 130, 3), 90, np.uint8)]


def ladders(cls, kw, types, physical, photos=None, floor=(0.5, 3.0), seed=1):
    cfg = SamplerConfig(ladders=2, per_type=2, crop_sizes=(64,), types=types, composition_prob=0.0,
                        physical_order=physical, noise_floor=floor)
    b = cls(photos or flat_photos(), cfg, seed=seed, device="cpu", **kw).next()
    n, L = b.shape
    return b.images.reshape(n, L, *b.images.shape[1:]).double() * 255.0  # (n, L, 3, H, W) grey levels


def residual(img: torch.Tensor) -> torch.Tensor:
    """Deviation of a flat crop from its mean, per channel (its noise)."""
    return img - img.mean(dim=(-2, -1), keepdim=True)


def lag1_corr(r: torch.Tensor) -> float:
    a, b = r[..., :, :-1].flatten(), r[..., :, 1:].flatten()
    return float((a * b).mean() / (a.std() * b.std()))


def test_stages_follow_the_light():
    assert stage("defocus") == stage("haze") == stage("motionblur") == stage("shake") == SCENE
    assert stage("low_light") < FLOOR < stage("whitenoise") < stage("colordiff") < stage("jpeg")
    assert stage("jpeg_camera") == COMPRESSION
    steps = [("jpeg", 2), ("whitenoise", 1), ("gaublur", 3), ("darken", 1)]
    assert [t for t, _ in order_steps(steps)] == ["gaublur", "darken", "whitenoise", "jpeg"]
    before, after = split_around(steps, "defocus")
    assert [t for t, _ in before] == ["gaublur"] and [t for t, _ in after] == ["darken", "whitenoise", "jpeg"]


@pytest.mark.parametrize("cls,kw", SAMPLERS)
def test_noise_floor_on_clean_frames(cls, kw):
    old = ladders(cls, kw, ("defocus",), physical=False)
    assert float(residual(old[:, 0]).std()) == 0.0  # a flat photo stays flat without the floor
    new = ladders(cls, kw, ("defocus",), physical=True, floor=(2.0, 2.0))
    sd = residual(new[:, 0]).std(dim=(-3, -2, -1))  # level 0 of every ladder
    assert torch.all((sd > 1.6) & (sd < 2.4)), sd


@pytest.mark.parametrize("cls,kw", SAMPLERS)
def test_blur_comes_before_the_sensor_noise(cls, kw):
    lad = ladders(cls, kw, ("defocus",), physical=True, floor=(2.0, 2.0))
    clean, blurred = residual(lad[:, 0, :, 8:-8, 8:-8]), residual(lad[:, 5, :, 8:-8, 8:-8])
    # noise added after the defocus is as strong and as white as on the clean rung; blurred noise
    # (the wrong order) would be weaker and correlated between neighbouring pixels
    assert float(blurred.std()) > 0.85 * float(clean.std())
    assert abs(lag1_corr(blurred)) < 0.15
    # the same field on every rung (a flat photo barely changes under a mild defocus): only the
    # fault differs along the ladder
    assert float((lad[:, 0] - lad[:, 1]).abs().max()) <= 1.0


@pytest.mark.parametrize("cls,kw", SAMPLERS)
def test_jpeg_comes_after_the_sensor_noise(cls, kw):
    lad = ladders(cls, kw, ("jpeg",), physical=True, floor=(3.0, 3.0))

    def in_block_std(img: torch.Tensor) -> float:  # grey-level spread inside the codec's 8x8 blocks
        grey = img.mean(dim=-3)
        blocks = grey.unfold(-2, 8, 8).unfold(-2, 8, 8)
        return float(blocks.std(dim=(-2, -1)).mean())

    # quality 4 keeps little more than each block's mean: the floor under it is coded away; a floor
    # added after the codec (the wrong order) would stay inside the blocks at full strength
    assert in_block_std(lad[:, 0]) > 1.2
    assert in_block_std(lad[:, 5]) < 0.5 * in_block_std(lad[:, 0])


def test_compositions_keep_the_order():
    cfg = SamplerConfig(ladders=4, per_type=2, crop_sizes=(48,), types=("defocus", "jpeg"),
                        composition_prob=1.0, max_prefix=3, physical_order=True)
    s = LadderSampler(textured_photos(), cfg, seed=5)
    for _ in range(2):
        b = s.next()
        assert torch.isfinite(b.images).all() and b.images.min() >= 0 and b.images.max() <= 1
        assert not b.pristine_base.any()  # composed ladders are still tagged as such


def _digest(cls, kw) -> str:
    cfg = SamplerConfig(ladders=4, per_type=2, crop_sizes=(48,),
                        types=("defocus", "jpeg", "whitenoise", "gaublur"), composition_prob=0.5,
                        max_prefix=2)
    s = cls(textured_photos(), cfg, seed=3, device="cpu", **kw)
    h = hashlib.sha256()
    for _ in range(3):
        b = s.next()
        h.update(b.images.numpy().tobytes())
        h.update(b.valid.numpy().tobytes())
    return h.hexdigest()


# sha256 of three batches drawn by the code before physical_order existed (commit c40b637, x86-64,
# torch 2.14 CPU): the option off must draw exactly the same float32 pixels
OLD_DIGESTS = {
    "LadderSampler": "355c72d6e673dc2873acee0a7378a0a7190cad032cf31feb8aa8d2aaf2f2ba6e",
    "DeviceLadderSampler": "29085aaeaccd1399d4a7a24be0268f5bafd7d3ec992aa9923c8e252005502449",
}


@pytest.mark.parametrize("cls,kw", SAMPLERS)
def test_old_configs_draw_old_batches(cls, kw):
    torch.set_num_threads(1)
    assert _digest(cls, kw) == OLD_DIGESTS[cls.__name__]


#: the round-3 training configs, in a camera's physical order; every older one keeps its order
PHYSICAL_CONFIGS = {"train_hirqa_s_r3.yaml", "train_hirqa_mnv2.yaml", "train_hirqa_mnv2_gpu.yaml",
                    "train_hirqa_lite0.yaml", "train_hirqa_s_distill.yaml", "train_hirqa_mnv2_continue.yaml"}


def test_existing_configs_keep_their_order_and_the_new_one_is_physical():
    for path in sorted((ROOT / "config").glob("train_*.yaml")):
        scfg = SamplerConfig.from_dict(load_config(path)["sampler"])
        assert scfg.physical_order == (path.name in PHYSICAL_CONFIGS), path.name
    with pytest.raises(ValueError, match="noise_floor"):
        SamplerConfig.from_dict({"noise_floor": [3.0, 1.0]})


def test_full_frame_evaluation_in_physical_order():
    from hirqa_ros.evaluation.synthetic import ProtocolConfig, build_protocol

    flat = [("flat", np.full((96, 128, 3), 120, np.uint8))]
    types = ["defocus", "jpeg"]
    plain = build_protocol(flat, types, ProtocolConfig(crop=0, resize_side=0, frame_sizes=((128, 96),)))
    assert np.ptp(plain.jobs[0][3]) == 0  # no floor: the clean frame is the photo
    cfg = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((128, 96),), noise_floor=1.5)
    jobs = {(t, lv): img.astype(np.float64) for _, t, lv, img in build_protocol(flat, types, cfg).jobs}
    clean = jobs[(-1, 0)] - jobs[(-1, 0)].mean()
    assert 1.2 < clean.std() < 1.8  # the clean frame carries the sensor floor
    blurred = jobs[(0, 5)][8:-8, 8:-8] - jobs[(0, 5)][8:-8, 8:-8].mean()
    assert blurred.std() > 0.85 * clean.std()  # floor after the defocus: not blurred away
    a, b = blurred[:, :-1].ravel(), blurred[:, 1:].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15
    with pytest.raises(ValueError):
        ProtocolConfig(noise_floor=-1.0)


@pytest.mark.slow
def test_hirqa_eval_physical_order_end_to_end(random_model_dir, tmp_path):
    import json

    import cv2

    from hirqa_ros.cli.main import main

    d = tmp_path / "val"
    d.mkdir()
    rng = np.random.default_rng(3)
    cv2.imwrite(str(d / "img0.png"), cv2.GaussianBlur(rng.integers(0, 256, (100, 140, 3), dtype=np.uint8),
                                                      (0, 0), 2.0))
    reports = {}
    for flag in ([], ["--physical-order"], ["--physical-order", "2.5"]):
        out = tmp_path / f"r{len(flag)}.json"
        rc = main(["eval", "--full-frame", "--model", str(random_model_dir), "--backend", "onnxruntime",
                   "--images", str(d), "--frame-sizes", "128x96", "--types", "defocus", "jpeg", "--no-cues",
                   "--json", str(out), "--no-progress", *flag])
        assert rc == 0
        reports[tuple(flag)] = json.loads(out.read_text())["synthetic"]["summaries"]["model"]
    floors = [r["config"]["noise_floor"] for r in reports.values()]
    assert floors == [0.0, 1.5, 2.5]
    means = [r["per_type"]["defocus"]["mean_score_by_level"] for r in reports.values()]
    assert means[0] != means[1] != means[2]  # the frames scored differ


def test_noise_floor_range_draws_one_sigma_per_view():
    from hirqa_ros.evaluation.synthetic import ProtocolConfig, build_protocol, floor_sigma

    flat = [(f"flat{i}", np.full((96, 128, 3), 120, np.uint8)) for i in range(6)]
    cfg = ProtocolConfig(crop=0, resize_side=0, frame_sizes=((128, 96),), noise_floor=0.5,
                         noise_floor_max=3.0)
    sigmas = [floor_sigma(0.5, 3.0, 0, v) for v in range(6)]
    assert all(0.5 <= s <= 3.0 for s in sigmas) and np.ptp(sigmas) > 0.5  # drawn, not fixed
    assert floor_sigma(1.5, 0.0, 0, 3) == 1.5  # no range: the fixed sigma
    clean = {v: img.astype(np.float64) for v, t, _, img in build_protocol(flat, ["jpeg"], cfg).jobs if t < 0}
    measured = [clean[v].std() for v in range(6)]
    assert np.corrcoef(measured, sigmas)[0, 1] > 0.95  # each clean frame carries its own view's floor
    with pytest.raises(ValueError):
        ProtocolConfig(noise_floor=2.0, noise_floor_max=1.0)


def test_transport_jpeg_is_the_last_stage_of_every_frame():
    from hirqa_ros.degradations.compression import jpeg_u8
    from hirqa_ros.evaluation.synthetic import ProtocolConfig, build_protocol

    rng = np.random.default_rng(5)
    photo = [("p", cv2_blur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)))]
    kw = dict(crop=0, resize_side=0, frame_sizes=((128, 96),), noise_floor=1.5)
    raw = build_protocol(photo, ["defocus", "whitenoise"], ProtocolConfig(**kw)).jobs
    topic = build_protocol(photo, ["defocus", "whitenoise"], ProtocolConfig(**kw, transport_jpeg=60)).jobs
    assert [j[:3] for j in raw] == [j[:3] for j in topic]
    for (_, _, _, a), (_, _, _, b) in zip(raw, topic):
        np.testing.assert_array_equal(jpeg_u8(a, 60), b)  # the same frame, then the topic's JPEG
        assert not np.array_equal(a, b)  # clean frames included
    for bad in (-1, 101):
        with pytest.raises(ValueError, match="transport_jpeg"):
            ProtocolConfig(transport_jpeg=bad)


def cv2_blur(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(img, (0, 0), 1.5)


@pytest.mark.slow
def test_heads_embed_physical_order(random_model_dir, tmp_path):
    import json

    import cv2

    from hirqa_ros.cli.heads import floor_range
    from hirqa_ros.cli.main import main
    from hirqa_ros.training.heads.embeddings import load

    assert floor_range("1.5") == (1.5, 1.5) and floor_range("0.5:3") == (0.5, 3.0)
    with pytest.raises(ValueError, match="LO <= HI"):
        floor_range("3:1")
    d = tmp_path / "train"
    d.mkdir()
    cv2.imwrite(str(d / "img0.png"), np.random.default_rng(3).integers(0, 256, (100, 140, 3), dtype=np.uint8))
    runs = {}
    for name, flag in (("plain", []), ("physical", ["--physical-order"]),
                       ("topic", ["--physical-order", "--transport-jpeg", "50"])):
        out = tmp_path / f"{name}.npz"
        rc = main(["heads", "embed", "--images", str(d), "--model", str(random_model_dir),
                   "--types", "defocus", "--frame-sizes", "128x96", "--threads", "1", "--no-cues",
                   "--cache-dir", str(tmp_path / "c"), "--out", str(out), *flag])
        assert rc == 0
        runs[name] = load(out)
    ps, emb = runs["physical"]
    assert (ps.config.noise_floor, ps.config.noise_floor_max) == (0.5, 3.0)
    assert emb.shape == (1, 1, 6, emb.shape[-1]) and list(ps.scores) == ["model"]
    assert not np.allclose(emb, runs["plain"][1])  # the floor changed the frames
    assert runs["topic"][0].config.transport_jpeg == 50 and not np.allclose(emb, runs["topic"][1])
    assert main(["heads", "embed", "--images", str(d), "--out", str(tmp_path / "x.npz"),
                 "--physical-order", "0:2"]) == 2
    assert main(["heads", "embed", "--images", str(d), "--out", str(tmp_path / "y.npz"),
                 "--pristine-only", "2", "--transport-jpeg", "90"]) == 2
    assert json.loads(bytes(np.load(tmp_path / "plain.npz")["meta"]).decode())["config"]["noise_floor"] == 0.0
