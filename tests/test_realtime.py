"""RealTimeRate paces the loop and counts overruns instead of silently stretching time."""

import time

import gymnasium as gym
import numpy as np

from robot.wrappers import RateConfig, RealTimeRate


def test_paces_at_the_requested_rate_and_counts_overruns() -> None:
    env = RealTimeRate(gym.make("realrl/FrankaLift-v0").unwrapped, RateConfig(hz=50.0))
    assert env.hz == 50.0
    env.reset(seed=0)
    a = np.zeros(7, dtype=np.float32)
    t0 = time.monotonic()
    for _ in range(21):
        env.step(a)
    elapsed = time.monotonic() - t0
    assert elapsed >= 20 * 0.02 * 0.98, f"20 periods at 50 Hz took only {elapsed:.3f} s"
    base_overruns = env.overruns
    for _ in range(3):  # a policy that takes 2.5 periods
        time.sleep(0.05)
        _, _, _, _, info = env.step(a)
        assert info["rate"]["overrun"]
    assert env.overruns - base_overruns == 3
    stats = env.stats()
    assert stats["steps"] == 24 and stats["overruns"] >= 3
    assert stats["env_p50_ms"] > 0 and stats["agent_p99_ms"] >= 50.0


def test_defaults_to_the_robot_control_rate() -> None:
    env = RealTimeRate(gym.make("realrl/FrankaLift-v0", control_hz=10.0).unwrapped)
    assert env.hz == 10.0
