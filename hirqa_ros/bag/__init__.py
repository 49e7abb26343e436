"""Rosbag evaluation without a ROS runtime (rosbags only): read bags robustly, score their frames,
compare with labels, plot, and build labelled test bags. See docs/bag.md."""
