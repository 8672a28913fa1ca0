"""ROS 2 layer: one node API over rclpy or pure-Python Cyclone DDS, wire-compatible message types, QoS presets."""

from hardware.ros.loopback import loopback_config, use_loopback
from hardware.ros.node import Node, Publisher, RosArgs, Subscription, Timer, backend_name, create_node, setup_logging
from hardware.ros.qos import CLOCK, DEFAULT, LATCHED, SENSOR_DATA, Durability, QosProfile, Reliability

__all__ = [
    "CLOCK",
    "DEFAULT",
    "LATCHED",
    "SENSOR_DATA",
    "Durability",
    "Node",
    "Publisher",
    "QosProfile",
    "Reliability",
    "RosArgs",
    "Subscription",
    "Timer",
    "backend_name",
    "create_node",
    "loopback_config",
    "setup_logging",
    "use_loopback",
]
