"""LeRobotDataset v3.0 / v2.1 export and import for episode stores: parquet via pyarrow, mp4 via PyAV."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from data.convert.outputs import check_new_output
from data.store import EpisodeStore, KeySpec
from robot.core.errors import ConfigError, RealrlError, StoreError

logger = logging.getLogger(__name__)

Version = Literal["v3.0", "v2.1"]
WRITE_VERSIONS: tuple[str, ...] = ("v3.0", "v2.1")
"""codebase_version values export_lerobot writes."""
READ_VERSIONS: tuple[str, ...] = ("v3.0", "v2.1", "v2.0")
"""codebase_version values import_lerobot reads (v2.0 shares v2.1's file layout)."""
CHUNKS_SIZE = 1000
"""Files (v3.0) or episodes (v2.1) per chunk directory, as LeRobot writes them."""
V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V3_EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V21_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
IMAGE_TOLERANCE = 4.0
"""Bound on the mean absolute pixel error (0..255) of the mp4 round trip at the default crf 23.

Videos are lossy: yuv420p halves chroma resolution and maps RGB to limited-range YUV, which alone costs
about 2 on saturated colour gradients, and H.264 quantization adds a little more. The tests' smooth,
moving, strongly coloured 64x64 gradients measure about 2.7 (single pixels up to about 25 off); duller
gradients about 1.4. Use robomimic export when images must come back bit-exact.
"""
_REALRL = "realrl.lerobot"  # info.json["realrl"]["format"]: marks a dataset this module wrote
_DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
_STATE_CONCAT, _DONE, _SUCCESS = "observation.state", "next.done", "next.success"
_STATS_FRAMES = 100  # images: stats from at most this many frames per episode, like LeRobot's sampling
_STATS_SIDE = 150  # ... spatially strided down to about this many pixels a side


# ---------------------------------------------------------------- names and small helpers


def feature_name(key: str) -> str:
    """LeRobot feature name of a realrl key: image/<cam> -> observation.images.<cam>, state/<x> ->
    observation.state.<x>, reward -> next.reward, time/<x> -> realrl.time.<x>, other slashes -> dots."""
    rest = key.split("/", 1)[1].replace("/", ".") if "/" in key else ""
    if key == "reward":
        return "next.reward"
    if key.startswith("image/"):
        return f"observation.images.{rest}"
    if key.startswith("state/"):
        return f"observation.state.{rest}"
    if key.startswith("time/"):
        return f"realrl.time.{rest}"
    return key.replace("/", ".")


def store_key(name: str, dtype: str) -> str:
    """realrl key for a feature of a dataset realrl did not write (the inverse of feature_name where one exists)."""
    for prefix, to in (("observation.images.", "image/"), ("observation.image.", "image/"),
                       ("observation.state.", "state/"), ("realrl.time.", "time/")):
        if name.startswith(prefix):
            return to + name[len(prefix):]
    if name == "next.reward":
        return "reward"
    if dtype in ("video", "image"):
        return "image/" + name.removeprefix("observation.")
    if name.startswith("observation."):
        # observation.state -> state/state, observation.environment_state -> state/environment_state
        return "state/" + name[len("observation."):]
    return name


def _is_video(spec: KeySpec) -> bool:
    return spec.is_image and spec.shape[2] == 3


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _json_fps(fps: float) -> int | float:
    # LeRobot reads fps as an int; a non-integer rate is kept exact instead of being rounded.
    return int(fps) if float(fps).is_integer() else float(fps)


def _video_rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


# ---------------------------------------------------------------- arrow <-> numpy


def _to_arrow(a: np.ndarray) -> pa.Array:
    """(T, *shape) -> a column of T values: scalars, or nested fixed-size lists (LeRobot's Sequence/ArrayND)."""
    arr: pa.Array = pa.array(np.ascontiguousarray(a).reshape(-1))
    for n in reversed(a.shape[1:]):
        arr = pa.FixedSizeListArray.from_arrays(arr, int(n))
    return arr


def _from_arrow(col: pa.ChunkedArray | pa.Array, shape: tuple[int, ...], dtype: str, name: str) -> np.ndarray:
    """A parquet column back to (T, *shape); list and fixed-size-list columns are flattened level by level."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if arr.null_count:
        raise StoreError(f"column {name!r} has {arr.null_count} null values; an episode store cannot hold gaps")
    while pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        arr = arr.flatten()
    flat = arr.to_numpy(zero_copy_only=False)
    per = int(np.prod(shape)) if shape else 1
    if flat.size != n * per:
        raise StoreError(f"column {name!r}: {flat.size} values for {n} rows of shape {shape}; the file is malformed")
    return flat.reshape((n, *shape)).astype(np.dtype(dtype), copy=False)


# ---------------------------------------------------------------- statistics (stats.json, per-episode stats)


class _Stats:
    """min/max/mean/std/count of one feature, merged across episodes with Chan's parallel update."""

    def __init__(self, values: np.ndarray, frames: int) -> None:
        x = values.astype(np.float64, copy=False)  # (N, D)
        self.n, self.frames = x.shape[0], frames
        self.mean = x.mean(axis=0)
        self.m2 = ((x - self.mean) ** 2).sum(axis=0)
        self.min, self.max = x.min(axis=0), x.max(axis=0)

    def merge(self, o: _Stats) -> None:
        n = self.n + o.n
        delta = o.mean - self.mean
        self.mean = self.mean + delta * (o.n / n)
        self.m2 = self.m2 + o.m2 + delta**2 * (self.n * o.n / n)
        self.min, self.max = np.minimum(self.min, o.min), np.maximum(self.max, o.max)
        self.n, self.frames = n, self.frames + o.frames

    def to_json(self, shape: list[int]) -> dict[str, list[Any]]:
        std = np.sqrt(np.maximum(self.m2 / self.n, 0.0))
        out = {k: np.reshape(v, shape).tolist() for k, v in
               (("min", self.min), ("max", self.max), ("mean", self.mean), ("std", std))}
        return {**out, "count": [self.frames]}


def _image_stats(frames: np.ndarray) -> _Stats:
    """Per-channel stats of pixels scaled to [0, 1] (LeRobot's (3, 1, 1) image stats) from sampled frames."""
    t, h, w, _ = frames.shape
    idx = np.unique(np.linspace(0, t - 1, min(t, _STATS_FRAMES)).round().astype(int))
    step = max(1, min(h, w) // _STATS_SIDE)
    return _Stats(frames[idx, ::step, ::step].reshape(-1, 3) / 255.0, len(idx))


# ---------------------------------------------------------------- export


@dataclass(frozen=True)
class _Feature:
    """One exported column or video: its LeRobot name, the realrl key and the stored step spec."""

    name: str
    key: str
    spec: KeySpec
    video: bool

    def lerobot(self, fps: float, names: list[str] | None) -> dict[str, Any]:
        """The info.json features entry."""
        if self.video:
            h, w = (s + s % 2 for s in self.spec.shape[:2])  # yuv420p needs even sides: frames are edge-padded
            return {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                    "info": {"video.height": h, "video.width": w, "video.codec": "", "video.pix_fmt": "yuv420p",
                             "video.is_depth_map": False, "video.fps": _json_fps(fps), "video.channels": 3,
                             "has_audio": False}}
        shape = list(self.spec.shape) or [1]
        return {"dtype": self.spec.dtype, "shape": shape,
                "names": ["height", "width", "channels"] if self.spec.is_image else names}


def _plan(store: EpisodeStore, concat_state: bool) -> tuple[list[_Feature], list[_Feature]]:
    """(stored features, state features concatenated into observation.state)."""
    feats = [_Feature(feature_name(k), k, s, _is_video(s)) for k, s in sorted(store.schema.items())]
    state = [f for f in feats if concat_state and f.key.startswith("state/") and len(f.spec.shape) <= 1
             and np.dtype(f.spec.dtype).kind in "biuf"]
    taken: dict[str, str] = {}
    reserved = {*_DEFAULT_FEATURES, _DONE, _SUCCESS, *([_STATE_CONCAT] if state else [])}
    for f in feats:
        if f.name in taken or f.name in reserved:
            other = taken.get(f.name, "a column LeRobot reserves")
            raise StoreError(f"keys {f.key!r} and {other!r} both map to LeRobot feature {f.name!r}: rename one")
        taken[f.name] = f.key
    return feats, state


class _VideoWriter:
    """One mp4 being written: H.264 (or the given codec) yuv420p, frame n at pts n of time base 1/fps."""

    def __init__(self, path: Path, spec: KeySpec, fps: float, codec: str, crf: int, gop: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.frames = path, 0
        self._h, self._w = spec.shape[0], spec.shape[1]
        self._container = av.open(str(path), mode="w")
        stream = self._container.add_stream(codec, rate=_video_rate(fps))
        if not isinstance(stream, av.VideoStream):
            raise ConfigError(f"codec {codec!r} is not a video codec")
        self._stream = stream
        self._stream.width, self._stream.height = self._w + self._w % 2, self._h + self._h % 2
        self._stream.pix_fmt = "yuv420p"
        # A short GOP keeps random access cheap for training loaders (LeRobot encodes with g=2).
        self._stream.options = {"crf": str(crf), "g": str(gop)}
        self.codec = self._stream.codec_context.codec.canonical_name

    def add(self, frames: np.ndarray) -> tuple[int, int]:
        """Encode (T, H, W, 3) uint8 frames; returns their [from, to) frame numbers in this file."""
        start = self.frames
        pad = ((0, 0), (0, self._h % 2), (0, self._w % 2), (0, 0))
        if self._h % 2 or self._w % 2:
            frames = np.pad(frames, pad, mode="edge")
        for img in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts = self.frames
            self._container.mux(self._stream.encode(vf))
            self.frames += 1
        return start, self.frames

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def abort(self) -> None:
        """Close without flushing (the file is being thrown away)."""
        with contextlib.suppress(Exception):
            self._container.close()


class _Exporter:
    """Writes one LeRobot dataset directory episode by episode, then its meta files."""

    def __init__(self, root: Path, store: EpisodeStore, version: str, *, codec: str, crf: int, gop: int,
                 concat_state: bool, data_mb: float, video_mb: float) -> None:
        self.root, self.store, self.version = root, store, version
        self.fps = store.fps
        self.codec, self.crf, self.gop = codec, crf, gop
        self.data_mb, self.video_mb = data_mb, video_mb
        self.features, self.state = _plan(store, concat_state)
        self.columns = [f for f in self.features if not f.video]
        self.videos = [f for f in self.features if f.video]
        self.tasks: dict[str, int] = {}
        self.frames = 0
        self.rows: list[dict[str, Any]] = []  # v3: meta/episodes parquet rows; v2.1: episodes.jsonl lines
        self.episode_stats: list[dict[str, Any]] = []
        self.stats: dict[str, _Stats] = {}
        self.codec_name = ""
        self._data: pq.ParquetWriter | None = None
        self._data_loc, self._data_bytes = (0, 0), 0
        self._video: dict[str, _VideoWriter] = {}
        self._video_loc: dict[str, tuple[int, int]] = {f.name: (0, 0) for f in self.videos}
        self._shapes = {k: ([3, 1, 1] if v["dtype"] == "video" else list(v["shape"]))
                        for k, v in self.info_features(names=False).items()}

    # ---------------------------------------------------------- per episode

    def _table(self, arrays: dict[str, np.ndarray], i: int, task_index: int, success: bool) -> pa.Table:
        t = len(next(iter(arrays.values())))
        cols: dict[str, pa.Array] = {f.name: _to_arrow(arrays[f.key]) for f in self.columns}
        if self.state:
            cat = np.concatenate([arrays[f.key].reshape(t, -1).astype(np.float32) for f in self.state], axis=1)
            cols[_STATE_CONCAT] = _to_arrow(cat)
        last = np.arange(t) == t - 1
        cols[_DONE] = pa.array(last)
        cols[_SUCCESS] = pa.array(last & success)
        frame = np.arange(t, dtype=np.int64)
        cols["timestamp"] = pa.array((frame / self.fps).astype(np.float32))
        cols["frame_index"] = pa.array(frame)
        cols["episode_index"] = pa.array(np.full(t, i, dtype=np.int64))
        cols["index"] = pa.array(frame + self.frames)
        cols["task_index"] = pa.array(np.full(t, task_index, dtype=np.int64))
        return pa.table(cols)

    def _stats_of(self, table: pa.Table, arrays: dict[str, np.ndarray]) -> dict[str, _Stats]:
        t = table.num_rows
        out = {f.name: _Stats(arrays[f.key].reshape(t, -1), t) for f in self.columns}
        if self.state:
            out[_STATE_CONCAT] = _Stats(table[_STATE_CONCAT].combine_chunks().flatten().to_numpy().reshape(t, -1), t)
        for name in (_DONE, _SUCCESS, *_DEFAULT_FEATURES):
            out[name] = _Stats(table[name].to_numpy().reshape(t, 1), t)
        for f in self.videos:
            out[f.name] = _image_stats(arrays[f.key])
        return out

    def add(self, i: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        task = str(meta.get("task", ""))
        task_index = self.tasks.setdefault(task, len(self.tasks))
        table = self._table(arrays, i, task_index, bool(meta.get("success", False)))
        t = table.num_rows
        stats = self._stats_of(table, arrays)
        for name, s in stats.items():
            if name in self.stats:
                self.stats[name].merge(s)
            else:
                self.stats[name] = s
        ep_stats = {name: s.to_json(self._shapes[name]) for name, s in stats.items()}
        row: dict[str, Any] = {"episode_index": i, "tasks": [task], "length": t}
        if self.version == "v3.0":
            row.update(self._write_data_v3(table))
            for f in self.videos:
                row.update(self._write_video_v3(f, arrays[f.key]))
            row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
            for name, st in ep_stats.items():
                row.update({f"stats/{name}/{k}": v for k, v in st.items()})
        else:
            chunk = i // CHUNKS_SIZE
            path = self.root / V21_DATA_PATH.format(episode_chunk=chunk, episode_index=i)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            for f in self.videos:
                vpath = V21_VIDEO_PATH.format(episode_chunk=chunk, video_key=f.name, episode_index=i)
                w = _VideoWriter(self.root / vpath, f.spec, self.fps, self.codec, self.crf, self.gop)
                try:
                    w.add(arrays[f.key])
                except BaseException:
                    w.abort()
                    raise
                w.close()
                self.codec_name = w.codec
            self.episode_stats.append({"episode_index": i, "stats": ep_stats})
        self.rows.append(row)
        self.frames += t

    def _write_data_v3(self, table: pa.Table) -> dict[str, Any]:
        if self._data is None:
            path = self.root / V3_DATA_PATH.format(chunk_index=self._data_loc[0], file_index=self._data_loc[1])
            path.parent.mkdir(parents=True, exist_ok=True)
            self._data = pq.ParquetWriter(path, table.schema)
        self._data.write_table(table)
        self._data_bytes += table.nbytes
        loc = self._data_loc
        if self._data_bytes >= self.data_mb * 2**20:
            # Episodes never straddle files; a full file is closed and the next episode starts a new one.
            self._data.close()
            self._data, self._data_bytes, self._data_loc = None, 0, _next_file(loc)
        return {"data/chunk_index": loc[0], "data/file_index": loc[1],
                "dataset_from_index": self.frames, "dataset_to_index": self.frames + table.num_rows}

    def _write_video_v3(self, f: _Feature, frames: np.ndarray) -> dict[str, Any]:
        loc = self._video_loc[f.name]
        w = self._video.get(f.name)
        if w is None:
            path = self.root / V3_VIDEO_PATH.format(video_key=f.name, chunk_index=loc[0], file_index=loc[1])
            w = self._video[f.name] = _VideoWriter(path, f.spec, self.fps, self.codec, self.crf, self.gop)
        start, stop = w.add(frames)
        self.codec_name = w.codec
        # The file appears only once the encoder emits its first packet (svt-av1 buffers many frames).
        if w.path.is_file() and w.path.stat().st_size >= self.video_mb * 2**20:
            w.close()
            del self._video[f.name]
            self._video_loc[f.name] = _next_file(loc)
        p = f"videos/{f.name}/"
        return {p + "chunk_index": loc[0], p + "file_index": loc[1],
                p + "from_timestamp": start / self.fps, p + "to_timestamp": stop / self.fps}

    # ---------------------------------------------------------- meta

    def info_features(self, names: bool = True) -> dict[str, dict[str, Any]]:
        spec = self.store.spec or {}
        action_names = list((spec.get("action") or {}).get("names") or []) if names else []
        out: dict[str, dict[str, Any]] = {}
        for f in self.features:
            fit = f.key == "action" and len(f.spec.shape) == 1 and len(action_names) == f.spec.shape[0]
            out[f.name] = f.lerobot(self.fps, action_names if fit else None)
            if f.video and self.codec_name:
                out[f.name]["info"]["video.codec"] = self.codec_name
        if self.state:
            sub = [f"{f.key[len('state/'):]}.{j}" for f in self.state for j in range(int(np.prod(f.spec.shape)))]
            out[_STATE_CONCAT] = {"dtype": "float32", "shape": [len(sub)], "names": sub}
        out[_DONE] = {"dtype": "bool", "shape": [1], "names": None}
        out[_SUCCESS] = {"dtype": "bool", "shape": [1], "names": None}
        return {**out, **json.loads(json.dumps(_DEFAULT_FEATURES))}

    def abort(self) -> None:
        if self._data is not None:
            with contextlib.suppress(Exception):
                self._data.close()
        for w in self._video.values():
            w.abort()

    def finish(self, robot_type: str | None) -> None:
        if self._data is not None:
            self._data.close()
        for w in self._video.values():
            w.close()
        n = len(self.rows)
        store = self.store
        realrl = {
            "format": _REALRL, "version": 1, "fps": store.fps, "env_id": store.env_id, "spec": store.spec,
            "features": {f.name: {"key": f.key, **f.spec.to_json()} for f in self.features},
            "derived": [_DONE, _SUCCESS, *([_STATE_CONCAT] if self.state else [])],
            "episodes": [{k: m.get(k) for k in ("task", "success", "source", "operator", "meta", "wall_time")}
                         for m in (store.episode_meta(i) for i in range(n))],
        }
        info: dict[str, Any] = {
            "codebase_version": self.version, "robot_type": robot_type, "total_episodes": n,
            "total_frames": self.frames, "total_tasks": len(self.tasks),
        }
        meta = self.root / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        tasks = sorted(self.tasks, key=self.tasks.__getitem__)
        if self.version == "v3.0":
            info.update({"chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": self.data_mb,
                         "video_files_size_in_mb": self.video_mb, "fps": _json_fps(store.fps),
                         "splits": {"train": f"0:{n}"}, "data_path": V3_DATA_PATH,
                         "video_path": V3_VIDEO_PATH if self.videos else None})
            _write_tasks_parquet(meta / "tasks.parquet", tasks)
            path = self.root / V3_EPISODES_PATH.format(chunk_index=0, file_index=0)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(self.rows), path)
            stats = {name: s.to_json(self._shapes[name]) for name, s in self.stats.items()}
            (meta / "stats.json").write_text(json.dumps(stats, indent=4))
        else:
            info.update({"total_videos": n * len(self.videos), "total_chunks": (n + CHUNKS_SIZE - 1) // CHUNKS_SIZE,
                         "chunks_size": CHUNKS_SIZE, "fps": _json_fps(store.fps), "splits": {"train": f"0:{n}"},
                         "data_path": V21_DATA_PATH, "video_path": V21_VIDEO_PATH if self.videos else None})
            _write_jsonl(meta / "tasks.jsonl", [{"task_index": j, "task": t} for j, t in enumerate(tasks)])
            _write_jsonl(meta / "episodes.jsonl", self.rows)
            _write_jsonl(meta / "episodes_stats.jsonl", self.episode_stats)
        info["features"] = self.info_features()
        info["realrl"] = realrl
        (meta / "info.json").write_text(json.dumps(info, indent=4))


def _next_file(loc: tuple[int, int]) -> tuple[int, int]:
    chunk, file = loc
    return (chunk + 1, 0) if file + 1 >= CHUNKS_SIZE else (chunk, file + 1)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_tasks_parquet(path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame: column task_index, index `task` (the strings)."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"], "column_indexes": [],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0",
    }
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}), path)


def export_lerobot(
    store_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    version: Version = "v3.0",
    video_codec: str = "libx264",
    crf: int = 23,
    gop: int = 2,
    robot_type: str | None = None,
    concat_state: bool = True,
    data_file_size_in_mb: float = 100.0,
    video_file_size_in_mb: float = 200.0,
    progress: bool = True,
) -> Path:
    """Write the store as a LeRobotDataset directory at `out_dir` (which must not exist); returns it.

    Columns: action -> `action`, reward -> `next.reward`, state/<x> -> `observation.state.<x>`, other keys
    with '/' -> '.', time/<x> -> float64 `realrl.time.<x>`; uint8 (H, W, 3) image/<cam> keys become mp4
    videos `observation.images.<cam>` (lossy, see IMAGE_TOLERANCE; odd sides are edge-padded). Added:
    `observation.state` (all 1-D state keys concatenated, float32; off with concat_state=False),
    `next.done`/`next.success` (True on an episode's last frame / last frame of a successful episode) and
    LeRobot's timestamp, frame_index, episode_index, index, task_index. info.json["realrl"] keeps what
    LeRobot has no place for (exact fps, env_id, spec, key names, per-episode metadata), so
    import_lerobot restores the store. v3.0 concatenates episodes into data/video files of about
    data_file_size_in_mb / video_file_size_in_mb; v2.1 writes one parquet and one mp4 per camera per episode.
    """
    if version not in WRITE_VERSIONS:
        raise ConfigError(f"version must be one of {WRITE_VERSIONS}, got {version!r}")
    if not 0 <= crf <= 63 or gop < 1:
        raise ConfigError(f"need 0 <= crf <= 63 and gop >= 1, got crf={crf}, gop={gop}")
    if not (data_file_size_in_mb > 0 and video_file_size_in_mb > 0):
        raise ConfigError("data_file_size_in_mb and video_file_size_in_mb must be > 0")
    try:
        av.codec.Codec(video_codec, "w")
    except Exception as e:
        raise ConfigError(f"video codec {video_codec!r} is not available in this PyAV build ({e}); "
                          "use 'libx264' or 'libsvtav1'") from e
    out = Path(out_dir)
    tmp = check_new_output(out)
    store = EpisodeStore.open(store_path, "r")
    if len(store) == 0:
        raise StoreError(f"{store.path} has no episodes: nothing to export")
    _remove(tmp)
    ex: _Exporter | None = None
    try:
        ex = _Exporter(tmp, store, version, codec=video_codec, crf=crf, gop=gop, concat_state=concat_state,
                       data_mb=data_file_size_in_mb, video_mb=video_file_size_in_mb)
        spec_name = (store.spec or {}).get("name")
        for i in tqdm(range(len(store)), desc=f"export LeRobot {version}", unit="ep", disable=not progress):
            ex.add(i, store.episode(i), store.episode_meta(i))
        ex.finish(robot_type if robot_type is not None else (str(spec_name) if spec_name else None))
        os.rename(tmp, out)
    except BaseException as e:
        if ex is not None:
            ex.abort()
        _remove(tmp)
        if isinstance(e, RealrlError | KeyboardInterrupt):
            raise
        raise StoreError(f"exporting {store.path} to {out} failed ({e!r}); nothing was written at {out}") from e
    return out


# ---------------------------------------------------------------- import


@dataclass
class _Source:
    """One episode as a LeRobot dataset describes it."""

    index: int
    length: int
    tasks: list[str]
    data: Path
    videos: dict[str, tuple[Path, float]]  # feature -> (mp4, from_timestamp)


@dataclass(frozen=True)
class _Target:
    """How one LeRobot feature becomes a store key."""

    name: str
    key: str
    shape: tuple[int, ...]
    dtype: str
    kind: Literal["column", "video", "image"]


class _VideoReader:
    """Decodes one mp4 at a time front to back, handing out the frames nearest requested timestamps."""

    def __init__(self, fps: float) -> None:
        self.tol = 0.4 / fps  # below half a frame: the nearest frame is the only match
        self._path: Path | None = None
        self._container: Any = None
        self._frames: Iterator[Any] = iter(())
        self._cur: tuple[float, Any] | None = None

    def _open(self, path: Path) -> None:
        self.close()
        if not path.is_file():
            raise StoreError(f"video {path} is missing; the dataset is incomplete")
        self._path, self._cur = path, None
        self._container = av.open(str(path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = iter(self._container.decode(stream))

    def read(self, path: Path, times: np.ndarray) -> np.ndarray:
        """(len(times), H, W, 3) uint8 frames at the given times (s) in the file."""
        if path != self._path or (self._cur is not None and times[0] < self._cur[0] - self.tol):
            self._open(path)
        out = []
        for t in times:
            while self._cur is None or self._cur[0] < t - self.tol:
                frame = next(self._frames, None)
                if frame is None:
                    raise StoreError(f"{path} ends before t={t:.4f} s; the video is shorter than its episodes")
                self._cur = (float(frame.time), frame)
            if self._cur[0] > t + self.tol:
                raise StoreError(f"{path} has no frame at t={t:.4f} s (next one at {self._cur[0]:.4f} s)")
            out.append(self._cur[1].to_ndarray(format="rgb24"))
        return np.stack(out)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._path, self._cur = None, None, None


def _read_info(root: Path) -> dict[str, Any]:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise StoreError(f"{root} is not a LeRobot dataset (no meta/info.json): check the path")
    try:
        info = json.loads(path.read_text())
    except ValueError as e:
        raise StoreError(f"{path} is not valid JSON ({e}); the dataset is damaged") from e
    if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
        raise StoreError(f"{path} has no 'features' dict; it is not a LeRobot info.json")
    version = info.get("codebase_version")
    if version not in READ_VERSIONS:
        raise StoreError(f"{root}: codebase_version {version!r} is not supported (readable: {READ_VERSIONS}); "
                         "convert it with LeRobot's conversion scripts first")
    return info


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise StoreError(f"{path} is missing; the dataset is incomplete")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_tasks(root: Path, version: str) -> dict[int, str]:
    if version != "v3.0":
        return {int(r["task_index"]): str(r["task"]) for r in _read_jsonl(root / "meta" / "tasks.jsonl")}
    path = root / "meta" / "tasks.parquet"
    if not path.is_file():
        raise StoreError(f"{path} is missing; the dataset is incomplete")
    table = pq.read_table(path)
    index_cols = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}")).get("index_columns", [])
    names = [c for c in ("task", "__index_level_0__", *[c for c in index_cols if isinstance(c, str)])
             if c in table.column_names]
    if "task_index" not in table.column_names or not names:
        raise StoreError(f"{path} lacks a task_index column or a task string column")
    return dict(zip(table["task_index"].to_pylist(), table[names[0]].to_pylist(), strict=True))


def _sources(root: Path, info: dict[str, Any], videos: list[str]) -> list[_Source]:
    version = info["codebase_version"]
    out = []
    if version == "v3.0":
        files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise StoreError(f"{root}/meta/episodes has no parquet files; the dataset is incomplete")
        rows = [r for f in files for r in pq.read_table(
            f, columns=[c for c in pq.read_schema(f).names if not c.startswith("stats/")]).to_pylist()]
        for r in sorted(rows, key=lambda r: int(r["episode_index"])):
            data = info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
            vids = {}
            for v in videos:
                p = info["video_path"].format(video_key=v, chunk_index=r[f"videos/{v}/chunk_index"],
                                              file_index=r[f"videos/{v}/file_index"])
                vids[v] = (root / p, float(r[f"videos/{v}/from_timestamp"]))
            out.append(_Source(int(r["episode_index"]), int(r["length"]), list(r.get("tasks") or []),
                               root / data, vids))
        return out
    chunks = int(info.get("chunks_size", CHUNKS_SIZE))
    for r in sorted(_read_jsonl(root / "meta" / "episodes.jsonl"), key=lambda r: int(r["episode_index"])):
        i = int(r["episode_index"])
        data = info["data_path"].format(episode_chunk=i // chunks, episode_index=i)
        vids = {v: (root / info["video_path"].format(episode_chunk=i // chunks, video_key=v, episode_index=i), 0.0)
                for v in videos}
        out.append(_Source(i, int(r["length"]), list(r.get("tasks") or []), root / data, vids))
    return out


def _targets(info: dict[str, Any]) -> tuple[list[_Target], dict[str, Any] | None]:
    """Store keys for the dataset's features; exact names when realrl wrote it, the naming convention otherwise."""
    realrl = info.get("realrl")
    feats: dict[str, dict[str, Any]] = info["features"]
    if isinstance(realrl, dict) and realrl.get("format") == _REALRL:
        out = []
        for name, r in realrl["features"].items():
            video = feats.get(name, {}).get("dtype") == "video"
            out.append(_Target(name, r["key"], tuple(r["shape"]), r["dtype"], "video" if video else "column"))
        return out, realrl
    out = []
    for name, ft in feats.items():
        dtype = str(ft.get("dtype"))
        if name in _DEFAULT_FEATURES or name in (_DONE, _SUCCESS):
            continue
        shape = tuple(int(s) for s in ft.get("shape") or ())
        if dtype in ("video", "image"):
            kind: Literal["video", "image"] = "video" if dtype == "video" else "image"
            out.append(_Target(name, store_key(name, dtype), shape, "uint8", kind))
        elif dtype in ("bool", "float16", "float32", "float64") or dtype.startswith(("int", "uint")):
            out.append(_Target(name, store_key(name, dtype), () if shape == (1,) else shape, dtype, "column"))
        else:
            logger.warning("skipping LeRobot feature %r of dtype %r: a store holds numeric arrays", name, dtype)
    return out, None


def _decode_images(col: pa.ChunkedArray, name: str) -> np.ndarray:
    """LeRobot `image` features: PNG/JPEG bytes in a struct {bytes, path} column."""
    try:
        from PIL import Image
    except ImportError as e:
        raise StoreError(f"feature {name!r} holds encoded images; install Pillow to import it") from e
    frames = []
    for cell in col.to_pylist():
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not data:
            raise StoreError(f"feature {name!r}: an image cell has no embedded bytes (only a path); not supported")
        frames.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    return np.stack(frames)


class _DataFiles:
    """The parquet file being read, with its rows grouped by episode_index (files hold many episodes in v3)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._table: pa.Table | None = None
        self._rows: dict[int, np.ndarray] = {}

    def episode(self, path: Path, index: int) -> pa.Table:
        if path != self._path:
            if not path.is_file():
                raise StoreError(f"data file {path} is missing; the dataset is incomplete")
            self._table, self._path = pq.read_table(path), path
            ep = self._table["episode_index"].to_numpy()
            order = np.argsort(ep, kind="stable")
            values, starts = np.unique(ep[order], return_index=True)
            self._rows = dict(zip(values.tolist(), np.split(order, starts[1:]), strict=True))
        assert self._table is not None
        rows = self._rows.get(index)
        if rows is None:
            raise StoreError(f"{path} has no rows of episode {index}; the dataset is inconsistent")
        table = self._table.take(pa.array(rows))
        if "frame_index" in table.column_names:
            table = table.take(pa.array(np.argsort(table["frame_index"].to_numpy(), kind="stable")))
        return table


def import_lerobot(
    in_dir: str | os.PathLike[str], store_path: str | os.PathLike[str], *, progress: bool = True
) -> EpisodeStore:
    """Read a LeRobotDataset (v3.0, v2.1 or v2.0, detected from meta/info.json) into a new store; returns it 'r'.

    A dataset export_lerobot wrote comes back with its keys, fps, env id, spec and per-episode metadata
    (wall_time excepted: the store stamps its own). Others are mapped by convention:
    observation.images.<cam> -> image/<cam>, observation.state.<x> -> state/<x>, observation.<x> ->
    state/<x> (so observation.state -> state/state), next.reward -> reward, other names kept; episode
    task = its first task, success = any next.success, meta = {"origin": {...}}. Non-numeric features
    are skipped with a warning. `store_path` must not exist.
    """
    root = Path(in_dir)
    if not root.is_dir():
        raise StoreError(f"{root} is not a directory; a LeRobot dataset is a directory with meta/info.json")
    info = _read_info(root)
    dest = Path(store_path)
    tmp = check_new_output(dest)
    targets, realrl = _targets(info)
    fps = float(realrl["fps"] if realrl else info.get("fps") or 0)
    if not fps > 0:
        raise StoreError(f"{root}/meta/info.json has no positive fps")
    try:
        tasks = _read_tasks(root, info["codebase_version"])
        sources = _sources(root, info, [t.name for t in targets if t.kind == "video"])
    except (KeyError, TypeError, ValueError, pa.ArrowException) as e:
        raise StoreError(f"{root}: malformed LeRobot metadata ({e!r}); the dataset is damaged or not LeRobot") from e
    episodes_meta = realrl["episodes"] if realrl else None
    if episodes_meta is not None and len(episodes_meta) != len(sources):
        raise StoreError(f"{root}: info.json lists {len(episodes_meta)} realrl episodes but the dataset has "
                         f"{len(sources)}; it was edited after export")
    readers = {t.name: _VideoReader(fps) for t in targets if t.kind == "video"}
    files = _DataFiles()
    _remove(tmp)
    try:
        with EpisodeStore.create(tmp, fps=fps, spec=realrl.get("spec") if realrl else None,
                                 env_id=str(realrl.get("env_id", "")) if realrl else "") as out:
            for j, src in enumerate(tqdm(sources, desc="import LeRobot", unit="ep", disable=not progress)):
                table = files.episode(src.data, src.index)
                if table.num_rows != src.length:
                    raise StoreError(f"episode {src.index}: {table.num_rows} data rows but length {src.length}")
                times = (table["timestamp"].to_numpy().astype(np.float64) if "timestamp" in table.column_names
                         else np.arange(src.length) / fps)
                arrays = {}
                for t in targets:
                    if t.kind == "video":
                        path, start = src.videos[t.name]
                        frames = readers[t.name].read(path, start + times)
                        arrays[t.key] = frames[:, : t.shape[0], : t.shape[1]] if realrl else frames
                    elif t.name not in table.column_names:
                        raise StoreError(f"{src.data} has no column {t.name!r} listed in info.json features")
                    elif t.kind == "image":
                        arrays[t.key] = _decode_images(table[t.name], t.name)
                    else:
                        arrays[t.key] = _from_arrow(table[t.name], t.shape, t.dtype, t.name)
                out.append_episode(arrays, **_episode_meta(src, table, tasks, episodes_meta, j, root))
        os.rename(tmp, dest)
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, RealrlError | KeyboardInterrupt):
            raise
        raise StoreError(f"importing {root} failed ({e!r}); nothing was written at {dest}") from e
    finally:
        for r in readers.values():
            r.close()
    return EpisodeStore.open(dest, "r")


def _episode_meta(src: _Source, table: pa.Table, tasks: dict[int, str], realrl: list[dict[str, Any]] | None,
                  j: int, root: Path) -> dict[str, Any]:
    if realrl is not None:
        m = realrl[j]
        return {"task": m.get("task") or "", "success": bool(m.get("success")), "source": m.get("source") or "",
                "operator": m.get("operator") or "", "meta": m.get("meta") or {}}
    task = src.tasks[0] if src.tasks else ""
    if not src.tasks and "task_index" in table.column_names and table.num_rows:
        task = tasks.get(int(table["task_index"][0].as_py()), "")
    success = bool(np.any(table[_SUCCESS].to_numpy(zero_copy_only=False))) if _SUCCESS in table.column_names else False
    origin = {"lerobot": str(root), "episode": src.index}
    return {"task": task, "success": success, "source": "", "operator": "", "meta": {"origin": origin}}
