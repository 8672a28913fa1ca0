"""ResidualAction and ActionChunking wrappers: env checker, zero residual = base, chunk execution, ensembling."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robot.core import ConfigError
from robot.wrappers import ActionChunking, ResidualAction


def lift() -> gym.Env:
    return gym.make("realrl/FrankaLift-v0").unwrapped


def test_residual_wrapper_passes_check_env() -> None:
    env = lift()
    wrapped = ResidualAction(env, env.task.expert(), scale=0.1)
    check_env(wrapped, skip_render_check=True)
    obs, _ = wrapped.reset(seed=0)
    assert obs["base_action"].shape == (7,) and wrapped.observation_space.contains(obs)


def test_zero_residual_reproduces_the_base_policy() -> None:
    env = lift()
    expert = env.task.expert(seed=3)
    obs, _ = env.reset(seed=3)
    plain, success = [], False
    for _ in range(100):
        obs, _, term, trunc, info = env.step(expert.act(obs))
        plain.append(obs["state/ee_pose"].copy())
        success = success or info["success"]
        if term or trunc:
            break
    assert success
    wrapped = ResidualAction(lift(), gym.make("realrl/FrankaLift-v0").unwrapped.task.expert(seed=3), scale=0.2)
    obs, _ = wrapped.reset(seed=3)
    residual = []
    for _ in range(len(plain)):
        obs, _, term, trunc, info = wrapped.step(np.zeros(7, dtype=np.float32))
        residual.append(obs["state/ee_pose"].copy())
        np.testing.assert_array_equal(info["combined_action"], info["base_action"])
        if term or trunc:
            break
    np.testing.assert_array_equal(np.stack(plain), np.stack(residual))


def test_residual_is_scaled_added_and_clipped() -> None:
    class Const:
        def __init__(self, a):
            self.a = a

        def reset(self):
            pass

        def act(self, obs):
            return self.a

    base = np.array([0.0, 0.95, -0.5, 0, 0, 0, 0], dtype=np.float32)
    wrapped = ResidualAction(lift(), Const(base), scale=0.1)
    wrapped.reset(seed=0)
    _, _, _, _, info = wrapped.step(np.array([1, 1, -1, 0, 0, 0, 5], dtype=np.float32))
    np.testing.assert_allclose(info["combined_action"], [0.1, 1.0, -0.6, 0, 0, 0, 0.1], atol=1e-6)
    with pytest.raises(ConfigError):
        ResidualAction(lift(), Const(base), scale=0.0)
    # one scale per dimension: the gripper (last) gets its whole range, the arm 0.1
    per_dim = ResidualAction(lift(), Const(base), scale=[0.1] * 6 + [1.0])
    per_dim.reset(seed=0)
    _, _, _, _, info = per_dim.step(np.array([1, 1, -1, 0, 0, 0, -0.5], dtype=np.float32))
    np.testing.assert_allclose(info["combined_action"], [0.1, 1.0, -0.6, 0, 0, 0, -0.5], atol=1e-6)
    # scale 2 spans the range: a residual of +1 holds shut a gripper the base opens (-1), which 1 cannot
    opening = np.array([0, 0, 0, 0, 0, 0, -1.0], dtype=np.float32)
    for gs, closed in ((1.0, 0.0), (2.0, 1.0)):
        w = ResidualAction(lift(), Const(opening), scale=[0.1] * 6 + [gs])
        w.reset(seed=0)
        _, _, _, _, info = w.step(np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32))
        assert info["combined_action"][-1] == pytest.approx(closed)
    for bad in ([0.1] * 6, [0.1] * 6 + [2.5]):
        with pytest.raises(ConfigError, match="one per action dim"):
            ResidualAction(lift(), Const(base), scale=bad)


def test_chunks_execute_open_loop_and_sum_rewards() -> None:
    env = ActionChunking(lift(), chunk_len=4, execute=3)
    ref = lift()
    env.reset(seed=0)
    ref.reset(seed=0)
    chunk = np.tile(np.array([0.2, 0, -0.3, 0, 0, 0.1, -1], dtype=np.float32), (4, 1))
    obs, reward, _, _, info = env.step(chunk)
    expected = sum(float(ref.step(chunk[i])[1]) for i in range(3))
    assert info["executed"] == 3
    assert reward == pytest.approx(expected)
    np.testing.assert_array_equal(obs["state/ee_pose"], ref.last_observation()["state/ee_pose"])
    with pytest.raises(ConfigError):
        env.step(np.zeros((3, 7), dtype=np.float32))


def test_temporal_ensembling_averages_overlapping_chunks() -> None:
    env = ActionChunking(lift(), chunk_len=4, execute=1, ensemble=0.0)  # equal weights
    env.reset(seed=0)
    a = np.zeros((4, 7), dtype=np.float32)
    b = np.zeros((4, 7), dtype=np.float32)
    b[:, 5] = 1.0  # drz
    env.step(a)  # t = 0
    _, _, _, _, info = env.step(b)  # t = 1: chunk a (its step 1) and chunk b (its step 0) both cover it
    assert info["sent_action"][5] == pytest.approx(0.5, abs=1e-5)
    plain = ActionChunking(lift(), chunk_len=4, execute=1)
    plain.reset(seed=0)
    plain.step(a)
    _, _, _, _, info = plain.step(b)
    assert info["sent_action"][5] == pytest.approx(1.0)
