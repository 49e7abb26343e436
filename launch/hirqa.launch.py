"""One camera: hirqa_node reads base topic `image` (remap it with image_topic:=) in an optional namespace.

ros2 launch hirqa_ros hirqa.launch.py namespace:=robot1 image_topic:=camera/image_raw \
    image_transport:=compressed

Every argument that sets a parameter defaults to "" and is passed only when given, so the params
file (default: the installed config/hirqa.yaml) rules. Topics are relative: with namespace:=robot1
and image_topic:=camera/image_raw the node reads /robot1/camera/image_raw(/compressed) and
publishes /robot1/camera/image_raw_quality and /robot1/camera/image_raw_accepted(/compressed).
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from hirqa_ros.node.launch_args import parameter_overrides
from launch import LaunchDescription

#: launch arguments that become node parameters when set (name -> description)
PARAMETER_ARGS = {
    "image_transport": "raw | compressed (default: the params file's)",
    "backend": "auto | tensorrt | torch | onnxruntime | torch2trt (default: the params file's)",
    "engine_path": "pre-built TensorRT engine (.plan); default: the params file's (empty = build/cache one)",
    "model_path": "model directory (default: the params file's; there empty = the installed model)",
    "gate_mode": "state (B_accepted at camera rate under the fresh verdict) | scored (only scored OK frames)",
    "autostart": "true: configure + activate at start; false: wait for lifecycle transitions",
    "use_sim_time": "true when replaying a bag with --clock",
}


def _nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    overrides = parameter_overrides({name: arg(name) for name in PARAMETER_ARGS})
    image_topic = arg("image_topic").strip()
    return [Node(
        package="hirqa_ros",
        executable="hirqa_node",
        name="hirqa_node",
        namespace=arg("namespace"),
        output="screen",
        emulate_tty=True,
        # the params file first; launch arguments that were given override it
        parameters=[arg("params_file"), overrides] if overrides else [arg("params_file")],
        remappings=[("image", image_topic)] if image_topic else [],
        arguments=["--ros-args", "--log-level", arg("log_level")],
    )]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its topics"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("hirqa_ros"), "config",
                                                                  "hirqa.yaml"]),
                              description="ros__parameters YAML of the node"),
        DeclareLaunchArgument("image_topic", default_value="",
                              description="remap the input base topic `image` to this (relative = in the "
                                          "namespace); empty = no remapping"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
        *[DeclareLaunchArgument(name, default_value="", description=text)
          for name, text in PARAMETER_ARGS.items()],
        OpaqueFunction(function=_nodes),
    ])
