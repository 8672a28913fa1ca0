"""Teacher targets for one-step heads: the teacher's chunk for fixed noises, precomputed once per window."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, default_collate

from policies.base_policies import DiffusionPolicy
from policies.chunk_policy import Batch, ChunkPolicy


class TeacherTargets(Dataset[Batch]):
    """Each item: a training window plus `noise` (H, Da) and the teacher's normalized chunk `teacher` for it.

    `per_window` noises per window give the head several samples of the teacher's action distribution.
    With `trajectories=True` (LCM loss) the teacher's DDIM trajectory is kept as well.
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
    ) -> None:
        from tqdm import tqdm

        self.windows = windows
        self.per_window = per_window
        n = len(windows)  # type: ignore[arg-type]
        h, da = teacher.chunk_cfg.horizon, teacher.action_dim
        g = torch.Generator().manual_seed(seed)
        self.noise = torch.randn((n * per_window, h, da), generator=g)  # (N, H, Da)
        self.teacher = torch.empty_like(self.noise)
        self.trajectory: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None
        teacher.model.eval()
        bar = tqdm(total=n * per_window, desc="teacher targets", unit="chunk", disable=not progress)
        with torch.inference_mode():
            for start in range(0, n * per_window, batch_size):
                stop = min(start + batch_size, n * per_window)
                obs = default_collate([windows[i // per_window] for i in range(start, stop)])
                cond = teacher.model.condition(obs)
                if trajectories and isinstance(teacher, DiffusionPolicy):
                    traj: list[torch.Tensor] = []
                    out = teacher.ddim(cond, self.noise[start:stop], trajectory=traj)
                    stacked = torch.stack(traj, 1)  # (B, S+1, H, Da)
                    if self.trajectory is None:
                        self.trajectory = torch.empty((n * per_window, *stacked.shape[1:]))
                        self.timesteps = teacher.scheduler.timesteps.clone()
                    self.trajectory[start:stop] = stacked
                else:
                    out = teacher.sample_normalized(cond, self.noise[start:stop])
                self.teacher[start:stop] = out
                bar.update(stop - start)
        bar.close()

    def __len__(self) -> int:
        return int(self.noise.shape[0])

    def __getitem__(self, i: int) -> Batch:
        item = dict(self.windows[i // self.per_window])
        item["noise"] = self.noise[i]
        item["teacher"] = self.teacher[i]
        if self.trajectory is not None and self.timesteps is not None:
            item["trajectory"] = self.trajectory[i]
            item["timesteps"] = self.timesteps
        return item
