"""The Franka node between RosRobot and a compliant Cartesian controller: limits applied before anything is sent,
and the whole chain (with the sim node standing in for franka_ros2) solves FrankaLift."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hardware.nodes.sim_node import RemoteEnvConfig, make_remote_env
from hardware.ros import LATCHED, create_node
from hardware.ros.convert import header, pose_array, pose_msg
from hardware.ros.msgs import PoseStamped, String, Twist, TwistStamped, Vector3
from tests.ros_util import expert_succeeds, loopback_domain, spawn, stop, wait_for


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    yield from loopback_domain(monkeypatch)


def twist(vx: float = 0.0, vy: float = 0.0, vz: float = 0.0, wz: float = 0.0) -> TwistStamped:
    return TwistStamped(twist=Twist(linear=Vector3(x=vx, y=vy, z=vz), angular=Vector3(z=wz)))


def test_limits_are_applied_before_anything_is_sent(ros_domain: int, tmp_path: Path) -> None:
    log = tmp_path / "franka.log"
    proc = spawn(["-m", "robot.cli", "node", "franka", "--max-speed", "0.2", "--max-lead", "0.05",
                  "--workspace-high", "0.85", "0.5", "0.3", "--home-speed", "0.5"], ros_domain, log)
    driver = create_node("fake_driver")  # plays franka_ros2: publishes the measured TCP pose, takes targets
    targets: list[np.ndarray] = []
    stats: list[dict[str, Any]] = []
    driver.create_subscription(PoseStamped, "cartesian_impedance_controller/equilibrium_pose",
                               lambda m: targets.append(pose_array(m)))
    driver.create_subscription(String, "/franka/stats", lambda m: stats.append(json.loads(m.data)), LATCHED)
    pose_pub = driver.create_publisher(PoseStamped, "franka_robot_state_broadcaster/current_pose")
    cmd = driver.create_publisher(TwistStamped, "servo_node/delta_twist_cmds")
    measured = np.array([0.5, 0.0, 0.25, 0.0, 1.0, 0.0, 0.0])
    try:
        def publish_pose() -> None:
            pose_pub.publish(pose_msg(measured))
            driver.spin_once(0.02)

        assert wait_for(lambda: cmd.matched_count() > 0 and pose_pub.matched_count() > 0, 20, publish_pose)
        for _ in range(10):
            publish_pose()
        cmd.publish(twist(vx=5.0))  # 5 m/s asked: 0.2 m/s allowed, for one 50 ms period -> 1 cm
        assert wait_for(lambda: bool(targets), 5, publish_pose), log.read_text()
        np.testing.assert_allclose(targets[-1][:3], measured[:3] + np.array([0.01, 0.0, 0.0]), atol=1e-9)
        for _ in range(20):  # keep pushing up while the arm does not move: the target stops 5 cm ahead
            cmd.publish(twist(vz=0.2))
            publish_pose()
        assert wait_for(lambda: len(targets) >= 21, 5, publish_pose)
        lead = targets[-1][:3] - measured[:3]
        assert np.linalg.norm(lead) == pytest.approx(0.05, abs=1e-9) and targets[-1][2] <= 0.3 + 1e-12
        n = len(targets)
        for bad in (twist(vx=float("nan")), twist(wz=float("inf"))):
            cmd.publish(bad)
        time.sleep(0.2)
        for _ in range(10):
            publish_pose()
        assert len(targets) == n  # nothing was sent for them
        measured = np.array([0.84, 0.0, 0.29, 0.0, 1.0, 0.0, 0.0])  # near the box corner: the box wins
        for _ in range(20):
            publish_pose()
        for _ in range(5):
            cmd.publish(twist(vx=0.2, vz=0.2))
            publish_pose()
        assert wait_for(lambda: len(targets) >= n + 5, 5, publish_pose)
        assert targets[-1][0] <= 0.85 + 1e-12 and targets[-1][2] <= 0.3 + 1e-12
        assert wait_for(lambda: bool(stats) and stats[-1]["dropped"] == 2, 5, publish_pose), stats[-1:]
        s = stats[-1]
        assert s["speed_limited"] >= 1 and s["lead_limited"] >= 1 and s["workspace_clipped"] >= 1

        # Home, then a twist stamped with a state from before the ack (sent before the reset, delivered late: DDS
        # orders no topic against another) is dropped; one stamped after it moves the arm.
        acks: list[dict[str, Any]] = []
        driver.create_subscription(String, "realrl/reset_done", lambda m: acks.append(json.loads(m.data)), LATCHED)
        reset = driver.create_publisher(String, "realrl/reset")
        clock = [100.0]

        def follow() -> None:  # a perfect controller: the arm is where the node's target is, in the driver's clock
            nonlocal measured
            measured = targets[-1].copy()
            clock[0] += 0.02
            pose_pub.publish(pose_msg(measured, stamp=clock[0]))
            driver.spin_once(0.02)

        assert wait_for(lambda: reset.matched_count() > 0, 10, follow)
        reset.publish(String(json.dumps({"id": 1, "kind": "robot"})))
        assert wait_for(lambda: bool(acks), 20, follow), log.read_text()
        homed_at, n = acks[-1]["stamp"], len(targets)
        assert np.linalg.norm(measured[:3] - np.array([0.543, 0.0, 0.2345])) <= 0.01 and homed_at > 100.0
        cmd.publish(TwistStamped(header=header(homed_at - 0.5), twist=Twist(linear=Vector3(x=0.2))))
        assert wait_for(lambda: stats[-1].get("stale_dropped") == 1, 5, follow), stats[-1]
        assert len(targets) == n  # the homed arm did not move
        x_home = measured[0]
        cmd.publish(TwistStamped(header=header(clock[0]), twist=Twist(linear=Vector3(x=0.2))))
        assert wait_for(lambda: len(targets) > n, 5, follow)
        assert targets[n][0] == pytest.approx(x_home + 0.01, abs=1e-9) and stats[-1].get("stale_dropped") == 1
    finally:
        driver.close()
        assert stop(proc) == 0, log.read_text()


def test_lift_through_the_franka_node(ros_domain: int, tmp_path: Path) -> None:
    # The sim node plays franka_ros2 with its Cartesian impedance controller: it tracks the equilibrium pose and
    # its own twist input is moved aside, so every motion goes through the Franka node's limits.
    sim_log, fr_log = tmp_path / "sim.log", tmp_path / "franka.log"
    sim = spawn(["-m", "hardware.nodes.sim_node", "--env", "realrl/FrankaLift-v0", "--ros-args", "-r",
                 "servo_node/delta_twist_cmds:=/driver/unused"], ros_domain, sim_log)
    franka = spawn(["-m", "hardware.nodes.franka_node"], ros_domain, fr_log)
    try:
        env = make_remote_env(RemoteEnvConfig("realrl/FrankaLift-v0"))
        try:
            for seed in range(2):
                assert expert_succeeds(env, seed), seed
        finally:
            env.close()
    finally:
        assert stop(franka) == 0, fr_log.read_text()
        assert stop(sim) == 0, sim_log.read_text()


def test_robot_reset_homes_the_arm_through_the_franka_nodes_limits(ros_domain: int, tmp_path: Path) -> None:
    # As on hardware, only the Franka node answers resets (the sim node's own reset topics are moved aside): a
    # RosRobot.reset() drives the arm home through the controller, and the client gets states from there on.
    import gymnasium as gym

    from hardware.ros_robot import RosRobot, RosRobotConfig

    sim_log, fr_log = tmp_path / "sim.log", tmp_path / "franka.log"
    sim = spawn(["-m", "hardware.nodes.sim_node", "--env", "realrl/FrankaLift-v0", "--ros-args",
                 "-r", "servo_node/delta_twist_cmds:=/driver/unused", "-r", "realrl/reset:=/driver/unused_reset",
                 "-r", "realrl/reset_done:=/driver/unused_reset_done"], ros_domain, sim_log)
    franka = spawn(["-m", "hardware.nodes.franka_node", "--home-speed", "0.3"], ros_domain, fr_log)
    home = np.array([0.543, 0.0, 0.2345])
    try:
        spec = gym.make("realrl/FrankaLift-v0").unwrapped.robot.spec
        robot = RosRobot(spec, RosRobotConfig(lockstep=False, sync_sources=False))
        with robot:
            obs = robot.observe()
            for _ in range(20):  # 0.6 m/s for 1 s, clipped by the lead limit: the arm moves away from home
                robot.command(np.array([0.03, 0.03, 0.03, 0.0, 0.0, 0.0, 0.0]))
                time.sleep(0.05)
            away = robot.observe()["state/ee_pose"][:3]
            assert np.linalg.norm(away - home) > 0.1
            obs = robot.reset()
            assert np.linalg.norm(obs["state/ee_pose"][:3] - home) < 0.015, obs["state/ee_pose"]
            # a task reset is the operator's job on hardware: refused, so the client's request times out
            robot.config = RosRobotConfig(lockstep=False, sync_sources=False, connect_timeout_s=1.5)
            with pytest.raises(Exception, match="no answer to the task reset"):
                robot.request_reset("task", {})
    finally:
        assert stop(franka) == 0, fr_log.read_text()
        assert stop(sim) == 0, sim_log.read_text()
    assert "homed" in fr_log.read_text() and "cannot be done by the robot's node" in fr_log.read_text()
