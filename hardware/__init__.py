"""ROS 2 layer, robot nodes, RosRobot client, teleop devices and camera readers (to be built: issues 6-8)."""
