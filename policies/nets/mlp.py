"""MLPs, sinusoidal time embeddings, and a light MLP denoiser with the U-Net's call signature."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from robot.core.errors import ConfigError

Activation = Literal["mish", "relu", "silu"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {"mish": nn.Mish, "relu": nn.ReLU, "silu": nn.SiLU}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name; an unknown name lists the known ones."""
    if name not in _ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class SinusoidalPosEmb(nn.Module):
    """Transformer-style sinusoidal embedding of one scalar time per sample: (B,) -> (B, dim)."""

    freqs: torch.Tensor

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ConfigError(f"sinusoidal embedding dim must be even and >= 4, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / (half - 1))
        # Not persistent: it is a function of dim, so checkpoints need not carry it.
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t (B,) float or int -> (B, dim)."""
        args = t.to(self.freqs.dtype)[:, None] * self.freqs[None, :]  # (B, dim/2)
        return torch.cat([args.sin(), args.cos()], dim=-1)  # (B, dim)


def timestep_batch(t: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:
    """A scalar or (B,) time as a (B,) tensor on `device` (schedulers hand out 0-d CPU tensors)."""
    tt = t if isinstance(t, torch.Tensor) else torch.tensor(t)
    tt = tt.to(device)
    if tt.ndim == 0:
        tt = tt.expand(batch)
    if tt.shape != (batch,):
        raise ValueError(f"timestep must be a scalar or shape ({batch},), got {tuple(tt.shape)}")
    return tt


def check_denoiser_inputs(
    sample: torch.Tensor,
    global_cond: torch.Tensor | None,
    action_dim: int,
    global_cond_dim: int,
    horizon: int | None = None,
) -> tuple[int, int]:
    """Validate sample (B, H, Da) and global_cond (B, C); return (B, H)."""
    if sample.ndim != 3 or sample.shape[-1] != action_dim or (horizon is not None and sample.shape[1] != horizon):
        want = f"(B, {horizon if horizon is not None else 'H'}, {action_dim})"
        raise ValueError(f"sample must be {want}, got {tuple(sample.shape)}")
    b, h = sample.shape[0], sample.shape[1]
    if global_cond_dim == 0:
        if global_cond is not None and global_cond.shape[-1] != 0:
            raise ValueError(f"network was built with global_cond_dim=0 but got cond {tuple(global_cond.shape)}")
    elif global_cond is None or global_cond.shape != (b, global_cond_dim):
        got = None if global_cond is None else tuple(global_cond.shape)
        raise ValueError(f"global_cond must be ({b}, {global_cond_dim}) (obs features flattened over To), got {got}")
    return b, h


class MLP(nn.Module):
    """Linear -> [LayerNorm] -> activation -> [Dropout] per hidden width, then a Linear: (..., in) -> (..., out)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256),
        activation: Activation = "mish",
        layer_norm: bool = False,
        dropout: float = 0.0,
        zero_last: bool = False,
    ) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1 or any(h < 1 for h in hidden):
            raise ConfigError(f"MLP sizes must be positive, got in={in_dim} hidden={tuple(hidden)} out={out_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        self.last = nn.Linear(d, out_dim)
        self.body = nn.Sequential(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim
        if zero_last:
            self.zero_last_()

    def zero_last_(self) -> None:
        """Zero the final layer so the MLP starts as the constant 0 (residual actors, distillation deltas)."""
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., out_dim)."""
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"MLP expects (..., {self.in_dim}), got {tuple(x.shape)}")
        return self.last(self.body(x))


class MLPDenoiser(nn.Module):
    """Flattened-chunk MLP: (sample (B, H, Da), t (B,), cond (B, C), [r (B,)]) -> (B, H, Da)."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        hidden: Sequence[int] = (256, 256),
        time_embed_dim: int = 32,
        two_times: bool = False,
        activation: Activation = "mish",
        layer_norm: bool = False,
    ) -> None:
        """action_dim: Da; horizon: H; cond_dim: C (To * F); time_embed_dim: size of each sinusoidal time
        embedding (no MLP of its own, to stay cheap); two_times: embed a second time r (MeanFlow's (t, r)),
        when False timestep2 is ignored.
        """
        super().__init__()
        if action_dim < 1 or horizon < 1 or cond_dim < 0:
            raise ConfigError(f"need Da >= 1, H >= 1, C >= 0; got {action_dim}, {horizon}, {cond_dim}")
        self.action_dim, self.horizon, self.global_cond_dim, self.two_times = action_dim, horizon, cond_dim, two_times
        self.time_emb = SinusoidalPosEmb(time_embed_dim)
        in_dim = horizon * action_dim + (2 if two_times else 1) * time_embed_dim + cond_dim
        self.mlp = MLP(in_dim, horizon * action_dim, hidden, activation, layer_norm)

    def zero_output_(self) -> None:
        """Zero the last layer so the network starts by predicting 0."""
        self.mlp.zero_last_()

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        global_cond: torch.Tensor | None,
        timestep2: torch.Tensor | float | int | None = None,
    ) -> torch.Tensor:
        """sample (B, H, Da), timestep (B,) or scalar, global_cond (B, C), timestep2 (B,) -> (B, H, Da)."""
        b, h = check_denoiser_inputs(sample, global_cond, self.action_dim, self.global_cond_dim, self.horizon)
        parts = [sample.reshape(b, h * self.action_dim)]  # (B, H*Da)
        parts.append(self.time_emb(timestep_batch(timestep, b, sample.device)))  # (B, E)
        if self.two_times:
            if timestep2 is None:
                raise ValueError("this network was built with two_times=True and needs timestep2")
            parts.append(self.time_emb(timestep_batch(timestep2, b, sample.device)))  # (B, E)
        if self.global_cond_dim:
            assert global_cond is not None  # checked above; narrows the type
            parts.append(global_cond)  # (B, C)
        out = self.mlp(torch.cat(parts, dim=-1))  # (B, H*Da)
        return out.reshape(b, h, self.action_dim)  # (B, H, Da)
