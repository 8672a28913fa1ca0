"""Normalization statistics (min, max, mean, std per dimension) of stored keys, kept beside the store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from data.store import EpisodeStore
from robot.core.errors import StoreError

STATS_FILE = "stats.json"

Stats = dict[str, dict[str, np.ndarray]]
"""key -> {"min", "max", "mean", "std"} arrays of the key's per-step shape."""


def compute_stats(store: EpisodeStore, keys: list[str] | tuple[str, ...], episodes: list[int] | None = None) -> Stats:
    """Statistics over the given episodes (default all), streaming one episode at a time."""
    missing = [k for k in keys if k not in store.keys]
    if missing:
        raise StoreError(f"{store.path}: cannot compute statistics of missing keys {missing}; stored: {store.keys}")
    idx = range(len(store)) if episodes is None else episodes
    if len(idx) == 0:
        raise StoreError(f"{store.path}: no episodes to compute statistics from")
    out: Stats = {}
    for key in keys:
        n = 0
        s1: np.ndarray | None = None
        s2: np.ndarray | None = None
        lo: np.ndarray | None = None
        hi: np.ndarray | None = None
        for i in idx:
            sl = store.episode_slice(i)
            x = store.read(key, sl.start, sl.stop).astype(np.float64)
            n += x.shape[0]
            s1 = x.sum(0) if s1 is None else s1 + x.sum(0)
            s2 = (x * x).sum(0) if s2 is None else s2 + (x * x).sum(0)
            lo = x.min(0) if lo is None else np.minimum(lo, x.min(0))
            hi = x.max(0) if hi is None else np.maximum(hi, x.max(0))
        assert s1 is not None and s2 is not None and lo is not None and hi is not None
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        out[key] = {k: v.astype(np.float32) for k, v in (("min", lo), ("max", hi), ("mean", mean), ("std", std))}
    return out


def stats_to_json(stats: Stats) -> dict[str, Any]:
    """JSON-safe form (lists)."""
    return {k: {s: v.tolist() for s, v in d.items()} for k, d in stats.items()}


def stats_from_json(d: dict[str, Any]) -> Stats:
    """Inverse of stats_to_json."""
    try:
        return {k: {s: np.asarray(v, dtype=np.float32) for s, v in e.items()} for k, e in d.items()}
    except (AttributeError, TypeError, ValueError) as e:
        raise StoreError(f"malformed statistics ({e}); delete {STATS_FILE} and recompute") from e


def load_or_compute(store: EpisodeStore, keys: list[str] | tuple[str, ...]) -> Stats:
    """Cached statistics over all episodes; recomputed when the store grew. Written only for writable stores."""
    path = Path(store.path) / STATS_FILE
    if path.exists():
        try:
            cached = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            cached = {}
        if cached.get("n_steps") == store.n_steps and all(k in cached.get("stats", {}) for k in keys):
            stats = stats_from_json(cached["stats"])
            return {k: stats[k] for k in keys}
    stats = compute_stats(store, keys)
    if os.access(store.path, os.W_OK):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"n_steps": store.n_steps, "stats": stats_to_json(stats)}))
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    return stats
