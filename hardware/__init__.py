"""ROS 2 layer (hardware.ros), robot nodes (sim, Franka, RealSense, teleop), the RosRobot client, teleop devices."""
