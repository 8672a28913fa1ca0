"""Demo transitions for the residual learner: episodes from a store, relabelled with the base policy's actions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from data.store import EpisodeStore
from policies.residual.policy import Features
from policies.residual.replay import ReplayBuffer
from robot.core.errors import ConfigError
from robot.core.interfaces import Policy
from robot.core.types import Observation


@dataclass
class DemoSet:
    """Per-step arrays of the chosen demo episodes, concatenated (N steps)."""

    states: dict[str, np.ndarray]
    """state key -> (N, d)."""
    actions: np.ndarray
    """(N, Da) recorded actions, clipped to [-1, 1]."""
    base_actions: np.ndarray
    """(N, Da) what the (reset) base policy outputs on each demo observation."""
    steps: np.ndarray
    """(N,) step index within its episode (the base's chunk phase is steps % Ta)."""
    ends: np.ndarray
    """(E,) exclusive end index of each episode."""
    success: np.ndarray
    """(E,) episode success flags."""


def load_demos(store: EpisodeStore, base: Policy, state_keys: tuple[str, ...], *, only_success: bool = True,
               base_keys: tuple[str, ...] = (), seed: int = 0, progress: bool = False) -> DemoSet:
    """Read demo episodes and re-run the base over each one from a reset, as it would have acted there.

    `base_keys` are extra observation keys the base reads (its own state keys); they are read but not kept.
    """
    from tqdm import tqdm

    eps = [i for i in range(len(store)) if store.episode_meta(i)["success"] or not only_success]
    if not eps:
        raise ConfigError(f"{store.path} has no {'successful ' if only_success else ''}episodes to use as demos")
    keys = tuple(dict.fromkeys((*state_keys, *base_keys)))
    missing = [k for k in (*keys, "action") if k not in store.keys]
    if missing:
        raise ConfigError(f"{store.path} has no keys {missing}; stored keys: {list(store.keys)}")
    states: dict[str, list[np.ndarray]] = {k: [] for k in state_keys}
    actions, base_actions, steps, ends, success = [], [], [], [], []
    n = 0
    for j, i in enumerate(tqdm(eps, desc="relabel demos with the base", unit="ep", disable=not progress,
                               leave=False)):
        ep = store.episode(i, (*keys, "action"))
        length = len(ep["action"])
        ba = base_actions_along(base, [{k: ep[k][t] for k in keys} for t in range(length)], seed=seed + j)
        for k in state_keys:
            states[k].append(np.asarray(ep[k], np.float32).reshape(length, -1))
        actions.append(np.clip(ep["action"], -1.0, 1.0).astype(np.float32))
        base_actions.append(ba)
        steps.append(np.arange(length))
        n += length
        ends.append(n)
        success.append(bool(store.episode_meta(i)["success"]))
    return DemoSet({k: np.concatenate(v) for k, v in states.items()}, np.concatenate(actions),
                   np.concatenate(base_actions), np.concatenate(steps), np.asarray(ends), np.asarray(success))


def base_actions_along(base: Policy, observations: Sequence[Observation], *, seed: int | None = None) -> np.ndarray:
    """(T, Da) actions of the base, reset (and seeded) first, along an episode's observations, clipped to [-1, 1].

    A chunked policy that re-plans every step (Ta = 1) depends only on its last To observations, so every step is
    planned in one batched call; any other policy is stepped through the episode.
    """
    from policies.chunk_policy import ChunkPolicy

    base.reset()
    seed_fn = getattr(base, "seed", None)
    if seed_fn is not None and seed is not None:
        seed_fn(seed)
    if isinstance(base, ChunkPolicy) and base.chunk_cfg.n_action_steps == 1 and observations:
        to, n = base.chunk_cfg.n_obs_steps, len(observations)
        batch = {}
        for k in (*base.obs_cfg.state_keys, *base.obs_cfg.image_keys):
            try:
                x = np.stack([np.asarray(o[k]) for o in observations])  # (T, ...)
            except KeyError:
                raise ConfigError(f"observation has no key {k!r}; the base reads {list(base.obs_cfg.state_keys)} + "
                                  f"{list(base.obs_cfg.image_keys)}") from None
            if k in base.obs_cfg.image_keys:
                x = x.transpose(0, 3, 1, 2)
            # history of step t: steps t-To+1 .. t, edge-padded with step 0 like act()
            idx = np.clip(np.arange(n)[:, None] + np.arange(1 - to, 1)[None, :], 0, None)  # (T, To)
            batch[k] = torch.from_numpy(np.ascontiguousarray(x[idx]))
        c = base.chunk_cfg
        noise = torch.randn((n, c.horizon, base.action_dim), generator=base.generator)
        chunks = base.sample(batch, noise).numpy()  # (T, H, Da)
        return np.clip(chunks[:, to - 1], -1.0, 1.0).astype(np.float32)
    rows = [np.clip(np.asarray(base.act(o), np.float64), -1.0, 1.0) for o in observations]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def demo_replay(demos: DemoSet, features: Features, *, n_step: int, gamma: float, seed: int) -> ReplayBuffer:
    """A one-stream replay of the demo transitions with the sparse reward of the online env: 1 on the step
    that reached success (episode end, terminated), 0 elsewhere; unsuccessful episodes end truncated."""
    feats = features.batch(demos.states, demos.base_actions, demos.steps)  # (N, D)
    n = len(feats)
    buf = ReplayBuffer(n + 1, 1, features.dim, features.action_dim, n_step=n_step, gamma=gamma, seed=seed)
    start = 0
    for end, ok in zip(demos.ends, demos.success, strict=True):
        # The step after an episode's last one was not recorded: its own last observation stands in (a success
        # is terminal and never bootstrapped; an unsuccessful end bootstraps from the closest recorded state).
        ep = feats[start:end]
        buf.add_episode(np.concatenate([ep, ep[-1:]]), demos.actions[start:end], bool(ok))
        start = end
    return buf
