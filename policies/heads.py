"""One-step heads distilled from a teacher: consistency (DDIM teacher), MeanFlow (jvp), MIP two-step."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - torch convention

from policies.base_policies import DiffusionPolicy, mip_loss, mip_sample
from policies.chunk_policy import Batch, ChunkModel, ChunkPolicy
from policies.config import ConsistencyConfig, MeanFlowConfig, MipHeadConfig
from policies.registry import POLICIES
from robot.core.errors import ConfigError

# Distillation batches carry, besides the dataset keys: "noise" (B, H, Da) and "teacher" (B, H, Da), the
# teacher's normalized chunk for that noise; consistency with LCM also "trajectory" (B, S+1, H, Da) and
# "timesteps" (S,) of the teacher's DDIM run (noise first).


@POLICIES.register("consistency")
class ConsistencyHead(ChunkPolicy):
    """f(noise, t_max | obs) -> the DDIM teacher's output for that same noise, in one call."""

    algo: ConsistencyConfig
    t_max: float = 99.0

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """One network call."""
        return 1

    def loss(self, batch: Batch, model: ChunkModel | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Same-noise output regression (+ LCM consistency along the teacher trajectory if weighted)."""
        m = model or self.model
        cond = m.condition(batch)
        noise, teacher = batch["noise"], batch["teacher"]  # (B, H, Da) each
        b, dev = noise.shape[0], noise.device
        pred = m(noise, torch.full((b,), self.t_max, device=dev), cond)
        loss = F.mse_loss(pred, teacher)
        metrics = {"loss_output": float(loss.detach())}
        if self.algo.lcm_weight > 0:
            if "trajectory" not in batch:
                raise ConfigError("LCM loss needs teacher trajectories: precompute targets with trajectories=True")
            traj, ts = batch["trajectory"], batch["timesteps"][0]  # (B, S+1, H, Da), (S,)
            steps = ts.shape[0]
            j = torch.randint(0, steps, (b,), device=dev)
            rows = torch.arange(b, device=dev)
            x_j = traj[rows, j]  # (B, H, Da)
            with torch.no_grad():
                nxt = traj[rows, j + 1]
                last = j + 1 == steps  # boundary condition: the final teacher sample is its own target
                t_next = ts[torch.clamp(j + 1, max=steps - 1)].float()
                tgt = m(nxt, t_next, cond)
                tgt = torch.where(last[:, None, None], nxt, tgt)
            lcm = F.mse_loss(m(x_j, ts[j].float(), cond), tgt)
            loss = loss + self.algo.lcm_weight * lcm
            metrics["loss_lcm"] = float(lcm.detach())
        metrics["loss"] = float(loss.detach())
        return loss, metrics

    def sample_normalized(
        self, cond: torch.Tensor, noise: torch.Tensor, model: ChunkModel | None = None
    ) -> torch.Tensor:
        """One call at the first DDIM timestep."""
        m = model or self.model
        return m(noise, torch.full((noise.shape[0],), self.t_max, device=noise.device), cond)


MEANFLOW_TIME_SCALE = 1.0
"""MeanFlow feeds t, r in [0, 1] unscaled: its target contains (t - r) du/dt, and at the diffusion scale (x1000)
the sinusoidal time embedding makes du/dt ~1000x larger, which diverges in training."""


def meanflow_times(
    b: int, cfg: MeanFlowConfig, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, t) on `device`, each (B,), 0 < r <= t < 1: logit-normal draws swapped where r > t; r = t for a share."""
    t = torch.sigmoid(cfg.t_mean + cfg.t_std * torch.randn(b, device=device))  # (B,)
    r = torch.sigmoid(cfg.r_mean + cfg.r_std * torch.randn(b, device=device))  # (B,)
    t, r = torch.maximum(t, r), torch.minimum(t, r)
    same = torch.rand(b, device=device) < cfg.r_equals_t_fraction
    return torch.where(same, t, r), t


def adaptive_mse(
    pred: torch.Tensor, target: torch.Tensor, power: float, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, plain MSE) for (B, ...) tensors: per-sample squared error e weighted by (e + eps)^-power, no
    gradient through the weight (MeanFlow's adaptive loss; power 1 makes it scale-free, so a few samples with
    large jvp targets do not dominate the batch)."""
    err = (pred - target).pow(2).flatten(1).mean(1)  # (B,)
    weight = (err.detach() + eps).pow(-power)  # (B,)
    return (weight * err).mean(), err.detach().mean()


@POLICIES.register("meanflow")
class MeanFlowHead(ChunkPolicy):
    """Average velocity u(z_t, r, t) with u = v - (t - r) du/dt; one step x = z_1 - u(z_1, 0, 1).

    Trained on the teacher's (noise, chunk) pairs, so z_t = (1 - t) chunk + t noise and v = noise - chunk:
    the head reproduces the teacher's noise-to-action map.
    """

    algo: MeanFlowConfig
    two_times = True

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """One network call."""
        return 1

    def loss(self, batch: Batch, model: ChunkModel | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """MeanFlow identity with du/dt from torch.func.jvp along (v, 0, 1), adaptively weighted."""
        m = model or self.model
        cond = m.condition(batch)
        x, eps = batch["teacher"], batch["noise"]  # (B, H, Da)
        r, t = meanflow_times(x.shape[0], self.algo, x.device)  # (B,) each
        z = (1.0 - t)[:, None, None] * x + t[:, None, None] * eps  # (B, H, Da)
        v = eps - x  # (B, H, Da): the teacher's coupling is deterministic, so this is the exact velocity

        def u_fn(z_: torch.Tensor, r_: torch.Tensor, t_: torch.Tensor) -> torch.Tensor:
            return self.velocity(m, z_, r_, t_, cond)

        out = torch.func.jvp(u_fn, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
        u, dudt = out[0], out[1]  # (B, H, Da) each
        u_tgt = (v - (t - r)[:, None, None] * dudt).detach()  # (B, H, Da)
        loss, mse = adaptive_mse(u, u_tgt, self.algo.adaptive_power, self.algo.adaptive_eps)
        return loss, {"loss": float(loss.detach()), "mse": float(mse)}

    def velocity(
        self, m: ChunkModel, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        """Average velocity u(z, r, t): (B, H, Da), from the network's velocity or (x_prediction) chunk."""
        out = m(z, t * MEANFLOW_TIME_SCALE, cond, r * MEANFLOW_TIME_SCALE)
        if not self.algo.x_prediction:
            return out
        return (z - out) / t.clamp(min=self.algo.x_prediction_t_min)[:, None, None]

    def sample_normalized(
        self, cond: torch.Tensor, noise: torch.Tensor, model: ChunkModel | None = None
    ) -> torch.Tensor:
        """x0 = z1 - u(z1, r=0, t=1): one call."""
        b, dev = noise.shape[0], noise.device
        return noise - self.velocity(model or self.model, noise, torch.zeros(b, device=dev),
                                     torch.ones(b, device=dev), cond)


@POLICIES.register("mip_head")
class MipHead(ChunkPolicy):
    """Two regression passes onto the teacher's chunks (deterministic; the cheap baseline)."""

    algo: MipHeadConfig

    @property
    def nfe(self) -> int:  # type: ignore[override]
        """Two network calls."""
        return 2

    def loss(self, batch: Batch, model: ChunkModel | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """mip_loss against the teacher's chunk."""
        m = model or self.model
        return mip_loss(m, m.condition(batch), batch["teacher"], True, self.algo.t_star, 0.1)

    def sample_normalized(
        self, cond: torch.Tensor, noise: torch.Tensor, model: ChunkModel | None = None
    ) -> torch.Tensor:
        """Two calls."""
        return mip_sample(model or self.model, cond, noise.shape, True, self.algo.t_star)


def make_head(teacher: ChunkPolicy, algo: ConsistencyConfig | MeanFlowConfig | MipHeadConfig) -> ChunkPolicy:
    """A head initialized from the teacher: same normalizer and encoder; the whole net when the student has
    the teacher's architecture (extra inputs such as MeanFlow's second time start fresh)."""
    cls: Any = {ConsistencyConfig: ConsistencyHead, MeanFlowConfig: MeanFlowHead, MipHeadConfig: MipHead}[type(algo)]
    if isinstance(algo, ConsistencyConfig) and not isinstance(teacher, DiffusionPolicy):
        raise ConfigError(f"consistency distillation needs a diffusion (DDIM) teacher, got {teacher.name}")
    net = algo.net or teacher.net_cfg
    normalizer = type(teacher.model.normalizer)(shapes=teacher.model.normalizer.shapes())
    head: ChunkPolicy = cls(
        teacher.obs_cfg,
        teacher.chunk_cfg,
        teacher.action_dim,
        algo,
        normalizer,
        net=net,
        meta={**teacher.meta, "teacher_algo": teacher.name},
    )
    teacher_state = teacher.model.state_dict()
    if net == teacher.net_cfg:
        own = head.model.state_dict()
        head.model.load_state_dict(
            {k: v for k, v in teacher_state.items() if k in own and own[k].shape == v.shape}, strict=False
        )
    else:
        head.model.normalizer.load_state_dict(teacher.model.normalizer.state_dict())
        head.model.encoder.load_state_dict(teacher.model.encoder.state_dict())
    return head
