"""Demo transitions for the residual learner: episodes from a store, relabelled with the base policy's actions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.store import EpisodeStore
from policies.residual.policy import Features
from policies.residual.replay import ReplayBuffer
from robot.core.errors import ConfigError
from robot.core.interfaces import Policy


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
        base.reset()
        seed_fn = getattr(base, "seed", None)
        if seed_fn is not None:
            seed_fn(seed + j)
        ba = np.empty((length, ep["action"].shape[1]), np.float32)
        for t in range(length):
            ba[t] = np.clip(base.act({k: ep[k][t] for k in keys}), -1.0, 1.0)
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


def demo_replay(demos: DemoSet, features: Features, *, n_step: int, gamma: float, seed: int) -> ReplayBuffer:
    """A one-stream replay of the demo transitions with the sparse reward of the online env: 1 on the step
    that reached success (episode end, terminated), 0 elsewhere; unsuccessful episodes end truncated."""
    feats = features.batch(demos.states, demos.base_actions, demos.steps)  # (N, D)
    n = len(feats)
    buf = ReplayBuffer(n + 1, 1, features.dim, features.action_dim, n_step=n_step, gamma=gamma, seed=seed)
    start = 0
    for end, ok in zip(demos.ends, demos.success, strict=True):
        for t in range(start, end):
            last = t == end - 1
            # A successful end is terminal (never bootstrapped); an unsuccessful one bootstraps from its own
            # last observation, the closest recorded one to the unrecorded next state.
            nxt = feats[t] if last else feats[t + 1]
            buf.add(feats[t][None], demos.actions[t][None], np.array([float(last and ok)]), nxt[None],
                    np.array([last and ok]), np.array([last and not ok]))
        start = end
    return buf
