"""Baseline trainers that read a build's views (``twin.open``) and reproduce the papers' experiments.

:data:`BASELINES` is the registry of methods (``twin baselines`` lists them): a module under this package joins
it with ``@BASELINES.register("name")`` on a :class:`~twin.baselines.core.Baseline` subclass; every module of
the package is imported on the first lookup, so a new module needs nothing else. Reproductions of papers
(``twin reproduce``) live in :data:`twin.baselines.reproduce.REPRODUCTIONS`.
"""

from __future__ import annotations

import pkgutil
from typing import Any

from twin.registry import Registry


class _BaselineRegistry(Registry[Any]):
    """A :class:`~twin.registry.Registry` that also sets the class attribute ``NAME`` of what it registers."""

    def add(self, name: str, obj: Any) -> Any:
        obj = super().add(name, obj)
        if isinstance(obj, type) and not obj.__dict__.get("NAME"):
            obj.NAME = self._normalize(name)
        return obj


def _modules() -> tuple[str, ...]:
    return tuple(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


BASELINES: Registry[Any] = _BaselineRegistry("baseline", field="NAME", builtin=_modules())

__all__ = ["BASELINES"]
