"""The one env API: gymnasium's env checker on every id, seeding, goal keys, spaces."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robot.core import ConfigError
from robot.sessions.envs import make_env, registered_ids


def test_check_env_passes_for_every_registered_id(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_check_env_with_cameras_and_joint_actions() -> None:
    env = gym.make("realrl/FrankaLift-v0", cameras=("front", "wrist"), image_size=(48, 64), action_mode="joint_pos")
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["image/front"].shape == (48, 64, 3) and obs["image/front"].dtype == np.uint8
    assert obs["image/wrist"].std() > 1.0 and obs["image/front"].std() > 1.0, "cameras render a blank image"
    assert not np.array_equal(obs["image/front"], obs["image/wrist"])
    assert env.action_space.shape == (8,)
    env.close()


def test_registered_ids_include_realrl_and_gymnasium_robotics() -> None:
    ids = registered_ids()
    for i in ("realrl/FrankaLift-v0", "realrl/FrankaPickPlace-v0", "realrl/FrankaStack-v0",
              "FetchPickAndPlace-v4", "FrankaKitchen-v1"):
        assert i in ids


def test_unknown_env_id_lists_registered_ids() -> None:
    with pytest.raises(ConfigError) as e:
        make_env("realrl/FrankaLfit-v0")
    assert "realrl/FrankaLift-v0" in str(e.value) and "FetchPickAndPlace-v4" in str(e.value)


def test_pick_place_is_goal_conditioned() -> None:
    env = gym.make("realrl/FrankaPickPlace-v0")
    obs, _ = env.reset(seed=1)
    base = env.unwrapped
    for k in ("observation", "achieved_goal", "desired_goal"):
        assert k in obs
    np.testing.assert_allclose(obs["desired_goal"], obs["state/goal_pos"])
    ag = np.stack([obs["achieved_goal"], obs["desired_goal"]])
    dg = np.stack([obs["desired_goal"], obs["desired_goal"]])
    np.testing.assert_array_equal(base.compute_reward(ag, dg, None), [-1.0, 0.0])
    with pytest.raises(ConfigError, match="not goal-conditioned"):
        gym.make("realrl/FrankaLift-v0").unwrapped.compute_reward(ag, dg, None)


def test_reset_seed_randomizes_and_reproduces_the_scene() -> None:
    env = gym.make("realrl/FrankaStack-v0")
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=6)
    c, _ = env.reset(seed=5)
    assert not np.allclose(a["state/cube_pose"], b["state/cube_pose"])
    np.testing.assert_array_equal(a["state/cube_pose"], c["state/cube_pose"])
    np.testing.assert_array_equal(a["state/base_pose"], c["state/base_pose"])


def test_wrong_action_shape_is_a_config_error() -> None:
    env = gym.make("realrl/FrankaLift-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="action shape"):
        env.step(np.zeros(3, dtype=np.float32))


def test_bad_factory_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown cameras"):
        gym.make("realrl/FrankaLift-v0", cameras=("top",))
    with pytest.raises(ConfigError, match="action_mode"):
        gym.make("realrl/FrankaLift-v0", action_mode="torque")


def test_domain_randomization_changes_object_physics() -> None:
    from sim.mujoco_robot import Randomization
    from sim.tasks import TableTopConfig

    table = TableTopConfig(physics=Randomization(size_scale=(0.8, 1.2), friction_scale=(0.5, 1.5),
                                                 mass_scale=(0.5, 2.0)))
    env = gym.make("realrl/FrankaLift-v0", table=table)
    robot = env.unwrapped.robot
    sizes, frictions, masses = set(), set(), set()
    gid = robot.model.geom("cube_geom").id
    bid = robot.model.body("cube").id
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        sizes.add(round(float(robot.model.geom_size[gid][0]), 6))
        frictions.add(round(float(robot.model.geom_friction[gid][0]), 6))
        masses.add(round(float(robot.model.body_mass[bid]), 6))
        # The cube rests on the table at its (randomized) half height.
        assert obs["state/cube_pose"][2] == pytest.approx(robot.model.geom_size[gid][2], abs=1e-6)
    assert len(sizes) == 4 and len(frictions) == 4 and len(masses) == 4


def test_task_evaluate_agrees_with_its_separate_methods(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    obs, _ = env.reset(seed=2)
    expert = env.task.expert(seed=2)
    for _ in range(40):
        obs, reward, terminated, _, info = env.step(expert.act(obs))
        task = env.task
        assert task.evaluate(obs) == (task.reward(obs), task.success(obs), task.terminated(obs), task.info(obs))
        assert reward == task.reward(obs) and info["success"] == task.success(obs)
        if terminated:
            break
