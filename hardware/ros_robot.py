"""RosRobot: the Robot contract over ROS 2 topics (any arm node: sim, Franka), with a watchdog on the state."""

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
from hardware.ros.convert import float_array_msg, from_stamp, header, image_array, joint_state_arrays, pose_array
from hardware.ros.msgs import Float64MultiArray, Image, JointState, PoseStamped, String, Twist, TwistStamped, Vector3
from hardware.topics import ArmTopics
from robot.core.errors import ConfigError, SafetyError, TransportError
from robot.core.interfaces import Robot
from robot.core.spec import ActionMode, EmbodimentSpec
from robot.core.types import Observation


@dataclass(frozen=True)
class RosRobotConfig:
    """How RosRobot finds and watches its robot node."""

    topics: ArmTopics = field(default_factory=ArmTopics)
    """Topic names (relative: `namespace` and `ros_args` remaps apply)."""
    namespace: str = ""
    """ROS namespace of the robot's topics."""
    objects: tuple[str, ...] = ()
    """Tracked objects: state/<name>_pose (and _rel to the TCP) from topics.object_pose."""
    watchdog_s: float = 0.5
    """No fresh joint state within this budget: the robot is held (nothing more is sent) and TransportError raised."""
    connect_timeout_s: float = 20.0
    """How long connect()/reset() wait for the node (discovery, a node restarting)."""
    lockstep: bool = True
    """observe() waits for a state newer than the one it last returned (a node publishing once per control
    period, like the sim node); False returns the newest state at once (pace the loop with RealTimeRate)."""
    sync_sources: bool = True
    """observe() also waits until the TCP pose, objects and images are stamped at least at the joint state's
    time (the sim node publishes them together); False on hardware, where sources run at their own rates."""
    joint_prefix: str = ""
    """Prefix of the joint names on the wire (e.g. 'fr3_' for franka_ros2)."""
    frame_id: str = "world"
    """Frame of outgoing commands."""
    node_name: str = "realrl_robot"
    """Name of the client node."""
    ros_args: tuple[str, ...] = ()
    """`--ros-args ...` for the client node (remaps, parameters)."""

    def __post_init__(self) -> None:
        if not self.watchdog_s > 0:
            raise ConfigError(f"RosRobotConfig.watchdog_s must be > 0, got {self.watchdog_s}")


@dataclass
class _Latest:
    msg: Any = None
    stamp: float = -math.inf
    rx: float = -math.inf  # time.monotonic() at reception


class RosRobot(Robot):
    """A robot behind a ROS 2 node. Commands go out as TwistStamped (ee-delta specs) or joint targets (joint specs)
    plus a gripper closure; observations are assembled from joint states, the TCP pose, tracked objects and
    images, every field stamped with its source's header time.

    Watchdog: if no fresh joint state arrives within `watchdog_s`, observe()/command() raise TransportError and
    nothing is published until reset() has reached the node again; the node itself holds when commands stop.
    """

    def __init__(self, spec: EmbodimentSpec, config: RosRobotConfig | None = None) -> None:
        self._spec = spec
        self.config = config or RosRobotConfig()
        c = self.config
        self._node: Node | None = None
        self._cond = threading.Condition()
        self._js = _Latest()
        self._pose = _Latest()
        self._objects = {name: _Latest() for name in c.objects}
        self._images = {cam.name: _Latest() for cam in spec.cameras}
        self._acks: dict[int, float] = {}
        self._last_returned = -math.inf
        self._min_stamp = -math.inf
        self._faulted: str | None = None
        self._request_id = int(time.time() * 1000) % 1_000_000_000  # distinct across client restarts
        self._grip = 0.0
        self._q_target: np.ndarray | None = None
        self.sent = 0
        """Commands published since connect()."""
        names = spec.joint_names
        self._wire_names = [c.joint_prefix + n for n in names]
        grip = spec.groups.get("gripper", ())
        self._finger = c.joint_prefix + grip[0] if grip else None
        self._finger2 = self._finger[:-1] + "2" if self._finger and self._finger.endswith("1") else None
        self._open_width = next((j.upper for j in spec.joints if grip and j.name == grip[0]), 1.0)

    # -- Robot contract ------------------------------------------------------------------------------------------
    @property
    def spec(self) -> EmbodimentSpec:
        """The embodiment this client drives (given at construction, readable before connect())."""
        return self._spec

    @property
    def is_connected(self) -> bool:
        """Whether the client node is up and a joint state has been seen."""
        return self._node is not None

    def connect(self) -> None:
        """Create the client node, subscribe, and wait for the first joint state."""
        if self._node is not None:
            return
        c, t = self.config, self.config.topics
        node = create_node(c.node_name, namespace=c.namespace, args=c.ros_args)
        self._node = node
        node.create_subscription(JointState, t.joint_states, self._on_joint_state, DEFAULT)
        node.create_subscription(PoseStamped, t.current_pose, self._store(self._pose), DEFAULT)
        for name, slot in self._objects.items():
            node.create_subscription(PoseStamped, t.object(name), self._store(slot), DEFAULT)
        for cam, slot in self._images.items():
            node.create_subscription(Image, t.camera(cam)[0], self._store(slot), DEFAULT)
        node.create_subscription(String, t.reset_done, self._on_ack, LATCHED)
        self._twist_pub: Publisher[TwistStamped] = node.create_publisher(TwistStamped, t.twist_command)
        self._joint_pub: Publisher[Float64MultiArray] = node.create_publisher(Float64MultiArray, t.joint_command)
        self._grip_pub: Publisher[Float64MultiArray] = node.create_publisher(Float64MultiArray, t.gripper_command)
        self._reset_pub: Publisher[String] = node.create_publisher(String, t.reset)
        node.spin_in_thread()
        with self._cond:
            if not self._cond.wait_for(lambda: self._js.msg is not None, c.connect_timeout_s):
                self.disconnect()
                raise TransportError(self._silence(f"no joint states after {c.connect_timeout_s:g} s"))

    def disconnect(self) -> None:
        """Stop the client node (the robot node keeps running and holds)."""
        node, self._node = self._node, None
        if node is not None:
            node.close()

    def observe(self) -> Observation:
        """The newest state (lockstep: the next one after the last returned), every field stamped at its source."""
        self._require()
        c = self.config
        with self._cond:
            ok = self._cond.wait_for(self._fresh, c.watchdog_s)
            if not ok:
                raise self._fault(f"no fresh state within the {c.watchdog_s:g} s watchdog budget")
            self._last_returned = self._js.stamp
            return self._assemble()

    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Clip to the action bounds and publish; nothing is sent while the link is down (TransportError)."""
        self._require()
        a = self._spec.action
        cmd = np.asarray(cmd, dtype=np.float64)
        if cmd.shape != (a.dim,):
            raise ConfigError(f"command shape {cmd.shape} != ({a.dim},) for {self._spec.name}")
        bad = ~np.isfinite(cmd)
        if bad.any():
            dims = [a.names[i] for i in np.flatnonzero(bad)]
            raise SafetyError(f"non-finite command in dimensions {dims}; nothing was sent, the robot holds")
        if self._faulted is not None:
            raise TransportError(f"link to the robot node is down ({self._faulted}); nothing was sent. "
                                 "Restart the node, then call reset()")
        age = time.monotonic() - self._js.rx
        if age > self.config.watchdog_s:
            raise self._fault(f"newest joint state is {age:.2f} s old (watchdog {self.config.watchdog_s:g} s)")
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

    def reset(self, state: dict[str, np.ndarray] | None = None) -> Observation:
        """Ask the node to home the robot (or go to state['joint_pos']); clears a watchdog fault once it answers."""
        payload: dict[str, Any] = {}
        if state is not None and "joint_pos" in state:
            payload["joint_pos"] = np.asarray(state["joint_pos"], dtype=np.float64).tolist()
        self.request_reset("robot", payload)
        self._grip = 0.0
        self._q_target = None
        return self.observe()

    def request_reset(self, kind: str, payload: dict[str, Any]) -> None:
        """Send a reset request ('robot' or 'task') and wait until the node has done it and published a state
        after it; the next observe() returns that state. Retries while the node is (re)connecting."""
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
            self._min_stamp = self._acks.pop(rid) - 1e-9  # stamps travel as integer nanoseconds
            self._last_returned = -math.inf
            if not self._cond.wait_for(self._fresh, self.config.connect_timeout_s):
                raise TransportError(self._silence(f"no state after the {kind} reset"))
            self._faulted = None
        node.logger.debug("%s reset %d done at %.3f", kind, rid, self._min_stamp)

    def now(self) -> float:
        """Robot clock: the newest joint-state stamp plus the wall time since it arrived."""
        return self._js.stamp + (time.monotonic() - self._js.rx)

    def hold_command(self) -> np.ndarray:
        """Zero delta (ee mode) or the last joint targets (the measured joints before any), gripper unchanged."""
        if self._spec.action.mode is ActionMode.EE_DELTA:
            return np.array([0.0] * (self._spec.action.dim - 1) + [self._grip])
        q = self._q_target
        if q is None:
            n_arm = len(self._spec.groups.get("arm", ())) or self._spec.action.dim - 1
            q = self._joints()[0][:n_arm]
        return np.append(q, self._grip)

    # -- internals -----------------------------------------------------------------------------------------------
    def _require(self) -> Node:
        if self._node is None:
            raise ConfigError("RosRobot is not connected: call connect() or use it as a context manager")
        return self._node

    def _silence(self, what: str) -> str:
        dom = os.environ.get("ROS_DOMAIN_ID", "0")
        topic = self._node.resolve(self.config.topics.joint_states) if self._node else self.config.topics.joint_states
        return (f"{what} on {topic} (ROS_DOMAIN_ID={dom}). Is the robot node running (e.g. `realrl node sim`) in "
                "the same domain, and CYCLONEDDS_URI the same on both sides?")

    def _fault(self, what: str) -> TransportError:
        self._faulted = what
        return TransportError(self._silence(what) + " The robot holds; nothing more is sent until reset().")

    def _on_joint_state(self, msg: JointState) -> None:
        joint_state_arrays(msg, self._wire_names)  # raises (drop + count) when the joints do not fit this robot
        self._store(self._js)(msg)

    def _store(self, slot: _Latest) -> Any:
        def put(msg: Any) -> None:
            with self._cond:
                slot.msg, slot.stamp, slot.rx = msg, from_stamp(msg.header.stamp), time.monotonic()
                self._cond.notify_all()
        return put

    def _on_ack(self, msg: String) -> None:
        d = json.loads(msg.data)
        with self._cond:
            self._acks[int(d["id"])] = float(d["stamp"])
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
            slots = [self._pose, *self._objects.values(), *self._images.values()]
            return all(s.stamp >= js.stamp for s in slots)
        return self._pose.msg is not None and all(s.msg is not None for s in (*self._objects.values(),
                                                                                *self._images.values()))

    def _joints(self) -> tuple[np.ndarray, np.ndarray]:
        pos, vel, _ = joint_state_arrays(self._js.msg, self._wire_names)
        return pos, vel

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
