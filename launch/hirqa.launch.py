"""One camera: hirqa_node scores <image_topic> and publishes <image_topic>/quality, /accepted, /diagnostics.

ros2 launch hirqa_ros hirqa.launch.py image_topic:=/camera/image_raw backend:=auto use_sim_time:=false
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def _nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    overrides = {
        "image_topics": [arg("image_topic")],
        "backend": arg("backend"),
        "model_path": arg("model_path"),
        "engine_path": arg("engine_path"),
        "use_sim_time": arg("use_sim_time").lower() in ("true", "1", "yes"),
    }
    return [Node(
        package="hirqa_ros",
        executable="hirqa_node",
        name="hirqa_node",
        namespace=arg("namespace"),
        output="screen",
        emulate_tty=True,
        # the params file first, launch arguments override it
        parameters=[arg("params_file"), overrides],
    )]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic (a /compressed suffix = CompressedImage)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("hirqa_ros"), "config",
                                                                  "hirqa.yaml"]),
                              description="ros__parameters YAML"),
        DeclareLaunchArgument("backend", default_value="auto",
                              description="auto | tensorrt | torch | onnxruntime | torch2trt"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="model directory; empty = the installed default model"),
        DeclareLaunchArgument("engine_path", default_value="",
                              description="pre-built TensorRT engine (.plan); empty = build/cache one"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true when replaying a bag with --clock"),
        OpaqueFunction(function=_nodes),
    ])
