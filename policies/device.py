"""Where networks train: a checked torch device from a --device name, and moving batches onto it."""

from __future__ import annotations

from typing import Any

import torch

from robot.core.errors import ConfigError


def resolve_device(name: str | torch.device) -> torch.device:
    """A torch device from 'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when torch sees one), checked to exist."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown torch device {name!r}: use cpu, cuda, cuda:N or auto") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {name!r}: realrl runs on cpu or cuda")
    return dev


def to_device(x: Any, device: torch.device) -> Any:
    """`x` with every tensor in it (nested in dicts, lists or tuples) on `device`; anything else as it is.

    A tensor already there comes back as itself, not a copy. Host-to-GPU copies are non-blocking: from pinned
    memory they overlap with compute, from pageable memory they are staged and safe to reuse at once. Copies
    back to the host block, so the result is complete when read.
    """
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=device.type == "cuda")
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, list):
        return [to_device(v, device) for v in x]
    if isinstance(x, tuple):
        return tuple(to_device(v, device) for v in x)
    return x
