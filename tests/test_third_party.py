"""gymnasium-robotics Fetch and Franka Kitchen through the same factory and wrappers."""

import numpy as np
import pytest

from robot.core import SafetyError
from robot.sessions.envs import make_env
from robot.wrappers import SafetyLimits


@pytest.mark.parametrize("env_id", ["FetchPickAndPlace-v4", "FrankaKitchen-v1"])
def test_third_party_env_runs_under_realrl_wrappers(env_id: str) -> None:
    env = SafetyLimits(make_env(env_id))
    obs, info = env.reset(seed=0)
    assert all(k.startswith("state/") or k in ("observation", "achieved_goal", "desired_goal") for k in obs)
    assert any(k.startswith("state/") for k in obs) and "success" in info
    assert env.observation_space.contains(obs)
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs, _, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        assert isinstance(info["success"], bool)
    _, _, _, _, info = env.step(np.full(env.action_space.shape, np.nan, dtype=np.float32))
    assert info["safety"]["held"]
    with pytest.raises(SafetyError):
        env.step(np.full(env.action_space.shape, np.nan, dtype=np.float32))
    env.close()


def test_fetch_goal_keys_survive_for_relabelling() -> None:
    env = make_env("FetchPickAndPlace-v4")
    obs, _ = env.reset(seed=0)
    r = env.unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], {})
    assert float(r) in (-1.0, 0.0)
