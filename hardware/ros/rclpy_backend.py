"""rclpy backend: a thin pass-through to ROS 2 where it is installed (robot workstations), any rmw.

Messages stay realrl's IDL structs: they are published as serialized CDR (rclpy accepts bytes and hands raw
bytes to `raw=True` subscriptions), which is exactly what the ROS message class would produce (the golden-bytes
tests check this against an independent implementation). rclpy only needs the ROS class for type support.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hardware.ros.msgs import ros_type_name
from hardware.ros.node import Node, ParamValue, Publisher, Subscription, Timer, callback_error
from hardware.ros.qos import DEFAULT, Durability, QosProfile, Reliability
from robot.core.errors import ConfigError

try:
    import rclpy
    import rclpy.node
    import rclpy.qos
except ImportError as e:  # pragma: no cover - only where ROS 2 is installed
    raise ImportError(
        "the rclpy backend needs ROS 2 (source /opt/ros/<distro>/setup.bash); "
        "or set REALRL_ROS_BACKEND=cyclonedds for the pure-Python backend"
    ) from e

M = TypeVar("M")


def ros_class(msg_type: type) -> Any:
    """The rclpy message class for one of our IDL types (e.g. sensor_msgs.msg.JointState)."""
    pkg, _, name = ros_type_name(msg_type).split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"ROS 2 package {pkg!r} with message {name!r} is not installed in this workspace") from e


def rclpy_qos(profile: QosProfile) -> Any:
    """The rclpy QoSProfile of ours."""
    q = rclpy.qos
    return q.QoSProfile(
        depth=profile.depth,
        history=q.HistoryPolicy.KEEP_LAST,
        reliability=q.ReliabilityPolicy.RELIABLE if profile.reliability is Reliability.RELIABLE
        else q.ReliabilityPolicy.BEST_EFFORT,
        durability=q.DurabilityPolicy.TRANSIENT_LOCAL if profile.durability is Durability.TRANSIENT_LOCAL
        else q.DurabilityPolicy.VOLATILE,
    )


class _Pub(Publisher[M]):
    def __init__(self, pub: Any) -> None:
        self._pub = pub
        self.topic = str(pub.topic_name)

    def publish(self, msg: M) -> None:
        self._pub.publish(msg.serialize(use_version_2=False))  # type: ignore[attr-defined]

    def matched_count(self) -> int:
        return int(self._pub.get_subscription_count())


class _Sub(Subscription):
    def __init__(self) -> None:
        self.received = 0
        self.dropped = 0
        self.topic = ""


class _Timer(Timer):
    def __init__(self, timer: Any) -> None:
        self._timer = timer

    def cancel(self) -> None:
        self._timer.cancel()

    def reset(self) -> None:
        self._timer.reset()


class RclpyNode(Node):
    """An rclpy node behind realrl's node API; `--ros-args` are rclpy's own (remaps, parameters, __node, __ns)."""

    backend = "rclpy"

    def __init__(self, name: str, *, namespace: str = "", args: Sequence[str] = ()) -> None:
        super().__init__(name, namespace=namespace)  # rclpy parses the --ros-args itself (all of them)
        if not rclpy.ok():
            rclpy.init(args=None)
        self._node = rclpy.node.Node(name, namespace=namespace or None, cli_args=list(args) or None)
        self.name = str(self._node.get_name())
        self.namespace = str(self._node.get_namespace())

    def resolve(self, topic: str) -> str:
        """rclpy resolves names and remaps itself."""
        return str(self._node.resolve_topic_name(topic))

    def create_publisher(self, msg_type: type[M], topic: str, qos: QosProfile = DEFAULT) -> Publisher[M]:
        """An rclpy publisher fed with serialized CDR."""
        return _Pub(self._node.create_publisher(ros_class(msg_type), topic, rclpy_qos(qos)))

    def create_subscription(
        self, msg_type: type[M], topic: str, callback: Callable[[M], None], qos: QosProfile = DEFAULT
    ) -> Subscription:
        """A raw rclpy subscription decoded with our IDL type."""
        sub = _Sub()
        decode: Any = msg_type

        def on_raw(data: bytes) -> None:
            try:
                msg = decode.deserialize(data)
            except Exception as e:
                callback_error(self, sub, "a malformed message", e)
                return
            try:
                callback(msg)
            except Exception as e:
                callback_error(self, sub, "a rejected message", e)
                return
            sub.received += 1

        handle = self._node.create_subscription(ros_class(msg_type), topic, on_raw, rclpy_qos(qos), raw=True)
        sub.topic = str(handle.topic_name)
        return sub

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        """An rclpy timer."""
        return _Timer(self._node.create_timer(period_s, callback))

    def declare_parameter(self, name: str, default: ParamValue) -> ParamValue:
        """rclpy's parameter (overrides come from rclpy's own --ros-args parsing)."""
        if self._node.has_parameter(name):
            value: ParamValue = self._node.get_parameter(name).value
        else:
            value = self._node.declare_parameter(name, default).value
        self._params[name] = value
        return value

    def spin_once(self, timeout_s: float = 0.1) -> None:
        """rclpy.spin_once on this node."""
        rclpy.spin_once(self._node, timeout_sec=timeout_s)

    def now(self) -> float:
        """The node clock (sim time when use_sim_time is set)."""
        return float(self._node.get_clock().now().nanoseconds) * 1e-9

    def _wake(self) -> None:
        """spin_once returns within its timeout; nothing to interrupt."""

    def close(self) -> None:
        """Destroy the rclpy node."""
        super().close()
        self._node.destroy_node()
