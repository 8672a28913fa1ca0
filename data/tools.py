"""Inspect, validate and repair episode stores (behind `realrl data info|validate|repair`)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from data.store import (
    _NEW,
    _OLD,
    EpisodeStore,
    _finish_swap,
    _inspect,
    _interrupted_swap,
    _problem_text,
    _sibling,
    drop_trailing_episodes,
    missing_chunk_files,
)
from robot.core.errors import StoreError


def _size_on_disk(path: Path) -> int:
    return sum((Path(dp) / f).stat().st_size for dp, _, fs in os.walk(path) for f in fs)


def info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Summary of a store: episodes, frames, keys, success rate, sources, tasks, size on disk."""
    p = Path(path)
    snap = _inspect(p)
    with EpisodeStore.open(p, "r") as store:
        metas = [store.episode_meta(i) for i in range(len(store))]
        lengths = np.diff(np.concatenate([[0], store.episode_ends]))
        return {
            "path": str(p),
            "fps": store.fps,
            "env_id": store.env_id,
            "embodiment": (store.spec or {}).get("name", ""),
            "episodes": len(store),
            "frames": store.n_steps,
            "episode_length": {
                "min": int(lengths.min()) if len(lengths) else 0,
                "mean": float(lengths.mean()) if len(lengths) else 0.0,
                "max": int(lengths.max()) if len(lengths) else 0,
            },
            "keys": {k: {"shape": list(s.shape), "dtype": s.dtype} for k, s in store.schema.items()},
            "success_rate": (sum(m["success"] for m in metas) / len(metas)) if metas else None,
            "sources": dict(Counter(m["source"] or "unknown" for m in metas)),
            "tasks": dict(Counter(m["task"] for m in metas)),
            "episodes_with_drops": sum(1 for m in metas if m["meta"].get("dropped_steps", 0)),
            "uncommitted_steps": snap.uncommitted_steps,
            "size_bytes": _size_on_disk(p),
        }


def format_info(d: dict[str, Any]) -> str:
    """Human-readable text of an `info` dict."""
    rate = "n/a" if d["success_rate"] is None else f"{100 * d['success_rate']:.1f}%"
    el = d["episode_length"]
    lines = [
        f"store       {d['path']}",
        f"env         {d['env_id'] or '-'}   embodiment {d['embodiment'] or '-'}   fps {d['fps']:g}",
        f"episodes    {d['episodes']}   frames {d['frames']}   length min/mean/max "
        f"{el['min']}/{el['mean']:.1f}/{el['max']}",
        f"success     {rate}",
        "sources     " + (", ".join(f"{k}: {v}" for k, v in sorted(d["sources"].items())) or "-"),
        "tasks       " + (", ".join(f"{k or '-'}: {v}" for k, v in sorted(d["tasks"].items())) or "-"),
        f"size        {d['size_bytes'] / 1e6:.2f} MB on disk",
    ]
    if d["episodes_with_drops"]:
        lines.append(f"WARNING     {d['episodes_with_drops']} episodes have dropped steps (see their meta)")
    if d["uncommitted_steps"]:
        lines.append(f"WARNING     {d['uncommitted_steps']} uncommitted steps from a killed writer (run repair)")
    lines.append("keys")
    width = max([len(k) for k in d["keys"]] + [4])
    lines += [f"  {k:<{width}}  {tuple(v['shape'])!s:<16} {v['dtype']}" for k, v in sorted(d["keys"].items())]
    return "\n".join(lines)


def _unreadable(store: EpisodeStore) -> dict[int, list[str]]:
    """Episodes whose data cannot be read back intact, with why; reads every committed chunk."""
    bad: dict[int, list[str]] = {}
    ends = store.episode_ends
    starts = np.concatenate([[0], ends[:-1]])
    for key, files in missing_chunk_files(store).items():
        arr = store._arrays[key]
        per_file = int((arr.shards or arr.chunks)[0])
        for name in files:
            t0 = int(name.split("/c/")[1].split("/")[0]) * per_file
            hit = np.flatnonzero((starts < t0 + per_file) & (ends > t0))
            for j in hit:
                bad.setdefault(int(j), []).append(f"chunk file {name} is missing (would read as zeros)")
    for i in range(len(store)):
        sl = store.episode_slice(i)
        for key in store.keys:
            try:
                store.read(key, sl.start, sl.stop)
            except StoreError as e:
                bad.setdefault(i, []).append(str(e))
    return bad


def validate(path: str | os.PathLike[str]) -> list[str]:
    """Problems found in a store (empty = OK); reads every committed chunk, so it takes a full pass."""
    p = Path(path)
    if _interrupted_swap(p):
        return [f"{p}: a rewrite (delete/merge) was interrupted between its renames: run repair to finish it"]
    try:
        snap = _inspect(p)
    except StoreError as e:
        return [str(e)]
    problems = [_problem_text(p, snap)] if snap.problems or snap.short else []
    leftovers = []
    if snap.stored_ends > len(snap.ends) or snap.stored_episodes > len(snap.ends):
        leftovers.append("an uncommitted episode_ends entry or metadata")
    if snap.uncommitted_steps:
        leftovers.append(f"{snap.uncommitted_steps} uncommitted steps")
    if snap.leftovers:
        leftovers.append(f"arrays {snap.leftovers} of a first episode that never committed")
    if snap.partial_files:
        leftovers.append(f"{len(snap.partial_files)} temp files of interrupted writes")
    for tag in (_NEW, _OLD):
        if _sibling(p, tag).exists():
            leftovers.append(f"the directory {_sibling(p, tag).name} of an interrupted rewrite")
    if leftovers:
        problems.append(
            f"{p}: a killed writer left " + ", ".join(leftovers) + "; committed episodes are unaffected: "
            "run repair (or open the store with mode='a') to clean up"
        )
    if not (snap.problems or snap.short):
        with EpisodeStore.open(p, "r") as store:
            for i, why in sorted(_unreadable(store).items()):
                problems += [f"episode {i}: {w}" for w in why]
    return problems


def repair(path: str | os.PathLike[str]) -> list[str]:
    """Fix what a crash or lost chunks can leave; returns what it did, raises StoreError for what it cannot fix.

    Fixes: an interrupted rewrite, uncommitted tails, temp files, trailing episodes whose arrays are
    short or whose chunks are unreadable (they are dropped). Refuses: anything else, and unreadable
    episodes followed by readable ones (delete those explicitly, see the message).
    """
    p = Path(path)
    fixed = _finish_swap(p) if _interrupted_swap(p) else []
    snap = _inspect(p)
    if snap.problems:
        raise StoreError("repair cannot fix this; restore the store from a backup:\n  " + "\n  ".join(snap.problems))
    if snap.short:
        keep = int(np.searchsorted(snap.ends, min(snap.short.values()), side="right"))
        dropped = drop_trailing_episodes(p, keep)
        fixed.append(f"dropped the last {dropped} episodes, whose arrays were cut short ({snap.short})")
    with EpisodeStore.open(p, "a") as store:
        fixed += store.recovery
        bad = _unreadable(store)
        n = len(store)
    if bad:
        first = min(bad)
        if sorted(bad) != list(range(first, n)):
            raise StoreError(
                f"{p}: episodes {sorted(bad)} are unreadable but later episodes are fine, so repair will not "
                f"drop them; remove them with EpisodeStore.open({str(p)!r}, 'a').delete_episodes({sorted(bad)})"
            )
        drop_trailing_episodes(p, first)
        with EpisodeStore.open(p, "a") as store:
            fixed.append(f"dropped the last {n - first} episodes (from {first} on): their chunks are unreadable")
            fixed += store.recovery
    left = validate(p)
    if left:
        raise StoreError(f"{p}: repair left problems it cannot fix:\n  " + "\n  ".join(left))
    return fixed
