"""Benchmarks of the views, run by ``twin bench views``.

Each view module registers a function with :func:`register_bench`. A bench function takes ``quick: bool``
(smaller sizes for a smoke run) and returns a list of :class:`BenchResult` rows; where the issue asks for a
comparison with a bare library or a straightforward method, both are timed in the same call and reported
as two rows plus a ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class BenchResult:
    name: str  # e.g. "spike_train/cfr" or "spike_train/sionna_cfr"
    items_per_s: float  # samples/s (views) or entries/s (kernels)
    unit: str  # what an item is, e.g. "samples" or "complex entries"
    seconds: float
    notes: dict = field(default_factory=dict)  # sizes, ratios, errors between methods


BENCHES: dict[str, Callable[[bool], list[BenchResult]]] = {}


def register_bench(name: str):
    def deco(fn: Callable[[bool], list[BenchResult]]):
        BENCHES[name] = fn
        return fn

    return deco
