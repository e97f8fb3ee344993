"""A tiny name → object registry, in the spirit of detectron2's and timm's.

Every extension point of the suite (backbones, engines, recipes, dataset preparers, benchmark
families, summary metrics) is one :class:`Registry`; the module that owns it states, in its
docstring, what a registered object must be. Implementations register themselves where they
are defined.

A registry may also know a name before its object exists: ``declare(name, module)`` says that
importing ``module`` registers ``name``. Membership, :meth:`~Registry.names` and
:meth:`~Registry.require` then answer without importing anything (validating a grid needs no
torch), and :meth:`~Registry.get` imports the declaring module on first use.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from benchmark.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._declared: dict[str, str] = {}  # name → the module that registers it
        self._registered_by: dict[str, str] = {}

    def declare(self, name: str, module: str) -> None:
        """``name`` is registered by importing ``module``."""
        if name in self._declared:
            raise ValueError(f"{self.kind} {name!r} is already declared ({self._declared[name]})")
        self._declared[name] = module

    def register(self, name: str) -> Callable[[T], T]:
        by = _caller_module(1)

        def deco(obj: T) -> T:
            self._add(name, obj, by)
            return obj

        return deco

    def _add(self, name: str, obj: T, by: str) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered "
                             f"(by {self._registered_by[name]})")
        self._items[name] = obj
        self._registered_by[name] = by

    def require(self, name: str) -> None:
        """Raise :class:`ConfigError` (as :meth:`get` does) unless ``name`` is registered or
        declared; imports nothing."""
        if name not in self:
            raise ConfigError(f"unknown {self.kind} {name!r} (known: {', '.join(self) or 'none'})")

    def get(self, name: str) -> T:
        """The object registered under ``name``, importing its declaring module first when
        it is declared but not registered yet."""
        if name not in self._items:
            self.require(name)
            module = self._declared[name]
            importlib.import_module(module)
            if name not in self._items:
                raise LookupError(f"{self.kind} {name!r} is declared to be registered by "
                                  f"{module}, which did not register it")
        return self._items[name]

    def declarations(self) -> dict[str, str]:
        """{name: the module declared to register it}."""
        return dict(self._declared)

    def registered_by(self, name: str) -> str | None:
        """The module whose code registered ``name``; None while it is only declared."""
        return self._registered_by.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        return sorted(self._items.keys() | self._declared.keys())

    def in_order(self) -> list[T]:
        """Every object, declared names first in declaration order, then the others in
        registration order (display order, where it matters); imports what is declared."""
        return [self.get(name) for name in dict.fromkeys([*self._declared, *self._items])]

    @contextlib.contextmanager
    def registered(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` under ``name`` for the duration of the block (tests, plugins
        tried out in a session), then remove it."""
        self._add(name, obj, _caller_module(2))  # past contextlib's __enter__
        try:
            yield obj
        finally:
            self._items.pop(name, None)
            self._registered_by.pop(name, None)


def _caller_module(depth: int) -> str:
    """The ``__name__`` of the code ``depth`` frames above the caller (as
    ``collections.namedtuple`` finds its caller's module)."""
    return sys._getframe(depth + 1).f_globals.get("__name__", "?")
