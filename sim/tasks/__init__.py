"""Sim tasks (Franka table-top; humanoid later) and their registry."""

from sim.tasks.franka_tasks import FrankaLift, FrankaPickPlace, FrankaStack, TableTopConfig
from sim.tasks.registry import TASKS

__all__ = ["TASKS", "FrankaLift", "FrankaPickPlace", "FrankaStack", "TableTopConfig"]
