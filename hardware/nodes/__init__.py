"""Robot nodes (`realrl node <name>`): each runs as its own process on either ROS 2 backend."""
