"""The teleop node: a device on this machine drives a robot node (or a recording session) on another over ROS 2."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from hardware.nodes.config import TeleopNodeConfig
from hardware.nodes.entry import run_cli, serve
from hardware.ros import DEFAULT, Node, Publisher, create_node
from hardware.ros.convert import float_array_msg, header
from hardware.ros.msgs import Float64MultiArray, String, Twist, TwistStamped, Vector3
from hardware.teleop.base import ACTION_DIM, MOTION_DIMS
from hardware.teleop.ros import EVENTS_TOPIC
from hardware.topics import ArmTopics
from robot.wrappers import OperatorState

LINGER_S = 1.0
"""After a replayed stream ends, keep publishing holds this long so reliable readers get the last readings."""


class TeleopNode:
    """Reads the device once per period and publishes TwistStamped + gripper closure (ArmTopics names) and a JSON
    events message. E-STOP holds (zero twists, gripper unchanged) until START; PAUSE and a released deadman hold
    too; a non-finite or misshapen reading is never published, a zero twist goes out instead."""

    def __init__(self, config: TeleopNodeConfig, node: Node | None = None, device: Any = None) -> None:
        self.config = config
        self.device = device if device is not None else config.teleop.make()
        self.node = node or create_node("teleop", namespace=config.namespace, args=config.ros_args)
        t, n = ArmTopics(), self.node
        self.pub_twist: Publisher[TwistStamped] = n.create_publisher(TwistStamped, t.twist_command, DEFAULT)
        self.pub_grip: Publisher[Float64MultiArray] = n.create_publisher(Float64MultiArray, t.gripper_command, DEFAULT)
        self.pub_events: Publisher[String] = n.create_publisher(String, EVENTS_TOPIC, DEFAULT)
        self.state = OperatorState("always")
        self.seq = 0
        self.closure = 0.0
        self.rejected = 0
        """Readings that were not finite or not 7-D (never published)."""
        self._finished_at: float | None = None
        self._started = False
        self.device.connect()
        self.timer = n.create_timer(1.0 / config.rate_hz, self.tick)

    def _listened(self) -> bool:
        return self.pub_twist.matched_count() > 0 or self.pub_events.matched_count() > 0

    def tick(self) -> None:
        """One period: read, latch, publish."""
        if not self._started:
            if self.config.wait_for_subscriber and not self._listened():
                return
            self._started = True
            self.node.logger.info("a reader is there: publishing")
        cmd = self.device.read()
        self.state.observe(cmd)
        a = np.asarray(cmd.action, dtype=np.float64)
        ok = a.shape == (ACTION_DIM,) and bool(np.all(np.isfinite(a)))
        if not ok:
            self.rejected += 1
        held = self.state.held or not cmd.active or not ok
        motion = np.zeros(MOTION_DIMS) if held else np.clip(a[:MOTION_DIMS], -1.0, 1.0)
        if ok and not self.state.estopped:
            self.closure = float(np.clip((a[-1] + 1.0) / 2.0, 0.0, 1.0))
        c = self.config
        lin, ang = motion[:3] * c.linear_speed, motion[3:] * c.angular_speed
        stamp = header(self.node.now(), c.frame_id)
        self.pub_twist.publish(TwistStamped(header=stamp, twist=Twist(
            linear=Vector3(x=lin[0], y=lin[1], z=lin[2]), angular=Vector3(x=ang[0], y=ang[1], z=ang[2]))))
        self.pub_grip.publish(float_array_msg(np.array([self.closure]), "gripper"))
        self.seq += 1
        self.pub_events.publish(String(json.dumps({
            "seq": self.seq, "events": sorted(e.value for e in cmd.events), "active": bool(cmd.active),
            "held": self.state.held})))
        if getattr(self.device, "finished", False):
            now = time.monotonic()
            self._finished_at = self._finished_at or now
            if now - self._finished_at > LINGER_S:
                self.node.logger.info("the stream is played: %d readings", self.seq)
                self.node.request_shutdown()

    def spin(self) -> None:
        """Run until Ctrl-C / SIGTERM (or the end of a replayed stream); the device is released either way."""
        describe = getattr(self.device, "describe", None)
        self.node.logger.info("teleop node up at %g Hz in namespace '/%s': %s", self.config.rate_hz,
                              self.config.namespace, describe() if describe else self.device)
        try:
            self.node.spin()
        finally:
            self.device.disconnect()
            self.node.close()


def run(config: TeleopNodeConfig) -> None:
    """Entry point of `realrl node teleop`."""
    serve(lambda: TeleopNode(config))


def main(argv: list[str] | None = None) -> None:
    """`python -m hardware.nodes.teleop_node [flags] [--ros-args ...]`."""
    run_cli(TeleopNodeConfig, run, "teleop_node", argv)


if __name__ == "__main__":
    main()
