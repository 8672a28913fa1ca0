"""Episode store I/O: recorder at 30 Hz with 3 cameras, random window reads, DataLoader throughput."""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from data import EpisodeStore, Recorder
from data.dataset import WindowConfig, WindowDataset
from data.recorder import Backend


def _frames(n: int, size: int, seed: int) -> np.ndarray:
    """Camera-like frames: smooth gradients that move plus sensor noise (compress like real images)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        base = (x * 2 + y + 3 * i) % 256
        out[i] = np.clip(base[..., None] + rng.normal(0, 4, (size, size, 3)) + [0, 40, 80], 0, 255).astype(np.uint8)
    return out


def _obs(t: int, pools: dict[str, np.ndarray], stamp: float) -> dict[str, np.ndarray]:
    obs = {k: p[t % len(p)] for k, p in pools.items()}
    obs["state/joint_pos"] = np.full(8, t * 1e-3, np.float32)
    obs["state/joint_vel"] = np.full(8, t * 1e-4, np.float32)
    obs["state/ee_pose"] = np.full(7, t * 1e-3, np.float32)
    obs["state/gripper"] = np.zeros(1, np.float32)
    obs["time/state"] = np.array(stamp)
    for cam in pools:
        obs[f"time/{cam.split('/')[1]}"] = np.array(stamp)
    return obs


def bench_record(
    root: Path, seconds: float, hz: float, episode_s: float, backend: Backend, freeze: bool = True, rt: bool = False
) -> dict[str, float]:
    """Paced 30 Hz loop: recorder (writer process or thread) vs the same episodes appended on the control thread.

    Measures the control thread's time in add_step/end_episode per step (the env's observation is built
    before the clock starts), both wall-clock and CPU time of the thread: a slow step whose CPU time is
    small was descheduled by the OS, not working. Garbage collections during the loop are timed too. GC stays
    on, as a control loop would have it, after `gc.freeze()` of what setup allocated (torch and co.: a full
    collection then walks only what the loop made); --no-gc-freeze shows the difference. With rt=True the
    control thread runs SCHED_FIFO (as a robot's control loop would; the writer process is not: reset on fork).
    """
    pools = {f"image/cam{i}": _frames(60, 128, i) for i in range(3)}
    steps_per_ep = int(episode_s * hz)
    n_steps = int(seconds * hz)
    store = EpisodeStore.create(root / "rec.zarr", fps=hz)
    block_ms: list[float] = []
    cpu_ms: list[float] = []
    gc_ms: list[float] = []
    gc_t0 = [0.0]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        else:
            gc_ms.append((time.perf_counter() - gc_t0[0]) * 1e3)

    period = 1.0 / hz
    with Recorder(store, queue_size=2048, backend=backend) as rec:
        if freeze:
            gc.collect()
            gc.freeze()
        if rt:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(10))
        gc.callbacks.append(gc_timer)
        t_next = time.monotonic()
        rec.start_episode()
        for t in range(n_steps):
            t_next += period
            obs, action = _obs(t, pools, time.time()), np.zeros(7, np.float32)
            c0 = time.thread_time()
            t0 = time.perf_counter()
            rec.add_step(obs, action, 0.0)
            if (t + 1) % steps_per_ep == 0:
                rec.end_episode(success=True, source="expert", wait=False)  # the control loop never waits
                if t + 1 < n_steps:
                    rec.start_episode()
            block_ms.append((time.perf_counter() - t0) * 1e3)
            cpu_ms.append((time.thread_time() - c0) * 1e3)
            if (rem := t_next - time.monotonic()) > 0:
                time.sleep(rem)
        gc.callbacks.remove(gc_timer)
        if rt:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        if rec._open:
            rec.end_episode(success=True, source="expert", wait=False)
    s = rec.stats()
    gc.unfreeze()
    store.close()
    # Baseline: the naive way, one synchronous append_episode on the control thread per episode.
    sync = EpisodeStore.create(root / "sync.zarr", fps=hz)
    sync_block = 0.0
    for e in range(max(1, n_steps // steps_per_ep)):
        steps = [_obs(e * steps_per_ep + t, pools, 0.0) for t in range(steps_per_ep)]
        arrays = {k: np.stack([o[k] for o in steps]) for k in steps[0]}
        arrays["action"] = np.zeros((steps_per_ep, 7), np.float32)
        t0 = time.perf_counter()
        sync.append_episode(arrays, success=True)
        sync_block = max(sync_block, (time.perf_counter() - t0) * 1e3)
    sync.close()
    arr, cpu = np.asarray(block_ms), np.asarray(cpu_ms)
    slow = arr > 2.0
    return {
        "steps": float(n_steps), "dropped": float(s.steps_dropped), "written": float(s.steps_written),
        "block_p50_ms": float(np.percentile(arr, 50)), "block_p99_ms": float(np.percentile(arr, 99)),
        "block_max_ms": float(arr.max()), "sync_append_block_ms": sync_block,
        "queue_high_water": float(s.queue_high_water), "queue_size": float(s.queue_size),
        "slow_steps_over_2ms": float(slow.sum()),
        "slow_steps_descheduled": float(np.sum(slow & (cpu < 0.5 * arr))),
        "block_cpu_p99_ms": float(np.percentile(cpu, 99)), "block_cpu_max_ms": float(cpu.max()),
        "gc_collections": float(len(gc_ms)), "gc_max_ms": float(max(gc_ms, default=0.0)),
    }


def _drop_caches() -> bool:
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def bench_windows(root: Path, reads: int) -> dict[str, float]:
    """Random 16-step windows with two 84x84 cameras, cold (page cache dropped when allowed) and warm."""
    path = root / "win.zarr"
    store = EpisodeStore.create(path, fps=20.0)
    pools = {"image/front": _frames(50, 84, 1), "image/wrist": _frames(50, 84, 2)}
    for e in range(40):
        n = 150
        obs = [_obs(e * n + t, pools, float(t)) for t in range(n)]
        arrays = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
        arrays["action"] = np.zeros((n, 7), np.float32)
        store.append_episode(arrays)
    store.close()
    cfg = WindowConfig(state_keys=("state/ee_pose", "state/gripper"), image_keys=("image/front", "image/wrist"))
    rng = np.random.default_rng(0)
    dropped = _drop_caches()
    # Store reads (cold, then warm) with preloading off; then the default dataset, images preloaded.
    ds = WindowDataset(EpisodeStore.open(path, "r"), cfg)  # images too large to preload? see preload_images_gb
    ds_store = WindowDataset(EpisodeStore.open(path, "r"), WindowConfig(
        state_keys=cfg.state_keys, image_keys=cfg.image_keys, preload_images_gb=0.0))
    idx = rng.integers(0, len(ds), reads)
    cold = []
    for i in idx:
        t0 = time.perf_counter()
        ds_store[int(i)]
        cold.append((time.perf_counter() - t0) * 1e3)
    warm = []
    for i in idx:
        t0 = time.perf_counter()
        ds_store[int(i)]
        warm.append((time.perf_counter() - t0) * 1e3)
    pre = []
    for i in idx:
        t0 = time.perf_counter()
        ds[int(i)]
        pre.append((time.perf_counter() - t0) * 1e3)
    # Baseline: the same windows sliced from arrays held in memory (the floor for any store).
    mem = {k: ds.store.read(k, 0, ds.store.n_steps) for k in cfg.image_keys}
    base = []
    for i in idx:
        start, _, t = ds._anchors[int(i)]
        t0 = time.perf_counter()
        for k in cfg.image_keys:
            np.ascontiguousarray(mem[k][start + max(t - 1, 0): start + t + 1].transpose(0, 3, 1, 2))
        base.append((time.perf_counter() - t0) * 1e3)
    return {"cold_p50_ms": float(np.median(cold)), "cold_p99_ms": float(np.percentile(cold, 99)),
            "warm_p50_ms": float(np.median(warm)), "memory_p50_ms": float(np.median(base)),
            "preloaded_dataset_p50_ms": float(np.median(pre)),
            "page_cache_dropped": float(dropped), "windows": float(len(ds))}


def bench_loader(root: Path, batches: int) -> dict[str, float]:
    """DataLoader batches/s at batch 256: state-only and with two 84x84 cameras, 0 and 2 workers."""
    path = root / "win.zarr"
    out: dict[str, float] = {}
    for name, cams in (("state", ()), ("images", ("image/front", "image/wrist"))):
        cfg = WindowConfig(state_keys=("state/ee_pose", "state/gripper"), image_keys=cams)
        for workers in (0, 2):
            ds = WindowDataset(EpisodeStore.open(path, "r"), cfg)
            dl = DataLoader(ds, batch_size=256, shuffle=True, num_workers=workers, drop_last=True,
                            persistent_workers=False)
            it = iter(dl)
            next(it)  # workers start
            t0 = time.perf_counter()
            n = 0
            for _ in range(batches):
                try:
                    next(it)
                except StopIteration:
                    break
                n += 1
            out[f"{name}_workers{workers}_batches_per_s"] = n / (time.perf_counter() - t0)
    return out


def main() -> None:
    """Run all three and print a summary plus a JSON line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=120.0, help="recorded (real = simulated) time")
    p.add_argument("--reads", type=int, default=300)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--backend", choices=["process", "thread"], default="process", help="recorder backend")
    p.add_argument("--no-gc-freeze", action="store_true", help="record without gc.freeze() of the setup")
    p.add_argument("--rt", action="store_true", help="run the recording loop SCHED_FIFO (needs CAP_SYS_NICE)")
    p.add_argument("--record-only", action="store_true", help="skip the window-read and DataLoader parts")
    args = p.parse_args()
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="realrl-bench-"))
    try:
        rec = bench_record(root, args.seconds, 30.0, 20.0, args.backend, freeze=not args.no_gc_freeze, rt=args.rt)
        print(f"record 3x128x128 + state at 30 Hz for {args.seconds:.0f} s, {args.backend} backend, gc.freeze "
              f"{'off' if args.no_gc_freeze else 'on'}{', SCHED_FIFO' if args.rt else ''}: "
              f"{rec['steps']:.0f} steps, "
              f"dropped {rec['dropped']:.0f}, written {rec['written']:.0f}; control-thread block "
              f"p50 {rec['block_p50_ms']:.3f} ms, p99 {rec['block_p99_ms']:.3f} ms, max {rec['block_max_ms']:.2f} ms "
              f"(target <= 2 ms); baseline synchronous append blocks {rec['sync_append_block_ms']:.0f} ms per "
              f"episode = {rec['sync_append_block_ms'] / max(rec['block_max_ms'], 1e-9):.0f}x the recorder's worst; "
              f"{rec['slow_steps_over_2ms']:.0f} steps over 2 ms ({rec['slow_steps_descheduled']:.0f} of them "
              f"descheduled: thread CPU time < half the wall time); thread CPU time in add_step p99 "
              f"{rec['block_cpu_p99_ms']:.3f} ms, max {rec['block_cpu_max_ms']:.2f} ms; {rec['gc_collections']:.0f} "
              f"GC runs, longest {rec['gc_max_ms']:.2f} ms; queue high-water {rec['queue_high_water']:.0f} "
              f"of {rec['queue_size']:.0f}")
        if args.record_only:
            print("JSON " + json.dumps({"record": rec}))
            return
        win = bench_windows(root, args.reads)
        print(f"random 16-step windows, 2 cams 84x84: cold p50 {win['cold_p50_ms']:.2f} ms (p99 "
              f"{win['cold_p99_ms']:.2f}; page cache dropped: {bool(win['page_cache_dropped'])}), warm p50 "
              f"{win['warm_p50_ms']:.2f} ms, dataset with images preloaded p50 "
              f"{win['preloaded_dataset_p50_ms']:.3f} ms, "
              f"raw in-memory slicing baseline p50 {win['memory_p50_ms']:.3f} ms "
              f"(ratio {win['cold_p50_ms'] / win['memory_p50_ms']:.0f}x); target cold p50 <= 10 ms")
        dl = bench_loader(root, args.batches)
        print("DataLoader batch 256: " + ", ".join(f"{k} {v:.1f}" for k, v in dl.items()))
        print("JSON " + json.dumps({"record": rec, "windows": win, "loader": dl}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
