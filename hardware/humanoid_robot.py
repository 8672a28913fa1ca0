"""HumanoidRobot: the Robot contract (joint targets) over the humanoid node's topics, with a watchdog on the state."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware.ros import LATCHED, Node, Publisher
from hardware.ros.convert import float_array_msg, pose_array
from hardware.ros.msgs import Float64MultiArray, String
from hardware.topic_robot import TopicRobot, TopicRobotConfig
from hardware.unitree_g1 import HumanoidTopics
from robot.core.errors import ConfigError, SafetyError, TransportError
from robot.core.spec import ActionMode, EmbodimentSpec
from robot.core.types import Observation


@dataclass(frozen=True)
class HumanoidRobotConfig(TopicRobotConfig):
    """How HumanoidRobot finds and watches the humanoid node."""

    topics: HumanoidTopics = field(default_factory=HumanoidTopics)
    """Topic names (relative: `namespace` and `ros_args` remaps apply)."""
    node_name: str = "realrl_humanoid"
    """Name of the client node."""


class HumanoidRobot(TopicRobot[HumanoidRobotConfig]):
    """A humanoid behind the humanoid node, driven by absolute joint targets (a JOINT_POS spec whose joints are the
    node's commanded joints, in any order: they are matched by name). Observations: state/joint_pos and joint_vel
    of the spec's joints, state/<object>_pose of tracked objects, time/state.

    Watchdog: no fresh joint state within `watchdog_s` -> TransportError and nothing more is sent until reset()
    reaches the node again. A node in damping (a fault it latched) refuses commands: command() raises SafetyError
    with the node's reason until rearm().
    """

    _node_kind = "humanoid"
    _silence_hint = ("Is the humanoid node (`realrl node humanoid`) running in the same domain, with the robot (or "
                     "`realrl node sim --pose-as g1`) publishing rt/lowstate?")
    _awaited = "joint states and status"

    def __init__(self, spec: EmbodimentSpec, config: HumanoidRobotConfig | None = None) -> None:
        if spec.action.mode is not ActionMode.JOINT_POS:
            raise ConfigError(f"HumanoidRobot sends joint targets; {spec.name} has {spec.action.mode.value} actions "
                              "(run IK on the client first, e.g. hardware.nodes.g1_remote.G1ShadowRobot)")
        super().__init__(spec, config or HumanoidRobotConfig(), spec.joint_names)
        self._status: dict[str, Any] | None = None
        self._order: np.ndarray | None = None  # spec action index of each of the node's command joints

    @property
    def status(self) -> dict[str, Any]:
        """The node's newest humanoid/status (state, fault, counters)."""
        with self._cond:
            return dict(self._status or {})

    def connect(self) -> None:
        """Create the client node, subscribe, wait for the node's status and first joint state; check that the
        node commands exactly this spec's joints."""
        super().connect()
        try:
            self._order = self._command_order(self.status["command_joints"])
        except ConfigError:
            self.disconnect()
            raise

    def _command_order(self, node_joints: list[str]) -> np.ndarray:
        names = list(self._spec.action.names)
        if sorted(names) != sorted(node_joints):
            raise ConfigError(
                f"the humanoid node commands {node_joints} but {self._spec.name} sends {names}; start the node with "
                "the matching --waist / --hands flags")
        return np.array([names.index(j) for j in node_joints], dtype=np.intp)

    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Clip to the action bounds and publish the targets; refused while the link is down (TransportError) or the
        node is in damping (SafetyError)."""
        cmd = self._as_command(cmd)
        a = self._spec.action
        bad = ~np.isfinite(cmd)
        if bad.any():
            raise SafetyError(f"non-finite command for {[a.names[i] for i in np.flatnonzero(bad)]}; nothing was "
                              "sent, the robot holds")
        self._check_link()
        status = self.status
        if status.get("state") == "damping":
            raise SafetyError(f"the humanoid node is in damping mode: {status.get('fault')}. Nothing was sent. Fix "
                              "the cause, then call rearm()")
        sent = np.minimum(np.maximum(cmd, a.low_array), a.high_array)
        assert self._order is not None
        self._cmd_pub.publish(float_array_msg(sent[self._order], "joints"))
        self._q_target = sent.copy()
        self.sent += 1
        return sent

    def reset(self, state: dict[str, np.ndarray] | None = None) -> Observation:
        """Reset the robot through the node (the sim teleports home, or to state['joint_pos']; on hardware the node
        drives it home) and return the first state after it. A node that went to damping only because its client
        paused (between episodes) is re-armed first; any other fault needs rearm()."""
        if self._node is not None and self.status.get("fault_kind") == "client_silent":
            self.rearm()
        return super().reset(state)

    def rearm(self, timeout_s: float = 5.0) -> None:
        """Ask the node to leave damping (it holds the measured pose); SafetyError with its reason if it refuses."""
        self._require()
        self._request_id += 1
        rid = self._request_id
        end = time.monotonic() + timeout_s

        def answered() -> bool:
            s = self._status or {}
            return s.get("armed_id") == rid or (s.get("refused") or {}).get("id") == rid

        with self._cond:
            while not answered():
                left = end - time.monotonic()
                if left <= 0:
                    raise TransportError(f"no answer to re-arm request {rid} after {timeout_s:g} s")
                self._arm_pub.publish(String(json.dumps({"id": rid})))
                self._cond.wait_for(answered, min(left, 0.5))
            status = dict(self._status or {})
        if status.get("armed_id") != rid:
            raise SafetyError(f"the humanoid node refused to re-arm: {status['refused']['reason']}")
        self._forget_targets()

    def hold_command(self) -> np.ndarray:
        """The last targets sent (the measured joints before any)."""
        if self._q_target is not None:
            return self._q_target.copy()
        return self._joints()[0]

    # -- the TopicRobot hooks ------------------------------------------------------------------------------------
    def _open(self, node: Node) -> None:
        t = self.config.topics
        node.create_subscription(String, t.status, self._on_status, LATCHED)
        self._cmd_pub: Publisher[Float64MultiArray] = node.create_publisher(Float64MultiArray, t.joint_command)
        self._arm_pub: Publisher[String] = node.create_publisher(String, t.arm)

    def _ready(self) -> bool:
        return self._js.msg is not None and self._status is not None

    def _on_status(self, msg: String) -> None:
        with self._cond:
            self._status = json.loads(msg.data)
            self._cond.notify_all()

    def _assemble(self) -> Observation:
        pos, vel = self._joints()
        obs: Observation = {"state/joint_pos": pos.astype(np.float32), "state/joint_vel": vel.astype(np.float32)}
        for name, slot in self._objects.items():
            obs[f"state/{name}_pose"] = pose_array(slot.msg).astype(np.float32)
        obs["time/state"] = np.array(self._js.stamp, dtype=np.float64)
        return obs
