"""RobotEnv.step cost vs raw mj_step for the same model and substeps (Franka and G1 ids); camera render cost."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import mujoco
import numpy as np

import sim  # noqa: F401

FRANKA_IDS = ("realrl/FrankaLift-v0", "realrl/FrankaPickPlace-v0", "realrl/FrankaStack-v0")
G1_IDS = ("realrl/G1BoxPickup-v0", "realrl/G1Handover-v0")


def _best_of(fn, repeats: int) -> float:
    """Best (lowest) per-call time over `repeats` timed blocks: robust to a noisy shared machine."""
    best = float("inf")
    for _ in range(repeats):
        best = min(best, fn())
    return best


def bench_step(env_id: str, steps: int, repeats: int, **make_kwargs: Any) -> dict[str, float]:
    """Seconds per control step: raw physics, RobotEnv.step (unwrapped), and through gym.make's wrappers."""
    wrapped = gym.make(env_id, **make_kwargs)
    env = wrapped.unwrapped
    robot = env.robot
    model, data = robot.model, robot.data
    n = robot.n_substeps
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 0.3, (steps, env.action_space.shape[0])).astype(np.float32)
    # Record the exact actuator targets RobotEnv produces, so the raw baseline does identical physics.
    env.reset(seed=0)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state0 = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state0, spec)
    ctrls = []
    for a in actions:
        env.step(a)
        ctrls.append(data.ctrl.copy())

    # Each step is timed on its own and the per-step minimum over repeats is kept: on a shared machine another
    # process's burst then spoils one sample of one step, not a whole block.
    clock = time.perf_counter

    def raw() -> np.ndarray:
        mujoco.mj_setState(model, data, state0, spec)
        out = np.empty(steps)
        for i, c in enumerate(ctrls):
            t = clock()
            data.ctrl[:] = c
            mujoco.mj_step(model, data, nstep=n)
            out[i] = clock() - t
        return out

    def stepper(e: gym.Env) -> np.ndarray:
        e.reset(seed=0)
        out = np.empty(steps)
        for i, a in enumerate(actions):
            t = clock()
            e.step(a)
            out[i] = clock() - t
        return out

    # Interleave so that machine load drifts hit all three alike.
    r = np.full(steps, np.inf)
    e = np.full(steps, np.inf)
    g = np.full(steps, np.inf)
    for _ in range(repeats):
        r, e, g = np.minimum(r, raw()), np.minimum(e, stepper(env)), np.minimum(g, stepper(wrapped))
    r_s, e_s, g_s = float(r.mean()), float(e.mean()), float(g.mean())
    wrapped.close()
    return {"raw_ms": r_s * 1e3, "robotenv_ms": e_s * 1e3, "gym_make_ms": g_s * 1e3, "substeps": float(n)}


def bench_render(size: int, frames: int, env_id: str = "realrl/FrankaLift-v0", camera: str = "front") -> float:
    """Milliseconds per camera frame (fast settings) at size x size."""
    env = gym.make(env_id, cameras=(camera,), image_size=size).unwrapped
    env.reset(seed=0)
    robot = env.robot
    robot._render(camera, size, size)  # warm-up: context creation

    def block() -> float:
        t = time.perf_counter()
        for _ in range(frames):
            robot._render(camera, size, size)
        return (time.perf_counter() - t) / frames

    ms = _best_of(block, 3) * 1e3
    env.close()
    return ms


def main() -> None:
    """Run and print a table plus a JSON line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--envs", nargs="+", default=list(FRANKA_IDS + G1_IDS),
                   help="env ids; 'ID:joint_pos' runs an id with joint-position actions")
    p.add_argument("--no-render", action="store_true", help="skip the camera benchmark")
    args = p.parse_args()
    results: dict[str, object] = {}
    print(f"{'env':<36} {'substeps':>8} {'raw ms':>8} {'RobotEnv ms':>12} {'ratio':>6} "
          f"{'gym.make ms':>12} {'ratio':>6} {'env steps/s':>12} {'mj_step/s':>10}")
    for spec in args.envs:
        env_id, _, mode = spec.partition(":")
        r = bench_step(env_id, args.steps, args.repeats, **({"action_mode": mode} if mode else {}))
        ratio, gratio = r["robotenv_ms"] / r["raw_ms"], r["gym_make_ms"] / r["raw_ms"]
        # Throughput: control steps per second through RobotEnv (state observations), and the physics alone.
        sps, mjs = 1e3 / r["robotenv_ms"], r["substeps"] * 1e3 / r["raw_ms"]
        results[spec] = {**r, "ratio": ratio, "gym_ratio": gratio, "env_steps_per_s": sps, "mj_steps_per_s": mjs}
        print(f"{spec:<36} {r['substeps']:>8.0f} {r['raw_ms']:>8.3f} {r['robotenv_ms']:>12.3f} {ratio:>6.2f} "
              f"{r['gym_make_ms']:>12.3f} {gratio:>6.2f} {sps:>12.0f} {mjs:>10.0f}")
    if not args.no_render:
        for env_id, camera in (("realrl/FrankaLift-v0", "front"), ("realrl/G1BoxPickup-v0", "head")):
            for size in (84, 128):
                ms = bench_render(size, args.frames, env_id, camera)
                results[f"render_{env_id}_{camera}_{size}_ms"] = ms
                print(f"render {env_id} {camera} camera {size}x{size}: {ms:.1f} ms/frame ({1e3 / ms:.0f} frames/s)")
    print("target: RobotEnv.step <= 1.2x raw mj_step")
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
