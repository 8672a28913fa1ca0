"""lerobot 0.3.2 DiffusionPolicy.select_action latency at batch 1 on CPU (lerobot venv only): re-plan and amortized."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

# FrankaLift state observation (23 dims), split the way lerobot's DiffusionPolicy needs it: it requires an
# image or observation.environment_state, so the cube pose (7) is the environment state and
# ee_pose 7 + gripper 1 + joint_pos 8 = 16 the robot state. The U-Net is conditioned on all 23 per obs step.
ROBOT_STATE, ENV_STATE, ACTION = 16, 7, 7


def build(down_dims: tuple[int, ...], image: bool) -> Any:
    """Untrained DiffusionPolicy (latency does not depend on the weights), DDIM-10, To=2, H=16, Ta=8."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (ROBOT_STATE,))}
    shapes = {"observation.state": (ROBOT_STATE,), "action": (ACTION,)}
    if image:
        inputs["observation.images.front"] = PolicyFeature(FeatureType.VISUAL, (3, 84, 84))
        shapes["observation.images.front"] = (3, 1, 1)
    else:
        inputs["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (ENV_STATE,))
        shapes["observation.environment_state"] = (ENV_STATE,)
    # lerobot's Normalize reads "mean" of every key to pick the tensor type, whatever the mode uses.
    stats = {k: {"min": -torch.ones(s), "max": torch.ones(s), "mean": torch.full(s, 0.5), "std": torch.full(s, 0.25)}
             for k, s in shapes.items()}
    cfg = DiffusionConfig(
        input_features=inputs, output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION,))},
        n_obs_steps=2, horizon=16, n_action_steps=8, down_dims=down_dims,
        noise_scheduler_type="DDIM", num_inference_steps=10, device="cpu",
        pretrained_backbone_weights=None, crop_shape=(84, 84),
    )
    torch.manual_seed(0)
    policy = DiffusionPolicy(cfg, dataset_stats=stats)
    policy.eval()
    return policy


def observation(image: bool) -> dict[str, torch.Tensor]:
    """One batch-1 observation."""
    g = torch.Generator().manual_seed(0)
    obs = {"observation.state": torch.rand(1, ROBOT_STATE, generator=g) * 2 - 1}
    if image:
        obs["observation.images.front"] = torch.rand(1, 3, 84, 84, generator=g)
    else:
        obs["observation.environment_state"] = torch.rand(1, ENV_STATE, generator=g) * 2 - 1
    return obs


def time_calls(fn: Callable[[], object], n: int, warmup: int = 5) -> list[float]:
    """Milliseconds per call."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return ts


def measure(policy: Any, obs: dict[str, torch.Tensor], calls: int, chunks: int) -> dict[str, float]:
    """Re-planning call (queue reset before each) and the amortized per-step cost over whole chunks."""

    def replan() -> object:
        policy.reset()
        return policy.select_action(dict(obs))

    with torch.inference_mode():
        re = time_calls(replan, calls)
        policy.reset()
        ta = policy.config.n_action_steps
        for _ in range(ta):  # warm-up chunk
            policy.select_action(dict(obs))
        steps = []
        t0 = time.perf_counter()
        for _ in range(chunks * ta):
            s0 = time.perf_counter()
            policy.select_action(dict(obs))
            steps.append((time.perf_counter() - s0) * 1e3)
        total = (time.perf_counter() - t0) * 1e3
    pops = [s for i, s in enumerate(steps) if i % ta]  # calls that only pop a queued action
    return {"replan_p50_ms": float(np.percentile(re, 50)), "replan_p99_ms": float(np.percentile(re, 99)),
            "amortized_ms_per_step": total / len(steps), "pop_step_p50_ms": float(np.percentile(pops, 50)),
            "nfe": float(policy.diffusion.num_inference_steps),
            "params_M": sum(p.numel() for p in policy.parameters()) / 1e6}


def main() -> None:
    """Print a table per thread count and a JSON line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=50, help="timed re-planning calls (after 5 warm-up calls)")
    p.add_argument("--chunks", type=int, default=6, help="whole chunks (n_action_steps calls each) for amortized")
    p.add_argument("--down-dims", nargs="*", default=["512,1024,2048", "256,512,1024", "64,128,256", "32,64,128"],
                   help="state-only U-Net sizes (comma-separated channels)")
    p.add_argument("--image-down-dims", nargs="*", default=["512,1024,2048", "64,128,256"],
                   help="one 84x84 camera (ResNet-18, no pretrained weights) + 16-dim robot state")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    configs = [(f"state {d}", tuple(int(x) for x in d.split(",")), False) for d in args.down_dims]
    configs += [(f"image84 {d}", tuple(int(x) for x in d.split(",")), True) for d in args.image_down_dims]
    policies = {name: (build(dims, image), observation(image)) for name, dims, image in configs}
    sched = type(next(iter(policies.values()))[0].diffusion.noise_scheduler).__name__
    results: dict[str, dict[str, float]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\nthreads={threads}  {'config (down_dims)':<24} {'params':>8} {'NFE':>4} {'replan p50':>11}"
              f" {'replan p99':>11} {'amortized/step':>15} {'pop p50':>9}")
        for name, (policy, obs) in policies.items():
            r = measure(policy, obs, args.calls, args.chunks)
            results[f"{threads}t/{name}"] = r
            print(f"{'':<12}{name:<24} {r['params_M']:>7.2f}M {int(r['nfe']):>4} {r['replan_p50_ms']:>9.2f}ms"
                  f" {r['replan_p99_ms']:>9.2f}ms {r['amortized_ms_per_step']:>13.2f}ms {r['pop_step_p50_ms']:>7.3f}ms")
    print(f"\n{sched}, To=2 H=16 Ta=8, batch 1, CPU; replan = reset() + select_action (normalize + U-Net x NFE +"
          " unnormalize); amortized = mean over whole chunks of select_action calls")
    print("JSON " + json.dumps({"scheduler": sched, "results": results}))


if __name__ == "__main__":
    main()
