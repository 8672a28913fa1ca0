"""Training windows from an episode store: To observation steps and H action steps with edge padding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from data.stats import Stats, load_or_compute
from data.store import EpisodeStore
from robot.core.errors import ConfigError


@dataclass(frozen=True)
class WindowConfig:
    """What one training sample holds."""

    state_keys: tuple[str, ...] = ("state/ee_pose", "state/gripper")
    """Low-dim observation keys (concatenated by the policy, kept separate here)."""
    image_keys: tuple[str, ...] = ()
    """Camera keys (uint8 H x W x 3); returned as uint8 (To, 3, H, W)."""
    action_key: str = "action"
    """Stored action key."""
    n_obs_steps: int = 2
    """To: observation steps ending at the anchor step."""
    horizon: int = 16
    """H: action steps starting at the first observation step."""
    preload_images_gb: float = 4.0
    """Images are read into RAM once when they take at most this many GB (0: always read from the store)."""

    def __post_init__(self) -> None:
        if self.n_obs_steps < 1 or self.horizon < self.n_obs_steps:
            raise ConfigError(f"need 1 <= n_obs_steps <= horizon, got To={self.n_obs_steps}, H={self.horizon}")


def split_episodes(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, val) episode indices; at least one train episode, val empty when val_fraction is 0."""
    if n < 1:
        raise ConfigError("cannot split an empty store")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(round(n * val_fraction), n - 1)
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


class WindowDataset(Dataset[dict[str, torch.Tensor]]):
    """Every step of every selected episode anchors one window (diffusion_policy sampling).

    For anchor t of an episode of length L: observations at t-To+1..t and actions at t-To+1..t-To+H,
    indices clamped into [0, L-1] (edge padding). Low-dim arrays are read into memory once; images are
    read per window from the store (To consecutive frames, one read per camera).
    """

    def __init__(self, store: EpisodeStore, config: WindowConfig | None = None,
                 episodes: list[int] | None = None) -> None:
        self.store = store
        self.config = c = config or WindowConfig()
        needed = [*c.state_keys, *c.image_keys, c.action_key]
        missing = [k for k in needed if k not in store.keys]
        if missing:
            raise ConfigError(f"{store.path} has no keys {missing}; stored keys: {list(store.keys)}")
        bad = [k for k in c.image_keys if not store.schema[k].is_image]
        if bad:
            raise ConfigError(f"keys {bad} are not uint8 (H, W, 3) images")
        self.episodes = list(range(len(store))) if episodes is None else list(episodes)
        if not self.episodes:
            raise ConfigError("a dataset needs at least one episode")
        self._lowdim = {k: store.read(k, 0, store.n_steps) for k in (*c.state_keys, c.action_key)}
        image_bytes = sum(store.n_steps * int(np.prod(store.schema[k].shape)) for k in c.image_keys)
        self._images: dict[str, np.ndarray] = {}
        if c.image_keys and image_bytes <= c.preload_images_gb * 1e9:
            # Random windows through zarr cost milliseconds each; a RAM copy makes batches cheap.
            self._images = {k: store.read(k, 0, store.n_steps) for k in c.image_keys}
        anchors = []
        for e in self.episodes:
            sl = store.episode_slice(e)
            for t in range(sl.stop - sl.start):
                anchors.append((sl.start, sl.stop, t))
        self._anchors = np.asarray(anchors, dtype=np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return int(self._anchors.shape[0])

    def stats(self) -> Stats:
        """Normalization statistics of the state and action keys (over the whole store, cached beside it)."""
        c = self.config
        return load_or_compute(self.store, [*c.state_keys, c.action_key])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start, stop, t = (int(v) for v in self._anchors[i])
        c = self.config
        length = stop - start
        first = t - c.n_obs_steps + 1
        obs_idx = np.clip(np.arange(first, t + 1), 0, length - 1) + start
        act_idx = np.clip(np.arange(first, first + c.horizon), 0, length - 1) + start
        out: dict[str, Any] = {k: torch.from_numpy(self._lowdim[k][obs_idx]) for k in c.state_keys}
        out["action"] = torch.from_numpy(self._lowdim[c.action_key][act_idx])
        if c.image_keys:
            lo, hi = int(obs_idx[0]), int(obs_idx[-1]) + 1
            for k in c.image_keys:
                src = self._images[k][lo:hi] if k in self._images else self.store.read(k, lo, hi)
                frames = src[obs_idx - lo]  # (To, H, W, 3)
                out[k] = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
        return out
