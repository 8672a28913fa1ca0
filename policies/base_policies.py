"""Base policies: diffusion (DDPM train / DDIM sample), flow matching (Euler), MIP and regression BC."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - torch convention
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteScheduler

from policies.chunk_policy import TIME_SCALE, Batch, ChunkModel, ChunkPolicy
from policies.config import ChunkConfig, DiffusionConfig, FlowConfig, MipConfig, ObsConfig
from policies.normalize import Normalizer
from policies.registry import POLICIES


@POLICIES.register("diffusion")
class DiffusionPolicy(ChunkPolicy):
    """epsilon-prediction DDPM (squaredcos_cap_v2) trained, DDIM-sampled with trailing timestep spacing."""

    algo: DiffusionConfig

    def __init__(
        self,
        obs: ObsConfig,
        chunk: ChunkConfig,
        action_dim: int,
        algo: DiffusionConfig,
        normalizer: Normalizer,
        **kw: object,
    ) -> None:
        super().__init__(obs, chunk, action_dim, algo, normalizer, **kw)  # type: ignore[arg-type]
        common = {
            "num_train_timesteps": algo.train_steps,
            "beta_schedule": algo.beta_schedule,
            "prediction_type": "epsilon",
            "clip_sample": True,
        }
        self.train_scheduler = DDPMScheduler(**common)
        self.scheduler = DDIMScheduler(**common, timestep_spacing="trailing")
        self.inference_steps = algo.inference_steps

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """DDIM steps."""
        return self.inference_steps

    def loss(self, batch: Batch, model: ChunkModel | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE between predicted and true noise."""
        m = model or self.model
        x0 = self.target(batch)  # (B, H, Da)
        eps = torch.randn_like(x0)
        t = torch.randint(0, self.algo.train_steps, (x0.shape[0],), device=x0.device)
        xt = self.train_scheduler.add_noise(x0, eps, t)
        pred = m(xt, t.float(), m.condition(batch))
        loss = F.mse_loss(pred, eps)
        return loss, {"loss": float(loss.detach())}

    def ddim(
        self,
        cond: torch.Tensor,
        noise: torch.Tensor,
        model: ChunkModel | None = None,
        steps: int | None = None,
        trajectory: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """DDIM from `noise`; optionally records every intermediate sample (noise first, x0 last)."""
        m = model or self.model
        self.scheduler.set_timesteps(steps or self.inference_steps)
        x = noise
        if trajectory is not None:
            trajectory.append(x)
        for t in self.scheduler.timesteps:
            eps = m(x, t.float().expand(x.shape[0]), cond)
            x = self.scheduler.step(eps, t, x).prev_sample
            if trajectory is not None:
                trajectory.append(x)
        return x

    def sample_normalized(
        self, cond: torch.Tensor, noise: torch.Tensor, model: ChunkModel | None = None
    ) -> torch.Tensor:
        """DDIM-N chunk."""
        return self.ddim(cond, noise, model)


@POLICIES.register("flow")
class FlowPolicy(ChunkPolicy):
    """Rectified flow x_t = (1 - t) x0 + t eps with velocity eps - x0; Euler sampling from t = 1 to 0."""

    algo: FlowConfig

    def __init__(
        self,
        obs: ObsConfig,
        chunk: ChunkConfig,
        action_dim: int,
        algo: FlowConfig,
        normalizer: Normalizer,
        **kw: object,
    ) -> None:
        super().__init__(obs, chunk, action_dim, algo, normalizer, **kw)  # type: ignore[arg-type]
        self.scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=int(TIME_SCALE), shift=1.0)
        self.inference_steps = algo.inference_steps

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """Euler steps."""
        return self.inference_steps

    def loss(self, batch: Batch, model: ChunkModel | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE between predicted and true velocity."""
        m = model or self.model
        x0 = self.target(batch)  # (B, H, Da)
        eps = torch.randn_like(x0)
        t = torch.rand(x0.shape[0], device=x0.device)  # (B,)
        xt = (1.0 - t)[:, None, None] * x0 + t[:, None, None] * eps
        pred = m(xt, t * TIME_SCALE, m.condition(batch))
        loss = F.mse_loss(pred, eps - x0)
        return loss, {"loss": float(loss.detach())}

    def sample_normalized(
        self, cond: torch.Tensor, noise: torch.Tensor, model: ChunkModel | None = None
    ) -> torch.Tensor:
        """Euler integration with the diffusers scheduler."""
        m = model or self.model
        self.scheduler.set_timesteps(self.inference_steps)
        x = noise
        for t in self.scheduler.timesteps:
            v = m(x, t.float().expand(x.shape[0]), cond)
            x = self.scheduler.step(v, t, x).prev_sample
        return x


def mip_loss(
    model: ChunkModel, cond: torch.Tensor, target: torch.Tensor, two_step: bool, t_star: float, train_noise: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Two regression passes: f(0, t=0) -> a, then f(t* (a + noise), t*) -> a.  target: (B, H, Da)."""
    b = target.shape[0]
    zeros_t = torch.zeros(b, device=target.device)
    first = model(torch.zeros_like(target), zeros_t, cond)
    loss1 = F.mse_loss(first, target)
    if not two_step:
        return loss1, {"loss": float(loss1.detach())}
    x = t_star * (target + train_noise * torch.randn_like(target))
    second = model(x, torch.full((b,), t_star * TIME_SCALE, device=target.device), cond)
    loss2 = F.mse_loss(second, target)
    loss = loss1 + loss2
    return loss, {
        "loss": float(loss.detach()),
        "loss_first": float(loss1.detach()),
        "loss_second": float(loss2.detach()),
    }


def mip_sample(model: ChunkModel, cond: torch.Tensor, shape: torch.Size, two_step: bool, t_star: float) -> torch.Tensor:
    """Deterministic: one or two network calls."""
    b, dev = shape[0], cond.device
    x = model(torch.zeros(shape, device=dev), torch.zeros(b, device=dev), cond)
    if two_step:
        x = model(t_star * x, torch.full((b,), t_star * TIME_SCALE, device=dev), cond)
    return x


@POLICIES.register("mip")
class MipPolicy(ChunkPolicy):
    """Minimal iterative policy (two passes) or plain regression BC (one pass); ignores the noise."""

    algo: MipConfig

    def __init__(
        self, obs: ObsConfig, chunk: ChunkConfig, action_dim: int, algo: MipConfig, normalizer: Normalizer, **kw: object
    ) -> None:
        super().__init__(obs, chunk, action_dim, algo, normalizer, **kw)  # type: ignore[arg-type]

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """1 or 2."""
        return 2 if self.algo.two_step else 1

    def loss(self, batch: Batch, model: ChunkModel | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """See mip_loss."""
        m = model or self.model
        a = self.algo
        return mip_loss(m, m.condition(batch), self.target(batch), a.two_step, a.t_star, a.train_noise)

    def sample_normalized(
        self, cond: torch.Tensor, noise: torch.Tensor, model: ChunkModel | None = None
    ) -> torch.Tensor:
        """Deterministic chunk (noise only gives the shape)."""
        return mip_sample(model or self.model, cond, noise.shape, self.algo.two_step, self.algo.t_star)
