"""A tiny name → object registry, in the spirit of detectron2's and timm's.

Every extension point of the suite (backbones, engines, recipes, dataset preparers, benchmark
families, summary metrics) is one :class:`Registry`; the module that owns it states, in its
docstring, what a registered object must be. Implementations register themselves where they
are defined.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from benchmark.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)

    def in_order(self) -> list[T]:
        """The registered objects in registration order (display order, where it matters)."""
        return list(self._items.values())

    @contextlib.contextmanager
    def registered(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` under ``name`` for the duration of the block (tests, plugins
        tried out in a session), then remove it."""
        self.register(name)(obj)
        try:
            yield obj
        finally:
            self._items.pop(name, None)
