"""Min-max normalization to [-1, 1] for actions and low-dim state; statistics travel in the checkpoint."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from robot.core.errors import CheckpointError


def _buf(key: str) -> str:
    return key.replace("/", "__").replace(".", "_")


class Normalizer(nn.Module):
    """Per-key affine maps x -> x * scale + offset that send [min, max] to [-1, 1].

    Dimensions whose data never varied (max == min) map to 0 rather than dividing by zero. Asking for a
    key without statistics raises CheckpointError: there is no silent identity.
    """

    def __init__(
        self,
        stats: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.keys: list[str] = []
        if stats is not None:
            for key in sorted(stats):
                lo = np.asarray(stats[key]["min"], dtype=np.float64)
                hi = np.asarray(stats[key]["max"], dtype=np.float64)
                span = hi - lo
                ok = span > 1e-8
                scale = np.where(ok, 2.0 / np.where(ok, span, 1.0), 1.0)
                offset = np.where(ok, -1.0 - lo * scale, -lo)
                self._add(
                    key, torch.as_tensor(scale, dtype=torch.float32), torch.as_tensor(offset, dtype=torch.float32)
                )
        elif shapes is not None:  # empty buffers to be filled by load_state_dict
            for key in sorted(shapes):
                self._add(key, torch.ones(shapes[key]), torch.zeros(shapes[key]))

    def _add(self, key: str, scale: torch.Tensor, offset: torch.Tensor) -> None:
        self.register_buffer(f"{_buf(key)}__scale", scale)
        self.register_buffer(f"{_buf(key)}__offset", offset)
        self.keys.append(key)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-key statistic shapes (stored in the checkpoint config to rebuild the buffers)."""
        return {k: tuple(self._get(k)[0].shape) for k in self.keys}

    def _get(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        if key not in self.keys:
            raise CheckpointError(
                f"no normalization statistics for {key!r} (have: {self.keys}); the policy was trained without it "
                "— retrain with this key or feed the keys it was trained on"
            )
        return getattr(self, f"{_buf(key)}__scale"), getattr(self, f"{_buf(key)}__offset")

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Raw -> [-1, 1] (per last dimension)."""
        scale, offset = self._get(key)
        return x * scale + offset

    def unnormalize(self, key: str, y: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> raw."""
        scale, offset = self._get(key)
        return (y - offset) / scale
