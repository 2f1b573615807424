"""One registry type for every pluggable family: city presets, tower layouts, receiver placers, views, baselines,
benches.

A family is a :class:`Registry`; members join it by decorator (``@VIEWS.register("spike_train")``) or by
:meth:`Registry.add`. Looking up an unknown name raises :class:`UnknownNameError` (a ``TwinInputError`` that is
also a ``KeyError``) listing the known names; registering a name twice raises ``ValueError``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from twin.errors import TwinInputError

T = TypeVar("T")


class UnknownNameError(TwinInputError, KeyError):
    """An unknown name in a registry; the message lists the known ones. Exit code 2 in the CLI."""

    def __str__(self) -> str:  # KeyError.__str__ would repr() the message
        return self.render()


class Registry(Generic[T]):
    """Named members of one family (``kind``, e.g. ``"view"``), looked up by name.

    ``normalize`` maps a user's spelling to the key (e.g. ``"San Francisco"`` -> ``"san_francisco"``);
    ``builtin`` lists modules imported on first lookup so that their members register themselves;
    ``field`` is the CLI option or config key that names a member (used in error messages); ``hint`` is
    added to the fix of an unknown-name error (e.g. ``"or --place/--bbox for any other area"``).
    """

    def __init__(
        self,
        kind: str,
        *,
        field: str | None = None,
        builtin: tuple[str, ...] = (),
        normalize: Callable[[str], str] | None = None,
        hint: str = "",
    ) -> None:
        self.kind = kind
        self.field = field or kind
        self._builtin = builtin
        self._loaded = not builtin
        self._normalize = normalize or (lambda s: s)
        self._hint = hint
        self._members: dict[str, T] = {}

    # -- registration
    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name``; a name already taken raises ``ValueError``."""
        key = self._normalize(name)
        if not key:
            raise ValueError(f"a {self.kind} needs a name")
        if key in self._members and self._members[key] is not obj:
            raise ValueError(f"{self.kind} {key!r} is registered twice")
        self._members[key] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(obj: T) -> T:
            return self.add(name, obj)

        return deco

    # -- lookup
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self._builtin:
            importlib.import_module(mod)

    def get(self, name: str) -> T:
        """The member called ``name``; :class:`UnknownNameError` listing the known names otherwise."""
        self._load()
        key = self._normalize(str(name))
        try:
            return self._members[key]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}",
                field=self.field,
                fix=f"use one of: {', '.join(self.names()) or '(none registered)'}" + (f"; {self._hint}" if self._hint else ""),
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._members)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def values(self) -> list[T]:
        """The members, in name order."""
        return [obj for _, obj in self.items()]

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._members.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and self._normalize(name) in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._members)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


__all__ = ["Registry", "UnknownNameError"]
