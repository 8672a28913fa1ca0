"""Residual RL losses as pure functions (shapes: K critic heads, B batch, Da action dim)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - torch convention


def pair_min(q: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """REDQ target: min over a random pair of heads. q: (K, B) -> (B,)."""
    k = q.shape[0]
    idx = torch.randperm(k, generator=generator, device=q.device)[:2]
    return q[idx].min(0).values


def td_target(returns: torch.Tensor, discount: torch.Tensor, next_q: torch.Tensor,
              bounds: tuple[float, float] | None = None) -> torch.Tensor:
    """n-step target r_n + gamma^n (1 - terminal) Q'(s_n, a_n), clamped into `bounds` (the range a true Q can
    take) when given; discount already holds gamma^n or 0. All (B,)."""
    assert returns.shape == discount.shape == next_q.shape, (returns.shape, discount.shape, next_q.shape)
    target = returns + discount * next_q
    return target if bounds is None else target.clamp(bounds[0], bounds[1])


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over heads of the MSE to a shared target. q: (K, B), target: (B,)."""
    assert q.ndim == 2 and target.shape == q.shape[1:], (q.shape, target.shape)
    return F.mse_loss(q, target.detach().unsqueeze(0).expand_as(q))


def deterministic_actor_loss(q: torch.Tensor) -> torch.Tensor:
    """TD3 actor loss on the ensemble mean. q: (K, B)."""
    return -q.mean()


def residual_penalty(residual: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * E[|r|^2] over the batch: keeps the residual near zero (the base) unless Q clearly says otherwise.
    residual: (B, Da) in [-1, 1]."""
    return weight * residual.pow(2).sum(-1).mean()


def demo_bc_loss(residual: torch.Tensor, demo_residual: torch.Tensor, keep: torch.Tensor, n_demo: torch.Tensor,
                 weight: float) -> torch.Tensor:
    """weight * sum of |r - r_demo|^2 (summed over action dims) over the kept rows, divided by the number of demo
    rows: a row the Q-filter drops counts as zero. residual, demo_residual: (B, Da); keep: (B,) float 0/1, zero on
    non-demo rows; n_demo: () count of demo rows."""
    err = (residual - demo_residual.detach()).pow(2).sum(-1)  # (B,)
    return weight * (err * keep).sum() / n_demo.clamp(min=1)


def sac_actor_loss(q: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """E[alpha log pi - mean_k Q]. q: (K, B), log_prob: (B,)."""
    return (alpha.detach() * log_prob - q.mean(0)).mean()


def alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """Temperature loss: drives the policy entropy to target_entropy. log_prob: (B,)."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


def truncated_gaussian(mean: torch.Tensor, std: float | torch.Tensor, clip: float | torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """mean + clip(N(0, std)) squeezed into [-1, 1]: exploration / target-policy smoothing. mean: (B, Da); std and
    clip are numbers or per-dimension (Da,) tensors."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device) * std
    if clip is not None:
        c = torch.as_tensor(clip, dtype=noise.dtype, device=noise.device)
        noise = noise.clamp(-c, c)
    return (mean + noise).clamp(-1.0, 1.0)


@torch.no_grad()
def soft_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """Polyak averaging: target <- (1 - tau) target + tau online."""
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)
