"""robomimic hdf5 export and import for episode stores (h5py); images are stored losslessly."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from data.convert.outputs import check_new_output
from data.store import EpisodeStore
from robot.core.errors import ConfigError, RealrlError, StoreError

ENV_TYPE_GYM = 2
"""robomimic EnvType of a gym(nasium) env, written to env_args["type"]."""
GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
"""Top-level goal-env keys exported as robomimic observations under their own names."""
_REALRL = "realrl.robomimic"  # env_args["realrl"]["format"]: marks a file this module wrote
_DEMO = re.compile(r"^demo_(\d+)$")


def obs_name(key: str) -> str | None:
    """robomimic observation name of a realrl key (None: not an observation).

    state/<x> -> <x>, image/<cam> -> <cam>_image (robomimic's camera convention), goal keys unchanged;
    slashes below the prefix become '_'.
    """
    if key.startswith("state/"):
        return key[len("state/"):].replace("/", "_")
    if key.startswith("image/"):
        return key[len("image/"):].replace("/", "_") + "_image"
    return key if key in GOAL_KEYS else None


def _h5_path(key: str) -> str:
    """Where a key lives inside a demo group; keys robomimic has no slot for (time/*, info/*) go under realrl/."""
    if key == "action":
        return "actions"
    if key == "reward":
        return "rewards"
    name = obs_name(key)
    return f"obs/{name}" if name is not None else f"realrl/{key}"


def _attr_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def export_robomimic(
    store_path: str | os.PathLike[str],
    out_file: str | os.PathLike[str],
    *,
    compress_images: bool = True,
    progress: bool = True,
) -> Path:
    """Write the store as a robomimic hdf5 file at `out_file` (which must not exist); returns its path.

    Layout: data/demo_<i>/{actions, rewards, dones, obs/<name>} with attrs num_samples and `realrl`
    (JSON: task, success, source, operator, meta, wall_time); data attrs total and env_args (JSON:
    env_name, type=2 (gym), env_kwargs, and `realrl`: fps, env_id, spec, key map); mask/success lists
    the successful demos (a robomimic filter key). Observation names follow obs_name(); time/* and other
    keys go to data/demo_<i>/realrl/<key>. dones is 1 on each demo's last step; rewards are zeros when the
    store has no reward key (robomimic loads them by default). Every array keeps its dtype and values.
    """
    out = Path(out_file)
    tmp = check_new_output(out)
    store = EpisodeStore.open(store_path, "r")
    if len(store) == 0:
        raise StoreError(f"{store.path} has no episodes: nothing to export")
    if "action" not in store.schema:
        raise StoreError(f"{store.path} has no 'action' key; robomimic demos need actions")
    paths = {k: _h5_path(k) for k in store.keys}
    seen: dict[str, str] = {}
    for k, p in paths.items():
        if p in seen:
            raise StoreError(f"keys {seen[p]!r} and {k!r} both map to robomimic dataset {p!r}: rename one")
        seen[p] = k
    realrl = {
        "format": _REALRL, "version": 1, "fps": store.fps, "env_id": store.env_id, "spec": store.spec,
        "keys": {p: {"key": k, **store.schema[k].to_json()} for k, p in paths.items()},
    }
    env_args = {"env_name": store.env_id, "type": ENV_TYPE_GYM, "env_kwargs": {}, "realrl": realrl}
    tmp.unlink(missing_ok=True)
    try:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            successful = []
            for i in tqdm(range(len(store)), desc="export robomimic", unit="ep", disable=not progress):
                arrays, meta = store.episode(i), store.episode_meta(i)
                g = data.create_group(f"demo_{i}")
                t = len(arrays["action"])
                for k, p in paths.items():
                    a = arrays[k]
                    if compress_images and store.schema[k].is_image:
                        # One chunk per frame: robomimic reads frame windows, gzip keeps the pixels exact.
                        g.create_dataset(p, data=a, chunks=(1, *a.shape[1:]), compression="gzip", compression_opts=1)
                    else:
                        g.create_dataset(p, data=a)
                if "reward" not in paths:
                    g.create_dataset("rewards", data=np.zeros(t, dtype=np.float32))
                dones = np.zeros(t, dtype=np.int64)
                dones[-1] = 1
                g.create_dataset("dones", data=dones)
                g.attrs["num_samples"] = t
                keep = ("task", "success", "source", "operator", "meta", "wall_time")
                g.attrs["realrl"] = json.dumps({k: meta.get(k) for k in keep})
                if meta.get("success"):
                    successful.append(f"demo_{i}")
            data.attrs["total"] = store.n_steps
            data.attrs["env_args"] = json.dumps(env_args)
            f.create_dataset("mask/success", data=np.array(successful, dtype="S"))
        os.rename(tmp, out)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, RealrlError | KeyboardInterrupt):
            raise
        raise StoreError(f"exporting {store.path} to {out} failed ({e!r}); nothing was written at {out}") from e
    return out


def _foreign_arrays(g: h5py.Group) -> dict[str, np.ndarray]:
    """Keys of a demo robomimic (not realrl) wrote: actions, rewards, states, obs/<x>; dones and next_obs are
    derived, so they are dropped."""
    out: dict[str, np.ndarray] = {}
    for name, key in (("actions", "action"), ("rewards", "reward"), ("states", "sim_state")):
        if isinstance(g.get(name), h5py.Dataset):
            out[key] = g[name][()]
    obs = g.get("obs")
    if isinstance(obs, h5py.Group):
        for name, ds in obs.items():
            if not isinstance(ds, h5py.Dataset):
                continue
            a = ds[()]
            if a.dtype == np.uint8 and a.ndim == 4:
                out["image/" + name.removesuffix("_image")] = a
            else:
                out["state/" + name] = a
    return out


def import_robomimic(
    in_file: str | os.PathLike[str],
    store_path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    progress: bool = True,
) -> EpisodeStore:
    """Read a robomimic hdf5 file into a new store at `store_path` (which must not exist); returns it 'r'.

    A file export_robomimic wrote comes back exactly (keys, dtypes, fps, env id, spec, episode metadata;
    wall_time excepted: the store stamps its own). Other files: actions -> action, rewards -> reward,
    states -> sim_state, obs/<x> -> image/<x without _image> for uint8 (T, H, W, C), state/<x> otherwise
    (float64 is stored as float32); demos are read in numeric order; fps comes from `fps`, else
    env_kwargs.control_freq; task from data attrs problem_info.language_instruction when present.
    """
    src = Path(in_file)
    if not src.is_file():
        raise StoreError(f"{src} is not a file; a robomimic dataset is one hdf5 file")
    dest = Path(store_path)
    tmp = check_new_output(dest)
    try:
        f = h5py.File(src, "r")
    except OSError as e:
        raise StoreError(f"{src} is not a readable hdf5 file ({e})") from e
    with f:
        data = f.get("data")
        if not isinstance(data, h5py.Group):
            raise StoreError(f"{src} has no 'data' group; it is not a robomimic dataset")
        try:
            env_args = json.loads(_attr_str(data.attrs.get("env_args", "{}")))
        except ValueError as e:
            raise StoreError(f"{src}: data attr env_args is not JSON ({e})") from e
        realrl = env_args.get("realrl") if isinstance(env_args, dict) else None
        realrl = realrl if isinstance(realrl, dict) and realrl.get("format") == _REALRL else None
        demos = sorted((n for n in data if _DEMO.match(n)), key=lambda n: int(n.split("_")[1]))
        if not demos:
            raise StoreError(f"{src}: 'data' holds no demo_<i> groups; nothing to import")
        rate = float(realrl["fps"]) if realrl else fps
        if rate is None:
            rate = (env_args.get("env_kwargs") or {}).get("control_freq") if isinstance(env_args, dict) else None
        if rate is None or not float(rate) > 0:
            raise ConfigError(f"{src} does not record its control rate: pass fps=<Hz> to import_robomimic")
        task = ""
        if "problem_info" in data.attrs:
            try:
                task = str(json.loads(_attr_str(data.attrs["problem_info"])).get("language_instruction", ""))
            except (ValueError, AttributeError):
                task = ""
        if tmp.exists():
            shutil.rmtree(tmp)  # left by an import that was killed
        try:
            with EpisodeStore.create(tmp, fps=float(rate), spec=realrl["spec"] if realrl else None,
                                     env_id=str(realrl["env_id"] if realrl else env_args.get("env_name", ""))) as out:
                for name in tqdm(demos, desc="import robomimic", unit="ep", disable=not progress):
                    g = data[name]
                    if realrl:
                        missing = [p for p in realrl["keys"] if p not in g]
                        if missing:
                            raise StoreError(f"{src}: {name} lacks datasets {missing} that env_args lists")
                        arrays = {m["key"]: g[p][()] for p, m in realrl["keys"].items()}
                        meta = json.loads(_attr_str(g.attrs.get("realrl", "{}")))
                        kw: dict[str, Any] = {"task": meta.get("task") or "", "success": bool(meta.get("success")),
                              "source": meta.get("source") or "", "operator": meta.get("operator") or "",
                              "meta": meta.get("meta") or {}}
                    else:
                        arrays = _foreign_arrays(g)
                        if not arrays:
                            raise StoreError(f"{src}: {name} has no actions, rewards, states or obs")
                        kw = {"task": task, "meta": {"origin": {"robomimic": str(src), "demo": name}}}
                    n = int(g.attrs.get("num_samples", len(next(iter(arrays.values())))))
                    lengths = {k: len(a) for k, a in arrays.items()}
                    if set(lengths.values()) != {n}:
                        raise StoreError(f"{src}: {name} has num_samples={n} but array lengths {lengths}")
                    out.append_episode(arrays, **kw)
            os.rename(tmp, dest)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, RealrlError | KeyboardInterrupt):
                raise
            raise StoreError(f"importing {src} failed ({e!r}); nothing was written at {dest}") from e
    return EpisodeStore.open(dest, "r")
