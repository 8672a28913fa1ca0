"""Checkpoints: safetensors weights + JSON config, written atomically; loading never runs code."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robot.core.errors import CheckpointError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "realrl-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write `path/` (weights + config) via a sibling temp dir and a rename: a crash leaves the old one."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    # safetensors refuses shared storage; clone so EMA copies and tied weights are saved as plain tensors.
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(tmp / WEIGHTS))
    (tmp / CONFIG).write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **config}, indent=1))
    return swap_in(tmp, out)


def swap_in(tmp: Path, out: Path) -> Path:
    """Replace directory `out` by the finished `tmp` with renames: a crash at any point leaves `out` or
    `out.old` complete (loaders fall back to `.old`)."""
    old = out.with_name(out.name + ".old")
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    os.replace(tmp, out)
    if old.exists():
        shutil.rmtree(old)
    return out


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, config) of a checkpoint directory; CheckpointError for anything missing or malformed."""
    p = Path(path)
    if not p.exists() and p.with_name(p.name + ".old").exists():
        p = p.with_name(p.name + ".old")  # a save died between its two renames
    if not (p / CONFIG).is_file() or not (p / WEIGHTS).is_file():
        raise CheckpointError(f"{path} is not a realrl checkpoint (needs {CONFIG} and {WEIGHTS})")
    try:
        config = json.loads((p / CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p / CONFIG} is not valid JSON ({e}); the checkpoint is damaged") from e
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{p} has format {config.get('format')!r} v{config.get('format_version')}; this realrl reads "
            f"{FORMAT!r} v{FORMAT_VERSION}"
        )
    try:
        tensors = load_file(str(p / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{p / WEIGHTS} cannot be read ({e}); the checkpoint is damaged") from e
    return tensors, config
