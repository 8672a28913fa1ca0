"""Recorder: synthetic env loops through both backends (writer process, writer thread) into real stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data._writer_proc import RING_PREFIX, ring_dir
from data.recorder import Recorder
from data.store import EpisodeStore
from robot.core.errors import StoreError

CAMS = ("front", "wrist", "side")


@pytest.fixture(params=["process", "thread"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def my_rings(pid: int | None = None) -> list[Path]:
    """Ring files of this (or another) control process still in /dev/shm."""
    return sorted(ring_dir().glob(f"{RING_PREFIX}{pid or os.getpid()}-*"))


@pytest.fixture(autouse=True)
def no_leaked_rings() -> Any:
    yield
    assert my_rings() == [], "a shared-memory ring outlived its recorder"


def observation(i: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    obs: dict[str, np.ndarray] = {
        "state/joint_pos": rng.standard_normal(7).astype(np.float32),
        "state/gripper": np.array([i % 2], dtype=np.float32),
        "time/obs": np.float64(1.7e9 + 0.05 * i + 1.23e-6),  # sub-microsecond detail must survive
    }
    for cam in CAMS:
        obs[f"image/{cam}"] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return obs


def run_episode(rec: Recorder, n: int, seed: int, info: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Feed n steps; returns the steps that add_step accepted."""
    rng = np.random.default_rng(seed)
    fed = []
    rec.start_episode()
    for i in range(n):
        obs = observation(i, rng)
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        reward = float(rng.standard_normal())
        if rec.add_step(obs, action, reward, info):
            fed.append(({k: v.copy() for k, v in obs.items()}, action.copy(), reward))
        obs["state/joint_pos"][:] = 0  # the env reuses its buffers: the recorder must have copied
    return fed


def assert_recorded(ep: dict[str, np.ndarray], fed: list[tuple[Any, ...]]) -> None:
    assert len(ep["action"]) == len(fed)
    for key in fed[0][0]:
        want = np.stack([obs[key] for obs, _, _ in fed])
        assert ep[key].dtype == want.dtype and ep[key].tobytes() == want.tobytes(), key
    np.testing.assert_array_equal(ep["action"], np.stack([a for _, a, _ in fed]))
    np.testing.assert_array_equal(ep["reward"], np.array([r for _, _, r in fed], dtype=np.float32))
    assert ep["time/recorder"].dtype == np.float64 and np.all(np.diff(ep["time/recorder"]) >= 0)


def test_records_episodes_exactly(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "rec.zarr"
    with EpisodeStore.create(path, fps=20) as store:
        with Recorder(store, queue_size=512, backend=backend) as rec:
            fed0 = run_episode(rec, 200, seed=0)
            assert rec.end_episode(True, task="lift", source="teleop", operator="bo", meta={"note": "x"}) == 0
            run_episode(rec, 20, seed=9)
            rec.discard_episode()
            fed1 = run_episode(rec, 30, seed=1)
            assert rec.end_episode(False, source="policy", wait=False) is None
        assert len(store) == 2  # after close the caller's handle sees the new episodes and writes again
        store.append_episode(store.episode(1))
    stats = rec.stats()  # after close: the writer has flushed
    assert stats.steps_dropped == 0 and stats.steps_recorded == 250
    assert stats.steps_written == 230 and stats.episodes_written == 2 and stats.episodes_discarded == 1
    assert stats.image_keys == tuple(f"image/{c}" for c in sorted(CAMS))
    assert 0 < stats.add_step_mean_ms < 2.0 and stats.add_step_max_ms < 100.0
    assert 1 <= stats.queue_high_water <= stats.queue_size == 512
    with EpisodeStore.open(path) as store:
        assert len(store) == 3
        assert_recorded(store.episode(0), fed0)
        assert_recorded(store.episode(1), fed1)
        m = store.episode_meta(0)
        assert (m["success"], m["task"], m["source"], m["operator"]) == (True, "lift", "teleop", "bo")
        assert m["meta"] == {"note": "x", "dropped_steps": 0, "offered_steps": 200}
        assert store.schema["image/front"].shape == (64, 64, 3)


def test_backends_write_identical_stores(tmp_path: Path) -> None:
    def record(backend: str) -> EpisodeStore:
        path = tmp_path / f"{backend}.zarr"
        with EpisodeStore.create(path, fps=30) as store, Recorder(store, backend=backend, info_keys=("k",)) as rec:
            for e in range(3):
                run_episode(rec, 40 + 7 * e, seed=e, info={"k": np.int16(e)})
                rec.end_episode(e % 2 == 0, task=f"t{e}", source="expert", meta={"e": e}, wait=e == 2)
        return EpisodeStore.open(path)

    proc, thread = record("process"), record("thread")
    assert proc.schema == thread.schema and len(proc) == len(thread) == 3
    for i in range(3):
        a, b = proc.episode(i), thread.episode(i)
        for key in sorted(set(a) - {"time/recorder"}):  # wall clock at add_step differs between the runs
            assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), key
        ma, mb = proc.episode_meta(i), thread.episode_meta(i)
        ma.pop("wall_time"), mb.pop("wall_time")
        assert ma == mb


def test_info_keys_are_recorded(tmp_path: Path, backend: str) -> None:
    with EpisodeStore.create(tmp_path / "s.zarr", fps=20) as store, \
            Recorder(store, info_keys=("success",), backend=backend) as rec:
        run_episode(rec, 5, seed=0, info={"success": True})
        rec.end_episode(True)
        assert store.episode(0)["info/success"].tolist() == [True] * 5  # readable while recording
        if backend == "process":
            with pytest.raises(StoreError, match="read-only"):  # but not writable: the writer process is
                store.append_episode({"action": np.zeros((1, 4), np.float32)})
        rec.start_episode()
        with pytest.raises(StoreError, match="info has no key 'success'"):
            rec.add_step(observation(0, np.random.default_rng(0)), np.zeros(4, np.float32), 0.0, {})
        rec.discard_episode()


class SlowStore(EpisodeStore):
    """A store on a slow disk: every append takes a while, so the writer falls behind."""

    def append_episode(self, steps: dict[str, np.ndarray], **kw: Any) -> int:
        time.sleep(0.5)
        return super().append_episode(steps, **kw)


def test_full_queue_drops_and_reports_instead_of_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, backend: str
) -> None:
    path = tmp_path / "slow.zarr"
    EpisodeStore.create(path, fps=20).close()
    store = SlowStore.open(path, "a")  # the writer process opens the same class
    # Episodes ended before the writer stops taking steps: the writer thread drains nothing while it appends;
    # the writer process drains while one episode commits and the next waits, and stops at a third.
    before = 1 if backend == "thread" else 3
    with Recorder(store, queue_size=1, backend=backend) as rec:
        for e in range(before):
            run_episode(rec, 1, seed=e)
            time.sleep(0.05)  # the writer takes the step off the queue (or ring)
            rec.end_episode(True, wait=False)
        time.sleep(0.1)
        t0 = time.perf_counter()
        fed = run_episode(rec, 50, seed=7)
        elapsed = time.perf_counter() - t0
        index = rec.end_episode(False)
        stats = rec.stats()
    store.close()
    assert elapsed < 0.25, "add_step blocked on the full queue"
    assert stats.steps_dropped >= 40 and stats.steps_recorded + stats.steps_dropped == before + 50
    assert stats.queue_high_water == 1
    assert "steps dropped" in caplog.text
    with EpisodeStore.open(path) as s:
        m = s.episode_meta(before)
        assert index == before and m["meta"]["offered_steps"] == 50
        assert m["meta"]["dropped_steps"] == 50 - m["length"] >= 40
        # The steps that made it are the ones add_step accepted, intact, stamps and all.
        assert_recorded(s.episode(before), fed)


def test_misuse_is_reported(tmp_path: Path, backend: str) -> None:
    with EpisodeStore.create(tmp_path / "s.zarr", fps=20) as store:
        with Recorder(store, backend=backend) as rec:
            with pytest.raises(StoreError, match="start_episode first"):
                rec.add_step({}, np.zeros(2), 0.0)
            rec.start_episode()
            with pytest.raises(StoreError, match="already open"):
                rec.start_episode()
            rng = np.random.default_rng(0)
            rec.add_step(observation(0, rng), np.zeros(4, np.float32), 0.0)
            rec.add_step({**observation(1, rng), "state/extra": np.zeros(1)}, np.zeros(4, np.float32), 0.0)
            with pytest.raises(StoreError, match="same observation keys"):
                rec.end_episode(True)
            rec.start_episode()
            rec.add_step(observation(0, rng), np.zeros(4, np.float32), 0.0)
            rec.add_step({**observation(1, rng), "state/gripper": np.zeros(2, np.float32)}, np.zeros(4), 0.0)
            with pytest.raises(StoreError, match="changed shape"):
                rec.end_episode(True)
            rec.start_episode()  # the recorder survives a failed episode
            rec.add_step(observation(2, rng), np.zeros(4, np.float32), 0.0)
            assert rec.end_episode(True) == 0
        with pytest.raises(StoreError, match="mode='a'"):
            Recorder(EpisodeStore.open(tmp_path / "s.zarr", "r"), backend=backend)
        with pytest.raises(StoreError, match="backend must be"):
            Recorder(store, backend="fork")  # type: ignore[arg-type]


def test_writer_death_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "dead.zarr"
    store = EpisodeStore.create(path, fps=20)
    rec = Recorder(store)
    fed = run_episode(rec, 10, seed=0)
    assert rec.end_episode(True) == 0
    run_episode(rec, 5, seed=1)
    assert len(my_rings()) == 1
    os.kill(rec._writer._proc.pid, signal.SIGKILL)
    rec._writer._proc.wait()
    t0 = time.perf_counter()
    with pytest.raises(StoreError, match=r"writer process \(pid \d+\) died \(exit code -9\)"):
        rec.add_step(observation(0, np.random.default_rng(0)), np.zeros(4, np.float32), 0.0)
    assert time.perf_counter() - t0 < 1.0
    assert my_rings() == []
    with pytest.raises(StoreError, match="died"):
        rec.end_episode(True)
    rec.close()  # already reported: close() only cleans up
    # The caller's store is its own again: committed episodes intact, writable.
    assert len(store) == 1
    assert_recorded(store.episode(0), fed)
    store.append_episode(store.episode(0))
    store.close()


def test_writer_death_is_raised_by_end_episode_and_close(tmp_path: Path) -> None:
    with EpisodeStore.create(tmp_path / "d.zarr", fps=20) as store:
        rec = Recorder(store)
        run_episode(rec, 3, seed=0)
        os.kill(rec._writer._proc.pid, signal.SIGKILL)
        with pytest.raises(StoreError, match="died"):
            rec.end_episode(True)
        rec2 = Recorder(store)
        run_episode(rec2, 3, seed=0)
        rec2.end_episode(True, wait=False)
        os.kill(rec2._writer._proc.pid, signal.SIGKILL)
        with pytest.raises(StoreError, match="died"):
            rec2.close()
        assert len(store) <= 1


CONTROL = """
import sys, time
import numpy as np
from data import EpisodeStore, Recorder
sys.path.insert(0, {tests!r})
from test_recorder import run_episode
store = EpisodeStore.open({path!r}, "a")
rec = Recorder(store)
for e in range(2):
    run_episode(rec, 30, seed=e)
    rec.end_episode(True, wait=e == 1)
run_episode(rec, 25, seed=2)  # left open: the kill lands mid-episode
print(rec._writer._proc.pid, flush=True)
time.sleep(60)
"""


def test_killed_control_process_leaves_committed_episodes_and_no_ring(tmp_path: Path) -> None:
    path = tmp_path / "orphan.zarr"
    EpisodeStore.create(path, fps=20).close()
    code = CONTROL.format(tests=str(Path(__file__).parent), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    writer_pid = int(proc.stdout.readline())
    assert len(my_rings(proc.pid)) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while True:  # the orphaned writer notices, unlinks the ring and exits (releasing the writer lock)
        try:
            store = EpisodeStore.open(path, "a")
            break
        except StoreError:
            assert time.monotonic() < deadline, f"the writer process {writer_pid} outlived its control process"
            time.sleep(0.05)
    assert my_rings(proc.pid) == []
    with store:
        assert len(store) == 2 and store.recovered_steps == 0
        for e in range(2):
            assert_recorded(store.episode(e), [(o, a, r) for o, a, r in _replay(30, seed=e)])


def _replay(n: int, seed: int) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        obs = observation(i, rng)
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        out.append((obs, action, float(rng.standard_normal())))
    return out
