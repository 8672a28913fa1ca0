"""Sim tasks (Franka table-top, G1 humanoid bimanual) and their registry."""

from sim.tasks.franka_tasks import FrankaLift, FrankaPickPlace, FrankaStack, TableTopConfig
from sim.tasks.g1_tasks import G1BoxPickup, G1Handover
from sim.tasks.registry import TASKS

__all__ = ["TASKS", "FrankaLift", "FrankaPickPlace", "FrankaStack", "G1BoxPickup", "G1Handover", "TableTopConfig"]
