"""The `ros` device: commands of a teleop node on another machine (`realrl node teleop`), received over ROS 2."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hardware.teleop.base import MOTION_DIMS, TeleopDevice, compose_action, events_of
from robot.core.errors import ConfigError, DeviceError
from robot.core.types import TeleopCommand, TeleopEvent

EVENTS_TOPIC = "events"
"""std_msgs/String JSON, one per teleop tick: {"seq": n, "events": ["start", ...], "active": bool, "held": str}."""


@dataclass(frozen=True)
class RosTeleopConfig:
    """Receive a remote teleop node's commands: its TwistStamped (TCP velocity) and gripper closure on the arm topics
    (hardware.topics.ArmTopics) plus its events topic, all under `namespace`. The speeds must match the node's."""

    namespace: str = "teleop"
    """ROS namespace the teleop node publishes in (its --namespace)."""
    linear_speed: float = 0.6
    """m/s that the node sends for a full deflection (the node's --linear-speed)."""
    angular_speed: float = 4.0
    """rad/s that the node sends for a full deflection (the node's --angular-speed)."""
    timeout_s: float = 0.3
    """No twist for this long: zero motion and `active` False (the link or the node stopped)."""
    connect_timeout_s: float = 15.0
    """How long connect() waits for the teleop node's first message."""

    name: ClassVar[str] = "ros"

    def __post_init__(self) -> None:
        if not (self.linear_speed > 0 and self.angular_speed > 0 and self.timeout_s > 0):
            raise ConfigError("--ros.linear-speed, --ros.angular-speed and --ros.timeout-s must be > 0")

    def make(self) -> RosTeleop:
        """The device (its node starts at connect())."""
        return RosTeleop(self)


class RosTeleop(TeleopDevice):
    """Teleoperator fed by a teleop node over ROS 2: motion from the newest twist (scaled back to [-1, 1]), gripper
    from the newest closure, events accumulated between reads. A stale twist means no motion, never the last one."""

    name: ClassVar[str] = "ros"

    def __init__(self, config: RosTeleopConfig | None = None) -> None:
        super().__init__()
        self.config = config or RosTeleopConfig()
        self._node: Any = None
        self._lock = threading.Lock()
        self._seen = threading.Event()
        self._twist = np.zeros(MOTION_DIMS)
        self._twist_rx = -math.inf
        self._grip = 0.0
        self._events: set[TeleopEvent] = set()
        self._active = False
        self.received = 0
        """Event-topic messages received."""

    def connect(self) -> None:
        """Start the client node and wait for the teleop node's first events message."""
        if self._node is not None:
            return
        from hardware.ros import DEFAULT, create_node
        from hardware.ros.msgs import Float64MultiArray, String, TwistStamped
        from hardware.topics import ArmTopics

        c, t = self.config, ArmTopics()
        node = create_node("realrl_teleop_client", namespace=c.namespace)
        node.create_subscription(TwistStamped, t.twist_command, self._on_twist, DEFAULT)
        node.create_subscription(Float64MultiArray, t.gripper_command, self._on_gripper, DEFAULT)
        node.create_subscription(String, EVENTS_TOPIC, self._on_events, DEFAULT)
        node.spin_in_thread()
        self._node = node
        if not self._seen.wait(c.connect_timeout_s):
            topic = node.resolve(EVENTS_TOPIC)
            self.disconnect()
            raise DeviceError(
                f"no teleop node heard on {topic} within {c.connect_timeout_s:g} s. Start one on the device's "
                f"machine (`realrl node teleop --device keyboard --namespace {c.namespace}`), in the same "
                "ROS_DOMAIN_ID and with the same CYCLONEDDS_URI/network settings"
            )

    def disconnect(self) -> None:
        """Stop the client node."""
        node, self._node = self._node, None
        if node is not None:
            node.close()

    def _on_twist(self, msg: Any) -> None:
        lin, ang = msg.twist.linear, msg.twist.angular
        v = np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z], dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"non-finite twist {v.tolist()}: dropped")
        with self._lock:
            self._twist = v
            self._twist_rx = time.monotonic()

    def _on_gripper(self, msg: Any) -> None:
        g = np.asarray(msg.data, dtype=np.float64)
        if g.shape != (1,) or not np.isfinite(g[0]):
            raise ValueError(f"gripper closure must be one finite value, got {g.tolist()}")
        with self._lock:
            self._grip = float(np.clip(g[0], 0.0, 1.0))

    def _on_events(self, msg: Any) -> None:
        d = json.loads(msg.data)
        evs = events_of(d.get("events", ()))
        with self._lock:
            self._events |= evs
            self._active = bool(d.get("active", True))
            self.received += 1
        self._seen.set()

    def read(self) -> TeleopCommand:
        """Newest motion and gripper, and the events received since the last read."""
        if self._node is None:
            self.connect()
        c = self.config
        with self._lock:
            fresh = time.monotonic() - self._twist_rx <= c.timeout_s
            twist = self._twist.copy() if fresh else np.zeros(MOTION_DIMS)
            events, self._events = frozenset(self._events), set()
            grip, active = self._grip, self._active and fresh
        motion = twist / np.array([c.linear_speed] * 3 + [c.angular_speed] * 3)
        self.gripper_closed = grip >= 0.5
        action = compose_action(motion, self.gripper_closed)
        action[-1] = 2.0 * grip - 1.0  # keep a partial closure as sent
        return TeleopCommand(action, events, active)

    def reset_state(self) -> None:
        """The gripper state is the remote device's: nothing to forget here."""

    def describe(self) -> str:
        """Where the commands come from."""
        return f"ros: teleop node in namespace /{self.config.namespace}"
