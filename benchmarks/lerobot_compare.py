"""realrl WindowDataset vs lerobot 0.3.2 LeRobotDataset on one dataset: random window latency, DataLoader batches/s."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

STATE = ("cube_pose", "ee_pose", "gripper", "joint_pos")  # FrankaLift state observation (23 dims)
CAMERAS = ("front", "wrist")
N_OBS, HORIZON = 2, 16  # realrl defaults: obs t-1..t, actions t-1..t+14 (edge padded / *_is_pad on lerobot)


def realrl_datasets(zarr: str) -> dict[str, Dataset[Any]]:
    """realrl windows: images preloaded in RAM (the default) and read from the zarr store per window."""
    from data import EpisodeStore
    from data.dataset import WindowConfig, WindowDataset

    out: dict[str, Dataset[Any]] = {}
    for name, gb in (("realrl preloaded images (default)", 4.0), ("realrl images read from zarr", 0.0)):
        cfg = WindowConfig(state_keys=tuple(f"state/{k}" for k in STATE),
                           image_keys=tuple(f"image/{c}" for c in CAMERAS),
                           n_obs_steps=N_OBS, horizon=HORIZON, preload_images_gb=gb)
        out[name] = WindowDataset(EpisodeStore.open(zarr, "r"), cfg)
    return out


def lerobot_datasets(root: str, backends: list[str]) -> dict[str, Dataset[Any]]:
    """lerobot windows through delta_timestamps (videos decoded per window) for each video backend."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    fps = LeRobotDatasetMetadata("local/realrl_export", root=root).fps
    obs_dt = [(i - N_OBS + 1) / fps for i in range(N_OBS)]
    act_dt = [(i - N_OBS + 1) / fps for i in range(HORIZON)]
    delta = {f"observation.state.{k}": obs_dt for k in STATE}
    delta |= {f"observation.images.{c}": obs_dt for c in CAMERAS}
    delta["action"] = act_dt
    return {f"lerobot video_backend={b}": LeRobotDataset("local/realrl_export", root=root, delta_timestamps=delta,
                                                          video_backend=b) for b in backends}


def canonical(side: str, item: dict[str, Any]) -> dict[str, np.ndarray]:
    """One window as numpy: state/<k> (To, d), image/<c> uint8 (To, 3, H, W), action (H, 7)."""
    out: dict[str, np.ndarray] = {"action": item["action"].numpy()}
    for k in STATE:
        out[f"state/{k}"] = item[f"state/{k}" if side == "realrl" else f"observation.state.{k}"].numpy()
    for c in CAMERAS:
        img = item[f"image/{c}" if side == "realrl" else f"observation.images.{c}"]
        out[f"image/{c}"] = img.numpy() if side == "realrl" else (img * 255).round().clamp(0, 255).byte().numpy()
    return out


def percentiles(fn: Callable[[int], object], idx: np.ndarray, warmup: int = 10) -> tuple[float, float]:
    """(p50, p99) milliseconds of fn(i) over idx."""
    for i in idx[:warmup]:
        fn(int(i))
    ts = []
    for i in idx:
        t0 = time.perf_counter()
        fn(int(i))
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 99))


def loader_rate(ds: Dataset[Any], batch: int, workers: int, batches: int) -> tuple[float, float]:
    """(seconds to the first batch, batches/s over the next `batches`); random windows with replacement."""
    sampler = RandomSampler(ds, replacement=True, num_samples=batch * (batches + 1),  # type: ignore[arg-type]
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers)
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    n = sum(1 for _ in it)
    return first, n / (time.perf_counter() - t1)


def main() -> None:
    """Time one side (each side runs in its own venv); print a table and a JSON line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--side", choices=("realrl", "lerobot"), required=True)
    p.add_argument("--zarr", default="/tmp/cmp/demos.zarr")
    p.add_argument("--root", default="/tmp/cmp/lerobot_v21", help="LeRobot v2.1 export of the same store")
    p.add_argument("--video-backend", nargs="+", default=["pyav"], help="lerobot: pyav and/or torchcodec")
    p.add_argument("--reads", type=int, default=300)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--batches", type=int, default=3, help="timed batches per loader (after the first)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--threads", type=int, help="torch intra-op threads in the main process (default: torch's)")
    p.add_argument("--dump", help="realrl: save a few windows here (npz) for --reference")
    p.add_argument("--reference", help="lerobot: compare windows with this realrl --dump")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = realrl_datasets(args.zarr) if args.side == "realrl" else lerobot_datasets(args.root, args.video_backend)
    results: dict[str, dict[str, float]] = {}
    check_idx = np.random.default_rng(1).integers(0, len(next(iter(sets.values()))), 32)  # type: ignore[arg-type]
    for name, ds in sets.items():
        n = len(ds)  # type: ignore[arg-type]
        idx = np.random.default_rng(0).integers(0, n, args.reads)
        p50, p99 = percentiles(ds.__getitem__, idx)
        r: dict[str, float] = {"windows": float(n), "read_p50_ms": p50, "read_p99_ms": p99}
        for w in args.workers:
            first, rate = loader_rate(ds, args.batch, w, args.batches)
            r[f"loader_w{w}_batches_per_s"] = rate
            r[f"loader_w{w}_first_batch_s"] = first
        if args.dump and args.side == "realrl" and not results:
            wins = [canonical("realrl", ds[int(i)]) for i in check_idx]
            np.savez(args.dump, idx=check_idx, **{k: np.stack([w[k] for w in wins]) for k in wins[0]})
        if args.reference and args.side == "lerobot":
            ref = np.load(args.reference)
            wins = [canonical("lerobot", ds[int(i)]) for i in ref["idx"]]
            got = {k: np.stack([w[k] for w in wins]) for k in wins[0]}
            for k in got:
                diff = np.abs(got[k].astype(np.float64) - ref[k].astype(np.float64))
                r[f"ref_maxabs/{k}"] = float(diff.max())
                if k.startswith("image/"):
                    r[f"ref_meanabs/{k}"] = float(diff.mean())
        results[name] = r
    print(f"\n{'dataset':<42} {'windows':>7} {'read p50':>9} {'read p99':>9}"
          + "".join(f" {'w' + str(w) + ' b/s':>9} {'w' + str(w) + ' 1st s':>9}" for w in args.workers))
    for name, r in results.items():
        print(f"{name:<42} {int(r['windows']):>7} {r['read_p50_ms']:>7.3f}ms {r['read_p99_ms']:>7.3f}ms"
              + "".join(f" {r[f'loader_w{w}_batches_per_s']:>9.2f} {r[f'loader_w{w}_first_batch_s']:>9.2f}"
                        for w in args.workers))
        for k, v in r.items():
            if k.startswith("ref_"):
                print(f"{'':<4}{k:<40} {v:.6g}")
    print(f"(window: {N_OBS} obs steps x {len(STATE)} state keys + {len(CAMERAS)} cameras 84x84, {HORIZON} actions;"
          f" batch {args.batch}; torch threads {torch.get_num_threads()})")
    print("JSON " + json.dumps({"side": args.side, "batch": args.batch, "results": results}))


if __name__ == "__main__":
    main()
