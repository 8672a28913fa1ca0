"""ChunkExecutor: latency-aware vs naive chunk execution, background planning, resets and errors; plan_chunk."""

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from robot.core.errors import ConfigError
from robot.core.interfaces import Policy
from robot.sessions.executor import ChunkExecutor, ExecutorConfig, PolicyStack

DT = 0.05


class StepLabelPolicy(Policy):
    """A planner whose action i (from an observation of step k) is the number k + i: the step it is meant for.
    `delay_s` makes planning slow, like a diffusion base on a CPU."""

    def __init__(self, delay_s: float = 0.0, ta: int = 4, horizon: int = 12) -> None:
        self.chunk_cfg = SimpleNamespace(n_obs_steps=2, n_action_steps=ta, horizon=horizon)
        self.delay_s, self.horizon = delay_s, horizon
        self.plans: list[list[int]] = []  # the history steps each plan saw
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        raise AssertionError("the executor must plan chunks, not call act()")

    def plan_chunk(self, history: list[dict[str, np.ndarray]], full: bool = False) -> np.ndarray:
        self.plans.append([int(o["state/k"][0]) for o in history])
        if self.delay_s:
            time.sleep(self.delay_s)
        k = int(history[-1]["state/k"][0])
        n = self.horizon - 1 if full else self.chunk_cfg.n_action_steps
        return np.arange(k, k + n, dtype=np.float32)[:, None]


def obs_at(k: int, lag_steps: int = 0) -> dict[str, np.ndarray]:
    """The observation the loop holds at step k when observations arrive `lag_steps` periods late."""
    seen = k - lag_steps
    return {"state/k": np.array([seen], np.float32), "time/state": np.array(seen * DT)}


def run(ex: ChunkExecutor, steps: int, lag_steps: int = 0, step_s: float = 0.0) -> list[float | None]:
    out: list[float | None] = []
    for k in range(steps):
        a = ex.act(obs_at(k, lag_steps), now=k * DT)
        out.append(None if a is None else float(a[0]))
        if step_s:
            time.sleep(step_s)
    return out


def test_inline_execution_plays_each_chunk_then_replans_on_consecutive_history() -> None:
    p = StepLabelPolicy()
    ex = ChunkExecutor(p, DT, ExecutorConfig(background=False))
    assert run(ex, 10) == [float(k) for k in range(10)]
    assert [h[-1] for h in p.plans] == [0, 4, 8]  # re-planned every Ta = 4 steps
    assert p.plans[1] == [3, 4]  # the history is the last To consecutive observations, not the planning ones
    assert ex.stats.skipped == 0 and ex.stats.starved == 0


def test_latency_aware_skips_actions_whose_slot_has_passed_naive_plays_them_late() -> None:
    # Observations two periods old: a chunk planned on "step k - 2" has its first two actions in the past.
    aware = run(ChunkExecutor(StepLabelPolicy(), DT, ExecutorConfig(background=False)), 12, lag_steps=2)
    naive = run(ChunkExecutor(StepLabelPolicy(), DT, ExecutorConfig(background=False, latency_aware=False)), 12,
                lag_steps=2)
    assert aware == [float(k) for k in range(12)]  # every step gets the action meant for it
    assert naive == [float(k - 2) for k in range(12)]  # two periods late, all the time


def test_background_planning_overlaps_execution_and_stays_on_time() -> None:
    # Planning takes 1.6 periods: inline it would stall the loop; in the background the executor asks early
    # and skips what went stale while the chunk was computed.
    p = StepLabelPolicy(delay_s=0.08)
    ex = ChunkExecutor(p, DT, ExecutorConfig(background=True))
    try:
        out = run(ex, 24, step_s=DT)
    finally:
        ex.close()
    assert ex.stats.chunks >= 5
    assert ex.stats.starved == 0
    assert ex.stats.skipped > 0  # planned on an older observation than the step it lands in
    assert out == [float(k) for k in range(24)]


def test_background_naive_executor_falls_behind_by_the_planning_time() -> None:
    p = StepLabelPolicy(delay_s=0.08)
    ex = ChunkExecutor(p, DT, ExecutorConfig(background=True, latency_aware=False))
    try:
        out = run(ex, 24, step_s=DT)
    finally:
        ex.close()
    lateness = [k - a for k, a in enumerate(out) if a is not None]
    assert max(lateness) >= 1  # chunks play from their first action however late they land
    assert ex.stats.skipped == 0


def test_fast_planner_runs_inline_even_in_background_mode() -> None:
    p = StepLabelPolicy()
    ex = ChunkExecutor(p, DT, ExecutorConfig(background=True))
    try:
        out = run(ex, 9)
    finally:
        ex.close()
    assert out == [float(k) for k in range(9)]
    assert [h[-1] for h in p.plans] == [0, 4, 8]


def test_reset_drops_a_chunk_planned_for_the_previous_episode() -> None:
    p = StepLabelPolicy(delay_s=0.1)
    ex = ChunkExecutor(p, DT, ExecutorConfig(background=True, inline_below=0.0))
    try:
        run(ex, 3)  # a background plan is in flight now
        ex.reset()
        assert p.resets == 1
        a = ex.act(obs_at(100), now=100 * DT)  # new episode, new clock: its first chunk is planned inline
        assert a is not None and float(a[0]) == 100.0
    finally:
        ex.close()


def test_planner_errors_reach_the_control_thread() -> None:
    class Broken(StepLabelPolicy):
        def plan_chunk(self, history: list[dict[str, np.ndarray]], full: bool = False) -> np.ndarray:
            if len(self.plans) >= 1:
                raise RuntimeError("planner died")
            return super().plan_chunk(history, full)

    ex = ChunkExecutor(Broken(delay_s=0.06), DT, ExecutorConfig(background=True))
    try:
        with pytest.raises(RuntimeError, match="planner died"):
            run(ex, 12, step_s=DT)
    finally:
        ex.close()
    assert not any(t.name == "chunk-planner" and t.is_alive() for t in threading.enumerate() if t is ex._worker)


def test_starved_executor_returns_none_so_the_loop_holds() -> None:
    p = StepLabelPolicy(delay_s=0.3, horizon=3)  # a chunk of 2 actions, planning 6 periods
    ex = ChunkExecutor(p, DT, ExecutorConfig(background=True))
    try:
        out = run(ex, 6, step_s=DT)
    finally:
        ex.close()
    assert None in out and ex.stats.starved > 0


class TrackingPolicy(Policy):
    """Plans increments that take a 1-D position x onto the target trajectory 0.1 * step: the first increment
    corrects the observed error, the rest follow the target."""

    def __init__(self) -> None:
        self.chunk_cfg = SimpleNamespace(n_obs_steps=1, n_action_steps=4, horizon=10)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        raise AssertionError("chunked")

    def plan_chunk(self, history: list[dict[str, np.ndarray]], full: bool = False) -> np.ndarray:
        j = round(float(history[-1]["time/state"]) / DT)
        x = float(history[-1]["state/x"][0])
        d = [0.1 * (j + 1) - x] + [0.1] * 8
        return np.asarray(d, np.float32)[:, None]


def track(increments: np.ndarray | None, aware: bool = True, lag: int = 2, steps: int = 30,
          extrapolate: bool = False) -> float:
    """Run x_{k+1} = x_k + a_k with observations `lag` periods old and a +3 push at step 10; the final error."""
    cfg = ExecutorConfig(background=False, latency_aware=aware, extrapolate=extrapolate)
    ex = ChunkExecutor(TrackingPolicy(), DT, cfg, increments)
    xs = [0.0]
    for k in range(steps):
        seen = max(0, k - lag)
        a = ex.act({"state/x": np.array([xs[seen]], np.float32), "time/state": np.array(seen * DT)}, now=k * DT)
        xs.append(xs[k] + (0.0 if a is None else float(a[0])))
        if k + 1 == 10:
            xs[10] += 3.0
    return abs(xs[-1] - 0.1 * steps)


def test_increments_are_re_anchored_so_corrections_of_stale_chunks_are_not_lost() -> None:
    assert track(np.array([True])) < 1e-4  # the push is corrected although its correction's slot had passed
    assert track(None) > 2.5  # skipping stale increments drops every correction: the error stays for good
    assert track(np.array([True]), lag=0) < 1e-4 and track(None, lag=0) < 1e-4  # no latency: nothing to fix


def test_stale_observations_are_extrapolated_to_the_send_time() -> None:
    from robot.sessions.executor import _state_at

    yaw = np.array([np.cos(0.1), 0.0, 0.0, np.sin(0.1)])
    hist = [{"state/x": np.array([0.0, 1.0], np.float32), "time/state": np.array(0.0),
             "state/cube_pose": np.r_[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0].astype(np.float32),
             "image/cam": np.zeros((2, 2, 3), np.uint8)},
            {"state/x": np.array([1.0, 1.0], np.float32), "time/state": np.array(DT),
             "state/cube_pose": np.r_[0.1, 0.0, 0.0, yaw].astype(np.float32),
             "image/cam": np.ones((2, 2, 3), np.uint8)}]
    mid, ahead = _state_at(hist, 0.5 * DT), _state_at(hist, 1.6 * DT)
    assert np.allclose(mid["state/x"], [0.5, 1.0]) and np.allclose(ahead["state/x"], [1.6, 1.0])
    assert float(ahead["time/state"]) == pytest.approx(1.6 * DT)
    assert np.linalg.norm(ahead["state/cube_pose"][3:]) == pytest.approx(1.0, abs=1e-6)  # still a unit quaternion
    assert ahead["state/cube_pose"][0] == pytest.approx(0.16)
    assert np.array_equal(ahead["image/cam"], hist[1]["image/cam"])  # images are not predicted
    # with extrapolation, stale observations are planned on as the present: the push is corrected without help
    assert track(None, extrapolate=True) < 1e-4


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="replan_every"):
        ExecutorConfig(replan_every=-1)
    with pytest.raises(ConfigError, match="control period"):
        ChunkExecutor(StepLabelPolicy(), 0.0)


def test_plan_chunk_matches_act_chunk_and_leaves_the_policy_state_alone() -> None:
    from policies.base_policies import DiffusionPolicy
    from policies.config import ChunkConfig, DiffusionConfig, ObsConfig, UnetNet
    from policies.normalize import Normalizer

    torch.manual_seed(0)
    stats = {"state/x": {"min": np.full(3, -1.0), "max": np.full(3, 1.0)},
             "action": {"min": np.full(2, -1.0), "max": np.full(2, 1.0)}}
    policy = DiffusionPolicy(ObsConfig(state_keys=("state/x",), state_dims=(3,)), ChunkConfig(8, 2, 3), 2,
                             DiffusionConfig(net=UnetNet(down_dims=(8, 16), step_embed_dim=8, n_groups=4)),
                             Normalizer(stats))
    obs = [{"state/x": np.full(3, v, np.float32)} for v in (0.1, 0.2)]
    policy.seed(3)
    policy.act_chunk(obs[0])
    expected = policy.act_chunk(obs[1])
    policy.reset()
    policy.seed(3)
    policy.plan_chunk([obs[0]])  # one observation: edge-padded like the first step of an episode
    got = policy.plan_chunk(obs, full=True)
    assert got.shape == (7, 2) and np.array_equal(got[:3], expected)
    assert not policy._history and not policy._queue


def test_policy_stack_adds_the_residual_every_step_from_that_steps_base_action() -> None:
    class Residual:
        """Duck-types ResidualPolicy: base, features, residual, scale."""

        def __init__(self) -> None:
            self.base = StepLabelPolicy()
            self.scale = 0.5
            self.seen: list[float] = []
            self.steps: list[int] = []

        def features(self, obs: dict[str, np.ndarray], base: np.ndarray, step: int) -> np.ndarray:
            self.seen.append(float(base[0]))
            self.steps.append(step)
            return np.asarray(base, np.float32)

        def residual(self, features: np.ndarray) -> np.ndarray:
            return -np.ones_like(features)

    res = Residual()
    stack = PolicyStack(res, DT, ExecutorConfig(background=False))  # type: ignore[arg-type]
    out = [stack.act(obs_at(k), now=k * DT) for k in range(3)]
    # base k clipped to [-1, 1], then + 0.5 * (-1)
    assert [float(a[0]) for a in out if a is not None] == [-0.5, 0.5, 0.5]
    assert res.seen == [0.0, 1.0, 1.0] and len(stack.step_ms) == 3
    assert res.steps == [0, 1, 2]  # the chunk phase a phase-feature residual reads
    stack.reset()
    stack.act(obs_at(0), now=0.0)
    assert res.steps[-1] == 0
