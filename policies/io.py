"""Saving and loading policies as checkpoints; refusing one whose layout does not match the env."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym

import policies.base_policies
import policies.heads  # noqa: F401 - registers the heads
from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.chunk_policy import ChunkPolicy
from policies.config import algo_from_json, chunk_from_json, net_from_json, obs_from_json, to_json
from policies.normalize import Normalizer
from policies.registry import POLICIES
from robot.core.errors import CheckpointError


def policy_config(policy: ChunkPolicy) -> dict[str, Any]:
    """Everything needed to rebuild the policy (JSON-safe)."""
    return {
        "kind": "policy",
        "algo": policy.name,
        "algo_config": to_json(policy.algo),
        "net": to_json(policy.net_cfg),
        "obs": to_json(policy.obs_cfg),
        "chunk": to_json(policy.chunk_cfg),
        "action_dim": policy.action_dim,
        "normalizer": {k: list(v) for k, v in policy.model.normalizer.shapes().items()},
        "meta": policy.meta,
    }


def save_policy(policy: ChunkPolicy, path: str | os.PathLike[str]) -> Path:
    """Weights (safetensors) + config (JSON)."""
    return save_checkpoint(path, policy.model.state_dict(), policy_config(policy))


def build_policy(config: dict[str, Any]) -> ChunkPolicy:
    """An untrained policy from a checkpoint config."""
    try:
        algo = algo_from_json(config["algo"], config["algo_config"])
        normalizer = Normalizer(shapes={k: tuple(v) for k, v in config["normalizer"].items()})
        cls = POLICIES.get(config["algo"])
        policy: ChunkPolicy = cls(
            obs_from_json(config["obs"]),
            chunk_from_json(config["chunk"]),
            int(config["action_dim"]),
            algo,
            normalizer,
            net=net_from_json(config["net"]),
            meta=config.get("meta", {}),
        )
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint config is incomplete or malformed ({e!r})") from e
    return policy


def policy_dir(path: str | os.PathLike[str]) -> Path:
    """The checkpoint inside a run directory (its policy/, or policy.old while a save swaps it in), or `path`."""
    p = Path(path)
    return p / "policy" if (p / "policy").exists() or (p / "policy.old").exists() else p


def load_any_policy(path: str | os.PathLike[str]) -> Any:
    """A run directory or checkpoint of any deployable policy: base + residual, or a chunk policy (base or head)."""
    from policies.residual.policy import is_residual_policy, load_residual_policy

    p = policy_dir(path)
    return load_residual_policy(p) if is_residual_policy(p) else load_policy(p)


def load_policy(path: str | os.PathLike[str]) -> ChunkPolicy:
    """Rebuild a policy from its checkpoint; tensors only, no code runs."""
    tensors, config = load_checkpoint(path)
    if config.get("kind") != "policy":
        raise CheckpointError(f"{path} holds a {config.get('kind')!r} checkpoint, not a policy")
    policy = build_policy(config)
    missing, unexpected = policy.model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit the config (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}); the checkpoint is damaged or from another version"
        )
    policy.model.eval()
    return policy


def check_compatible(policy: ChunkPolicy, env: gym.Env[Any, Any]) -> None:
    """Raise CheckpointError when the env's observations or actions do not match what the policy expects."""
    space = env.observation_space
    problems: list[str] = []
    if not isinstance(space, gym.spaces.Dict):
        problems.append(f"observations are {type(space).__name__}, not a dict of state/image keys")
    else:
        for k, d in zip(policy.obs_cfg.state_keys, policy.obs_cfg.state_dims, strict=True):
            if k not in space.spaces:
                problems.append(f"missing state key {k!r}")
            elif space.spaces[k].shape != (d,):
                problems.append(f"{k!r} has shape {space.spaces[k].shape}, the policy expects ({d},)")
        h, w = policy.obs_cfg.image_shape
        for k in policy.obs_cfg.image_keys:
            if k not in space.spaces:
                problems.append(f"missing camera {k!r} (make the env with cameras=...)")
            elif space.spaces[k].shape != (h, w, 3):
                problems.append(f"{k!r} is {space.spaces[k].shape}, the policy expects ({h}, {w}, 3)")
    shape = env.action_space.shape
    if shape != (policy.action_dim,):
        problems.append(f"action space {shape} but the policy outputs ({policy.action_dim},)")
    if problems:
        env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        raise CheckpointError(f"policy and env {env_id} do not match: " + "; ".join(problems))
