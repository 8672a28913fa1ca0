"""Image encoders (ResNet-18 style and a tiny ConvNet, GroupNorm throughout) and crop/shift augmentations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from robot.core.errors import ConfigError

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _group_norm(channels: int) -> nn.GroupNorm:
    # 16 channels per group, the usual BatchNorm -> GroupNorm swap for small-batch robot learning.
    return nn.GroupNorm(max(1, channels // 16), channels)


class ImagePreprocess(nn.Module):
    """uint8 images to [0, 1] floats, then optional ImageNet normalization: (B, 3, H, W) -> (B, 3, H, W)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, imagenet_norm: bool) -> None:
        super().__init__()
        self.imagenet_norm = imagenet_norm
        # Buffers (not persistent: constants) so .to(device/dtype) carries them along with the model.
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 in [0, 255] or float in [0, 1] -> float (B, 3, H, W)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.to(self.mean.dtype) / 255
        elif not x.is_floating_point():
            raise ValueError(f"images must be uint8 or floating point, got {x.dtype}")
        if self.imagenet_norm:
            x = (x - self.mean) / self.std
        return x


class SpatialSoftmax(nn.Module):
    """Keypoints: a 1x1 conv to K maps, softmax over pixels, expected (x, y) in [-1, 1]: (B, C, h, w) -> (B, 2K)."""

    def __init__(self, in_channels: int, num_keypoints: int = 32) -> None:
        super().__init__()
        self.keypoints = nn.Conv2d(in_channels, num_keypoints, 1)
        self.num_keypoints = num_keypoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, 2K) as [x_1, y_1, x_2, y_2, ...]."""
        b, _, h, w = x.shape
        attn = self.keypoints(x).flatten(2).softmax(dim=-1)  # (B, K, h*w)
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=attn.dtype)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=attn.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        coords = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1)  # (h*w, 2)
        return (attn @ coords).reshape(b, 2 * self.num_keypoints)  # (B, 2K)


class BasicBlock(nn.Module):
    """ResNet basic block with GroupNorm: (B, c_in, h, w) -> (B, c_out, h/stride, w/stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = _group_norm(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), _group_norm(c_out))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, h, w) -> (B, c_out, h', w')."""
        h = self.act(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return self.act(h + self.shortcut(x))


class ResNet18Encoder(nn.Module):
    """ResNet-18 layout (stem, 4 stages of 2 basic blocks) with GroupNorm: (B, 3, H, W) -> (B, out_dim).

    Trained from scratch (no torchvision, no pretrained weights). `pool` picks global average pooling
    (8*width features) or spatial-softmax keypoints (2*num_keypoints features) before the final Linear.
    """

    def __init__(
        self,
        out_dim: int = 64,
        pool: Literal["avg", "spatial_softmax"] = "avg",
        num_keypoints: int = 32,
        width: int = 64,
        imagenet_norm: bool = True,
    ) -> None:
        super().__init__()
        if out_dim < 1 or width < 1 or num_keypoints < 1:
            raise ConfigError(f"need positive out_dim, width, num_keypoints; got {out_dim}, {width}, {num_keypoints}")
        self.preprocess = ImagePreprocess(imagenet_norm)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
            _group_norm(width),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        c_in = width
        for i, mult in enumerate((1, 2, 4, 8)):
            c = width * mult
            stages.append(nn.Sequential(BasicBlock(c_in, c, 1 if i == 0 else 2), BasicBlock(c, c, 1)))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.pool: nn.Module
        if pool == "avg":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            pooled = c_in
        elif pool == "spatial_softmax":
            self.pool = SpatialSoftmax(c_in, num_keypoints)
            pooled = 2 * num_keypoints
        else:
            raise ConfigError(f"unknown pool {pool!r}; known: ['avg', 'spatial_softmax']")
        self.head = nn.Linear(pooled, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float in [0, 1] -> (B, out_dim)."""
        h = self.stages(self.stem(self.preprocess(x)))  # (B, 8*width, H/32, W/32)
        return self.head(self.pool(h))  # (B, out_dim)


class TinyConvEncoder(nn.Module):
    """A few 3x3 convs with GroupNorm + ReLU, adaptive pooling to a small grid, a Linear: (B, 3, H, W) -> (B, out_dim).

    Every conv but the last has stride 2 (84x84 -> 11x11 with the default 4 layers); the adaptive pool
    keeps a coarse spatial layout while making the Linear independent of the input size.
    """

    def __init__(
        self,
        out_dim: int = 64,
        channels: Sequence[int] = (32, 64, 64, 64),
        pool_size: int = 4,
        imagenet_norm: bool = False,
    ) -> None:
        super().__init__()
        if out_dim < 1 or pool_size < 1 or not channels or any(c < 1 for c in channels):
            raise ConfigError(f"bad TinyConvEncoder sizes: out_dim={out_dim} channels={channels} pool={pool_size}")
        self.preprocess = ImagePreprocess(imagenet_norm)
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(channels):
            stride = 1 if i == len(channels) - 1 else 2
            layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=1), _group_norm(c), nn.ReLU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(pool_size), nn.Flatten())
        self.head = nn.Linear(c_in * pool_size * pool_size, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float in [0, 1] -> (B, out_dim)."""
        return self.head(self.pool(self.convs(self.preprocess(x))))  # (B, out_dim)


def _gather_windows(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Per-image windows: x (N, C, H, W), rows (N, h), cols (N, w) integer indices -> (N, C, h, w)."""
    n = torch.arange(x.shape[0], device=x.device)[:, None, None]  # (N, 1, 1)
    # Indexing (not interpolation) works for uint8 and copies pixels exactly.
    out = x.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]]  # (N, h, w, C)
    return out.permute(0, 3, 1, 2)


class RandomCrop(nn.Module):
    """Random crop to a fixed size in training (offsets drawn per image), center crop in eval.

    Input (..., C, H, W) of any dtype; output (..., C, h, w) with (h, w) = `size`, in both modes.
    Leading dims are flattened, so every image (every sample and every time step) gets its own offset.
    """

    def __init__(self, size: int | tuple[int, int]) -> None:
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ConfigError(f"crop size must be positive, got {self.size}")

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output (h, w) for an input of (h, w): always the crop size."""
        if h < self.size[0] or w < self.size[1]:
            raise ValueError(f"crop {self.size} is larger than the image ({h}, {w})")
        return self.size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C, H, W) -> (..., C, h, w)."""
        *lead, c, h_in, w_in = x.shape
        h, w = self.output_hw(h_in, w_in)
        if not self.training:
            top, left = (h_in - h) // 2, (w_in - w) // 2
            return x[..., top : top + h, left : left + w]
        flat = x.reshape(-1, c, h_in, w_in)  # (N, C, H, W)
        n = flat.shape[0]
        top_t = torch.randint(0, h_in - h + 1, (n, 1), device=x.device)
        left_t = torch.randint(0, w_in - w + 1, (n, 1), device=x.device)
        rows = top_t + torch.arange(h, device=x.device)  # (N, h)
        cols = left_t + torch.arange(w, device=x.device)  # (N, w)
        return _gather_windows(flat, rows, cols).reshape(*lead, c, h, w)


class RandomShift(nn.Module):
    """DrQ shift: replicate-pad by `pad` then randomly crop back (per image) in training; identity in eval.

    Input (..., C, H, W) of any dtype; output has the same shape in both modes.
    """

    def __init__(self, pad: int = 4) -> None:
        super().__init__()
        if pad < 0:
            raise ConfigError(f"pad must be >= 0, got {pad}")
        self.pad = pad

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output (h, w) for an input of (h, w): unchanged."""
        return h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C, H, W) -> (..., C, H, W)."""
        if not self.training or self.pad == 0:
            return x
        *lead, c, h, w = x.shape
        flat = x.reshape(-1, c, h, w)  # (N, C, H, W)
        n, p = flat.shape[0], self.pad
        dy = torch.randint(-p, p + 1, (n, 1), device=x.device)
        dx = torch.randint(-p, p + 1, (n, 1), device=x.device)
        # Clamping the indices is replicate padding without materializing the padded image.
        rows = (dy + torch.arange(h, device=x.device)).clamp(0, h - 1)  # (N, H)
        cols = (dx + torch.arange(w, device=x.device)).clamp(0, w - 1)  # (N, W)
        return _gather_windows(flat, rows, cols).reshape(*lead, c, h, w)
