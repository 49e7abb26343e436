"""CI hygiene for the DDS tests: concurrent test processes never share a ROS domain, and the
Fast DDS shared-memory files of processes that died without teardown are cleaned up."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")

from helpers_node import REPO, SHM_DIR, clean_stale_dds_shm, domain_id, ros_env

pytestmark = pytest.mark.ros


def _child(code: str, env=None, timeout=60) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO / "test", env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_concurrent_test_processes_get_distinct_domain_ids():
    mine = {domain_id(k) for k in (90, 91, 92)}
    assert len(mine) == 3 and domain_id(90) == domain_id(90)  # stable within a process
    # another process asking for the same offsets (same hash, or a pid that collides) gets others
    theirs = _child("""
        from helpers_node import domain_id
        print(*[domain_id(k) for k in (90, 91, 92, 1, 2, 11)])
    """).split()
    assert not mine & {int(x) for x in theirs}, (mine, theirs)


def test_stale_fastdds_shm_segments_are_cleaned():
    if not SHM_DIR.is_dir():
        pytest.skip("no /dev/shm on this machine")
    # a participant that exits without DDS teardown (as a crashed or SIGKILLed node would)
    domain = domain_id(93)
    before = set(p.name for p in SHM_DIR.iterdir())
    files = _child(f"""
        import os, rclpy
        ctx = rclpy.Context(); rclpy.init(context=ctx, domain_id={domain})
        node = rclpy.create_node("shm_leaker", context=ctx)
        maps = [line for line in open("/proc/self/maps") if "/dev/shm/fast" in line]
        print(*sorted({{line.split("/dev/shm/", 1)[1].split()[0] for line in maps}}), flush=True)
        os._exit(0)
    """, env=ros_env(domain)).split()
    assert files, "the participant mapped no Fast DDS shared memory (SHM transport off?)"
    left = [f for f in files if (SHM_DIR / f).exists() and f not in before]
    assert left, "os._exit left no Fast DDS files behind; nothing to test"
    removed = clean_stale_dds_shm()
    assert set(left) <= set(removed), (left, removed)
    assert not any((SHM_DIR / f).exists() for f in left)


def test_shm_files_in_use_are_kept():
    if not SHM_DIR.is_dir():
        pytest.skip("no /dev/shm on this machine")
    from helpers_node import RosClient

    client = RosClient(domain_id(94), name="shm_keeper")
    try:
        import os

        mine = {line.split("/dev/shm/", 1)[1].split()[0] for line in open(f"/proc/{os.getpid()}/maps")
                if "/dev/shm/fast" in line}
        mine = {m for m in mine if (SHM_DIR / m).exists()}
        assert mine
        removed = set(clean_stale_dds_shm())
        assert not mine & removed
        assert all((SHM_DIR / m).exists() for m in mine)
    finally:
        client.close()
