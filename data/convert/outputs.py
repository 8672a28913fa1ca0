"""Converter outputs are built beside their final path and renamed in, never overwriting anything."""

from __future__ import annotations

from pathlib import Path

from robot.core.errors import StoreError


def check_new_output(path: Path) -> Path:
    """The temp sibling an output is built in; refuses an existing output so nothing is ever overwritten."""
    if path.exists():
        raise StoreError(f"{path} already exists: choose a new output path or remove it first")
    if not path.parent.is_dir():
        raise StoreError(f"the parent directory of {path} does not exist: create it first")
    return path.with_name(path.name + ".realrl-partial")
