"""Training loop for chunked policies and heads: EMA, AdamW + warmup-cosine, metrics, plots, resume."""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.chunk_policy import Batch, ChunkModel, ChunkPolicy
from policies.device import resolve_device, to_device
from policies.io import save_policy
from robot.core.errors import CheckpointError, ConfigError


@runtime_checkable
class BatchedDataset(Protocol):
    """A dataset that hands out a collated batch for a (B,) index tensor in one call (in-memory data: one
    gather instead of B item reads and a collate, which dominates a small network's step)."""

    def batch(self, index: torch.Tensor) -> Batch:
        """What default_collate of the items at `index` would give."""
        ...


@dataclass(frozen=True)
class TrainConfig:
    """Optimization and bookkeeping."""

    steps: int = 3000
    """Gradient steps."""
    batch_size: int = 256
    """Batch size."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear warm-up before the cosine decay."""
    ema_decay: float = 0.995
    """Maximum EMA decay (ramps up as (1 + step) / (10 + step))."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    val_every: int = 250
    """Validation loss every N steps (0: never)."""
    eval_every: int = 1000
    """Sim evaluation every N steps (0: never; needs an evaluator)."""
    checkpoint_every: int = 500
    """Checkpoint every N steps (and at the end)."""
    seed: int = 0
    """Seed of init, batches and noise."""
    threads: int = 2
    """torch intra-op threads."""
    progress: bool = True
    """Show a progress bar."""
    device: str = "cpu"
    """Where the model, its EMA and the optimizer live and batches go: cpu, cuda, cuda:N or auto. Checkpoints are
    written from CPU copies and the evaluator gets a CPU copy of the EMA model."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def ema_update(ema: ChunkModel, model: ChunkModel, step: int, max_decay: float) -> None:
    """ema <- d * ema + (1 - d) * model, with d ramping up early so the average follows fast at first."""
    d = min(max_decay, (1.0 + step) / (10.0 + step))
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.mul_(d).add_(pm.detach(), alpha=1.0 - d)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    sd = opt.state_dict()
    tensors = {
        f"{pid}/{name}": v for pid, st in sd["state"].items() for name, v in st.items() if isinstance(v, torch.Tensor)
    }
    return tensors, sd["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": groups}


class Trainer:
    """Runs `policy.loss` over random batches of `train_set`; the EMA weights are what gets saved as policy.

    Output directory: `policy/` (EMA policy checkpoint), `train_state/` (everything to resume exactly),
    `metrics.jsonl` (one line per logged step), `curves.png`.

    The model (moved in place), its EMA and the optimizer state live on `config.device`; datasets stay on the
    CPU and each batch is moved over. Everything written is CPU tensors, so a run trained on a GPU resumes and
    deploys on a CPU-only machine.
    """

    def __init__(
        self,
        policy: ChunkPolicy,
        train_set: Dataset[Batch],
        out: str | os.PathLike[str],
        config: TrainConfig,
        *,
        val_set: Dataset[Batch] | None = None,
        evaluator: Callable[[ChunkPolicy], dict[str, float]] | None = None,
    ) -> None:
        self.policy, self.train_set, self.val_set, self.config = policy, train_set, val_set, config
        self.evaluator = evaluator
        self.device = resolve_device(config.device)  # before any output: a missing GPU is a config error
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.model = policy.model.to(self.device)
        self.ema = copy.deepcopy(self.model).eval()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, config.warmup_steps, config.steps)
        )
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.n = len(train_set)  # type: ignore[arg-type]
        if self.n < 1:
            raise ConfigError("the training set is empty")

    # -- bookkeeping ---------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        with (self.out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")

    def _cpu_ema(self) -> ChunkModel:
        """The EMA model on the CPU: itself when training there, else a copy (for saving and sim evaluation)."""
        return self.ema if self.device.type == "cpu" else copy.deepcopy(self.ema).cpu()

    def save(self) -> None:
        """EMA policy checkpoint + full train state (CPU tensors), each written atomically."""
        ema_policy = self.policy
        live = ema_policy.model
        cpu_ema = self._cpu_ema()  # one device-to-host copy serves the policy and the train state
        ema_policy.model = cpu_ema
        ema_policy.meta["train_step"] = self.step
        try:
            save_policy(ema_policy, self.out / "policy")
        finally:
            ema_policy.model = live
        opt_tensors, groups = _flatten_optimizer(self.opt)
        # .cpu() is the tensor itself on the CPU and a copy from a GPU.
        tensors = {f"model/{k}": v.cpu() for k, v in self.model.state_dict().items()}
        tensors |= {f"ema/{k}": v for k, v in cpu_ema.state_dict().items()}
        tensors |= {f"opt/{k}": v.cpu() for k, v in opt_tensors.items()}
        tensors["rng/batches"] = self.gen.get_state()
        tensors["rng/torch"] = torch.get_rng_state()
        if self.device.type == "cuda":  # the loss noise is drawn there
            tensors["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        save_checkpoint(
            self.out / "train_state",
            tensors,
            {
                "kind": "train_state",
                "step": self.step,
                "param_groups": groups,
            },
        )

    def resume(self) -> bool:
        """Continue from train_state/ if present; returns whether it did."""
        path = self.out / "train_state"
        if not path.exists() and not path.with_name("train_state.old").exists():
            return False
        tensors, cfg = load_checkpoint(path)  # CPU tensors; load_state_dict copies them onto the device
        if cfg.get("kind") != "train_state":
            raise CheckpointError(f"{path} is not a training state")

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        try:
            self.model.load_state_dict(part("model/"))
            self.ema.load_state_dict(part("ema/"))
            self.opt.load_state_dict(_unflatten_optimizer(part("opt/"), cfg["param_groups"]))
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path} does not match this policy ({e}); use a new --out") from e
        self.gen.set_state(tensors["rng/batches"])
        torch.set_rng_state(tensors["rng/torch"])
        if self.device.type == "cuda" and "rng/cuda" in tensors:  # absent when the run began on the CPU
            torch.cuda.set_rng_state(tensors["rng/cuda"], self.device)
        self.step = int(cfg["step"])
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, self.config.warmup_steps, self.config.steps), last_epoch=self.step - 1
        )
        return True

    def _batch(self) -> Batch:
        idx = torch.randint(0, self.n, (min(self.config.batch_size, self.n),), generator=self.gen)
        if isinstance(self.train_set, BatchedDataset):
            return self.train_set.batch(idx)
        out: Batch = default_collate([self.train_set[int(i)] for i in idx])
        return out

    @torch.no_grad()
    def val_loss(self, batches: int = 4) -> float:
        """Mean loss of the EMA model on fixed validation batches."""
        if self.val_set is None or len(self.val_set) == 0:  # type: ignore[arg-type]
            return float("nan")
        g = torch.Generator().manual_seed(12345)
        losses = []
        n = len(self.val_set)  # type: ignore[arg-type]
        # Restores the RNG states afterwards (the GPU's too), so validating does not change the training noise.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(12345)  # the same noise every time, so the curve is comparable
            for _ in range(batches):
                idx = torch.randint(0, n, (min(self.config.batch_size, n),), generator=g)
                batch = to_device(default_collate([self.val_set[int(i)] for i in idx]), self.device)
                losses.append(float(self.policy.loss(batch, self.ema)[0]))
        return float(np.mean(losses))

    def evaluate(self) -> dict[str, float]:
        """Run the evaluator on the EMA weights (on the CPU: the sim hands over CPU observations)."""
        assert self.evaluator is not None
        live = self.policy.model
        self.policy.model = self._cpu_ema()
        try:
            return self.evaluator(self.policy)
        finally:
            self.policy.model = live
            live.train()

    # -- loop ----------------------------------------------------------------------------------
    def fit(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train to config.steps (or stop early at `stop_at`, checkpointing there); returns the last metrics."""
        from tqdm import tqdm

        c = self.config
        self.model.train()
        bar = tqdm(
            total=c.steps,
            initial=self.step,
            desc=f"train {self.policy.name}",
            disable=not c.progress,
            unit="step",
            dynamic_ncols=True,
        )
        last: dict[str, Any] = {}
        t0 = time.perf_counter()
        end = c.steps if stop_at is None else min(stop_at, c.steps)
        while self.step < end:
            batch = to_device(self._batch(), self.device)
            loss, metrics = self.policy.loss(batch, self.model)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.opt.step()
            self.sched.step()
            self.step += 1
            ema_update(self.ema, self.model, self.step, c.ema_decay)
            record: dict[str, Any] = {
                "step": self.step,
                **metrics,
                "grad_norm": float(gn),
                "lr": self.sched.get_last_lr()[0],
                "time_s": time.perf_counter() - t0,
            }
            if c.val_every and (self.step % c.val_every == 0 or self.step == c.steps):
                record["val_loss"] = self.val_loss()
            if self.evaluator is not None and c.eval_every and (self.step % c.eval_every == 0 or self.step == c.steps):
                record |= {f"eval/{k}": v for k, v in self.evaluate().items()}
                self.model.train()
            if self.step % 25 == 0 or len(record) > 5 or self.step == c.steps:
                self._log(record)
            if self.step % c.checkpoint_every == 0 or self.step in (c.steps, end):
                self.save()
                plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
            bar.update(1)
            bar.set_postfix(
                loss=f"{metrics['loss']:.4f}",
                **({"success": f"{record['eval/success']:.2f}"} if "eval/success" in record else {}),
            )
            last = record
        bar.close()
        return last


def plot_curves(metrics: Path, out: Path, keys: Sequence[str] = ("loss", "val_loss", "eval/success")) -> None:
    """PNG of training loss, validation loss and evaluation success against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for k in keys[:2]:
        pts = [(r["step"], r[k]) for r in rows if k in r and r[k] == r[k]]
        if pts:
            axes[0].plot(*zip(*pts, strict=True), label=k)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].legend()
    pts = [(r["step"], r[keys[2]]) for r in rows if keys[2] in r]
    if pts:
        axes[1].plot(*zip(*pts, strict=True), marker="o")
    axes[1].set_ylim(-0.05, 1.05)
    axes[1].set_xlabel("step")
    axes[1].set_title("success")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
