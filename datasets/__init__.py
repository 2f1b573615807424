"""Views (DESIGN §6): transforms from per-link CIR shards to the tensors five research systems train on."""

from twin.datasets.registry import VIEWS, View, ViewInputs, available_views, get_view, register_view

__all__ = ["VIEWS", "View", "ViewInputs", "available_views", "get_view", "register_view"]
