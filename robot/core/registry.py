"""Name -> factory registries filled by decorators and by `importlib.metadata` entry points."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from robot.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; a failed lookup lists what exists.

    Third-party packages add entries through the entry-point group `realrl.<kind>`: each entry point
    names a module whose import registers its factories with the decorator.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register `obj` under `name`; a duplicate name is a ConfigError."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ConfigError(f"{self.kind} {name!r} is registered twice; pick another name")
            self._items[name] = obj
            return obj

        return deco

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=f"realrl.{self.kind}"):
            ep.load()

    def get(self, name: str) -> T:
        """The factory registered under `name`, or a ConfigError listing every registered name."""
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self._items)) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
