"""Session topologies: which nodes a session runs, described once for `realrl up` and `ros2 launch` alike."""

from __future__ import annotations

from dataclasses import dataclass

from robot.core.errors import ConfigError


@dataclass(frozen=True)
class NodeLaunch:
    """One node process of a session."""

    name: str
    """Node name (also its `__node` remap, so two instances of one executable can coexist)."""
    module: str
    """Python module run as `python -m <module>`."""
    args: tuple[str, ...] = ()
    """The node's own flags (before `--ros-args`)."""
    ros_args: tuple[str, ...] = ()
    """Extra `--ros-args` (remaps `-r a:=b`, parameters `-p name:=value`)."""
    respawn: bool = False
    """Restart the node when it exits; otherwise its exit ends the session (the robot clients hold)."""

    def command(self, python: str) -> list[str]:
        """The argv that starts this node."""
        return [python, "-m", self.module, *self.args, "--ros-args", "-r", f"__node:={self.name}", *self.ros_args]


@dataclass(frozen=True)
class Session:
    """A named set of nodes started together."""

    name: str
    """Session name (`realrl up <name>`)."""
    description: str
    """One line for the listing."""
    nodes: tuple[NodeLaunch, ...]
    """The node processes."""


def _sim(env: str, *extra: str) -> NodeLaunch:
    return NodeLaunch("sim", "hardware.nodes.sim_node", ("--env", env, *extra))


G1_ON_SIM_HUMANOID_ARGS: tuple[str, ...] = (
    # The sim G1's servos (arms kp 150, critically damped per joint; Menagerie's Dex3 kp 500), so the arms move as
    # they do in-process; the bounds are raised to admit them (a real Dex3 takes kp ~1.5).
    "--arm-kp", "150", "--arm-kd", "11.33", "8.18", "7.89", "7.43", "2.57", "4.19", "3.45",
    "--hand-kp", "500", "--hand-kd", "4.48", "4.52", "4.48", "4.52", "4.48", "4.52", "4.48",
    "--max-hand-kp", "500", "--max-hand-kd", "5",
    # The sim publishes once per 20 Hz tick, stamped in sim time, and teleports on a robot reset.
    "--control-hz", "100", "--state-timeout-s", "0.25", "--stamp", "tick", "--reset-mode", "forward",
)
"""Humanoid node flags for driving the sim node posing as a G1."""

G1_ON_SIM_SIM_REMAPS: tuple[str, ...] = ("-r", "realrl/reset:=/driver/realrl/reset",
                                         "-r", "realrl/reset_done:=/driver/realrl/reset_done")
"""The sim node's resets move behind the humanoid node, which forwards its clients' requests there."""

SESSIONS: dict[str, Session] = {
    s.name: s
    for s in (
        Session("sim-lift", "Franka sim node running realrl/FrankaLift-v0 (state only)",
                (_sim("realrl/FrankaLift-v0"),)),
        Session("sim-lift-cameras", "Franka sim node, FrankaLift with front and wrist cameras at 84x84",
                (_sim("realrl/FrankaLift-v0", "--cameras", "front", "wrist"),)),
        Session("sim-pickplace", "Franka sim node running realrl/FrankaPickPlace-v0",
                (_sim("realrl/FrankaPickPlace-v0"),)),
        Session("sim-stack", "Franka sim node running realrl/FrankaStack-v0", (_sim("realrl/FrankaStack-v0"),)),
        # The sim node stands in for franka_ros2 + its Cartesian impedance controller (it tracks the equilibrium
        # pose; its own twist input is moved aside), and the Franka node limits what clients ask for. Both answer a
        # robot reset (the sim teleports home, the Franka node then finds the arm there); the sim node also resets
        # the scene, which on hardware the operator does.
        Session("franka-on-sim", "Franka node (limits, twist -> equilibrium pose) driving the sim node as its robot",
                (NodeLaunch("sim", "hardware.nodes.sim_node", ("--env", "realrl/FrankaLift-v0"),
                            ("-r", "servo_node/delta_twist_cmds:=/driver/unused_twist")),
                 NodeLaunch("franka", "hardware.nodes.franka_node"))),
        Session("franka", "Franka node in front of a real franka_ros2 driver (started by its own launch file)",
                (NodeLaunch("franka", "hardware.nodes.franka_node"),)),
        Session("g1-on-sim", "Humanoid node (limits, damping on faults) driving the sim node posing as a Unitree G1 "
                "(realrl/G1BoxPickup-v0 on rt/lowstate, rt/lowcmd, rt/dex3/*)",
                (NodeLaunch("sim", "hardware.nodes.sim_node", ("--env", "realrl/G1BoxPickup-v0", "--pose-as", "g1"),
                            G1_ON_SIM_SIM_REMAPS),
                 NodeLaunch("humanoid", "hardware.nodes.humanoid_node", G1_ON_SIM_HUMANOID_ARGS))),
        Session("humanoid", "Humanoid node in front of a real Unitree G1 with Dex3 hands (rt/lowstate, rt/lowcmd)",
                (NodeLaunch("humanoid", "hardware.nodes.humanoid_node"),)),
        Session("realsense", "RealSense node for the one connected camera (colour + depth, 640x480 at 30 Hz)",
                (NodeLaunch("camera", "hardware.nodes.realsense_node"),)),
    )
}
"""Every session `realrl up` and launch/session.launch.py know."""


def get_session(name: str) -> Session:
    """A session by name; an unknown name lists the known ones."""
    try:
        return SESSIONS[name]
    except KeyError:
        raise ConfigError(f"unknown session {name!r}; known sessions: {sorted(SESSIONS)}") from None
