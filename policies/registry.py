"""Registry of policy classes by algorithm name (checkpoints name their algorithm)."""

from robot.core.registry import Registry

POLICIES: Registry[type] = Registry("policies")
