"""The one place ``sionna.rt.PathSolver`` is made: :func:`path_solver`, called with a
:class:`twin.config.SolverSettings` (``solver(scene, **settings.kwargs())``) by the trace stage
(:mod:`twin.render.trace`) and the bistatic-echo view.

With ``count_candidates`` the solver's candidate generator is wrapped to record how many candidates each source
stored in its path buffer, so a full buffer (paths dropped, NVlabs/sionna#1172) is detected without an extra
synchronisation.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class CandidateCounter:
    """Wraps Sionna's candidate generator to record how many candidates each source stored (issue 1172)."""

    def __init__(self, inner):
        self.inner = inner
        self._counts = None

    def __call__(self, *args, **kwargs):
        buf = self.inner(*args, **kwargs)
        try:
            import drjit as dr
            import mitsuba as mi

            # recorded lazily and scheduled: evaluated with Sionna's own dr.eval() of the buffer, no extra sync
            counts = dr.zeros(mi.UInt, dr.width(kwargs["src_positions"]))
            idx = dr.arange(mi.UInt, int(buf.buffer_size))
            active = idx < buf.paths_counter
            src = dr.gather(mi.UInt, buf.source_indices, idx, active)
            dr.scatter_inc(counts, src, active)
            dr.schedule(counts)
            self._counts = counts
        except Exception as e:  # noqa: BLE001 - diagnostics only, never fail a trace for them
            log.debug("could not count candidates per source: %s", e)
            self._counts = None
        return buf

    @property
    def per_source(self) -> np.ndarray | None:
        """Candidates each source stored in the path buffer (read after the solve)."""
        if self._counts is None:
            return None
        try:
            return np.asarray(self._counts.numpy())
        except Exception as e:  # noqa: BLE001
            log.debug("could not read candidate counts: %s", e)
            return None


def path_solver(*, count_candidates: bool = False) -> tuple[Any, CandidateCounter | None]:
    """(a new ``sionna.rt.PathSolver``, its candidate counter or None)."""
    import sionna.rt as rt

    solver = rt.PathSolver()
    counter = None
    inner = getattr(solver, "_candidate_generator", None) if count_candidates else None
    if inner is not None:
        counter = CandidateCounter(inner)
        solver._candidate_generator = counter
    return solver, counter


__all__ = ["CandidateCounter", "path_solver"]
