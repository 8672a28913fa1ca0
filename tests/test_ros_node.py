"""The node API over real Cyclone DDS between processes on loopback: remaps, parameters, QoS, faults."""

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hardware.ros import LATCHED, SENSOR_DATA, RosArgs, create_node
from hardware.ros.msgs import Clock, JointState, String, Time
from hardware.ros.node import expand_topic, parse_param_value
from robot.core.errors import ConfigError
from tests.ros_util import loopback_domain, spawn, stop, wait_for

ECHO = "tests/ros_echo_node.py"


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    yield from loopback_domain(monkeypatch)


def test_ros_args_and_names() -> None:
    ros = RosArgs.parse(["prog", "--flag", "--ros-args", "-r", "ping:=/other", "-p", "gain:=2", "-p", "on:=true",
                         "-p", "names:=[a, b]", "-p", "s:='3'", "-r", "__node:=x", "--", "tail"])
    assert ros.remaps == {"ping": "/other", "__node": "x"}
    assert ros.params == {"gain": 2, "on": True, "names": ["a", "b"], "s": "3"}
    assert parse_param_value("1.5e-3") == 1.5e-3 and parse_param_value("0x10") == 16
    assert expand_topic("js", "/robot", "n") == "/robot/js"
    assert expand_topic("~/stats", "/", "sim") == "/sim/stats"
    assert expand_topic("/abs", "/robot", "n") == "/abs"
    with pytest.raises(ConfigError, match="invalid ROS topic name"):
        expand_topic("bad name", "/", "n")
    with pytest.raises(ConfigError, match="unsupported ROS argument"):
        RosArgs.parse(["--ros-args", "--enclave", "x"])


def test_parameters_and_remaps_in_process(ros_domain: int) -> None:
    node = create_node("n", namespace="robot", args=["--ros-args", "-r", "a:=/b", "-p", "rate:=5", "-p", "name:=x"])
    try:
        assert node.resolve("a") == "/b" and node.resolve("c") == "/robot/c"
        assert node.declare_parameter("rate", 1.0) == 5.0  # int override coerced to the float default
        assert node.declare_parameter("other", 3) == 3
        with pytest.raises(ConfigError, match="expected a int"):
            node.declare_parameter("name", 1)
        assert node.get_parameter("rate") == 5.0
    finally:
        node.close()


def test_echo_between_processes(ros_domain: int, tmp_path: Path) -> None:
    log = tmp_path / "echo.log"
    proc = spawn([ECHO, "--ros-args", "-r", "pong:=/echoed", "-p", "gain:=2.0"], ros_domain, log)
    node = create_node("tester")
    got: list[JointState] = []
    stats: list[dict[str, Any]] = []
    try:
        pub = node.create_publisher(JointState, "ping")
        node.create_subscription(JointState, "/echoed", got.append)
        node.create_subscription(String, "/echo/stats", lambda m: stats.append(json.loads(m.data)), LATCHED)

        def ping_until_echoed() -> None:  # discovery is per direction: wait until the round trip is matched
            pub.publish(JointState(name=["warmup"], position=[0.0]))
            node.spin_once(0.05)

        assert wait_for(lambda: bool(got), 20, ping_until_echoed), log.read_text()
        node.spin_once(0.2)
        got.clear()
        for i in range(8):  # fewer than the keep-last depth of 10: a reliable topic loses none of them
            pub.publish(JointState(name=["a", "b"], position=[float(i), -1.0]))
        assert wait_for(lambda: len(got) >= 8, 10, lambda: node.spin_once(0.05)), log.read_text()
        assert [m.position for m in got[:3]] == [[0.0, -2.0], [2.0, -2.0], [4.0, -2.0]]  # reliable, in order

        # An unknown shape the node rejects, then garbage bytes that do not decode: dropped, counted, alive.
        pub.publish(JointState(name=["a"], position=[1.0, 2.0]))
        from cyclonedds._clayer import ddspy_write

        # Cyclone checks the CDR structure on both ends; what gets through and still cannot be decoded is, e.g.,
        # a frame_id that is not UTF-8.
        good = JointState(name=["a"], position=[1.0])
        good.header.frame_id = "ab"
        junk = good.serialize(use_version_2=False).replace(b"ab\x00", b"\xff\xfe\x00")
        assert ddspy_write(pub._writer._ref, junk) == 0  # type: ignore[attr-defined]
        pub.publish(JointState(name=["a"], position=[21.0]))
        assert wait_for(lambda: got[-1].position == [42.0], 10, lambda: node.spin_once(0.05)), log.read_text()
        assert wait_for(lambda: bool(stats) and stats[-1]["dropped"] == 2, 5, lambda: node.spin_once(0.05)), stats
        assert stats[-1]["received"] == len(got) + 1 and proc.poll() is None
        assert "dropped a malformed message on /ping" in log.read_text()
    finally:
        node.close()
        assert stop(proc) == 0, log.read_text()


def test_raw_dds_reader_sees_ros_names(ros_domain: int, tmp_path: Path) -> None:
    from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
    from cyclonedds.qos import Policy

    from hardware.ros.dds_backend import participant

    log = tmp_path / "echo.log"
    proc = spawn([ECHO], ros_domain, log)
    try:
        reader = BuiltinDataReader(participant(), BuiltinTopicDcpsPublication)
        seen: dict[str, Any] = {}

        def poll() -> bool:
            for s in reader.take(N=50):
                seen[s.topic_name] = s
            return "rt/pong" in seen and "rt/echo/stats" in seen

        assert wait_for(poll, 20), (sorted(seen), log.read_text())
        pong = seen["rt/pong"]
        assert pong.type_name == "sensor_msgs::msg::dds_::JointState_"
        assert seen["rt/echo/stats"].type_name == "std_msgs::msg::dds_::String_"
        assert pong.qos[Policy.Userdata].data.startswith(b"typehash=RIHS01_a13ee3a3")
        assert pong.qos[Policy.DataRepresentation].use_cdrv0_representation
    finally:
        assert stop(proc) == 0, log.read_text()


def test_qos_presets(ros_domain: int) -> None:
    node = create_node("q")
    try:
        latched = node.create_publisher(String, "latched", LATCHED)
        latched.publish(String("first"))
        latched.publish(String("last"))
        got: list[str] = []
        node.create_subscription(String, "latched", lambda m: got.append(m.data), LATCHED)  # joins late
        assert wait_for(lambda: got == ["last"], 5, lambda: node.spin_once(0.05)), got
        # Like ROS 2: a best-effort publisher never matches a reliable subscription.
        be = node.create_publisher(JointState, "sensor", SENSOR_DATA)
        node.create_subscription(JointState, "sensor", lambda m: None)
        node.spin_once(0.2)
        assert be.matched_count() == 0
        node.create_subscription(JointState, "sensor", lambda m: None, SENSOR_DATA)
        assert wait_for(lambda: be.matched_count() == 1, 5, lambda: node.spin_once(0.05))
    finally:
        node.close()


def test_timer_and_sim_time(ros_domain: int) -> None:
    node = create_node("t", args=["--ros-args", "-p", "use_sim_time:=true"])
    try:
        ticks: list[float] = []
        timer = node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
        clock = node.create_publisher(Clock, "/clock")
        clock.publish(Clock(clock=Time(sec=7, nanosec=500_000_000)))
        node.spin(timeout_s=0.5)
        assert 20 <= len(ticks) <= 26, len(ticks)
        assert np.median(np.diff(ticks)) == pytest.approx(0.02, abs=0.005)
        timer.cancel()
        node.spin(timeout_s=0.1)
        n = len(ticks)
        node.spin(timeout_s=0.1)
        assert len(ticks) == n
        assert math.isclose(node.now(), 7.5)
    finally:
        node.close()
