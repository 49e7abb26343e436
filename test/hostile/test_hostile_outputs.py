"""Outputs are replaced only by complete outputs: import-official refuses an existing model directory
without --force and replaces it whole with it; export edits a model directory on a staged copy;
make-bag replaces a bag and its labels together; real SIGINT/SIGTERM at random points never leave a
partial result in place of a complete one."""
from __future__ import annotations

import os
import random
import shutil
import signal
import time

import pytest
import yaml
from helpers_bag import write_images
from helpers_hostile import (
    can_drop_permissions,
    leftovers,
    one_line_error,
    run_hirqa,
    start_hirqa,
    tree_digest,
)

from hirqa_ros.artifacts import load_artifact

#: about the wall time of `export --refresh` of the test model on a loaded 2-core machine
EXPORT_SECONDS = 12.0
#: 0 (done before the signal), 130/143 (stopped by it), or -2/-15 when it lands while the interpreter shuts
#: down, where Python gives signals their default action back (a shell shows 130/143 for those too)
STOPPED = (0, 130, 143, -signal.SIGINT, -signal.SIGTERM)
SEED = int(os.environ.get("HIRQA_HOSTILE_SEED", time.time_ns() % 1_000_000))  # set it to replay a run
RNG = random.Random(SEED)


@pytest.fixture(scope="module")
def checkpoint(random_model_dir, tmp_path_factory):
    """An authors'-format checkpoint (fp32 tensors) of the random test weights."""
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
    sd = torch.load(random_model_dir / "weights.pth", map_location="cpu", weights_only=True)
    plain = {k: v.float() if v.is_floating_point() else v for k, v in sd["model_state_dict"].items()}
    path = tmp_path_factory.mktemp("ckpt") / "HiRQA-S.pth"
    torch.save({"model_state_dict": plain}, path)
    return path


def _calibrated_model(random_model_dir, dst):
    """A model directory as shipped: calibrated card, an int8 model and a fault head beside it."""
    shutil.copytree(random_model_dir, dst)
    card = yaml.safe_load((dst / "model.yaml").read_text())
    card["thresholds"] = {"warn": 0.61, "error": 0.42, "calibrated": True}
    (dst / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    (dst / "model.int8.onnx").write_bytes(b"int8 model of the earlier weights")
    (dst / "fault_head.npz").write_bytes(b"fault head of the earlier weights")
    return dst


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_import_official_refuses_an_existing_model_dir_without_force(tmp_path, random_model_dir, checkpoint):
    model = _calibrated_model(random_model_dir, tmp_path / "model")
    before = tree_digest(model)
    p = run_hirqa("import-official", "--ckpt", checkpoint, "--variant", "hirqa-s", "--out", model)
    assert p.returncode == 2 and one_line_error(p.stderr), p.stderr
    assert "--force" in p.stderr and "model.int8.onnx" in p.stderr and "fault_head.npz" in p.stderr
    assert tree_digest(model) == before
    p = run_hirqa("import-official", "--ckpt", checkpoint, "--variant", "hirqa-s", "--out", model, "--force")
    assert p.returncode == 0, p.stderr
    names = sorted(x.name for x in model.iterdir())
    assert names == ["MODEL_CARD.md", "model.onnx", "model.yaml", "weights.pth"]  # nothing stale beside it
    assert load_artifact(model).card["thresholds"]["calibrated"] is False and leftovers(tmp_path) == []


@pytest.mark.skipif(not can_drop_permissions(), reason="running as root without setpriv")
@pytest.mark.parametrize("what", ["--refresh", "--int8"])
def test_export_onto_a_read_only_model_dir_is_one_line(tmp_path, random_model_dir, what):
    model = shutil.copytree(random_model_dir, tmp_path / "model")
    before = tree_digest(model)
    os.chmod(model, 0o555)
    try:
        p = run_hirqa("export", "--model", model, what, "--calib-images", tmp_path, unprivileged=True)
    finally:
        os.chmod(model, 0o755)
    assert p.returncode == 2 and one_line_error(p.stderr), p.stderr
    assert "Permission denied" in p.stderr or "read-only" in p.stderr
    assert tree_digest(model) == before and leftovers(tmp_path) == []


def _interrupt_at_random(args, seconds, sig):
    """Start ``hirqa args``, send ``sig`` after a random part of ``seconds`` (its uninterrupted time)."""
    delay = RNG.uniform(0.3, 1.0) * seconds
    p = start_hirqa(*args, stdout=open(os.devnull, "w"))
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=300)
    return p.returncode, err, delay


def _timed(args):
    t0 = time.monotonic()
    p = run_hirqa(*args)
    assert p.returncode == 0, p.stderr
    return time.monotonic() - t0


@pytest.mark.slow
def test_export_interrupted_at_random_points_leaves_old_or_complete_model(tmp_path, random_model_dir):
    model = _calibrated_model(random_model_dir, tmp_path / "model")
    (model / "model.int8.onnx").unlink()
    (model / "fault_head.npz").unlink()
    args = ("export", "--model", model, "--refresh")
    seconds = EXPORT_SECONDS  # signals spread over about one run (a later one finds it done: rc 0)
    for sig in (signal.SIGINT, signal.SIGTERM):
        before = tree_digest(model)
        rc, err, delay = _interrupt_at_random(args, seconds, sig)
        where = f"{sig.name} after {delay:.2f} s of {seconds:.1f} s (seed {SEED}): rc {rc}\n{err}"
        assert rc in STOPPED and "Traceback" not in err, where
        if tree_digest(model) != before:
            load_artifact(model)  # a changed directory is a complete one: every sha256 matches its card
        assert leftovers(tmp_path) == [], where


@pytest.mark.slow
def test_make_bag_interrupted_at_random_points_leaves_old_or_complete_bag(tmp_path):
    """Each run asks for another length (10, 20, 30 frames; other labels): afterwards the bag and its
    labels are those of one complete run, never a new bag with old labels or a partial bag."""
    from hirqa_ros.bag.reader import BagReader
    from hirqa_ros.cli.main import main

    photos = write_images(tmp_path / "photos", 2)
    out, labels = tmp_path / "bag", tmp_path / "bag.labels.yaml"

    def args(seconds, where=out):
        return ("make-bag", "--images", photos, "--out", where, "--size", "64x48", "--duration", seconds,
                "--rate", "10", "--force")

    expected = {}  # labels text -> frames, of complete runs (made in this process: no signal)
    for seconds in ("1", "2", "3"):
        assert main([str(a) for a in args(seconds, tmp_path / "ref" / seconds)]) == 0
        expected[(tmp_path / "ref" / f"{seconds}.labels.yaml").read_text()] = 10 * int(seconds)
    wall = _timed(args("1"))
    for sig, seconds in ((signal.SIGINT, "2"), (signal.SIGTERM, "3")):
        before = tree_digest(out), labels.read_text()
        rc, err, delay = _interrupt_at_random(args(seconds), wall, sig)
        where = f"{sig.name} after {delay:.2f} s of {wall:.1f} s (seed {SEED}): rc {rc}\n{err}"
        assert rc in STOPPED and "Traceback" not in err, where
        now = tree_digest(out), labels.read_text()
        if now != before:  # replaced: a complete bag with its own labels, together
            assert now[1] in expected and now[1] != before[1], where
            assert sum(1 for _ in BagReader(out).messages()) == expected[now[1]], where
        assert leftovers(tmp_path) == [], where
