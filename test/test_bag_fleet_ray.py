"""The Ray engine on a real 2-node Ray cluster owned by the test (ray.cluster_utils.Cluster, shut
down at the end; never `ray stop`): per-frame results equal the local engine's, a client joins
with --address, and a worker lost in the middle of a bag costs only that bag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")
pytest.importorskip("ray", reason="Ray not installed (pip install 'hirqa_ros[fleet]')")

import ray
from helpers_bag import tiny_bag

from hirqa_ros.bag.engines import RayEngine
from hirqa_ros.bag.fleet import FleetOptions, ResultStore, expand_inputs, plan_inputs
from hirqa_ros.bag.fleet_job import TOKEN_FILE, BagJob
from hirqa_ros.cli.main import main as hirqa

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "OMP_NUM_THREADS": "1"}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                       "env_vars": env})
    c.add_node(num_cpus=1, env_vars=env)
    c.wait_for_nodes()
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _frames(out: Path, name: str) -> bytes:
    return (out / "bags" / name / "frames.csv").read_bytes()


def write_ros1_bag(path: Path, n: int = 6) -> Path:
    """A ROS 1 .bag with ``n`` raw rgb8 images (rosbags' ROS 1 writer, Noetic types)."""
    from helpers_bag import START_NS, frames
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    from hirqa_ros.imgmsg import rgb_to_image_fields

    ts = get_typestore(Stores.ROS1_NOETIC)
    T, img = ts.types, "sensor_msgs/msg/Image"
    with Writer(path) as w:
        c = w.add_connection("/cam/image_raw", img, typestore=ts)
        for i, rgb in enumerate(frames(n, 64, 48)):
            t = START_NS + i * 100_000_000
            stamp = T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
            hdr = T["std_msgs/msg/Header"](seq=i, stamp=stamp, frame_id="cam")
            w.write(c, t, ts.serialize_ros1(T[img](header=hdr, **rgb_to_image_fields(rgb, "rgb8")), img))
    return path


@pytest.mark.slow
def test_ray_cluster_started_by_the_command_on_mixed_inputs(tmp_path, random_model_dir):
    """`hirqa bag-eval a.mcap b_dir/ 'drives/*.bag' --engine ray`: a local cluster started and shut
    down by the command; the same rows as the local engine."""
    from helpers_bag import storage_file

    tiny_bag(tmp_path / "a_src", duration_s=0.5, labels=False)
    (tmp_path / "a.mcap").write_bytes(storage_file(tmp_path / "a_src").read_bytes())
    tiny_bag(tmp_path / "b_dir" / "b1", duration_s=0.5, storage="sqlite3", compressed=True, labels=False)
    tiny_bag(tmp_path / "b_dir" / "b2", duration_s=0.5, labels=False)
    (tmp_path / "drives").mkdir()
    write_ros1_bag(tmp_path / "drives" / "r1.bag")
    write_ros1_bag(tmp_path / "drives" / "r2.bag", n=4)
    inputs = [str(tmp_path / "a.mcap"), str(tmp_path / "b_dir"), str(tmp_path / "drives" / "*.bag")]
    base = ["bag-eval", *inputs, "--model", str(random_model_dir), "--backend", "onnxruntime",
            "--no-progress", "--no-plots"]
    assert hirqa([*base, "--out", str(tmp_path / "local")]) == 0
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "hirqa_ros.cli.main", *base, "--engine", "ray", "--workers", "2",
           "--out", str(tmp_path / "ray")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads((tmp_path / "ray" / "fleet.json").read_text())
    assert [b["name"] for b in s["bags"]] == ["a", "b1", "b2", "r1", "r2"]
    assert s["engine"]["engine"] == "ray" and s["engine"]["workers"] == 2
    assert s["bags"][3]["cameras"]["/cam/image_raw"]["frames"] == 6  # the ROS 1 bag was read
    for b in s["bags"]:
        assert _frames(tmp_path / "ray", b["name"]) == _frames(tmp_path / "local", b["name"])


@pytest.mark.slow
def test_ray_engine_equals_local_and_survives_a_lost_worker(tmp_path, random_model_dir, cluster):
    root = tmp_path / "drives"
    for i, storage in enumerate(("mcap", "sqlite3", "mcap")):
        tiny_bag(root / f"d{i}", storage=storage, compressed=i == 1, duration_s=1.0,
                 topics=("/front/image_raw", "/rear/image_raw") if i == 2 else ("/cam/image_raw",))
    base = ["bag-eval", str(root), "--model", str(random_model_dir), "--backend", "onnxruntime",
            "--no-progress", "--no-plots"]
    assert hirqa([*base, "--out", str(tmp_path / "local")]) == 0
    # a client process joining the cluster by address (token from the environment Ray set up here)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "hirqa_ros.cli.main", *base, "--engine", "ray", "--address",
                          cluster.address, "--workers", "2", "--out", str(tmp_path / "ray")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads((tmp_path / "ray" / "fleet.json").read_text())
    assert s["engine"]["engine"] == "ray" and s["engine"]["workers"] == 2 and s["complete"]
    for i in range(3):  # frame for frame: same rows, same scores, levels and faults
        assert _frames(tmp_path / "ray", f"d{i}") == _frames(tmp_path / "local", f"d{i}")
    local = json.loads((tmp_path / "local" / "fleet.json").read_text())
    assert [b["cameras"] for b in s["bags"]] == [b["cameras"] for b in local["bags"]]

    # a worker dies while it holds a bag: that bag is lost (to be redone), the others finish
    ray.init(address=cluster.address)
    opts = FleetOptions(model=str(random_model_dir), backend="onnxruntime", evaluate={"plots": False},
                        thumbs=0)
    engine = RayEngine(opts, workers=2)
    store = ResultStore(tmp_path / "lost")
    bags = plan_inputs(expand_inputs([str(root)]), None)

    def jobs():
        for k, b in enumerate(bags):
            stage = store.stage(b.name)
            (stage / TOKEN_FILE).write_text("t")
            yield BagJob(b.name, str(b.path), None, str(stage), "t")
            if k == 0:  # the first bag is in flight on actors[-1]: kill that worker
                ray.kill(engine.actors[-1])
    ticks: dict[str, int] = {}
    engine.on_frames = lambda bag, n: ticks.__setitem__(bag, ticks.get(bag, 0) + n)
    try:
        outs = {job.name: out for job, out in engine.outcomes(jobs())}
    finally:
        engine.close()
    assert {n: o.status for n, o in outs.items()} == {"d0": "lost", "d1": "done", "d2": "done"}
    # live frame progress reached the driver while the bags were scored: every scored frame counted
    assert ticks["d1"] == outs["d1"].scored == 10 and ticks["d2"] == outs["d2"].scored == 20
    ray.shutdown()
