"""Crash-safe episode store on zarr v3, laid out like diffusion_policy's ReplayBuffer."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import math
import os
import re
import shutil
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from robot.core.errors import StoreError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Layout version written to the root attrs; open() refuses any other."""
FORMAT = "realrl.episode_store"
"""Root attr `format`: tells an episode store apart from any other zarr group."""
SOURCES = ("expert", "teleop", "policy", "intervention")
"""Allowed per-episode `source` values ("" = unknown)."""
LOWDIM_CHUNK_BYTES = 1 << 20
"""Low-dim arrays get chunks of at least this many bytes along time."""
IMAGE_SHARD_FRAMES = 256
"""Frames per image shard (each frame is its own chunk inside the shard)."""
IMAGE_SHARD_MAX_BYTES = 64 << 20
"""Cap on raw bytes per image shard, so appending to a partly filled shard stays cheap for large frames."""

_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$")
_NEW, _OLD = ".realrl-new", ".realrl-old"
_ENDS = "meta/episode_ends"


@dataclass(frozen=True)
class KeySpec:
    """Per-step shape and dtype of one stored key."""

    shape: tuple[int, ...]
    """Shape of one step (the array is (T, *shape))."""
    dtype: str
    """numpy dtype name, e.g. 'float32'."""

    @property
    def is_image(self) -> bool:
        """uint8 (H, W, C) frames are stored one chunk per frame inside shards."""
        return self.dtype == "uint8" and len(self.shape) == 3

    def to_json(self) -> dict[str, Any]:
        """JSON form kept in the root attrs."""
        return {"shape": list(self.shape), "dtype": self.dtype}


def _layout(spec: KeySpec) -> tuple[tuple[int, ...], tuple[int, ...] | None, list[Any]]:
    """(chunks, shards, compressors) for one key; Crc32c last so a truncated or flipped chunk fails to read."""
    step_bytes = max(1, int(np.dtype(spec.dtype).itemsize * math.prod(spec.shape)))
    if spec.is_image:
        frames = max(1, min(IMAGE_SHARD_FRAMES, IMAGE_SHARD_MAX_BYTES // step_bytes))
        # Lossless: recorded pixels must read back exactly; bitshuffle helps natural images even at typesize 1.
        codec = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
        return (1, *spec.shape), (frames, *spec.shape), [codec, Crc32cCodec()]
    length = max(1, math.ceil(LOWDIM_CHUNK_BYTES / step_bytes))
    codec = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")
    return (length, *spec.shape), None, [codec, Crc32cCodec()]


def _prepare(steps: dict[str, Any]) -> tuple[int, dict[str, np.ndarray]]:
    """Validate one episode's arrays and apply the storage dtypes; returns (T, arrays)."""
    if not isinstance(steps, dict) or not steps:
        raise StoreError("an episode needs a non-empty dict {key: array (T, ...)}")
    out: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    for key in sorted(steps):
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise StoreError(
                f"invalid key {key!r}: use path components of letters, digits, '_', '-', '.' separated by '/'"
            )
        a = np.asarray(steps[key])
        if a.ndim == 0:
            raise StoreError(f"key {key!r}: expected an array with a leading time dimension, got a scalar")
        if a.dtype.kind not in "biuf":
            raise StoreError(f"key {key!r}: dtype {a.dtype} cannot be stored; use bool, integer or float arrays")
        if a.dtype == np.float64 and not key.startswith("time/"):
            # Low-dim data is float32 for training; wall-clock stamps need float64 precision.
            a = a.astype(np.float32)
        out[key] = np.ascontiguousarray(a)
        lengths[key] = a.shape[0]
    if len(set(lengths.values())) != 1:
        raise StoreError(f"all arrays of an episode must share the time dimension; got lengths {lengths}")
    t = next(iter(lengths.values()))
    if t < 1:
        raise StoreError("an episode needs at least one step (T >= 1)")
    names = sorted(out)
    for parent, child in itertools.pairwise(names):
        if child.startswith(parent + "/"):
            raise StoreError(
                f"key {parent!r} is a prefix of key {child!r}; an array cannot also be a group: rename one"
            )
    return t, out


def _schema_of(arrays: dict[str, np.ndarray]) -> dict[str, KeySpec]:
    return {k: KeySpec(tuple(int(s) for s in a.shape[1:]), a.dtype.name) for k, a in arrays.items()}


def _schema_diff(schema: dict[str, KeySpec], arrays: dict[str, np.ndarray]) -> list[str]:
    """Why an episode does not fit a store's fixed keys (empty when it fits)."""
    new = _schema_of(arrays)
    diffs = [f"key {k!r} is not in the store (store keys: {sorted(schema)})" for k in sorted(set(new) - set(schema))]
    diffs += [f"key {k!r} is missing from the episode" for k in sorted(set(schema) - set(new))]
    for k in sorted(set(new) & set(schema)):
        if new[k].shape != schema[k].shape:
            diffs.append(f"key {k!r}: step shape {new[k].shape} differs from the store's {schema[k].shape}")
        if new[k].dtype != schema[k].dtype:
            diffs.append(f"key {k!r}: dtype {new[k].dtype} differs from the store's {schema[k].dtype}")
    return diffs


def _json_safe(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as e:
        raise StoreError(f"{what} must be JSON-serializable (str, numbers, bools, lists, dicts): {e}") from e


# ---------------------------------------------------------------- reading what is on disk


def _read_json(p: Path) -> dict[str, Any] | None:
    try:
        with p.open("rb") as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _list_arrays(root: Path) -> dict[str, Path]:
    """Arrays under data/, by key, found by walking the directories (zarr's listing warns on stray files)."""
    found: dict[str, Path] = {}
    base = root / "data"
    for dirpath, dirnames, _ in os.walk(base):
        d = Path(dirpath)
        if d == base:
            continue
        meta = _read_json(d / "zarr.json")
        if meta is not None and meta.get("node_type") == "array":
            found[d.relative_to(base).as_posix()] = d
            dirnames[:] = []  # chunk directories below
    return found


def _partial_files(root: Path) -> list[Path]:
    """Temp files LocalStore leaves behind when a write is killed before its rename."""
    return sorted(Path(dp) / f for dp, _, fs in os.walk(root) for f in fs if f.endswith(".partial"))


@dataclass
class _Snapshot:
    """What a read-only look at a store found; `problems` are inconsistencies open() refuses."""

    attrs: dict[str, Any]
    ends: np.ndarray
    stored_ends: int
    episodes: list[dict[str, Any]]
    stored_episodes: int
    schema: dict[str, KeySpec]
    lengths: dict[str, int] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    partial_files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    short: dict[str, int] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    @property
    def uncommitted_steps(self) -> int:
        return max([0, *(n - self.n_steps for n in self.lengths.values())])


def _identify(path: Path) -> dict[str, Any]:
    """Root attrs of the store at path, or StoreError saying why it is not one this code can read."""
    if not path.exists():
        raise StoreError(f"no episode store at {path}: create one with EpisodeStore.create({str(path)!r}, fps=...)")
    if not path.is_dir():
        raise StoreError(f"{path} is a file, not an episode store directory")
    root = _read_json(path / "zarr.json")
    if root is None or root.get("node_type") != "group":
        raise StoreError(f"{path} is not an episode store (no zarr v3 group metadata): check the path")
    attrs = root.get("attributes") or {}
    if attrs.get("format") != FORMAT:
        raise StoreError(f"{path} is a zarr group but not a realrl episode store (attr format != {FORMAT!r})")
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema_version {version!r}; this realrl reads version {SCHEMA_VERSION}: "
            "use the realrl release that wrote it, or convert the store"
        )
    fps = attrs.get("fps")
    if not isinstance(fps, int | float) or not fps > 0:
        raise StoreError(f"{path}: root attr fps is {fps!r}, not a positive number; the store is damaged")
    return attrs


def _committed(raw: np.ndarray, path: Path) -> tuple[np.ndarray, list[str]]:
    """Committed prefix of a stored episode_ends: trailing zeros are a torn or undone commit, not episodes."""
    zeros = np.flatnonzero(raw == 0)
    n = int(zeros[0]) if len(zeros) else len(raw)
    problems = []
    if np.any(raw[n:] != 0):
        problems.append(f"{path}: meta/episode_ends has non-zero entries after a zero entry: {raw.tolist()}")
    ends = raw[:n]
    if n and (ends[0] <= 0 or np.any(np.diff(ends) <= 0)):
        problems.append(f"{path}: meta/episode_ends is not strictly increasing and positive: {ends.tolist()}")
    return ends, problems


def _inspect(path: Path) -> _Snapshot:
    """Read-only consistency check; episode_ends is read first so a concurrent writer is never seen half-done."""
    _identify(path)
    zstore = zarr.storage.LocalStore(path, read_only=True)
    try:
        ends_arr = zarr.open_array(zstore, path=_ENDS, mode="r")
    except Exception as e:
        raise StoreError(f"{path}: {_ENDS} is missing or unreadable ({e!r}); the store is damaged: restore it") from e
    if ends_arr.ndim != 1 or ends_arr.dtype != np.int64:
        raise StoreError(f"{path}: {_ENDS} must be a 1-D int64 array, found {ends_arr.dtype} {ends_arr.shape}")
    try:
        raw = np.asarray(ends_arr[:], dtype=np.int64)
    except Exception as e:
        raise StoreError(f"{path}: {_ENDS} chunk is corrupt ({e}); the store cannot be read: restore it") from e
    ends, problems = _committed(raw, path)
    n = len(ends)
    per_chunk = int(ends_arr.chunks[0])
    missing = [i for i in range(math.ceil(len(raw) / per_chunk)) if not (path / _ENDS / "c" / str(i)).is_file()]
    # Only a commit torn right after its resize may lack its chunk file (when it opened a new chunk).
    torn = (len(raw) - 1) // per_chunk if len(raw) and (len(raw) - 1) % per_chunk == 0 else None
    if [i for i in missing if i != torn]:
        problems.append(f"{path}: {_ENDS} chunk files {missing} are missing; the store is damaged: restore it")

    attrs = _identify(path)  # again, after episode_ends: keys may have been fixed since the first read
    meta = _read_json(path / "meta" / "zarr.json") or {}
    episodes = (meta.get("attributes") or {}).get("episodes")
    if not isinstance(episodes, list):
        raise StoreError(f"{path}: meta attrs lack the 'episodes' list; the store is damaged: restore it")
    if len(episodes) < n:
        problems.append(f"{path}: {n} committed episodes but metadata for only {len(episodes)}")
    keys_attr = attrs.get("keys")
    if not isinstance(keys_attr, dict):
        raise StoreError(f"{path}: root attrs lack the 'keys' dict; the store is damaged: restore it")
    try:
        schema = {k: KeySpec(tuple(int(s) for s in v["shape"]), str(v["dtype"])) for k, v in keys_attr.items()}
    except (KeyError, TypeError, ValueError) as e:
        raise StoreError(f"{path}: malformed 'keys' attr ({e!r}); the store is damaged: restore it") from e

    snap = _Snapshot(attrs, ends, len(raw), episodes[:n], len(episodes), schema if n else {}, problems=problems)
    snap.partial_files = _partial_files(path)
    found = _list_arrays(path)
    if n == 0:
        # Nothing committed: whatever a killed first append left in data/ holds no episode.
        snap.leftovers = sorted(found)
        return snap
    if not schema:
        problems.append(f"{path}: {n} committed episodes but no keys recorded in the root attrs")
    for key, spec in schema.items():
        if key not in found:
            problems.append(f"{path}: array data/{key} is missing (deleted?); restore it or rebuild the store")
            continue
        try:
            arr = zarr.open_array(zstore, path=f"data/{key}", mode="r")
        except Exception as e:
            problems.append(f"{path}: array data/{key} metadata is unreadable ({e!r}); restore it")
            continue
        if arr.dtype.name != spec.dtype:
            problems.append(f"{path}: data/{key} has dtype {arr.dtype.name} but the store records {spec.dtype}")
        if tuple(arr.shape[1:]) != spec.shape:
            problems.append(f"{path}: data/{key} has step shape {arr.shape[1:]} but the store records {spec.shape}")
        snap.lengths[key] = int(arr.shape[0])
        if arr.shape[0] < snap.n_steps:
            snap.short[key] = int(arr.shape[0])
    for key in sorted(set(found) - set(schema)):
        problems.append(f"{path}: unexpected array data/{key} (not one of the store's keys); move it out of the store")
    return snap


def _short_message(path: Path, snap: _Snapshot) -> str:
    parts = ", ".join(f"data/{k} has {v}" for k, v in sorted(snap.short.items()))
    return (
        f"{path}: arrays shorter than the {snap.n_steps} committed steps ({parts}): data was lost after commit; "
        "run `realrl data repair` to drop the episodes past the shortest array"
    )


# ---------------------------------------------------------------- directory swaps (create, delete, merge)


def _sibling(path: Path, tag: str) -> Path:
    return path.with_name(path.name + tag)


def _interrupted_swap(path: Path) -> bool:
    """A rewrite died between its two renames: the old store is at .realrl-old, the complete new one at -new."""
    return not path.exists() and _sibling(path, _OLD).is_dir() and _sibling(path, _NEW).is_dir()


def _finish_swap(path: Path) -> list[str]:
    """Complete or clean up an interrupted rewrite; returns what it did."""
    new, old = _sibling(path, _NEW), _sibling(path, _OLD)
    done = []
    if _interrupted_swap(path):
        # The old store is renamed away only after the new one is complete, so the new one wins.
        os.rename(new, path)
        done.append(f"finished an interrupted rewrite of {path} (moved {new.name} into place)")
    if path.exists() and old.exists():
        shutil.rmtree(old)
        done.append(f"removed the replaced store {old.name}")
    if path.exists() and new.exists():
        shutil.rmtree(new)
        done.append(f"removed the unfinished rewrite {new.name}")
    return done


def _swap_in(path: Path, new: Path) -> None:
    """Put the complete store `new` at `path`; a crash leaves the old or the new store (see _finish_swap)."""
    old = _sibling(path, _OLD)
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.rename(path, old)
    os.rename(new, path)
    if old.exists():
        shutil.rmtree(old)


def _init_store(path: Path, *, fps: float, spec: dict[str, Any] | None, env_id: str) -> None:
    attrs: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "fps": float(fps),
        "env_id": env_id,
        "spec": spec,
        "keys": {},
    }
    root = zarr.open_group(zarr.storage.LocalStore(path), mode="w-", attributes=attrs)
    meta = root.create_group("meta", attributes={"episodes": []})
    meta.create_array("episode_ends", shape=(0,), chunks=(LOWDIM_CHUNK_BYTES // 8,), dtype="int64", fill_value=0)
    root.create_group("data")


def _lock(path: Path) -> int:
    """flock on the store directory: one writer at a time; the kernel drops it when a writer dies."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise StoreError(f"{path} is open for writing by another process; close that writer first") from e
    return fd


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


# ---------------------------------------------------------------- the store


class EpisodeStore:
    """Episodes of per-step arrays in one zarr v3 directory; one writer, any number of readers.

    Layout: `data/<key>` arrays concatenated along time (a key's slashes are nested groups, so
    "state/joint_pos" is data/state/joint_pos), `meta/episode_ends` (int64, cumulative), per-episode
    metadata in the `meta` group attrs, and root attrs `format`, `schema_version`, `fps`, `env_id`,
    `spec` (EmbodimentSpec.to_dict()) and `keys` (per-step shape and dtype). An append writes the data
    arrays, then the metadata, then `episode_ends`: only the last write commits an episode.
    Build one with `create` or `open`.
    """

    def __init__(self, path: Path, mode: Literal["r", "a"], snap: _Snapshot, lock_fd: int | None) -> None:
        self.path = path
        self.mode = mode
        self.recovered_steps = 0
        """Uncommitted steps (a killed writer's open episode) truncated when this store was opened."""
        self.recovery: list[str] = []
        """What opening in mode 'a' fixed, one line each."""
        self._lock_fd = lock_fd
        self._finalizer = weakref.finalize(self, _unlock, lock_fd) if lock_fd is not None else None
        self._after_write: Callable[[str], None] | None = None  # crash tests stall here to land kills mid-append
        self._load(snap)

    # ------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        fps: float,
        spec: dict[str, Any] | None = None,
        env_id: str = "",
        overwrite: bool = False,
    ) -> EpisodeStore:
        """Make an empty store (built next to `path`, then renamed in) and open it for appending."""
        p = Path(path)
        if not fps > 0:
            raise StoreError(f"fps must be > 0, got {fps}")
        spec = _json_safe(spec, "spec") if spec is not None else None
        if _interrupted_swap(p):
            raise StoreError(f"{p} has an interrupted rewrite pending: open it with mode='a' or run repair first")
        if p.exists() and not overwrite:
            raise StoreError(f"{p} already exists: open it with EpisodeStore.open, or pass overwrite=True")
        if p.exists() and not (p.is_dir() and not any(p.iterdir())):
            _identify(p)  # overwrite replaces an episode store or an empty directory, never anything else
        fd = _lock(p) if p.exists() else None  # never replace a store under a live writer
        try:
            new = _sibling(p, _NEW)
            if new.exists():
                shutil.rmtree(new)
            _init_store(new, fps=fps, spec=spec, env_id=env_id)
            _swap_in(p, new)
        finally:
            if fd is not None:
                _unlock(fd)
        return cls.open(p, "a")

    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: Literal["r", "a"] = "r") -> EpisodeStore:
        """Open a store. Mode 'r' never writes and shows only committed episodes. Mode 'a' takes the
        writer lock and truncates what a killed writer left uncommitted (see `recovered_steps`)."""
        if mode not in ("r", "a"):
            raise StoreError(f"mode must be 'r' or 'a', got {mode!r}")
        p = Path(path)
        if mode == "r":
            if _interrupted_swap(p):
                raise StoreError(f"{p} has an interrupted rewrite pending: open it with mode='a' or run repair")
            snap = _inspect(p)
            if snap.problems or snap.short:
                raise StoreError(_problem_text(p, snap))
            return cls(p, "r", snap, None)
        # A rewrite that died between its renames is finished first: its new store is complete.
        done = _finish_swap(p) if _interrupted_swap(p) else []
        _identify(p)
        fd = _lock(p)
        try:
            snap = _inspect(p)
            if snap.problems or snap.short:
                raise StoreError(_problem_text(p, snap))
            done += _finish_swap(p)  # under the lock, so a live writer's rewrite is never touched
            store = cls(p, "a", snap, fd)
        except BaseException:
            _unlock(fd)
            raise
        store._recover(snap, done)
        return store

    def _load(self, snap: _Snapshot) -> None:
        a = snap.attrs
        self.fps = float(a["fps"])
        """Control rate the episodes were recorded at (Hz)."""
        self.env_id: str = str(a.get("env_id", ""))
        """Env id the episodes came from ('' if unknown)."""
        self.spec: dict[str, Any] | None = a.get("spec")
        """EmbodimentSpec.to_dict() of the robot, or None."""
        self._ends = np.array(snap.ends, dtype=np.int64)
        self._episodes = [dict(e) for e in snap.episodes]
        self._schema = dict(snap.schema)
        self._zstore = zarr.storage.LocalStore(self.path, read_only=self.mode == "r")
        self._arrays = {k: self._open_array(k) for k in self._schema}

    def _open_array(self, key: str) -> zarr.Array:
        arr = zarr.open_array(self._zstore, path=f"data/{key}", mode="r" if self.mode == "r" else "r+")
        # Every chunk on disk, even all-zero ones, so validate can tell a deleted chunk file from zeros.
        return arr.with_config({"write_empty_chunks": True})

    def _recover(self, snap: _Snapshot, done: list[str]) -> None:
        """Undo what a killed writer left beyond the last commit; every step here is safe to repeat."""
        n = len(snap.ends)
        if snap.stored_ends > n:
            self._ends_array().resize((n,))
            done.append(f"dropped {snap.stored_ends - n} uncommitted episode_ends entries")
        if n == 0:
            for key in snap.leftovers:
                shutil.rmtree(self.path / "data" / key)
            if snap.leftovers:
                done.append(f"removed arrays {snap.leftovers} left by a first append that never committed")
            if snap.attrs.get("keys"):
                self._root().attrs.update({"keys": {}})
        for key, length in snap.lengths.items():
            if length > snap.n_steps:
                self._arrays[key].resize((snap.n_steps, *self._schema[key].shape))
        self.recovered_steps = snap.uncommitted_steps
        if self.recovered_steps:
            done.append(f"truncated {self.recovered_steps} uncommitted steps (an unfinished append)")
        if snap.stored_episodes > n:
            self._meta_group().attrs.update({"episodes": self._episodes})
            done.append(f"dropped metadata of {snap.stored_episodes - n} uncommitted episodes")
        for f in snap.partial_files:
            f.unlink(missing_ok=True)
        if snap.partial_files:
            done.append(f"removed {len(snap.partial_files)} temp files of interrupted writes")
        self.recovery = done
        if done:
            logger.warning("recovered episode store %s: %s", self.path, "; ".join(done))

    def refresh(self) -> None:
        """Re-read the committed state (a reader following a live writer)."""
        if self.mode != "r":
            return
        snap = _inspect(self.path)
        if snap.problems or snap.short:
            raise StoreError(_problem_text(self.path, snap))
        self._load(snap)

    @property
    def holds_writer_lock(self) -> bool:
        """Whether this handle is the store's one writer right now."""
        return self.mode == "a" and self._lock_fd is not None

    def release_writer(self) -> None:
        """Hand the writer lock to another process (e.g. a recorder's writer); this handle stays readable through
        `follow()` and cannot write until `reacquire_writer()`."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer, self._lock_fd = None, None

    def follow(self) -> None:
        """Re-read the committed state written by the process that holds the writer lock."""
        snap = _inspect(self.path)
        if snap.problems or snap.short:
            raise StoreError(_problem_text(self.path, snap))
        self._load(snap)

    def reacquire_writer(self) -> None:
        """Take the writer lock back after release_writer(), as open(mode='a') would: steps a killed writer left
        past the last commit are truncated."""
        if self.mode != "a":
            raise StoreError(f"{self.path} was opened read-only; it has no writer lock to take back")
        fd = _lock(self.path)
        try:
            snap = _inspect(self.path)
            if snap.problems or snap.short:
                raise StoreError(_problem_text(self.path, snap))
        except BaseException:
            _unlock(fd)
            raise
        self._lock_fd = fd
        self._finalizer = weakref.finalize(self, _unlock, fd)
        self._load(snap)
        self._recover(snap, [])

    def close(self) -> None:
        """Release the writer lock; the store object must not be used afterwards."""
        if self._finalizer is not None:
            self._finalizer()
        self._lock_fd = None

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, mode={self.mode!r}, episodes={len(self)}, steps={self.n_steps})"

    # ------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._ends)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            yield self.episode(i)

    @property
    def n_steps(self) -> int:
        """Committed steps over all episodes."""
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def keys(self) -> tuple[str, ...]:
        """Stored keys, sorted (empty until the first episode fixes them)."""
        return tuple(sorted(self._schema))

    @property
    def schema(self) -> dict[str, KeySpec]:
        """Per-step shape and dtype of every key."""
        return dict(self._schema)

    @property
    def episode_ends(self) -> np.ndarray:
        """Cumulative committed episode ends (a copy)."""
        return self._ends.copy()

    def _index(self, i: int) -> int:
        n = len(self)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"episode {i} out of range for a store of {n} episodes")
        return j

    def episode_slice(self, i: int) -> slice:
        """Steps of episode i in the concatenated arrays."""
        j = self._index(i)
        return slice(int(self._ends[j - 1]) if j else 0, int(self._ends[j]))

    def episode_meta(self, i: int) -> dict[str, Any]:
        """task, success, source, operator, meta, length, wall_time of episode i (a copy)."""
        return json.loads(json.dumps(self._episodes[self._index(i)]))

    def episode(self, i: int, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Arrays of episode i (all keys, or the given ones)."""
        sl = self.episode_slice(i)
        return {k: self.read(k, sl.start, sl.stop) for k in (self.keys if keys is None else keys)}

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Steps [start, stop) of one key, within the committed range."""
        if key not in self._schema:
            raise StoreError(f"{self.path}: no key {key!r}; stored keys: {list(self.keys)}")
        if not 0 <= start <= stop <= self.n_steps:
            raise StoreError(f"{self.path}: steps [{start}, {stop}) are outside the {self.n_steps} committed steps")
        try:
            return np.asarray(self._arrays[key][start:stop])
        except Exception as e:
            if self.mode == "r":
                # A reader beside a live writer may catch a shard between its two reads: look again once.
                with contextlib.suppress(Exception):
                    self._arrays[key] = self._open_array(key)
                    return np.asarray(self._arrays[key][start:stop])
            raise StoreError(
                f"{self.path}: reading data/{key}[{start}:{stop}] failed ({e}): a chunk file is truncated or "
                f"corrupt; run `realrl data validate {self.path}` and then `realrl data repair`"
            ) from e

    # ------------------------------------------------------------ writing

    def _need_writer(self) -> None:
        if self.mode != "a" or self._lock_fd is None:
            raise StoreError(f"{self.path} is open read-only (or closed): open it with mode='a' to write")

    def _root(self) -> zarr.Group:
        return zarr.open_group(self._zstore, mode="r+")

    def _meta_group(self) -> zarr.Group:
        return zarr.open_group(self._zstore, path="meta", mode="r+")

    def _ends_array(self) -> zarr.Array:
        arr = zarr.open_array(self._zstore, path=_ENDS, mode="r+")
        return arr.with_config({"write_empty_chunks": True})

    def append_episode(
        self,
        steps: dict[str, np.ndarray],
        *,
        task: str = "",
        success: bool = False,
        source: str = "",
        operator: str = "",
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Append and commit one episode; returns its index.

        All arrays share the leading time dimension T >= 1. float64 becomes float32 except time/* stamps.
        The first episode fixes keys, step shapes and dtypes; a later mismatch raises StoreError before
        anything is written.
        """
        if source not in ("", *SOURCES):
            raise StoreError(f"source {source!r} is not one of {SOURCES} (or '' for unknown)")
        entry = {
            "task": str(task),
            "success": bool(success),
            "source": source,
            "operator": str(operator),
            "meta": _json_safe(dict(meta or {}), "meta"),
            "wall_time": time.time(),
        }
        t, arrays = _prepare(steps)
        entry["length"] = t
        return self._append(arrays, entry)

    def _append(self, arrays: dict[str, np.ndarray], entry: dict[str, Any]) -> int:
        self._need_writer()
        if self._schema:
            diffs = _schema_diff(self._schema, arrays)
            if diffs:
                raise StoreError(f"{self.path}: episode does not match the store: " + "; ".join(diffs))
        n, start = len(self), self.n_steps
        stop = start + int(entry["length"])
        try:
            if not self._schema:
                self._fix_schema(_schema_of(arrays))
            for key in sorted(arrays):
                arr = self._arrays[key]
                arr.resize((stop, *self._schema[key].shape))
                arr[start:stop] = arrays[key]
                if self._after_write is not None:
                    self._after_write(key)
            self._meta_group().attrs.update({"episodes": [*self._episodes, entry]})
            ends = self._ends_array()
            ends.resize((n + 1,))
            if self._after_write is not None:
                self._after_write(_ENDS)
            ends[n] = stop  # the commit: one atomic chunk-file replace
        except Exception as e:
            raise StoreError(
                f"{self.path}: writing episode {n} failed ({e!r}); committed episodes are intact and the "
                "partial one is dropped when the store is next opened with mode='a'"
            ) from e
        self._ends = np.append(self._ends, np.int64(stop))
        self._episodes.append(entry)
        return n

    def _fix_schema(self, schema: dict[str, KeySpec]) -> None:
        """First append: record the keys, then make the (empty) arrays."""
        self._root().attrs.update({"keys": {k: s.to_json() for k, s in schema.items()}})
        data = zarr.open_group(self._zstore, path="data", mode="r+")
        for key, spec in sorted(schema.items()):
            chunks, shards, compressors = _layout(spec)
            data.create_array(
                key,
                shape=(0, *spec.shape),
                dtype=spec.dtype,
                chunks=chunks,
                shards=shards,
                compressors=compressors,
                fill_value=0,
                overwrite=True,
            )
        self._schema = dict(schema)
        self._arrays = {k: self._open_array(k) for k in schema}

    def delete_episode(self, i: int) -> None:
        """Remove episode i by rewriting the store next to it and swapping directories."""
        self.delete_episodes([i])

    def delete_episodes(self, indices: Iterable[int]) -> None:
        """Remove several episodes in one rewrite (they must be readable: the others are copied)."""
        self._need_writer()
        drop = {self._index(i) for i in indices}
        keep = [j for j in range(len(self)) if j not in drop]

        def fill(out: EpisodeStore) -> None:
            for j in keep:
                out._append(self.episode(j), self._episodes[j])

        self._rewrite(self.path, fps=self.fps, spec=self.spec, env_id=self.env_id, fill=fill, replacing=self)

    @classmethod
    def _rewrite(
        cls,
        path: Path,
        *,
        fps: float,
        spec: dict[str, Any] | None,
        env_id: str,
        fill: Callable[[EpisodeStore], None],
        replacing: EpisodeStore | None = None,
    ) -> None:
        """Build a store at path.realrl-new, then swap it in (see _finish_swap for the crash cases)."""
        new = _sibling(path, _NEW)
        if new.exists():
            shutil.rmtree(new)
        _init_store(new, fps=fps, spec=spec, env_id=env_id)
        with cls.open(new, "a") as out:
            fill(out)
        if replacing is not None:
            replacing.close()
        _swap_in(path, new)
        if replacing is not None:
            # Rebind in place so callers keep using the same object.
            fd = _lock(path)
            replacing._lock_fd = fd
            replacing._finalizer = weakref.finalize(replacing, _unlock, fd)
            replacing._load(_inspect(path))

    @classmethod
    def merge(
        cls, sources: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, overwrite: bool = False
    ) -> EpisodeStore:
        """Concatenate stores with the same fps, spec, env id and keys into a new store; returns it opened 'r'.

        Each episode's metadata gains `origin` = {"store": source path, "episode": index}.
        """
        if not sources:
            raise StoreError("merge needs at least one source store")
        dest = Path(out)
        srcs = [cls.open(s, "r") for s in sources]
        if any(s.path.resolve() == dest.resolve() for s in srcs):
            raise StoreError(f"merge output {dest} is also a source; write to a new path")
        if dest.exists() and not overwrite:
            raise StoreError(f"{dest} already exists: pass overwrite=True or choose another path")
        first = srcs[0]
        schema: dict[str, KeySpec] = {}
        for s in srcs:
            for what in ("fps", "spec", "env_id"):
                a, b = getattr(s, what), getattr(first, what)
                if a != b:
                    raise StoreError(f"cannot merge {s.path} with {first.path}: {what} differs ({a!r} vs {b!r})")
            if s._schema and schema and s._schema != schema:
                raise StoreError(f"cannot merge {s.path}: its keys/shapes/dtypes differ from the other sources'")
            schema = schema or s._schema

        def fill(store: EpisodeStore) -> None:
            for s in srcs:
                for j in range(len(s)):
                    entry = s.episode_meta(j)
                    entry["meta"] = {**entry["meta"], "origin": {"store": str(s.path), "episode": j}}
                    store._append(s.episode(j), entry)

        cls._rewrite(dest, fps=first.fps, spec=first.spec, env_id=first.env_id, fill=fill)
        return cls.open(dest, "r")


def missing_chunk_files(store: EpisodeStore) -> dict[str, list[str]]:
    """Chunk (or shard) files that the committed steps need but that are not on disk, by key.

    zarr reads a missing chunk as zeros, so only this check tells a deleted chunk file from real zeros.
    """
    out: dict[str, list[str]] = {}
    for key, spec in store.schema.items():
        arr = store._arrays[key]
        per_file = int((arr.shards or arr.chunks)[0])
        tail = "/0" * len(spec.shape)
        names = [f"data/{key}/c/{i}{tail}" for i in range(math.ceil(store.n_steps / per_file))]
        gone = [n for n in names if not (store.path / n).is_file()]
        if gone:
            out[key] = gone
    return out


def _problem_text(path: Path, snap: _Snapshot) -> str:
    lines = list(snap.problems)
    if snap.short:
        lines.append(_short_message(path, snap))
    return "inconsistent episode store:\n  " + "\n  ".join(lines)


def drop_trailing_episodes(path: str | os.PathLike[str], keep: int) -> int:
    """Uncommit every episode from index `keep` on, directly on disk (repair's tool when open() refuses).

    Zeroes the dropped episode_ends entries first (one chunk write: the episodes vanish at once), then
    shrinks the arrays on the next open in mode 'a'. Returns how many episodes were dropped.
    """
    p = Path(path)
    fd = _lock(p)
    try:
        zstore = zarr.storage.LocalStore(p)
        ends = zarr.open_array(zstore, path=_ENDS, mode="r+").with_config({"write_empty_chunks": True})
        raw = np.asarray(ends[:], dtype=np.int64)
        committed, _ = _committed(raw, p)
        n = len(committed)
        if not 0 <= keep <= n:
            raise StoreError(f"{p}: cannot keep {keep} of {n} episodes")
        if keep < len(raw):
            # Zero before shrinking: a later torn commit must never find a stale, plausible end here.
            ends[keep:] = 0
            ends.resize((keep,))
        meta = zarr.open_group(zstore, path="meta", mode="r+")
        episodes = meta.attrs.asdict().get("episodes")
        meta.attrs.update({"episodes": list(episodes)[:keep] if isinstance(episodes, list) else []})
        return n - keep
    finally:
        _unlock(fd)
