"""HumanoidRobot: the Robot contract (joint targets) over the humanoid node's topics, with a watchdog on the state."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware.ros import DEFAULT, LATCHED, Node, Publisher, create_node
from hardware.ros.convert import float_array_msg, from_stamp, joint_state_arrays, pose_array
from hardware.ros.msgs import Float64MultiArray, JointState, PoseStamped, String
from hardware.unitree_g1 import HumanoidTopics
from robot.core.errors import ConfigError, SafetyError, TransportError
from robot.core.interfaces import Robot
from robot.core.spec import ActionMode, EmbodimentSpec
from robot.core.types import Observation


@dataclass(frozen=True)
class HumanoidRobotConfig:
    """How HumanoidRobot finds and watches the humanoid node."""

    topics: HumanoidTopics = field(default_factory=HumanoidTopics)
    """Topic names (relative: `namespace` and `ros_args` remaps apply)."""
    namespace: str = ""
    """ROS namespace of the node's client-facing topics."""
    objects: tuple[str, ...] = ()
    """Tracked objects: state/<name>_pose from topics.object_pose."""
    watchdog_s: float = 0.5
    """No fresh joint state within this budget: nothing more is sent and TransportError is raised (the node, no
    longer hearing from this client, goes to damping after its own command timeout)."""
    connect_timeout_s: float = 20.0
    """How long connect()/reset() wait for the node (discovery, a node restarting)."""
    lockstep: bool = True
    """observe() waits for a state newer than the one it last returned (a robot publishing once per control period,
    like the sim node posing as a G1); False returns the newest state at once (pace the loop with RealTimeRate)."""
    sync_sources: bool = True
    """observe() also waits until the object poses are stamped at least at the joint state's time (the sim node
    publishes them together); False on hardware, where trackers run at their own rates."""
    node_name: str = "realrl_humanoid"
    """Name of the client node."""
    ros_args: tuple[str, ...] = ()
    """`--ros-args ...` for the client node."""

    def __post_init__(self) -> None:
        if not self.watchdog_s > 0:
            raise ConfigError(f"HumanoidRobotConfig.watchdog_s must be > 0, got {self.watchdog_s}")


@dataclass
class _Latest:
    msg: Any = None
    stamp: float = -math.inf
    rx: float = -math.inf  # time.monotonic() at reception


class HumanoidRobot(Robot):
    """A humanoid behind the humanoid node, driven by absolute joint targets (a JOINT_POS spec whose joints are the
    node's commanded joints, in any order: they are matched by name). Observations: state/joint_pos and joint_vel
    of the spec's joints, state/<object>_pose of tracked objects, time/state.

    Watchdog: no fresh joint state within `watchdog_s` -> TransportError and nothing more is sent until reset()
    reaches the node again. A node in damping (a fault it latched) refuses commands: command() raises SafetyError
    with the node's reason until rearm().
    """

    def __init__(self, spec: EmbodimentSpec, config: HumanoidRobotConfig | None = None) -> None:
        if spec.action.mode is not ActionMode.JOINT_POS:
            raise ConfigError(f"HumanoidRobot sends joint targets; {spec.name} has {spec.action.mode.value} actions "
                              "(run IK on the client first, e.g. hardware.nodes.g1_remote.G1ShadowRobot)")
        self._spec = spec
        self.config = config or HumanoidRobotConfig()
        self._node: Node | None = None
        self._cond = threading.Condition()
        self._js = _Latest()
        self._objects = {name: _Latest() for name in self.config.objects}
        self._status: dict[str, Any] | None = None
        self._acks: dict[int, dict[str, Any]] = {}
        self._last_returned = -math.inf
        self._min_stamp = -math.inf
        self._faulted: str | None = None
        self._request_id = int(time.time() * 1000) % 1_000_000_000
        self._order: np.ndarray | None = None  # spec action index of each of the node's command joints
        self._q_target: np.ndarray | None = None
        self.sent = 0
        """Commands published since connect()."""

    # -- Robot contract ------------------------------------------------------------------------------------------
    @property
    def spec(self) -> EmbodimentSpec:
        """The embodiment (given at construction, readable before connect())."""
        return self._spec

    @property
    def is_connected(self) -> bool:
        """Whether the client node is up."""
        return self._node is not None

    @property
    def status(self) -> dict[str, Any]:
        """The node's newest humanoid/status (state, fault, counters)."""
        with self._cond:
            return dict(self._status or {})

    def connect(self) -> None:
        """Create the client node, subscribe, wait for the node's status and first joint state; check that the
        node commands exactly this spec's joints."""
        if self._node is not None:
            return
        c, t = self.config, self.config.topics
        node = create_node(c.node_name, namespace=c.namespace, args=c.ros_args)
        self._node = node
        node.create_subscription(JointState, t.joint_states, self._on_joint_state, DEFAULT)
        for name, slot in self._objects.items():
            node.create_subscription(PoseStamped, t.object(name), self._store(slot), DEFAULT)
        node.create_subscription(String, t.status, self._on_status, LATCHED)
        node.create_subscription(String, t.reset_done, self._on_ack, LATCHED)
        self._cmd_pub: Publisher[Float64MultiArray] = node.create_publisher(Float64MultiArray, t.joint_command)
        self._reset_pub: Publisher[String] = node.create_publisher(String, t.reset)
        self._arm_pub: Publisher[String] = node.create_publisher(String, t.arm)
        node.spin_in_thread()
        with self._cond:
            ok = self._cond.wait_for(lambda: self._js.msg is not None and self._status is not None,
                                     c.connect_timeout_s)
        if not ok:
            self.disconnect()
            raise TransportError(self._silence(f"no joint states and status after {c.connect_timeout_s:g} s"))
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

    def disconnect(self) -> None:
        """Stop the client node (the humanoid node holds, then damps once it misses this client)."""
        node, self._node = self._node, None
        if node is not None:
            node.close()

    def observe(self) -> Observation:
        """The newest state (lockstep: the next one after the last returned), stamped at the robot."""
        self._require()
        c = self.config
        with self._cond:
            if not self._cond.wait_for(self._fresh, c.watchdog_s):
                raise self._fault(f"no fresh state within the {c.watchdog_s:g} s watchdog budget")
            self._last_returned = self._js.stamp
            return self._assemble()

    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Clip to the action bounds and publish the targets; refused while the link is down (TransportError) or the
        node is in damping (SafetyError)."""
        self._require()
        a = self._spec.action
        cmd = np.asarray(cmd, dtype=np.float64)
        if cmd.shape != (a.dim,):
            raise ConfigError(f"command shape {cmd.shape} != ({a.dim},) for {self._spec.name}")
        bad = ~np.isfinite(cmd)
        if bad.any():
            raise SafetyError(f"non-finite command for {[a.names[i] for i in np.flatnonzero(bad)]}; nothing was "
                              "sent, the robot holds")
        if self._faulted is not None:
            raise TransportError(f"link to the humanoid node is down ({self._faulted}); nothing was sent. Restart "
                                 "the node, then call reset()")
        age = time.monotonic() - self._js.rx
        if age > self.config.watchdog_s:
            raise self._fault(f"newest joint state is {age:.2f} s old (watchdog {self.config.watchdog_s:g} s)")
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
        payload: dict[str, Any] = {}
        if state is not None and "joint_pos" in state:
            payload["joint_pos"] = np.asarray(state["joint_pos"], dtype=np.float64).tolist()
        self.request_reset("robot", payload)
        self._q_target = None
        return self.observe()

    def request_reset(self, kind: str, payload: dict[str, Any]) -> None:
        """Send a reset request ('robot' or 'task') and wait until it is done and a state after it has arrived."""
        node = self._require()
        self._request_id += 1
        rid = self._request_id
        msg = String(json.dumps({"id": rid, "kind": kind, **payload}))
        end = time.monotonic() + self.config.connect_timeout_s
        with self._cond:
            while rid not in self._acks:
                left = end - time.monotonic()
                if left <= 0:
                    raise TransportError(self._silence(f"no answer to the {kind} reset request after "
                                                       f"{self.config.connect_timeout_s:g} s"))
                self._reset_pub.publish(msg)  # volatile topic: resend until the (re)started node has matched us
                self._cond.wait_for(lambda: rid in self._acks, min(left, 0.5))
            ack = self._acks.pop(rid)
            if "error" in ack:
                raise SafetyError(f"{kind} reset refused: {ack['error']}")
            self._min_stamp = float(ack["stamp"]) - 1e-9
            self._last_returned = -math.inf
            if not self._cond.wait_for(self._fresh, self.config.connect_timeout_s):
                raise TransportError(self._silence(f"no state after the {kind} reset"))
            self._faulted = None
        node.logger.debug("%s reset %d done at %.3f", kind, rid, self._min_stamp)

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
        self._q_target = None

    def now(self) -> float:
        """Robot clock: the newest joint-state stamp plus the wall time since it arrived."""
        return self._js.stamp + (time.monotonic() - self._js.rx)

    def hold_command(self) -> np.ndarray:
        """The last targets sent (the measured joints before any)."""
        if self._q_target is not None:
            return self._q_target.copy()
        return self._joints()[0]

    # -- internals -----------------------------------------------------------------------------------------------
    def _require(self) -> Node:
        if self._node is None:
            raise ConfigError("HumanoidRobot is not connected: call connect() or use it as a context manager")
        return self._node

    def _silence(self, what: str) -> str:
        dom = os.environ.get("ROS_DOMAIN_ID", "0")
        topic = self._node.resolve(self.config.topics.joint_states) if self._node else self.config.topics.joint_states
        return (f"{what} on {topic} (ROS_DOMAIN_ID={dom}). Is the humanoid node (`realrl node humanoid`) running in "
                "the same domain, with the robot (or `realrl node sim --pose-as g1`) publishing rt/lowstate?")

    def _fault(self, what: str) -> TransportError:
        self._faulted = what
        return TransportError(self._silence(what) + " The robot holds; nothing more is sent until reset().")

    def _on_joint_state(self, msg: JointState) -> None:
        joint_state_arrays(msg, self._spec.joint_names)  # raises (drop + count) when the joints do not fit
        self._store(self._js)(msg)

    def _store(self, slot: _Latest) -> Any:
        def put(msg: Any) -> None:
            with self._cond:
                slot.msg, slot.stamp, slot.rx = msg, from_stamp(msg.header.stamp), time.monotonic()
                self._cond.notify_all()
        return put

    def _on_status(self, msg: String) -> None:
        with self._cond:
            self._status = json.loads(msg.data)
            self._cond.notify_all()

    def _on_ack(self, msg: String) -> None:
        d = json.loads(msg.data)
        with self._cond:
            self._acks[int(d["id"])] = d
            self._cond.notify_all()

    def _fresh(self) -> bool:
        js = self._js
        if js.msg is None or js.stamp < self._min_stamp:
            return False
        if self.config.lockstep and not js.stamp > self._last_returned:
            return False
        if not self.config.lockstep and time.monotonic() - js.rx > self.config.watchdog_s:
            return False
        if self.config.sync_sources:
            return all(s.stamp >= js.stamp for s in self._objects.values())
        return all(s.msg is not None for s in self._objects.values())

    def _joints(self) -> tuple[np.ndarray, np.ndarray]:
        pos, vel, _ = joint_state_arrays(self._js.msg, self._spec.joint_names)
        return pos, vel

    def _assemble(self) -> Observation:
        pos, vel = self._joints()
        obs: Observation = {"state/joint_pos": pos.astype(np.float32), "state/joint_vel": vel.astype(np.float32)}
        for name, slot in self._objects.items():
            obs[f"state/{name}_pose"] = pose_array(slot.msg).astype(np.float32)
        obs["time/state"] = np.array(self._js.stamp, dtype=np.float64)
        return obs
