"""The sim nodes' side of realrl's reset protocol, and the node clock it keeps strictly increasing."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from hardware.ros import DEFAULT, LATCHED, Node, Publisher, Subscription
from hardware.ros.convert import from_stamp, to_stamp
from hardware.ros.msgs import String
from hardware.topics import ArmTopics
from robot.core.interfaces import Task
from sim.mujoco_robot import MujocoRobot


class SimResets:
    """Serves reset requests (ArmTopics.reset, answered on the latched reset_done) for a node that steps a
    MujocoRobot: the sim node, and the sim node posing as a G1.

    A request {"id", "kind": "robot"|"task", ...} is done once: clients resend it until answered (the request topic is
    volatile), and a resend of the last id is answered again, never redone. A robot reset homes the robot (or moves
    it to "joint_pos"), then `on_home` lets the node forget what was commanded before; a task reset replays the
    client's rng state ("rng") into the task. Then `on_done` (the node restarts its tick and publishes the state) and
    the acknowledgement {"id", "stamp"}, stamp being that state's.
    """

    def __init__(self, node: Node, robot: MujocoRobot, task: Task, *, on_home: Callable[[], None],
                 on_done: Callable[[], None]) -> None:
        assert robot.data is not None, "connect the robot before serving resets"
        self.robot = robot
        self._data = robot.data
        self.task = task
        t = ArmTopics()
        self._pub_ack: Publisher[String] = node.create_publisher(String, t.reset_done, LATCHED)
        self.subscription: Subscription = node.create_subscription(String, t.reset, self.on_request, DEFAULT)
        """The request subscription (its received/dropped counts go into the node's stats)."""
        self._on_home = on_home
        self._on_done = on_done
        self._offset = 0.0  # node clock = offset + data.time: never goes back across resets
        self._last: tuple[int, float] | None = None

    def sim_time(self) -> float:
        """Node clock (s): simulated time since the node started, strictly increasing across resets."""
        return self._offset + float(self._data.time)

    def on_request(self, msg: String) -> None:
        """The reset topic's callback (a ValueError drops and counts a bad request)."""
        req = json.loads(msg.data)
        rid, kind = int(req["id"]), str(req["kind"])
        if self._last is not None and self._last[0] == rid:  # a resend: answer again, do not redo
            self._ack(rid, self._last[1])
            return
        if kind not in ("robot", "task"):
            raise ValueError(f"unknown reset kind {kind!r}; use 'robot' or 'task'")
        # Every reset takes one physics step of node time: the states after it carry a stamp no earlier state
        # has, which is how clients tell them apart (ROS time never goes back, unlike MuJoCo's data.time).
        self._offset += self.robot.physics_dt
        if kind == "robot":
            self._offset = self.sim_time()
            self.robot.reset({"joint_pos": np.asarray(req["joint_pos"])} if "joint_pos" in req else None)
            self._on_home()
        else:
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = req["rng"]
            self.task.reset(rng, self.robot)
        stamp = from_stamp(to_stamp(self.sim_time()))  # exactly the (nanosecond) stamp the state carries
        self._last = (rid, stamp)
        self._on_done()
        self._ack(rid, stamp)

    def _ack(self, rid: int, stamp: float) -> None:
        self._pub_ack.publish(String(json.dumps({"id": rid, "stamp": stamp})))
