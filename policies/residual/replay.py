"""Transition replay with n-step returns across episode ends, for vectorized envs (one stream per env)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.core.errors import ConfigError


@dataclass
class NStepBatch:
    """Sampled n-step transitions (numpy, batch first)."""

    obs: np.ndarray
    """(B, D) observation features at t."""
    action: np.ndarray
    """(B, Da) action taken at t (what the critic scores)."""
    returns: np.ndarray
    """(B,) sum_{i<k} gamma^i r_{t+i} over the k <= n steps before the episode ended."""
    discount: np.ndarray
    """(B,) gamma^k, or 0 when the episode terminated inside the window (no bootstrap)."""
    next_obs: np.ndarray
    """(B, D) observation to bootstrap from (after step t+k-1)."""
    demo: np.ndarray | None = None
    """(B,) bool: the row came from the demo replay (None: no row did)."""


class ReplayBuffer:
    """Time-major ring buffer (capacity, n_envs): env e's steps form one stream, so n-step windows never mix
    envs. A window stops at the first terminated/truncated step (truncation bootstraps, termination does not)
    and at the newest step written."""

    def __init__(self, capacity: int, n_envs: int, obs_dim: int, action_dim: int, *, n_step: int = 3,
                 gamma: float = 0.99, seed: int = 0) -> None:
        if capacity < n_step + 1 or n_envs < 1:
            raise ConfigError(f"capacity {capacity} must exceed n_step {n_step}, and n_envs >= 1")
        self.capacity, self.n_envs, self.n_step, self.gamma = capacity, n_envs, n_step, gamma
        self.obs = np.zeros((capacity, n_envs, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, n_envs, obs_dim), np.float32)
        self.action = np.zeros((capacity, n_envs, action_dim), np.float32)
        self.reward = np.zeros((capacity, n_envs), np.float32)
        self.terminated = np.zeros((capacity, n_envs), bool)
        self.truncated = np.zeros((capacity, n_envs), bool)
        self.t = 0  # next row to write
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size * self.n_envs

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        """One step of every env: obs (E, D), action (E, Da), reward/terminated/truncated (E,), next_obs (E, D)."""
        i = self.t
        self.obs[i], self.action[i], self.reward[i], self.next_obs[i] = obs, action, reward, next_obs
        self.terminated[i], self.truncated[i] = terminated, truncated
        self.t = (self.t + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_episode(self, obs: np.ndarray, action: np.ndarray, success: bool) -> None:
        """Append one whole episode to a one-stream replay: obs (T+1, D) from the first observation to the one
        after the last action, action (T, Da). The last step gets reward 1 and ends terminated when the episode
        succeeded; otherwise it ends truncated (and bootstraps)."""
        n = len(action)
        if self.n_envs != 1:
            raise ConfigError(f"add_episode writes a one-stream replay; this one has {self.n_envs} envs")
        if n == 0 or len(obs) != n + 1:
            raise ConfigError(f"an episode of {n} actions needs {n + 1} observation rows, got {len(obs)}")
        for t in range(n):
            last = t == n - 1
            self.add(obs[t][None], action[t][None], np.array([float(last and success)]), obs[t + 1][None],
                     np.array([last and success]), np.array([last and not success]))

    def sample(self, batch: int) -> NStepBatch:
        """Uniform over stored (row, env) pairs, with n-step returns."""
        if self.size == 0:
            raise ConfigError("cannot sample from an empty replay buffer")
        oldest = (self.t - self.size) % self.capacity
        age = self.rng.integers(0, self.size, batch)  # 0 = oldest row
        rows = (oldest + age) % self.capacity
        envs = self.rng.integers(0, self.n_envs, batch)
        returns = np.zeros(batch, np.float64)
        discount = np.ones(batch, np.float64)
        last = rows.copy()
        alive = np.ones(batch, bool)
        for k in range(self.n_step):
            step_ok = alive & (age + k < self.size)  # never read past the newest row
            r = (rows + k) % self.capacity
            returns += np.where(step_ok, discount * self.reward[r, envs], 0.0)
            last = np.where(step_ok, r, last)
            term, trunc = self.terminated[r, envs], self.truncated[r, envs]
            discount = np.where(step_ok, discount * self.gamma, discount)
            discount = np.where(step_ok & term, 0.0, discount)
            alive = step_ok & ~term & ~trunc
        return NStepBatch(self.obs[rows, envs], self.action[rows, envs], returns.astype(np.float32),
                          discount.astype(np.float32), self.next_obs[last, envs])

    _ARRAYS = ("obs", "next_obs", "action", "reward", "terminated", "truncated")

    def state_dict(self) -> dict[str, Any]:
        """Arrays (only the filled rows) and counters; `rng` is JSON-safe. Inverse: load_state_dict."""
        rows = (np.arange(self.size) + (self.t - self.size)) % self.capacity  # oldest first
        return {"arrays": {k: getattr(self, k)[rows] for k in self._ARRAYS},
                "meta": {"capacity": self.capacity, "n_envs": self.n_envs, "n_step": self.n_step, "gamma": self.gamma,
                         "size": self.size, "rng": self.rng.bit_generator.state}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a buffer saved by state_dict (same envs and shapes, capacity at least its size), oldest row first."""
        meta, arrays = state["meta"], state["arrays"]
        n = int(meta["size"])
        if meta["n_envs"] != self.n_envs or n > self.capacity:
            raise ConfigError(f"replay state holds {n} rows x {meta['n_envs']} envs; this buffer takes {self.capacity} "
                              f"rows x {self.n_envs} envs (resume with the same --num-envs and at least as many "
                              "--steps)")
        for k in self._ARRAYS:
            src = np.asarray(arrays[k])
            dst = getattr(self, k)
            if src.shape[1:] != dst.shape[1:] or len(src) != n:
                raise ConfigError(f"replay array {k!r} has shape {src.shape}, expected ({n}, *{dst.shape[1:]})")
            dst[:n] = src
        self.size, self.t = n, n % self.capacity
        self.rng.bit_generator.state = meta["rng"]

    def mark_truncated(self) -> None:
        """End every env's newest step: a resumed run starts fresh episodes, and n-step windows must not
        run from the old episodes into them."""
        if self.size:
            self.truncated[(self.t - 1) % self.capacity] = True

    def sampler(self, batch: int) -> Iterator[NStepBatch]:
        """Endless batches."""
        while True:
            yield self.sample(batch)
