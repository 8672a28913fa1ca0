"""The node API shared by both backends: publishers, subscriptions, timers, parameters, clock, `--ros-args`."""

from __future__ import annotations

import abc
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

from hardware.ros.qos import DEFAULT, QosProfile
from robot.core.errors import ConfigError

M = TypeVar("M")
ParamValue = bool | int | float | str | list[bool] | list[int] | list[float] | list[str]

_NAME_RE = re.compile(r"^[A-Za-z_~/][A-Za-z0-9_/]*$")


# -- command-line arguments ------------------------------------------------------------------------------------
def parse_param_value(text: str) -> ParamValue:
    """A `-p name:=value` value read the way ROS 2 reads it (YAML scalars and flat lists)."""
    s = text.strip()
    if s.startswith("[") and s.endswith("]"):
        inner = s[1:-1].strip()
        items = [parse_param_value(x) for x in inner.split(",")] if inner else []
        return items  # type: ignore[return-value]
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(s, 0) if re.fullmatch(r"[+-]?(0x[0-9a-fA-F]+|\d+)", s) else float(s)
    except ValueError:
        return s


@dataclass(frozen=True)
class RosArgs:
    """What `--ros-args` carries: remap rules (`-r from:=to`, incl. `__node`/`__ns`) and `-p name:=value`."""

    remaps: dict[str, str] = field(default_factory=dict)
    """Topic remaps and the special `__node` (node name) and `__ns` (namespace) rules."""
    params: dict[str, ParamValue] = field(default_factory=dict)
    """Parameter overrides."""

    @classmethod
    def parse(cls, argv: Sequence[str]) -> RosArgs:
        """Parse every `--ros-args ... [--]` block of argv; arguments outside the blocks are ignored."""
        remaps: dict[str, str] = {}
        params: dict[str, ParamValue] = {}
        inside, i = False, 0
        args = list(argv)
        while i < len(args):
            a = args[i]
            if a == "--ros-args":
                inside = True
            elif a == "--" and inside:
                inside = False
            elif inside and a in ("-r", "--remap", "-p", "--param"):
                if i + 1 >= len(args) or ":=" not in args[i + 1]:
                    raise ConfigError(f"{a} needs a NAME:=VALUE argument, got {args[i + 1:i + 2]}")
                name, _, value = args[i + 1].partition(":=")
                if a in ("-r", "--remap"):
                    remaps[name] = value
                else:
                    params[name] = parse_param_value(value)
                i += 1
            elif inside and a in ("--log-level", "--params-file"):
                i += 1  # accepted for compatibility with `ros2 run`/launch; the log level is set by the entry point
            elif inside and a.startswith("-"):
                raise ConfigError(f"unsupported ROS argument {a!r}; supported: -r from:=to, -p name:=value")
            i += 1
        return cls(remaps, params)


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(program arguments, `--ros-args ...` tail): launch files append ROS arguments after the program's own."""
    args = list(argv)
    if "--ros-args" not in args:
        return args, []
    i = args.index("--ros-args")
    return args[:i], args[i:]


# -- names -------------------------------------------------------------------------------------------------------
def _check_name(name: str, what: str) -> None:
    if not name or not _NAME_RE.match(name) or "//" in name:
        raise ConfigError(f"invalid ROS {what} {name!r}: use letters, digits, '_' and '/' (e.g. 'joint_states')")


def expand_topic(name: str, namespace: str, node_name: str) -> str:
    """Fully qualified topic name: `x` -> `/ns/x`, `~/x` -> `/ns/node/x`, `/x` unchanged."""
    _check_name(name, "topic name")
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name == "~" or name.startswith("~/"):
        name = f"{ns}/{node_name}{name[1:]}"
    elif not name.startswith("/"):
        name = f"{ns}/{name}"
    return name.rstrip("/") or "/"


def dds_topic(fq_name: str) -> str:
    """The DDS topic of a ROS 2 topic: `rt` + the fully qualified name (`/joint_states` -> `rt/joint_states`)."""
    return "rt" + fq_name


# -- endpoints ---------------------------------------------------------------------------------------------------
class Publisher(abc.ABC, Generic[M]):
    """Publishes messages of one type on one topic."""

    topic: str
    """Fully qualified topic name."""

    @abc.abstractmethod
    def publish(self, msg: M) -> None:
        """Send one message (never blocks longer than the reliable QoS's blocking time)."""

    @abc.abstractmethod
    def matched_count(self) -> int:
        """Number of subscriptions currently matched (0: nobody is listening yet)."""


class Subscription(abc.ABC):
    """Delivers messages of one type on one topic to a callback run by the node's spin."""

    topic: str
    """Fully qualified topic name."""
    received: int = 0
    """Messages delivered to the callback."""
    dropped: int = 0
    """Messages that could not be decoded, or that the callback rejected by raising: counted, never fatal."""
    source_time: float | None = None
    """While a callback runs: the writer's send time of its message (s, the writer's wall clock), where the backend
    reports it (Cyclone DDS); None otherwise. Receipt times bunch when a reader falls behind, send times do not."""


class Timer(abc.ABC):
    """Calls a callback every period from the node's spin."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop calling the callback."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Restart the period from now (as rclpy's Timer.reset)."""


# -- the node ----------------------------------------------------------------------------------------------------
class Node(abc.ABC):
    """A ROS 2 node: named, namespaced, with parameters; callbacks run on the thread that spins it."""

    backend: str = "abstract"

    def __init__(self, name: str, *, namespace: str = "", args: Sequence[str] = ()) -> None:
        ros = RosArgs.parse(args)
        self.ros_args = ros
        self.name = ros.remaps.get("__node", name)
        self.namespace = "/" + ros.remaps.get("__ns", namespace).strip("/")
        _check_name(self.name, "node name")
        self.logger = logging.getLogger(f"ros.{self.name}")
        self._params: dict[str, ParamValue] = {}
        self._shutdown = threading.Event()
        self._spinner: threading.Thread | None = None

    # -- backend hooks -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_publisher(self, msg_type: type[M], topic: str, qos: QosProfile = DEFAULT) -> Publisher[M]:
        """A publisher on `topic` (relative names resolve in the node's namespace, remaps applied)."""

    @abc.abstractmethod
    def create_subscription(
        self, msg_type: type[M], topic: str, callback: Callable[[M], None], qos: QosProfile = DEFAULT
    ) -> Subscription:
        """A subscription whose callback runs in spin_once(); a raising callback drops (and counts) the message."""

    @abc.abstractmethod
    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        """A timer on the wall clock (ticks are skipped, not bunched, when a callback overruns)."""

    @abc.abstractmethod
    def spin_once(self, timeout_s: float = 0.1) -> None:
        """Wait up to timeout_s for data or a timer, then run what is due."""

    @abc.abstractmethod
    def now(self) -> float:
        """ROS time in seconds: /clock when the parameter use_sim_time is true, else the wall clock."""

    @abc.abstractmethod
    def _wake(self) -> None:
        """Interrupt a blocking spin_once (thread-safe)."""

    def close(self) -> None:
        """Stop spinning (joining a spin_in_thread thread) and release the node's endpoints (idempotent)."""
        self.request_shutdown()
        th = self._spinner
        if th is not None and th is not threading.current_thread():
            th.join(timeout=5.0)

    # -- shared behaviour ----------------------------------------------------------------------------------------
    def resolve(self, topic: str) -> str:
        """Fully qualified topic name after `--ros-args -r` remaps (matched on the expanded names)."""
        fq = expand_topic(topic, self.namespace, self.name)
        for src, dst in self.ros_args.remaps.items():
            if src.startswith("__"):
                continue
            if expand_topic(src, self.namespace, self.name) == fq:
                return expand_topic(dst, self.namespace, self.name)
        return fq

    def declare_parameter(self, name: str, default: ParamValue) -> ParamValue:
        """Declare a parameter; a `-p name:=value` override wins, coerced to the default's type."""
        value = self.ros_args.params.get(name, default)
        if isinstance(default, bool) != isinstance(value, bool):
            raise ConfigError(f"parameter {name!r}: expected a {type(default).__name__}, got {value!r}")
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        elif not isinstance(value, type(default)):
            raise ConfigError(f"parameter {name!r}: expected a {type(default).__name__}, got {value!r}")
        self._params[name] = value
        return value

    def get_parameter(self, name: str) -> ParamValue:
        """A declared parameter's value."""
        try:
            return self._params[name]
        except KeyError:
            raise ConfigError(f"parameter {name!r} was not declared; declared: {sorted(self._params)}") from None

    @property
    def is_shutdown(self) -> bool:
        """Whether request_shutdown() was called."""
        return self._shutdown.is_set()

    def request_shutdown(self) -> None:
        """Make spin() return (thread-safe; also what Ctrl-C does)."""
        self._shutdown.set()
        self._wake()

    def spin(self, until: Callable[[], bool] | None = None, timeout_s: float = math.inf) -> None:
        """Run callbacks until shutdown, `until()` is true, or timeout_s passes."""
        end = time.monotonic() + timeout_s
        while not self._shutdown.is_set() and not (until is not None and until()):
            left = end - time.monotonic()
            if left <= 0:
                return
            self.spin_once(min(left, 0.1))

    def spin_in_thread(self) -> threading.Thread:
        """Spin on a daemon thread (clients such as RosRobot); stop it with request_shutdown()."""
        th = threading.Thread(target=self.spin, name=f"spin-{self.name}", daemon=True)
        self._spinner = th
        th.start()
        return th

    def __enter__(self) -> Node:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def backend_name() -> str:
    """The backend REALRL_ROS_BACKEND selects: 'rclpy', 'cyclonedds', or for 'auto' rclpy where it imports."""
    choice = os.environ.get("REALRL_ROS_BACKEND", "auto").strip().lower()
    if choice not in ("auto", "rclpy", "cyclonedds"):
        raise ConfigError(f"REALRL_ROS_BACKEND={choice!r}; use auto, rclpy or cyclonedds")
    if choice == "auto":
        try:
            import rclpy  # noqa: F401
        except ImportError:
            return "cyclonedds"
        return "rclpy"
    return choice


def create_node(name: str, *, namespace: str = "", args: Sequence[str] = ()) -> Node:
    """A node on the selected backend (see backend_name)."""
    if backend_name() == "rclpy":
        from hardware.ros.rclpy_backend import RclpyNode

        return RclpyNode(name, namespace=namespace, args=args)
    from hardware.ros.dds_backend import DdsNode

    return DdsNode(name, namespace=namespace, args=args)


def setup_logging(level: int = logging.INFO) -> None:
    """ROS-style log lines on stderr for node entry points: `[INFO] [1700000000.123] [sim]: message`."""
    class _Fmt(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            node = record.name.removeprefix("ros.")
            return f"[{record.levelname}] [{record.created:.3f}] [{node}]: {record.getMessage()}"

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Fmt())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def callback_error(node: Node, sub: Subscription, what: str, err: Exception) -> None:
    """Count and log (rate-limited: the 1st, 2nd, 4th, 8th, ...) a dropped message."""
    sub.dropped += 1
    n = sub.dropped
    if n & (n - 1) == 0:
        node.logger.warning("dropped %s on %s (%d so far): %s: %s", what, sub.topic, n, type(err).__name__, err)
