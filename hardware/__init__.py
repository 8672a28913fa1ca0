"""ROS 2 layer (hardware.ros), robot nodes (sim, Franka, RealSense), the RosRobot client; teleop devices to come."""
