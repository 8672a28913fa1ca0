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
        # pose; its own twist input is moved aside), and the Franka node limits what clients ask for.
        Session("franka-on-sim", "Franka node (limits, twist -> equilibrium pose) driving the sim node as its robot",
                (NodeLaunch("sim", "hardware.nodes.sim_node", ("--env", "realrl/FrankaLift-v0"),
                            ("-r", "servo_node/delta_twist_cmds:=/driver/unused_twist")),
                 NodeLaunch("franka", "hardware.nodes.franka_node"))),
        Session("franka", "Franka node in front of a real franka_ros2 driver (started by its own launch file)",
                (NodeLaunch("franka", "hardware.nodes.franka_node"),)),
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
