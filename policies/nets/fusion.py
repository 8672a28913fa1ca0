"""ObservationEncoder: per-camera image features and state vectors fused into one feature per time step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import torch
from torch import nn

from policies.nets.encoders import RandomCrop, ResNet18Encoder, TinyConvEncoder
from robot.core.errors import ConfigError

ImageEncoderName = Literal["resnet18", "tiny"]
_IMAGE_ENCODERS: dict[str, Callable[[int], nn.Module]] = {
    "resnet18": lambda feature_dim: ResNet18Encoder(out_dim=feature_dim),
    "tiny": lambda feature_dim: TinyConvEncoder(out_dim=feature_dim),
}


def _module_name(key: str) -> str:
    # Observation keys contain '/', and nn.Module names may not contain '.'.
    return key.replace("/", "__").replace(".", "_")


class ObservationEncoder(nn.Module):
    """obs {key: (B, To, D_k) state or (B, To, 3, H, W) image} -> (B, To, F), F = `out_dim`.

    Features are concatenated in a fixed order: cameras sorted by key (feature_dim each), then state
    keys sorted by key (raw, as given: normalize before). With no cameras this is a plain concat.
    Images may be uint8 (scaled inside) or float in [0, 1]. Keys not declared are ignored.
    """

    _dtype_probe: torch.Tensor

    def __init__(
        self,
        state_dims: Mapping[str, int],
        image_shapes: Mapping[str, tuple[int, int, int]] | None = None,
        image_encoder: ImageEncoderName = "resnet18",
        feature_dim: int = 64,
        crop: float | None = None,
        shared: bool = False,
    ) -> None:
        super().__init__()
        image_shapes = dict(image_shapes or {})
        if not state_dims and not image_shapes:
            raise ConfigError("ObservationEncoder needs at least one state or image key")
        if any(d < 1 for d in state_dims.values()):
            raise ConfigError(f"state dims must be positive, got {dict(state_dims)}")
        for key, shape in image_shapes.items():
            if len(shape) != 3 or shape[0] != 3 or min(shape) < 1:
                raise ConfigError(f"image {key!r} must be declared as (3, H, W), got {shape}")
        if crop is not None and not 0.0 < crop <= 1.0:
            raise ConfigError(f"crop is a fraction in (0, 1], got {crop}")
        if image_shapes and image_encoder not in _IMAGE_ENCODERS:
            raise ConfigError(f"unknown image encoder {image_encoder!r}; known: {sorted(_IMAGE_ENCODERS)}")
        if image_shapes and feature_dim < 1:
            raise ConfigError(f"feature_dim must be positive, got {feature_dim}")
        names = [_module_name(k) for k in image_shapes]
        if len(set(names)) != len(names):
            raise ConfigError(f"image keys {sorted(image_shapes)} collide after replacing '/' and '.'")

        self.state_dims = {k: int(state_dims[k]) for k in sorted(state_dims)}
        self.image_shapes = {k: tuple(image_shapes[k]) for k in sorted(image_shapes)}
        self.shared = shared
        self.crops = nn.ModuleDict()
        for key, (_, h, w) in self.image_shapes.items():
            if crop is not None:
                self.crops[_module_name(key)] = RandomCrop((max(1, round(crop * h)), max(1, round(crop * w))))
            else:
                self.crops[_module_name(key)] = nn.Identity()
        self.encoders = nn.ModuleDict()
        if self.image_shapes:
            make = _IMAGE_ENCODERS[image_encoder]
            if shared:
                self.encoders["shared"] = make(feature_dim)
            else:
                for key in self.image_shapes:
                    self.encoders[_module_name(key)] = make(feature_dim)
        self.feature_dim = feature_dim
        self.out_dim = feature_dim * len(self.image_shapes) + sum(self.state_dims.values())
        # Follows .to(dtype/device) so state vectors are cast to the model's float type even without images.
        self.register_buffer("_dtype_probe", torch.zeros(0), persistent=False)

    def _check(self, obs: Mapping[str, torch.Tensor]) -> tuple[int, int]:
        """Validate every declared key; return (B, To)."""
        expected = list(self.image_shapes) + list(self.state_dims)
        missing = [k for k in expected if k not in obs]
        if missing:
            raise ConfigError(f"observation is missing {missing}; the encoder expects {expected}, got {sorted(obs)}")
        bt = tuple(obs[expected[0]].shape[:2])
        for key, d in self.state_dims.items():
            if obs[key].ndim != 3 or tuple(obs[key].shape) != (*bt, d):
                raise ValueError(f"{key!r} must be (B, To, {d}) = {(*bt, d)}, got {tuple(obs[key].shape)}")
        for key, shape in self.image_shapes.items():
            if tuple(obs[key].shape) != (*bt, *shape):
                raise ValueError(f"{key!r} must be (B, To, 3, H, W) = {(*bt, *shape)}, got {tuple(obs[key].shape)}")
        return bt[0], bt[1]

    def _encode_images(self, obs: Mapping[str, torch.Tensor], n: int) -> list[torch.Tensor]:
        """Each camera -> (B*To, feature_dim), in sorted key order."""
        crops = [self.crops[_module_name(k)](obs[k].reshape(n, *obs[k].shape[2:])) for k in self.image_shapes]
        if self.shared and len({c.shape for c in crops}) == 1:
            # One batched pass through the shared encoder instead of one per camera.
            return list(self.encoders["shared"](torch.cat(crops, dim=0)).split(n, dim=0))
        encoders = [self.encoders["shared" if self.shared else _module_name(k)] for k in self.image_shapes]
        return [enc(x) for enc, x in zip(encoders, crops, strict=True)]

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """obs {state: (B, To, D_k), image: (B, To, 3, H, W)} -> (B, To, F)."""
        b, to = self._check(obs)
        feats = [f.reshape(b, to, self.feature_dim) for f in self._encode_images(obs, b * to)]  # (B, To, feat)
        dtype = self._dtype_probe.dtype
        feats += [obs[k].to(dtype) for k in self.state_dims]  # (B, To, D_k)
        out = torch.cat(feats, dim=-1)  # (B, To, F)
        assert out.shape == (b, to, self.out_dim)
        return out
