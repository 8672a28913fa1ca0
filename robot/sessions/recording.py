"""Opening the episode store a session records into: created for a new path, appended to for one of the same env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot.core.errors import ConfigError


def open_store(path: Path, env_id: str, *, fps: float, spec: dict[str, Any] | None) -> Any:
    """An EpisodeStore opened for writing at `path`: a new one, or an existing one of the same env (appending, so a
    session resumed after a crash adds to what is already saved). Another env's store is refused."""
    from data import EpisodeStore

    if path.exists():
        store = EpisodeStore.open(path, "a")
        if store.env_id and store.env_id != env_id:
            store.close()
            raise ConfigError(f"{path} holds episodes of {store.env_id}, not {env_id}: choose another path")
        return store
    return EpisodeStore.create(path, fps=fps, spec=spec, env_id=env_id)
