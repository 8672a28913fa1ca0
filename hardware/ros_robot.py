"""RosRobot: the Robot contract over ROS 2 topics (any arm node: sim, Franka), with a watchdog on the state."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware.ros import DEFAULT, Node, Publisher
from hardware.ros.convert import float_array_msg, header, image_array, pose_array
from hardware.ros.msgs import Float64MultiArray, Image, PoseStamped, Twist, TwistStamped, Vector3
from hardware.topic_robot import Latest, TopicRobot, TopicRobotConfig
from hardware.topics import ArmTopics
from robot.core.errors import SafetyError
from robot.core.spec import ActionMode, EmbodimentSpec
from robot.core.types import Observation


@dataclass(frozen=True)
class RosRobotConfig(TopicRobotConfig):
    """How RosRobot finds and watches its robot node."""

    topics: ArmTopics = field(default_factory=ArmTopics)
    """Topic names (relative: `namespace` and `ros_args` remaps apply)."""
    joint_prefix: str = ""
    """Prefix of the joint names on the wire (e.g. 'fr3_' for franka_ros2)."""
    frame_id: str = "world"
    """Frame of outgoing commands."""


class RosRobot(TopicRobot[RosRobotConfig]):
    """A robot behind a ROS 2 node. Commands go out as TwistStamped (ee-delta specs) or joint targets (joint specs)
    plus a gripper closure; observations are assembled from joint states, the TCP pose, tracked objects and
    images, every field stamped with its source's header time.

    Watchdog: if no fresh joint state arrives within `watchdog_s`, observe()/command() raise TransportError and
    nothing is published until reset() has reached the node again; the node itself holds when commands stop.
    """

    _node_kind = "robot"
    _silence_hint = ("Is the robot node running (e.g. `realrl node sim`) in the same domain, and CYCLONEDDS_URI the "
                     "same on both sides?")

    def __init__(self, spec: EmbodimentSpec, config: RosRobotConfig | None = None) -> None:
        c = config or RosRobotConfig()
        super().__init__(spec, c, [c.joint_prefix + n for n in spec.joint_names])
        self._pose = Latest()
        self._images = {cam.name: Latest() for cam in spec.cameras}
        self._grip = 0.0
        grip = spec.groups.get("gripper", ())
        self._finger = c.joint_prefix + grip[0] if grip else None
        self._finger2 = self._finger[:-1] + "2" if self._finger and self._finger.endswith("1") else None
        self._open_width = next((j.upper for j in spec.joints if grip and j.name == grip[0]), 1.0)

    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Clip to the action bounds and publish; nothing is sent while the link is down (TransportError)."""
        cmd = self._as_command(cmd)
        a = self._spec.action
        bad = ~np.isfinite(cmd)
        if bad.any():
            dims = [a.names[i] for i in np.flatnonzero(bad)]
            raise SafetyError(f"non-finite command in dimensions {dims}; nothing was sent, the robot holds")
        self._check_link()
        sent = np.minimum(np.maximum(cmd, a.low_array), a.high_array)
        stamp = header(self._js.stamp, self.config.frame_id)
        if a.mode is ActionMode.EE_DELTA:
            hz = self._spec.control_hz  # a delta per control period is a velocity over that period
            lin, ang = sent[:3] * hz, sent[3:6] * hz
            self._twist_pub.publish(TwistStamped(header=stamp, twist=Twist(
                linear=Vector3(x=lin[0], y=lin[1], z=lin[2]), angular=Vector3(x=ang[0], y=ang[1], z=ang[2]))))
        else:
            n_arm = len(self._spec.groups.get("arm", ())) or a.dim - 1
            self._q_target = sent[:n_arm].copy()
            self._joint_pub.publish(float_array_msg(sent[:n_arm], "joints"))
        self._grip = float(sent[-1])
        self._grip_pub.publish(float_array_msg(sent[-1:], "gripper"))
        self.sent += 1
        return sent

    def hold_command(self) -> np.ndarray:
        """Zero delta (ee mode) or the last joint targets (the measured joints before any), gripper unchanged."""
        if self._spec.action.mode is ActionMode.EE_DELTA:
            return np.array([0.0] * (self._spec.action.dim - 1) + [self._grip])
        q = self._q_target
        if q is None:
            n_arm = len(self._spec.groups.get("arm", ())) or self._spec.action.dim - 1
            q = self._joints()[0][:n_arm]
        return np.append(q, self._grip)

    # -- the TopicRobot hooks ------------------------------------------------------------------------------------
    def _open(self, node: Node) -> None:
        t = self.config.topics
        node.create_subscription(PoseStamped, t.current_pose, self._store(self._pose), DEFAULT)
        for cam, slot in self._images.items():
            node.create_subscription(Image, t.camera(cam)[0], self._store(slot), DEFAULT)
        self._twist_pub: Publisher[TwistStamped] = node.create_publisher(TwistStamped, t.twist_command)
        self._joint_pub: Publisher[Float64MultiArray] = node.create_publisher(Float64MultiArray, t.joint_command)
        self._grip_pub: Publisher[Float64MultiArray] = node.create_publisher(Float64MultiArray, t.gripper_command)

    def _sources(self) -> list[Latest]:
        return [self._pose, *self._objects.values(), *self._images.values()]

    def _forget_targets(self) -> None:
        super()._forget_targets()
        self._grip = 0.0

    def _assemble(self) -> Observation:
        pos, vel = self._joints()
        obs: Observation = {"state/joint_pos": pos.astype(np.float32), "state/joint_vel": vel.astype(np.float32)}
        ee = pose_array(self._pose.msg)
        obs["state/ee_pose"] = ee.astype(np.float32)
        if self._finger is not None:
            names = list(self._js.msg.name)
            f1 = float(self._js.msg.position[names.index(self._finger)])
            f2 = float(self._js.msg.position[names.index(self._finger2)]) if self._finger2 in names else f1
            obs["state/gripper"] = np.array([1.0 - (f1 + f2) / (2 * self._open_width)], np.float32)
        for name, slot in self._objects.items():
            p = pose_array(slot.msg)
            obs[f"state/{name}_pose"] = p.astype(np.float32)
            obs[f"state/{name}_rel"] = (p[:3] - obs["state/ee_pose"][:3]).astype(np.float32)
        obs["time/state"] = np.array(self._js.stamp, dtype=np.float64)
        for cam, slot in self._images.items():
            obs[f"image/{cam}"] = image_array(slot.msg).copy()
            obs[f"time/{cam}"] = np.array(slot.stamp, dtype=np.float64)
        return obs
