"""Replay a bag into hirqa_node and record its outputs (needs a ROS 2 install with rosbag2).

ros2 launch hirqa_ros bag_replay.launch.py bag:=/data/drive1 image_topics:=/front/image_raw,/rear/image_raw
    [image_transport:=raw|compressed] [rate:=1.0] [backend:=...] [model_path:=DIR]
    [record_dir:=/data/drive1_quality] [storage:=mcap]

`ros2 bag play --clock` publishes the images and /clock, the node runs with use_sim_time:=true
(its quality messages keep the images' header stamps), and `ros2 bag record` stores each
camera's B_quality and /diagnostics. image_topics are the recorded base topics (a compressed
camera: the base, with image_transport:=compressed). Everything stops a few seconds after the
bag ends. Without rosbag2 use `hirqa bag-play BAG --clock` and `hirqa bag-eval` (docs/bag.md).
"""
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    OpaqueFunction,
    RegisterEventHandler,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from hirqa_ros.node.launch_args import parameter_overrides
from hirqa_ros.topics import CameraTopics, per_camera
from launch import LaunchDescription


def _actions(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    given = ("image_topics", "image_transport", "backend", "model_path")
    overrides = parameter_overrides({name: arg(name) for name in given})
    overrides["use_sim_time"] = True
    topics = overrides["image_topics"]
    kinds = per_camera(overrides["image_transport"], len(topics))
    cameras = [CameraTopics(t, kind) for t, kind in zip(topics, kinds)]
    bag = arg("bag")
    record_dir = arg("record_dir") or bag.rstrip("/") + "_quality"
    node = Node(
        package="hirqa_ros",
        executable="hirqa_node",
        name="hirqa_node",
        # a namespace ("" = the root) makes launch_ros write the overrides under the node's own name
        # (/hirqa_node) instead of /**: there a list would not replace the params file's
        # `image_transport: raw` (rcl keeps the earlier string when a later /** value is a list)
        namespace="",
        output="screen",
        emulate_tty=True,
        parameters=[arg("params_file"), overrides],
        arguments=["--ros-args", "--log-level", arg("log_level")],
    )
    record = ExecuteProcess(
        cmd=["ros2", "bag", "record", "-o", record_dir, "-s", arg("storage"), "--use-sim-time",
             *[c.quality for c in cameras], "/diagnostics"],
        output="screen",
    )
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", bag, "--clock", "--rate", arg("rate"),
             "--topics", *[c.input for c in cameras]],
        output="screen",
    )
    # give the node time to load its model (and build an engine) and the recorder time to subscribe
    delayed_play = TimerAction(period=float(arg("start_delay")), actions=[play])
    stop_after_play = RegisterEventHandler(OnProcessExit(
        target_action=play,
        on_exit=[TimerAction(period=3.0, actions=[EmitEvent(event=Shutdown(reason="bag finished"))])],
    ))
    return [node, record, delayed_play, stop_after_play]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="bag to replay (rosbag2 directory or file)"),
        DeclareLaunchArgument("image_topics", default_value="/camera/image_raw",
                              description="comma-separated base image topics to replay and score"),
        DeclareLaunchArgument("image_transport", default_value="raw",
                              description="raw | compressed (or one per topic, comma-separated)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto | tensorrt | torch | onnxruntime | torch2trt (default: the "
                                          "params file's)"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="model directory (default: the params file's)"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("hirqa_ros"), "config",
                                                                  "hirqa.yaml"]),
                              description="ros__parameters YAML of the node"),
        DeclareLaunchArgument("record_dir", default_value="",
                              description="output bag of the recorded quality topics; default <bag>_quality"),
        DeclareLaunchArgument("storage", default_value="mcap", description="storage of the output bag"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
        DeclareLaunchArgument("start_delay", default_value="5.0",
                              description="seconds between starting the node and starting playback"),
        OpaqueFunction(function=_actions),
    ])
