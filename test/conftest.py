"""Shared pytest fixtures: a random-weights model directory and the installed default model."""

from __future__ import annotations

import os
import signal

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
# A shell that runs the suite in the background starts it with SIGINT ignored, and an ignored signal stays
# ignored across exec, so the CLI processes the tests interrupt would never see their SIGINT. Handle it as
# a terminal would: a handled signal is reset to the default in every child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

try:  # keep the shared 2-core machine usable; torch is optional (ONNX Runtime path)
    import torch

    torch.set_num_threads(1)
except ImportError:
    torch = None


@pytest.fixture(scope="session", autouse=True)
def no_stale_dds_shm():
    """Remove Fast DDS shared-memory files whose processes are gone, before and after the run
    (the node tests kill publishers on purpose; see helpers_node.clean_stale_dds_shm).
    HIRQA_TEST_KEEP_DDS_SHM=1 keeps them, to inspect what a run leaves behind."""
    from helpers_node import clean_stale_dds_shm

    keep = os.environ.get("HIRQA_TEST_KEEP_DDS_SHM") == "1"
    if not keep:
        clean_stale_dds_shm()
    yield
    if not keep:
        clean_stale_dds_shm()


@pytest.fixture(autouse=True)
def signals_left_as_found():
    """Fails the test that leaves SIGINT or SIGTERM blocked in the main thread or newly ignored, and puts
    them back: every later child process would inherit that and never see its signals (the handlers
    themselves do not pass to a child, and Ray's driver installs its own)."""
    sigs = (signal.SIGINT, signal.SIGTERM)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    handlers = {s: signal.getsignal(s) for s in sigs}
    yield
    blocked = set(sigs) & (set(signal.pthread_sigmask(signal.SIG_SETMASK, mask)) - set(mask))
    ignored = {s for s in sigs if signal.getsignal(s) == signal.SIG_IGN != handlers[s]}
    for s in ignored:
        signal.signal(s, handlers[s])
    assert not blocked, f"the test left {_names(blocked)} blocked in the main thread"
    assert not ignored, f"the test left {_names(ignored)} ignored"


def _names(signums: set) -> list[str]:
    return sorted(signal.Signals(s).name for s in signums)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A complete model directory (weights.pth, model.onnx, cards) with seeded RANDOM HiRQA-S
    weights, named "random-test-weights". It is not a model: scores mean nothing."""
    if torch is None:
        pytest.skip("torch not installed (needed to build the random test model)")
    from hirqa_ros.export.model_dir import write_model_dir
    from hirqa_ros.model import HiRQA

    torch.manual_seed(1234)
    state_dict = HiRQA("hirqa-s").state_dict()
    card = {
        "name": "random-test-weights",
        "description": "Seeded random HiRQA-S weights for tests only. NOT A MODEL: its scores mean nothing.",
        "licence": "test fixture",
        "lineage": {"source": "torch.manual_seed(1234) + HiRQA('hirqa-s') default init"},
    }
    return write_model_dir(
        tmp_path_factory.mktemp("random_model") / "random-test-weights", state_dict, "hirqa-s", card
    )


@pytest.fixture
def default_model_dir():
    """The installed default model directory, or skip when none is installed."""
    from hirqa_ros import artifacts

    try:
        return artifacts.default_model_dir()
    except artifacts.NoDefaultModelError:
        pytest.skip("no default model installed in models/hirqa-s")
