"""rosbag2 I/O without ROS (on rosbags): read in time order, write MCAP, summarise, import datasets."""
