"""Training windows: edge padding, alignment with stored steps, images, splits, statistics."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data import EpisodeStore
from data.dataset import WindowConfig, WindowDataset, split_episodes
from data.stats import STATS_FILE, compute_stats, load_or_compute
from robot.core import ConfigError


def make_store(path: Path, lengths: list[int], image: bool = True) -> EpisodeStore:
    store = EpisodeStore.create(path, fps=20.0)
    t0 = 0
    for length in lengths:
        t = np.arange(t0, t0 + length, dtype=np.float32)  # global step id as the value
        steps = {
            "state/ee_pose": np.stack([t] * 7, 1),
            "state/gripper": t[:, None] * 0.5,
            "action": np.stack([t + 1000.0] * 3, 1),
        }
        if image:
            steps["image/front"] = (np.arange(t0, t0 + length) % 251).astype(np.uint8)[:, None, None, None] * np.ones(
                (1, 8, 10, 3), np.uint8)
        store.append_episode(steps, success=True, source="expert")
        t0 += length
    return store


def test_windows_are_edge_padded_and_aligned(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.zarr", [5, 7])
    ds = WindowDataset(store, WindowConfig(state_keys=("state/ee_pose",), image_keys=("image/front",),
                                           n_obs_steps=2, horizon=4))
    assert len(ds) == 12  # every step anchors a window
    first = ds[0]  # episode 0, t = 0: the observation before the start is padded with step 0
    np.testing.assert_array_equal(first["state/ee_pose"][:, 0].numpy(), [0, 0])
    np.testing.assert_array_equal(first["action"][:, 0].numpy(), [1000, 1000, 1001, 1002])
    last = ds[4]  # episode 0, t = 4 (its last step): actions past the end repeat the last one
    np.testing.assert_array_equal(last["state/ee_pose"][:, 0].numpy(), [3, 4])
    np.testing.assert_array_equal(last["action"][:, 0].numpy(), [1003, 1004, 1004, 1004])
    second = ds[5]  # episode 1 never borrows steps from episode 0
    np.testing.assert_array_equal(second["state/ee_pose"][:, 0].numpy(), [5, 5])
    assert second["image/front"].shape == (2, 3, 8, 10) and second["image/front"].dtype == torch.uint8
    np.testing.assert_array_equal(second["image/front"][:, 0, 0, 0].numpy(), [5, 5])
    np.testing.assert_array_equal(ds[7]["image/front"][:, 0, 0, 0].numpy(), [6, 7])


def test_dataloader_batches_have_the_documented_shapes(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.zarr", [30, 20])
    ds = WindowDataset(store, WindowConfig(state_keys=("state/ee_pose", "state/gripper"),
                                           image_keys=("image/front",)))
    batch = next(iter(DataLoader(ds, batch_size=8, shuffle=True)))
    assert batch["state/ee_pose"].shape == (8, 2, 7)
    assert batch["state/gripper"].shape == (8, 2, 1)
    assert batch["action"].shape == (8, 16, 3)
    assert batch["image/front"].shape == (8, 2, 3, 8, 10)


def test_split_by_episode_is_disjoint_and_seeded() -> None:
    train, val = split_episodes(20, 0.2, seed=1)
    assert len(val) == 4 and not set(train) & set(val) and sorted(train + val) == list(range(20))
    assert split_episodes(20, 0.2, seed=1) == (train, val)
    assert split_episodes(1, 0.5) == ([0], [])
    with pytest.raises(ConfigError):
        split_episodes(5, 1.0)


def test_episode_subset_and_bad_keys(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.zarr", [5, 7, 3], image=False)
    ds = WindowDataset(store, WindowConfig(state_keys=("state/ee_pose",)), episodes=[2])
    assert len(ds) == 3 and ds[0]["state/ee_pose"][1, 0] == 12
    with pytest.raises(ConfigError, match="no keys"):
        WindowDataset(store, WindowConfig(state_keys=("state/nope",)))
    with pytest.raises(ConfigError):
        WindowConfig(n_obs_steps=4, horizon=2)


def test_stats_match_numpy_and_are_cached_until_the_store_grows(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.zarr", [5, 7], image=False)
    s = compute_stats(store, ["state/ee_pose", "action"])
    everything = np.arange(12, dtype=np.float64)
    np.testing.assert_allclose(s["state/ee_pose"]["mean"], np.full(7, everything.mean()), rtol=1e-6)
    np.testing.assert_allclose(s["state/ee_pose"]["std"], np.full(7, everything.std()), rtol=1e-5)
    np.testing.assert_array_equal(s["action"]["min"], [1000] * 3)
    np.testing.assert_array_equal(s["action"]["max"], [1011] * 3)
    cached = load_or_compute(store, ["action"])
    assert (tmp_path / "s.zarr" / STATS_FILE).exists()
    np.testing.assert_array_equal(cached["action"]["max"], [1011] * 3)
    store.append_episode({"state/ee_pose": np.full((2, 7), 50, np.float32), "state/gripper": np.zeros((2, 1),
                          np.float32), "action": np.full((2, 3), 2000, np.float32)})
    np.testing.assert_array_equal(load_or_compute(store, ["action"])["action"]["max"], [2000] * 3)
    reopened = EpisodeStore.open(tmp_path / "s.zarr", "r")  # the stats file does not upset the store
    assert len(reopened) == 3
