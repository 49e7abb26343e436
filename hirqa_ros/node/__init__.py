"""The ROS 2 quality node ``hirqa_node``: the only package that imports rclpy.

``params`` (the parameters, from the option table ``hirqa_ros.options``), ``stats`` (per-camera
counters and /diagnostics status, ROS-free), ``quality_node`` (the rclpy node), ``main`` (the console
script), ``bench``, ``gate_bench`` and ``harness`` (their ROS client side).
"""
