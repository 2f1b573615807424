"""Size guards applied before the work they protect: the area and the receiver set, and a plan estimate that
needs no receivers placed. A core module: no stage imports (any stage may use it).

Each refusal is a :class:`~twin.errors.TwinInputError` (exit 2) naming the setting and the way out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from twin.config import BuildConfig, LimitsConfig, TraceConfig
from twin.errors import TwinInputError


def bbox_area_km2(bbox: tuple[float, float, float, float]) -> float:
    """Area of a W,S,E,N box in km^2 (spherical Earth, R = 6371.0088 km)."""
    w, s, e, n = bbox
    r = 6371.0088
    return r * r * math.radians(e - w) * abs(math.sin(math.radians(n)) - math.sin(math.radians(s)))


def check_area(bbox: tuple[float, float, float, float], limits: LimitsConfig, *, what: str, field: str = "--bbox") -> float:
    """The area of ``bbox``; above ``limits.max_area_km2`` (and that not 0) a TwinInputError asks for --large-area."""
    a = bbox_area_km2(bbox)
    if limits.max_area_km2 > 0 and a > limits.max_area_km2:
        raise TwinInputError(
            f"the area of {what} is {a:.1f} km^2, above the cap of {limits.max_area_km2:g} km^2 "
            "(tracing cost grows with the area: buildings x receivers x cells)",
            field=field,
            fix="pass --large-area to build it anyway, choose a smaller area, or raise [limits] max_area_km2",
        )
    return a


@dataclass(frozen=True)
class PlanEstimate:
    """A trace plan counted without placing receivers: receivers, cells, links (pairs) and tasks."""

    receivers: int
    cells: int
    links: int
    tasks: int


def receiver_count(config: BuildConfig, bounds_local: tuple[float, float, float, float] | None) -> int:
    """Receivers the config asks for: ``count`` (random, route) or the grid points over ``bounds_local`` (m)."""
    rc = config.receivers
    if rc.mode == "grid":
        if bounds_local is None:
            return 0
        x0, y0, x1, y1 = bounds_local
        return int((math.floor((x1 - x0) / rc.spacing_m) + 1) * (math.floor((y1 - y0) / rc.spacing_m) + 1))
    return int(rc.count)


#: the fewest receivers a batch shrinks to for ``min_tasks`` (a PathSolver call has a fixed cost per source)
MIN_RECEIVERS_PER_BATCH = 16


def receiver_batch_size(n_receivers: int, n_cell_groups: int, config: TraceConfig) -> int:
    """Receivers per task: ``receivers_per_task``, made smaller for small builds so that the plan holds at least
    ``min_tasks`` tasks (``n_cell_groups`` = tasks per receiver batch), but never below
    :data:`MIN_RECEIVERS_PER_BATCH`. Depends on the build only (not on the machine), so plans are reproducible."""
    rpt = config.receivers_per_task
    if n_receivers <= 0 or n_cell_groups <= 0:
        return rpt
    batches = -(-config.min_tasks // n_cell_groups)
    want = -(-n_receivers // batches)
    return max(1, min(rpt, max(want, MIN_RECEIVERS_PER_BATCH)))


def estimate_plan(n_receivers: int, cells_per_carrier: list[int], config: BuildConfig) -> PlanEstimate:
    """Links and tasks of the plan :func:`twin.render.plan.plan_trace_tasks` would make (cells of one carrier
    in groups of ``cells_per_task``, receivers in batches of ``receiver_batch_size``), capped by ``max_links``."""
    t = config.trace
    n_cells = sum(cells_per_carrier)
    if n_cells == 0 or n_receivers == 0:
        return PlanEstimate(n_receivers, n_cells, 0, 0)
    if config.max_links:
        n_receivers = min(n_receivers, max(1, config.max_links // n_cells))
    groups = sum(math.ceil(c / t.cells_per_task) for c in cells_per_carrier)
    batches = math.ceil(n_receivers / receiver_batch_size(n_receivers, groups, t))
    tasks = groups * batches
    return PlanEstimate(n_receivers, n_cells, n_receivers * n_cells, tasks)


def check_receivers(n: int, config: BuildConfig) -> None:
    """More receivers than ``[limits] max_receivers`` (not 0) exits 2."""
    cap = config.limits.max_receivers
    if cap and n > cap:
        raise TwinInputError(
            f"{n:,} receivers asked for, above the cap of {cap:,} ([limits] max_receivers)",
            field="[receivers] count" if config.receivers.mode != "grid" else "[receivers] spacing_m",
            fix="ask for fewer receivers (or a wider grid spacing), cap the links with --max-links, "
            "or raise [limits] max_receivers; `twin build ... --dry-run` shows the plan",
        )
