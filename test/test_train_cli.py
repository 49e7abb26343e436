"""`hirqa train` on the tiny CI config: a few CPU steps on generated images, a checkpoint, and an exact
resume (4 steps == 2 steps + resume 2 steps: same weights, optimizer and RNG states)."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e \".[train]\")")
cv2 = pytest.importorskip("cv2", reason="OpenCV not installed (a core dependency: pip install -e .)")

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "train_tiny.yaml"
SHIPPED = ROOT / "models" / "hirqa-s"


def _photo_like(rng, size=96):
    """Smooth random structure plus fine texture (not a real photo, but it has edges and noise)."""
    base = cv2.resize(
        rng.uniform(0, 255, (6, 6, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
    )
    edges = (rng.uniform(0, 1, (size, size, 1)) > 0.5) * 40.0
    edges = cv2.GaussianBlur(
        cv2.resize(edges[::8, ::8], (size, size), interpolation=cv2.INTER_NEAREST), (3, 3), 0
    )
    img = base + edges[..., None] + rng.normal(0, 4, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_cli")
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        (d / split).mkdir()
        for i in range(n):
            cv2.imwrite(str(d / split / f"img{i}.jpg"), _photo_like(rng))
    (d / "train" / "broken.jpg").write_bytes(b"not a jpeg")  # reported and skipped
    return d


def _cfg(workdir, **train):
    from hirqa_ros.training.fit.trainer import load_config

    return load_config(
        TINY,
        {
            "data": {"train": str(workdir / "train"), "val": str(workdir / "val")},
            "text": {"cache_dir": str(workdir / "text_cache")},
            "train": train,
        },
    )


@pytest.mark.slow
def test_cli_runs_and_checkpoints(workdir, capsys):
    from hirqa_ros.cli.main import main

    out = workdir / "run_cli"
    args = [
        "train",
        "--config",
        str(TINY),
        "--out",
        str(out),
        "--train-dir",
        str(workdir / "train"),
        "--val-dir",
        str(workdir / "val"),
        "--max-steps",
        "2",
        "--device",
        "cpu",
        "--no-progress",
    ]
    # the tiny config's text cache is relative (data/cache/text): run from the work folder
    import os

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        assert main(args) == 0
        assert main(args) == 2  # refuses to overwrite a run without --resume
    finally:
        os.chdir(cwd)
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "final.pt").is_file()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,elapsed_s,lr,loss,rank") and len(rows) == 3
    assert "val pooled AUROC" in capsys.readouterr().out


@pytest.mark.slow
def test_resume_is_exact(workdir):
    from hirqa_ros.training.fit.trainer import load_checkpoint, train

    a = train(_cfg(workdir), workdir / "a", device="cpu", progress=False)
    b1 = train(_cfg(workdir), workdir / "b", device="cpu", stop_at=2, progress=False)
    assert b1["step"] == 2 and not b1["finished"] and not (workdir / "b" / "final.pt").exists()
    b = train(_cfg(workdir), workdir / "b", resume=True, device="cpu", progress=False)
    assert a["step"] == b["step"] == 4 and b["finished"]
    ca, cb = (load_checkpoint(workdir / r / "checkpoints" / "last.pt") for r in ("a", "b"))
    for k, v in ca["net"].items():
        assert torch.equal(v, cb["net"][k]), k
    sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert ca["scheduler"] == cb["scheduler"]
    assert torch.equal(ca["rng"][0]["torch"], cb["rng"][0]["torch"])
    assert ca["sampler"][0]["rng"] == cb["sampler"][0]["rng"]
    # and the run actually trained: weights moved away from the initialisation
    init = train.__globals__["TrainNet"]("hirqa-s", 0)
    torch.manual_seed(0)
    assert not torch.equal(ca["net"]["model.fc.0.weight"], init.model.fc[0].weight.detach())


def test_resume_without_checkpoint_fails(workdir):
    from hirqa_ros.training.fit.trainer import train

    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(_cfg(workdir), workdir / "nothing", resume=True, device="cpu", progress=False)


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_init_from_keeps_lineage(workdir, random_model_dir):
    from hirqa_ros.training.fit.trainer import load_checkpoint, train

    s = train(
        _cfg(workdir, max_steps=1),
        workdir / "init",
        init_from=str(random_model_dir),
        device="cpu",
        progress=False,
    )
    assert s["init_from"] == str(random_model_dir)
    assert s["parent"]["name"] == "random-test-weights" and len(s["parent"]["weights_sha256"]) == 64
    assert s["lineage"] == [{"source": "torch.manual_seed(1234) + HiRQA('hirqa-s') default init"}]
    assert load_checkpoint(workdir / "init" / "checkpoints" / "last.pt")["init_from"] == str(random_model_dir)


def test_ship_card_appends_lineage(workdir, random_model_dir):
    from hirqa_ros.training.release import run as ship

    run = workdir / "init"
    if not (run / "summary.json").exists():
        pytest.skip("needs the run of test_init_from_keeps_lineage")
    card = ship.build_card(run, hardware_note="test machine")
    assert card["lineage"][0] == {"source": "torch.manual_seed(1234) + HiRQA('hirqa-s') default init"}
    new = card["lineage"][-1]
    assert new["parent"]["name"] == "random-test-weights" and new["hardware"] == "test machine"
    assert new["steps"] == 1 and card["training"]["init"].startswith("from ")
    assert card["thresholds"]["calibrated"] is False
    assert "## How this model was made" in ship.human_sections(card, None)


def test_init_from_training_checkpoint(workdir):
    from hirqa_ros.training.fit.trainer import train

    ckpt = workdir / "a" / "checkpoints" / "last.pt"
    if not ckpt.exists():
        pytest.skip("needs the run of test_resume_is_exact")
    s = train(
        _cfg(workdir, max_steps=1), workdir / "from_ckpt", init_from=str(ckpt), device="cpu", progress=False
    )
    assert s["parent"] == {"name": "tiny", "checkpoint": str(ckpt), "step": 4}
    assert s["lineage"][-1]["steps"] == 4 and s["lineage"][-1]["init"].startswith("from scratch")


def _embedding_drift(run_dir, init_dir, x):
    """Mean squared embedding change of the run's final model from the initial model, on images ``x``."""
    from hirqa_ros.training.fit.checkpoint import init_weights
    from hirqa_ros.training.fit.trainer import TrainNet

    nets = []
    for sd in (init_weights(str(init_dir))[0],
               torch.load(run_dir / "final.pt", weights_only=True)["model_state_dict"]):
        net = TrainNet("hirqa-s", 0)
        net.model.load_state_dict(sd)
        nets.append(net.eval())
    with torch.no_grad():
        e0, e1 = (n(x)[1] for n in nets)
    return float(((e1 - e0) ** 2).mean() / e0.var())


@pytest.mark.slow
def test_keep_loss_holds_a_continuation_near_its_init(workdir):
    """losses.keep: logged per step, needs --init-from, starts at 0 (the frozen teacher normalises with
    the same batch statistics as the student), and the embedding moves less from the initial model (the
    shipped model: random weights' batch-norm statistics swamp any loss in a few steps)."""
    import csv

    from hirqa_ros.training.fit.trainer import train

    x = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    drift = {}
    for keep in (0.0, 10.0):
        cfg = _cfg(workdir, max_steps=8, val_every=0)
        cfg["losses"]["keep"] = keep
        cfg["optim"]["lr"] = 0.001
        out = workdir / f"keep_{keep:g}"
        train(cfg, out, init_from=str(SHIPPED), device="cpu", progress=False)
        rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
        if keep:
            assert all(float(r["keep"]) >= 0 for r in rows) and len(rows) == 8
            assert float(rows[0]["keep"]) < 1e-6  # same weights, same batch: no distance yet
        else:
            assert "keep" not in rows[0]
        drift[keep] = _embedding_drift(out, SHIPPED, x)
    assert drift[10.0] < 0.85 * drift[0.0], drift
    cfg["losses"]["keep"] = 1.0
    with pytest.raises(ValueError, match="--init-from"):
        train(cfg, workdir / "keep_no_init", device="cpu", progress=False)


@pytest.fixture(scope="module")
def mnv2_teacher(tmp_path_factory):
    """A model directory on another trunk (MobileNetV2, seeded random weights) to distil from."""
    from hirqa_ros.export.model_dir import write_model_dir
    from hirqa_ros.model import HiRQA

    torch.manual_seed(7)
    out = tmp_path_factory.mktemp("teacher") / "random-mnv2"
    return write_model_dir(out, HiRQA("hirqa-mnv2").state_dict(), "hirqa-mnv2", {"name": "random-mnv2"})


def _teacher_distance(run_dir, teacher_dir, x):
    """teacher_loss of the run's final HiRQA-S against the teacher on images ``x`` (both in train mode,
    as the loss compares them)."""
    from hirqa_ros.training.fit.checkpoint import init_weights
    from hirqa_ros.training.fit.losses import teacher_loss
    from hirqa_ros.training.fit.trainer import TrainNet

    student, teacher = TrainNet("hirqa-s", 0), TrainNet("hirqa-mnv2", 0)
    student.model.load_state_dict(torch.load(run_dir / "final.pt", weights_only=True)["model_state_dict"])
    teacher.model.load_state_dict(init_weights(str(teacher_dir))[0])
    with torch.no_grad():
        (q, e, _), (q0, e0, _) = student.train()(x), teacher.train()(x)
    return float(teacher_loss(q, e, q0, e0))


@pytest.mark.slow
def test_distillation_moves_hirqa_s_towards_another_trunk(workdir, mnv2_teacher):
    """losses.distill with distill_from: HiRQA-S (from the shipped weights) learns a MobileNetV2 model's
    scores and embeddings: the term is logged, the student ends nearer the teacher than without it, and
    the run's summary and card lineage name the teacher."""
    import csv

    from hirqa_ros.training.fit.trainer import train
    from hirqa_ros.training.release.cards import init_text

    x = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    distance = {}
    for w in (0.0, 10.0):
        cfg = _cfg(workdir, max_steps=8, val_every=0)
        cfg["losses"]["distill"], cfg["distill_from"] = w, str(mnv2_teacher)
        cfg["optim"]["lr"] = 0.001
        out = workdir / f"distill_{w:g}"
        s = train(cfg, out, init_from=str(SHIPPED), device="cpu", progress=False)
        rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
        assert ("distill" in rows[0]) == bool(w)
        distance[w] = _teacher_distance(out, mnv2_teacher, x)
    assert distance[10.0] < 0.85 * distance[0.0], distance
    assert s["distilled_from"]["name"] == "random-mnv2" and s["distilled_from"]["variant"] == "hirqa-mnv2"
    assert "distilled from random-mnv2 (hirqa-mnv2" in init_text(s)


def test_distillation_needs_one_teacher(workdir, mnv2_teacher):
    from hirqa_ros.training.fit.trainer import train

    cfg = _cfg(workdir, max_steps=1)
    cfg["losses"]["distill"] = 1.0
    with pytest.raises(ValueError, match="distill_from"):
        train(cfg, workdir / "distill_no_teacher", device="cpu", progress=False)
    cfg["distill_from"], cfg["losses"]["keep"] = str(mnv2_teacher), 1.0
    with pytest.raises(ValueError, match="set one of them"):
        train(cfg, workdir / "distill_and_keep", init_from=str(SHIPPED), device="cpu", progress=False)


def test_teacher_flag_refuses_a_resume(tmp_path):
    from hirqa_ros.cli.main import main

    assert main(["train", "--teacher", str(SHIPPED), "--resume", "--out", str(tmp_path)]) == 2


def test_blend_state_dicts_checks_its_inputs():
    from hirqa_ros.training.release.blend import blend_state_dicts

    a = {"w": torch.zeros(2), "n": torch.tensor(3)}
    b = {"w": torch.ones(2), "n": torch.tensor(7)}
    mixed = blend_state_dicts(a, b, 0.25)
    assert torch.allclose(mixed["w"], torch.full((2,), 0.25)) and int(mixed["n"]) == 3
    with pytest.raises(ValueError, match="alpha"):
        blend_state_dicts(a, b, 1.5)
    with pytest.raises(ValueError, match="different tensors"):
        blend_state_dicts(a, {"w": b["w"]}, 0.5)
    with pytest.raises(ValueError, match="shape"):
        blend_state_dicts(a, {"w": torch.ones(3), "n": b["n"]}, 0.5)


@pytest.mark.slow
def test_blend_write_and_finalize(workdir, random_model_dir, tmp_path):
    """alpha 0 / 1 reproduce the base / the continuation exactly (fp16 storage), 0.5 is the midpoint, the
    lineage names both; finalize writes calibrated thresholds only when the full-frame gate passes."""
    import copy
    import json

    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.cli.main import main
    from hirqa_ros.training.fit.checkpoint import run_weights
    from hirqa_ros.training.fit.trainer import train
    from hirqa_ros.training.release import blend
    from hirqa_ros.training.release.finalize import finalize

    run = workdir / "blend_run"
    train(_cfg(workdir, max_steps=2), run, init_from=str(random_model_dir), device="cpu", progress=False)
    base, tuned = load_artifact(random_model_dir).state_dict(), run_weights(run)[0]
    moved = [
        k for k, v in base.items() if v.is_floating_point() and not torch.equal(v.half(), tuned[k].half())
    ]
    assert moved, "two training steps changed no weight"
    for alpha in (0.0, 0.5, 1.0):
        art = load_artifact(blend.write(str(random_model_dir), run, alpha, tmp_path / f"b{alpha}", "test"))
        sd = art.state_dict()
        for k in moved:
            want = ((1 - alpha) * base[k].float() + alpha * tuned[k].float()).half()
            assert torch.equal(sd[k].half(), want), k
        assert art.card["lineage"][-1]["alpha"] == alpha and art.card["lineage"][-2]["run"] == "tiny"
        assert art.card["thresholds"]["calibrated"] is False
    out = tmp_path / "b0.5"
    report = tmp_path / "new.json"
    assert main(["eval", "--full-frame", "--model", str(out), "--images", str(workdir / "val"),
                 "--frame-sizes", "96x64", "--types", "gaublur", "jpeg", "--no-cues", "--no-progress",
                 "--json", str(report)]) == 0
    new = json.loads(report.read_text())
    assert finalize(out, new, new) is False  # equal is not better
    assert load_artifact(out).card["thresholds"]["calibrated"] is False
    worse = copy.deepcopy(new)
    for m in ("auroc", "ladder_srocc"):
        worse["synthetic"]["summaries"]["model"]["pooled"][m] -= 0.1
    assert finalize(out, new, worse) is True
    card = load_artifact(out).card
    assert card["thresholds"]["calibrated"] is True
    assert card["thresholds"]["warn"] == round(new["calibration"]["warn"], 4)
    ff = card["metrics"]["validation_full_frame"]
    assert ff["previous_default_pooled"] == worse["synthetic"]["summaries"]["model"]["pooled"]
    assert "## Full-frame evaluation" in (out / "MODEL_CARD.md").read_text()
    crops = copy.deepcopy(new)
    crops["synthetic"]["protocol"] = "crops"
    with pytest.raises(ValueError, match="full-frame"):
        finalize(out, new, crops)


def test_finalize_in_physical_order_wants_the_noise_free_and_topic_runs(workdir, random_model_dir, tmp_path):
    """Physical-order reports: every pooled measure higher there, and none lower noise-free (required) or as
    a compressed topic; a failing gate changes nothing in the card, a passing one records the runs."""
    import copy
    import json
    import shutil

    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.cli.main import main
    from hirqa_ros.training.release.finalize import finalize

    out = tmp_path / "cand"
    shutil.copytree(random_model_dir, out)

    def report(name: str, *extra: str) -> dict:
        path = tmp_path / f"{name}.json"
        assert main(["eval", "--full-frame", "--model", str(out), "--images", str(workdir / "val"),
                     "--frame-sizes", "96x64", "--types", "gaublur", "jpeg", "--no-cues", "--no-progress",
                     "--json", str(path), *extra]) == 0
        return json.loads(path.read_text())

    phys, plain = report("phys", "--physical-order"), report("plain")
    topic = report("topic", "--physical-order", "--transport-jpeg", "90")
    worse = copy.deepcopy(phys)
    for m in ("auroc", "ladder_srocc", "srocc"):
        worse["synthetic"]["summaries"]["model"]["pooled"][m] -= 0.1
    assert main(["release", "finalize", "--out", str(out), "--eval", str(tmp_path / "phys.json"),
                 "--baseline-eval", str(tmp_path / "phys.json")]) == 1
    assert finalize(out, phys, worse) is False  # the noise-free run is missing
    plain_better = copy.deepcopy(plain)
    plain_better["synthetic"]["summaries"]["model"]["pooled"]["srocc"] += 0.01
    assert finalize(out, phys, worse, (plain, plain_better)) is False  # lower noise-free
    assert load_artifact(out).card["thresholds"]["calibrated"] is False
    with pytest.raises(ValueError, match="same frames"):
        finalize(out, phys, worse, (plain, topic))
    assert finalize(out, phys, worse, (plain, plain), (topic, topic)) is True  # ties off the main run pass
    card = load_artifact(out).card
    assert card["thresholds"]["calibrated"] is True
    assert card["release_gate"]["passes"] and card["release_gate"]["topic"]["baseline"] == \
        topic["synthetic"]["summaries"]["model"]["pooled"]
    assert "Noise-free: AUROC" in (out / "MODEL_CARD.md").read_text()
