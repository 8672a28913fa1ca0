"""Training loop: loss goes down, exact resume, metrics/plots; image policies end to end through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from data import EpisodeStore
from data.dataset import WindowConfig, WindowDataset
from data.stats import compute_stats
from policies.base_policies import DiffusionPolicy
from policies.config import ChunkConfig, DiffusionConfig, ObsConfig, UnetNet
from policies.io import load_policy
from policies.normalize import Normalizer
from policies.train import TrainConfig, Trainer


def toy_store(path: Path) -> EpisodeStore:
    store = EpisodeStore.create(path, fps=20.0)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.uniform(-1, 1, (1, 3)).astype(np.float32).repeat(20, 0)
        store.append_episode({"state/x": x, "action": np.tanh(2 * x[:, :2])}, success=True)  # action = f(state)
    return store


def make(tmp: Path, store: EpisodeStore, steps: int) -> Trainer:
    torch.manual_seed(0)
    wcfg = WindowConfig(state_keys=("state/x",), n_obs_steps=1, horizon=4)
    ds = WindowDataset(store, wcfg)
    policy = DiffusionPolicy(ObsConfig(state_keys=("state/x",), state_dims=(3,)), ChunkConfig(4, 1, 2), 2,
                             DiffusionConfig(net=UnetNet(down_dims=(16, 32), step_embed_dim=16, n_groups=4)),
                             Normalizer(compute_stats(store, ["state/x", "action"])))
    return Trainer(policy, ds, tmp, TrainConfig(steps=steps, batch_size=32, warmup_steps=2, checkpoint_every=3,
                                                val_every=3, progress=False), val_set=ds)


def test_loss_decreases_and_run_files_are_written(tmp_path: Path) -> None:
    store = toy_store(tmp_path / "s.zarr")
    tr = make(tmp_path / "run", store, 60)
    tr.fit()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert vals[-1] < 0.6 * vals[0], vals
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    policy = load_policy(tmp_path / "run" / "policy")
    assert policy.meta["train_step"] == 60


def test_resume_gives_exactly_the_uninterrupted_run(tmp_path: Path) -> None:
    store = toy_store(tmp_path / "s.zarr")
    straight = make(tmp_path / "a", store, 8)
    straight.fit()
    first = make(tmp_path / "b", store, 8)
    first.fit(stop_at=5)  # the process "dies" after its step-5 checkpoint
    second = make(tmp_path / "b", store, 8)
    assert second.resume() and second.step == 5
    second.fit()
    for (k, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    for a, b in zip(straight.ema.state_dict().values(), second.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def realrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robot.cli", *args], capture_output=True, text=True, timeout=900)


def test_image_policy_and_head_train_and_evaluate_end_to_end(tmp_path: Path) -> None:
    demos = tmp_path / "demos.zarr"
    r = realrl("data", "collect", "--out", str(demos), "--episodes", "2", "--cameras", "front", "--image-size", "32",
               "--no-progress")
    assert r.returncode == 0, r.stderr
    r = realrl("train", "base", "--store", str(demos), "--out", str(tmp_path / "base"), "--cameras", "front",
               "--steps", "3", "--batch-size", "8", "--eval-episodes", "1", "--down-dims", "16", "32",
               "--no-progress")
    assert r.returncode == 0, r.stderr
    base = load_policy(tmp_path / "base" / "policy")
    assert base.obs_cfg.image_keys == ("image/front",) and base.obs_cfg.image_shape == (32, 32)
    r = realrl("train", "head", "--teacher", str(tmp_path / "base"), "--out", str(tmp_path / "head"), "--steps", "3",
               "--batch-size", "8", "--eval-episodes", "1", "--mlp-hidden", "32", "--per-window", "1",
               "--rollout-episodes", "1", "--rollout-noise", "0.1", "--no-progress")
    assert r.returncode == 0, r.stderr
    rollouts = EpisodeStore.open(tmp_path / "head" / "rollouts.zarr")
    assert len(rollouts) == 1 and rollouts.episode_meta(0)["source"] == "policy"
    assert "image/front" in rollouts.keys and (tmp_path / "head" / "targets" / "model.safetensors").exists()
    # A DAgger round: the head's own rollouts plus the teacher's earlier ones, all labelled by the teacher.
    r = realrl("train", "head", "--teacher", str(tmp_path / "base"), "--out", str(tmp_path / "dagger"), "--kind",
               "meanflow", "--steps", "2", "--batch-size", "8", "--eval-episodes", "1", "--mlp-hidden", "32",
               "--per-window", "1", "--rollout-policy", str(tmp_path / "head"), "--rollout-episodes", "1",
               "--extra-states", str(tmp_path / "head" / "rollouts.zarr"), "--no-progress")
    assert r.returncode == 0, r.stderr
    dagger = EpisodeStore.open(tmp_path / "dagger" / "rollouts.zarr")
    assert dagger.episode_meta(0)["meta"]["policy"] == str((tmp_path / "head").resolve())
    cfg = json.loads((tmp_path / "dagger" / "config.json").read_text())
    assert cfg["extra_states"] == [str(tmp_path / "head" / "rollouts.zarr")]
    r = realrl("eval", "--policy", str(tmp_path / "head"), "--episodes", "1", "--json-out", str(tmp_path / "e.json"),
               "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "NFE 1" in r.stdout and "latency per action" in r.stdout
    res = json.loads((tmp_path / "e.json").read_text())
    assert 0.0 <= res["success"] <= 1.0 and res["act_ms_mean"] > 0 and res["nfe"] == 1
    # Evaluating on an env with another observation layout is refused with a clear message, not a crash.
    r = realrl("eval", "--policy", str(tmp_path / "head"), "--env", "FetchReach-v4", "--episodes", "1")
    assert r.returncode == 2 and "FetchReach-v4" in r.stderr and "Traceback" not in r.stderr


class Hold:
    """A policy that always sends the same action (enough to drive the rollout recorder)."""

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs: dict) -> np.ndarray:
        return np.zeros(7, np.float32)


def test_rollouts_record_the_states_a_policy_visits(tmp_path: Path) -> None:
    from robot.sessions.rollouts import record_rollouts

    policy = Hold()
    res = record_rollouts(policy, "realrl/FrankaLift-v0", tmp_path / "r.zarr", 2, seed=5, action_noise=0.2,
                          keys=("state/ee_pose", "state/gripper"), meta={"policy": "hold"})
    store = EpisodeStore.open(tmp_path / "r.zarr")
    assert policy.resets == 2 and len(store) == 2 and res["steps"] == store.n_steps and res["success"] == 0.0
    assert set(store.keys) == {"state/ee_pose", "state/gripper", "action", "reward"}
    assert store.episode_meta(1)["meta"] == {"policy": "hold", "seed": 6, "action_noise": 0.2}
    actions = store.episode(0)["action"]
    assert actions.std() > 0.1 and np.abs(actions).max() <= 1.0  # the noise was executed (and clipped)
    ee = store.episode(0)["state/ee_pose"]
    assert np.abs(ee[-1, :3] - ee[0, :3]).max() > 1e-3  # the states move with the executed noise


def test_head_sampling_defaults_depend_on_the_kind() -> None:
    from robot.sessions.train import TrainHeadConfig

    def cfg(**kw: object) -> TrainHeadConfig:
        return TrainHeadConfig(teacher=Path("t"), out=Path("o"), **kw)  # type: ignore[arg-type]

    assert cfg(kind="consistency").sampling() == cfg(kind="meanflow").sampling() == (16, 100)
    assert cfg(kind="mip").sampling() == (2, 0)
    assert cfg(kind="meanflow", per_window=4, rollout_episodes=0).sampling() == (4, 0)
    assert cfg().steps == 6000
    assert cfg(kind="meanflow").student_hidden() == (1024,) * 3 and cfg(kind="mip").student_hidden() == (512,) * 3
    assert cfg(kind="meanflow", mlp_hidden=(32,)).student_hidden() == (32,)
