"""A frozen base policy plus a learned residual actor, as one deployable Policy with its own checkpoint."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.residual.nets import GaussianResidualActor, ResidualActor
from robot.core.errors import CheckpointError, ConfigError
from robot.core.interfaces import Policy
from robot.core.types import Observation

BASE_DIR = "base"
RESIDUAL_DIR = "residual"


@dataclass(frozen=True)
class Features:
    """How an observation (+ the base action) becomes the residual actor's and critic's input vector.

    Layout: standardized state keys in order, then (with `goal_delta`) the standardized goal offset and its norm,
    then (with `phase_dim` > 0) a one-hot of the base's chunk phase, then the base action (already in [-1, 1]) in
    the last `action_dim` columns, where the learner reads it to form clip(base + scale * residual).

    The chunk phase is the episode step modulo the base's Ta (a chunked base plans at its reset and then every
    Ta steps): the base's coming actions were fixed at the last plan, so two equal observations at different
    phases face different futures, which the critic cannot tell apart without it.
    """

    state_keys: tuple[str, ...]
    state_dims: tuple[int, ...]
    action_dim: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    phase_dim: int = 0
    """Base chunk length Ta whose phase is one-hot encoded (0: no phase input)."""
    goal_delta: tuple[str, str, int] | None = None
    """(achieved key, desired key, n): also give the first n entries of achieved - desired and their norm. A
    sparse goal reward is a step in that distance (3 cm on FrankaPickPlace); an MLP of standardized absolute
    positions that span the whole table resolves it only coarsely."""

    def __post_init__(self) -> None:
        if self.phase_dim < 0:
            raise ConfigError(f"phase_dim must be >= 0, got {self.phase_dim}")
        if self.goal_delta is not None:
            a, d, n = self.goal_delta
            dims = dict(zip(self.state_keys, self.state_dims, strict=True))
            if a not in dims or d not in dims or not 1 <= n <= min(dims[a], dims[d]):
                raise ConfigError(f"goal_delta {self.goal_delta}: both keys must be state keys of the features "
                                  f"({list(self.state_keys)}) with at least n entries")

    @property
    def delta_dim(self) -> int:
        """Columns of the goal offset block (n + 1 for its norm; 0 without goal_delta)."""
        return 0 if self.goal_delta is None else self.goal_delta[2] + 1

    @property
    def dim(self) -> int:
        """Feature vector length."""
        return sum(self.state_dims) + self.delta_dim + self.phase_dim + self.action_dim

    @staticmethod
    def _raw(state_keys: tuple[str, ...], states: dict[str, np.ndarray], n: int,
             goal_delta: tuple[str, str, int] | None) -> np.ndarray:
        """(n, columns) unstandardized: the state keys in order, then the goal offset and its norm."""
        cols = [np.asarray(states[k], np.float64).reshape(n, -1) for k in state_keys]
        if goal_delta is not None:
            a, d, m = goal_delta
            off = (np.asarray(states[a], np.float64).reshape(n, -1)[:, :m]
                   - np.asarray(states[d], np.float64).reshape(n, -1)[:, :m])
            cols += [off, np.linalg.norm(off, axis=1, keepdims=True)]
        return np.concatenate(cols, 1)

    @staticmethod
    def fit(state_keys: tuple[str, ...], states: dict[str, np.ndarray], action_dim: int,
            phase_dim: int = 0, goal_delta: tuple[str, str, int] | None = None) -> Features:
        """Standardization from data: states[k] is (N, d_k); std floored so constant dims stay finite."""
        missing = [k for k in state_keys if k not in states]
        if missing:
            raise ConfigError(f"no data for state keys {missing}; have {sorted(states)}")
        dims = tuple(int(np.asarray(states[k]).reshape(len(states[k]), -1).shape[1]) for k in state_keys)
        nan = (float("nan"),)
        probe = Features(state_keys, dims, action_dim, nan, nan, phase_dim, goal_delta)  # validates goal_delta
        cols = Features._raw(state_keys, states, len(states[state_keys[0]]), probe.goal_delta)
        mean, std = cols.mean(0), np.maximum(cols.std(0), 1e-3)
        return replace(probe, mean=tuple(map(float, mean)), std=tuple(map(float, std)))

    def __call__(self, obs: Observation, base_action: np.ndarray, step: int | None = None) -> np.ndarray:
        """(D,) float32 features of one observation; `step` counts env steps since the base's reset."""
        try:
            states = {k: np.asarray(obs[k]).reshape(1, -1) for k in self.state_keys}
        except KeyError as e:
            raise CheckpointError(
                f"observation has no key {e.args[0]!r}; the residual uses {list(self.state_keys)}"
            ) from None
        return self.batch(states, np.asarray(base_action).reshape(1, -1), None if step is None else np.array([step]))[0]

    def batch(self, states: dict[str, np.ndarray], base_actions: np.ndarray,
              steps: np.ndarray | None = None) -> np.ndarray:
        """(N, D) features from arrays of N steps (states[k]: (N, d_k), base_actions: (N, Da), steps: (N,) env
        steps since the base's reset, needed with phase_dim > 0)."""
        n = len(base_actions)
        cols = self._raw(self.state_keys, states, n, self.goal_delta)
        z = (cols - np.asarray(self.mean)) / np.asarray(self.std)
        parts = [z]
        if self.phase_dim:
            if steps is None:
                raise ConfigError("these features encode the base's chunk phase: pass the episode steps")
            parts.append(np.eye(self.phase_dim)[np.asarray(steps, np.int64).reshape(n) % self.phase_dim])
        parts.append(np.asarray(base_actions, np.float64))
        return np.concatenate(parts, 1).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"state_keys": list(self.state_keys), "state_dims": list(self.state_dims),
                "action_dim": self.action_dim, "mean": list(self.mean), "std": list(self.std),
                "phase_dim": self.phase_dim,
                **({"goal_delta": list(self.goal_delta)} if self.goal_delta is not None else {})}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Features:
        """Inverse of to_json."""
        return Features(tuple(d["state_keys"]), tuple(int(x) for x in d["state_dims"]), int(d["action_dim"]),
                        tuple(float(x) for x in d["mean"]), tuple(float(x) for x in d["std"]),
                        int(d.get("phase_dim", 0)),
                        None if d.get("goal_delta") is None else (str(d["goal_delta"][0]), str(d["goal_delta"][1]),
                                                                  int(d["goal_delta"][2])))


class ZeroBase(Policy):
    """The 'no base' of RLPD from scratch: always 0, so the residual (at scale 1) is the whole action."""

    def __init__(self, action_dim: int, meta: dict[str, Any] | None = None) -> None:
        self.action_dim = action_dim
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def name(self) -> str:
        """Algorithm name."""
        return "none"

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """No network."""
        return 0

    def reset(self) -> None:
        """Stateless."""

    def act(self, obs: Observation) -> np.ndarray:
        """Zeros."""
        return np.zeros(self.action_dim, np.float32)


class ResidualPolicy(Policy):
    """act(obs) = clip(base(obs) + scale * actor(features(obs, base(obs)))), deterministic.

    The base keeps its own chunk queue and history (it is reset with this policy); the actor runs every step.
    """

    def __init__(self, base: Policy, actor: torch.nn.Module, features: Features,
                 scale: float | Sequence[float] | np.ndarray, algo: str, meta: dict[str, Any] | None = None) -> None:
        self.base, self.actor, self.features, self.algo = base, actor.eval(), features, algo
        # The training loop evaluates with the learner's own actor, which may sit on a GPU.
        self._device = next(actor.parameters()).device
        self.scale = np.broadcast_to(np.asarray(scale, np.float32), (features.action_dim,)).copy()
        """Residual scale per action dimension."""
        self.meta: dict[str, Any] = dict(meta or getattr(base, "meta", {}))
        self.last_base_action = np.zeros(features.action_dim, np.float32)
        self.step = 0
        """Steps since reset (the base's chunk phase, when the features encode it)."""

    @property
    def name(self) -> str:
        """'residual-<algo>+<base>'."""
        return f"residual-{self.algo}+{getattr(self.base, 'name', 'base')}"

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """The base's network calls per chunk (the residual adds one small MLP call per step)."""
        return int(getattr(self.base, "nfe", 0))

    def reset(self) -> None:
        """Reset the base (its history and chunk queue) and the step count."""
        self.base.reset()
        self.step = 0

    def seed(self, seed: int) -> None:
        """Seed the base's sampling noise, if it samples."""
        fn = getattr(self.base, "seed", None)
        if fn is not None:
            fn(seed)

    def check_env(self, env: Any) -> None:
        """The base's compatibility check."""
        fn = getattr(self.base, "check_env", None)
        if fn is not None:
            fn(env)

    @torch.inference_mode()
    def residual(self, features: np.ndarray) -> np.ndarray:
        """Deterministic residual (Da,) in [-1, 1] for one feature vector."""
        x = torch.from_numpy(features).unsqueeze(0).to(self._device)
        out = self.actor(x, deterministic=True)[0] if isinstance(self.actor, GaussianResidualActor) else self.actor(x)
        return out[0].cpu().numpy()

    def act(self, obs: Observation) -> np.ndarray:
        """Base action corrected by the residual, clipped to [-1, 1]."""
        base = np.clip(np.asarray(self.base.act(obs), np.float64), -1.0, 1.0).astype(np.float32)
        self.last_base_action = base
        r = self.residual(self.features(obs, base, self.step))
        self.step += 1
        return np.clip(base + self.scale * r, -1.0, 1.0).astype(np.float32)


def make_actor(kind: str, obs_dim: int, action_dim: int, hidden: tuple[int, ...]) -> torch.nn.Module:
    """The actor network: 'gaussian' (SAC, RLPD) or 'deterministic' (TD3)."""
    if kind == "gaussian":
        return GaussianResidualActor(obs_dim, action_dim, hidden)
    return ResidualActor(obs_dim, action_dim, hidden)


def save_residual_policy(policy: ResidualPolicy, path: str | os.PathLike[str], base_dir: Path | None,
                         hidden: tuple[int, ...]) -> Path:
    """`path/residual` (actor + features + scale) and `path/base` (a copy of the base checkpoint, or none)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if base_dir is not None and not (out / BASE_DIR).exists():
        tmp = out / (BASE_DIR + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(base_dir, tmp)
        os.replace(tmp, out / BASE_DIR)
    actor = "gaussian" if isinstance(policy.actor, GaussianResidualActor) else "deterministic"
    config = {"kind": "residual", "algo": policy.algo, "actor": actor, "scale": [float(x) for x in policy.scale],
              "hidden": list(hidden),
              "features": policy.features.to_json(), "has_base": base_dir is not None, "meta": policy.meta}
    save_checkpoint(out / RESIDUAL_DIR, {k: v.cpu() for k, v in policy.actor.state_dict().items()}, config)
    return out


def is_residual_policy(path: str | os.PathLike[str]) -> bool:
    """Whether `path` holds a saved ResidualPolicy."""
    p = Path(path) / RESIDUAL_DIR
    return p.exists() or p.with_name(p.name + ".old").exists()


def load_residual_policy(path: str | os.PathLike[str]) -> ResidualPolicy:
    """Rebuild base + residual from `path`; tensors and JSON only, no code runs."""
    from policies.io import load_policy

    tensors, config = load_checkpoint(Path(path) / RESIDUAL_DIR)
    if config.get("kind") != "residual":
        raise CheckpointError(f"{path} holds a {config.get('kind')!r} checkpoint, not a residual policy")
    try:
        features = Features.from_json(config["features"])
        actor = make_actor(config["actor"], features.dim, features.action_dim, tuple(config["hidden"]))
        base: Policy = (load_policy(Path(path) / BASE_DIR) if config["has_base"]
                        else ZeroBase(features.action_dim, config.get("meta")))
        scale = np.asarray(config["scale"], np.float32)  # one number in checkpoints before per-dim scales
        if scale.size not in (1, features.action_dim):
            raise ValueError(f"{scale.size} scales for a {features.action_dim}-dim action")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: residual config is incomplete or malformed ({e!r})") from e
    missing, unexpected = actor.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: residual weights do not fit the config (missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]})")
    return ResidualPolicy(base, actor, features, scale, config["algo"], meta=config.get("meta"))
