"""Packaging: package.xml is a valid format-3 ament_python manifest, setup.py installs what ROS needs."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_package_xml_is_ament_python_format3():
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg not installed")
    pkg = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    assert pkg.name == "hirqa_ros"
    assert pkg.package_format == 3
    assert pkg.get_build_type() == "ament_python"
    deps = {d.name for d in pkg.exec_depends}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs"} <= deps


def test_setup_py_entry_points_and_data_files():
    text = (ROOT / "setup.py").read_text()
    ast.parse(text)
    assert "hirqa = hirqa_ros.cli.main:main" in text
    assert "hirqa_node = hirqa_ros.node.main:main" in text
    assert (ROOT / "resource" / "hirqa_ros").exists()
    assert "setup.cfg" and "$base/lib/hirqa_ros" in (ROOT / "setup.cfg").read_text()


def test_cli_help_lists_subcommands(capsys):
    from hirqa_ros.cli.main import build_parser

    help_text = build_parser().format_help()
    for name in ("score", "export", "import-official", "bench"):
        assert name in help_text
