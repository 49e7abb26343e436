"""Several cameras into ONE hirqa_node, so frames waiting from different cameras are scored in one batch.

ros2 launch hirqa_ros multi_camera.launch.py image_topics:=/front/image_raw,/rear/image_raw/compressed
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def _nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    topics = [t.strip() for t in arg("image_topics").split(",") if t.strip()]
    overrides = {
        "image_topics": topics,
        "backend": arg("backend"),
        "model_path": arg("model_path"),
        "max_rate_hz": float(arg("max_rate_hz")),
        "use_sim_time": arg("use_sim_time").lower() in ("true", "1", "yes"),
    }
    return [Node(
        package="hirqa_ros",
        executable="hirqa_node",
        name="hirqa_node",
        namespace=arg("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[arg("params_file"), overrides],
    )]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("image_topics", default_value="/camera0/image_raw,/camera1/image_raw",
                              description="comma-separated topics (a /compressed suffix = CompressedImage)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("hirqa_ros"), "config",
                                                                  "hirqa.yaml"]),
                              description="ros__parameters YAML"),
        DeclareLaunchArgument("backend", default_value="auto",
                              description="auto | tensorrt | torch | onnxruntime | torch2trt"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="model directory; empty = the installed default model"),
        DeclareLaunchArgument("max_rate_hz", default_value="0.0",
                              description="score at most this many frames/s per camera; 0 = no limit"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true when replaying a bag with --clock"),
        OpaqueFunction(function=_nodes),
    ])
