"""Pure-Python ROS 2 backend over Cyclone DDS, wire-compatible with rmw_cyclonedds and rmw_fastrtps."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

# The public DataReader.take() deserializes a whole batch and raises on the first bad sample, losing the rest;
# the binding's raw take hands us (bytes, info) pairs so each sample is decoded, and dropped, on its own.
from cyclonedds._clayer import ddspy_take
from cyclonedds.core import DDSException, GuardCondition, InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from hardware.ros.msgs import Clock, ros_type_name
from hardware.ros.node import Node, Publisher, Subscription, Timer, callback_error, dds_topic
from hardware.ros.qos import CLOCK, DEFAULT, Durability, QosProfile, Reliability
from hardware.ros.typehash import user_data
from robot.core.errors import ConfigError, TransportError

M = TypeVar("M")
_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 64

_lock = threading.Lock()
_participants: dict[int, DomainParticipant] = {}
_topics: dict[tuple[int, str], tuple[Topic, type]] = {}


def domain_id() -> int:
    """ROS_DOMAIN_ID (default 0), as every ROS 2 process reads it."""
    raw = os.environ.get("ROS_DOMAIN_ID", "0").strip() or "0"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"ROS_DOMAIN_ID={raw!r} is not an integer (0-232)") from None
    if not 0 <= value <= 232:
        raise ConfigError(f"ROS_DOMAIN_ID={value} is out of range; use 0-232 (DDS port mapping limit)")
    return value


def participant() -> DomainParticipant:
    """This process's participant in ROS_DOMAIN_ID (one per process and domain, like a ROS 2 context)."""
    dom = domain_id()
    with _lock:
        dp = _participants.get(dom)
        if dp is None:
            try:
                dp = DomainParticipant(dom)
            except DDSException as e:
                raise TransportError(
                    f"cannot join DDS domain {dom}: {e}. Check CYCLONEDDS_URI (for loopback-only machines use "
                    "hardware.ros.loopback_config()) and that the network interface exists"
                ) from e
            _participants[dom] = dp
        return dp


def _topic(dp: DomainParticipant, name: str, msg_type: type) -> Topic:
    key = (id(dp), name)
    with _lock:
        found = _topics.get(key)
        if found is not None:
            if found[1] is not msg_type:
                raise ConfigError(
                    f"topic {name!r} is already used with {ros_type_name(found[1])}; cannot also use "
                    f"{ros_type_name(msg_type)} in this process"
                )
            return found[0]
        topic: Topic = Topic(dp, name, msg_type)
        _topics[key] = (topic, msg_type)
        return topic


def dds_qos(profile: QosProfile, msg_type: type) -> Qos:
    """The DDS QoS of a ROS 2 profile, with XCDR1 forced and the type hash in USER_DATA."""
    policies: list[Any] = [
        Policy.Reliability.Reliable(duration(milliseconds=100)) if profile.reliability is Reliability.RELIABLE
        else Policy.Reliability.BestEffort,
        Policy.History.KeepLast(profile.depth),
        Policy.Durability.TransientLocal if profile.durability is Durability.TRANSIENT_LOCAL
        else Policy.Durability.Volatile,
        # ROS 2 speaks plain CDR (XCDR1); cyclonedds-python would otherwise pick XCDR2 for some types.
        Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    ud = user_data(ros_type_name(msg_type))
    if ud:
        policies.append(Policy.Userdata(ud))
    return Qos(*policies)


class DdsPublisher(Publisher[M]):
    """A DataWriter on rt/<topic>."""

    def __init__(self, node: DdsNode, msg_type: type[M], topic: str, qos: QosProfile) -> None:
        self.topic = topic
        self.msg_type = msg_type
        dp = participant()
        self._writer = DataWriter(dp, _topic(dp, dds_topic(topic), msg_type), qos=dds_qos(qos, msg_type))

    def publish(self, msg: M) -> None:
        """Serialize (XCDR1) and write."""
        try:
            self._writer.write(msg)
        except DDSException as e:
            raise TransportError(f"could not publish on {self.topic}: {e}") from e

    def matched_count(self) -> int:
        """Matched subscriptions."""
        return int(self._writer.get_publication_matched_status().current_count)

    def close(self) -> None:
        """Delete the writer (readers see its samples' writer disappear)."""
        self._writer.__del__()  # explicit, idempotent delete


class DdsSubscription(Subscription):
    """A DataReader on rt/<topic>, decoded sample by sample."""

    def __init__(self, node: DdsNode, msg_type: type[M], topic: str, callback: Callable[[M], None],
                 qos: QosProfile) -> None:
        self.topic = topic
        self.msg_type: Any = msg_type
        self.callback: Callable[[Any], None] = callback
        self.received = 0
        self.dropped = 0
        self._node = node
        dp = participant()
        self._reader = DataReader(dp, _topic(dp, dds_topic(topic), msg_type), qos=dds_qos(qos, msg_type))
        self.condition = ReadCondition(self._reader, _ANY)

    def take_and_dispatch(self) -> int:
        """Take everything queued and run the callback on each decodable sample; returns how many arrived."""
        n = 0
        while True:
            ret = ddspy_take(self._reader._ref, _ANY, _TAKE_BATCH)
            if isinstance(ret, int):
                raise TransportError(f"DDS take failed on {self.topic} (code {ret})")
            for data, info in ret:
                if not info.valid_data:  # writer gone / disposed: no payload
                    continue
                n += 1
                try:
                    msg = self.msg_type.deserialize(data)
                except Exception as e:
                    callback_error(self._node, self, "a malformed message", e)
                    continue
                self.source_time = info.source_timestamp * 1e-9
                try:
                    self.callback(msg)
                except Exception as e:
                    callback_error(self._node, self, "a rejected message", e)
                    continue
                finally:
                    self.source_time = None
                self.received += 1
            if len(ret) < _TAKE_BATCH:
                return n


class DdsTimer(Timer):
    """A wall-clock timer serviced by spin_once."""

    def __init__(self, period_s: float, callback: Callable[[], None]) -> None:
        if not period_s > 0:
            raise ConfigError(f"timer period must be > 0 s, got {period_s}")
        self.period = period_s
        self.callback = callback
        self.next = time.monotonic() + period_s
        self.cancelled = False
        self.skipped = 0
        """Ticks skipped because a callback (or the spin) ran late."""

    def cancel(self) -> None:
        """Stop the timer."""
        self.cancelled = True

    def reset(self) -> None:
        """Next call one period from now."""
        self.cancelled = False
        self.next = time.monotonic() + self.period

    def fire_if_due(self, now: float) -> None:
        """Run the callback if its time has come; the next deadline stays on the original grid."""
        if self.cancelled or now < self.next:
            return
        late = int((now - self.next) // self.period)
        self.skipped += late
        self.next += (late + 1) * self.period
        self.callback()


class DdsNode(Node):
    """A ROS 2 node on Cyclone DDS: one WaitSet per node; callbacks run in spin_once on the spinning thread."""

    backend = "cyclonedds"

    def __init__(self, name: str, *, namespace: str = "", args: Any = ()) -> None:
        super().__init__(name, namespace=namespace, args=args)
        dp = participant()
        self._waitset = WaitSet(dp)
        self._guard = GuardCondition(dp)
        self._waitset.attach(self._guard)
        self._subs: list[DdsSubscription] = []
        self._pubs: list[DdsPublisher[Any]] = []
        self._timers: list[DdsTimer] = []
        self._sim_time: float | None = None
        if self.declare_parameter("use_sim_time", False):
            self._sim_time = 0.0
            self.create_subscription(Clock, "/clock", self._on_clock, CLOCK)

    def _on_clock(self, msg: Clock) -> None:
        self._sim_time = float(msg.clock.sec) + 1e-9 * float(msg.clock.nanosec)

    def create_publisher(self, msg_type: type[M], topic: str, qos: QosProfile = DEFAULT) -> DdsPublisher[M]:
        """A DataWriter on rt/<resolved topic>."""
        pub = DdsPublisher(self, msg_type, self.resolve(topic), qos)
        self._pubs.append(pub)
        return pub

    def create_subscription(
        self, msg_type: type[M], topic: str, callback: Callable[[M], None], qos: QosProfile = DEFAULT
    ) -> DdsSubscription:
        """A DataReader on rt/<resolved topic> whose samples are dispatched in spin_once."""
        sub = DdsSubscription(self, msg_type, self.resolve(topic), callback, qos)
        self._waitset.attach(sub.condition)
        self._subs.append(sub)
        return sub

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> DdsTimer:
        """A wall-clock timer."""
        timer = DdsTimer(period_s, callback)
        self._timers.append(timer)
        return timer

    def spin_once(self, timeout_s: float = 0.1) -> None:
        """Block until data, a timer deadline or timeout_s, then dispatch data and due timers."""
        now = time.monotonic()
        deadline = now + max(0.0, timeout_s)
        for tm in self._timers:
            if not tm.cancelled:
                deadline = min(deadline, tm.next)
        wait = deadline - now
        if wait > 0:
            self._waitset.wait(duration(seconds=wait))
        self._guard.set(False)
        if self.is_shutdown:
            return
        for sub in self._subs:
            sub.take_and_dispatch()
        now = time.monotonic()
        for tm in self._timers:
            tm.fire_if_due(now)

    def now(self) -> float:
        """/clock time with use_sim_time, else wall time."""
        return self._sim_time if self._sim_time is not None else time.time()

    def _wake(self) -> None:
        self._guard.set(True)

    def close(self) -> None:
        """Detach everything and delete the endpoints."""
        super().close()
        for sub in self._subs:
            self._waitset.detach(sub.condition)
            sub._reader.__del__()  # explicit, idempotent delete
        for pub in self._pubs:
            pub.close()
        self._subs.clear()
        self._pubs.clear()
        self._timers.clear()
