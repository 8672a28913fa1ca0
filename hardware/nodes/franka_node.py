"""The Franka node: realrl's TCP twist commands -> a clipped, rate-limited equilibrium pose for franka_ros2's
1 kHz compliant Cartesian controller. Nothing reaches the robot before the workspace and speed limits."""

from __future__ import annotations

import json
import time

import numpy as np

from hardware.geometry import quat_mul, rotation_error, rotvec_quat
from hardware.nodes.config import FrankaNodeConfig
from hardware.nodes.entry import run_cli, serve
from hardware.ros import DEFAULT, LATCHED, Node, Publisher, create_node
from hardware.ros.convert import from_stamp, pose_array, pose_msg
from hardware.ros.msgs import PoseStamped, String, TwistStamped
from hardware.topics import ArmTopics


class FrankaNode:
    """Integrates each TwistStamped (one control period long) into the target pose, then limits it: speed,
    workspace box, lead over the measured TCP (position and angle). Non-finite twists are dropped and counted.
    Without commands for `command_timeout_s`, the target is re-anchored at the measured pose: the arm holds.

    Inputs: `servo_node/delta_twist_cmds` (from RosRobot) and the driver's measured
    `franka_robot_state_broadcaster/current_pose`; output: `cartesian_impedance_controller/equilibrium_pose`.
    Joint states and the pose go from the driver to the clients directly.

    Resets (`realrl/reset`, kind "robot", what RosRobot.reset() sends): the target is driven to `home_pose` at
    homing speed through the same limits, twists are ignored meanwhile, and `realrl/reset_done` acknowledges once
    the measured TCP is there (with the measured pose's stamp); twists stamped before that are dropped afterwards.
    A real scene cannot be reset by a node: "task" resets are refused (logged, never acknowledged); on hardware the
    operator resets the scene.
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
        self._measured_stamp = 0.0
        self._tcp_speed = np.inf  # m/s over the last >= 50 ms of measured poses (unknown until then)
        self._speed_ref: tuple[float, np.ndarray] | None = None  # (stamp, position) the speed is measured from
        self.target: np.ndarray | None = None
        self._last_cmd = -np.inf
        self.counts = {"commands": 0, "speed_limited": 0, "workspace_clipped": 0, "lead_limited": 0, "anchored": 0,
                       "stale_dropped": 0}
        self.pub_target: Publisher[PoseStamped] = n.create_publisher(PoseStamped, t.pose_command, DEFAULT)
        self.pub_stats: Publisher[String] = n.create_publisher(String, "~/stats", LATCHED)
        self.pub_ack: Publisher[String] = n.create_publisher(String, t.reset_done, LATCHED)
        n.create_subscription(PoseStamped, t.current_pose, self._on_pose, DEFAULT)
        self.sub_twist = n.create_subscription(TwistStamped, t.twist_command, self._on_twist, DEFAULT)
        n.create_subscription(String, t.reset, self._on_reset, DEFAULT)
        self._home = np.asarray(config.home_pose, dtype=np.float64)
        self._homing: tuple[int, float] | None = None  # (request id, started at)
        self._homed: tuple[int, float] | None = None  # (request id, ack stamp) of the last finished homing
        n.create_timer(0.05, self._watchdog)
        n.create_timer(1.0 / config.control_hz, self._home_step)
        n.create_timer(1.0, self.publish_stats)

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = pose_array(msg)
        if not np.all(np.isfinite(pose)):
            raise ValueError("non-finite measured pose")
        stamp = from_stamp(msg.header.stamp)
        # Over >= 50 ms, not pose to pose: a 1 kHz driver's position jitter would read as speed.
        ref = self._speed_ref
        if ref is None or stamp < ref[0]:  # the first pose, or a clock that went back (a restarted sim)
            self._speed_ref = (stamp, pose[:3].copy())
        elif stamp - ref[0] >= 0.05:
            self._tcp_speed = float(np.linalg.norm(pose[:3] - ref[1])) / (stamp - ref[0])
            self._speed_ref = (stamp, pose[:3].copy())
        self.measured = pose
        self._measured_stamp = stamp

    def _on_twist(self, msg: TwistStamped) -> None:
        lin, ang = msg.twist.linear, msg.twist.angular
        v = np.array([lin.x, lin.y, lin.z], dtype=np.float64)
        w = np.array([ang.x, ang.y, ang.z], dtype=np.float64)
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            raise ValueError(f"non-finite twist {v.tolist()} {w.tolist()}: not applied")
        if self.measured is None:
            raise ValueError("no measured pose from the driver yet: twist not applied")
        if self._homing is not None:
            raise ValueError("homing in progress: twist not applied")
        if self._homed is not None and from_stamp(msg.header.stamp) < self._homed[1] - 1e-6:
            # Stamped with a state from before the homing ack: the client computed it for a pose the arm has left
            # (DDS does not order this topic against the reset topic). Applying it would move the homed arm.
            self.counts["stale_dropped"] += 1
            return
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

    def _on_reset(self, msg: String) -> None:
        req = json.loads(msg.data)
        rid, kind = int(req["id"]), str(req["kind"])
        if self._homed is not None and self._homed[0] == rid:  # a resend of a finished request: answer again
            self.pub_ack.publish(String(json.dumps({"id": rid, "stamp": self._homed[1]})))
            return
        if self._homing is not None and self._homing[0] == rid:
            return  # a resend while homing
        if kind != "robot":
            raise ValueError(f"a {kind!r} reset cannot be done by the robot's node: on hardware the operator resets "
                             "the scene (deploy/collect wait for Enter); refused")
        if "joint_pos" in req:
            raise ValueError("the Franka node homes in Cartesian space; a joint_pos reset is not supported")
        self._homing = (rid, time.monotonic())
        self.counts["homings"] = self.counts.get("homings", 0) + 1
        self.node.logger.info("homing to %s (request %d)", np.round(self._home, 3).tolist(), rid)

    def _home_step(self) -> None:
        """One control period of homing: move the target toward home within the homing speeds and the limits."""
        if self._homing is None or self.measured is None:
            return
        c, dt = self.config, 1.0 / self.config.control_hz
        rid, started = self._homing
        meas = self.measured
        pos_err = float(np.linalg.norm(self._home[:3] - meas[:3]))
        ang_err = float(np.linalg.norm(rotation_error(self._home[3:], meas[3:])))
        # Done once the target has arrived too: with the target still travelling the arm would move on after the
        # acknowledgement, and a client's first state would not be the home pose.
        arrived = self.target is not None and float(np.linalg.norm(self._home[:3] - self.target[:3])) < 1e-6
        # ... and the arm at rest: an arm that lags its target passes through the tolerance still moving, and would
        # overshoot home after the acknowledgement (seen in sim: 1.6 cm past it).
        settled = self._tcp_speed <= c.home_settle_speed
        if arrived and pos_err <= c.home_tolerance and ang_err <= 0.05 and settled:
            # In the robot's clock (the driver's stamps, sim time in sim): clients wait for states from here on.
            stamp = self._measured_stamp
            self._homing, self._homed = None, (rid, stamp)
            self.target = None  # the next command re-anchors at the measured pose
            self.pub_ack.publish(String(json.dumps({"id": rid, "stamp": stamp})))
            self.node.logger.info("homed (request %d)", rid)
            return
        if time.monotonic() - started > c.home_timeout_s:
            self._homing = None
            self.target = None
            self.node.logger.error("homing abandoned after %.0f s, %.3f m / %.2f rad from home: the arm holds where "
                                   "it is; check for an obstacle, then reset again", c.home_timeout_s, pos_err, ang_err)
            return
        target = meas.copy() if self.target is None else self.target.copy()
        step = self._home[:3] - target[:3]
        dist = float(np.linalg.norm(step))
        target[:3] += step * min(1.0, c.home_speed * dt / max(dist, 1e-12))
        rot = rotation_error(self._home[3:], target[3:])
        angle = float(np.linalg.norm(rot))
        target[3:] = quat_mul(rotvec_quat(rot * min(1.0, c.home_angular_speed * dt / max(angle, 1e-12))), target[3:])
        self.target = self.limit(target)
        self.pub_target.publish(pose_msg(self.target, stamp=self.node.now(), frame_id=self.frame_id))

    def _watchdog(self) -> None:
        if self._homing is not None:
            return
        if self.target is not None and time.monotonic() - self._last_cmd > self.config.command_timeout_s:
            self.target = None  # the next command re-anchors at the measured pose; the controller holds its last

    def publish_stats(self) -> None:
        """~/stats: commands, limits applied, dropped twists."""
        self.pub_stats.publish(String(json.dumps({**self.counts, "dropped": self.sub_twist.dropped})))

    def spin(self) -> None:
        """Run until Ctrl-C / SIGTERM (the controller holds its last equilibrium pose)."""
        c = self.config
        self.node.logger.info("franka node up: twist at %g Hz -> equilibrium pose, workspace %s..%s",
                              c.control_hz, c.workspace_low, c.workspace_high)
        self.node.spin()
        self.node.close()


def run(config: FrankaNodeConfig) -> None:
    """Entry point of `realrl node franka`."""
    serve(lambda: FrankaNode(config))


def main(argv: list[str] | None = None) -> None:
    """`python -m hardware.nodes.franka_node [flags] [--ros-args ...]`."""
    run_cli(FrankaNodeConfig, run, "franka_node", argv)


if __name__ == "__main__":
    main()
