"""Launch files and params YAMLs: which parameters reach hirqa_node, in which order, under which namespace.

launch/launch_ros are not installable from PyPI, so the launch files' `generate_launch_description()`
runs here against a RECORDING STAND-IN for those modules (test/launch_recording_standin.py): it
records the Node actions instead of starting anything. Where launch_ros is installed, the last test
also runs the files through the real modules.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from launch_recording_standin import StandInError, node_command, run_launch_file

from hirqa_ros.node.launch_args import convert, parameter_overrides, remappings
from hirqa_ros.node.params import BY_NAME, is_known

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
CONFIG_FILES = sorted((REPO / "config").glob("hirqa*.yaml"))
HIRQA = REPO / "launch" / "hirqa.launch.py"
MULTI = REPO / "launch" / "multi_camera.launch.py"
REPLAY = REPO / "launch" / "bag_replay.launch.py"
REQUIRED = {REPLAY: {"bag": "/data/drive1"}}


def _only_node(rec):
    assert len(rec.nodes) == 1, rec.nodes
    node = rec.nodes[0]
    assert node.kwargs["package"] == "hirqa_ros" and node.executable == "hirqa_node"
    assert node.kwargs["name"] == "hirqa_node"
    return node.kwargs


def test_launch_files_exist():
    names = {p.name for p in LAUNCH_FILES}
    assert names >= {"hirqa.launch.py", "multi_camera.launch.py", "bag_replay.launch.py"}


@pytest.mark.parametrize("path", [HIRQA, MULTI], ids=lambda p: p.name)
def test_without_arguments_the_params_file_alone_rules(path):
    kw = _only_node(run_launch_file(path))
    (params_file,) = kw["parameters"]  # no override dict at all
    assert Path(params_file).is_file() and Path(params_file).parent.name == "config"
    assert kw["namespace"] == ""
    assert kw["arguments"] == ["--ros-args", "--log-level", "info"]


def test_single_camera_arguments_override_the_file_only_when_given():
    rec = run_launch_file(HIRQA, {"backend": "tensorrt", "namespace": "robot1", "log_level": "debug",
                                  "image_topic": "camera/image_raw", "image_transport": "compressed"})
    kw = _only_node(rec)
    params_file, overrides = kw["parameters"]  # the file first, then what was given
    assert Path(params_file).name == "hirqa.yaml"
    assert overrides == {"backend": "tensorrt", "image_transport": "compressed"}
    assert kw["namespace"] == "robot1"
    assert kw["remappings"] == [("image", "camera/image_raw")]
    assert kw["arguments"][-1] == "debug"


def test_typed_arguments_reach_the_node_typed():
    kw = _only_node(run_launch_file(HIRQA, {"use_sim_time": "true", "autostart": "False"}))
    assert kw["parameters"][1] == {"use_sim_time": True, "autostart": False}
    kw = _only_node(run_launch_file(MULTI, {"max_rate_hz": "2", "image_transport": "raw, compressed",
                                            "image_topics": "a/image,b/image"}))
    assert kw["parameters"][1] == {"max_rate_hz": 2.0, "image_transport": ["raw", "compressed"],
                                   "image_topics": ["a/image", "b/image"]}


def test_multi_camera_example_uses_relative_topics_and_remappings():
    rec = run_launch_file(MULTI, {"namespace": "robot1",
                                  "remappings": "front/image:=/sensors/front/image_raw,"
                                                "rear/image:=rear_cam/image"})
    kw = _only_node(rec)
    (params_file,) = kw["parameters"]
    doc = yaml.safe_load(Path(params_file).read_text())
    topics = doc["/**"]["ros__parameters"]["image_topics"]
    assert len(topics) >= 2 and not any(t.startswith("/") for t in topics)
    assert kw["remappings"] == [("front/image", "/sensors/front/image_raw"), ("rear/image", "rear_cam/image")]


def test_bad_arguments_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="expected true or false"):
        run_launch_file(HIRQA, {"use_sim_time": "maybe"})
    with pytest.raises(ValueError, match="from:=to"):
        run_launch_file(MULTI, {"remappings": "front/image=/x"})
    with pytest.raises(StandInError, match="declares no argument"):
        run_launch_file(HIRQA, {"image_topics": "/x"})  # hirqa.launch.py takes image_topic (a remapping)
    with pytest.raises(StandInError, match="required argument 'bag'"):
        run_launch_file(REPLAY)


def test_bag_replay_plays_inputs_and_records_the_quality_siblings():
    rec = run_launch_file(REPLAY, {"bag": "/data/drive1", "image_topics": "/front/image_raw,/rear/image_raw",
                                   "image_transport": "raw,compressed"})
    kw = _only_node(rec)
    assert kw["namespace"] == ""  # so launch_ros writes the overrides under /hirqa_node, not /**
    _, overrides = kw["parameters"]
    assert overrides == {"image_topics": ["/front/image_raw", "/rear/image_raw"],
                         "image_transport": ["raw", "compressed"], "use_sim_time": True}
    cmds = {tuple(p.cmd[:3]): p.cmd for p in rec.processes}
    record = cmds[("ros2", "bag", "record")]
    assert record[record.index("-o") + 1] == "/data/drive1_quality"
    assert {"/front/image_raw_quality", "/rear/image_raw_quality", "/diagnostics"} <= set(record)
    play = cmds[("ros2", "bag", "play")]
    assert play[play.index("--topics") + 1:] == ["/front/image_raw", "/rear/image_raw/compressed"]
    assert rec.timers and rec.timers[0].period == 5.0  # playback waits for the node and the recorder


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_parameter_a_launch_file_can_set_is_declared_by_the_node(path):
    all_set = {"backend": "onnxruntime", "model_path": "/m", "use_sim_time": "true", "image_transport": "raw",
               "autostart": "true", "image_topics": "a/image", "max_rate_hz": "1.0"}
    rec = run_launch_file(path, {**REQUIRED.get(path, {}),
                                 **{k: v for k, v in all_set.items() if k in run_launch_file(
                                     path, REQUIRED.get(path)).declared}})
    for node in rec.nodes:
        for entry in node.kwargs["parameters"]:
            if isinstance(entry, dict):
                unknown = [k for k in entry if not is_known(k)]
                assert not unknown, f"{path.name} sets undeclared parameters {unknown}"


def test_node_command_matches_launch_ros_order(tmp_path):
    rec = run_launch_file(HIRQA, {"namespace": "robot1", "backend": "onnxruntime",
                                  "image_topic": "cam/image"})
    cmd = node_command(rec.nodes[0], tmp_path, rec.context)
    assert cmd[:3] == ["--ros-args", "--log-level", "info"]
    files = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--params-file"]
    assert Path(files[0]).name == "hirqa.yaml"  # the file first ...
    second = yaml.safe_load(Path(files[1]).read_text())  # ... then what the launch arguments set,
    # under the node's own name (launch_ros does so when name and namespace are given)
    assert second == {"/robot1/hirqa_node": {"ros__parameters": {"backend": "onnxruntime"}}}
    assert "__ns:=/robot1" in cmd and "image:=cam/image" in cmd


def test_launch_args_helpers():
    assert convert("image_topics", "a, b/c ,") == ["a", "b/c"]
    assert convert("hardware_id", "front_cam") == "front_cam"
    assert convert("stats_window", " 7 ") == 7
    assert parameter_overrides({"backend": "", "model_path": "  ", "smoothing": "0.5"}) == {"smoothing": 0.5}
    with pytest.raises(KeyError, match="not a hirqa_node parameter"):
        parameter_overrides({"warn_treshold": "0.4"})
    assert remappings(" a:=b , c:=/d ") == [("a", "b"), ("c", "/d")]


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_params_yaml_sets_only_declared_parameters_with_the_right_types(path):
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict) and doc
    for node_key, section in doc.items():
        params = section["ros__parameters"]
        unknown = [k for k in params if not is_known(k)]
        assert not unknown, f"{path.name} [{node_key}] sets undeclared parameters: {sorted(unknown)}"
        for name, value in params.items():
            if name not in BY_NAME:
                continue
            spec = BY_NAME[name]
            ok = {"string": isinstance(value, str), "bool": isinstance(value, bool),
                  "int": isinstance(value, int) and not isinstance(value, bool),
                  "double": isinstance(value, float),
                  "string_array": isinstance(value, list) and all(isinstance(v, str) for v in value),
                  "strings": isinstance(value, str) or (isinstance(value, list)
                                                       and all(isinstance(v, str) for v in value)),
                  }[spec.type]
            assert ok, f"{path.name}: {name}={value!r} is not a {spec.type} (parameters are strictly typed)"
            if spec.choices:
                for v in [value] if isinstance(value, str) else value:
                    assert v in spec.choices, f"{name}={value!r}"
            if spec.range and spec.type in ("int", "double"):
                lo, hi = spec.range
                assert lo <= value <= hi, f"{name}={value!r} outside [{lo}, {hi}]"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_run_when_launch_ros_is_installed(path):
    if importlib.util.find_spec("launch_ros") is None or importlib.util.find_spec("launch") is None:
        pytest.skip("launch/launch_ros are not installable from PyPI; the stand-in tests cover the logic")
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node

    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ld = module.generate_launch_description()
    context = LaunchContext()
    for name, value in REQUIRED.get(path, {}).items():
        context.launch_configurations[name] = value
    pending, nodes = list(ld.entities), []
    while pending:  # evaluate arguments and OpaqueFunctions; collect the nodes they would start
        entity = pending.pop(0)
        if isinstance(entity, Node):
            nodes.append(entity)
            continue
        if isinstance(entity, DeclareLaunchArgument) and entity.name in context.launch_configurations:
            continue
        pending.extend(entity.visit(context) or [])
    assert any(n.node_executable == "hirqa_node" for n in nodes), f"{path.name} starts no hirqa_node"


def test_docs_list_every_parameter():
    doc = (REPO / "docs" / "node.md").read_text()
    missing = [p for p in BY_NAME if f"`{p}`" not in doc]
    assert not missing, f"docs/node.md does not document {missing}"
