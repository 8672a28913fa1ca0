"""Teacher targets for one-step heads: the teacher's chunk for fixed noises, precomputed once per window.

The targets can be written to a checkpoint directory (safetensors + JSON) and read back, so several head
runs distil from one set of teacher samples; a stored set is only reused for the same teacher weights,
the same windows and the same sampling options.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from policies.base_policies import DiffusionPolicy
from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.chunk_policy import Batch, ChunkPolicy
from robot.core.errors import CheckpointError, ConfigError

TARGETS_KIND = "teacher_targets"


def _obs_keys(teacher: ChunkPolicy) -> tuple[str, ...]:
    return (*teacher.obs_cfg.state_keys, *teacher.obs_cfg.image_keys)


def _fingerprint(teacher: ChunkPolicy, states: dict[str, torch.Tensor], n: int, per_window: int,
                 trajectories: bool, seed: int) -> str:
    """Digest of what the targets depend on: teacher weights, every window's state observations, options.

    Images are left out (hashing every frame costs more than recomputing); their windows come from the same
    store positions, which the state observations pin down.
    """
    h = hashlib.sha256()
    for k, v in sorted(teacher.model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    h.update(f"{n}/{per_window}/{trajectories}/{seed}/{teacher.name}".encode())
    for k in teacher.obs_cfg.state_keys:
        h.update(k.encode())
        h.update(states[k].cpu().contiguous().numpy().tobytes())  # (W, To, D): every window at once
    return h.hexdigest()


class TeacherTargets(Dataset[Batch]):
    """Each item: a window's observations plus `noise` (H, Da) and the teacher's normalized chunk `teacher`.

    `per_window` noises per window give the head several samples of the teacher's action distribution.
    With `trajectories=True` (LCM loss) the teacher's DDIM trajectory is kept as well. Items carry only the
    teacher's observation keys, so windows from demo stores and from policy rollouts can be concatenated.
    """

    def __init__(
        self,
        teacher: ChunkPolicy,
        windows: Dataset[Batch],
        *,
        per_window: int = 2,
        batch_size: int = 512,
        trajectories: bool = False,
        seed: int = 0,
        progress: bool = True,
        cache: str | os.PathLike[str] | None = None,
    ) -> None:
        """cache: a directory; targets stored there for this exact setup are read instead of recomputed,
        otherwise they are computed and written there."""
        if per_window < 1:
            raise ConfigError(f"per_window must be >= 1, got {per_window}")
        if trajectories and not isinstance(teacher, DiffusionPolicy):
            raise ConfigError(f"teacher trajectories need a diffusion (DDIM) teacher, got {teacher.name}")
        self.windows = windows
        self.per_window = per_window
        self.keys = _obs_keys(teacher)
        self.image_keys = teacher.obs_cfg.image_keys
        n = len(windows)  # type: ignore[arg-type]
        if n < 1:
            raise ConfigError("no windows to distil on")
        # State windows are small: stacked once, so a batch is one gather instead of B dataset reads.
        items = [self._read(w, teacher.obs_cfg.state_keys) for w in range(n)]
        self.states = {k: torch.stack([it[k] for it in items]) for k in teacher.obs_cfg.state_keys}  # (W, To, D)
        self.trajectory: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None
        digest = _fingerprint(teacher, self.states, n, per_window, trajectories, seed) if cache is not None else ""
        if cache is not None and self._load(Path(cache), digest):
            return
        h, da = teacher.chunk_cfg.horizon, teacher.action_dim
        g = torch.Generator().manual_seed(seed)
        self.noise = torch.randn((n * per_window, h, da), generator=g)  # (N, H, Da)
        self.teacher = torch.empty_like(self.noise)  # (N, H, Da)
        self._compute(teacher, batch_size, trajectories, progress)
        if cache is not None:
            self._save(Path(cache), digest)

    def _compute(self, teacher: ChunkPolicy, batch_size: int, trajectories: bool, progress: bool) -> None:
        from tqdm import tqdm

        total = self.noise.shape[0]
        teacher.model.eval()
        bar = tqdm(total=total, desc="teacher targets", unit="chunk", disable=not progress)
        with torch.inference_mode():
            for start in range(0, total, batch_size):
                stop = min(start + batch_size, total)
                obs = self._obs(torch.arange(start, stop) // self.per_window)
                cond = teacher.model.condition(obs)
                if trajectories:
                    assert isinstance(teacher, DiffusionPolicy)  # checked in __init__
                    traj: list[torch.Tensor] = []
                    out = teacher.ddim(cond, self.noise[start:stop], trajectory=traj)
                    stacked = torch.stack(traj, 1)  # (B, S+1, H, Da)
                    if self.trajectory is None:
                        self.trajectory = torch.empty((total, *stacked.shape[1:]))
                        self.timesteps = teacher.scheduler.timesteps.clone()
                    self.trajectory[start:stop] = stacked
                else:
                    out = teacher.sample_normalized(cond, self.noise[start:stop])
                self.teacher[start:stop] = out
                bar.update(stop - start)
        bar.close()

    def _save(self, path: Path, digest: str) -> None:
        tensors = {"noise": self.noise, "teacher": self.teacher}
        if self.trajectory is not None and self.timesteps is not None:
            tensors |= {"trajectory": self.trajectory, "timesteps": self.timesteps}
        save_checkpoint(path, tensors, {"kind": TARGETS_KIND, "fingerprint": digest, "per_window": self.per_window})

    def _load(self, path: Path, digest: str) -> bool:
        """Read stored targets if they were made for this setup; False when absent or for another setup."""
        if not path.exists() and not path.with_name(path.name + ".old").exists():
            return False
        tensors, cfg = load_checkpoint(path)
        if cfg.get("kind") != TARGETS_KIND:
            raise CheckpointError(f"{path} is not a teacher-targets directory (kind {cfg.get('kind')!r})")
        if cfg.get("fingerprint") != digest:
            return False  # another teacher, other windows or other options: recompute (and overwrite)
        self.noise, self.teacher = tensors["noise"], tensors["teacher"]
        self.trajectory, self.timesteps = tensors.get("trajectory"), tensors.get("timesteps")
        return True

    def _read(self, w: int, keys: tuple[str, ...]) -> Batch:
        item = self.windows[w]
        try:
            return {k: item[k] for k in keys}
        except KeyError as e:
            raise ConfigError(f"window {w} has no observation {e}; the teacher reads {list(self.keys)}") from None

    def _obs(self, windows: torch.Tensor) -> Batch:
        """Observations of windows (B,): states gathered, images read from the windows' source."""
        out = {k: v[windows] for k, v in self.states.items()}
        if self.image_keys:
            out |= default_collate([self._read(int(w), self.image_keys) for w in windows])
        return out

    def __len__(self) -> int:
        return int(self.noise.shape[0])

    def __getitem__(self, i: int) -> Batch:
        return {k: v[0] for k, v in self.batch(torch.tensor([i])).items()}

    def batch(self, index: torch.Tensor) -> Batch:
        """The items at `index` (B,) already collated (what the trainer asks for instead of B single reads)."""
        out = self._obs(index // self.per_window)
        out["noise"] = self.noise[index]
        out["teacher"] = self.teacher[index]
        if self.trajectory is not None and self.timesteps is not None:
            out["trajectory"] = self.trajectory[index]
            out["timesteps"] = self.timesteps.expand(index.shape[0], -1)
        return out

    def describe(self) -> dict[str, Any]:
        """Sizes, for logs."""
        return {"windows": len(self.windows), "per_window": self.per_window, "pairs": len(self)}  # type: ignore[arg-type]
