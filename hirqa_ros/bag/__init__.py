"""Rosbag evaluation without a ROS runtime (rosbags only): read bags robustly, score their frames,
compare with labels, plot, and build labelled test bags; many bags at once on a local pool or Ray
(fleet*, engines, report). See docs/bag.md."""
