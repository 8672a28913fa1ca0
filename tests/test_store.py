"""EpisodeStore on real zarr directories: round trip, layout, refusals, damage, SIGKILLed writers."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import zarr
from store_writer_proc import expected_episode, expected_meta

from data.store import LOWDIM_CHUNK_BYTES, EpisodeStore, drop_trailing_episodes
from data.tools import format_info, info, repair, validate
from robot.core.errors import StoreError
from robot.core.spec import ActionMode, ActionSpec, CameraSpec, EmbodimentSpec, JointSpec

WRITER = Path(__file__).with_name("store_writer_proc.py")


def tree_hash(root: Path) -> dict[str, str]:
    """Every file under root's parent (siblings too: a rewrite must not leave any), by path -> sha256."""
    out = {}
    for dp, _, fs in os.walk(root.parent):
        for f in fs:
            p = Path(dp) / f
            out[str(p.relative_to(root.parent))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def make_spec() -> EmbodimentSpec:
    return EmbodimentSpec(
        name="toy_arm",
        joints=(JointSpec("j1", -1.0, 1.0), JointSpec("j2", -2.0, 2.0)),
        action=ActionSpec(ActionMode.JOINT_POS, ("j1", "j2"), (-1.0, -2.0), (1.0, 2.0)),
        cameras=(CameraSpec("front", 32, 40), CameraSpec("wrist", 16, 16)),
        control_hz=20.0,
    )


def episode(k: int, t: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(k)
    t = t or 4 + k
    return {
        "state/joint_pos": rng.standard_normal((t, 2)),  # float64: stored as float32
        "state/ee_pose": rng.standard_normal((t, 7)).astype(np.float32),
        "action": rng.uniform(-1, 1, (t, 2)).astype(np.float32),
        "reward": rng.standard_normal(t).astype(np.float32),
        "image/front": rng.integers(0, 256, (t, 32, 40, 3), dtype=np.uint8),
        "image/wrist": rng.integers(0, 256, (t, 16, 16, 3), dtype=np.uint8),
        "time/obs": 1.7e9 + k + 0.05 * np.arange(t) + 1e-7,  # float64 kept: stamps need the precision
    }


def stored_form(ep: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    cast = {k: v.astype(np.float32) for k, v in ep.items() if v.dtype == np.float64 and not k.startswith("time/")}
    return {**ep, **cast}


def assert_episode_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].shape == want[k].shape, k
        assert got[k].tobytes() == want[k].tobytes(), k


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    path = tmp_path / "demo.zarr"
    with EpisodeStore.create(path, fps=20, spec=make_spec().to_dict(), env_id="realrl/Lift-v0") as s:
        for k in range(3):
            s.append_episode(episode(k), task="lift", success=k != 1, source="teleop", operator="ana", meta={"k": k})
    return path


# ---------------------------------------------------------------- round trip and layout


def test_round_trip_metadata_and_iteration(filled: Path) -> None:
    with EpisodeStore.open(filled) as s:
        assert len(s) == 3 and s.n_steps == 4 + 5 + 6
        assert s.episode_ends.tolist() == [4, 9, 15]
        assert s.episode_slice(1) == slice(4, 9) and s.episode_slice(-1) == slice(9, 15)
        assert s.fps == 20.0 and s.env_id == "realrl/Lift-v0"
        assert s.spec is not None and EmbodimentSpec.from_dict(s.spec) == make_spec()
        for k, got in enumerate(s):
            assert_episode_equal(got, stored_form(episode(k)))
        assert_episode_equal(s.episode(-3), stored_form(episode(0)))
        m = s.episode_meta(1)
        assert (m["task"], m["success"], m["source"], m["operator"], m["meta"], m["length"]) == (
            "lift", False, "teleop", "ana", {"k": 1}, 5
        )
        with pytest.raises(IndexError):
            s.episode(3)
        with pytest.raises(StoreError, match="read-only"):
            s.append_episode(episode(0))


def test_layout_dtypes_chunks_and_codecs(filled: Path) -> None:
    root = zarr.open_group(zarr.storage.LocalStore(filled, read_only=True), mode="r")
    assert root.attrs["schema_version"] == 1 and root.attrs["fps"] == 20.0
    assert "consolidated_metadata" not in json.loads((filled / "zarr.json").read_text())
    ends = root["meta/episode_ends"]
    assert ends.dtype == np.int64 and ends[:].tolist() == [4, 9, 15]
    q = root["data/state/joint_pos"]
    assert q.dtype == np.float32 and q.shape == (15, 2)
    assert q.chunks == (math.ceil(LOWDIM_CHUNK_BYTES / 8), 2)  # >= 1 MB of steps per chunk
    blosc = q.compressors[0]
    assert (blosc.cname.value, blosc.shuffle.value) == ("zstd", "bitshuffle")
    assert root["data/time/obs"].dtype == np.float64
    assert root["data/reward"].shape == (15,)
    img = root["data/image/front"]
    assert img.dtype == np.uint8 and img.chunks == (1, 32, 40, 3) and img.shards == (256, 32, 40, 3)
    # diffusion_policy's ReplayBuffer reads exactly these two things.
    np.testing.assert_array_equal(root["data/action"][4:9], episode(1)["action"])


def test_info_and_validate_on_a_good_store(filled: Path) -> None:
    d = info(filled)
    assert d["episodes"] == 3 and d["frames"] == 15 and d["sources"] == {"teleop": 3}
    assert d["success_rate"] == pytest.approx(2 / 3) and d["size_bytes"] > 0
    assert d["keys"]["image/front"] == {"shape": [32, 40, 3], "dtype": "uint8"}
    assert "episodes    3" in format_info(d)
    assert validate(filled) == []


def test_delete_episode_rewrites_and_swaps(filled: Path) -> None:
    with EpisodeStore.open(filled, "a") as s:
        s.delete_episode(1)
        assert len(s) == 2 and s.episode_ends.tolist() == [4, 10]
        assert_episode_equal(s.episode(1), stored_form(episode(2)))
        assert s.episode_meta(1)["meta"] == {"k": 2}
        s.append_episode(episode(7))  # still the writer after the swap
    assert sorted(p.name for p in filled.parent.iterdir()) == ["demo.zarr"]  # no temp siblings left
    with EpisodeStore.open(filled) as s:
        assert len(s) == 3
        assert_episode_equal(s.episode(2), stored_form(episode(7)))
    assert validate(filled) == []


def test_merge(filled: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.zarr"
    with EpisodeStore.create(other, fps=20, spec=make_spec().to_dict(), env_id="realrl/Lift-v0") as s:
        s.append_episode(episode(5), source="policy")
    with EpisodeStore.merge([filled, other], tmp_path / "all.zarr") as m:
        assert len(m) == 4
        assert_episode_equal(m.episode(3), stored_form(episode(5)))
        assert m.episode_meta(3)["meta"]["origin"] == {"store": str(other), "episode": 0}
        assert m.episode_meta(3)["source"] == "policy"
    slow = tmp_path / "slow.zarr"
    EpisodeStore.create(slow, fps=10).close()
    with pytest.raises(StoreError, match="fps differs"):
        EpisodeStore.merge([filled, slow], tmp_path / "bad.zarr")
    assert not (tmp_path / "bad.zarr").exists()


def test_create_refuses_existing_and_bad_arguments(filled: Path) -> None:
    with pytest.raises(StoreError, match="already exists"):
        EpisodeStore.create(filled, fps=20)
    with EpisodeStore.open(filled, "a") as s:
        with pytest.raises(StoreError, match="open for writing by another process"):
            EpisodeStore.open(filled, "a")
        with pytest.raises(StoreError, match="open for writing by another process"):
            EpisodeStore.create(filled, fps=20, overwrite=True)
        assert sorted(p.name for p in filled.parent.iterdir()) == ["demo.zarr"]
        with pytest.raises(StoreError, match="source"):
            s.append_episode(episode(0), source="robot")
        with pytest.raises(StoreError, match="share the time dimension"):
            s.append_episode({**episode(0), "reward": np.zeros(2, np.float32)})
    (filled.parent / "notes").mkdir()
    (filled.parent / "notes" / "keep.txt").write_text("precious")
    with pytest.raises(StoreError, match="not an episode store"):
        EpisodeStore.create(filled.parent / "notes", fps=20, overwrite=True)
    assert (filled.parent / "notes" / "keep.txt").read_text() == "precious"


# ---------------------------------------------------------------- refusals leave the store untouched


def _steps(e: dict[str, np.ndarray]) -> int:
    return len(e["action"])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda e: {**e, "state/extra": np.zeros((_steps(e), 3), np.float32)}, "'state/extra' is not in the store"),
        (lambda e: {k: v for k, v in e.items() if k != "image/wrist"}, "'image/wrist' is missing from the episode"),
        (lambda e: {**e, "state/ee_pose": np.zeros((_steps(e), 6), np.float32)}, "'state/ee_pose': step shape"),
        (lambda e: {**e, "image/front": np.zeros((_steps(e), 16, 40, 3), np.uint8)}, "'image/front': step shape"),
        (lambda e: {**e, "action": e["action"].astype(np.int32)}, "'action': dtype int32 differs .* float32"),
    ],
    ids=["new_key", "missing_key", "shape", "image_shape", "dtype"],
)
def test_mismatched_episode_raises_before_writing(filled: Path, change, match: str) -> None:
    before = tree_hash(filled)
    with EpisodeStore.open(filled, "a") as s:
        before = tree_hash(filled)
        with pytest.raises(StoreError, match=match):
            s.append_episode(change(episode(9)))
        assert len(s) == 3
    assert tree_hash(filled) == before


# ---------------------------------------------------------------- damaged stores


def _expect_refusal(path: Path, match: str) -> None:
    before = tree_hash(path)
    modes: tuple[Literal["r", "a"], ...] = ("r", "a")
    for mode in modes:
        with pytest.raises(StoreError, match=match):
            EpisodeStore.open(path, mode)
    assert tree_hash(path) == before, "a failed open modified the store"


def test_deleted_array_directory(filled: Path) -> None:
    shutil.rmtree(filled / "data" / "action")
    _expect_refusal(filled, "data/action is missing")
    assert any("data/action is missing" in p for p in validate(filled))
    with pytest.raises(StoreError, match="restore"):
        repair(filled)


def test_array_shorter_than_episode_ends_and_repair(filled: Path) -> None:
    arr = zarr.open_array(zarr.storage.LocalStore(filled), path="data/reward", mode="r+")
    arr.resize((7,))  # loses the end of episode 1 and all of episode 2
    _expect_refusal(filled, r"shorter than the 15 committed steps \(data/reward has 7\)")
    fixed = repair(filled)
    assert any("dropped the last 2 episodes" in f for f in fixed)
    with EpisodeStore.open(filled) as s:
        assert len(s) == 1
        assert_episode_equal(s.episode(0), stored_form(episode(0)))
    assert validate(filled) == []


def test_unknown_schema_version(filled: Path) -> None:
    meta = json.loads((filled / "zarr.json").read_text())
    meta["attributes"]["schema_version"] = 99
    (filled / "zarr.json").write_text(json.dumps(meta))
    _expect_refusal(filled, "schema_version 99; this realrl reads version 1")


def test_dtype_changed_behind_the_stores_back(filled: Path) -> None:
    group = zarr.open_group(zarr.storage.LocalStore(filled), path="data", mode="r+")
    group.create_array("action", shape=(15, 2), dtype="float64", overwrite=True)
    _expect_refusal(filled, "data/action has dtype float64 but the store records float32")


def test_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _expect_refusal(tmp_path / "empty", "not an episode store")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        EpisodeStore.open(tmp_path / "file.zarr")
    zarr.open_group(zarr.storage.LocalStore(tmp_path / "other.zarr"), mode="w")
    _expect_refusal(tmp_path / "other.zarr", "not a realrl episode store")
    with pytest.raises(StoreError, match="no episode store at"):
        EpisodeStore.open(tmp_path / "missing.zarr")
    assert validate(tmp_path / "empty") and "not an episode store" in validate(tmp_path / "empty")[0]


@pytest.mark.parametrize("key", ["image/front", "state/ee_pose"])
def test_truncated_chunk_file(filled: Path, key: str) -> None:
    chunk = next(p for p in (filled / "data" / key / "c").rglob("*") if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    before = tree_hash(filled)
    with EpisodeStore.open(filled) as s, pytest.raises(StoreError, match=f"reading data/{key}.*truncated or corrupt"):
        s.episode(0)
    problems = validate(filled)
    assert problems and all(p.startswith("episode ") for p in problems)
    assert tree_hash(filled) == before
    # Every episode shares the damaged chunk here, so nothing can be dropped from the end alone.
    fixed = repair(filled)
    assert any("dropped the last 3 episodes" in f for f in fixed)
    with EpisodeStore.open(filled, "a") as s:
        assert len(s) == 0
        s.append_episode(episode(0))  # writable again
    assert validate(filled) == []


def test_corrupt_middle_episode_is_refused_by_repair(filled: Path) -> None:
    shard = filled / "data/image/front/c/0/0/0/0"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a flipped bit inside frame data, not the shard index
    shard.write_bytes(bytes(raw))
    problems = validate(filled)
    bad = sorted({int(p.split()[1].rstrip(":")) for p in problems})
    assert len(bad) == 1
    if bad[0] == 2:  # landed in the last episode: repair drops it
        assert any("dropped the last 1" in f for f in repair(filled))
    else:
        with pytest.raises(StoreError, match=r"delete_episodes\(\["):
            repair(filled)
        with EpisodeStore.open(filled, "a") as s:
            s.delete_episodes(bad)
    assert validate(filled) == []


def test_deleted_chunk_file_is_found_by_validate(filled: Path) -> None:
    (filled / "data/state/ee_pose/c/0/0").unlink()
    assert any("chunk file data/state/ee_pose/c/0/0 is missing" in p for p in validate(filled))


# ---------------------------------------------------------------- interrupted writes, simulated exactly


def test_torn_commit_is_invisible_then_dropped(filled: Path) -> None:
    ends = zarr.open_array(zarr.storage.LocalStore(filled), path="meta/episode_ends", mode="r+")
    ends.resize((4,))  # the resize of a commit whose entry was never written: it reads as 0
    for key in ("reward", "action"):
        arr = zarr.open_array(zarr.storage.LocalStore(filled), path=f"data/{key}", mode="r+")
        arr.resize((20, *arr.shape[1:]))  # data of the torn episode, written before its commit
    before = tree_hash(filled)
    with EpisodeStore.open(filled) as s:
        assert len(s) == 3
    assert tree_hash(filled) == before
    assert any("killed writer" in p for p in validate(filled))
    with EpisodeStore.open(filled, "a") as s:
        assert len(s) == 3 and s.recovered_steps == 5 and s.recovery
        s.append_episode(episode(3))
    assert validate(filled) == []


def test_drop_trailing_zeroes_before_shrinking(filled: Path) -> None:
    assert drop_trailing_episodes(filled, 1) == 2
    ends = zarr.open_array(zarr.storage.LocalStore(filled), path="meta/episode_ends", mode="r+")
    ends.resize((2,))  # a later torn commit must find 0 here, not the old end
    assert ends[:].tolist() == [4, 0]
    with EpisodeStore.open(filled, "a") as s:
        assert len(s) == 1


def test_interrupted_delete_swap_finishes_on_open(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    with EpisodeStore.create(path, fps=20) as s:
        s.append_episode(episode(0))
    with EpisodeStore.create(tmp_path / "b.zarr", fps=20) as s:
        s.append_episode(episode(1))
    # The state between the two renames of a rewrite: old moved away, complete new not yet in place.
    os.rename(path, tmp_path / "s.zarr.realrl-old")
    os.rename(tmp_path / "b.zarr", tmp_path / "s.zarr.realrl-new")
    with pytest.raises(StoreError, match="interrupted rewrite"):
        EpisodeStore.open(path)
    with EpisodeStore.open(path, "a") as s:
        assert_episode_equal(s.episode(0), stored_form(episode(1)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_leftover_arrays_of_a_first_append_that_never_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    with EpisodeStore.create(path, fps=20) as s:
        s._after_write = lambda key: (_ for _ in ()).throw(RuntimeError("power cut")) if key == "reward" else None
        with pytest.raises(StoreError, match="committed episodes are intact"):
            s.append_episode(episode(0))
    with EpisodeStore.open(path) as r:
        assert len(r) == 0 and r.keys == ()
    with EpisodeStore.open(path, "a") as s:
        assert any("never committed" in line for line in s.recovery)
        s.append_episode({"action": np.zeros((2, 3), np.float32)})  # a different key set is fine now
    assert validate(path) == []


# ---------------------------------------------------------------- real processes, real SIGKILL


def _check_store(s: EpisodeStore, at_least: int) -> None:
    assert at_least <= len(s) <= at_least + 1  # at most one commit can beat its "committed" print
    for k in range(len(s)):
        assert_episode_equal(s.episode(k), expected_episode(k))
        m = s.episode_meta(k)
        want = expected_meta(k)
        assert (m["task"], m["success"], m["meta"]) == (want["task"], want["success"], want["meta"])


def _start_writer(path: Path, total: int, stall: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(total), str(stall)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), f"writer did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
    return proc


def test_sigkill_never_loses_a_committed_episode(tmp_path: Path) -> None:
    path = tmp_path / "crash.zarr"
    EpisodeStore.create(path, fps=20).close()
    rng = random.Random(7)
    committed = 0
    recoveries = 0
    for _ in range(10):
        proc = _start_writer(path, total=10_000, stall=rng.choice([0.0, 0.002, 0.005]))
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        committed = max([committed, *(int(x.split()[1]) for x in out.splitlines() if x.startswith("committed"))])
        before = tree_hash(path)
        with EpisodeStore.open(path, "r") as r:  # a reader never repairs: it just shows committed episodes
            _check_store(r, committed)
        assert tree_hash(path) == before
        with EpisodeStore.open(path, "a") as s:
            recoveries += bool(s.recovery)
            _check_store(s, committed)
            committed = len(s)
        assert validate(path) == []
    assert committed >= 8, "the writer never got going"
    assert recoveries >= 3, "no kill landed inside an append; the test would prove nothing"


def test_reader_sees_only_committed_episodes_while_a_writer_appends(tmp_path: Path) -> None:
    path = tmp_path / "live.zarr"
    EpisodeStore.create(path, fps=20).close()
    total = 30
    proc = _start_writer(path, total=total, stall=0.001)
    reader = EpisodeStore.open(path, "r")
    seen, looks = 0, 0
    while True:
        running = proc.poll() is None
        if looks % 5 == 4:
            reader = EpisodeStore.open(path, "r")
        else:
            reader.refresh()
        looks += 1
        assert len(reader) >= seen, "a committed episode vanished"
        for k in range(max(0, seen - 1), len(reader)):  # new ones, plus the last again: its shard may be rewritten now
            assert_episode_equal(reader.episode(k), expected_episode(k))
        seen = len(reader)
        if not running:
            break
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    assert seen == total and looks > 5
