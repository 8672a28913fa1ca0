"""The shared machinery of chunked policies: model (normalizer + encoder + net), history, action queue."""

from __future__ import annotations

import abc
import copy
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.config import ALGO_NAMES, Algo, ChunkConfig, MlpNet, Net, ObsConfig, UnetNet
from policies.normalize import Normalizer
from robot.core.errors import CheckpointError, ConfigError
from robot.core.interfaces import Policy
from robot.core.types import Observation

Batch = dict[str, torch.Tensor]
"""state keys (B, To, D) raw, image keys (B, To, 3, H, W) uint8, 'action' (B, H, Da) raw."""

TIME_SCALE = 1000.0
"""Continuous times in [0, 1] are fed to the nets scaled like diffusion timesteps (embedding range)."""


def build_net(net: Net, action_dim: int, horizon: int, cond_dim: int, two_times: bool) -> nn.Module:
    """A denoiser with forward(sample (B,H,Da), t (B,), cond (B,C), t2=None) -> (B,H,Da)."""
    from policies.nets import ConditionalUnet1D, MLPDenoiser, UnetConfig

    if isinstance(net, UnetNet):
        return ConditionalUnet1D(
            input_dim=action_dim,
            global_cond_dim=cond_dim,
            horizon=horizon,
            two_times=two_times,
            config=UnetConfig(
                down_dims=net.down_dims,
                kernel_size=net.kernel_size,
                n_groups=net.n_groups,
                diffusion_step_embed_dim=net.step_embed_dim,
            ),
        )
    assert isinstance(net, MlpNet)
    return MLPDenoiser(
        action_dim=action_dim,
        horizon=horizon,
        cond_dim=cond_dim,
        hidden=net.hidden,
        time_embed_dim=net.step_embed_dim,
        two_times=two_times,
    )


class ChunkModel(nn.Module):
    """normalizer + per-camera encoders/state fusion + denoiser; `condition` gives (B, To * F)."""

    def __init__(
        self,
        obs: ObsConfig,
        chunk: ChunkConfig,
        action_dim: int,
        net: Net,
        normalizer: Normalizer,
        two_times: bool = False,
    ) -> None:
        super().__init__()
        from policies.nets import ObservationEncoder

        self.obs_cfg, self.chunk_cfg, self.action_dim = obs, chunk, action_dim
        self.normalizer = normalizer
        h, w = obs.image_shape
        self.encoder = ObservationEncoder(
            state_dims=dict(zip(obs.state_keys, obs.state_dims, strict=True)),
            image_shapes={k: (3, h, w) for k in obs.image_keys},
            image_encoder=obs.encoder,
            feature_dim=obs.feature_dim,
            crop=obs.crop,
        )
        self.net = build_net(net, action_dim, chunk.horizon, self.encoder.out_dim * chunk.n_obs_steps, two_times)

    def condition(self, obs: Batch) -> torch.Tensor:
        """Normalized, encoded, flattened observation history: (B, To * F)."""
        cfg = self.obs_cfg
        x: dict[str, torch.Tensor] = {k: self.normalizer.normalize(k, obs[k]) for k in cfg.state_keys}
        for k in cfg.image_keys:
            x[k] = obs[k]
        feats = self.encoder(x)  # (B, To, F)
        return feats.flatten(1)

    def forward(
        self, sample: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, t2: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Denoiser call: (B, H, Da) -> (B, H, Da)."""
        return self.net(sample, t, cond, t2)


class ChunkPolicy(Policy, abc.ABC):
    """Base of every chunked policy (base policies and one-step heads).

    `act(obs)` keeps the last To observations and a queue of Ta actions, re-planning when the queue is
    empty; `act_chunk(obs)` always plans. Actions leave in the env's normalized action space.
    """

    two_times: bool = False

    def __init__(
        self,
        obs: ObsConfig,
        chunk: ChunkConfig,
        action_dim: int,
        algo: Algo,
        normalizer: Normalizer,
        *,
        net: Net | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.obs_cfg, self.chunk_cfg, self.action_dim, self.algo = obs, chunk, action_dim, algo
        net = net or getattr(algo, "net", None)  # base policies carry their net in their config
        if net is None:
            raise ConfigError(f"{type(self).__name__}: no network given (a head needs net=..., see make_head)")
        self.model = ChunkModel(obs, chunk, action_dim, net, normalizer, two_times=self.two_times)
        self.net_cfg = net
        self.meta: dict[str, Any] = dict(meta or {})
        """Free-form: env_id, embodiment spec, teacher path, training step."""
        self._history: deque[Observation] = deque(maxlen=chunk.n_obs_steps)
        self._queue: deque[np.ndarray] = deque()
        self.generator: torch.Generator | None = None

    # -- algorithm ------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def nfe(self) -> int:  # type: ignore[override]
        """Network calls per chunk."""

    @abc.abstractmethod
    def loss(self, batch: Batch, model: ChunkModel | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch (model defaults to self.model)."""

    @abc.abstractmethod
    def sample_normalized(
        self, cond: torch.Tensor, noise: torch.Tensor, model: ChunkModel | None = None
    ) -> torch.Tensor:
        """(B, H, Da) chunk in normalized action space from the encoded condition and initial noise."""

    # -- shared API ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Registered algorithm name."""
        return ALGO_NAMES[type(self.algo)]

    def target(self, batch: Batch) -> torch.Tensor:
        """Normalized ground-truth chunk (B, H, Da)."""
        return self.model.normalizer.normalize("action", batch["action"])

    def sample(self, obs: Batch, noise: torch.Tensor) -> torch.Tensor:
        """Unnormalized (B, H, Da) chunk for a batch of observation histories and given noise."""
        with torch.inference_mode():
            if self.model.training:  # eval() walks every submodule: a fifth of a small net's act() time
                self.model.eval()
            cond = self.model.condition(obs)
            out = self.sample_normalized(cond, noise)
            return self.model.normalizer.unnormalize("action", out)

    def reset(self) -> None:
        """Forget the observation history and queued actions."""
        self._history.clear()
        self._queue.clear()

    def _push(self, obs: Observation) -> None:
        if not self._history:
            for _ in range(self.chunk_cfg.n_obs_steps - 1):
                self._history.append(obs)  # edge padding, as in training
        self._history.append(obs)

    def _batch(self, history: Sequence[Observation] | None = None) -> Batch:
        history = self._history if history is None else history
        out: Batch = {}
        for k in (*self.obs_cfg.state_keys, *self.obs_cfg.image_keys):
            try:
                arr = np.stack([o[k] for o in history])
            except KeyError:
                raise CheckpointError(
                    f"observation has no key {k!r}; this policy was trained on {list(self.obs_cfg.state_keys)} + "
                    f"{list(self.obs_cfg.image_keys)}"
                ) from None
            if k in self.obs_cfg.image_keys:
                arr = arr.transpose(0, 3, 1, 2)  # (To, H, W, 3) -> (To, 3, H, W)
            out[k] = torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
        return out

    def _plan(self, history: Sequence[Observation] | None = None, full: bool = False) -> np.ndarray:
        c = self.chunk_cfg
        noise = torch.randn((1, c.horizon, self.action_dim), generator=self.generator)
        chunk = self.sample(self._batch(history), noise)[0].numpy()  # (H, Da)
        start = c.n_obs_steps - 1
        stop = c.horizon if full else start + c.n_action_steps
        return np.clip(chunk[start:stop], -1.0, 1.0).astype(np.float32)  # (Ta, Da), or (H - To + 1, Da) if full

    def plan_chunk(self, history: Sequence[Observation], full: bool = False) -> np.ndarray:
        """Plan from an explicit observation history (oldest first; edge-padded to To like training), leaving the
        policy's own history and queue alone: (Ta, Da) from the newest observation's step on, or with `full` every
        action up to the end of the horizon (what a latency-aware executor draws on when it skips stale ones)."""
        if not history:
            raise ConfigError("plan_chunk needs at least one observation")
        to = self.chunk_cfg.n_obs_steps
        padded = [history[0]] * max(0, to - len(history)) + list(history[-to:])
        return self._plan(padded, full=full)

    def act_chunk(self, obs: Observation) -> np.ndarray:
        """Plan now: (Ta, Da) actions starting at this step."""
        self._push(obs)
        return self._plan()

    def act(self, obs: Observation) -> np.ndarray:
        """Next action, re-planning every Ta steps."""
        self._push(obs)
        if not self._queue:
            self._queue.extend(self._plan())
        return self._queue.popleft()

    def check_env(self, env: Any) -> None:
        """Raise CheckpointError when `env` does not give the observations/actions this policy was trained on."""
        from policies.io import check_compatible

        check_compatible(self, env)

    def seed(self, seed: int) -> None:
        """Seed the sampling noise."""
        self.generator = torch.Generator().manual_seed(seed)

    def copy_model(self) -> ChunkModel:
        """A deep copy of the model (for EMA)."""
        return copy.deepcopy(self.model)
