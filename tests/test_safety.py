"""SafetyLimits and the robot's own guards: bad actions never move the robot."""

import gymnasium as gym
import numpy as np
import pytest

from robot.core import ConfigError, SafetyError
from robot.env import RobotEnv
from robot.wrappers import SafetyConfig, SafetyLimits
from sim.franka import FrankaConfig, FrankaRobot
from sim.tasks import FrankaLift


def make(**kwargs) -> SafetyLimits:
    cfg = kwargs.pop("config", None)
    return SafetyLimits(gym.make("realrl/FrankaLift-v0", **kwargs).unwrapped, cfg)


def test_nan_action_is_never_applied_and_robot_holds() -> None:
    env = make()
    env.reset(seed=0)
    robot = env.unwrapped.robot
    for _ in range(5):  # settle
        env.step(np.zeros(7, dtype=np.float32))
    target_before = robot.data.ctrl.copy()
    ee_before = robot.observe()["state/ee_pose"][:3].copy()
    bad = np.array([np.nan, 0, 0, 0, np.inf, 0, 0], dtype=np.float32)
    obs, _, _, _, info = env.step(bad)
    assert info["safety"]["held"] and "['dx', 'dry']" in info["safety"]["reason"]
    np.testing.assert_array_equal(robot.data.ctrl, target_before)  # actuator targets unchanged
    assert np.linalg.norm(obs["state/ee_pose"][:3] - ee_before) < 2e-3
    assert np.all(np.isfinite(robot.data.qpos))


def test_second_fault_raises_safety_error_naming_dimensions() -> None:
    env = make()
    env.reset(seed=0)
    env.step(np.full(7, np.nan, dtype=np.float32))
    with pytest.raises(SafetyError, match=r"non-finite action in dimensions \['gripper'\].*fault 2 of 2"):
        env.step(np.array([0, 0, 0, 0, 0, 0, np.nan], dtype=np.float32))
    env.reset(seed=1)  # a new episode starts with a clean fault count
    _, _, _, _, info = env.step(np.full(7, np.nan, dtype=np.float32))
    assert info["safety"]["held"] and info["safety"]["faults"] == 1


def test_out_of_range_actions_are_clipped_and_counted() -> None:
    env = make()
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([3, -2, 0, 0, 0, 0, 0.5], dtype=np.float32))
    assert info["safety"]["clipped"] == 2
    assert env.totals["clipped"] == 2
    raw = gym.make("realrl/FrankaLift-v0").unwrapped
    raw.reset(seed=0)
    _, _, _, _, info = raw.step(np.array([3, -2, 0, 0, 0, 0, 0.5], dtype=np.float32))
    assert info["action_clipped"] == 2
    np.testing.assert_allclose(info["sent_action"][:2], [1.0, -1.0])


def test_workspace_limit_stops_the_hand_at_the_box() -> None:
    cfg = SafetyConfig(workspace_low=(0.3, -0.3, 0.05), workspace_high=(0.7, 0.3, 0.3))
    env = make(config=cfg)
    obs, _ = env.reset(seed=0)
    limited = 0
    for _ in range(40):  # push straight up: the wrapper must stop it at z = 0.3
        obs, _, _, _, info = env.step(np.array([0, 0, 1, 0, 0, 0, 0], dtype=np.float32))
        limited += info["safety"]["limited"]
    # The guard works on the measured pose; the commanded target may lead it by one step (3 cm).
    assert obs["state/ee_pose"][2] <= 0.3 + 0.03 + 0.005
    assert limited > 0


def test_robot_clips_its_ik_target_into_its_workspace() -> None:
    cfg = FrankaConfig(workspace_high=(0.85, 0.5, 0.3))
    with FrankaRobot(cfg) as robot:
        robot.reset()
        for _ in range(40):
            sent = robot.command(np.array([0, 0, 0.03, 0, 0, 0, 0]))
        target_pos = robot.target_position()
        assert target_pos[2] <= 0.3 + 2e-3
        assert sent[2] < 0.03  # what was sent is the clipped delta, not what was asked
        assert robot.observe()["state/ee_pose"][2] <= 0.3 + 5e-3


def test_joint_mode_limits_step_size_and_joint_range() -> None:
    cfg = SafetyConfig(max_joint_step=0.1)
    env = make(action_mode="joint_pos", config=cfg)
    obs, _ = env.reset(seed=0)
    q0 = obs["state/joint_pos"][:7].astype(np.float64)
    _, _, _, _, info = env.step(np.ones(8, dtype=np.float32))  # every joint to its upper limit at once
    sent = env.unwrapped.embodiment.action.to_physical(info["sent_action"].astype(np.float64))[:7]
    assert np.all(np.abs(sent - q0) <= 0.1 + 1e-6)
    assert info["safety"]["limited"] >= 7


class LaggingFranka(FrankaRobot):
    """A robot whose state stream stalls: stamps fall behind the robot clock by `lag` seconds."""

    lag = 0.0

    def observe(self):
        obs = super().observe()
        obs["time/state"] = np.array(float(obs["time/state"]) - self.lag)
        return obs


def test_stale_observation_holds_then_raises() -> None:
    task = FrankaLift()
    robot = LaggingFranka(FrankaConfig(), objects=task.objects)
    env = SafetyLimits(RobotEnv(robot, task), SafetyConfig(max_obs_age_s=0.1))
    env.reset(seed=0)
    env.step(np.zeros(7, dtype=np.float32))
    robot.lag = 0.5
    env.step(np.zeros(7, dtype=np.float32))  # this step observes the stalled stream
    ctrl = robot.data.ctrl.copy()
    _, _, _, _, info = env.step(np.array([1, 0, 0, 0, 0, 0, 0], dtype=np.float32))
    assert info["safety"]["held"] and "stale observation" in info["safety"]["reason"]
    np.testing.assert_array_equal(robot.data.ctrl, ctrl)
    with pytest.raises(SafetyError, match="stale observation"):
        env.step(np.array([1, 0, 0, 0, 0, 0, 0], dtype=np.float32))


def test_robot_itself_refuses_non_finite_commands() -> None:
    with FrankaRobot() as robot:
        robot.reset()
        ctrl = robot.data.ctrl.copy()
        with pytest.raises(SafetyError, match="nothing was sent"):
            robot.command(np.array([0, 0, np.nan, 0, 0, 0, 0]))
        np.testing.assert_array_equal(robot.data.ctrl, ctrl)
        with pytest.raises(ConfigError, match="command shape"):
            robot.command(np.zeros(3))


def test_safety_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        SafetyConfig(max_faults=0)
    with pytest.raises(ConfigError):
        SafetyConfig(workspace_low=(0, 0, 0), workspace_high=None)
    with pytest.raises(ConfigError):
        SafetyConfig(workspace_low=(1, 0, 0), workspace_high=(0, 1, 1))
