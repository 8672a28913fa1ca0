"""What every session loop does to a policy around an env: the compatibility check and the seeded episode start."""

from __future__ import annotations

from typing import Any

from robot.core.interfaces import Policy
from robot.core.types import Observation


def check_policy_env(policy: Policy, env: Any) -> bool:
    """Run the policy's own `check_env(env)` when it has one (a clear error for another layout); False if it has
    none, so the caller can fall back to a generic check."""
    check = getattr(policy, "check_env", None)
    if check is None:
        return False
    check(env)
    return True


def start_episode(env: Any, policy: Policy, seed: int) -> Observation:
    """Reset `env` with `seed`, reset the policy and seed its sampling noise (when it samples) with the same seed,
    so an episode is reproducible from its seed alone; returns the first observation."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    seed_fn = getattr(policy, "seed", None)
    if seed_fn is not None:
        seed_fn(seed)
    return obs
