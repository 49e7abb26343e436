"""Several cameras into ONE hirqa_node (frames waiting from different cameras are scored in one batch).

ros2 launch hirqa_ros multi_camera.launch.py namespace:=robot1 \
    remappings:=front/image:=/sensors/front/image_raw,rear/image:=/sensors/rear/image_raw

The default params file (config/hirqa_multi_camera.yaml) names two relative base topics,
`front/image` and `rear/image`; remappings point them at the real camera topics, as in any
ROS 2 launch tree. Outputs are siblings of the remapped bases, e.g.
/sensors/front/image_raw_quality. Arguments that set parameters default to "" and are passed only
when given; the params file rules otherwise.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from hirqa_ros.node.launch_args import parameter_overrides, remappings
from launch import LaunchDescription

#: launch arguments that become node parameters when set (name -> description)
PARAMETER_ARGS = {
    "image_topics": "comma-separated base topics (default: the params file's)",
    "image_transport": "raw | compressed, or a comma-separated list with one per topic",
    "backend": "auto | tensorrt | torch | onnxruntime | torch2trt",
    "engine_path": "pre-built TensorRT engine (.plan); default: the params file's (empty = build/cache one)",
    "model_path": "model directory (default: the params file's)",
    "max_rate_hz": "score at most this many frames/s per camera; 0 = no limit",
    "gate_mode": "state (B_accepted at camera rate under the fresh verdict) | scored (only scored OK frames)",
    "autostart": "true: configure + activate at start; false: wait for lifecycle transitions",
    "use_sim_time": "true when replaying a bag with --clock",
}


def _nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    overrides = parameter_overrides({name: arg(name) for name in PARAMETER_ARGS})
    return [Node(
        package="hirqa_ros",
        executable="hirqa_node",
        name="hirqa_node",
        namespace=arg("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[arg("params_file"), overrides] if overrides else [arg("params_file")],
        remappings=remappings(arg("remappings")),
        arguments=["--ros-args", "--log-level", arg("log_level")],
    )]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its topics"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("hirqa_ros"), "config",
                                                                  "hirqa_multi_camera.yaml"]),
                              description="ros__parameters YAML of the node"),
        DeclareLaunchArgument("remappings", default_value="",
                              description="comma-separated from:=to topic remappings, e.g. "
                                          "front/image:=/sensors/front/image_raw"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
        *[DeclareLaunchArgument(name, default_value="", description=text)
          for name, text in PARAMETER_ARGS.items()],
        OpaqueFunction(function=_nodes),
    ])
