"""`realrl data collect|info|validate|repair` end to end, as a user runs them."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from data import EpisodeStore


def realrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robot.cli", *args], capture_output=True, text=True, timeout=600)


def test_collect_info_validate_repair(tmp_path: Path) -> None:
    out = tmp_path / "demos.zarr"
    r = realrl("data", "collect", "--out", str(out), "--env", "realrl/FrankaLift-v0", "--episodes", "3",
               "--cameras", "front", "--image-size", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "recorded 3 episodes (3 successful), kept 3, dropped steps 0" in r.stdout

    store = EpisodeStore.open(out, "r")
    assert len(store) == 3 and store.env_id == "realrl/FrankaLift-v0"
    assert store.spec is not None and store.spec["name"] == "franka_panda"
    ep = store.episode(0)
    assert ep["image/front"].shape[1:] == (32, 32, 3) and ep["action"].shape[1] == 7
    assert np.all(np.abs(ep["action"]) <= 1.0 + 1e-6)
    assert np.all(np.diff(ep["time/state"]) > 0)  # stamps advance with the robot clock
    assert all(store.episode_meta(i)["success"] and store.episode_meta(i)["source"] == "expert" for i in range(3))
    assert [store.episode_meta(i)["meta"]["seed"] for i in range(3)] == [0, 1, 2]
    store.close()

    # Appending continues the seed sequence and keeps earlier episodes.
    r = realrl("data", "collect", "--out", str(out), "--env", "realrl/FrankaLift-v0", "--episodes", "1",
               "--cameras", "front", "--image-size", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    store = EpisodeStore.open(out, "r")
    assert len(store) == 4 and store.episode_meta(3)["meta"]["seed"] == 3
    store.close()

    for fmt, target in (("lerobot", tmp_path / "le"), ("robomimic", tmp_path / "rm.hdf5")):
        r = realrl("data", "export", str(out), str(target), "--format", fmt)
        assert r.returncode == 0, r.stderr
        back = tmp_path / f"back_{fmt}.zarr"
        r = realrl("data", "import", str(target), str(back), "--format", fmt)
        assert r.returncode == 0 and "imported 4 episodes" in r.stdout, r.stderr
        b = EpisodeStore.open(back, "r")
        np.testing.assert_array_equal(b.episode(2)["action"], EpisodeStore.open(out, "r").episode(2)["action"])
    r = realrl("data", "export", str(out), str(tmp_path / "le"))
    assert r.returncode == 2 and "exists" in r.stderr

    r = realrl("data", "info", str(out))
    assert r.returncode == 0 and "episodes    4" in r.stdout and "image/front" in r.stdout
    assert realrl("data", "validate", str(out)).returncode == 0

    # Corrupt the newest image shard: validate says so, repair drops the episodes it holds (here all four
    # fit in one shard of a few hundred frames) and leaves a store that validates.
    shard = sorted((out / "data" / "image" / "front").rglob("c/*/*/*/*"))[-1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    r = realrl("data", "validate", str(out))
    assert r.returncode == 1 and "problem:" in r.stdout
    r = realrl("data", "repair", str(out))
    assert r.returncode == 0 and "fixed:" in r.stdout, r.stdout + r.stderr
    assert realrl("data", "validate", str(out)).returncode == 0
    assert len(EpisodeStore.open(out, "r")) < 4

    r = realrl("data", "collect", "--out", str(out), "--env", "realrl/FrankaStack-v0", "--episodes", "1")
    assert r.returncode == 2 and "holds episodes of realrl/FrankaLift-v0" in r.stderr
    r = realrl("data", "info", str(tmp_path / "nope"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
