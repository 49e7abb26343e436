"""GPU-test gate: skip with a reason where the hardware/library is absent, FAIL instead when the
environment variable HIRQA_REQUIRE_GPU lists it (scripts/gpu_check.sh sets it, so a GPU check
cannot pass by skipping everything).

HIRQA_REQUIRE_GPU: comma list of ``cuda``, ``tensorrt``, ``torch2trt`` (or ``all``); unset or
empty = skip as usual.
"""

from __future__ import annotations

import os

import pytest

from hirqa_ros.backends import cuda_status, probe

ENV = "HIRQA_REQUIRE_GPU"
KINDS = ("cuda", "tensorrt", "torch2trt")


def required() -> set[str]:
    """The kinds $HIRQA_REQUIRE_GPU says must be present."""
    items = {s.strip().lower() for s in os.environ.get(ENV, "").split(",") if s.strip()}
    return set(KINDS) if "all" in items else items & set(KINDS)


def available(kind: str) -> tuple[bool, str]:
    """(True, "") when ``kind`` can run here, else (False, why)."""
    if kind == "cuda":
        ok, info = cuda_status()
        return ok, "" if ok else info
    p = probe(kind, "cuda")
    return p.ok, "" if p.ok else p.reason


def need(kind: str) -> None:
    """Skip the calling test when ``kind`` is unavailable, or fail when $HIRQA_REQUIRE_GPU requires it."""
    if kind not in KINDS:
        raise ValueError(f"unknown GPU requirement {kind!r}; expected one of {KINDS}")
    ok, why = available(kind)
    if ok:
        return
    if kind in required():
        pytest.fail(f"{kind} is required by ${ENV} but unavailable: {why}", pytrace=False)
    pytest.skip(f"{kind} unavailable: {why}")
