"""Launch-argument strings -> node parameters and remappings (ROS-free; the launch files call it).

Every launch argument that maps to a parameter defaults to ``""`` and is passed to the node only
when set, so the params file rules and a launch file never silently overrides it.
"""
from __future__ import annotations

from typing import Any

from hirqa_ros.node.params import BUILTIN, BY_NAME

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def convert(name: str, text: str) -> Any:
    """A launch argument's text as a value of parameter ``name``'s type (ValueError if it is not)."""
    kind = "bool" if name == "use_sim_time" else BY_NAME[name].type
    text = text.strip()
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"launch argument {name}:={text!r}: expected true or false")
    if kind == "int":
        return int(text)
    if kind == "double":
        return float(text)
    if kind == "string_array":
        return _split(text)
    if kind == "strings":  # one value, or a comma-separated list (one per camera)
        items = _split(text)
        return items[0] if len(items) == 1 else items
    return text


def parameter_overrides(args: dict[str, str]) -> dict[str, Any]:
    """The parameters to pass after the params file: only the arguments that were set (non-empty)."""
    out: dict[str, Any] = {}
    for name, text in args.items():
        if name not in BY_NAME and name not in BUILTIN:
            raise KeyError(f"{name} is not a hirqa_node parameter")
        if text is not None and str(text).strip() != "":
            out[name] = convert(name, str(text))
    return out


def remappings(text: str) -> list[tuple[str, str]]:
    """``"from:=to,from2:=to2"`` -> [(from, to), ...] (ValueError on a pair without ``:=``)."""
    pairs = []
    for item in _split(text):
        src, sep, dst = item.partition(":=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"remapping {item!r}: expected from:=to")
        pairs.append((src.strip(), dst.strip()))
    return pairs
