"""Paper reproductions that build their own scenarios (``twin reproduce PAPER``).

A reproduction orders stages the way :mod:`twin.pipeline` does (ingest a scene, place its towers and receivers,
trace, build a view, split), then trains the paper's method and its comparisons from :mod:`twin.baselines`. It
therefore sits on the CLI/pipeline layer, not in a stage: the baselines stage reads views only. Each module
registers its driver in :data:`twin.baselines.reproduce.REPRODUCTIONS`; importing this package registers them.
Reproductions that build through the ``twin`` command itself (a subprocess) may stay in ``baselines/``.
"""

from __future__ import annotations

from twin.reproductions import isla, loanet, twophase, vinloc  # noqa: F401  (register "isla", "loanet", "twophase", "vinloc")

__all__ = ["isla", "loanet", "twophase", "vinloc"]
