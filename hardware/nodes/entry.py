"""What every node's entry point does: ROS-style logging, Ctrl-C / SIGTERM as a clean shutdown, and the
`python -m hardware.nodes.<x> [flags] [--ros-args ...]` command line that launch files and `realrl up` run."""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from hardware.ros import Node, setup_logging
from hardware.ros.node import split_ros_args


class ServedNode(Protocol):
    """A node as its entry point runs it."""

    @property
    def node(self) -> Node:
        """Its ROS node."""

    def spin(self) -> None:
        """Run until the node is asked to shut down, then close it."""


def serve(build: Callable[[], ServedNode]) -> None:
    """Set up logging, build the node and spin it until Ctrl-C or SIGTERM (what `realrl up` and ros2 launch send to
    stop a node), which ask it to shut down so that spin() returns and the node closes cleanly."""
    setup_logging()
    served = build()
    signal.signal(signal.SIGINT, lambda *_: served.node.request_shutdown())
    signal.signal(signal.SIGTERM, lambda *_: served.node.request_shutdown())
    served.spin()


C = TypeVar("C")


def run_cli(config_type: type[C], run: Callable[[C], None], prog: str, argv: Sequence[str] | None = None) -> None:
    """Parse `[flags] [--ros-args ...]` (argv, else the process's arguments) into a config with tyro, the
    `--ros-args` tail becoming its `ros_args`, and run it."""
    import tyro  # on use: importing a node module (tests, `realrl node`) does not need it

    own, ros = split_ros_args(sys.argv[1:] if argv is None else argv)
    cfg: Any = tyro.cli(config_type, args=own, prog=prog)
    run(dataclasses.replace(cfg, ros_args=tuple(ros)) if ros else cfg)
