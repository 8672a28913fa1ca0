"""ConditionalUnet1D: a temporal U-Net over action chunks with FiLM conditioning (diffusion_policy design)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from policies.nets.mlp import SinusoidalPosEmb, check_denoiser_inputs, timestep_batch
from robot.core.errors import ConfigError


@dataclass(frozen=True)
class UnetConfig:
    """Sizes and options of ConditionalUnet1D."""

    down_dims: tuple[int, ...] = (256, 512, 1024)
    """Channels per resolution level; the sequence is halved between consecutive levels (diffusion_policy sizes)."""
    kernel_size: int = 5
    """Temporal kernel size of every residual conv (odd, so 'same' padding keeps the length)."""
    n_groups: int = 8
    """GroupNorm groups; must divide every entry of down_dims."""
    diffusion_step_embed_dim: int = 128
    """Size of each time embedding (sinusoidal, then a Mish MLP)."""
    cond_predict_scale: bool = True
    """FiLM predicts a per-channel scale and bias; False predicts the bias only."""

    def __post_init__(self) -> None:
        if not self.down_dims or any(d < 1 for d in self.down_dims):
            raise ConfigError(f"down_dims must be a non-empty tuple of positive ints, got {self.down_dims}")
        if self.n_groups < 1 or any(d % self.n_groups for d in self.down_dims):
            raise ConfigError(f"n_groups={self.n_groups} must divide every down_dims entry {self.down_dims}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd and positive, got {self.kernel_size}")
        if self.diffusion_step_embed_dim < 4 or self.diffusion_step_embed_dim % 2:
            raise ConfigError(f"diffusion_step_embed_dim must be even and >= 4, got {self.diffusion_step_embed_dim}")


def _conv_block(c_in: int, c_out: int, kernel_size: int, n_groups: int) -> nn.Sequential:
    """Conv1d -> GroupNorm -> Mish, length preserving: (B, c_in, L) -> (B, c_out, L)."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2), nn.GroupNorm(n_groups, c_out), nn.Mish()
    )


def _time_encoder(dim: int) -> nn.Sequential:
    """(B,) time -> (B, dim): sinusoidal features then a Mish MLP."""
    return nn.Sequential(SinusoidalPosEmb(dim), nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))


class FiLMResBlock1D(nn.Module):
    """Two conv blocks with FiLM from the condition after the first, plus a residual path."""

    def __init__(
        self, c_in: int, c_out: int, cond_dim: int, kernel_size: int, n_groups: int, predict_scale: bool
    ) -> None:
        super().__init__()
        self.conv1 = _conv_block(c_in, c_out, kernel_size, n_groups)
        self.conv2 = _conv_block(c_out, c_out, kernel_size, n_groups)
        self.predict_scale = predict_scale
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out if predict_scale else c_out))
        self.skip: nn.Module = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, c_in, L), cond (B, cond_dim) -> (B, c_out, L)."""
        h = self.conv1(x)  # (B, c_out, L)
        film = self.film(cond)[:, :, None]  # (B, 2*c_out or c_out, 1)
        if self.predict_scale:
            scale, bias = film.chunk(2, dim=1)
            # 1 + scale: a freshly initialised FiLM is then close to identity instead of shrinking features.
            h = (1 + scale) * h + bias
        else:
            h = h + film
        return self.conv2(h) + self.skip(x)


class _ResPair(nn.Module):
    """Two FiLM residual blocks, the unit of each U-Net level: (B, c_in, L) -> (B, c_out, L)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, cfg: UnetConfig) -> None:
        super().__init__()
        k, g, ps = cfg.kernel_size, cfg.n_groups, cfg.cond_predict_scale
        self.first = FiLMResBlock1D(c_in, c_out, cond_dim, k, g, ps)
        self.second = FiLMResBlock1D(c_out, c_out, cond_dim, k, g, ps)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, c_in, L), cond (B, cond_dim) -> (B, c_out, L)."""
        return self.second(self.first(x, cond), cond)


class ConditionalUnet1D(nn.Module):
    """Temporal U-Net denoiser: (sample (B, H, Da), t (B,), cond (B, C), [r (B,)]) -> (B, H, Da).

    Each level has two FiLM residual blocks; levels are joined by stride-2 convs going down and
    transposed convs going up, with the pre-downsampling activations concatenated back as skips.
    Times enter as given: integer diffusion steps, or flow times in [0, 1] scaled up (e.g. x1000) by
    the caller so the sinusoidal embedding resolves them. Any H >= 1 works: a stride-2 conv rounds
    odd lengths up and the upsampled sequence is cropped back to its skip's length, so no padding of
    the action chunk is needed.
    """

    def __init__(
        self,
        input_dim: int,
        global_cond_dim: int,
        config: UnetConfig | None = None,
        horizon: int | None = None,
        two_times: bool = False,
    ) -> None:
        """input_dim: Da; global_cond_dim: C (To * F); horizon: H, checked on every call when given;
        two_times: embed a second time r (MeanFlow's (t, r)); when False, timestep2 is ignored.
        """
        super().__init__()
        cfg = config if config is not None else UnetConfig()
        if input_dim < 1 or global_cond_dim < 0 or (horizon is not None and horizon < 1):
            raise ConfigError(f"need Da >= 1, C >= 0, H >= 1; got {input_dim}, {global_cond_dim}, {horizon}")
        self.config = cfg
        self.action_dim = action_dim = input_dim
        self.global_cond_dim, self.horizon, self.two_times = global_cond_dim, horizon, two_times
        e = cfg.diffusion_step_embed_dim
        self.time_encoder = _time_encoder(e)
        self.time2_encoder = _time_encoder(e) if two_times else None
        cond_dim = e * (2 if two_times else 1) + global_cond_dim
        dims = cfg.down_dims

        def pair(c_in: int, c_out: int) -> _ResPair:
            return _ResPair(c_in, c_out, cond_dim, cfg)

        self.down = nn.ModuleList(pair(action_dim if i == 0 else dims[i - 1], c) for i, c in enumerate(dims))
        self.downsample = nn.ModuleList(nn.Conv1d(c, c, 3, stride=2, padding=1) for c in dims[:-1])
        self.mid = pair(dims[-1], dims[-1])
        up_levels = list(reversed(range(len(dims) - 1)))
        self.upsample = nn.ModuleList(
            nn.ConvTranspose1d(dims[i + 1], dims[i + 1], 4, stride=2, padding=1) for i in up_levels
        )
        self.up = nn.ModuleList(pair(dims[i + 1] + dims[i], dims[i]) for i in up_levels)
        self.final = nn.Sequential(
            _conv_block(dims[0], dims[0], cfg.kernel_size, cfg.n_groups), nn.Conv1d(dims[0], action_dim, 1)
        )

    def zero_output_(self) -> None:
        """Zero the final conv so the network starts by predicting 0 (residual or distillation init)."""
        last = self.final[-1]
        assert isinstance(last, nn.Conv1d)
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        global_cond: torch.Tensor | None,
        timestep2: torch.Tensor | float | int | None = None,
    ) -> torch.Tensor:
        """sample (B, H, Da), timestep (B,) or scalar, global_cond (B, C), timestep2 (B,) -> (B, H, Da)."""
        b, _ = check_denoiser_inputs(sample, global_cond, self.action_dim, self.global_cond_dim, self.horizon)
        parts = [self.time_encoder(timestep_batch(timestep, b, sample.device))]  # (B, E)
        if self.time2_encoder is not None:
            if timestep2 is None:
                raise ValueError("this network was built with two_times=True and needs timestep2")
            parts.append(self.time2_encoder(timestep_batch(timestep2, b, sample.device)))  # (B, E)
        if self.global_cond_dim:
            assert global_cond is not None  # checked above; narrows the type
            parts.append(global_cond)  # (B, C)
        cond = torch.cat(parts, dim=-1)  # (B, cond_dim)

        x = sample.transpose(1, 2)  # (B, Da, H): channels are action dims, length is time
        skips: list[torch.Tensor] = []
        for i, level in enumerate(self.down):
            x = level(x, cond)
            if i < len(self.downsample):
                skips.append(x)
                x = self.downsample[i](x)  # (B, C_i, ceil(L/2))
        x = self.mid(x, cond)
        for upsample, level in zip(self.upsample, self.up, strict=True):
            skip = skips.pop()
            x = upsample(x)[..., : skip.shape[-1]]  # crop: odd lengths were rounded up on the way down
            x = level(torch.cat([x, skip], dim=1), cond)
        out = self.final(x).transpose(1, 2)  # (B, H, Da)
        assert out.shape == sample.shape
        return out
