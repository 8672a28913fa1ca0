"""A tiny node for the ROS tests: echoes `ping` to `pong` times the `gain` parameter, reports its counters."""

import json
import signal
import sys

from hardware.ros import LATCHED, create_node, setup_logging
from hardware.ros.msgs import JointState, String


def main() -> None:
    setup_logging()
    node = create_node("echo", args=sys.argv[1:])
    gain = float(node.declare_parameter("gain", 1.0))
    pong = node.create_publisher(JointState, "pong")
    stats = node.create_publisher(String, "~/stats", LATCHED)

    def on_ping(msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            raise ValueError("names and positions differ in length")
        msg.position = [p * gain for p in msg.position]
        pong.publish(msg)

    sub = node.create_subscription(JointState, "ping", on_ping)
    node.create_timer(0.05, lambda: stats.publish(String(json.dumps({"received": sub.received,
                                                                     "dropped": sub.dropped}))))
    signal.signal(signal.SIGINT, lambda *_: node.request_shutdown())
    signal.signal(signal.SIGTERM, lambda *_: node.request_shutdown())
    node.logger.info("echo up: %s -> %s, gain %s", sub.topic, pong.topic, gain)
    node.spin()
    node.close()


if __name__ == "__main__":
    main()
