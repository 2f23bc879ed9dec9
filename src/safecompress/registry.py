"""One small registry used by every plugin axis (datasets, models, methods, attacks, ...)."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError
from .plugins import load_plugins

T = TypeVar("T")


def closest(name: str, choices: list[str]) -> str | None:
    """The choice most similar to ``name`` (for 'did you mean' hints), or None."""
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return match[0] if match else None


class Registry(Generic[T]):
    """Maps names to plugin objects; plugins add themselves with ``@REGISTRY.register("name")``.

    Every lookup first loads the third-party plugins (once; see :mod:`.plugins`), so an entry point or
    a ``SAFECOMPRESS_PLUGINS`` module is found wherever a registry is used."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding ``obj`` under ``name``; a plugin class with a ``name`` attribute gets it set."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if isinstance(obj, type) and hasattr(obj, "name"):
                obj.name = name  # type: ignore[attr-defined]
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            hint = closest(name, self.names())
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{did_you_mean} Available: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self._entries[name]

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __len__(self) -> int:
        load_plugins()
        return len(self._entries)
