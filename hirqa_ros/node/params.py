"""The node's parameters: the shared option table (``hirqa_ros.options``: names, types, defaults,
ranges, descriptions, which are dynamic) plus rclpy's own names and the engine options.

Plain data (no rclpy import) so docs, launch-file tests and the node share one list.
"""
from __future__ import annotations

from typing import Any

from hirqa_ros.options import BY_NAME, OPTIONS, Option

ParamSpec = Option  # one node parameter (the node's name for an option of the shared table)
PARAMS: tuple[ParamSpec, ...] = OPTIONS  # every option of the table is a node parameter
#: declared by rclpy itself on every node
BUILTIN = ("use_sim_time", "start_type_description_service")
#: prefix of rclpy's QoS override parameters (QoSOverridingOptions),
#: e.g. qos_overrides./image.subscription.depth
QOS_OVERRIDES = "qos_overrides."
DYNAMIC = tuple(p.name for p in PARAMS if p.dynamic)
__all__ = ["BUILTIN", "BY_NAME", "DYNAMIC", "PARAMS", "QOS_OVERRIDES", "ParamSpec", "declared_names",
           "engine_options", "is_known"]


def declared_names() -> set[str]:
    """Every parameter name the node accepts (its own plus rclpy's built-ins); QoS overrides aside."""
    return {p.name for p in PARAMS} | set(BUILTIN)


def is_known(name: str) -> bool:
    """True for a parameter the node declares, or an rclpy QoS override (``qos_overrides.<topic>...``)."""
    return name in declared_names() or name.startswith(QOS_OVERRIDES)


def engine_options(p: dict[str, Any], n_cameras: int) -> dict[str, Any]:
    """``load_scorer`` options from the engine parameters: cache folder, pre-built engine, rebuild
    flag, and an engine profile sized for the declared cameras and batch (see
    ``tensorrt_backend.profile_options_for_cameras``)."""
    from hirqa_ros.backends.tensorrt_backend import parse_hw

    sizes = [str(s).strip().lower() for s in p.get("camera_sizes") or ["auto"]]
    if sizes == ["auto"]:
        parsed: list[tuple[int, int]] = []
    elif len(sizes) in (1, n_cameras):
        try:
            parsed = [parse_hw(s) for s in sizes]
        except ValueError as exc:
            raise ValueError(f"parameter camera_sizes: {exc}") from exc
    else:
        raise ValueError(
            f"parameter camera_sizes has {len(sizes)} entries for {n_cameras} topics: "
            "give one for all or one per topic"
        )
    opts: dict[str, Any] = {"cameras": n_cameras, "camera_sizes": parsed}
    if int(p.get("max_batch") or 0) > 0:
        opts["max_batch"] = int(p["max_batch"])
    if p.get("engine_cache_dir"):
        opts["cache_dir"] = opts["trt_cache_dir"] = p["engine_cache_dir"]
    if p.get("engine_path"):
        opts["engine_path"] = p["engine_path"]
    if p.get("force_engine_update"):
        opts["force_engine_update"] = True
    return opts
