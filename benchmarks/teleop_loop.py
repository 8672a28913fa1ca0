"""Teleop collect loop at 20, 50 and 100 Hz with two 128x128 cameras recording: loop rate, overruns, jitter.

The loop is the collect session's tick: read the device (a replayed operator stream), the Intervention and
SafetyLimits wrappers, the sim env step (state only), paced by RealTimeRate, and Recorder.add_step of the
observation plus the newest frame of each camera. Cameras are not rendered inside the loop: real cameras stream
on their own (a driver thread or a camera node) and a control loop takes their latest frames. Here a camera thread
delivers frames at 30 Hz into a latest-frame slot, as a driver callback does; the frames are real 128x128 renders
of the scene (made once at setup, MuJoCo offscreen on llvmpipe costs ~25 ms per frame on this CPU: rendering two
cameras inside the loop cannot reach 50 Hz, which the inline-render line shows).

Baseline, measured in the same run at each rate: the same loop without the recorder and the cameras (env, wrappers
and pacing only). Printed ratios: jitter p99 and overruns of the full loop vs the baseline.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np

import sim  # noqa: F401 - registers realrl/*
from data import EpisodeStore, Recorder
from hardware.teleop.replay import ReplayStep, ReplayTeleop
from robot.core.types import TeleopEvent
from robot.wrappers import Intervention, InterventionConfig, RateConfig, RealTimeRate, SafetyLimits

ENV = "realrl/FrankaPickPlace-v0"
CAMERAS = ("front", "wrist")


class CameraThread:
    """Delivers frames at `fps` into a latest-frame slot per camera (what a camera driver's callback does)."""

    def __init__(self, pools: dict[str, np.ndarray], fps: float) -> None:
        self.pools, self.period = pools, 1.0 / fps
        self.latest = {k: (p[0].copy(), time.time()) for k, p in pools.items()}
        self.lock = threading.Lock()
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    def _run(self) -> None:
        i, t_next = 0, time.monotonic()
        while not self._stop.is_set():
            t_next += self.period
            # A driver hands over a fresh buffer per frame: copy out of the pool, then publish under the lock.
            fresh = {k: p[i % len(p)].copy() for k, p in self.pools.items()}
            stamp = time.time()
            with self.lock:
                for k, f in fresh.items():
                    self.latest[k] = (f, stamp)
            self.frames += 1
            i += 1
            if (left := t_next - time.monotonic()) > 0:
                self._stop.wait(left)

    def snapshot(self) -> dict[str, np.ndarray]:
        """The newest frame of each camera with its stamp (image/<cam>, time/<cam>)."""
        with self.lock:
            items = list(self.latest.items())
        out: dict[str, np.ndarray] = {}
        for cam, (frame, stamp) in items:
            out[f"image/{cam}"] = frame
            out[f"time/{cam}"] = np.array(stamp)
        return out

    def __enter__(self) -> CameraThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def render_pools(n: int, size: int) -> tuple[dict[str, np.ndarray], float]:
    """n real frames per camera of the moving scene; also the inline cost per step of rendering both cameras."""
    env = gym.make(ENV, cameras=CAMERAS, image_size=size)
    obs, _ = env.reset(seed=0)
    expert = env.unwrapped.task.expert(seed=0)
    expert.reset()
    frames: dict[str, list[np.ndarray]] = {c: [] for c in CAMERAS}
    t0 = time.perf_counter()
    for _ in range(n):
        obs, *_ = env.step(expert.act(obs))
        for c in CAMERAS:
            frames[c].append(obs[f"image/{c}"])
    per_step = (time.perf_counter() - t0) / n
    env.close()
    return {c: np.stack(f) for c, f in frames.items()}, per_step


def operator_stream(steps: int, episode_steps: int) -> list[ReplayStep]:
    """Slow circles of the TCP (stays in the workspace), an episode boundary every `episode_steps`."""
    out = []
    for i in range(steps):
        t = (i % episode_steps) / episode_steps * 2 * np.pi
        a = np.array([0.3 * np.cos(t), 0.3 * np.sin(t), 0.1 * np.sin(2 * t), 0, 0, 0, -1], np.float32)
        ev = frozenset({TeleopEvent.STOP}) if i % episode_steps == episode_steps - 1 else frozenset()
        out.append(ReplayStep(a, ev))
    return out


def run_loop(hz: float, seconds: float, record: bool, pools: dict[str, np.ndarray] | None, root: Path,
             episode_s: float = 10.0, rt_priority: int = 0) -> dict[str, float]:
    """The collect tick at `hz` for `seconds`; returns rate statistics. rt_priority > 0 runs the loop (and the camera
    thread, as a driver's would be) SCHED_FIFO at that priority, as a robot's control process is run; the recorder's
    writer process is not (reset on fork)."""
    base = gym.make(ENV, control_hz=hz).unwrapped
    steps = int(seconds * hz)
    episode_steps = max(2, int(episode_s * hz))
    device = ReplayTeleop(operator_stream(steps + 1, episode_steps))
    iv = Intervention(SafetyLimits(base), device, InterventionConfig(takeover="always"))
    env = RealTimeRate(iv, RateConfig(hz=hz, window=steps + 10))
    store = EpisodeStore.create(root / f"bench-{hz:g}-{record}.zarr", fps=hz) if record else None
    rec = Recorder(store, info_keys=("intervened",)) if store is not None else None
    cams = CameraThread(pools, 30.0) if (record and pools) else None
    periods: list[float] = []
    add_ms: list[float] = []
    hold = base.hold_action()
    gc.collect()
    gc.freeze()  # setup garbage is not the loop's: a control process does the same once it is up
    try:
        if rt_priority:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(rt_priority))
        if cams is not None:
            cams.__enter__()
        obs, _ = env.reset(seed=0)
        if rec is not None:
            rec.start_episode()
        last: float | None = None
        for i in range(steps):
            nxt, reward, _, _, info = env.step(hold)
            now = time.monotonic()
            if last is not None:
                periods.append(now - last)
            last = now
            if rec is not None:
                t0 = time.perf_counter()
                step_obs = {**obs, **cams.snapshot()} if cams is not None else obs
                rec.add_step(step_obs, info["applied_action"], float(reward), {"intervened": np.bool_(True)})
                if TeleopEvent.STOP in info["teleop_events"] or i == steps - 1:
                    rec.end_episode(success=False, source="teleop", wait=False)
                    if i < steps - 1:
                        rec.start_episode()
                add_ms.append((time.perf_counter() - t0) * 1e3)
            obs = nxt
        stats = env.stats()
    finally:
        if rt_priority:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        gc.unfreeze()
        if cams is not None:
            cams.__exit__()
        if rec is not None:
            rec.close()
        if store is not None:
            store.close()
        base.close()
    p = np.asarray(periods) * 1e3
    target = 1e3 / hz
    jitter = np.abs(p - target)
    out = {"hz": hz, "achieved_hz": stats.get("achieved_hz", 0.0), "overruns": stats["overruns"],
           "steps": float(steps), "period_p50_ms": float(np.percentile(p, 50)),
           "period_p99_ms": float(np.percentile(p, 99)), "jitter_p50_ms": float(np.percentile(jitter, 50)),
           "jitter_p99_ms": float(np.percentile(jitter, 99)), "env_p50_ms": stats.get("env_p50_ms", 0.0),
           "env_p99_ms": stats.get("env_p99_ms", 0.0)}
    if rec is not None:
        s = rec.stats()
        out.update(dropped=float(s.steps_dropped), written=float(s.steps_written),
                   add_step_p99_ms=float(np.percentile(add_ms, 99)), add_step_max_ms=float(np.max(add_ms)),
                   camera_frames=float(cams.frames if cams is not None else 0))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="loop time per rate and variant")
    p.add_argument("--rates", type=float, nargs="*", default=[20.0, 50.0, 100.0])
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--rt-priority", type=int, default=0,
                   help="run the loop SCHED_FIFO at this priority (needs root or CAP_SYS_NICE; 0: normal scheduling)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    pools, inline = render_pools(60, args.image_size)
    root = Path(tempfile.mkdtemp(prefix="teleop-bench-"))
    sched = f"SCHED_FIFO {args.rt_priority}" if args.rt_priority else "normal scheduling"
    print(f"env {ENV}, cameras {CAMERAS} at {args.image_size}x{args.image_size}, frames from a 30 Hz camera thread, "
          f"{sched}, load average {os.getloadavg()[0]:.1f}")
    print(f"reference: rendering both cameras inside the loop costs {inline * 1e3:.1f} ms per step "
          f"(at most {1 / inline:.0f} Hz)\n")
    rows = []
    try:
        for hz in args.rates:
            b = run_loop(hz, args.seconds, False, None, root, rt_priority=args.rt_priority)
            f = run_loop(hz, args.seconds, True, pools, root, rt_priority=args.rt_priority)
            rows.append({"baseline": b, "full": f})
            print(f"{hz:5.0f} Hz | baseline (env + wrappers + pacing): {b['achieved_hz']:6.1f} Hz, overruns "
                  f"{b['overruns']:.0f}/{b['steps']:.0f}, jitter p50/p99 {b['jitter_p50_ms']:.2f}/"
                  f"{b['jitter_p99_ms']:.2f} ms, env step p50 {b['env_p50_ms']:.2f} ms")
            print(f"{'':8}| + 2 cameras recording:             {f['achieved_hz']:6.1f} Hz, overruns "
                  f"{f['overruns']:.0f}/{f['steps']:.0f}, jitter p50/p99 {f['jitter_p50_ms']:.2f}/"
                  f"{f['jitter_p99_ms']:.2f} ms, add_step p99 {f['add_step_p99_ms']:.2f} ms (max "
                  f"{f['add_step_max_ms']:.1f}), dropped {f['dropped']:.0f}, written {f['written']:.0f}, "
                  f"camera frames {f['camera_frames']:.0f}")
            ratio = f["jitter_p99_ms"] / max(b["jitter_p99_ms"], 1e-6)
            print(f"{'':8}| ratio full/baseline: jitter p99 {ratio:.2f}x, overruns {f['overruns']:.0f} vs "
                  f"{b['overruns']:.0f}; target at 50 Hz: 0 overruns, jitter p99 <= 2 ms\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"inline_render_ms": inline * 1e3, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
