"""TopicRobot: the client half every robot node shares (RosRobot, HumanoidRobot): the latest message of each source,
connect-and-wait, the watchdog on the joint state and realrl's reset protocol (resent until the node answers)."""

from __future__ import annotations

import abc
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np

from hardware.ros import DEFAULT, LATCHED, Node, Publisher, create_node
from hardware.ros.convert import from_stamp, joint_state_arrays
from hardware.ros.msgs import JointState, PoseStamped, String
from robot.core.errors import ConfigError, SafetyError, TransportError
from robot.core.interfaces import Robot
from robot.core.spec import EmbodimentSpec
from robot.core.types import Observation


class RobotTopics(Protocol):
    """The topics every robot node serves a TopicRobot on (hardware.topics.ArmTopics and
    hardware.unitree_g1.HumanoidTopics have them)."""

    @property
    def joint_states(self) -> str:
        """sensor_msgs/JointState of the robot's joints."""

    @property
    def reset(self) -> str:
        """std_msgs/String JSON reset request {"id", "kind": "robot"|"task", ...}."""

    @property
    def reset_done(self) -> str:
        """std_msgs/String JSON {"id", "stamp"[, "error"]} (latched): the request is done."""

    def object(self, name: str) -> str:
        """The pose topic of one tracked object."""


@dataclass(frozen=True)
class TopicRobotConfig:
    """How a TopicRobot finds and watches its robot node (RosRobotConfig and HumanoidRobotConfig build on it)."""

    topics: RobotTopics
    """Topic names (relative: `namespace` and `ros_args` remaps apply)."""
    namespace: str = ""
    """ROS namespace of the robot's topics."""
    objects: tuple[str, ...] = ()
    """Tracked objects: state/<name>_pose (RosRobot: also _rel, to the TCP) from topics.object_pose."""
    watchdog_s: float = 0.5
    """No fresh joint state within this budget: nothing more is sent and TransportError is raised (the node holds;
    the humanoid node, no longer hearing from this client, goes to damping after its own command timeout)."""
    connect_timeout_s: float = 20.0
    """How long connect()/reset() wait for the node (discovery, a node restarting)."""
    lockstep: bool = True
    """observe() waits for a state newer than the one it last returned (a node publishing once per control
    period, like the sim node); False returns the newest state at once (pace the loop with RealTimeRate)."""
    sync_sources: bool = True
    """observe() also waits until the other sources (TCP pose, objects, images) are stamped at least at the joint
    state's time (the sim node publishes them together); False on hardware, where sources run at their own rates."""
    node_name: str = "realrl_robot"
    """Name of the client node."""
    ros_args: tuple[str, ...] = ()
    """`--ros-args ...` for the client node (remaps, parameters)."""

    def __post_init__(self) -> None:
        if not self.watchdog_s > 0:
            raise ConfigError(f"{type(self).__name__}.watchdog_s must be > 0, got {self.watchdog_s}")


@dataclass
class Latest:
    """The newest message of one source, its header stamp and when it arrived."""

    msg: Any = None
    stamp: float = -math.inf
    rx: float = -math.inf  # time.monotonic() at reception


ConfigT = TypeVar("ConfigT", bound=TopicRobotConfig)


class TopicRobot(Robot, Generic[ConfigT]):
    """A robot behind a node that publishes joint states (plus tracked objects) and serves realrl's reset protocol.

    Watchdog: if no fresh joint state arrives within `watchdog_s`, observe()/command() raise TransportError and
    nothing is published until reset() has reached the node again. Subclasses add their topics (`_open`), the
    observation (`_assemble`), the commands and the hold command.
    """

    _node_kind: ClassVar[str]
    """What the node is called in error messages ("the robot node", "the humanoid node")."""
    _silence_hint: ClassVar[str]
    """What to check when the node is silent (appended to the error message)."""
    _awaited: ClassVar[str] = "joint states"
    """What connect() waits for (see _ready), as its error message names it."""

    def __init__(self, spec: EmbodimentSpec, config: ConfigT, wire_names: Sequence[str]) -> None:
        self._spec = spec
        self.config = config
        self._wire_names = list(wire_names)  # the spec's joints as the node names them
        self._node: Node | None = None
        self._cond = threading.Condition()
        self._js = Latest()
        self._objects = {name: Latest() for name in config.objects}
        self._acks: dict[int, dict[str, Any]] = {}
        self._last_returned = -math.inf
        self._min_stamp = -math.inf
        self._faulted: str | None = None
        self._request_id = int(time.time() * 1000) % 1_000_000_000  # distinct across client restarts
        self._q_target: np.ndarray | None = None
        self.sent = 0
        """Commands published since connect()."""

    # -- Robot contract ------------------------------------------------------------------------------------------
    @property
    def spec(self) -> EmbodimentSpec:
        """The embodiment this client drives (given at construction, readable before connect())."""
        return self._spec

    @property
    def is_connected(self) -> bool:
        """Whether the client node is up."""
        return self._node is not None

    def connect(self) -> None:
        """Create the client node, subscribe, and wait for the node's first joint state (see _ready)."""
        if self._node is not None:
            return
        c, t = self.config, self.config.topics
        node = create_node(c.node_name, namespace=c.namespace, args=c.ros_args)
        self._node = node
        node.create_subscription(JointState, t.joint_states, self._on_joint_state, DEFAULT)
        for name, slot in self._objects.items():
            node.create_subscription(PoseStamped, t.object(name), self._store(slot), DEFAULT)
        node.create_subscription(String, t.reset_done, self._on_ack, LATCHED)
        self._reset_pub: Publisher[String] = node.create_publisher(String, t.reset)
        self._open(node)
        node.spin_in_thread()
        with self._cond:
            ok = self._cond.wait_for(self._ready, c.connect_timeout_s)
        if not ok:
            self.disconnect()
            raise TransportError(self._silence(f"no {self._awaited} after {c.connect_timeout_s:g} s"))

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
            if not self._cond.wait_for(self._fresh, c.watchdog_s):
                raise self._fault(f"no fresh state within the {c.watchdog_s:g} s watchdog budget")
            self._last_returned = self._js.stamp
            return self._assemble()

    def reset(self, state: dict[str, np.ndarray] | None = None) -> Observation:
        """Ask the node to home the robot (or go to state['joint_pos']) and return the first state after it; clears
        a watchdog fault once the node answers."""
        payload: dict[str, Any] = {}
        if state is not None and "joint_pos" in state:
            payload["joint_pos"] = np.asarray(state["joint_pos"], dtype=np.float64).tolist()
        self.request_reset("robot", payload)
        self._forget_targets()
        return self.observe()

    def request_reset(self, kind: str, payload: dict[str, Any]) -> None:
        """Send a reset request ('robot' or 'task') and wait until the node has done it and published a state
        after it; the next observe() returns that state. Retries while the node is (re)connecting; SafetyError
        when the node refuses it."""
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
            self._min_stamp = float(ack["stamp"]) - 1e-9  # stamps travel as integer nanoseconds
            self._last_returned = -math.inf
            if not self._cond.wait_for(self._fresh, self.config.connect_timeout_s):
                raise TransportError(self._silence(f"no state after the {kind} reset"))
            self._faulted = None
        node.logger.debug("%s reset %d done at %.3f", kind, rid, self._min_stamp)

    def now(self) -> float:
        """Robot clock: the newest joint-state stamp plus the wall time since it arrived."""
        return self._js.stamp + (time.monotonic() - self._js.rx)

    # -- what subclasses add -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _open(self, node: Node) -> None:
        """Subscribe to the node's other sources and create the command publishers."""

    @abc.abstractmethod
    def _assemble(self) -> Observation:
        """The observation from the latest messages (called with the condition held, once _fresh() holds)."""

    def _ready(self) -> bool:
        """Whether connect() has what it waits for (called with the condition held)."""
        return self._js.msg is not None

    def _sources(self) -> list[Latest]:
        """The sources besides the joint state that observe() waits for."""
        return list(self._objects.values())

    def _forget_targets(self) -> None:
        """Drop what was commanded before a reset: hold_command() starts again from the measured state."""
        self._q_target = None

    # -- internals -----------------------------------------------------------------------------------------------
    def _require(self) -> Node:
        if self._node is None:
            raise ConfigError(f"{type(self).__name__} is not connected: call connect() or use it as a context manager")
        return self._node

    def _as_command(self, cmd: np.ndarray) -> np.ndarray:
        """cmd as float64 of the action's shape (ConfigError otherwise); requires a connection."""
        self._require()
        a = self._spec.action
        cmd = np.asarray(cmd, dtype=np.float64)
        if cmd.shape != (a.dim,):
            raise ConfigError(f"command shape {cmd.shape} != ({a.dim},) for {self._spec.name}")
        return cmd

    def _check_link(self) -> None:
        """TransportError (and a watchdog fault) unless the newest joint state is within the watchdog budget."""
        if self._faulted is not None:
            raise TransportError(f"link to the {self._node_kind} node is down ({self._faulted}); nothing was sent. "
                                 "Restart the node, then call reset()")
        age = time.monotonic() - self._js.rx
        if age > self.config.watchdog_s:
            raise self._fault(f"newest joint state is {age:.2f} s old (watchdog {self.config.watchdog_s:g} s)")

    def _silence(self, what: str) -> str:
        dom = os.environ.get("ROS_DOMAIN_ID", "0")
        topic = self._node.resolve(self.config.topics.joint_states) if self._node else self.config.topics.joint_states
        return f"{what} on {topic} (ROS_DOMAIN_ID={dom}). {self._silence_hint}"

    def _fault(self, what: str) -> TransportError:
        self._faulted = what
        return TransportError(self._silence(what) + " The robot holds; nothing more is sent until reset().")

    def _on_joint_state(self, msg: JointState) -> None:
        joint_state_arrays(msg, self._wire_names)  # raises (drop + count) when the joints do not fit this robot
        self._store(self._js)(msg)

    def _store(self, slot: Latest) -> Callable[[Any], None]:
        def put(msg: Any) -> None:
            with self._cond:
                slot.msg, slot.stamp, slot.rx = msg, from_stamp(msg.header.stamp), time.monotonic()
                self._cond.notify_all()
        return put

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
            return all(s.stamp >= js.stamp for s in self._sources())
        return all(s.msg is not None for s in self._sources())

    def _joints(self) -> tuple[np.ndarray, np.ndarray]:
        pos, vel, _ = joint_state_arrays(self._js.msg, self._wire_names)
        return pos, vel
