"""The `realrl` command line: a table of (group, command) -> config dataclass, each parsed by tyro."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware.nodes.config import (
    FrankaNodeConfig,
    HumanoidNodeConfig,
    RealSenseNodeConfig,
    SimNodeConfig,
    TeleopNodeConfig,
)
from robot.core.errors import ConfigError, RealrlError
from robot.sessions.collect import TeleopCollectConfig
from robot.sessions.datacmd import (
    CollectConfig,
    ExportConfig,
    ImportConfig,
    InfoConfig,
    RepairConfig,
    ValidateConfig,
)
from robot.sessions.demo import DemoConfig
from robot.sessions.deploy import DeployConfig
from robot.sessions.residual import TrainResidualConfig
from robot.sessions.simrun import SimRunConfig
from robot.sessions.train import EvalConfig, TrainBaseConfig, TrainHeadConfig
from robot.sessions.up import UpConfig


@dataclass(frozen=True)
class EnvsConfig:
    """List the env ids realrl can make, with action size, control rate and observation keys."""

    third_party: bool = True
    """Include gymnasium-robotics Fetch / Franka Kitchen ids."""
    details: bool = True
    """Build each env to show its spaces (slower)."""


def _envs(cmd: EnvsConfig) -> None:
    from robot.sessions.envs import describe, registered_ids

    ids = registered_ids(third_party=cmd.third_party)
    if not cmd.details:
        print("\n".join(ids))
        return
    print(f"{'id':<30} {'action':>6} {'hz':>5} {'max steps':>9}  observation keys")
    for env_id in ids:
        d = describe(env_id)
        hz = f"{d.control_hz:g}" if d.control_hz else "-"
        keys = ", ".join(k for k in d.observation_keys if not k.startswith("time/"))
        print(f"{env_id:<30} {d.action_dim:>6} {hz:>5} {d.max_episode_steps or '-':>9}  {keys}")


def _sim_run(cfg: SimRunConfig) -> None:
    from robot.sessions.simrun import format_results, run

    result = run(cfg)
    print(format_results([result]))
    if cfg.render_video:
        print(f"video: {cfg.render_video}")
    if result.safety_faults:
        print(f"safety: {result.safety_faults} faults held, {result.clipped} action dims clipped")


def _demo(cfg: DemoConfig) -> None:
    from robot.sessions.demo import run

    run(cfg)


def _data_collect(cfg: CollectConfig) -> None:
    from robot.sessions.datacmd import collect

    c = collect(cfg)
    print(f"{cfg.out}: recorded {c['recorded']} episodes ({c['successes']} successful), kept {c['kept']}, "
          f"dropped steps {c['dropped_steps']}")


def _collect(cfg: TeleopCollectConfig) -> None:
    from robot.sessions.collect import run

    s = run(cfg)
    r = s.rate
    print(f"{cfg.out}: saved {s.saved} episodes ({s.successes} successful), discarded {s.discarded}; "
          f"{s.steps} steps recorded ({s.intervened_steps} intervened), dropped {s.dropped}; loop "
          f"{r.get('achieved_hz', 0.0):.1f} Hz, period p99 {r.get('loop_p99_ms', 0.0):.1f} ms, overruns {s.overruns}")


def _data_info(cfg: InfoConfig) -> None:
    from robot.sessions.datacmd import info_text

    print(info_text(cfg))


def _data_validate(cfg: ValidateConfig) -> None:
    from data import validate

    problems = validate(cfg.store)
    if problems:
        print("\n".join(f"problem: {p}" for p in problems))
        raise SystemExit(1)
    print(f"{cfg.store}: OK")


def _data_repair(cfg: RepairConfig) -> None:
    from data import repair

    fixed = repair(cfg.store)
    print("\n".join(f"fixed: {f}" for f in fixed) if fixed else f"{cfg.store}: nothing to repair")


def _data_export(cfg: ExportConfig) -> None:
    from robot.sessions.datacmd import export_store

    print(f"exported {cfg.store} -> {export_store(cfg)} ({cfg.format})")


def _data_import(cfg: ImportConfig) -> None:
    from robot.sessions.datacmd import import_store

    print(f"imported {import_store(cfg)} episodes from {cfg.src} into {cfg.store}")


def _train_base(cfg: TrainBaseConfig) -> None:
    from robot.sessions.train import train_base

    r = train_base(cfg)
    print(f"{cfg.out}: step {r.get('step')}, loss {r.get('loss', float('nan')):.4f}, "
          f"success {r.get('eval/success', float('nan')):.0%}")


def _train_head(cfg: TrainHeadConfig) -> None:
    from robot.sessions.train import train_head

    r = train_head(cfg)
    print(f"{cfg.out}: step {r.get('step')}, loss {r.get('loss', float('nan')):.4f}, "
          f"success {r.get('eval/success', float('nan')):.0%}")


def _train_residual(cfg: TrainResidualConfig) -> None:
    from robot.sessions.residual import train_residual

    r = train_residual(cfg)
    print(f"{cfg.out}: {r.get('env_steps')} env steps, {r.get('episodes')} episodes; success base + residual "
          f"{r.get('eval/success', float('nan')):.0%}, base alone {r.get('eval/base_success', float('nan')):.0%}; "
          f"policy in {cfg.out / 'policy'}")


def _eval(cfg: EvalConfig) -> None:
    from robot.sessions.train import evaluate

    r = evaluate(cfg)
    if "families" in r:
        from robot.sessions.evaluate import format_perturbed

        print(f"{r['policy']} ({r['algo']}, NFE {r['nfe']}), {cfg.episodes} episodes per family, "
              f"randomize {r['randomize']}:")
        print(format_perturbed(r["families"]))
        return
    print(f"{r['policy']} ({r['algo']}, NFE {r['nfe']}): success {r['success']:.0%} "
          f"[95% CI {r['success_ci_low']:.0%}-{r['success_ci_high']:.0%}] over {cfg.episodes} episodes, "
          f"mean length {r['mean_length']:.1f}; latency per action {r['act_ms_mean']:.2f} ms mean, "
          f"{r['act_ms_p99']:.2f} ms p99; per chunk (re-plan) {r['plan_ms_p50']:.2f} ms p50")


def _deploy(cfg: DeployConfig) -> None:
    from robot.sessions.deploy import deploy, format_summary

    print(format_summary(deploy(cfg)))


def _node_sim(cfg: SimNodeConfig) -> None:
    from hardware.nodes.sim_node import run

    run(cfg)


def _node_franka(cfg: FrankaNodeConfig) -> None:
    from hardware.nodes.franka_node import run

    run(cfg)


def _node_humanoid(cfg: HumanoidNodeConfig) -> None:
    from hardware.nodes.humanoid_node import run

    run(cfg)


def _node_realsense(cfg: RealSenseNodeConfig) -> None:
    from hardware.nodes.realsense_node import run

    run(cfg)


def _node_teleop(cfg: TeleopNodeConfig) -> None:
    from hardware.nodes.teleop_node import run

    run(cfg)


def _up(cfg: UpConfig) -> None:
    from robot.sessions.up import run

    code = run(cfg)
    if code:
        raise SystemExit(code)


# command words -> (config type, handler). A group (e.g. "sim") lists its commands when called bare.
COMMANDS: dict[tuple[str, ...], tuple[type, Callable[[Any], None]]] = {
    ("envs",): (EnvsConfig, _envs),
    ("sim", "run"): (SimRunConfig, _sim_run),
    ("demo",): (DemoConfig, _demo),
    ("data", "collect"): (CollectConfig, _data_collect),
    ("collect",): (TeleopCollectConfig, _collect),
    ("data", "info"): (InfoConfig, _data_info),
    ("data", "validate"): (ValidateConfig, _data_validate),
    ("data", "repair"): (RepairConfig, _data_repair),
    ("data", "export"): (ExportConfig, _data_export),
    ("data", "import"): (ImportConfig, _data_import),
    ("train", "base"): (TrainBaseConfig, _train_base),
    ("train", "head"): (TrainHeadConfig, _train_head),
    ("train", "residual"): (TrainResidualConfig, _train_residual),
    ("eval",): (EvalConfig, _eval),
    ("deploy",): (DeployConfig, _deploy),
    ("node", "sim"): (SimNodeConfig, _node_sim),
    ("node", "franka"): (FrankaNodeConfig, _node_franka),
    ("node", "humanoid"): (HumanoidNodeConfig, _node_humanoid),
    ("node", "realsense"): (RealSenseNodeConfig, _node_realsense),
    ("node", "teleop"): (TeleopNodeConfig, _node_teleop),
    ("up",): (UpConfig, _up),
}


def _usage() -> str:
    lines = ["usage: realrl <command> [flags]   (realrl <command> --help for its flags)", "", "commands:"]
    for words, (cfg_type, _) in COMMANDS.items():
        doc = (cfg_type.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {' '.join(words):<14} {doc}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `realrl` console script; realrl errors print one line and exit 2."""
    import tyro

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    match = next((w for w in sorted(COMMANDS, key=len, reverse=True) if tuple(args[: len(w)]) == w), None)
    if match is None:
        print(f"realrl: unknown command {' '.join(a for a in args if not a.startswith('-'))!r}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    cfg_type, handler = COMMANDS[match]
    rest = args[len(match):]
    ros_args: list[str] = []
    if "--ros-args" in rest:  # ROS 2 arguments (remaps, parameters) go to the node as they are, not to tyro
        rest, ros_args = rest[: rest.index("--ros-args")], rest[rest.index("--ros-args"):]
    try:
        cfg: Any = tyro.cli(cfg_type, args=rest, prog=f"realrl {' '.join(match)}")
        if ros_args:
            if "ros_args" not in {f.name for f in dataclasses.fields(cfg)}:
                raise ConfigError(f"realrl {' '.join(match)} is not a ROS node: it takes no --ros-args")
            cfg = dataclasses.replace(cfg, ros_args=tuple(ros_args))
        handler(cfg)
    except RealrlError as e:
        print(f"realrl: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0
    except KeyboardInterrupt:
        print("realrl: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
