"""`realrl deploy`: a trained policy stack on a robot (sim in-process, or any robot node over ROS 2) at its control
rate, under SafetyLimits and RealTimeRate, with operator keys, a live status line and every episode recorded."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot.core.errors import ConfigError, SafetyError, TransportError
from robot.core.interfaces import Teleoperator
from robot.core.types import TeleopCommand, TeleopEvent
from robot.sessions.episodes import check_policy_env
from robot.sessions.executor import ExecutorConfig, PolicyStack


@dataclass(frozen=True)
class DeployConfig:
    """Run a trained policy (base, one-step head, or base + residual) on a robot at its control rate, safely."""

    policy: Path
    """Run directory or policy checkpoint."""
    env: str = ""
    """Env id (task and embodiment); empty: the one the policy was trained on."""
    robot: Literal["sim", "ros"] = "sim"
    """sim: the MuJoCo robot in this process (no DDS); ros: a robot node over ROS 2 (`realrl node sim`, or the
    driver node of a real robot), reached in ROS_DOMAIN_ID with the CYCLONEDDS_URI in effect."""
    task: Literal["sim", "operator"] = "sim"
    """sim: the sim task decides success and resets the scene (in-process, or mirrored from a sim node);
    operator: a real robot, where the operator resets the scene before Enter and labels success with y / n (needs
    the keys; the robot is homed by its node and paced by the clock)."""
    max_seconds: float = 0.0
    """Longest episode (a sim task's own limit cannot be exceeded); 0: the env's own step limit (60 s on a real
    robot whose env id is not registered)."""
    joint_prefix: str = ""
    """--task operator: prefix of the joint names on the wire (franka_ros2: 'fr3_')."""
    episodes: int = 10
    """Episodes to run."""
    record: Path | None = None
    """Episode store every episode is recorded into, with its success label (created, or appended to)."""
    seed: int = 1000
    """Episode i uses seed + i (scene and policy noise)."""
    control_hz: float = 0.0
    """Control rate (0: the env's own). With --robot ros it must be the robot node's rate (`realrl node sim
    --control-hz`); a policy keeps the per-step meaning it was trained with only at its training rate."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Chunk execution: background planning, latency-aware skipping of stale actions."""
    keys: Literal["auto", "on", "off"] = "auto"
    """Operator keys from this terminal (Enter start/re-arm, space e-stop, p pause, y success, n failure, x discard,
    . stop): auto = when stdin is a terminal."""
    wait_for_start: bool | None = None
    """Hold at each episode start until the operator presses Enter (default: when keys are on)."""
    namespace: str = ""
    """ROS namespace of the robot node's topics (--robot ros)."""
    domain_id: int | None = None
    """ROS_DOMAIN_ID for --robot ros (default: the environment's)."""
    loopback: bool = False
    """Configure Cyclone DDS for a host without multicast (interface lo), as `realrl up --loopback` does."""
    watchdog_s: float = 0.5
    """--robot ros: no fresh robot state within this budget holds the robot and ends the episode."""
    obs_latency_s: float = 0.0
    """--robot sim only: inject this much observation latency (latency experiments; see `realrl eval --randomize`)."""
    action_latency_s: float = 0.0
    """--robot sim only: inject this much actuation latency."""
    threads: int = 1
    """torch threads for the policy (the control loop keeps a core of its own)."""
    operator: str = ""
    """Stored with every recorded episode."""
    status: bool = True
    """Live status line."""
    json_out: Path | None = None
    """Write the summary as JSON here."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {self.episodes}")
        if self.robot == "ros" and (self.obs_latency_s or self.action_latency_s):
            raise ConfigError("--obs-latency-s/--action-latency-s inject latency into the in-process sim only; "
                              "with --robot ros the latency is the real one")
        if not self.watchdog_s > 0:
            raise ConfigError(f"--watchdog-s must be > 0, got {self.watchdog_s}")
        if self.control_hz < 0:
            raise ConfigError(f"--control-hz must be > 0 (or 0 for the env's own rate), got {self.control_hz}")
        if self.task == "operator" and self.robot != "ros":
            raise ConfigError("--task operator runs a real robot: use it with --robot ros")
        if self.task == "operator" and self.keys == "off":
            raise ConfigError("--task operator needs the operator keys (y / n label success): drop --keys off")
        if self.domain_id is not None and not 0 <= self.domain_id <= 232:
            raise ConfigError(f"--domain-id must be in 0-232, got {self.domain_id}")
        if self.max_seconds < 0:
            raise ConfigError(f"--max-seconds must be >= 0, got {self.max_seconds}")


@dataclass
class _Episode:
    """What happened in one episode."""

    steps: int = 0
    success: bool = False
    label: str = "task"  # who decided success: the task, the operator, or a fault
    discarded: bool = False
    fault: str = ""
    estops: int = 0
    held_steps: int = 0


class Deployment:
    """One deploy session: env (robot + task) under SafetyLimits and RealTimeRate, the policy stack, the operator,
    the recorder. `run()` does every episode and returns the summary."""

    def __init__(self, cfg: DeployConfig, operator: Teleoperator | None = None) -> None:
        import torch

        from policies.io import load_any_policy
        from robot.wrappers import OperatorState, RateConfig, RealTimeRate, SafetyLimits

        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        policy = load_any_policy(cfg.policy)
        self.policy = policy
        self.env_id = cfg.env or policy.meta.get("env_id", "")
        if not self.env_id:
            raise ConfigError("the policy does not record its env; pass --env")
        self.safety = SafetyLimits(self._make_env(policy.meta))
        renv = self.safety.unwrapped
        self.robot = renv.robot  # type: ignore[attr-defined]
        self.dt = 1.0 / float(renv.embodiment.control_hz)  # type: ignore[attr-defined]
        # A lockstep robot node (the sim node publishes one state per control period) paces the loop itself.
        paced: Literal["clock", "robot"] = "robot" if getattr(self.robot, "config", None) is not None and getattr(
            self.robot.config, "lockstep", False) else "clock"
        self.rate = RealTimeRate(self.safety, RateConfig(paced_by=paced))
        check_policy_env(policy, self.rate)
        self.stack = PolicyStack(policy, self.dt, cfg.executor, renv.embodiment.increment_dims())  # type: ignore[attr-defined]
        self.operator = operator
        self.latches = OperatorState()
        self.recorder: Any = None
        self.store: Any = None
        self.results: list[_Episode] = []
        self.interrupted = False

    def _make_env(self, meta: dict[str, Any]) -> Any:
        """The task on the chosen robot, with the cameras and image size the policy was trained on."""
        from gymnasium.wrappers import TimeLimit

        cfg = self.cfg
        if cfg.task == "operator":
            return self._real_env(meta)
        env = self._sim_env(meta)
        if cfg.max_seconds:  # a sim task's own step limit stays the longest: this can only shorten episodes
            env = TimeLimit(env, max(1, round(cfg.max_seconds * float(env.unwrapped.embodiment.control_hz))))
        return env

    def _real_env(self, meta: dict[str, Any]) -> Any:
        """RobotEnv(RosRobot, OperatorTask) for a real robot's node: the policy's embodiment, the objects its
        observations name (a tracker must publish objects/<name>/pose), clock pacing (drivers stream states)."""
        import dataclasses

        import gymnasium as gym
        from gymnasium.wrappers import TimeLimit

        from hardware.ros_robot import RosRobot, RosRobotConfig
        from robot.core.spec import CameraSpec, EmbodimentSpec
        from robot.env import RobotEnv
        from robot.operator_task import OperatorTask

        cfg = self.cfg
        if "spec" not in meta:
            raise ConfigError(f"{cfg.policy} records no embodiment spec; it cannot drive a real robot")
        spec = EmbodimentSpec.from_dict(meta["spec"])
        cams = tuple(meta.get("cameras") or ())
        if cams:
            h, w = (int(x) for x in (meta.get("image_size") or (84, 84)))
            spec = dataclasses.replace(spec, cameras=tuple(CameraSpec(c, h, w) for c in cams))
        if cfg.control_hz:
            spec = dataclasses.replace(spec, control_hz=cfg.control_hz)
        robot = RosRobot(spec, RosRobotConfig(namespace=cfg.namespace, watchdog_s=cfg.watchdog_s,
                                              node_name="realrl_deploy", lockstep=False, sync_sources=False,
                                              objects=_tracked_objects(self.policy), joint_prefix=cfg.joint_prefix))
        task = OperatorTask(self.env_id, str(meta.get("instruction", "")))
        env = RobotEnv(robot, task)
        if cfg.max_seconds:
            steps = round(cfg.max_seconds * spec.control_hz)
        else:
            steps = (gym.spec(self.env_id).max_episode_steps if self.env_id in gym.registry else None) or round(
                60 * spec.control_hz)
        return TimeLimit(env, max(1, steps))

    def _sim_env(self, meta: dict[str, Any]) -> Any:
        from robot.sessions.envs import make_robot_env

        cfg = self.cfg
        size = meta.get("image_size") or (84, 84)
        env = make_robot_env(self.env_id, cfg.robot, cameras=tuple(meta.get("cameras") or ()),
                             image_size=(int(size[0]), int(size[1])), control_hz=cfg.control_hz,
                             namespace=cfg.namespace, watchdog_s=cfg.watchdog_s, node_name="realrl_deploy")
        if cfg.obs_latency_s or cfg.action_latency_s:
            from robot.sessions.perturb import Perturb, Perturbation

            env = Perturb(env, Perturbation("latency", obs_latency_s=cfg.obs_latency_s,
                                            action_latency_s=cfg.action_latency_s))
        return env

    # -- the session ---------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Every episode, then the summary (also on Ctrl-C: the open episode is discarded, saved ones stay)."""
        from robot.sessions.console import StatusLine

        # Without the live line, episode lines and events are still printed.
        self.status = StatusLine() if self.cfg.status else StatusLine(is_tty=False, plain_interval_s=float("inf"))
        try:
            with contextlib.ExitStack() as stack:
                if self.operator is not None:
                    stack.enter_context(self.operator)
                if self.cfg.record is not None:
                    self._open_recorder()
                    stack.callback(self._close_recorder)
                for i in range(self.cfg.episodes):
                    ep = self._episode(i)
                    self.results.append(ep)
                    self.status.print(self._episode_line(i, ep))
        except KeyboardInterrupt:  # Ctrl-C ends the session: the open episode is dropped, the summary still comes
            self.interrupted = True
            self.status.print("interrupted: the open episode is not recorded")
        finally:
            self.status.close()
            self.stack.close()
            self.rate.close()
        return self.summary()

    def _open_recorder(self) -> None:
        from data import Recorder
        from robot.sessions.recording import open_store

        renv: Any = self.safety.unwrapped
        self.store = open_store(self.cfg.record, self.env_id, fps=1.0 / self.dt,  # type: ignore[arg-type]
                                spec=renv.embodiment.to_dict())
        self.recorder = Recorder(self.store)

    def _close_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self.store is not None:
            self.store.close()

    def _read(self) -> TeleopCommand | None:
        return self.operator.read() if self.operator is not None else None

    def _hold_step(self) -> None:
        """One control period without commanding anything: observe (the watchdog stays armed) and wait."""
        t0 = time.monotonic()
        self.safety.observe()
        left = self.dt - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)

    def _episode(self, i: int) -> _Episode:
        cfg = self.cfg
        seed = cfg.seed + i
        ep = _Episode()
        obs, _ = self.rate.reset(seed=seed)
        self.stack.reset(seed)
        waiting = cfg.wait_for_start if cfg.wait_for_start is not None else self.operator is not None
        ops = self.latches
        ops.new_episode()
        if self.recorder is not None:
            self.recorder.start_episode()
        self._phase = "waiting for Enter" if waiting else "running"
        if waiting:
            self.status.print(f"episode {i}: waiting for Enter (set the scene up, then start)")
        try:
            while True:
                cmd = self._read()
                was_estopped = ops.estopped
                if cmd is not None:
                    if waiting and TeleopEvent.PAUSE in cmd.events:  # nothing runs yet: there is nothing to pause
                        cmd = TeleopCommand(cmd.action, cmd.events - {TeleopEvent.PAUSE}, cmd.active)
                    ops.observe(cmd)
                    if TeleopEvent.START in cmd.events:
                        waiting = False
                if ops.estopped and not was_estopped:
                    ep.estops += 1
                    self.status.print("E-STOP: holding, nothing is sent; press Enter to re-arm")
                elif was_estopped and not ops.estopped:
                    self.status.print("re-armed")
                if cmd is not None and (label := self._label(cmd.events, ep)):
                    ep.label = label
                    break
                self._phase = ("E-STOP" if ops.estopped else "waiting for Enter" if waiting else
                               "paused" if ops.paused else "running")
                if ops.held or waiting:
                    ep.held_steps += 1
                    self._hold_step()
                    self.rate.hold()
                    obs = self.safety.unwrapped.last_observation()  # type: ignore[attr-defined]
                    self._show(i, ep)
                    continue
                action = self.stack.act(obs, self.robot.now())
                if action is None:  # no base action yet (a slow planner): hold this period
                    action = self.safety.unwrapped.hold_action()  # type: ignore[attr-defined]
                next_obs, reward, terminated, truncated, info = self.rate.step(action)
                if self.recorder is not None:
                    self.recorder.add_step(obs, np.asarray(info.get("sent_action", action), np.float32), float(reward))
                obs = next_obs
                ep.steps += 1
                ep.success = ep.success or bool(info.get("success", False))
                self._show(i, ep)
                if terminated or truncated:
                    break
        except SafetyError as e:
            ep.fault, ep.label, ep.success = f"safety: {e}", "fault", False
        except TransportError as e:
            ep.fault, ep.label, ep.success = f"link: {e}", "fault", False
        self._end_recording(seed, ep)
        if ep.fault and self.operator is not None:
            self.status.print(f"episode {i}: {ep.fault}")
        return ep

    def _label(self, ev: frozenset[TeleopEvent], ep: _Episode) -> str:
        """Apply an operator's episode-ending key; returns who labelled it, or '' to go on."""
        if TeleopEvent.DISCARD in ev:
            ep.discarded = True
            return "operator"
        if TeleopEvent.SUCCESS in ev or TeleopEvent.FAILURE in ev:
            ep.success = TeleopEvent.SUCCESS in ev
            return "operator"
        if TeleopEvent.STOP in ev:
            return "task"
        return ""

    def _end_recording(self, seed: int, ep: _Episode) -> None:
        rec = self.recorder
        if rec is None:
            return
        if ep.discarded or ep.steps == 0:
            rec.discard_episode()
            return
        task = getattr(getattr(self.safety.unwrapped, "task", None), "instruction", "")
        rec.end_episode(success=ep.success, task=task, source="policy", operator=self.cfg.operator, wait=False,
                        meta={"seed": seed, "policy": str(self.cfg.policy), "robot": self.cfg.robot,
                              "labelled_by": ep.label, "fault": ep.fault, "estops": ep.estops,
                              "latency_aware": self.cfg.executor.latency_aware})

    # -- reporting -----------------------------------------------------------------------------------------------
    def _show(self, i: int, ep: _Episode) -> None:
        st = self.rate.stats()
        ms = np.asarray(self.stack.step_ms) if self.stack.step_ms else np.zeros(1)
        loop = st.get("loop_p50_ms", 0.0)
        ok = sum(r.success for r in self.results)
        stale = self.safety.totals["stale"]
        self.status.update(
            f"ep {i + 1}/{self.cfg.episodes} step {ep.steps} | ok {ok}/{len(self.results)} | "
            f"{1e3 / loop if loop else 0:.1f} Hz | overruns {int(st['overruns'])} | policy p50 "
            f"{np.percentile(ms, 50):.1f} p99 {np.percentile(ms, 99):.1f} ms | stale obs {stale} | {self._phase}")

    @staticmethod
    def _episode_line(i: int, ep: _Episode) -> str:
        what = "discarded" if ep.discarded else ("success" if ep.success else "failure")
        extra = f" ({ep.fault})" if ep.fault else ""
        return f"episode {i}: {what} after {ep.steps} steps, labelled by {ep.label}{extra}"

    def summary(self) -> dict[str, Any]:
        """Success, loop and latency statistics over the session."""
        kept = [r for r in self.results if not r.discarded]
        st = self.rate.stats()
        ms = np.asarray(self.stack.step_ms) if self.stack.step_ms else np.zeros(1)
        ex = self.stack.executor.stats
        plan = np.asarray(ex.plan_ms) if ex.plan_ms else np.zeros(1)
        loop = st.get("loop_p50_ms", 0.0)
        out: dict[str, Any] = {
            "env": self.env_id, "robot": self.cfg.robot, "policy": str(self.cfg.policy),
            "algo": getattr(self.policy, "name", type(self.policy).__name__),
            "episodes": len(self.results), "kept": len(kept), "successes": sum(r.success for r in kept),
            "success_rate": sum(r.success for r in kept) / len(kept) if kept else 0.0,
            "mean_length": float(np.mean([r.steps for r in kept])) if kept else 0.0,
            "faults": [r.fault for r in self.results if r.fault], "estops": sum(r.estops for r in self.results),
            "steps": int(st["steps"]), "overruns": int(st["overruns"]), "target_hz": 1.0 / self.dt,
            "loop_hz": 1e3 / loop if loop else 0.0,
            "policy_ms_p50": float(np.percentile(ms, 50)), "policy_ms_p99": float(np.percentile(ms, 99)),
            "plan_ms_p50": float(np.percentile(plan, 50)), "chunks": ex.chunks, "skipped_actions": ex.skipped,
            "starved_steps": ex.starved, "safety": dict(self.safety.totals),
            "latency_aware": self.cfg.executor.latency_aware, "background": self.cfg.executor.background,
            "interrupted": self.interrupted,
        }
        if self.recorder is not None:
            out["dropped_steps"] = self.recorder.stats().steps_dropped
        return out


def _tracked_objects(policy: Any) -> tuple[str, ...]:
    """Objects whose poses a policy observes (state/<name>_pose or _rel keys that are not the robot's own)."""
    base = getattr(policy, "base", policy)
    keys = list(getattr(getattr(base, "obs_cfg", None), "state_keys", ()))
    keys += list(getattr(getattr(policy, "features", None), "state_keys", ()))
    own = {"joint_pos", "joint_vel", "ee_pose", "gripper", "hand"}
    names = {k[len("state/"):].rsplit("_", 1)[0] for k in keys if k.endswith(("_pose", "_rel"))}
    return tuple(sorted(n for n in names if n not in own and n != "ee"))


def format_summary(s: dict[str, Any]) -> str:
    """The end-of-session report."""
    return (f"{s['policy']} ({s['algo']}) on {s['env']} via {s['robot']}: {s['successes']}/{s['kept']} successful "
            f"({s['success_rate']:.0%}), {s['episodes'] - s['kept']} discarded, mean length {s['mean_length']:.1f}\n"
            f"loop {s['loop_hz']:.1f} Hz (target {s['target_hz']:g}), {s['overruns']} overruns in {s['steps']} steps; "
            f"policy per step p50 {s['policy_ms_p50']:.2f} ms, p99 {s['policy_ms_p99']:.2f} ms; chunk planning p50 "
            f"{s['plan_ms_p50']:.1f} ms, {s['chunks']} chunks, {s['skipped_actions']} stale actions skipped, "
            f"{s['starved_steps']} steps starved\nsafety: {s['safety']}; e-stops {s['estops']}"
            + (f"; faults: {'; '.join(s['faults'])}" if s["faults"] else ""))


def deploy(cfg: DeployConfig) -> dict[str, Any]:
    """Build the session (operator keys per cfg.keys) and run it."""
    import json
    import sys

    operator: Teleoperator | None = None
    if cfg.loopback or cfg.domain_id is not None:  # before any DDS participant exists in this process
        from hardware.ros.loopback import apply_dds_options

        apply_dds_options(loopback=cfg.loopback, domain_id=cfg.domain_id)
    use_keys = cfg.keys == "on" or (cfg.keys == "auto" and sys.stdin is not None and sys.stdin.isatty())
    if cfg.task == "operator" and not use_keys:
        raise ConfigError("--task operator needs the operator keys (y / n label success), but stdin is not a "
                          "terminal: run it in a terminal (over SSH: ssh -t)")
    if use_keys:
        from hardware.teleop.keyboard import KeyboardTeleop

        operator = KeyboardTeleop()
    session = Deployment(cfg, operator)
    summary = session.run()
    if cfg.json_out is not None:
        cfg.json_out.write_text(json.dumps(summary, indent=1))
    return summary
