"""A RECORDING STAND-IN for the `launch` and `launch_ros` modules (not installable from PyPI).

It is NOT launch: it implements only the few classes this package's launch files use, records
what they would start (nodes with their parameters, remappings, namespace and arguments; processes
with their command lines) and evaluates launch arguments the way `ros2 launch` does (declared
defaults, `name:=value` overrides, OpaqueFunctions run with a context). Tests use it to check the
launch files' logic; that the real launch_ros accepts these files is checked only where it is
installed (test_launch_files_run_when_launch_ros_is_installed).

`node_command()` turns a recorded node into the command line launch_ros would run (`--ros-args`
with `-r __node:=`, `-r __ns:=`, remappings and one `--params-file` per parameters entry, dicts
written to a temporary YAML, in order), so a test can start hirqa_node exactly that way.
"""
from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


class StandInError(RuntimeError):
    pass


@dataclass
class Context:
    """Launch configurations (argument values) as strings."""

    configurations: dict[str, str] = field(default_factory=dict)


def _perform(value: Any, context: Context) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "".join(_perform(v, context) for v in value)
    return value.perform(context)


# ---- the recorded classes -----------------------------------------------------------------------
class LaunchConfiguration:
    def __init__(self, name: str, default: Any = None) -> None:
        self.name, self.default = name, default

    def perform(self, context: Context) -> str:
        if self.name in context.configurations:
            return context.configurations[self.name]
        if self.default is not None:
            return _perform(self.default, context)
        raise StandInError(f"launch configuration {self.name!r} is not set")


class PathJoinSubstitution:
    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    def perform(self, context: Context) -> str:
        return str(Path(*[_perform(p, context) for p in self.parts]))


class FindPackageShare:
    """The package's share folder; here the source tree, which holds the same launch/ and config/."""

    def __init__(self, package: str) -> None:
        self.package = package

    def perform(self, context: Context) -> str:
        if self.package != "hirqa_ros":
            raise StandInError(f"stand-in knows only hirqa_ros, not {self.package}")
        return str(REPO)


class LaunchDescription:
    def __init__(self, entities: list[Any] | None = None) -> None:
        self.entities = list(entities or [])


class DeclareLaunchArgument:
    def __init__(self, name: str, default_value: Any = None, description: str = "", **kw: Any) -> None:
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction:
    def __init__(self, function: Any, args: Any = None, kwargs: Any = None) -> None:
        self.function = function


class Node:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    @property
    def executable(self) -> str:
        return self.kwargs.get("executable", "")


class ExecuteProcess:
    def __init__(self, cmd: list[Any], **kwargs: Any) -> None:
        self.cmd, self.kwargs = cmd, kwargs


class TimerAction:
    def __init__(self, period: float, actions: list[Any]) -> None:
        self.period, self.actions = float(period), actions


class RegisterEventHandler:
    def __init__(self, handler: Any) -> None:
        self.handler = handler


class OnProcessExit:
    def __init__(self, target_action: Any, on_exit: Any) -> None:
        self.target_action, self.on_exit = target_action, on_exit


class EmitEvent:
    def __init__(self, event: Any) -> None:
        self.event = event


class Shutdown:
    def __init__(self, reason: str = "") -> None:
        self.reason = reason


_MODULES = {
    "launch": {"LaunchDescription": LaunchDescription},
    "launch.actions": {c.__name__: c for c in (DeclareLaunchArgument, OpaqueFunction, ExecuteProcess,
                                               TimerAction, RegisterEventHandler, EmitEvent)},
    "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration,
                             "PathJoinSubstitution": PathJoinSubstitution},
    "launch.event_handlers": {"OnProcessExit": OnProcessExit},
    "launch.events": {"Shutdown": Shutdown},
    "launch_ros": {},
    "launch_ros.actions": {"Node": Node},
    "launch_ros.substitutions": {"FindPackageShare": FindPackageShare},
}


@contextlib.contextmanager
def installed():
    """Put the stand-in modules into sys.modules for the duration (and restore what was there)."""
    saved = {name: sys.modules.get(name) for name in _MODULES}
    try:
        for name, attrs in _MODULES.items():
            mod = types.ModuleType(name, "recording stand-in (see test/launch_recording_standin.py)")
            mod.__dict__.update(attrs)
            sys.modules[name] = mod
        yield
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


# ---- running a launch file ----------------------------------------------------------------------
@dataclass
class Recording:
    declared: dict[str, Any]  # argument -> default (None = required)
    nodes: list[Node]
    processes: list[ExecuteProcess]
    timers: list[TimerAction]
    context: Context


def run_launch_file(path: Path, arguments: dict[str, str] | None = None) -> Recording:
    """Load ``path`` with the stand-in modules, apply ``arguments`` (as `name:=value`) and record.

    Stricter than ros2 launch in one way: an argument the file does not declare is an error."""
    arguments = dict(arguments or {})
    with installed():
        name = "launch_under_test_" + path.stem.replace(".", "_")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ld = module.generate_launch_description()
        context = Context()
        declared: dict[str, Any] = {}
        for e in ld.entities:
            if isinstance(e, DeclareLaunchArgument):
                declared[e.name] = e.default_value
        unknown = set(arguments) - set(declared)
        if unknown:
            raise StandInError(f"{path.name} declares no argument(s) {sorted(unknown)}")
        for name, default in declared.items():
            if name in arguments:
                context.configurations[name] = str(arguments[name])
            elif default is None:
                raise StandInError(f"{path.name}: required argument {name!r} not given")
            else:
                context.configurations[name] = _perform(default, context)
        nodes, processes, timers = [], [], []
        pending = list(ld.entities)
        while pending:
            e = pending.pop(0)
            if isinstance(e, OpaqueFunction):
                pending.extend(e.function(context) or [])
            elif isinstance(e, Node):
                nodes.append(e)
            elif isinstance(e, ExecuteProcess):
                processes.append(e)
            elif isinstance(e, TimerAction):
                timers.append(e)
                pending.extend(e.actions)
    return Recording(declared, nodes, processes, timers, context)


def node_command(node: Node, tmp_dir: Path, context: Context | None = None) -> list[str]:
    """The `--ros-args ...` arguments launch_ros would give this node's executable (order kept).

    As launch_ros's Node (Humble and later, `_perform_substitutions` / `_create_params_file_from_dict`):
    a given namespace, even "", becomes `-r __ns:=/<ns>`; a dict of parameters is written under the
    node's fully qualified name when both name and namespace are given, else under `/**`."""
    context = context or Context()
    kw = node.kwargs
    args = [_perform(a, context) for a in kw.get("arguments", [])]
    ros = ["--ros-args"]
    name = _perform(kw["name"], context) if kw.get("name") else None
    if name:
        ros += ["-r", f"__node:={name}"]
    ns = None if kw.get("namespace") is None else "/" + _perform(kw["namespace"], context).strip("/")
    if ns is not None:
        ros += ["-r", f"__ns:={ns}"]
    key = f"{ns.rstrip('/')}/{name}" if name and ns is not None else "/**"
    for i, entry in enumerate(kw.get("parameters", [])):
        if isinstance(entry, dict):
            f = tmp_dir / f"launch_params_{i}.yaml"
            f.write_text(yaml.safe_dump({key: {"ros__parameters": entry}}))
            ros += ["--params-file", str(f)]
        else:
            ros += ["--params-file", _perform(entry, context)]
    for src, dst in kw.get("remappings", []):
        ros += ["-r", f"{_perform(src, context)}:={_perform(dst, context)}"]
    return [*args, *ros]
