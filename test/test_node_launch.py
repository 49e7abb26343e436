"""Launch files and the params YAML only set parameters that hirqa_node declares (AST + YAML checks)."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

from hirqa_ros.node.params import BY_NAME, declared_names

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
CONFIG_FILES = sorted((REPO / "config").glob("hirqa*.yaml"))


def _node_parameter_keys(path: Path) -> set[str]:
    """String keys of every dict literal passed (directly or through a variable) in Node(parameters=[...])."""
    tree = ast.parse(path.read_text(), filename=str(path))
    dict_vars: dict[str, ast.Dict] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    dict_vars[target.id] = node.value
    keys: set[str] = set()
    found_node = False
    for node in ast.walk(tree):
        name = getattr(node.func, "id", getattr(node.func, "attr", "")) if isinstance(node, ast.Call) else ""
        if name != "Node":
            continue
        found_node = True
        for kw in node.keywords:
            if kw.arg != "parameters":
                continue
            assert isinstance(kw.value, ast.List), f"{path.name}: parameters= should be a list literal"
            for item in kw.value.elts:
                d = dict_vars.get(item.id) if isinstance(item, ast.Name) else item
                if isinstance(d, ast.Dict):
                    for k in d.keys:
                        assert isinstance(k, ast.Constant) and isinstance(k.value, str), \
                            f"{path.name}: parameter names must be string literals"
                        keys.add(k.value)
    assert found_node, f"{path.name} starts no Node"
    return keys


def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"hirqa.launch.py", "multi_camera.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_sets_only_declared_parameters(path):
    keys = _node_parameter_keys(path)
    assert "image_topics" in keys
    unknown = keys - declared_names()
    assert not unknown, f"{path.name} sets undeclared parameters: {sorted(unknown)}"


def test_ast_check_catches_a_typo(tmp_path):
    bad = tmp_path / "bad.launch.py"
    bad.write_text("from launch_ros.actions import Node\n"
                   "def generate_launch_description():\n"
                   "    p = {'image_topics': ['/x'], 'warn_treshold': 0.4}\n"
                   "    return Node(package='hirqa_ros', executable='hirqa_node',\n"
                   "                parameters=['f.yaml', p])\n")
    assert _node_parameter_keys(bad) - declared_names() == {"warn_treshold"}


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_params_yaml_sets_only_declared_parameters_with_the_right_types(path):
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict) and doc
    for node_key, section in doc.items():
        params = section["ros__parameters"]
        unknown = set(params) - declared_names()
        assert not unknown, f"{path.name} [{node_key}] sets undeclared parameters: {sorted(unknown)}"
        for name, value in params.items():
            if name not in BY_NAME:
                continue
            kind = BY_NAME[name].type
            ok = {"string": isinstance(value, str), "bool": isinstance(value, bool),
                  "int": isinstance(value, int) and not isinstance(value, bool),
                  "double": isinstance(value, float),
                  "string_array": isinstance(value, list) and all(isinstance(v, str) for v in value)}[kind]
            assert ok, f"{path.name}: {name}={value!r} is not a {kind} (ROS 2 parameters are strictly typed)"
            if BY_NAME[name].choices and kind == "string":
                assert value in BY_NAME[name].choices, f"{name}={value!r}"
            if BY_NAME[name].range and kind in ("int", "double"):
                lo, hi = BY_NAME[name].range
                assert lo <= value <= hi, f"{name}={value!r} outside [{lo}, {hi}]"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_run_when_launch_ros_is_installed(path):
    if importlib.util.find_spec("launch_ros") is None or importlib.util.find_spec("launch") is None:
        pytest.skip("launch/launch_ros are not installable from PyPI; the AST test above covers the names")
    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from launch_ros.actions import Node

    ld = module.generate_launch_description()
    context = LaunchContext()
    pending, nodes = list(ld.entities), []
    while pending:  # evaluate arguments and OpaqueFunctions; collect the nodes they would start
        entity = pending.pop(0)
        if isinstance(entity, Node):
            nodes.append(entity)
            continue
        pending.extend(entity.visit(context) or [])
    assert any(n.node_executable == "hirqa_node" for n in nodes), f"{path.name} starts no hirqa_node"


def test_docs_list_every_parameter():
    doc = (REPO / "docs" / "node.md").read_text()
    missing = [p for p in BY_NAME if f"`{p}`" not in doc]
    assert not missing, f"docs/node.md does not document {missing}"
