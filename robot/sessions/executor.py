"""Real-time policy execution: chunks planned in the background, time-stamped from their observation, stale
actions skipped; a residual on top runs every step."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.core.errors import ConfigError
from robot.core.interfaces import Policy
from robot.core.types import STATE_PREFIX, Observation


@dataclass(frozen=True)
class ExecutorConfig:
    """How a policy's action chunks are turned into one action per control period."""

    latency_aware: bool = True
    """Time-stamp every action of a chunk from the observation it was planned on (action i owns the slot
    [stamp + i dt, stamp + (i + 1) dt)) and send the one whose slot holds the send time, skipping those whose slot
    has ended (diffusion_policy's real-robot scheme). Increment dimensions (end-effector deltas) are re-anchored
    when a chunk starts: the first action sent also carries the skipped increments minus those sent since the
    observation, so the commanded pose lands where the plan wants it now, neither losing nor repeating motion.
    False (naive) plays each new chunk from its first action, however late it arrives."""
    background: bool = True
    """Plan the next chunk in a worker thread while the current one executes; False plans inline (the loop waits
    for the network, and that wait is counted as the step's policy latency)."""
    replan_every: int = 0
    """Executed actions per chunk before the next chunk is due (0: the policy's Ta)."""
    extrapolate: bool = True
    """Latency-aware only: when the newest observation is older than the send time, plan on the state predicted
    for the send time, each state/* value extrapolated linearly from the last two observations (quaternions of
    *_pose keys renormalized; images are not predicted) and the history shifted alike. Bounded to two control
    periods: beyond that a straight line is a guess."""
    inline_below: float = 0.25
    """A planner measured faster than this fraction of a control period runs inline when its chunk is due (a
    one-step head: planning on the newest observation beats planning one step ahead in the background)."""

    def __post_init__(self) -> None:
        if self.replan_every < 0:
            raise ConfigError(f"replan_every must be >= 0 (0: the policy's Ta), got {self.replan_every}")
        if self.inline_below < 0:
            raise ConfigError(f"inline_below must be >= 0, got {self.inline_below}")


@dataclass
class ExecutorStats:
    """Counters of one executor since construction."""

    chunks: int = 0
    """Chunks planned."""
    executed: int = 0
    """Actions handed out."""
    skipped: int = 0
    """Actions dropped because their slot had passed (latency-aware mode)."""
    starved: int = 0
    """Steps with no action available (the robot holds): the planner is slower than the chunk lasts."""
    plan_ms: deque[float] | None = None
    """Recent planning times (ms), measured in the thread that plans."""


class ChunkExecutor:
    """Turns a chunked policy (anything with `plan_chunk(history, full=True)` and `chunk_cfg`) into per-step actions
    at a fixed control period `dt`; other policies are called with `act(obs)` every step, inline.

    Times are in the robot's clock (observation stamps `time/state`, `robot.now()`), never the host's, so the same
    logic holds for a sim that runs faster or slower than real time and for hardware. The first chunk of an episode
    is always planned inline: there is nothing to execute yet.
    """

    def __init__(self, policy: Policy, dt: float, config: ExecutorConfig | None = None,
                 increments: np.ndarray | None = None) -> None:
        if not dt > 0:
            raise ConfigError(f"control period must be > 0, got {dt}")
        self.policy, self.dt, self.config = policy, float(dt), config or ExecutorConfig()
        self.increments = None if increments is None or not np.any(increments) else np.asarray(increments, bool)
        """Action dimensions that are increments (EmbodimentSpec.increment_dims): re-anchored at chunk starts."""
        chunk_cfg: Any = getattr(policy, "chunk_cfg", None)
        self.chunked = chunk_cfg is not None and hasattr(policy, "plan_chunk")
        self.n_obs = int(chunk_cfg.n_obs_steps) if self.chunked else 1
        self.replan_every = self.config.replan_every or (int(chunk_cfg.n_action_steps) if self.chunked else 1)
        self.stats = ExecutorStats(plan_ms=deque(maxlen=2000))
        # One more observation than the policy's history: the extrapolation of the oldest one needs its successor.
        self._history: deque[Observation] = deque(maxlen=self.n_obs + 1)
        self.present: Observation | None = None
        """The observation the latest action was computed for (the newest, or its prediction for the send time)."""
        self._queue: deque[tuple[float, np.ndarray]] = deque()
        self._sent: deque[tuple[float, np.ndarray]] = deque(maxlen=64)  # (send time, action): for re-anchoring
        self._anchor: float | None = None  # stamp of a chunk just installed, until its first action is sent
        self._skipped_sum: np.ndarray | None = None
        self._since_install = 0
        self._fresh = True  # no chunk yet this episode: the first is planned inline
        self._plan_s = 0.0  # running estimate of one planning call (s), to ask early enough
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._request: tuple[list[Observation], float, int] | None = None
        self._result: tuple[np.ndarray, float, int] | None = None
        self._error: BaseException | None = None
        self._epoch = 0  # bumped at reset: a chunk planned for the previous episode is thrown away
        self._busy = False
        self._closed = False
        self._worker: threading.Thread | None = None
        if self.chunked and self.config.background:
            self._worker = threading.Thread(target=self._run, name="chunk-planner", daemon=True)
            self._worker.start()

    # -- episode -------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new episode: forget history and queued actions, drop any chunk still being planned."""
        with self._lock:
            self._epoch += 1
            self._request = None
            self._result = None
            while self._busy:  # the policy is not thread-safe: let a running plan finish before resetting it
                self._wake.wait(0.05)
        self._history.clear()
        self._queue.clear()
        self._sent.clear()
        self._anchor = None
        self._since_install = 0
        self._fresh = True
        self.policy.reset()

    def act(self, obs: Observation, now: float) -> np.ndarray | None:
        """The base action to send at robot time `now`, given the newest observation; None when there is none
        (hold). Raises what the planner raised."""
        self._history.append(obs)
        view = self._view(now)
        self.present = view[-1]
        if not self.chunked:
            a = self._timed_act(view[-1])
            self.stats.executed += 1
            return a
        stamp = float(view[-1]["time/state"])
        self._install_ready()
        due = self._since_install >= self.replan_every or not self._queue
        inline = not self.config.background or self._plan_s < self.config.inline_below * self.dt
        if self._fresh or (inline and due):
            self._install(*self._plan_now(view, stamp))
        elif not inline:
            # Ask early enough that the chunk lands about when this one is used up.
            lead = math.ceil(self._plan_s / self.dt)
            if self._since_install >= max(0, self.replan_every - lead) or not self._queue:
                self._ask(view, stamp)
        return self._pop(now)

    # -- observation latency -------------------------------------------------------------------------------------
    def _view(self, now: float) -> list[Observation]:
        """The policy's history (To observations, oldest first), shifted to the send time when the newest
        observation is older than it and extrapolation is on."""
        hist = list(self._history)
        lag = min(now - float(hist[-1]["time/state"]), 2.0 * self.dt)
        if not (self.config.latency_aware and self.config.extrapolate) or lag <= 1e-6 * self.dt or len(hist) < 2:
            return hist[-self.n_obs:]
        return [_state_at(hist, float(o["time/state"]) + lag) for o in hist[-self.n_obs:]]

    # -- internals -----------------------------------------------------------------------------------------------
    def _timed_act(self, obs: Observation) -> np.ndarray:
        t0 = time.perf_counter()
        a = np.asarray(self.policy.act(obs), dtype=np.float32)
        assert self.stats.plan_ms is not None
        self.stats.plan_ms.append((time.perf_counter() - t0) * 1e3)
        return a

    def _plan_now(self, history: list[Observation], stamp: float) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        chunk = np.asarray(self.policy.plan_chunk(history, full=True), dtype=np.float32)  # type: ignore[attr-defined]
        took = time.perf_counter() - t0
        self._plan_s = took if self._plan_s == 0 else 0.8 * self._plan_s + 0.2 * took
        assert self.stats.plan_ms is not None
        self.stats.plan_ms.append(took * 1e3)
        self.stats.chunks += 1
        return chunk, stamp

    def _install(self, chunk: np.ndarray, stamp: float) -> None:
        self._queue = deque((stamp + i * self.dt, a) for i, a in enumerate(chunk))
        self._anchor = stamp if self.config.latency_aware else None
        self._skipped_sum = None
        self._since_install = 0
        self._fresh = False

    def _install_ready(self) -> None:
        with self._lock:
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            res, self._result = self._result, None
        if res is not None and res[2] == self._epoch:
            self._install(res[0], res[1])

    def _ask(self, history: list[Observation], stamp: float) -> None:
        with self._lock:
            if self._busy or self._request is not None or self._result is not None:
                return  # one chunk in flight at a time
            self._request = (history, stamp, self._epoch)
            self._wake.notify_all()

    def _pop(self, now: float) -> np.ndarray | None:
        if self.config.latency_aware:
            # A slot that ended by the send time is stale (1e-6 periods of slack for float stamps).
            while self._queue and self._queue[0][0] + self.dt <= now + 1e-6 * self.dt:
                _, a = self._queue.popleft()
                self.stats.skipped += 1
                if self._anchor is not None and self.increments is not None:
                    self._skipped_sum = a.astype(np.float64) if self._skipped_sum is None else self._skipped_sum + a
        if not self._queue:
            self.stats.starved += 1
            return None
        self._since_install += 1
        self.stats.executed += 1
        _, action = self._queue.popleft()
        if self._anchor is not None and self.increments is not None:
            action = self._reanchor(action)
        self._anchor = None
        self._sent.append((now, action))
        return action

    def _reanchor(self, action: np.ndarray) -> np.ndarray:
        """The first action of a new chunk, with its increments corrected so the commanded pose matches the plan:
        + increments of the chunk's skipped (past) slots - increments already sent since its observation (they
        came from the previous chunk's plan for the same time)."""
        assert self._anchor is not None and self.increments is not None
        fix = np.zeros(action.shape, np.float64)
        if self._skipped_sum is not None:
            fix += self._skipped_sum
        for sent_at, a in self._sent:
            if sent_at >= self._anchor - 1e-6 * self.dt:
                fix -= a
        out = action.astype(np.float64)
        out[self.increments] += fix[self.increments]
        return out.astype(np.float32)

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._request is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                assert self._request is not None
                history, stamp, epoch = self._request
                self._request = None
                self._busy = True
            try:
                chunk, stamp = self._plan_now(history, stamp)
                with self._lock:
                    if epoch == self._epoch:
                        self._result = (chunk, stamp, epoch)
            except BaseException as e:  # handed to the control thread, which raises it
                with self._lock:
                    self._error = e
            finally:
                with self._lock:
                    self._busy = False
                    self._wake.notify_all()

    def close(self) -> None:
        """Stop the planner thread."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5.0)


def _state_at(hist: list[Observation], t: float) -> Observation:
    """The observation at time t: state/* values linearly inter- or extrapolated between the two observations around
    t (the last two when t is past the newest); everything else (images, their stamps) from the later of the two."""
    stamps = [float(o["time/state"]) for o in hist]
    j = next((i for i in range(1, len(hist)) if stamps[i] >= t), len(hist) - 1)
    a, b = hist[j - 1], hist[j]
    span = stamps[j] - stamps[j - 1]
    if span <= 0:  # two observations of one instant (a repeated state): nothing to extrapolate from
        return b
    w = (t - stamps[j - 1]) / span
    out = dict(b)
    for k, vb in b.items():
        if not k.startswith(STATE_PREFIX) or k not in a or vb.dtype.kind != "f":
            continue
        v = a[k] + w * (vb - a[k])
        if k.endswith("_pose") and v.size % 7 == 0:  # position + wxyz quaternion per frame: keep unit quaternions
            q = v.reshape(-1, 7)[:, 3:]
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
        out[k] = v.astype(vb.dtype)
    out["time/state"] = np.array(t, dtype=np.float64)
    return out


class PolicyStack:
    """What runs on the robot each control period: the base through a ChunkExecutor, then (for a ResidualPolicy)
    the residual actor on the newest observation and that step's base action, clip(base + scale * residual)."""

    def __init__(self, policy: Policy, dt: float, config: ExecutorConfig | None = None,
                 increments: np.ndarray | None = None) -> None:
        residual = hasattr(policy, "residual") and hasattr(policy, "features") and hasattr(policy, "base")
        self.policy = policy
        self.residual: Any = policy if residual else None
        base: Policy = policy.base if residual else policy  # type: ignore[attr-defined]
        self.executor = ChunkExecutor(base, dt, config, increments)
        self.step_ms: deque[float] = deque(maxlen=2000)
        """In-loop policy time per step (ms): installing/planning inline plus the residual."""
        self.steps = 0
        """Actions sent since reset: the chunk phase for a residual whose features encode it."""

    def reset(self, seed: int | None = None) -> None:
        """Episode start (seeding the base's sampling noise, when it samples)."""
        self.executor.reset()
        self.steps = 0
        fn = getattr(self.executor.policy, "seed", None)
        if fn is not None and seed is not None:
            fn(seed)

    def act(self, obs: Observation, now: float) -> np.ndarray | None:
        """Normalized action for the step sent at robot time `now`; None means hold (no base action available)."""
        t0 = time.perf_counter()
        base = self.executor.act(obs, now)
        if base is None:
            self.step_ms.append((time.perf_counter() - t0) * 1e3)
            return None
        base = np.clip(np.asarray(base, np.float64), -1.0, 1.0).astype(np.float32)
        if self.residual is not None:
            present = self.executor.present if self.executor.present is not None else obs
            r = self.residual.residual(self.residual.features(present, base, self.steps))
            base = np.clip(base + self.residual.scale * r, -1.0, 1.0).astype(np.float32)
        self.steps += 1
        self.step_ms.append((time.perf_counter() - t0) * 1e3)
        return base

    def close(self) -> None:
        """Stop the background planner."""
        self.executor.close()
