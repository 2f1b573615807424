"""Views (docs/architecture.md "Views"): transforms from per-link CIR shards to the tensors five research systems train on.

Reading a build: :func:`twin.open` (:mod:`twin.datasets.access`); torch helpers in :mod:`twin.datasets.loaders`
(imported on first use, so importing this package does not import torch).
"""

from twin.datasets.access import Build, Reader, open_build
from twin.datasets.registry import VIEWS, View, ViewInputs, available_views, get_view, register_view

__all__ = ["VIEWS", "Build", "Reader", "View", "ViewInputs", "available_views", "collate", "get_view", "open_build",
           "register_view"]


def __getattr__(name: str):
    if name == "collate":
        from twin.datasets.loaders import collate

        return collate
    raise AttributeError(f"module 'twin.datasets' has no attribute {name!r}")
