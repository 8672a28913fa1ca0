"""Round trips store -> LeRobot v3.0 / v2.1 / robomimic -> store, the files written, and bad input."""

import json
import shutil
from pathlib import Path

import av
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.convert import IMAGE_TOLERANCE, export_lerobot, export_robomimic, import_lerobot, import_robomimic
from data.store import EpisodeStore
from robot.core.errors import ConfigError, StoreError

FPS = 10.0
LENGTHS = (23, 9, 31)
TASKS = ("pick up the red cube", "open the drawer", "pick up the red cube")
SUCCESS = (True, False, True)
SOURCES = ("expert", "teleop", "policy")
SPEC = {"name": "toy_arm", "action": {"names": ["dx", "dy", "dz", "grip"]}}
ENV_ID = "realrl/ToyLift-v0"
SIDE = 64
CAMERAS = ("front", "wrist")


def _frames(t: int, phase: float) -> np.ndarray:
    """(t, 64, 64, 3) smooth gradients drifting a little each frame: what H.264 compresses well."""
    y, x = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    k = np.arange(t)[:, None, None]
    chans = [128 + 90 * np.sin(2 * np.pi * (0.6 * x + 0.3 * y) + 0.12 * k + phase + c) for c in (0.0, 2.0, 4.0)]
    return np.stack(chans, axis=-1).round().astype(np.uint8)


def _episode(i: int, t: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    return {
        "state/joint_pos": rng.standard_normal((t, 7)).astype(np.float32),
        "state/gripper": rng.random((t, 1)).astype(np.float32),
        "action": rng.uniform(-1, 1, (t, 4)).astype(np.float32),
        "reward": rng.random(t).astype(np.float32),
        "time/state": 1.7e9 + i * 100 + np.arange(t) / FPS + rng.random(t) * 1e-6,  # float64 wall-clock stamps
        "info/contact": rng.random(t) > 0.5,
        "image/front": _frames(t, phase=i),
        "image/wrist": _frames(t, phase=2.5 * i + 1)[:, ::-1],
    }


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> EpisodeStore:
    path = tmp_path_factory.mktemp("src") / "demos.zarr"
    with EpisodeStore.create(path, fps=FPS, spec=SPEC, env_id=ENV_ID) as store:
        for i, t in enumerate(LENGTHS):
            store.append_episode(_episode(i, t), task=TASKS[i], success=SUCCESS[i], source=SOURCES[i],
                                 operator="ana" if i else "", meta={"seed": i, "note": f"take {i}"})
    return EpisodeStore.open(path)


@pytest.fixture(scope="module")
def exported(src: EpisodeStore, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("out")
    return {
        "v3.0": export_lerobot(src.path, out / "lerobot_v3", progress=False),
        "v2.1": export_lerobot(src.path, out / "lerobot_v21", version="v2.1", progress=False),
        "robomimic": export_robomimic(src.path, out / "demos.hdf5", progress=False),
    }


def _image_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def assert_same_store(a: EpisodeStore, b: EpisodeStore, *, image_tol: float | None) -> None:
    """Exact equality of every non-image array, dtype and metadata; images exact or within image_tol."""
    assert b.keys == a.keys
    assert b.schema == a.schema
    assert (b.fps, b.env_id, b.spec) == (a.fps, a.env_id, a.spec)
    assert np.array_equal(b.episode_ends, a.episode_ends)
    for i in range(len(a)):
        ea, eb = a.episode(i), b.episode(i)
        for k in a.keys:
            assert eb[k].dtype == ea[k].dtype, k
            assert eb[k].shape == ea[k].shape, k
            if image_tol is not None and k.startswith("image/"):
                assert _image_error(ea[k], eb[k]) < image_tol, (k, i)
                per_frame = [_image_error(x, y) for x, y in zip(ea[k], eb[k], strict=True)]
                assert max(per_frame) < 2 * image_tol, (k, i)
            else:
                assert np.array_equal(eb[k], ea[k]), (k, i)
        ma, mb = a.episode_meta(i), b.episode_meta(i)
        for field in ("task", "success", "source", "operator", "meta", "length"):
            assert mb[field] == ma[field], (field, i)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("version", ["v3.0", "v2.1"])
def test_lerobot_round_trip(src, exported, version, tmp_path):
    back = import_lerobot(exported[version], tmp_path / "back.zarr", progress=False)
    assert_same_store(src, back, image_tol=IMAGE_TOLERANCE)


def test_robomimic_round_trip_is_exact(src, exported, tmp_path):
    back = import_robomimic(exported["robomimic"], tmp_path / "back.zarr", progress=False)
    assert_same_store(src, back, image_tol=None)


def test_v3_rolls_over_to_new_files_and_reads_them_back(src, tmp_path):
    out = export_lerobot(src.path, tmp_path / "ds", data_file_size_in_mb=1e-6, video_file_size_in_mb=1e-6,
                         progress=False)
    assert sorted(p.name for p in (out / "data" / "chunk-000").iterdir()) == [f"file-{i:03d}.parquet" for i in
                                                                             range(3)]
    assert len(list((out / "videos" / "observation.images.front" / "chunk-000").iterdir())) == 3
    back = import_lerobot(out, tmp_path / "back.zarr", progress=False)
    assert_same_store(src, back, image_tol=IMAGE_TOLERANCE)


# ---------------------------------------------------------------- the files as other tools see them


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_lerobot_v3_layout(src, exported):
    root = exported["v3.0"]
    info = json.loads((root / "meta" / "info.json").read_text())
    n, total = len(LENGTHS), sum(LENGTHS)
    assert info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (n, total, 2)
    assert info["fps"] == 10 and isinstance(info["fps"], int)
    assert info["robot_type"] == "toy_arm"
    assert info["chunks_size"] == 1000 and info["data_files_size_in_mb"] == 100
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feats = info["features"]
    assert set(feats) == {
        "observation.state.joint_pos", "observation.state.gripper", "observation.state", "action", "next.reward",
        "realrl.time.state", "info.contact", "observation.images.front", "observation.images.wrist",
        "next.done", "next.success", "timestamp", "frame_index", "episode_index", "index", "task_index",
    }
    assert feats["observation.state"] == {"dtype": "float32", "shape": [8], "names": [  # keys in sorted order
        "gripper.0", *(f"joint_pos.{j}" for j in range(7))]}
    assert feats["action"] == {"dtype": "float32", "shape": [4], "names": SPEC["action"]["names"]}
    assert feats["next.reward"]["shape"] == [1] and feats["realrl.time.state"]["dtype"] == "float64"
    video = feats["observation.images.front"]
    assert video["dtype"] == "video" and video["shape"] == [SIDE, SIDE, 3]
    assert video["info"]["video.codec"] == "h264" and video["info"]["video.pix_fmt"] == "yuv420p"
    assert info["realrl"]["features"]["observation.state.joint_pos"]["key"] == "state/joint_pos"

    data = pq.read_table(root / "data" / "chunk-000" / "file-000.parquet")
    assert data.num_rows == total
    types = {f.name: f.type for f in data.schema}
    for name, size in (("observation.state.joint_pos", 7), ("action", 4), ("observation.state", 8)):
        assert pa.types.is_fixed_size_list(types[name]) and types[name].list_size == size
        assert types[name].value_type == pa.float32()
    types = {k: str(t) for k, t in types.items()}
    assert types["next.reward"] == "float" and types["realrl.time.state"] == "double"
    assert types["timestamp"] == "float" and types["info.contact"] == "bool"
    assert all(types[c] == "int64" for c in ("frame_index", "episode_index", "index", "task_index"))
    assert not any(c.startswith("observation.images") for c in types)
    assert data["index"].to_pylist() == list(range(total))
    ends = np.cumsum(LENGTHS)
    assert np.array_equal(data["episode_index"].to_numpy(), np.repeat(np.arange(n), LENGTHS))
    assert data["task_index"].to_pylist() == [0] * LENGTHS[0] + [1] * LENGTHS[1] + [0] * LENGTHS[2]
    assert np.allclose(data["timestamp"].to_numpy()[: LENGTHS[0]], np.arange(LENGTHS[0]) / FPS)
    assert np.flatnonzero(data["next.done"].to_numpy(zero_copy_only=False)).tolist() == (ends - 1).tolist()

    eps = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in eps] == [0, 1, 2]
    assert [e["length"] for e in eps] == list(LENGTHS)
    assert [e["tasks"] for e in eps] == [[t] for t in TASKS]
    assert [e["dataset_from_index"] for e in eps] == [0, *ends[:-1].tolist()]
    assert [e["dataset_to_index"] for e in eps] == ends.tolist()
    assert all(e["data/chunk_index"] == 0 and e["data/file_index"] == 0 for e in eps)
    assert [e["videos/observation.images.front/from_timestamp"] for e in eps] == [0.0, *(ends[:-1] / FPS)]
    assert [e["videos/observation.images.front/to_timestamp"] for e in eps] == (ends / FPS).tolist()
    assert np.allclose(eps[0]["stats/action/mean"], src.episode(0)["action"].mean(0), atol=1e-6)

    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    assert tasks["task"].to_pylist() == ["pick up the red cube", "open the drawer"]
    assert tasks["task_index"].to_pylist() == [0, 1]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]

    stats = json.loads((root / "meta" / "stats.json").read_text())
    allj = np.concatenate([src.episode(i)["state/joint_pos"] for i in range(n)])
    assert np.allclose(stats["observation.state.joint_pos"]["mean"], allj.mean(0), atol=1e-6)
    assert np.allclose(stats["observation.state.joint_pos"]["std"], allj.std(0), atol=1e-6)
    assert stats["observation.state.joint_pos"]["count"] == [total]
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)

    for cam in CAMERAS:
        frames = _decode(root / "videos" / f"observation.images.{cam}" / "chunk-000" / "file-000.mp4")
        assert len(frames) == total and frames[0].shape == (SIDE, SIDE, 3)


def test_lerobot_v21_layout(exported):
    root = exported["v2.1"]
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1"
    assert info["data_path"] == "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    assert info["video_path"] == "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    assert (info["total_episodes"], info["total_frames"], info["total_videos"], info["total_chunks"]) == (
        3, sum(LENGTHS), 6, 1)
    lines = (root / "meta" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"episode_index": i, "tasks": [TASKS[i]], "length": t} for i, t in enumerate(LENGTHS)]
    tasks = [json.loads(x) for x in (root / "meta" / "tasks.jsonl").read_text().splitlines()]
    assert tasks == [{"task_index": 0, "task": TASKS[0]}, {"task_index": 1, "task": TASKS[1]}]
    stats = [json.loads(x) for x in (root / "meta" / "episodes_stats.jsonl").read_text().splitlines()]
    assert [s["episode_index"] for s in stats] == [0, 1, 2] and "action" in stats[0]["stats"]
    start = 0
    for i, t in enumerate(LENGTHS):
        table = pq.read_table(root / "data" / "chunk-000" / f"episode_{i:06d}.parquet")
        assert table["frame_index"].to_pylist() == list(range(t))
        assert table["index"].to_pylist() == list(range(start, start + t))
        assert set(table["episode_index"].to_pylist()) == {i}
        start += t
        for cam in CAMERAS:
            frames = _decode(root / "videos" / "chunk-000" / f"observation.images.{cam}" / f"episode_{i:06d}.mp4")
            assert len(frames) == t and frames[0].shape == (SIDE, SIDE, 3)


def test_robomimic_layout(src, exported):
    with h5py.File(exported["robomimic"], "r") as f:
        data = f["data"]
        assert data.attrs["total"] == sum(LENGTHS)
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == ENV_ID and env_args["type"] == 2
        assert sorted(data) == ["demo_0", "demo_1", "demo_2"]
        demo = data["demo_1"]
        assert demo.attrs["num_samples"] == LENGTHS[1]
        assert sorted(demo["obs"]) == ["front_image", "gripper", "joint_pos", "wrist_image"]
        assert demo["obs/front_image"].dtype == np.uint8 and demo["obs/front_image"].shape == (9, SIDE, SIDE, 3)
        assert demo["actions"].shape == (9, 4) and demo["rewards"].shape == (9,)
        assert demo["dones"][()].tolist() == [0] * 8 + [1]
        assert demo["realrl/time/state"].dtype == np.float64
        assert json.loads(demo.attrs["realrl"])["task"] == TASKS[1]
        assert [x.decode() for x in f["mask/success"][()]] == ["demo_0", "demo_2"]


# ---------------------------------------------------------------- datasets realrl did not write


def test_import_lerobot_without_realrl_section_uses_conventions(src, exported, tmp_path):
    root = tmp_path / "foreign"
    shutil.copytree(exported["v3.0"], root)
    info = json.loads((root / "meta" / "info.json").read_text())
    del info["realrl"]
    (root / "meta" / "info.json").write_text(json.dumps(info))
    back = import_lerobot(root, tmp_path / "back.zarr", progress=False)
    assert set(back.keys) == {"state/joint_pos", "state/gripper", "state/state", "action", "reward", "time/state",
                              "info.contact", "image/front", "image/wrist"}
    assert back.schema["reward"].shape == () and back.fps == FPS
    ep = back.episode(2)
    assert np.array_equal(ep["action"], src.episode(2)["action"])
    assert np.array_equal(ep["time/state"], src.episode(2)["time/state"])
    assert ep["image/front"].shape == (LENGTHS[2], SIDE, SIDE, 3)
    assert [back.episode_meta(i)["task"] for i in range(3)] == list(TASKS)
    assert [back.episode_meta(i)["success"] for i in range(3)] == list(SUCCESS)
    assert back.episode_meta(1)["meta"] == {"origin": {"lerobot": str(root), "episode": 1}}


def test_import_foreign_robomimic(tmp_path):
    path = tmp_path / "image.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20}})
        for name, t in (("demo_10", 4), ("demo_2", 6)):
            g = data.create_group(name)
            g.attrs["num_samples"] = t
            g["actions"] = rng.standard_normal((t, 7))
            g["rewards"] = np.zeros(t)
            g["dones"] = np.eye(t)[-1].astype(np.int64)
            g["obs/agentview_image"] = rng.integers(0, 255, (t, 8, 8, 3), dtype=np.uint8)
            g["obs/robot0_eef_pos"] = rng.standard_normal((t, 3))
    back = import_robomimic(path, tmp_path / "back.zarr", progress=False)
    assert back.fps == 20.0 and back.env_id == "Lift"
    assert set(back.keys) == {"action", "reward", "image/agentview", "state/robot0_eef_pos"}
    assert [back.episode_meta(i)["length"] for i in range(2)] == [6, 4]  # numeric demo order
    assert back.schema["action"].dtype == "float32"
    with h5py.File(path, "r") as f:
        assert np.array_equal(back.episode(0)["image/agentview"], f["data/demo_2/obs/agentview_image"][()])


# ---------------------------------------------------------------- bad input


def test_import_lerobot_rejects_what_is_not_a_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="not a LeRobot dataset"):
        import_lerobot(tmp_path / "empty", tmp_path / "a.zarr")
    (tmp_path / "old" / "meta").mkdir(parents=True)
    (tmp_path / "old" / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v1.6", "features": {}}))
    with pytest.raises(StoreError, match=r"codebase_version 'v1\.6' is not supported"):
        import_lerobot(tmp_path / "old", tmp_path / "b.zarr")
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()


def test_import_robomimic_rejects_files_without_data(tmp_path):
    with h5py.File(tmp_path / "x.hdf5", "w") as f:
        f.create_group("mask")
    with pytest.raises(StoreError, match="no 'data' group"):
        import_robomimic(tmp_path / "x.hdf5", tmp_path / "a.zarr")
    (tmp_path / "y.hdf5").write_text("not hdf5")
    with pytest.raises(StoreError, match="not a readable hdf5 file"):
        import_robomimic(tmp_path / "y.hdf5", tmp_path / "a.zarr")
    assert not (tmp_path / "a.zarr").exists()


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def test_existing_outputs_are_refused_and_left_alone(src, exported, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    for out in (taken, exported["v3.0"], exported["robomimic"]):
        before = _snapshot(out)
        with pytest.raises(StoreError, match="already exists"):
            export_lerobot(src.path, out, progress=False)
        with pytest.raises(StoreError, match="already exists"):
            export_robomimic(src.path, out, progress=False)
        assert _snapshot(out) == before
    before = _snapshot(src.path)
    with pytest.raises(StoreError, match="already exists"):
        import_lerobot(exported["v2.1"], src.path, progress=False)
    with pytest.raises(StoreError, match="already exists"):
        import_robomimic(exported["robomimic"], src.path, progress=False)
    assert _snapshot(src.path) == before
    assert not list(tmp_path.glob("*.realrl-partial"))


def test_bad_export_arguments(src, tmp_path):
    with pytest.raises(ConfigError, match="version"):
        export_lerobot(src.path, tmp_path / "a", version="v9.9")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not available"):
        export_lerobot(src.path, tmp_path / "b", video_codec="no-such-codec")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
