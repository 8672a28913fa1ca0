"""Policy latency at batch 1: full act_chunk (normalize + network(s) + unnormalize), 1 and 2 threads."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch

from policies.base_policies import DiffusionPolicy, FlowPolicy, MipPolicy
from policies.chunk_policy import ChunkPolicy
from policies.config import (
    ChunkConfig,
    ConsistencyConfig,
    DiffusionConfig,
    FlowConfig,
    MeanFlowConfig,
    MipConfig,
    MipHeadConfig,
    MlpNet,
    ObsConfig,
    UnetNet,
)
from policies.heads import make_head
from policies.io import load_policy
from policies.normalize import Normalizer

# FrankaLift state observation as trained by `realrl train base` (cube pose, cube minus TCP, ee pose, gripper,
# joint positions), so trained Lift checkpoints can be timed on the same observation (--checkpoint).
STATE = {"state/cube_pose": 7, "state/cube_rel": 3, "state/ee_pose": 7, "state/gripper": 1, "state/joint_pos": 8}


def _stats() -> dict[str, dict[str, np.ndarray]]:
    out = {k: {"min": -np.ones(d), "max": np.ones(d)} for k, d in STATE.items()}
    out["action"] = {"min": -np.ones(7), "max": np.ones(7)}
    return out


def _obs() -> dict[str, np.ndarray]:
    return {k: np.random.default_rng(0).uniform(-1, 1, d).astype(np.float32) for k, d in STATE.items()}


def build(down_dims: tuple[int, ...]) -> dict[str, ChunkPolicy]:
    """Untrained policies of the trained sizes (latency does not depend on the weights)."""
    obs = ObsConfig(state_keys=tuple(STATE), state_dims=tuple(STATE.values()))
    chunk = ChunkConfig()
    net = UnetNet(down_dims=down_dims)
    torch.manual_seed(0)
    diff = DiffusionPolicy(obs, chunk, 7, DiffusionConfig(net=net), Normalizer(_stats()))
    flow = FlowPolicy(obs, chunk, 7, FlowConfig(net=net), Normalizer(_stats()))
    mip = MipPolicy(obs, chunk, 7, MipConfig(net=net), Normalizer(_stats()))
    mlp = MlpNet(hidden=(512, 512, 512))
    wide = MlpNet(hidden=(1024, 1024, 1024))  # MeanFlow's default student
    return {
        "DDIM-10 (teacher)": diff,
        "flow-10": flow,
        "MIP-2 (U-Net)": mip,
        "consistency head (U-Net student)": make_head(diff, ConsistencyConfig()),
        "consistency head (MLP student)": make_head(diff, ConsistencyConfig(net=mlp)),
        "MeanFlow head (MLP 512x3 student)": make_head(flow, MeanFlowConfig(net=mlp)),
        "MeanFlow head (MLP 1024x3 student, default)": make_head(flow, MeanFlowConfig(net=wide)),
        "MIP head (MLP student)": make_head(diff, MipHeadConfig(net=mlp)),
    }


def time_calls(fn: Callable[[], object], n: int, warmup: int = 5) -> tuple[float, float]:
    """(p50, p99) milliseconds."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 99))


def ddpm_call(policy: DiffusionPolicy, obs: dict[str, np.ndarray]) -> Callable[[], object]:
    """Full DDPM-100 ancestral sampling through the same act path."""
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True)

    def ddpm(cond: torch.Tensor, noise: torch.Tensor, model: object = None) -> torch.Tensor:
        sched.set_timesteps(100)
        x = noise
        for t in sched.timesteps:
            x = sched.step(policy.model(x, t.float().expand(1), cond), t, x).prev_sample
        return x

    def call() -> object:
        policy.reset()
        orig = policy.sample_normalized
        policy.sample_normalized = ddpm  # type: ignore[method-assign]
        try:
            return policy.act_chunk(obs)
        finally:
            policy.sample_normalized = orig  # type: ignore[method-assign]

    return call


def main() -> None:
    """Print p50/p99 per policy and thread count, and ratios to DDIM-10."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--down-dims", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--checkpoint", action="append", default=[], help="also time trained policies (run dirs)")
    p.add_argument("--big", action="store_true", help="also time a DiffusionPolicy-size U-Net (256, 512, 1024)")
    args = p.parse_args()
    obs = _obs()
    policies = build(tuple(args.down_dims))
    if args.big:
        big = build((256, 512, 1024))
        policies["DDIM-10, DiffusionPolicy-size U-Net"] = big["DDIM-10 (teacher)"]
        policies["consistency head, DiffusionPolicy-size U-Net student"] = big["consistency head (U-Net student)"]
    for path in args.checkpoint:
        pol = load_policy(f"{path}/policy")
        policies[f"{path} ({pol.name})"] = pol
    results: dict[str, dict[str, float]] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rows: dict[str, tuple[float, float, int]] = {}
        diff = policies["DDIM-10 (teacher)"]
        assert isinstance(diff, DiffusionPolicy)
        rows["DDPM-100"] = (*time_calls(ddpm_call(diff, obs), max(10, args.calls // 10)), 100)
        for name, pol in policies.items():
            pol.model.eval()

            def call(pol: ChunkPolicy = pol) -> object:
                pol.reset()
                return pol.act_chunk(obs)

            n = args.calls if pol.nfe <= 2 else max(20, args.calls // 5)
            if any(k in STATE for k in pol.obs_cfg.state_keys) and set(pol.obs_cfg.state_keys) <= set(STATE):
                rows[name] = (*time_calls(call, n), pol.nfe)
        base = rows["DDIM-10 (teacher)"][0]
        print(f"\nthreads={threads}   {'policy':<52} {'NFE':>4} {'p50 ms':>8} {'p99 ms':>8} {'vs DDIM-10':>10}")
        for name, (p50, p99, nfe) in rows.items():
            print(f"{'':<12}{name:<52} {nfe:>4} {p50:>8.3f} {p99:>8.3f} {base / p50:>9.1f}x")
            results[f"{threads}t/{name}"] = {"p50_ms": p50, "p99_ms": p99, "nfe": nfe, "speedup_vs_ddim10": base / p50}
    print("\ntargets: one-step heads >= 10x faster than DDIM-10; state-observation head p99 <= 2 ms on 1 thread")
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
