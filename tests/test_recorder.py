"""Recorder: synthetic env loops through the writer thread into a real store on disk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data.recorder import Recorder
from data.store import EpisodeStore
from robot.core.errors import StoreError

CAMS = ("front", "wrist", "side")


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
    rng = np.random.default_rng(seed)
    fed = []
    rec.start_episode()
    for i in range(n):
        obs = observation(i, rng)
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        reward = float(rng.standard_normal())
        rec.add_step(obs, action, reward, info)
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


def test_records_episodes_exactly(tmp_path: Path) -> None:
    path = tmp_path / "rec.zarr"
    with EpisodeStore.create(path, fps=20) as store, Recorder(store, queue_size=512) as rec:
        fed0 = run_episode(rec, 200, seed=0)
        assert rec.end_episode(True, task="lift", source="teleop", operator="bo", meta={"note": "x"}) == 0
        run_episode(rec, 20, seed=9)
        rec.discard_episode()
        fed1 = run_episode(rec, 30, seed=1)
        assert rec.end_episode(False, source="policy", wait=False) is None
    stats = rec.stats()  # after close: the writer has flushed
    assert stats.steps_dropped == 0 and stats.steps_recorded == 250
    assert stats.steps_written == 230 and stats.episodes_written == 2 and stats.episodes_discarded == 1
    assert stats.image_keys == tuple(f"image/{c}" for c in sorted(CAMS))
    assert 0 < stats.add_step_mean_ms < 2.0 and stats.add_step_max_ms < 100.0
    assert 1 <= stats.queue_high_water <= 512
    with EpisodeStore.open(path) as store:
        assert len(store) == 2
        assert_recorded(store.episode(0), fed0)
        assert_recorded(store.episode(1), fed1)
        m = store.episode_meta(0)
        assert (m["success"], m["task"], m["source"], m["operator"]) == (True, "lift", "teleop", "bo")
        assert m["meta"] == {"note": "x", "dropped_steps": 0, "offered_steps": 200}
        assert store.schema["image/front"].shape == (64, 64, 3)


def test_info_keys_are_recorded(tmp_path: Path) -> None:
    with EpisodeStore.create(tmp_path / "s.zarr", fps=20) as store, Recorder(store, info_keys=("success",)) as rec:
        run_episode(rec, 5, seed=0, info={"success": True})
        rec.end_episode(True)
        assert store.episode(0)["info/success"].tolist() == [True] * 5
        rec.start_episode()
        with pytest.raises(StoreError, match="info has no key 'success'"):
            rec.add_step(observation(0, np.random.default_rng(0)), np.zeros(4, np.float32), 0.0, {})
        rec.discard_episode()


class SlowStore(EpisodeStore):
    """A store on a slow disk: every append takes a while, so the writer falls behind."""

    def append_episode(self, steps: dict[str, np.ndarray], **kw: Any) -> int:
        time.sleep(0.5)
        return super().append_episode(steps, **kw)


def test_full_queue_drops_and_reports_instead_of_blocking(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "slow.zarr"
    EpisodeStore.create(path, fps=20).close()
    store = SlowStore.open(path, "a")
    with Recorder(store, queue_size=1) as rec:
        run_episode(rec, 3, seed=0)
        rec.end_episode(True, wait=False)
        time.sleep(0.1)  # the writer is now inside the slow append
        t0 = time.perf_counter()
        fed = run_episode(rec, 50, seed=1)
        elapsed = time.perf_counter() - t0
        index = rec.end_episode(False)
        stats = rec.stats()
    store.close()
    assert elapsed < 0.25, "add_step blocked on the full queue"
    assert stats.steps_dropped >= 40 and stats.steps_recorded + stats.steps_dropped == 53
    assert stats.queue_high_water == 1
    assert "steps dropped" in caplog.text
    with EpisodeStore.open(path) as s:
        m = s.episode_meta(1)
        assert index == 1 and m["meta"]["offered_steps"] == 50
        assert m["meta"]["dropped_steps"] == 50 - m["length"] >= 40
        # The steps that made it are the first ones fed, intact, stamps and all.
        assert_recorded(s.episode(1), fed[: m["length"]])


def test_misuse_is_reported(tmp_path: Path) -> None:
    with EpisodeStore.create(tmp_path / "s.zarr", fps=20) as store:
        with Recorder(store) as rec:
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
            rec.start_episode()  # the recorder survives a failed episode
            rec.add_step(observation(2, rng), np.zeros(4, np.float32), 0.0)
            assert rec.end_episode(True) == 0
        with pytest.raises(StoreError, match="mode='a'"):
            Recorder(EpisodeStore.open(tmp_path / "s.zarr", "r"))
