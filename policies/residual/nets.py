"""Residual actors (deterministic TD3 and squashed-Gaussian SAC) and a LayerNorm critic ensemble."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from robot.core.errors import ConfigError


def _mlp(in_dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.LayerNorm(h), nn.ReLU()]
        in_dim = h
    return nn.Sequential(*layers)


class ResidualActor(nn.Module):
    """obs features (B, D) -> residual (B, Da) = tanh(MLP); the last layer starts at zero, so a fresh actor
    leaves the base policy's behaviour unchanged."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1 or not hidden:
            raise ConfigError(f"need obs_dim, action_dim >= 1 and hidden layers; got {obs_dim}, {action_dim}, {hidden}")
        self.trunk = _mlp(obs_dim, hidden)
        self.out = nn.Linear(hidden[-1], action_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, Da) in [-1, 1]."""
        return torch.tanh(self.out(self.trunk(obs)))


class GaussianResidualActor(nn.Module):
    """SAC actor: tanh-squashed Gaussian; the mean layer starts at zero (residual 0 in expectation)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (256, 256),
                 log_std_range: tuple[float, float] = (-5.0, 1.0), init_log_std: float = -1.5) -> None:
        super().__init__()
        self.trunk = _mlp(obs_dim, hidden)
        self.mean = nn.Linear(hidden[-1], action_dim)
        self.log_std = nn.Linear(hidden[-1], action_dim)
        for layer, bias in ((self.mean, 0.0), (self.log_std, init_log_std)):
            nn.init.zeros_(layer.weight)
            nn.init.constant_(layer.bias, bias)
        self.log_std_range = log_std_range

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> (action (B, Da) in [-1, 1], log_prob (B,)) with the tanh change of variables."""
        h = self.trunk(obs)
        mu = self.mean(h)
        lo, hi = self.log_std_range
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(self.log_std(h)) + 1.0)
        std = log_std.exp()
        u = mu if deterministic else mu + std * torch.randn_like(mu)
        a = torch.tanh(u)
        log_prob = (-0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - torch.log1p(-a.pow(2) + 1e-6).sum(-1)
        return a, log_prob


class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matmul: (K, B, in) -> (K, B, out)."""

    def __init__(self, k: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(k, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, in) -> (K, B, out)."""
        return torch.baddbmm(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    """K Q-heads with LayerNorm over (obs features, combined action): (B, D), (B, Da) -> (K, B)."""

    def __init__(self, obs_dim: int, action_dim: int, n_heads: int = 10, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        if n_heads < 2:
            raise ConfigError(f"the critic ensemble needs >= 2 heads (targets take a min over a pair), got {n_heads}")
        self.n_heads = n_heads
        dims = (obs_dim + action_dim, *hidden)
        self.layers = nn.ModuleList(EnsembleLinear(n_heads, a, b) for a, b in itertools.pairwise(dims))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for h in hidden)
        self.out = EnsembleLinear(n_heads, hidden[-1], 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q-values of every head: (K, B)."""
        x = torch.cat([obs, action], -1).unsqueeze(0).expand(self.n_heads, -1, -1)  # (K, B, D + Da)
        for layer, norm in zip(self.layers, self.norms, strict=True):
            x = torch.relu(norm(layer(x)))
        return self.out(x).squeeze(-1)
