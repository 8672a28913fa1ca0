"""ResFiT learner: residual actor + critic ensemble on the combined action, TD3 (default) or SAC updates."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from policies.device import resolve_device
from policies.residual.losses import (
    alpha_loss,
    critic_loss,
    demo_bc_loss,
    deterministic_actor_loss,
    pair_min,
    residual_penalty,
    sac_actor_loss,
    soft_update,
    td_target,
    truncated_gaussian,
)
from policies.residual.nets import CriticEnsemble, GaussianResidualActor, ResidualActor
from policies.residual.replay import NStepBatch
from robot.core.errors import ConfigError


@dataclass(frozen=True)
class ResidualConfig:
    """Residual learner hyper-parameters (CPU defaults; see `gpu_preset` for the ResFiT-size setup)."""

    algo: Literal["td3", "sac"] = "td3"
    """Deterministic residual (TD3, ResFiT default) or squashed-Gaussian residual (SAC)."""
    scale: float = 0.1
    """Residual scale in the normalized action range: executed = clip(base + scale * residual)."""
    action_scale: tuple[float, ...] = ()
    """Per-dimension scales overriding `scale` (empty: `scale` on every dimension), each in (0, 2]. A gripper
    commanded by position is near-binary: 2 (the whole normalized range) lets the residual both open a closed one
    and keep an opening one shut; 1 only moves it to mid-range, which drops a held cube."""
    hidden: tuple[int, ...] = (128, 128)
    """Actor and critic widths. The CPU default is compute-bound: at batch 256 one update of a 256-wide, 5-head
    ensemble costs ~25 ms on one core (50k updates would take 20 min), a 128-wide one ~7 ms."""
    n_heads: int = 5
    """Critic ensemble size."""
    gamma: float = 0.99
    """Discount."""
    n_step: int = 3
    """n-step returns."""
    utd: int = 1
    """Critic updates per env step (update-to-data ratio; the GPU preset uses 4)."""
    actor_every: int = 2
    """One actor update per this many critic updates."""
    tau: float = 0.005
    """Soft target update rate."""
    lr: float = 3e-4
    """Adam learning rate (actor and critic)."""
    batch_size: int = 256
    """Batch size (half demo, half online once both exist)."""
    explore_std: float = 0.2
    """Exploration noise std in residual units (TD3), truncated at 2 std."""
    target_noise: float = 0.2
    """Target policy smoothing noise std (TD3)."""
    target_noise_clip: float = 0.5
    """Target policy smoothing clip."""
    noise_scale: tuple[float, ...] = ()
    """Per-dimension factors on the TD3 exploration and target-smoothing noise (std and clip; empty: 1 on every
    dimension). In executed units the noise is std x scale, so a gripper at scale 2 gets 0.4 of exploration and
    target noise per step, which straddles a position gripper's hold/drop step: the critic then values a hover as
    the noise's random release, which the deterministic actor never makes."""
    residual_l2: float = 0.0
    """Actor penalty weight on |residual|^2. With delta (velocity-like) actions a small constant residual
    integrates into drift; a linear-ish critic otherwise drives the residual to its +-1 corners."""
    bc_weight: float = 0.0
    """Weight of a behaviour-cloning term in the actor loss on the batch's demo rows: the squared distance of the
    residual to the one that reproduces the demo's action, clip((a_demo - base) / scale, -1, 1). Only rows where
    the critic values the demo's action above the actor's count (the Q-filter of Nair et al. 2018, so a demo never
    drags the actor below what the critic has learned). 0: off (ResFiT's pure RL actor)."""
    bc_anneal_updates: int = 0
    """Critic updates over which bc_weight falls linearly to 0 (0: constant). The demo term speeds up the start
    and then holds the actor to the demos; annealing leaves the end to the critic."""
    q_bounds: tuple[float, float] | None = None
    """Clamp every TD target into [lo, hi], the range a true Q can take (a sparse 0/1 reward that ends the episode
    on success: 0 and 1). None: unbounded. An unbounded critic extrapolates below 0 in states no data continues from
    (measured on FrankaPickPlace after an off-target release: -0.1 to -0.4), and bootstraps that into its
    neighbours."""
    grad_clip: float = 10.0
    """Gradient-norm clip."""
    init_alpha: float = 0.05
    """SAC initial temperature."""

    def __post_init__(self) -> None:
        if not all(0 < x <= 2 for x in (self.scale, *self.action_scale)):
            raise ConfigError(f"residual scales must be in (0, 2] (2 spans the whole normalized range), got "
                              f"{self.scale} and {self.action_scale}")
        if self.n_heads < 2 or self.utd < 1 or self.actor_every < 1 or self.n_step < 1:
            raise ConfigError("need n_heads >= 2, utd >= 1, actor_every >= 1, n_step >= 1")
        if not self.lr > 0:
            raise ConfigError(f"the learning rate must be > 0, got {self.lr}")
        if not all(0 <= x <= 1 for x in self.noise_scale):
            raise ConfigError(f"noise_scale factors must be in [0, 1], got {self.noise_scale}")
        if not self.bc_weight >= 0 or self.bc_anneal_updates < 0:
            raise ConfigError(f"bc_weight and bc_anneal_updates must be >= 0 (0: off / constant), got "
                              f"{self.bc_weight} and {self.bc_anneal_updates}")
        if self.q_bounds is not None and not (len(self.q_bounds) == 2 and self.q_bounds[0] < self.q_bounds[1]):
            raise ConfigError(f"q_bounds must be (lo, hi) with lo < hi, got {self.q_bounds}")


def gpu_preset(algo: Literal["td3", "sac"] = "td3") -> ResidualConfig:
    """ResFiT-size networks and update ratio for a GPU learner."""
    return ResidualConfig(algo=algo, hidden=(1024, 1024), n_heads=10, utd=4)


class ResidualLearner:
    """Owns the residual actor, the critic ensemble and their targets and optimizers.

    Observation features are (B, D) with the base action in the last Da columns (ResidualAction puts it in
    the observation); the critic scores the combined (executed) action stored in the replay. Networks, targets and
    the noise generator live on `device`; replay batches come in as numpy and go back out as numpy.
    """

    def __init__(self, obs_dim: int, action_dim: int, config: ResidualConfig | None = None, seed: int = 0,
                 device: str | torch.device = "cpu") -> None:
        self.cfg = c = config or ResidualConfig()
        self.device = dev = resolve_device(device)
        self.obs_dim, self.action_dim = obs_dim, action_dim
        if c.action_scale and len(c.action_scale) != action_dim:
            raise ConfigError(f"action_scale has {len(c.action_scale)} entries for a {action_dim}-dim action")
        self.scales = torch.tensor(c.action_scale or (c.scale,) * action_dim, dtype=torch.float32,
                                   device=dev)  # (Da,)
        if c.noise_scale and len(c.noise_scale) != action_dim:
            raise ConfigError(f"noise_scale has {len(c.noise_scale)} entries for a {action_dim}-dim action")
        self.noise_scales = torch.tensor(c.noise_scale or (1.0,) * action_dim, dtype=torch.float32, device=dev)
        torch.manual_seed(seed)
        self.gen = torch.Generator(device=dev).manual_seed(seed)
        self.actor: torch.nn.Module = (ResidualActor(obs_dim, action_dim, c.hidden) if c.algo == "td3"
                                       else GaussianResidualActor(obs_dim, action_dim, c.hidden))
        self.actor.to(dev)
        self.critic = CriticEnsemble(obs_dim, action_dim, c.n_heads, c.hidden).to(dev)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        fused = dev.type == "cuda"  # one kernel per step instead of several per parameter
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.lr, fused=fused)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.lr, fused=fused)
        self.log_alpha = torch.tensor(float(np.log(c.init_alpha)), device=dev, requires_grad=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=c.lr)
        self.target_entropy = -float(action_dim)
        self.updates = 0

    # -- acting ---------------------------------------------------------------------------------
    def _residual(self, actor: torch.nn.Module, obs: torch.Tensor, explore: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(residual (B, Da), log_prob (B,) or zeros)."""
        if self.cfg.algo == "sac":
            a, logp = actor(obs, deterministic=not explore)
            return a, logp
        a = actor(obs)
        if explore:
            std = self.cfg.explore_std * self.noise_scales
            a = truncated_gaussian(a, std, 2 * std, self.gen)
        return a, torch.zeros(obs.shape[0], device=obs.device)

    def combine(self, obs: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """clip(base + scales * residual) with the base action read from the observation. (B, Da)."""
        base = obs[:, -self.action_dim:]
        return (base + self.scales * residual).clamp(-1.0, 1.0)

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Residual actions for a batch of observation features (E, D) -> (E, Da) in [-1, 1]."""
        r, _ = self._residual(self.actor, self._t(obs), explore)
        return r.cpu().numpy()

    @torch.no_grad()
    def act_choosing(self, obs: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
        """Deterministic residuals (E, D) -> (E, Da) whose `dims` are set to whichever executed command the critic
        ensemble values most (mean over heads): the actor's, all -1 or all +1 on those dims.

        A near-binary command (a position gripper drops a cube below ~0.3 of its range) puts a step in Q that the
        actor's gradient does not cross: stuck at "half open" it hovers. The critic already scores both sides.
        """
        o = self._t(obs)  # (E, D)
        r, _ = self._residual(self.actor, o, explore=False)  # (E, Da)
        idx = list(dims)
        base, sc = o[:, -self.action_dim:][:, idx], self.scales[idx]  # (E, G), (G,)
        cands = r.unsqueeze(0).repeat(3, 1, 1)  # (3, E, Da): actor, open, closed
        cands[1][:, idx] = ((-1.0 - base) / sc).clamp(-1.0, 1.0)
        cands[2][:, idx] = ((1.0 - base) / sc).clamp(-1.0, 1.0)
        e = o.shape[0]
        flat = cands.reshape(3 * e, -1)
        o3 = o.repeat(3, 1)  # (3E, D), candidate-major like flat
        q = self.critic(o3, self.combine(o3, flat)).mean(0).reshape(3, e)  # (3, E)
        best = q.argmax(0)  # (E,)
        return cands[best, torch.arange(e, device=o.device)].cpu().numpy()

    def smoothed_target_residual(self, nxt: torch.Tensor) -> torch.Tensor:
        """TD3 target policy smoothing: the target actor's residual (B, Da) plus clipped noise, scaled per dimension
        by noise_scale."""
        return truncated_gaussian(self.actor_target(nxt), self.cfg.target_noise * self.noise_scales,
                                  self.cfg.target_noise_clip * self.noise_scales, self.gen)

    def _t(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    # -- learning -------------------------------------------------------------------------------
    def _critic_step(self, b: NStepBatch) -> dict[str, torch.Tensor]:
        obs, act, nxt = self._t(b.obs), self._t(b.action), self._t(b.next_obs)
        with torch.no_grad():
            if self.cfg.algo == "sac":
                r_next, logp = self.actor(nxt)
                alpha = self.log_alpha.exp()
            else:
                r_next = self.smoothed_target_residual(nxt)
                logp, alpha = torch.zeros(nxt.shape[0], device=nxt.device), torch.zeros((), device=nxt.device)
            q_next = pair_min(self.critic_target(nxt, self.combine(nxt, r_next)), self.gen) - alpha * logp  # (B,)
            target = td_target(self._t(b.returns), self._t(b.discount), q_next, self.cfg.q_bounds)
        q = self.critic(obs, act)  # (K, B)
        loss = critic_loss(q, target)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), self.cfg.grad_clip)
        self.critic_opt.step()
        soft_update(self.critic_target, self.critic, self.cfg.tau)
        return {"critic_loss": loss.detach(), "q_mean": q.detach().mean()}

    def _actor_step(self, b: NStepBatch) -> dict[str, torch.Tensor]:
        obs = self._t(b.obs)
        r, logp = self._residual(self.actor, obs, explore=self.cfg.algo == "sac")
        q = self.critic(obs, self.combine(obs, r))  # (K, B)
        out: dict[str, torch.Tensor] = {}
        if self.cfg.algo == "sac":
            alpha = self.log_alpha.exp()
            loss = sac_actor_loss(q, logp, alpha)
            a_loss = alpha_loss(self.log_alpha, logp, self.target_entropy)
            self.alpha_opt.zero_grad(set_to_none=True)
            a_loss.backward()
            self.alpha_opt.step()
            out["alpha"] = alpha.detach()
        else:
            loss = deterministic_actor_loss(q)
        if self.cfg.residual_l2 > 0:
            loss = loss + residual_penalty(r, self.cfg.residual_l2)
        bc_weight = self.bc_weight_now()
        if bc_weight > 0 and b.demo is not None and b.demo.any():
            bc, kept = self._demo_bc(b, obs, r, q, bc_weight)
            loss = loss + bc
            out |= {"bc_loss": bc.detach(), "bc_kept": kept}
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.grad_clip)
        self.actor_opt.step()
        soft_update(self.actor_target, self.actor, self.cfg.tau)
        out |= {"actor_loss": loss.detach(), "residual_abs": r.detach().abs().mean()}
        return out

    def _demo_bc(self, b: NStepBatch, obs: torch.Tensor, r: torch.Tensor, q_actor: torch.Tensor,
                 weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted BC loss, share of demo rows the Q-filter kept) for the batch's demo rows."""
        assert b.demo is not None
        act = self._t(b.action)  # (B, Da) the demo's executed action
        demo_r = ((act - obs[:, -self.action_dim:]) / self.scales).clamp(-1.0, 1.0)  # (B, Da)
        is_demo = torch.as_tensor(b.demo, device=obs.device)  # (B,)
        with torch.no_grad():
            better = self.critic(obs, act).mean(0) > q_actor.detach().mean(0)  # (B,)
            keep = (is_demo & better).float()
            n_demo = is_demo.sum().float()
        return demo_bc_loss(r, demo_r, keep, n_demo, weight), keep.sum() / n_demo.clamp(min=1)

    def bc_weight_now(self) -> float:
        """The demo term's weight at the current update count (bc_weight, annealed if configured)."""
        c = self.cfg
        if c.bc_anneal_updates <= 0:
            return c.bc_weight
        return c.bc_weight * max(0.0, 1.0 - self.updates / c.bc_anneal_updates)

    def update(self, batches: Iterator[NStepBatch], actor: bool = True) -> dict[str, float]:
        """cfg.utd critic updates from `batches`, with an actor update every cfg.actor_every (unless actor=False,
        the critic-only warm-up). Returns the last metrics."""
        metrics: dict[str, torch.Tensor] = {}
        for _ in range(self.cfg.utd):
            b = next(batches)
            metrics |= self._critic_step(b)
            self.updates += 1
            if actor and self.updates % self.cfg.actor_every == 0:
                metrics |= self._actor_step(b)
        # One device-to-host read per call: on a GPU each float() would wait for the queue to drain.
        values = torch.stack(list(metrics.values())).tolist()
        return dict(zip(metrics, values, strict=True))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """All weights (not optimizer state) as flat CPU tensors, for safetensors."""
        out: dict[str, torch.Tensor] = {}
        for name, mod in (("actor", self.actor), ("critic", self.critic), ("actor_target", self.actor_target),
                          ("critic_target", self.critic_target)):
            out |= {f"{name}/{k}": v.cpu() for k, v in mod.state_dict().items()}
        out["log_alpha"] = self.log_alpha.detach().reshape(1).cpu()
        return out

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of state_dict."""
        for name, mod in (("actor", self.actor), ("critic", self.critic), ("actor_target", self.actor_target),
                          ("critic_target", self.critic_target)):
            mod.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}/")})
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"][0])


    def training_state(self) -> dict[str, Any]:
        """Optimizer states, the sampling generator (and its device) and the update count (for torch.save;
        weights_only-loadable)."""
        return {"actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(), "gen": self.gen.get_state(),
                "gen_device": self.device.type, "updates": self.updates}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Inverse of training_state. Optimizer states follow the parameters' device; a generator saved on another
        device type cannot be restored (CPU and CUDA states differ), so it is reseeded from the update count."""
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.updates = int(state["updates"])
        if state.get("gen_device", "cpu") == self.device.type:
            self.gen.set_state(state["gen"])
        else:
            self.gen.manual_seed(self.updates)


def concat(*batches: NStepBatch) -> NStepBatch:
    """One batch holding every row of `batches`, in order (demo flags kept; rows without one are not demo rows)."""
    flags = None
    if any(b.demo is not None for b in batches):
        flags = np.concatenate([np.zeros(len(b.returns), bool) if b.demo is None else b.demo for b in batches])
    obs, action, returns, discount, next_obs = (np.concatenate([getattr(b, f) for b in batches]) for f in
                                                ("obs", "action", "returns", "discount", "next_obs"))
    return NStepBatch(obs, action, returns, discount, next_obs, demo=flags)


def mix(online: Iterator[NStepBatch], demo: Iterator[NStepBatch] | None) -> Iterator[NStepBatch]:
    """Concatenate an online and a demo batch into one (their sizes set the mix: equal halves is RLPD's symmetric
    sampling), the demo rows flagged; online only without demos."""
    while True:
        a = next(online)
        if demo is None:
            yield a
        else:
            d = next(demo)
            d.demo = np.ones(len(d.returns), bool)
            yield concat(a, d)
