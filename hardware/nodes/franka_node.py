"""The Franka node: realrl's TCP twist commands -> a clipped, rate-limited equilibrium pose for franka_ros2's
1 kHz compliant Cartesian controller. Nothing reaches the robot before the workspace and speed limits."""

from __future__ import annotations

import json
import signal
import sys
import time

import numpy as np

from hardware.geometry import quat_mul, rotation_error, rotvec_quat
from hardware.nodes.config import FrankaNodeConfig
from hardware.ros import DEFAULT, LATCHED, Node, Publisher, create_node, setup_logging
from hardware.ros.convert import pose_array, pose_msg
from hardware.ros.msgs import PoseStamped, String, TwistStamped
from hardware.ros.node import split_ros_args
from hardware.topics import ArmTopics


class FrankaNode:
    """Integrates each TwistStamped (one control period long) into the target pose, then limits it: speed,
    workspace box, lead over the measured TCP (position and angle). Non-finite twists are dropped and counted.
    Without commands for `command_timeout_s`, the target is re-anchored at the measured pose: the arm holds.

    Inputs: `servo_node/delta_twist_cmds` (from RosRobot) and the driver's measured
    `franka_robot_state_broadcaster/current_pose`; output: `cartesian_impedance_controller/equilibrium_pose`.
    Joint states and the pose go from the driver to the clients directly.
    """

    def __init__(self, config: FrankaNodeConfig, node: Node | None = None) -> None:
        self.config = config
        self.node = node or create_node("franka", namespace=config.namespace, args=config.ros_args)
        t = ArmTopics()
        n = self.node
        self.frame_id = str(n.declare_parameter("frame_id", "world"))
        self._lo = np.asarray(config.workspace_low, dtype=np.float64)
        self._hi = np.asarray(config.workspace_high, dtype=np.float64)
        self.measured: np.ndarray | None = None
        self.target: np.ndarray | None = None
        self._last_cmd = -np.inf
        self.counts = {"commands": 0, "speed_limited": 0, "workspace_clipped": 0, "lead_limited": 0, "anchored": 0}
        self.pub_target: Publisher[PoseStamped] = n.create_publisher(PoseStamped, t.pose_command, DEFAULT)
        self.pub_stats: Publisher[String] = n.create_publisher(String, "~/stats", LATCHED)
        n.create_subscription(PoseStamped, t.current_pose, self._on_pose, DEFAULT)
        self.sub_twist = n.create_subscription(TwistStamped, t.twist_command, self._on_twist, DEFAULT)
        n.create_timer(0.05, self._watchdog)
        n.create_timer(1.0, self.publish_stats)

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = pose_array(msg)
        if not np.all(np.isfinite(pose)):
            raise ValueError("non-finite measured pose")
        self.measured = pose

    def _on_twist(self, msg: TwistStamped) -> None:
        lin, ang = msg.twist.linear, msg.twist.angular
        v = np.array([lin.x, lin.y, lin.z], dtype=np.float64)
        w = np.array([ang.x, ang.y, ang.z], dtype=np.float64)
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            raise ValueError(f"non-finite twist {v.tolist()} {w.tolist()}: not applied")
        if self.measured is None:
            raise ValueError("no measured pose from the driver yet: twist not applied")
        if self.target is None or time.monotonic() - self._last_cmd > self.config.command_timeout_s:
            self.target = self.measured.copy()
            self.counts["anchored"] += 1
        self._last_cmd = time.monotonic()
        self.counts["commands"] += 1
        c, dt = self.config, 1.0 / self.config.control_hz
        speed, turn = float(np.linalg.norm(v)), float(np.linalg.norm(w))
        if speed > c.max_speed or turn > c.max_angular_speed:
            self.counts["speed_limited"] += 1
            v *= min(1.0, c.max_speed / max(speed, 1e-12))
            w *= min(1.0, c.max_angular_speed / max(turn, 1e-12))
        target = self.target.copy()
        target[:3] += v * dt
        target[3:] = quat_mul(rotvec_quat(w * dt), target[3:])
        self.target = self.limit(target)
        self.pub_target.publish(pose_msg(self.target, stamp=self.node.now(), frame_id=self.frame_id))

    def limit(self, target: np.ndarray) -> np.ndarray:
        """Workspace box, then the lead over the measured pose (position and orientation)."""
        assert self.measured is not None
        c, meas = self.config, self.measured
        clipped = np.minimum(np.maximum(target[:3], self._lo), self._hi)
        if not np.array_equal(clipped, target[:3]):
            self.counts["workspace_clipped"] += 1
        lead = clipped - meas[:3]
        dist = float(np.linalg.norm(lead))
        if dist > c.max_lead:
            clipped = meas[:3] + lead * (c.max_lead / dist)
            self.counts["lead_limited"] += 1
        q = target[3:] / np.linalg.norm(target[3:])
        err = rotation_error(q, meas[3:])
        angle = float(np.linalg.norm(err))
        if angle > c.max_lead_angle:
            q = quat_mul(rotvec_quat(err * (c.max_lead_angle / angle)), meas[3:])
            self.counts["lead_limited"] += 1
        return np.concatenate([clipped, q])

    def _watchdog(self) -> None:
        if self.target is not None and time.monotonic() - self._last_cmd > self.config.command_timeout_s:
            self.target = None  # the next command re-anchors at the measured pose; the controller holds its last

    def publish_stats(self) -> None:
        """~/stats: commands, limits applied, dropped twists."""
        self.pub_stats.publish(String(json.dumps({**self.counts, "dropped": self.sub_twist.dropped})))


def run(config: FrankaNodeConfig) -> None:
    """Entry point of `realrl node franka`."""
    setup_logging()
    franka = FrankaNode(config)
    signal.signal(signal.SIGINT, lambda *_: franka.node.request_shutdown())
    signal.signal(signal.SIGTERM, lambda *_: franka.node.request_shutdown())
    franka.node.logger.info("franka node up: twist at %g Hz -> equilibrium pose, workspace %s..%s",
                            config.control_hz, config.workspace_low, config.workspace_high)
    franka.node.spin()
    franka.node.close()


def main(argv: list[str] | None = None) -> None:
    """`python -m hardware.nodes.franka_node [flags] [--ros-args ...]`."""
    import dataclasses

    import tyro

    own, ros = split_ros_args(sys.argv[1:] if argv is None else argv)
    cfg = tyro.cli(FrankaNodeConfig, args=own, prog="franka_node")
    run(dataclasses.replace(cfg, ros_args=tuple(ros)) if ros else cfg)


if __name__ == "__main__":
    main()
