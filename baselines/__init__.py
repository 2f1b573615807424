"""Baseline trainers that read the published view catalog through torch datasets.

The trainers come with a later issue; :data:`BASELINES` is the registry they will join.
"""

from __future__ import annotations

from twin.registry import Registry

#: baseline trainers by name; a trainer joins with ``@BASELINES.register("name")``
BASELINES: Registry[object] = Registry("baseline", field="NAME")

__all__ = ["BASELINES"]
