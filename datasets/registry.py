"""The registry of views (DESIGN §6): a view is a configured transform from CIR rows to view rows.

A view registers itself with :func:`register_view`. The pipeline (``twin.pipeline``) runs one Dask task per
*receiver batch*: the task reads every CIR row of those receivers (all cells, all carriers), calls the view,
writes the returned table as ``views/<name>/part-<task key>.parquet`` and registers it in the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa


@dataclass(frozen=True)
class ViewInputs:
    """What a view task gets. ``cir`` holds every CIR row (DESIGN §3 schema) of the receivers in ``receivers``.

    ``towers`` is the build's towers table (cells, without geometry), ``receivers`` the receiver rows of
    this batch (``twin.schema.RECEIVER_SCHEMA``), ``scene_path`` the Mitsuba scene (for views that trace,
    e.g. bistatic echoes), ``seed`` the task's seed (derived from the build seed and the task key).
    """

    cir: pa.Table
    towers: pa.Table
    receivers: pa.Table
    scene_path: str
    seed: int
    manifest: Mapping[str, Any]


class View(Protocol):
    name: str
    config_cls: type
    #: "per_receiver_batch" (default) or "per_build" (one task for the whole build, e.g. tower-to-tower echoes)
    granularity: str

    def __call__(self, inputs: ViewInputs, config: Any) -> pa.Table: ...


VIEWS: dict[str, View] = {}


def register_view(view: View) -> View:
    """Add ``view`` (an instance) to :data:`VIEWS` under ``view.name``."""
    if not getattr(view, "name", None):
        raise ValueError("a view needs a name")
    VIEWS[view.name] = view
    return view


def get_view(name: str) -> View:
    _load_builtin()
    try:
        return VIEWS[name]
    except KeyError:
        raise KeyError(f"unknown view {name!r}; known views: {', '.join(sorted(VIEWS))}") from None


def available_views() -> list[str]:
    _load_builtin()
    return sorted(VIEWS)


_BUILTIN = (
    "twin.datasets.folded_lte",
    "twin.datasets.spike_train",
    "twin.datasets.cir_taps",
    "twin.datasets.bistatic_echo",
    "twin.datasets.tb_fingerprint",
)


def _load_builtin() -> None:
    import importlib

    for mod in _BUILTIN:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise

