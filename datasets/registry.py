"""The registry of views: a view is a configured transform from CIR rows to view rows.

A view registers itself with :func:`register_view`. The view stage (:mod:`twin.datasets.stage`) runs one Dask
task per *receiver batch*: the task reads every CIR row of those receivers (all cells, all carriers), calls the view,
writes the returned table as ``views/<name>/<variant>/part-<task key>.parquet`` (variant = the config hash) and registers it in the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from twin.registry import Registry


@dataclass(frozen=True)
class ViewInputs:
    """What a view task gets. ``cir`` holds every CIR row (docs/architecture.md "Contracts" schema) of the receivers in ``receivers``.

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


BUILTIN_VIEW_MODULES = (
    "twin.datasets.folded_lte",
    "twin.datasets.spike_train",
    "twin.datasets.cir_taps",
    "twin.datasets.bistatic_echo",
    "twin.datasets.tb_fingerprint",
)

#: the views, by name; the built-in view modules are imported on the first lookup
VIEWS: Registry[View] = Registry("view", field="view", builtin=BUILTIN_VIEW_MODULES, hint="see `twin view list`")


def register_view(view: View) -> View:
    """Add ``view`` (an instance) to :data:`VIEWS` under ``view.name``; a name taken twice raises ``ValueError``."""
    if not getattr(view, "name", None):
        raise ValueError("a view needs a name")
    return VIEWS.add(view.name, view)


def get_view(name: str) -> View:
    """The view called ``name``; :class:`twin.registry.UnknownNameError` (exit 2) listing the views otherwise."""
    return VIEWS.get(name)


def available_views() -> list[str]:
    return VIEWS.names()
