"""Registry of sim task classes by name (third parties add theirs via the `realrl.tasks` entry points)."""

from robot.core.registry import Registry

TASKS: Registry[type] = Registry("tasks")
