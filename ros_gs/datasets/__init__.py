"""Datasets as plug-ins: folders and captures on disk -> frames of numpy arrays (no ROS)."""
