"""Packaging: package.xml is a valid format-3 ament_python manifest whose dependencies cover every
import of the package (so `rosdep install` gives a node that starts), setup.py installs what ROS needs."""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: top-level import -> rosdep key in package.xml
ROSDEP_KEYS = {
    "rclpy": "rclpy", "rcl_interfaces": "rcl_interfaces", "lifecycle_msgs": "lifecycle_msgs",
    "sensor_msgs": "sensor_msgs", "diagnostic_msgs": "diagnostic_msgs",
    "rosgraph_msgs": "rosgraph_msgs", "rosidl_parser": "rosidl_parser",
    "ament_index_python": "ament_index_python", "launch": "launch", "launch_ros": "launch_ros",
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "tqdm": "python3-tqdm",
    "onnxruntime": "python3-onnxruntime-pip",
    "rosbags": "python3-rosbags-pip", "matplotlib": "python3-matplotlib",
}
#: imports that are optional extras, never needed to run the node (installed with pip or JetPack);
#: each is imported inside the function that needs it, with a clear message when missing
OPTIONAL = {
    "torch": "torch backend / training (pip extra [train])",
    "torchvision": "model definition for training and the torch backend",
    "timm": "the EfficientNet-Lite0 trunk (hirqa-lite0; pip extra [train])",
    "tensorrt": "TensorRT backend (JetPack / NVIDIA pip wheels)",
    "torch2trt": "torch2trt backend (built from source)",
    "onnx": "ONNX export (pip extra [train])",
    "ray": "distributed bag-eval engine (pip extra)",
    "scipy": "evaluation statistics (pip extra [train])",
    "openpyxl": "reading one public dataset's xlsx labels (evaluation only)",
}
#: ROS packages that the launch files start as processes (not imports)
PROCESS_KEYS = {"ros2bag", "rosbag2_storage_mcap"}


def test_package_xml_is_ament_python_format3():
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg not installed")
    pkg = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    assert pkg.name == "hirqa_ros"
    assert pkg.package_format == 3
    assert pkg.get_build_type() == "ament_python"
    deps = {d.name for d in pkg.exec_depends}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs"} <= deps


def _imports(paths) -> dict[str, set[str]]:
    """Top-level third-party modules imported by ``paths`` -> the files importing them."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "hirqa_ros":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _runtime_sources():
    """The node, CLI, bag tools and launch files (training/ is a separate, pip-only workflow)."""
    files = [p for p in (ROOT / "hirqa_ros").rglob("*.py") if "training" not in p.relative_to(ROOT).parts]
    return files + sorted((ROOT / "launch").glob("*.py"))


def test_every_import_has_a_package_xml_dependency():
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg not installed")
    pkg = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    deps = {d.name for d in pkg.exec_depends}
    imports = _imports(_runtime_sources())
    unmapped = {m: sorted(f) for m, f in imports.items() if m not in ROSDEP_KEYS and m not in OPTIONAL}
    assert not unmapped, f"imports with neither a rosdep key nor an optional-extra reason: {unmapped}"
    missing = {m: ROSDEP_KEYS[m] for m in imports if m in ROSDEP_KEYS and ROSDEP_KEYS[m] not in deps}
    assert not missing, f"package.xml lacks exec_depend for {missing}"
    assert PROCESS_KEYS <= deps
    unused = deps - set(ROSDEP_KEYS.values()) - PROCESS_KEYS
    assert not unused, f"package.xml depends on packages nothing uses: {unused}"


def test_optional_imports_are_not_at_module_level_of_the_node():
    """The node must start with only the rosdep keys: optional extras are imported lazily."""
    node_files = [ROOT / "hirqa_ros" / "node" / "main.py", ROOT / "hirqa_ros" / "node" / "quality_node.py"]
    for path in node_files:
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {(a.name if isinstance(n, ast.Import) else n.module or "").split(".")[0]
                 for n in top for a in (n.names if isinstance(n, ast.Import) else [n])}
        assert not names & set(OPTIONAL), f"{path.name} imports {names & set(OPTIONAL)} at module level"


def test_package_xml_names_each_import_the_code_makes():
    """The other direction: every rosdep-mapped module the runtime code imports is an exec_depend,
    and every exec_depend (beyond the processes the launch files start) is imported somewhere."""
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg not installed")
    deps = {d.name for d in catkin_pkg.parse_package(str(ROOT / "package.xml")).exec_depends}
    imported = {ROSDEP_KEYS[m] for m in _imports(_runtime_sources()) if m in ROSDEP_KEYS}
    assert imported == deps - PROCESS_KEYS
    assert "python3-rosbags-pip" in deps  # hirqa bag-eval / bag-play read bags with rosbags


def test_setup_py_entry_points_and_data_files():
    text = (ROOT / "setup.py").read_text()
    ast.parse(text)
    assert "hirqa = hirqa_ros.cli.main:main" in text
    assert "hirqa_node = hirqa_ros.node.main:main" in text
    assert (ROOT / "resource" / "hirqa_ros").exists()
    assert '(f"share/{PACKAGE}/config", _files("config/*.json"))' in text  # the Foxglove layout
    assert "setup.cfg" and "$base/lib/hirqa_ros" in (ROOT / "setup.cfg").read_text()


def test_cli_help_lists_subcommands(capsys):
    from hirqa_ros.cli.main import build_parser

    help_text = build_parser().format_help()
    for name in ("score", "export", "import-official", "bench"):
        assert name in help_text
