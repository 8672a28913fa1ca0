"""RobotEnv over RosRobot passes the same checks as over MujocoRobot: gymnasium's env checker (goal task, joint
actions, a camera), the same scene per seed, and the Cartesian target-pose input of the sim node."""

from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from hardware.nodes.sim_node import RemoteEnvConfig, make_remote_env
from hardware.ros import create_node
from hardware.ros.convert import pose_msg
from hardware.ros.msgs import PoseStamped
from tests.ros_util import loopback_domain, spawn, stop, wait_for

SIM = ["-m", "hardware.nodes.sim_node"]


class WithoutStamps(gym.ObservationWrapper):  # type: ignore[type-arg]
    """Drop time/* keys: a node's clock never goes back (ROS time is monotonic across episodes), so stamps differ
    between two identical episodes while everything the policy sees is the same."""

    def __init__(self, env: gym.Env) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.observation_space = gym.spaces.Dict(
            {k: v for k, v in env.observation_space.items() if not k.startswith("time/")})  # type: ignore[attr-defined]

    def observation(self, obs: dict) -> dict:  # type: ignore[type-arg]
        return {k: v for k, v in obs.items() if not k.startswith("time/")}


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    yield from loopback_domain(monkeypatch)


def test_check_env_goal_task_joint_actions_camera(ros_domain: int, tmp_path: Path) -> None:
    import sim  # noqa: F401 - registers realrl/*

    log = tmp_path / "sim.log"
    flags = ["--env", "realrl/FrankaPickPlace-v0", "--action-mode", "joint_pos", "--cameras", "wrist",
             "--image-size", "48"]
    proc = spawn([*SIM, *flags], ros_domain, log)
    try:
        env = make_remote_env(RemoteEnvConfig("realrl/FrankaPickPlace-v0", cameras=("wrist",), image_size=48,
                                              action_mode="joint_pos"))
        try:
            check_env(WithoutStamps(env.unwrapped), skip_render_check=True)
            local = gym.make("realrl/FrankaPickPlace-v0", action_mode="joint_pos", cameras=("wrist",), image_size=48)
            obs, _ = env.reset(seed=5)
            ref, _ = local.reset(seed=5)
            assert set(obs) == set(ref)
            np.testing.assert_allclose(obs["desired_goal"], ref["desired_goal"])  # the same scene per seed
            np.testing.assert_allclose(obs["state/cube_pose"], ref["state/cube_pose"], atol=1e-5)
            hold = env.unwrapped.hold_action()
            for _ in range(3):
                obs, *_ = env.step(hold)
            np.testing.assert_allclose(obs["state/joint_pos"][:7], ref["state/joint_pos"][:7], atol=0.02)
        finally:
            env.close()
    finally:
        assert stop(proc) == 0, log.read_text()


def test_target_pose_is_tracked(ros_domain: int, tmp_path: Path) -> None:
    log = tmp_path / "sim.log"
    proc = spawn([*SIM, "--env", "realrl/FrankaLift-v0"], ros_domain, log)
    env = make_remote_env(RemoteEnvConfig("realrl/FrankaLift-v0"))
    node = create_node("commander")
    try:
        robot = env.unwrapped.robot
        obs, _ = env.reset(seed=0)
        target = obs["state/ee_pose"].astype(np.float64)
        target[:3] += [0.05, -0.04, 0.06]
        pub = node.create_publisher(PoseStamped, "cartesian_impedance_controller/equilibrium_pose")
        assert wait_for(lambda: pub.matched_count() > 0, 10)
        pub.publish(pose_msg(target, frame_id="world"))

        def reached() -> bool:
            return bool(np.linalg.norm(robot.observe()["state/ee_pose"][:3] - target[:3]) < 0.005)

        assert wait_for(reached, 5), (robot.observe()["state/ee_pose"], target)
        q = robot.observe()["state/ee_pose"][3:]
        assert abs(float(np.dot(q, target[3:]))) > 0.999  # orientation held
    finally:
        node.close()
        env.close()
        assert stop(proc) == 0, log.read_text()
