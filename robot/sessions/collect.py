"""`realrl collect`: teleoperate a robot (MuJoCo in-process or a robot node over ROS 2) and record demos."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

from hardware.teleop.registry import DeviceChoice
from robot.core.errors import ConfigError, SafetyError, TransportError
from robot.core.interfaces import Teleoperator
from robot.core.types import TeleopCommand, TeleopEvent
from robot.sessions.episodes import check_policy_env

logger = logging.getLogger(__name__)

# An episode ends on the first of these in a reading (a discard beats a label: throwing away is the safe choice).
_ENDINGS = (TeleopEvent.DISCARD, TeleopEvent.RESET, TeleopEvent.FAILURE, TeleopEvent.SUCCESS, TeleopEvent.STOP)


@dataclass(frozen=True)
class TeleopCollectConfig:
    """Teleoperate a robot (MuJoCo in-process, or a robot node over ROS 2) and record demos into an episode store."""

    out: Path
    """Store directory (created, or appended to when it exists: collecting resumes)."""
    env: str = "realrl/FrankaPickPlace-v0"
    """Env id (task and robot; see `realrl envs`)."""
    teleop: Annotated[DeviceChoice, tyro.conf.arg(name="")] = field(default_factory=DeviceChoice)
    """The device: --device keyboard|spacemouse|gamepad|replay|ros, and its --<device>.* settings."""
    robot: Literal["sim", "ros"] = "sim"
    """sim: MuJoCo in this process; ros: a robot node (`realrl node sim`, the Franka node) reached over ROS 2."""
    namespace: str = ""
    """ROS namespace of the robot node (--robot ros)."""
    domain_id: int | None = None
    """ROS_DOMAIN_ID for --robot ros / --device ros (default: the environment's)."""
    loopback: bool = False
    """Configure Cyclone DDS for a host without multicast (interface lo, unicast to 127.0.0.1), as `realrl up
    --loopback` does; leave it out on a LAN."""
    cameras: tuple[str, ...] = ()
    """Cameras to record (Franka: front, wrist); with --robot ros the node must publish them."""
    image_size: int = 84
    """Square camera image size (pixels)."""
    episodes: int = 0
    """Stop after this many saved episodes (0: until Ctrl-C or the end of a replayed stream)."""
    seed: int = 0
    """Episode seeds are seed + n for the n-th episode started in this store (they continue on resume)."""
    max_seconds: float = 60.0
    """Longest episode (recorded time); it is then saved with the task's success. 0: the env's own step limit."""
    hz: float = 0.0
    """Loop rate; 0: the env's control rate. In sim a higher rate runs faster than real time (tests, replays);
    against a robot node it must be the node's rate."""
    policy: str = ""
    """Who acts when the operator does not: empty (the operator drives every step), 'expert' (the task's scripted
    expert, sim tasks) or a trained policy's run directory; the operator takes over with the intervene control."""
    takeover: Literal["toggle", "deadman"] = "toggle"
    """With a policy: INTERVENE toggles take-over, or the operator drives while the deadman button is held."""
    noise: float = 0.0
    """Scripted expert's action noise (--policy expert)."""
    operator: str = ""
    """Operator name stored with every episode."""
    keys: bool = True
    """With a SpaceMouse, gamepad or remote device, also take the episode keys from this terminal (if it is one)."""
    viewer: Literal["auto", "on", "off"] = "auto"
    """MuJoCo passive viewer (--robot sim): auto opens it when a display exists ($DISPLAY)."""
    status: bool = True
    """Live status line."""
    rt_priority: int = 0
    """Run the control loop SCHED_FIFO at this priority (Linux; root or CAP_SYS_NICE), as a robot's control process
    is run: loop jitter drops on a loaded machine. 0: normal scheduling."""

    def __post_init__(self) -> None:
        if self.domain_id is not None and not 0 <= self.domain_id <= 232:
            raise ConfigError(f"--domain-id must be in 0-232, got {self.domain_id}")
        if self.episodes < 0 or self.max_seconds < 0 or self.hz < 0:
            raise ConfigError(f"--episodes, --max-seconds and --hz must be >= 0, got {self.episodes}, "
                              f"{self.max_seconds}, {self.hz}")


@dataclass
class CollectSummary:
    """What a collect session did."""

    saved: int = 0
    """Episodes saved."""
    successes: int = 0
    """Saved episodes labelled successful."""
    discarded: int = 0
    """Episodes thrown away (DISCARD, RESET, a safety stop, open at the end)."""
    steps: int = 0
    """Steps recorded (saved or not)."""
    intervened_steps: int = 0
    """Recorded steps where the operator's action was applied over a policy's."""
    dropped: int = 0
    """Steps the recorder had to drop (its writer fell behind)."""
    overruns: int = 0
    """Control periods that overran (RealTimeRate)."""
    rate: dict[str, float] = field(default_factory=dict)
    """RealTimeRate statistics (loop p50/p99, achieved rate)."""


class _Tap(Teleoperator):
    """One device reading per tick, shared: the loop polls it (episode events), the Intervention wrapper then reads
    the same reading in its step, so every reading is seen once by each."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.action_dim = getattr(device, "action_dim", None)
        self._cmd: TeleopCommand | None = None

    def connect(self) -> None:
        """The session owns the device."""

    def disconnect(self) -> None:
        """The session owns the device."""

    def poll(self) -> TeleopCommand:
        """Read the device for this tick."""
        self._cmd = self.device.read()
        return self._cmd

    def read(self) -> TeleopCommand:
        """This tick's reading (read the device if the loop did not poll)."""
        cmd, self._cmd = self._cmd, None
        return cmd if cmd is not None else self.device.read()


def _make_device(cfg: TeleopCollectConfig) -> Any:
    from hardware.teleop import KeyboardConfig, KeyboardTeleop, WithKeys

    device = cfg.teleop.make()
    if cfg.keys and cfg.teleop.device in ("spacemouse", "gamepad", "ros") and sys.stdin.isatty():
        device = WithKeys(device, KeyboardTeleop(KeyboardConfig(motion=False)))
    return device


def _make_env(cfg: TeleopCollectConfig) -> Any:
    from robot.env import RobotEnv
    from robot.sessions.envs import make_robot_env

    env = make_robot_env(cfg.env, cfg.robot, cameras=cfg.cameras, image_size=cfg.image_size, namespace=cfg.namespace)
    base = env.unwrapped
    if not isinstance(base, RobotEnv):
        env.close()
        raise ConfigError(f"{cfg.env} is not a realrl robot env; collect drives realrl/* envs")
    return base


def _make_policy(cfg: TeleopCollectConfig, env: Any) -> Any:
    if not cfg.policy:
        return None
    if cfg.policy == "expert":
        task = env.unwrapped.task
        if not hasattr(task, "expert"):
            raise ConfigError(f"{cfg.env} has no scripted expert; give a trained policy's directory instead")
        return "expert"  # made per episode: its noise is seeded by the episode seed
    from policies.io import check_compatible, load_any_policy

    policy = load_any_policy(Path(cfg.policy))
    if not check_policy_env(policy, env) and hasattr(policy, "obs_cfg"):
        check_compatible(policy, env)
    return policy


def _open_store(cfg: TeleopCollectConfig, env: Any, hz: float) -> tuple[Any, tuple[str, ...]]:
    from robot.sessions.recording import open_store

    store = open_store(cfg.out, cfg.env, fps=hz, spec=env.embodiment.to_dict())
    if len(store) and "info/intervened" not in store.schema:
        if cfg.policy:
            store.close()
            raise ConfigError(f"{cfg.out} was recorded without the info/intervened flag (e.g. by `realrl data "
                              "collect`); record interventions into a new store")
        return store, ()
    return store, ("intervened",)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a supervisor stopping us) unwinds like Ctrl-C, so the recorder closes and saved episodes stay."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _realtime(priority: int, status: Any) -> Iterator[None]:
    """SCHED_FIFO for this thread while the loop runs (processes started later do not inherit it)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except (PermissionError, OSError, AttributeError) as e:
        status.print(f"--rt-priority {priority}: not allowed here ({e}); running with normal scheduling")
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class _Viewer:
    """The MuJoCo passive viewer on the sim robot when a display exists; a no-op otherwise."""

    def __init__(self, mode: str, robot: Any, status: Any) -> None:
        self.handle: Any = None
        want = mode == "on" or (mode == "auto" and bool(os.environ.get("DISPLAY")))
        model, data = getattr(robot, "model", None), getattr(robot, "data", None)
        if not want or model is None or data is None:
            return
        try:
            import mujoco.viewer

            self.handle = mujoco.viewer.launch_passive(model, data, show_left_ui=False, show_right_ui=False)
        except Exception as e:  # no GL, no display server: headless is fine for recording
            status.print(f"viewer unavailable ({e}); continuing headless")

    def sync(self) -> None:
        """Show the current state (stops quietly once the window is closed)."""
        h = self.handle
        if h is None:
            return
        if not h.is_running():
            self.handle = None
            return
        h.sync()

    def close(self) -> None:
        """Close the window."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def run(cfg: TeleopCollectConfig, device: Any = None, stream: Any = None) -> CollectSummary:
    """The collect loop. One tick per control period: read the device, act on episode events, step the env through
    Intervention -> SafetyLimits (paced by RealTimeRate), record. States: idle (between episodes: nothing is stepped,
    the robot holds) and recording (paused/e-stopped steps hold and are not recorded). Ctrl-C or SIGTERM end the
    session; the open episode is discarded, every saved one stays in the store."""
    from data import Recorder
    from robot.sessions.console import StatusLine
    from robot.wrappers import Intervention, InterventionConfig, RateConfig, RealTimeRate, SafetyLimits

    if cfg.loopback or cfg.domain_id is not None:  # before any DDS participant exists in this process
        from hardware.ros.loopback import apply_dds_options

        apply_dds_options(loopback=cfg.loopback, domain_id=cfg.domain_id)
    status = StatusLine(stream) if cfg.status else StatusLine(io.StringIO(), plain_interval_s=float("inf"))
    device = device if device is not None else _make_device(cfg)
    summary = CollectSummary()
    with contextlib.ExitStack() as stack:  # torn down in reverse: recorder, store, env, device, status line
        stack.callback(status.close)
        device.connect()  # first: an absent device fails before anything is built or created
        stack.callback(device.disconnect)
        base = _make_env(cfg)
        stack.callback(base.close)
        emb = base.embodiment
        dev_dim = getattr(device, "action_dim", None)
        if dev_dim is not None and dev_dim != emb.action.dim:
            raise ConfigError(f"--device {cfg.teleop.device} gives {dev_dim}-D actions but {cfg.env} takes "
                              f"{emb.action.dim} ({', '.join(emb.action.names)})")
        hz = cfg.hz or emb.control_hz
        max_steps = round(cfg.max_seconds * emb.control_hz) if cfg.max_seconds else 0
        if not max_steps:
            import gymnasium as gym

            max_steps = int(gym.spec(cfg.env).max_episode_steps or 0) or 10**9
        policy = _make_policy(cfg, base)
        tap = _Tap(device)
        takeover = "always" if policy is None else cfg.takeover
        iv = Intervention(SafetyLimits(base), tap, InterventionConfig(takeover=takeover))
        env = RealTimeRate(iv, RateConfig(hz=hz))
        store, info_keys = _open_store(cfg, base, emb.control_hz)
        stack.callback(store.close)
        rec = stack.enter_context(Recorder(store, info_keys=info_keys))
        loop = _Loop(cfg, env, iv, tap, device, policy, store, status, max_steps, hz, summary)
        loop.rec = rec
        loop.viewer = _Viewer(cfg.viewer if cfg.robot == "sim" else "off", base.robot, status)
        stack.callback(loop.viewer.close)
        stack.enter_context(_terminate_as_interrupt())
        if cfg.rt_priority:
            stack.enter_context(_realtime(cfg.rt_priority, status))
        try:
            loop.run()
        except KeyboardInterrupt:
            status.print("stopped")
        finally:
            summary.overruns = env.overruns
            summary.rate = env.stats()
        if loop.recording:
            summary.discarded += 1  # Recorder.close() drops it
        rec.close()
        summary.dropped = rec.stats().steps_dropped
    return summary


class _Loop:
    """The state of one collect session (split from run() so each step of the tick reads as one method)."""

    def __init__(self, cfg: TeleopCollectConfig, env: Any, iv: Any, tap: _Tap, device: Any, policy: Any, store: Any,
                 status: Any, max_steps: int, hz: float, summary: CollectSummary) -> None:
        self.cfg, self.env, self.iv, self.tap, self.device, self.policy = cfg, env, iv, tap, device, policy
        self.status, self.max_steps, self.period, self.summary = status, max_steps, 1.0 / hz, summary
        self.rec: Any = None
        self.viewer: Any = None
        self.base = env.unwrapped
        self.next_seed = cfg.seed + len(store)
        self.first_index = len(store)
        self.recording = False
        self.obs: Any = None
        self.actor: Any = None
        self.seed = -1
        self.ep_steps = 0
        self.ep_intervened = 0
        self.ep_success = False
        self.ep_start = 0.0
        self.task_text = getattr(self.base.task, "instruction", "")
        self._hz_est = 0.0
        self._last_tick: float | None = None
        self._dropped = 0
        self._last_stats = 0.0

    # -- episodes --------------------------------------------------------------------------------------------------
    def reset(self, seed: int) -> dict[str, Any] | None:
        """Reset robot and scene; a robot node that does not answer is reported and the session stays idle."""
        try:
            self.obs, info = self.env.reset(seed=seed)
        except TransportError as e:
            self.status.print(f"reset failed: {e}")
            return None
        return info

    def begin(self) -> None:
        """START: reset robot and scene with the next seed, and record from the first observation."""
        info = self.reset(self.next_seed)
        if info is None:
            return
        self.seed, self.next_seed = self.next_seed, self.next_seed + 1
        reset_state = getattr(self.device, "reset_state", None)
        if reset_state is not None:
            reset_state()
        if self.policy == "expert":
            self.actor = self.base.task.expert(noise=self.cfg.noise, seed=self.seed)
        else:
            self.actor = self.policy
        if self.actor is not None:
            self.actor.reset()
            seed_fn = getattr(self.actor, "seed", None)
            if seed_fn is not None:
                seed_fn(self.seed)
        self.rec.start_episode()
        self.recording = True
        self.ep_steps = self.ep_intervened = 0
        self.ep_success = bool(info.get("success", False))
        self.ep_start = time.monotonic()
        self.status.print(f"episode {self.first_index + self.summary.saved} started (seed {self.seed})")

    def finish(self, how: TeleopEvent | str) -> None:
        """End the open episode: DISCARD/RESET (and safety stops) throw it away, everything else saves it."""
        self.recording = False
        if how in (TeleopEvent.DISCARD, TeleopEvent.RESET) or how == "fault" or self.ep_steps == 0:
            self.rec.discard_episode()
            self.summary.discarded += 1
            self.status.print(f"episode discarded ({how.value if isinstance(how, TeleopEvent) else how})")
            return
        labelled = "operator" if how in (TeleopEvent.SUCCESS, TeleopEvent.FAILURE) else "task"
        success = how is TeleopEvent.SUCCESS if labelled == "operator" else self.ep_success
        source = "teleop" if self.actor is None else "intervention" if self.ep_intervened else "policy"
        name = getattr(self.device, "name", type(self.device).__name__)
        ended_by = how.value if isinstance(how, TeleopEvent) else how
        meta = {"seed": self.seed, "device": name, "robot": self.cfg.robot, "label_by": labelled,
                "policy": self.cfg.policy, "intervened_steps": self.ep_intervened, "ended_by": ended_by}
        # wait=False: the control loop never waits for the disk; a write error surfaces at the next recorder call.
        self.rec.end_episode(success=success, task=self.task_text, source=source, operator=self.cfg.operator,
                             meta=meta, wait=False)
        self.summary.saved += 1
        self.summary.successes += int(success)
        took = f", {self.ep_intervened} intervened" if self.actor is not None else ""
        self.status.print(f"episode {self.first_index + self.summary.saved - 1} saved: "
                          f"{'success' if success else 'failure'} ({labelled}), {self.ep_steps} steps{took}")

    # -- the tick --------------------------------------------------------------------------------------------------
    def handle_events(self, cmd: TeleopCommand, estopped: bool) -> None:
        """Episode-level meaning of this reading's events (before anything moves this tick)."""
        ev = cmd.events
        if self.recording:
            how = next((e for e in _ENDINGS if e in ev), None)
            if how is not None:
                self.finish(how)
                if how is TeleopEvent.RESET and not estopped:
                    self.reset(self.next_seed)  # home now, so the operator sees it
        elif TeleopEvent.START in ev:
            if estopped:
                self.status.print("re-armed after the e-stop; press start again to record")
            else:
                self.begin()
        elif TeleopEvent.RESET in ev and not estopped:
            self.reset(self.next_seed)
        if TeleopEvent.ESTOP in ev:
            self.status.print("E-STOP: holding; start re-arms")

    def act(self) -> None:
        """Step the env once (recording); paused / e-stopped steps hold and are not recorded."""
        held = self.iv.state.held
        action = self.base.hold_action() if self.actor is None or held else self.actor.act(self.obs)
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        except (SafetyError, TransportError) as e:
            self.status.print(f"{type(e).__name__}: {e}")
            self.finish("fault")
            return
        if not info["operator_hold"]:
            intervened = bool(info["intervened"]) if self.actor is not None else True
            self.rec.add_step(self.obs, info["applied_action"], float(reward), {"intervened": np.bool_(intervened)})
            self.ep_steps += 1
            self.summary.steps += 1
            if intervened and self.actor is not None:
                self.ep_intervened += 1
                self.summary.intervened_steps += 1
        self.obs = obs
        self.ep_success = self.ep_success or bool(info.get("success", False))
        if terminated or truncated or self.ep_steps >= self.max_steps:
            self.finish("done")

    def idle_wait(self, t0: float) -> None:
        """Pace an idle tick (RealTimeRate paces the stepping ones)."""
        left = self.period - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)

    def show(self) -> None:
        """The status line."""
        now = time.monotonic()
        if self._last_tick is not None:
            dt = now - self._last_tick
            if dt > 0:
                self._hz_est = 1.0 / dt if self._hz_est == 0 else 0.9 * self._hz_est + 0.1 / dt
        self._last_tick = now
        if now - self._last_stats > 0.5:
            self._dropped = self.rec.stats().steps_dropped
            self._last_stats = now
        st = self.iv.state
        if self.recording:
            state = {"estop": "E-STOP", "pause": "PAUSED"}.get(st.held, "REC")
            ep = (f"ep {self.first_index + self.summary.saved} {now - self.ep_start:5.1f}s "
                  f"{self.ep_steps:4d} steps")
        else:
            state = "E-STOP" if st.estopped else "idle"
            ep = f"next ep {self.first_index + self.summary.saved} (start to record)"
        who = "" if self.actor is None else (" | HUMAN" if st.intervening else " | policy")
        g = getattr(self.device, "gripper_closed", None)
        grip = "" if g is None else (" | gripper closed" if g else " | gripper open")
        self.status.update(f"{state:<6} {ep} | saved {self.summary.saved} ({self.summary.successes} ok) | "
                           f"{self._hz_est:5.1f} Hz | overruns {self.env.overruns} | dropped {self._dropped}"
                           f"{who}{grip}")

    def run(self) -> None:
        """Ticks until the episode count is reached, the device is finished, or Ctrl-C."""
        describe = getattr(self.device, "describe", None)
        if describe is not None:
            self.status.print(describe())
        self.status.print(f"recording into {self.cfg.out} ({self.first_index} episodes there); start to record")
        while not (self.cfg.episodes and self.summary.saved >= self.cfg.episodes):
            t0 = time.monotonic()
            cmd = self.tap.poll()
            estopped = self.iv.state.estopped
            self.handle_events(cmd, estopped)
            if self.recording:
                self.act()  # the Intervention wrapper takes this tick's reading from the tap
            else:
                self.iv.observe(self.tap.read())
                self.idle_wait(t0)
            if self.viewer is not None:
                self.viewer.sync()
            self.show()
            if getattr(self.device, "finished", False):
                break
