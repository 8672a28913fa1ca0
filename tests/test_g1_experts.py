"""G1 scripted experts: >= 90% success with noise 0 (a fast subset of seeds), seeding, skill and DART labels."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from robot.core import ConfigError
from sim.mujoco_robot import Randomization
from sim.tasks import G1BoxPickup, G1Handover


def rollout(env: gym.Env, seed: int, noise: float = 0.0, skill: float = 1.0) -> tuple[bool, list[np.ndarray]]:
    obs, _ = env.reset(seed=seed)
    expert = env.unwrapped.task.expert(noise=noise, skill=skill, seed=seed)
    traj = [obs["state/ee_pose"].copy()]
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        traj.append(obs["state/ee_pose"].copy())
        if terminated or truncated:
            return bool(info["success"]), traj


# Measured over 200 (box) and 60 (handover) seeds: 100%; CI runs a subset, the bar stays the acceptance 90%.
@pytest.mark.parametrize(("env_id", "seeds"), [("realrl/G1BoxPickup-v0", 20), ("realrl/G1Handover-v0", 12)])
def test_clean_expert_reaches_90_percent(env_id: str, seeds: int) -> None:
    env = gym.make(env_id)
    wins = np.array([rollout(env, seed)[0] for seed in range(seeds)])
    assert wins.mean() >= 0.9, f"{env_id}: expert success {wins.mean():.0%} < 90% (failed: {np.flatnonzero(~wins)})"


def test_expert_copes_with_physics_randomization() -> None:
    table = dataclasses.replace(G1BoxPickup.default_table, physics=Randomization(
        size_scale=(0.9, 1.1), friction_scale=(0.7, 1.3), mass_scale=(0.5, 2.0)))
    env = gym.make("realrl/G1BoxPickup-v0", table=table)
    robot = env.unwrapped.robot
    gid = robot.model.geom("box_geom").id
    sizes = set()
    wins = []
    for seed in range(6):
        ok, _ = rollout(env, seed)
        wins.append(ok)
        sizes.add(round(float(robot.model.geom_size[gid][1]), 5))
    assert len(sizes) == 6 and np.mean(wins) >= 5 / 6


def test_same_seed_same_trajectory_even_with_noise() -> None:
    env = gym.make("realrl/G1BoxPickup-v0")
    _, a = rollout(env, 7, noise=0.2)
    _, b = rollout(env, 7, noise=0.2)
    _, c = rollout(env, 8, noise=0.2)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert len(a) != len(c) or not np.array_equal(np.stack(a), np.stack(c))


def test_low_skill_and_noise_degrade_the_handover() -> None:
    env = gym.make("realrl/G1Handover-v0")
    weak = np.mean([rollout(env, s, skill=0.0, noise=0.3)[0] for s in range(5)])
    assert weak < 0.9  # clean: 100% (test above)


def test_noisy_expert_keeps_clean_labels() -> None:
    env = gym.make("realrl/G1Handover-v0")
    obs, _ = env.reset(seed=0)
    expert = env.unwrapped.task.expert(noise=0.2, seed=0)
    a = expert.act(obs)
    assert a.shape == (14,) and expert.clean_action is not None
    assert not np.allclose(a[:12], expert.clean_action[:12])
    np.testing.assert_array_equal(a[12:], expert.clean_action[12:])  # hand closures are never noised


@pytest.mark.parametrize("task_cls", [G1BoxPickup, G1Handover])
def test_expert_knobs_are_validated(task_cls: type) -> None:
    task = task_cls()
    with pytest.raises(ConfigError):
        task.expert(noise=-1.0)
    with pytest.raises(ConfigError):
        task.expert(skill=1.5)


def test_success_needs_the_box_held_not_just_high() -> None:
    env = gym.make("realrl/G1BoxPickup-v0").unwrapped
    obs, _ = env.reset(seed=0)
    robot = env.robot
    pose = obs["state/box_pose"].astype(np.float64)
    robot.set_object_pose("box", pose[:3] + np.array([0.0, 0.0, 0.1]), pose[3:])
    robot.forward()
    high = robot.observe()
    assert env.task.evaluate(high)[1] is False  # lifted, but nothing holds it
    assert env.task.evaluate(high)[3]["lift_height"] == pytest.approx(0.1, abs=1e-5)


def test_experts_drive_a_joint_position_g1_through_its_ik() -> None:
    env = gym.make("realrl/G1BoxPickup-v0", action_mode="joint_pos")
    wins = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        expert = env.unwrapped.task.expert(noise=0.1, seed=seed)
        while True:
            a = expert.act(obs)
            assert a.shape == (28,) and expert.clean_action.shape == (28,) and np.abs(a).max() <= 1.0
            obs, _, terminated, truncated, info = env.step(a)
            if terminated or truncated:
                break
        wins.append(info["success"])
    assert all(wins)
