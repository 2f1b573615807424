"""Baseline trainers (DESIGN §8) that read the published view catalog through torch datasets.

The trainers come with a later issue; :data:`BASELINES` is the registry they will join.
"""

from __future__ import annotations

BASELINES: dict[str, object] = {}

__all__ = ["BASELINES"]
