"""Goal-conditioned aids of the residual learner. Hindsight relabelling: which goals a task accepts, relabelled
episodes with the base re-run on the new goal, the batched base re-run, `--her` in the training loop with exact
resume. The goal offset input (`--goal-delta`)."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from policies.io import load_policy
from policies.residual.demos import base_actions_along
from policies.residual.hindsight import pick_goals, relabel
from policies.residual.policy import Features, load_residual_policy
from robot.core.errors import ConfigError
from robot.sessions.envs import make_env
from robot.sessions.residual import ResidualTrainer, TrainResidualConfig
from robot.sessions.train import TrainBaseConfig, train_base
from tests.conftest import record_expert_demos

PP = "realrl/FrankaPickPlace-v0"


@pytest.fixture(scope="module")
def pp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(demo store, base run): 3 clean PickPlace expert demos and a goal-conditioned BC base re-planning every step."""
    root = tmp_path_factory.mktemp("pp")
    demos = record_expert_demos(PP, root / "demos.zarr", 3)
    base = root / "base"
    train_base(TrainBaseConfig(store=demos, out=base, policy="bc", down_dims=(16, 32), steps=30, batch_size=32,
                               n_action_steps=1, eval_every=0, eval_episodes=1, progress=False, threads=1))
    return demos, base


def side_goal(obs: dict[str, np.ndarray]) -> np.ndarray:
    """A spot on the table 10+ cm from the cube's start, on the other side of the table's centre line."""
    y = -0.1 if obs["state/cube_pose"][1] > 0 else 0.1
    return np.array([0.52, y, obs["state/goal_pos"][2]], np.float32)


def expert_episode_to_the_side(seed: int) -> tuple[Any, list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """The clean expert carrying the cube to side_goal instead of the env's goal: (env, observations, actions,
    that spot); the env is left open, before its next reset."""
    env = make_env(PP)
    task = env.unwrapped.task
    expert = task.expert()
    obs, _ = env.reset(seed=seed)
    fake = side_goal(obs)
    observations, actions = [obs], []
    for _ in range(task.max_episode_steps):
        a = expert.act({**obs, "state/goal_pos": fake})
        obs, _, terminated, truncated, _ = env.step(a)
        observations.append(obs)
        actions.append(np.asarray(a, np.float32))
        if terminated or truncated:
            break
    return env, observations, np.stack(actions), fake


def test_pickplace_accepts_only_resting_cube_positions_away_from_the_start() -> None:
    env = make_env(PP)
    task = env.unwrapped.task
    obs, _ = env.reset(seed=3)
    start = obs["state/cube_pose"][:3].astype(np.float64)
    h = float(task._half["cube"][2])
    moved = np.array([0.0, 0.12, 0.0]) if start[1] < 0 else np.array([0.0, -0.12, 0.0])
    achieved = np.stack([start, start + moved, start + moved + [0, 0, 0.04], start + moved + [0.5, 0, 0],
                         start + moved + [0, 0, 0.003]])
    ok, goals = task.hindsight_goals(achieved, obs)
    # at the start: too close; moved on the table: yes; in the air: no; off the table region: no; 3 mm up: yes
    assert ok.tolist() == [False, True, False, False, True]
    np.testing.assert_allclose(goals[ok][:, 2], h)  # set on the table like a drawn goal
    assert task.goal_observation(goals[1])["state/goal_pos"].dtype == np.float32
    env.close()


def test_batched_base_rerun_equals_stepping_the_base(pp: tuple[Path, Path]) -> None:
    _, base_run = pp
    base = load_policy(base_run / "policy")
    env = make_env(PP)
    obs, _ = env.reset(seed=5)
    observations = [obs]
    for _ in range(12):
        obs, *_ = env.step(env.action_space.sample() * 0.3)
        observations.append(obs)
    env.close()
    batched = base_actions_along(base, observations)  # BC, Ta=1: one batched call
    base.reset()
    stepped = np.stack([np.clip(base.act(o), -1, 1) for o in observations])
    np.testing.assert_allclose(batched, stepped, atol=1e-5)


def test_relabelled_episode_reaches_its_goal_at_the_cut_with_the_base_rerun_for_it(pp: tuple[Path, Path]) -> None:
    _, base_run = pp
    env, observations, actions, other = expert_episode_to_the_side(seed=11)
    task = env.unwrapped.task
    goals = pick_goals(task, observations, 3, np.random.default_rng(0))
    assert 1 <= len(goals) <= 3
    assert all(np.linalg.norm(g[:2] - other[:2]) < 0.02 for g in goals)  # where the expert set the cube down
    base = load_policy(base_run / "policy")
    keys = tuple(base.obs_cfg.state_keys)
    feats_fn = Features.fit(keys, {k: np.stack([o[k] for o in observations]) for k in keys}, base.action_dim)
    ep = relabel(observations, actions, goals[0], task, base, feats_fn)
    assert ep is not None
    feats, acts = ep
    achieved = np.stack([o["achieved_goal"] for o in observations[1:]])
    first = int(np.flatnonzero(np.linalg.norm(achieved - goals[0], axis=1) <= task.tolerance)[0])
    assert len(acts) == first + 1 and len(feats) == first + 2
    np.testing.assert_array_equal(acts, actions[: first + 1])
    relabelled = [{**o, **task.goal_observation(goals[0])} for o in observations[: first + 2]]
    expected = base_actions_along(base, relabelled)
    np.testing.assert_allclose(feats[:, -base.action_dim:], expected, atol=1e-6)
    original = base_actions_along(base, observations[: first + 2])
    assert np.abs(expected - original).max() > 1e-3  # the base conditions on the goal: re-running it matters
    # a goal the episode never reached gives nothing
    assert relabel(observations, actions, goals[0] + [0.2, 0, 0], task, base, feats_fn) is None
    env.close()


def test_her_in_training_stores_relabelled_successes_and_resumes_exactly(pp: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    demos, base_run = pp

    def cfg(**kw: Any) -> TrainResidualConfig:
        args: dict[str, Any] = dict(out=tmp_path / "r", base=base_run, demos=demos, env=PP, steps=400, num_envs=1,
                                    scale=2.0, her=2, warmup_steps=0, critic_warmup_steps=0, hidden=(32, 32),
                                    n_heads=3, batch_size=16, eval_every=0, eval_episodes=1, progress=False)
        args.update(kw)
        return TrainResidualConfig(**args)

    tr = ResidualTrainer(cfg())
    assert tr.her is not None
    # Drive env 0 with the clean expert carrying the cube 12 cm off to the side of the env's goal: the episode fails
    # with the cube resting there. At scale 2 the residual reaches any action, so the exploring actor is swapped
    # for "the residual that makes the executed action the expert's".
    expert = tr.envs[0].unwrapped.task.expert()
    aim: dict[str, np.ndarray] = {}

    def expert_residual(feats: np.ndarray, explore: bool = False) -> np.ndarray:
        obs = tr._obs[0]
        if tr._t[0] == 0:
            expert.reset()
            aim["goal"] = side_goal(obs)
        a = expert.act({**obs, "state/goal_pos": aim["goal"]})
        return ((np.asarray(a) - obs["base_action"]) / 2.0)[None].astype(np.float32)

    tr.learner.act = expert_residual  # type: ignore[method-assign]
    while tr.episodes == 0:
        tr.collect()
    assert tr.recent[-1] == 0.0  # the env's own goal was not reached
    n = len(tr.her)
    assert n > 0
    rows = np.arange(n)
    assert 1 <= tr.her.reward[rows, 0].sum() <= 2  # one success per relabelled episode
    assert tr.her.terminated[n - 1, 0] and tr.her.reward[n - 1, 0] == 1.0
    # the relabelled goal is where the expert put the cube, not the env's goal
    goal_cols = slice(sum(tr.features.state_dims[:3]), sum(tr.features.state_dims[:4]))
    assert tr.features.state_keys[3] == "state/goal_pos"
    mean, std = np.asarray(tr.features.mean[goal_cols]), np.asarray(tr.features.std[goal_cols])
    goal = mean + tr.her.obs[0, 0, goal_cols] * std
    assert np.linalg.norm(goal[:2] - aim["goal"][:2]) < 0.02
    online_goal = mean + tr.online.obs[0, 0, goal_cols] * std
    assert np.linalg.norm(online_goal[:2] - aim["goal"][:2]) > 0.05
    # batches mix relabelled transitions in: share = size share, capped at her / (her + 1) of the online half
    batch = next(tr._online_with_hindsight(100))
    h, o = len(tr.her), len(tr.online)
    from_her = np.isin(batch.obs[:, goal_cols.start], tr.her.obs[:h, 0, goal_cols.start]).sum()
    assert from_her == min(round(100 * h / (h + o)), round(100 * 2 / 3))
    tr.save()
    m1 = tr.update()
    again = ResidualTrainer(cfg(resume=True))
    assert again.resumed and again.her is not None and len(again.her) == n
    np.testing.assert_array_equal(again.her.obs[:n], tr.her.obs[:n])
    m2 = again.update()
    assert m1 == m2
    for p1, p2 in zip(tr.learner.critic.parameters(), again.learner.critic.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)


def test_goal_delta_features_give_the_standardized_goal_offset_and_its_norm() -> None:
    rng = np.random.default_rng(0)
    states = {"state/cube_pose": rng.normal(size=(50, 7)), "state/goal_pos": rng.normal(size=(50, 3)),
              "state/gripper": rng.normal(size=(50, 1))}
    keys = ("state/cube_pose", "state/goal_pos", "state/gripper")
    plain = Features.fit(keys, states, 4)
    f = Features.fit(keys, states, 4, goal_delta=("state/cube_pose", "state/goal_pos", 3))
    assert f.dim == plain.dim + 4 and f.delta_dim == 4
    x = f.batch(states, np.zeros((50, 4)))
    np.testing.assert_allclose(x[:, :11], plain.batch(states, np.zeros((50, 4)))[:, :11], atol=1e-6)
    off = states["state/cube_pose"][:, :3] - states["state/goal_pos"]
    raw = np.concatenate([off, np.linalg.norm(off, axis=1, keepdims=True)], 1)
    np.testing.assert_allclose(x[:, 11:15], (raw - raw.mean(0)) / raw.std(0), atol=1e-5)
    np.testing.assert_array_equal(x[:, -4:], 0.0)  # the base action stays in the last columns
    assert Features.from_json(f.to_json()) == f
    assert "goal_delta" not in plain.to_json()  # feature JSON of runs without it is unchanged (resume checks it)
    with pytest.raises(ConfigError, match="goal_delta"):
        Features.fit(keys, states, 4, goal_delta=("state/cube_pose", "state/ee_pose", 3))
    with pytest.raises(ConfigError, match="goal_delta"):
        Features.fit(keys, states, 4, goal_delta=("state/cube_pose", "state/gripper", 3))


def test_goal_delta_run_trains_saves_and_reloads_its_features(pp: tuple[Path, Path], tmp_path: Path) -> None:
    demos, base_run = pp
    cfg = TrainResidualConfig(out=tmp_path / "r", base=base_run, demos=demos, env=PP, steps=60, num_envs=1,
                              goal_delta=True, warmup_steps=20, critic_warmup_steps=20, hidden=(16,), n_heads=2,
                              batch_size=8, eval_every=0, eval_episodes=1, progress=False)
    tr = ResidualTrainer(cfg)
    assert tr.features.goal_delta == ("state/cube_pose", "state/goal_pos", 3)
    tr.train()
    policy = load_residual_policy(tmp_path / "r" / "policy")
    assert policy.features == tr.features
    env = make_env(PP)
    obs, _ = env.reset(seed=1)
    policy.reset()
    assert np.isfinite(policy.act(obs)).all()
    env.close()


def test_her_needs_a_goal_conditioned_task(pp: tuple[Path, Path], policy_run: Path, tmp_path: Path) -> None:
    _, base_run = pp
    with pytest.raises(ConfigError, match="--her"):
        TrainResidualConfig(out=tmp_path / "x", base=base_run, her=-1)
    lift_base = policy_run  # a FrankaLift base: Lift has no goal
    with pytest.raises(ConfigError, match="not a goal-conditioned task"):
        ResidualTrainer(TrainResidualConfig(out=tmp_path / "l", base=lift_base, her=2, progress=False,
                                            hidden=(8,), n_heads=2))
    with pytest.raises(ConfigError, match="--goal-delta"):
        ResidualTrainer(TrainResidualConfig(out=tmp_path / "l", base=lift_base, goal_delta=True, progress=False,
                                            hidden=(8,), n_heads=2))
