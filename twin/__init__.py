"""twin: ray-traced digital twins of real cities for cellular localization and sensing datasets.

The import root of the project. Stages live in subpackages: :mod:`twin.ingest`, :mod:`twin.render`,
:mod:`twin.datasets`, :mod:`twin.baselines`, :mod:`twin.catalog`. This module stays light: importing it
does not import any stage, Sionna, Mitsuba or torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

from twin.errors import TwinError, TwinInputError

__all__ = ["TwinError", "TwinInputError", "__version__", "open"]


def __getattr__(name: str):
    """``twin.open`` is imported on first use (it pulls in pyarrow, fsspec and the catalog)."""
    if name == "open":
        from twin.datasets.access import open_build

        return open_build
    raise AttributeError(f"module 'twin' has no attribute {name!r}")
