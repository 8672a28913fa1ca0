"""`realrl node sim` and `realrl up` as real processes: ROS arguments pass through, Ctrl-C stops cleanly, a crash
is reported."""

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware.nodes.sim_node import RemoteEnvConfig, make_remote_env
from hardware.ros import LATCHED, create_node
from hardware.ros.msgs import JointState, String
from tests.ros_util import loopback_domain, spawn, stop, wait_for


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    yield from loopback_domain(monkeypatch)


def test_cli_node_takes_ros_args(ros_domain: int, tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    proc = spawn(["-m", "robot.cli", "node", "sim", "--env", "realrl/FrankaLift-v0", "--ros-args",
                  "-r", "__node:=twin", "-r", "joint_states:=/twin/joints", "-p", "joint_prefix:=fr3_"],
                 ros_domain, log)
    node = create_node("probe")
    stats: list[dict[str, Any]] = []
    joints: list[JointState] = []
    node.create_subscription(String, "/twin/stats", lambda m: stats.append(json.loads(m.data)), LATCHED)
    node.create_subscription(JointState, "/twin/joints", joints.append)
    try:
        assert wait_for(lambda: bool(stats) and bool(joints), 20, lambda: node.spin_once(0.05)), log.read_text()
        assert joints[-1].name[:2] == ["fr3_joint1", "fr3_joint2"] and joints[-1].name[-1] == "fr3_finger_joint2"
        assert stats[-1]["ticks"] > 0
    finally:
        node.close()
        assert stop(proc) == 0, log.read_text()


def up(domain: int, log: Path) -> subprocess.Popen[bytes]:
    return spawn(["-m", "robot.cli", "up", "sim-lift", "--loopback", "--domain-id", str(domain)], domain, log)


def test_up_runs_a_session_and_stops_cleanly_on_ctrl_c(ros_domain: int, tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    proc = up(ros_domain, log)
    try:
        env = make_remote_env(RemoteEnvConfig("realrl/FrankaLift-v0"))
        try:
            env.reset(seed=0)
            for _ in range(3):
                env.step(env.unwrapped.hold_action())
        finally:
            env.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0, log.read_text()
        assert "session sim-lift stopped cleanly" in log.read_text()
    finally:
        stop(proc)


def test_up_reports_a_crashed_node(ros_domain: int, tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    proc = up(ros_domain, log)
    try:
        assert wait_for(lambda: "started sim (pid" in log.read_text(), 20), log.read_text()
        pid = int(re.search(r"started sim \(pid (\d+)\)", log.read_text()).group(1))  # type: ignore[union-attr]
        time.sleep(1.0)
        subprocess.run(["kill", "-9", str(pid)], check=True)
        assert proc.wait(20) == 1, log.read_text()
        text = log.read_text()
        assert "node sim died (signal SIGKILL)" in text and "failed: ['sim']" in text
    finally:
        stop(proc)
