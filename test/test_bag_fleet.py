"""hirqa bag-eval on many bags: inputs, resume, corrupt bags, interrupts (real signals to a real
subprocess), the accepted-frames bag and the one-bag layout's protection of a complete run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")

from helpers_bag import storage_file, tiny_bag, write_custom_bag

from hirqa_ros.bag.evaluate import read_frames_csv
from hirqa_ros.bag.fleet import InputError, expand_inputs, plan_inputs
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.cli.main import main as hirqa

ROOT = Path(__file__).resolve().parents[1]


def _base(model) -> list[str]:
    return ["bag-eval", "--model", str(model), "--backend", "onnxruntime", "--no-progress", "--no-plots"]


def _fleet(tmp_path: Path, n: int = 2, duration_s: float = 1.0) -> Path:
    root = tmp_path / "drives"
    for i in range(n):
        tiny_bag(root / f"d{i}", duration_s=duration_s, storage="mcap" if i % 2 == 0 else "sqlite3")
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def test_inputs_folders_globs_and_names(tmp_path):
    root = _fleet(tmp_path, 2)
    (root / "sub").mkdir()
    tiny_bag(root / "sub" / "d0", duration_s=0.5, labels=False)  # same name in another folder
    single = tmp_path / "one.mcap"
    single.write_bytes(storage_file(root / "d0").read_bytes())
    paths = expand_inputs([str(root), str(tmp_path / "*.mcap"), str(root / "d1")])  # d1 twice: once
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["drives/d0", "drives/d1", "drives/sub/d0",
                                                                   "one.mcap"]
    bags = plan_inputs(paths, None)
    names = [b.name for b in bags]
    assert len(set(names)) == 4 and names[1] == "d1" and names[3] == "one"
    assert names[0].startswith("d0-") and names[2].startswith("d0-")  # collision: path hash added
    assert bags[0].labels == root / "d0.labels.yaml" and bags[2].labels is None
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([str(tmp_path / "nope")])
    with pytest.raises(InputError, match="matches no bag"):
        expand_inputs([str(tmp_path / "*.bag")])
    split = tmp_path / "split"  # a rosbag2 bag whose metadata.yaml is lost: one bag, not two
    split.mkdir()
    for k in (0, 1):
        (split / f"rec_{k}.mcap").write_bytes(single.read_bytes())
    assert expand_inputs([str(split)]) == [split]


def test_fleet_run_resume_corrupt_and_conflict(tmp_path, random_model_dir, capsys):
    root = _fleet(tmp_path, 2)
    bad = root / "broken"
    tiny_bag(bad, duration_s=0.5, labels=False)
    f = storage_file(bad)
    f.write_bytes(b"\0" * f.stat().st_size)  # destroyed at its header: nothing readable
    out = tmp_path / "run"
    assert hirqa([*_base(random_model_dir), str(root), "--out", str(out)]) == 1  # one bag failed
    s = json.loads((out / "fleet.json").read_text())
    status = {b["name"]: b["status"] for b in s["bags"]}
    assert status == {"broken": "failed", "d0": "done", "d1": "done"}
    assert s["failed"] == ["broken"] and s["complete"] and not s["left"]
    broken = next(b for b in s["bags"] if b["name"] == "broken")
    assert "broken" in broken["error"] and "\n" not in broken["error"]
    d0 = next(b for b in s["bags"] if b["name"] == "d0")
    cam = d0["cameras"]["/cam/image_raw"]
    rows = read_frames_csv(out / "bags" / "d0" / "frames.csv")
    assert cam["frames"] == len(rows) == 10
    assert cam["rejected"] == sum(r["verdict"] == "drop" for r in rows)
    assert d0["labels"]["file"].endswith("d0.labels.yaml")  # make-bag's sibling labels file was used
    assert "auroc" in cam["labels"]
    summary = json.loads((out / "bags" / "d0" / "summary.json").read_text())
    assert summary["files"]["frames"] == str(out / "bags" / "d0" / "frames.csv")  # not the staging path
    assert (out / "report.html").stat().st_size > 1000
    assert not list((out / "bags").glob(".*"))  # no staging leftovers
    # re-run: finished bags are not redone (same files, same inode), the broken one is tried again
    before = {n: os.stat(out / "bags" / n / "frames.csv") for n in ("d0", "d1")}
    capsys.readouterr()
    assert hirqa([*_base(random_model_dir), str(root), "--out", str(out)]) == 1
    assert "2 of 3 bag(s) already evaluated" in capsys.readouterr().out
    for n, st in before.items():
        now = os.stat(out / "bags" / n / "frames.csv")
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    # other options: refused without --force, nothing replaced; with --force redone
    assert hirqa([*_base(random_model_dir), str(root / "d0"), "--fleet", "--threshold", "0.7,0.2",
                  "--out", str(out)]) == 2
    assert os.stat(out / "bags" / "d0" / "frames.csv").st_ino == before["d0"].st_ino
    assert hirqa([*_base(random_model_dir), str(root / "d0"), "--fleet", "--threshold", "0.7,0.2",
                  "--force", "--out", str(out)]) == 0
    s2 = json.loads((out / "bags" / "d0" / "summary.json").read_text())
    assert s2["thresholds"]["warn"] == 0.7
    # a changed bag is a different bag: its old result is not reused silently
    os.utime(storage_file(root / "d1"), ns=(1, 1))
    assert hirqa([*_base(random_model_dir), str(root / "d1"), "--fleet", "--out", str(out)]) == 2


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before the condition: "
                                 f"{proc.stderr.read()[-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_fleet_run_keeps_finished_bags_and_resumes(tmp_path, random_model_dir, sig):
    root = _fleet(tmp_path, 5, duration_s=3.0)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hirqa_ros.cli.main", *_base(random_model_dir), str(root), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any((out / "bags").glob("*/fleet_key.json")), proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    s = json.loads((out / "fleet.json").read_text())
    done = [b["name"] for b in s["bags"] if b["status"] == "done"]
    assert s["interrupted"] and not s["complete"] and done and s["left"]
    assert sorted(done + s["left"]) == [f"d{i}" for i in range(5)]
    assert "left" in stderr and all(n in stderr for n in s["left"])
    assert "PARTIAL" in (out / "report.html").read_text()
    assert not list((out / "bags").glob(".*"))  # the bag in flight left nothing behind
    for n in s["left"]:
        assert not (out / "bags" / n).exists()
    kept = {n: os.stat(out / "bags" / n / "frames.csv").st_ino for n in done}
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads((out / "fleet.json").read_text())
    assert s["complete"] and {b["status"] for b in s["bags"] if b["name"] in done} == {"skipped"}
    assert {b["status"] for b in s["bags"] if b["name"] not in done} == {"done"}
    assert {n: os.stat(out / "bags" / n / "frames.csv").st_ino for n in done} == kept


@pytest.mark.slow
def test_one_bag_interrupt_never_replaces_a_complete_run(tmp_path, random_model_dir):
    from helpers_bag import START_NS, frames

    from hirqa_ros.bag.make_bag import make_bag

    made = make_bag(tmp_path / "b", frames_from=frames(4, 160, 120), size=(160, 120), rate_hz=10,
                    duration_s=40.0, segments=[], hold_frames=5, start_ns=START_NS)
    out = tmp_path / "out"
    base = ["bag-eval", "--model", str(random_model_dir), "--backend", "onnxruntime", "--no-plots"]
    assert hirqa([*base, "--no-progress", str(made.path), "--out", str(out), "--write-bag"]) == 0
    complete = (out / "summary.json").read_bytes()
    frames = (out / "frames.csv").read_bytes()
    cmd = [sys.executable, "-m", "hirqa_ros.cli.main", *base, str(made.path), "--out", str(out),
           "--write-bag", "--batch", "1"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []

    def scoring() -> bool:  # tqdm's bar on stderr shows frames being scored
        try:
            seen.append(os.read(proc.stderr.fileno(), 65536).decode(errors="replace"))
        except BlockingIOError:
            return False
        done = re.findall(r"\| *(\d+)/400", "".join(seen))
        return bool(done) and int(done[-1]) > 0
    os.set_blocking(proc.stderr.fileno(), False)
    _wait_for(scoring, proc)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode == 130
    assert (out / "summary.json").read_bytes() == complete and (out / "frames.csv").read_bytes() == frames
    partial = json.loads((out / "partial" / "summary.json").read_text())
    assert partial["interrupted"] and not partial["complete"]
    qbag = out / "partial" / "b_quality.PARTIAL"
    assert (qbag / "PARTIAL.txt").is_file() and not (out / "partial" / "b_quality").exists()
    assert (out / "b_quality").is_dir()  # the complete run's quality bag is untouched
    assert 0 < len(read_frames_csv(out / "partial" / "frames.csv")) <= 400


def test_write_accepted_keeps_only_accepted_frames(tmp_path, random_model_dir):
    write_custom_bag(tmp_path / "c", storage="mcap")
    out = tmp_path / "out"
    args = [*_base(random_model_dir), str(tmp_path / "c"), "--topic", "/cam/compressed", "--out", str(out)]
    assert hirqa(args) == 0
    scores = sorted(r["score"] for r in read_frames_csv(out / "frames.csv") if r["score"] is not None)
    warn = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # half the scored frames dropped
    assert hirqa([*args, "--threshold", f"{warn},0", "--write-accepted"]) == 0
    rows = [r for r in read_frames_csv(out / "frames.csv") if r["topic"] == "/cam/compressed"]
    keep = [r["bag_time_ns"] for r in rows if r["verdict"] == "keep"]
    assert 0 < len(keep) < len(rows)  # garbage frames (error) are left out, as are dropped ones
    with BagReader(out / "c_accepted") as r:
        got = [m.bag_time_ns for m in r.messages(["/cam/compressed"])]
        assert got == keep
        assert r.topics["/status"].count == 8 and r.topics["/cam/exposure"].count == 8
        assert r.topics["/cam/raw"].count == 2  # not evaluated: copied unchanged
        m = next(iter(r.messages(["/cam/exposure"])))
        assert r.deserialize(m).gain == 1.5


def test_ray_engine_without_ray_says_how_to_install(tmp_path, random_model_dir, monkeypatch, caplog):
    root = _fleet(tmp_path, 1, duration_s=0.3)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` fails
    assert hirqa([*_base(random_model_dir), str(root), "--engine", "ray", "--out", str(tmp_path / "o")]) == 2
    assert "pip install" in caplog.text and "hirqa_ros[fleet]" in caplog.text
    assert not (tmp_path / "o").exists()  # refused before any work


def test_a_worker_with_another_model_refuses(random_model_dir):
    from hirqa_ros.bag.engines import EngineError, make_engine
    from hirqa_ros.bag.fleet import FleetOptions, card_sha256

    opts = FleetOptions(model=str(random_model_dir), backend="onnxruntime", card_sha256="0" * 64)
    with pytest.raises(EngineError, match="is not the driver's"):
        make_engine("local", opts, workers=1)
    opts.card_sha256 = card_sha256(random_model_dir)
    make_engine("local", opts, workers=1).close()


def test_two_runs_into_one_out_folder_are_refused(tmp_path):
    from hirqa_ros.bag.fleet import BusyError, ResultStore

    first = ResultStore(tmp_path / "run")
    with pytest.raises(BusyError, match="another hirqa bag-eval run"):
        ResultStore(tmp_path / "run")
    first.close()
    ResultStore(tmp_path / "run").close()  # free again once the first run is done


def test_fleet_labels_file_is_checked_before_any_work(tmp_path, random_model_dir, caplog):
    root = _fleet(tmp_path, 2, duration_s=0.3)
    (tmp_path / "l.yaml").write_text("version: 1\nsegmets: []\n")
    assert hirqa([*_base(random_model_dir), str(root), "--labels", str(tmp_path / "l.yaml"),
                  "--out", str(tmp_path / "o")]) == 2
    assert "segmets" in caplog.text and not (tmp_path / "o").exists()


def test_labels_folder_and_recovery_after_a_kill_between_renames(tmp_path):
    from hirqa_ros.bag.fleet import ResultStore

    root = _fleet(tmp_path, 2, duration_s=0.3)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "d1.labels.yaml").write_text((root / "d1.labels.yaml").read_text())
    bags = plan_inputs(expand_inputs([str(root)]), str(labels))
    assert [b.labels for b in bags] == [None, labels / "d1.labels.yaml"]
    # a run killed between "move the old result aside" and "rename the new one into place"
    old = tmp_path / "run" / "bags" / ".old-4242-d0"
    old.mkdir(parents=True)
    (old / "frames.csv").write_text("x")
    (tmp_path / "run" / "bags" / ".stage-d1-abc").mkdir()  # and a staging folder of a bag in flight
    ResultStore(tmp_path / "run").close()
    assert (tmp_path / "run" / "bags" / "d0" / "frames.csv").read_text() == "x"
    assert sorted(p.name for p in (tmp_path / "run" / "bags").iterdir()) == ["d0"]
