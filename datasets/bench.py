"""Benchmarks of the views, run by ``twin bench views``.

Each view module registers a function with :func:`register_bench`. A bench function takes ``quick: bool``
(smaller sizes for a smoke run) and returns a list of :class:`BenchResult` rows; where the issue asks for a
comparison with a bare library or a straightforward method, both are timed in the same call and reported
as two rows plus a ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twin.datasets.registry import BUILTIN_VIEW_MODULES
from twin.registry import Registry


@dataclass
class BenchResult:
    name: str  # e.g. "spike_train/cfr" or "spike_train/sionna_cfr"
    items_per_s: float  # samples/s (views) or entries/s (kernels)
    unit: str  # what an item is, e.g. "samples" or "complex entries"
    seconds: float
    notes: dict = field(default_factory=dict)  # sizes, ratios, errors between methods


#: view benches by name (``twin bench views --only NAME``); the view modules register theirs on import
BENCHES: Registry[Callable[[bool], list[BenchResult]]] = Registry("bench", field="--only", builtin=BUILTIN_VIEW_MODULES)


def register_bench(name: str) -> Callable[[Callable[[bool], list[BenchResult]]], Callable[[bool], list[BenchResult]]]:
    """Decorator: register a bench function under ``name``."""
    return BENCHES.register(name)
