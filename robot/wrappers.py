"""Behaviour around the env loop: SafetyLimits and RealTimeRate (more wrappers come with their features)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from robot.core.errors import ConfigError, SafetyError
from robot.core.interfaces import Policy, Teleoperator
from robot.core.spec import ActionMode
from robot.core.types import TeleopCommand, TeleopEvent
from robot.env import RobotEnv


@dataclass(frozen=True)
class SafetyConfig:
    """Limits enforced on every action before it reaches the robot."""

    max_faults: int = 2
    """Faults (non-finite action, stale observation) per episode; this many raise SafetyError."""
    max_obs_age_s: float = 0.25
    """An observation older than this (robot clock) is stale: hold instead of acting on it."""
    workspace_low: tuple[float, float, float] | None = (0.2, -0.45, 0.0)
    """End-effector position lower bound (m, base frame) for ee-delta robots; None disables. Checked against
    the measured pose, so a controller that tracks a leading target may pass it by one step: the robot's own
    target clip (e.g. FrankaConfig.workspace_*) is the hard limit, this is the independent second guard."""
    workspace_high: tuple[float, float, float] | None = (0.8, 0.45, 0.6)
    """End-effector position upper bound (m, base frame) for ee-delta robots; None disables."""
    max_joint_step: float = 0.25
    """Largest change (rad) of a joint target from the measured position in one step (joint-position robots)."""
    joint_margin: float = 0.01
    """Joint targets stay this far (rad) inside the position limits."""

    def __post_init__(self) -> None:
        if self.max_faults < 1:
            raise ConfigError(f"SafetyConfig.max_faults must be >= 1, got {self.max_faults}")
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ConfigError("SafetyConfig: give both workspace_low and workspace_high, or neither")
        if self.workspace_low is not None and self.workspace_high is not None and not all(
            lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)
        ):
            raise ConfigError(f"SafetyConfig: workspace_low {self.workspace_low} must be < high {self.workspace_high}")


class SafetyLimits(gym.Wrapper[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], np.ndarray]):
    """Rejects non-finite actions and stale observations (hold, then SafetyError), clips and limits the rest.

    Works on any env with a Box action space; on a RobotEnv it also knows the hold action, the robot clock
    and the embodiment (workspace / joint limits). `info["safety"]` reports what was done at each step.
    """

    def __init__(self, env: gym.Env[Any, Any], config: SafetyConfig | None = None) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ConfigError(f"SafetyLimits needs a Box action space, got {env.action_space}")
        self.config = config or SafetyConfig()
        self._low = np.asarray(env.action_space.low, dtype=np.float64)
        self._high = np.asarray(env.action_space.high, dtype=np.float64)
        base = env.unwrapped
        self._robot_env: RobotEnv | None = base if isinstance(base, RobotEnv) else None
        self._names: tuple[str, ...] = (
            self._robot_env.embodiment.action.names
            if self._robot_env is not None
            else tuple(f"a[{i}]" for i in range(self._low.size))
        )
        self._faults = 0
        self._last_obs: Any = None
        self.totals = {"faults": 0, "clipped": 0, "limited": 0, "held": 0, "stale": 0}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the per-episode fault count."""
        obs, info = self.env.reset(**kwargs)
        self._faults = 0
        self._last_obs = obs
        return obs, info

    def observe(self) -> Any:
        """Observe without acting (a holding loop), through the RobotEnv underneath; the stale-observation check
        then judges the next action against this fresh observation."""
        if self._robot_env is None:
            raise ConfigError("SafetyLimits.observe needs a RobotEnv underneath (realrl robots)")
        self._last_obs = self._robot_env.observe()
        return self._last_obs

    def _hold(self) -> np.ndarray:
        if self._robot_env is not None:
            return np.asarray(self._robot_env.hold_action(), dtype=np.float64)
        # For delta-action envs (Fetch, most gymnasium-robotics arms) zero is "do not move".
        return np.clip(np.zeros_like(self._low), self._low, self._high)

    def _obs_age(self) -> float:
        if self._robot_env is None or not isinstance(self._last_obs, dict) or "time/state" not in self._last_obs:
            return 0.0
        return float(self._robot_env.robot.now() - float(self._last_obs["time/state"]))

    def _fault(self, reason: str) -> np.ndarray:
        self._faults += 1
        self.totals["faults"] += 1
        if self._faults >= self.config.max_faults:
            raise SafetyError(
                f"{reason}; this is fault {self._faults} of {self.config.max_faults} allowed this episode, "
                "so the episode is stopped with the robot held. Check the policy output / sensor link, then reset."
            )
        self.totals["held"] += 1
        return self._hold()

    def _limit(self, a: np.ndarray) -> tuple[np.ndarray, int]:
        """Workspace / joint-step limits in normalized units; returns the action and the dims changed."""
        renv = self._robot_env
        if renv is None or not isinstance(self._last_obs, dict):
            return a, 0
        aspec = renv.embodiment.action
        phys = aspec.to_physical(a)
        before = phys.copy()
        cfg = self.config
        if aspec.mode is ActionMode.EE_DELTA and cfg.workspace_low is not None and "state/ee_pose" in self._last_obs:
            frames = len(renv.embodiment.ee_frames)
            if frames <= 1:
                pos = np.asarray(self._last_obs["state/ee_pose"], dtype=np.float64)[:3]
                lo = np.asarray(cfg.workspace_low) - pos
                hi = np.asarray(cfg.workspace_high) - pos
                # A delta may always move back toward the box, never further out of it.
                phys[:3] = np.clip(phys[:3], np.minimum(lo, 0.0), np.maximum(hi, 0.0))
            else:
                # Several end effectors (a bimanual humanoid): state/ee_pose holds 7 values per frame and the
                # action 6 delta dims per frame, both in ee_frames order; every frame gets the same box.
                pos = np.asarray(self._last_obs["state/ee_pose"], dtype=np.float64)[: 7 * frames].reshape(frames, 7)
                lo = np.minimum(np.asarray(cfg.workspace_low) - pos[:, :3], 0.0)
                hi = np.maximum(np.asarray(cfg.workspace_high) - pos[:, :3], 0.0)
                delta = phys[: 6 * frames].reshape(frames, 6)  # a view: clipping it writes into phys
                delta[:, :3] = np.clip(delta[:, :3], lo, hi)
        elif aspec.mode is ActionMode.JOINT_POS and "state/joint_pos" in self._last_obs:
            q = np.asarray(self._last_obs["state/joint_pos"], dtype=np.float64)
            n = min(q.size, len(renv.embodiment.joints))
            jlo, jhi = renv.embodiment.joint_limits()
            m = cfg.joint_margin
            phys[:n] = np.clip(phys[:n], q[:n] - cfg.max_joint_step, q[:n] + cfg.max_joint_step)
            phys[:n] = np.clip(phys[:n], jlo[:n] + m, jhi[:n] - m)
        changed = int(np.count_nonzero(~np.isclose(phys, before, rtol=0.0, atol=1e-12)))
        return aspec.to_normalized(phys), changed

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Check, limit and forward one action."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self._low.shape:
            raise ConfigError(f"action shape {a.shape} does not match the action space {self._low.shape}")
        held, reason = False, ""
        bad = ~np.isfinite(a)
        age = self._obs_age()
        if bad.any():
            dims = [self._names[i] for i in np.flatnonzero(bad)]
            reason = f"non-finite action in dimensions {dims}"
            a, held = self._fault(reason), True
        elif age > self.config.max_obs_age_s:
            self.totals["stale"] += 1
            reason = f"stale observation: {age * 1e3:.0f} ms old (limit {self.config.max_obs_age_s * 1e3:.0f} ms)"
            a, held = self._fault(reason), True
        clipped = np.clip(a, self._low, self._high)
        n_clipped = int(np.count_nonzero(clipped != a))
        limited, n_limited = self._limit(clipped)
        self.totals["clipped"] += n_clipped
        self.totals["limited"] += n_limited
        obs, reward, terminated, truncated, info = self.env.step(limited.astype(np.float32))
        self._last_obs = obs
        info["safety"] = {
            "held": held,
            "reason": reason,
            "clipped": n_clipped,
            "limited": n_limited,
            "faults": self._faults,
        }
        return obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class RateConfig:
    """Real-time pacing."""

    hz: float | None = None
    """Loop rate; None takes the robot's control_hz (or the env's render_fps)."""
    window: int = 1000
    """Latency samples kept per stage for the statistics."""
    paced_by: Literal["clock", "robot"] = "clock"
    """clock: sleep to each tick of a monotonic clock. robot: the robot paces the loop (a lockstep RosRobot's
    observe() waits for the node's next state), so nothing sleeps here and an overrun is a missed robot period:
    consecutive observations stamped more than 1.5 periods apart."""


class RealTimeRate(gym.Wrapper[Any, Any, Any, Any]):
    """Paces step() at a fixed rate on a monotonic clock and records per-stage latency and overruns.

    Stages: `agent` (time between the return of one step and the next call, i.e. the policy), `env`
    (inside env.step), `wait` (sleep to the tick). A call that arrives after its tick is an overrun: it is
    counted and reported, and the schedule re-anchors instead of bursting to catch up.
    """

    def __init__(self, env: gym.Env[Any, Any], config: RateConfig | None = None) -> None:
        super().__init__(env)
        self.config = config or RateConfig()
        hz = self.config.hz
        if hz is None:
            emb = getattr(env.unwrapped, "embodiment", None)
            hz = emb.control_hz if emb is not None else env.unwrapped.metadata.get("render_fps")
        if not hz or hz <= 0:
            raise ConfigError("RealTimeRate: no rate given and the env declares none; pass RateConfig(hz=...)")
        self.period = 1.0 / float(hz)
        self.hz = float(hz)
        self._next_tick: float | None = None
        self._last_return: float | None = None
        w = self.config.window
        self.latency: dict[str, deque[float]] = {s: deque(maxlen=w) for s in ("agent", "env", "wait", "loop")}
        self.overruns = 0
        self.steps = 0
        self._t_start: float | None = None
        self._last_stamp: float | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and restart the schedule (reset time is not a control period)."""
        out = self.env.reset(**kwargs)
        self._next_tick = None
        self._last_return = time.monotonic()
        self._last_stamp = self._stamp(out[0])
        return out

    @staticmethod
    def _stamp(obs: Any) -> float | None:
        return float(obs["time/state"]) if isinstance(obs, dict) and "time/state" in obs else None

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Wait for the next tick, step, and record timings in info['rate']."""
        t_call = time.monotonic()
        if self._t_start is None:
            self._t_start = t_call
        if self._last_return is not None:
            self.latency["agent"].append(t_call - self._last_return)
        overrun = False
        if self._next_tick is None:
            self._next_tick = t_call
        lateness = t_call - self._next_tick
        if self.config.paced_by == "robot":
            pass
        elif lateness > 0.0 and self.steps > 0 and lateness > 1e-4:
            overrun = True
            self.overruns += 1
            self._next_tick = t_call
        else:
            while (remaining := self._next_tick - time.monotonic()) > 0:
                time.sleep(remaining)
        t_go = time.monotonic()
        self.latency["wait"].append(t_go - t_call)
        out = self.env.step(action)
        t_done = time.monotonic()
        if self.config.paced_by == "robot":
            stamp = self._stamp(out[0])
            if stamp is not None and self._last_stamp is not None and stamp - self._last_stamp > 1.5 * self.period:
                overrun = True
                self.overruns += 1
            self._last_stamp = stamp
        self.latency["env"].append(t_done - t_go)
        if self._last_return is not None:
            self.latency["loop"].append(t_done - self._last_return)
        self._last_return = t_done
        self._next_tick += self.period
        self.steps += 1
        info = out[4]
        info["rate"] = {"overrun": overrun, "overruns": self.overruns, "env_s": t_done - t_go}
        return out

    def hold(self) -> None:
        """The loop held the robot without stepping (pause, e-stop): that time is no control period, so the next
        step starts a new schedule instead of counting an overrun."""
        self._next_tick = None
        self._last_return = time.monotonic()
        self._last_stamp = None

    def stats(self) -> dict[str, float]:
        """p50/p99 per stage in ms, overruns and the achieved rate."""
        res: dict[str, float] = {"steps": float(self.steps), "overruns": float(self.overruns), "target_hz": self.hz}
        for stage, vals in self.latency.items():
            if vals:
                arr = np.asarray(vals) * 1e3
                res[f"{stage}_p50_ms"] = float(np.percentile(arr, 50))
                res[f"{stage}_p99_ms"] = float(np.percentile(arr, 99))
        if self._t_start is not None and self._last_return is not None and self.steps > 1:
            res["achieved_hz"] = self.steps / max(self._last_return - self._t_start, 1e-9)
        return res


class StateDictObservation(gym.Wrapper[dict[str, np.ndarray], Any, Any, Any]):
    """Adapts a third-party env (gymnasium-robotics Fetch, Franka Kitchen) to realrl's observation layout.

    Array or nested-dict observations become float32 `state/<path>` keys (GoalEnv keys are kept as they are,
    so goal-relabelling code still works), and `info["success"]` is filled from `is_success` or from the
    env's own task bookkeeping.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        sample, _ = env.reset(seed=0)
        flat = self._flatten(sample)
        self.observation_space = gym.spaces.Dict(  # type: ignore[assignment]
            {k: gym.spaces.Box(-np.inf, np.inf, shape=v.shape, dtype=np.float32) for k, v in flat.items()}
        )

    @staticmethod
    def _flatten(obs: Any) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k in sorted(value):
                    walk(f"{prefix}/{k}" if prefix else str(k), value[k])
            else:
                out[f"state/{prefix or 'observation'}"] = np.asarray(value, dtype=np.float32).reshape(-1)

        walk("", obs)
        if isinstance(obs, dict):
            for key in ("observation", "achieved_goal", "desired_goal"):
                if key in obs and not isinstance(obs[key], dict):
                    out[key] = np.asarray(obs[key], dtype=np.float32)
        return out

    @staticmethod
    def _success(info: dict[str, Any]) -> bool:
        if "is_success" in info:
            return bool(info["is_success"])
        if "tasks_to_complete" in info:  # Franka Kitchen: success when nothing is left to do
            return len(info["tasks_to_complete"]) == 0
        return bool(info.get("success", False))

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset and flatten."""
        obs, info = self.env.reset(**kwargs)
        info["success"] = self._success(info)
        return self._flatten(obs), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and flatten."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["success"] = self._success(info)
        return self._flatten(obs), reward, terminated, truncated, info


class ResidualAction(
    gym.Wrapper[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], np.ndarray], gym.utils.RecordConstructorArgs
):
    """Executes clip(base + scale * residual) with a frozen base policy; the base action joins the observation.

    The agent acts in residual space [-1, 1]^Da. Each step the base policy (which runs its own chunks and
    queue) is asked for its action on the current observation; that action is exposed as
    `obs["base_action"]` so the residual actor and critic can condition on it. The base is reset (and
    re-seeded from the episode seed, for reproducible rollouts) at every episode start. `scale` is one number or
    one per action dimension.
    """

    def __init__(self, env: gym.Env[Any, Any], base: Policy, scale: float | Sequence[float] | np.ndarray = 0.1) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, base=base, scale=scale)
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ConfigError(f"ResidualAction needs a Box action space, got {env.action_space}")
        if not isinstance(env.observation_space, gym.spaces.Dict):
            raise ConfigError("ResidualAction needs dict observations (realrl envs or StateDictObservation)")
        shape = env.action_space.shape
        scales = np.asarray(scale, dtype=np.float64)
        if scales.ndim == 0:
            scales = np.full(shape, float(scales))
        if scales.shape != shape or not np.all((scales > 0.0) & (scales <= 2.0)):
            raise ConfigError(f"residual scale must be in (0, 2] (2 spans the whole normalized range), one number "
                              f"or one per action dim {shape}; got {scale}")
        self.base, self.scale = base, scales
        self._low = np.asarray(env.action_space.low, dtype=np.float64)
        self._high = np.asarray(env.action_space.high, dtype=np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32)
        self.observation_space = gym.spaces.Dict(  # type: ignore[assignment]
            {**env.observation_space.spaces,
             "base_action": gym.spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32)}
        )
        self._base_action = np.zeros(shape, dtype=np.float32)

    def _with_base(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a = np.asarray(self.base.act(obs), dtype=np.float64)
        self._base_action = np.clip(a, self._low, self._high).astype(np.float32)
        return {**obs, "base_action": self._base_action}

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset env and base; the first base action is computed here."""
        obs, info = self.env.reset(**kwargs)
        self.base.reset()
        seed_fn = getattr(self.base, "seed", None)
        if seed_fn is not None and kwargs.get("seed") is not None:
            seed_fn(int(kwargs["seed"]))
        return self._with_base(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Combine, clip, step; then ask the base for the next action."""
        residual = np.asarray(action, dtype=np.float64)
        if residual.shape != self._low.shape:
            raise ConfigError(f"residual shape {residual.shape} does not match the action space {self._low.shape}")
        combined = np.clip(self._base_action + self.scale * np.clip(residual, -1.0, 1.0), self._low, self._high)
        obs, reward, terminated, truncated, info = self.env.step(combined.astype(np.float32))
        info["base_action"] = self._base_action.copy()
        info["combined_action"] = combined.astype(np.float32)
        if terminated or truncated:
            # No next action is needed; keep the observation layout without consulting the base.
            return {**obs, "base_action": self._base_action}, reward, terminated, truncated, info
        return self._with_base(obs), reward, terminated, truncated, info


class ActionChunking(gym.Wrapper[Any, np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Takes (Ta, Da) chunks; executes the first `execute` actions open loop, then returns for a re-plan.

    With `ensemble` set (ACT-style temporal ensembling) every step's action is the exponentially weighted
    mean (weights exp(-ensemble * age), oldest first) of every chunk that covers that step. Rewards of the
    executed steps are summed; `info["executed"]` says how many ran (fewer when the episode ended).
    """

    def __init__(self, env: gym.Env[Any, Any], chunk_len: int, execute: int | None = None,
                 ensemble: float | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, chunk_len=chunk_len, execute=execute, ensemble=ensemble)
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.action_space, gym.spaces.Box) or len(env.action_space.shape) != 1:
            raise ConfigError(f"ActionChunking needs a 1-D Box action space, got {env.action_space}")
        execute = chunk_len if execute is None else execute
        if not 1 <= execute <= chunk_len:
            raise ConfigError(f"need 1 <= execute <= chunk_len, got execute={execute}, chunk_len={chunk_len}")
        if ensemble is not None and ensemble < 0:
            raise ConfigError(f"ensemble weight must be >= 0, got {ensemble}")
        self.chunk_len, self.execute, self.ensemble = chunk_len, execute, ensemble
        da = env.action_space.shape[0]
        low = np.broadcast_to(env.action_space.low, (chunk_len, da))
        high = np.broadcast_to(env.action_space.high, (chunk_len, da))
        self.action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self._t = 0
        self._chunks: deque[tuple[int, np.ndarray]] = deque()

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset and forget previous chunks."""
        self._t = 0
        self._chunks.clear()
        return self.env.reset(**kwargs)

    def _action_at(self, t: int) -> np.ndarray:
        covering = [(start, c[t - start]) for start, c in self._chunks if start <= t < start + len(c)]
        if self.ensemble is None or len(covering) == 1:
            return covering[-1][1]
        w = np.exp(-self.ensemble * np.arange(len(covering)))  # oldest chunk gets weight 1
        return np.tensordot(w / w.sum(), np.stack([a for _, a in covering]), axes=1)

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Execute up to `execute` steps of the chunk."""
        chunk = np.asarray(action, dtype=np.float64)
        if chunk.shape != self.action_space.shape:
            raise ConfigError(f"chunk shape {chunk.shape} does not match {self.action_space.shape}")
        self._chunks.append((self._t, chunk))
        while self._chunks and self._chunks[0][0] + self.chunk_len <= self._t:
            self._chunks.popleft()
        total, n = 0.0, 0
        obs: Any = None
        terminated = truncated = False
        info: dict[str, Any] = {}
        for _ in range(self.execute):
            obs, r, terminated, truncated, info = self.env.step(self._action_at(self._t).astype(np.float32))
            total += float(r)
            n += 1
            self._t += 1
            if terminated or truncated:
                break
        info["executed"] = n
        return obs, total, terminated, truncated, info


Takeover = Literal["toggle", "deadman", "always"]
"""How an operator takes over: INTERVENE events toggle it, it lasts while the deadman is held, or always on."""


class OperatorState:
    """The operator's latches, shared by every loop that takes teleop events (Intervention, the teleop node):
    ESTOP holds until START re-arms, PAUSE toggles a hold, INTERVENE toggles take-over."""

    def __init__(self, takeover: Takeover = "toggle") -> None:
        if takeover not in ("toggle", "deadman", "always"):
            raise ConfigError(f"takeover must be 'toggle', 'deadman' or 'always', got {takeover!r}")
        self.takeover: Takeover = takeover
        self.estopped = False
        """Latched by ESTOP; only START clears it."""
        self.paused = False
        """Toggled by PAUSE."""
        self.toggled = False
        """Toggled by INTERVENE (used with takeover='toggle')."""
        self.active = True
        """The latest reading's `active` (deadman held)."""

    def observe(self, cmd: TeleopCommand) -> None:
        """Update the latches from one reading (each reading must be observed exactly once: toggles)."""
        ev = cmd.events
        if TeleopEvent.ESTOP in ev:
            self.estopped = True
        elif TeleopEvent.START in ev:
            self.estopped = False
        if TeleopEvent.PAUSE in ev:
            self.paused = not self.paused
        if TeleopEvent.INTERVENE in ev:
            self.toggled = not self.toggled
        self.active = bool(cmd.active)

    @property
    def held(self) -> str:
        """Why the operator holds the robot: "estop", "pause", or "" (not held)."""
        return "estop" if self.estopped else "pause" if self.paused else ""

    @property
    def intervening(self) -> bool:
        """Whether the operator's action replaces the agent's now."""
        if self.takeover == "always":
            return True
        if self.takeover == "deadman":
            return self.active
        return self.toggled

    def new_episode(self) -> None:
        """At an episode start the agent drives again and a pause ends; an e-stop stays until START."""
        self.toggled = False
        self.paused = False


@dataclass(frozen=True)
class InterventionConfig:
    """How a teleoperator takes over from the agent."""

    takeover: Takeover = "toggle"
    """toggle: INTERVENE events switch take-over on and off (keyboard t, SpaceMouse right button, gamepad LB);
    deadman: the operator drives while the device's deadman button is held (`TeleopCommand.active`); always: the
    operator drives every step (plain teleoperation, the agent's actions are ignored)."""


class Intervention(gym.Wrapper[Any, np.ndarray, Any, np.ndarray]):
    """A teleoperator can take over from the agent at any step and hand back.

    Every step reads the teleoperator once. While the operator intervenes, the human action replaces the agent's
    (a released deadman means hold); ESTOP holds every step until START, PAUSE holds until pressed again, whatever
    anyone asks. info: `intervened` (the human action was applied), `human_action` (what the operator asked, the
    hold action while the deadman is released), `agent_action`, `applied_action` (what went down the stack),
    `operator_hold` ("estop", "pause" or ""), `teleop_events` (the events of this step's reading). Record
    `applied_action` with an `info/intervened` flag (Recorder info_keys) and intervened steps become demo data.
    A loop that reads the device itself when it does not step (between episodes) passes those readings to
    `observe()` so no event is lost.
    """

    def __init__(self, env: gym.Env[Any, Any], teleop: Teleoperator, config: InterventionConfig | None = None) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ConfigError(f"Intervention needs a Box action space, got {env.action_space}")
        self.teleop = teleop
        self.config = config or InterventionConfig()
        self.state = OperatorState(self.config.takeover)
        self._low = np.asarray(env.action_space.low, dtype=np.float64)
        self._high = np.asarray(env.action_space.high, dtype=np.float64)
        dim = getattr(teleop, "action_dim", None)
        if dim is not None and (int(dim),) != self._low.shape:
            raise ConfigError(f"the teleoperator gives {dim}-D actions but the env takes {self._low.shape}: a device "
                              "drives ee_delta robots (6 motion + gripper); make the env with action_mode='ee_delta'")
        self.last_command: TeleopCommand | None = None
        """The newest reading."""

    def _hold(self) -> np.ndarray:
        base = self.env.unwrapped
        if isinstance(base, RobotEnv):
            return np.asarray(base.hold_action(), dtype=np.float32)
        return np.clip(np.zeros_like(self._low), self._low, self._high).astype(np.float32)

    def observe(self, cmd: TeleopCommand) -> None:
        """Take one reading into the operator state (step() does this with its own reading)."""
        self.state.observe(cmd)
        self.last_command = cmd

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env; the agent drives at the start of every episode (an e-stop stays latched)."""
        self.state.new_episode()
        return self.env.reset(**kwargs)

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Read the operator, choose whose action runs, step."""
        cmd = self.teleop.read()
        self.observe(cmd)
        agent = np.asarray(action, dtype=np.float32)
        human = np.asarray(cmd.action, dtype=np.float32)
        if human.shape != self._low.shape:
            raise ConfigError(f"teleop action shape {human.shape} does not match the action space {self._low.shape}")
        st = self.state
        hold = self._hold()
        if not cmd.active:
            human = hold
        intervened = False
        if st.held:
            applied = hold
        elif st.intervening:
            applied, intervened = human, True
        else:
            applied = agent
        obs, reward, terminated, truncated, info = self.env.step(applied)
        info.update(intervened=intervened, human_action=human, agent_action=agent, applied_action=applied,
                    operator_hold=st.held, teleop_events=cmd.events)
        return obs, reward, terminated, truncated, info
