"""Receiver placement (docs/architecture.md "Render"): street-level points outside buildings, in the local frame.

Three placements, registered in :data:`PLACERS` by ``ReceiverConfig.mode``:

- ``random``: ``count`` points uniform in the bounds shrunk by ``clearance_m``, at least ``clearance_m``
  metres from every footprint (rejection sampling in vectorised batches).
- ``grid``: a regular grid of step ``spacing_m`` metres over the shrunk bounds (centred in them), keeping the
  points at least ``clearance_m`` from every footprint. The grid ignores ``count``: the whole grid is kept.
- ``route`` (:mod:`twin.render.routes`): ``num_routes`` pedestrian/vehicle routes with ``count`` points in total, sampled every
  ``sample_interval_s`` seconds at ``speed_mps`` (so every ``speed_mps * sample_interval_s`` metres of arc
  length). Routes follow shortest paths over a street graph: the OSM walk network from
  :func:`twin.ingest.streets.street_graph_from_osm` (online, at ingest) or, offline, a lattice over the open space (nodes every
  :data:`twin.render.routes.OFFLINE_LATTICE_M` metres, edges between 8-neighbours whose segment stays ``clearance_m`` away
  from the buildings; lattice paths are then string-pulled into straight segments that stay clear, so the
  heading follows the street rather than the lattice's 0/45 degree steps).
  Velocity = ``speed_mps`` x the unit tangent of the path, ``t_s`` = arc length / speed.
  On the OSM graph, edges that leave the bounds or intersect a footprint (passages through buildings) are
  dropped; street points are not pushed away from facades, so they may come closer than ``clearance_m``.
  A route chains shortest paths between random far-apart nodes (the farthest quarter by path length)
  until it is long enough, then is cut at ``(n - 1) * speed_mps * sample_interval_s`` metres.

Where they may stand (``[receivers] area``, :func:`resolve_area`): ``"streets"`` (default) = within
``street_buffer_m`` of the build's street centre lines (``streets.parquet``: an .osm/.pbf file's highway ways, the
walk network online; routes then follow the same lines); a build without streets falls back to the open space of
the bounds for a bundled scene (as before) and to ``"built"`` otherwise; ``"built"`` = within ``built_distance_m``
of a footprint; ``"bbox"`` = anywhere in the bounds. Always outside buildings by ``clearance_m``.

Output: a ``pyarrow.Table`` in :data:`twin.schema.RECEIVER_SCHEMA` (metres, seconds, m/s), deterministic for
``ReceiverConfig.seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from shapely.geometry import box as shapely_box

from twin.config import ReceiverConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.registry import Registry
from twin.schema import RECEIVER_SCHEMA

#: Segments per quarter circle when buffering footprints by the clearance.
_QUAD_SEGS = 8
#: Largest grid the ``grid`` mode builds (points before removing those in buildings).
MAX_GRID_POINTS = 20_000_000
#: Random mode gives up after drawing this many candidates per requested point (open area too small).
_MAX_DRAWS_PER_POINT = 2_000


# ----------------------------------------------------------------------------------------------- open space


@dataclass(frozen=True)
class OpenSpace:
    """The area where receivers may stand: the bounds shrunk by ``clearance_m`` minus buffered footprints.

    ``blocked`` is the union of the footprints buffered by ``clearance_m`` (prepared for fast vectorised
    predicates); the buffer radius is enlarged by 1/cos(pi / (4 * quad_segs)) so that the polygonal buffer
    contains the exact offset curve and every point outside it is at least ``clearance_m`` metres away.
    """

    footprints: tuple  # shapely Polygons, local metres (validated, repaired)
    blocked: Any  # shapely geometry (prepared) or None when there are no buildings
    blocked_tree: Any  # STRtree of the buffered footprints (fast for short segments)
    footprint_tree: Any  # STRtree of the raw footprints
    box: tuple[float, float, float, float]  # shrunk bounds, metres
    clearance_m: float
    allowed: Any = None  # prepared geometry receivers must lie in ([receivers] area), None: the whole box
    area: str = "bbox"  # the [receivers] area this space was made for (after the fallback of "streets")

    def is_open(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where (x, y) (metres) lies inside the shrunk bounds (and the allowed area) and >= clearance
        from every footprint."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        xmin, ymin, xmax, ymax = self.box
        ok = (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
        if self.allowed is not None and ok.any():
            ok[ok] = shapely.contains_xy(self.allowed, x[ok], y[ok])
        if self.blocked is not None and ok.any():
            ok[ok] = ~shapely.contains_xy(self.blocked, x[ok], y[ok])
        return ok

    def segments_blocked(self, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
        """True for each segment p0[i] -> p1[i] (arrays (k, 2), metres) that comes within clearance of a building."""
        k = len(p0)
        bad = np.zeros(k, dtype=bool)
        if self.blocked is None or k == 0:
            return bad
        lines = shapely.linestrings(np.stack([p0, p1], axis=1))
        if np.median(np.hypot(*(p1 - p0).T)) > 20.0:  # long segments: the prepared union is ~4x faster
            return shapely.intersects(lines, self.blocked)
        hit = self.blocked_tree.query(lines, predicate="intersects")  # short ones: the tree is ~1.4x faster
        bad[np.unique(hit[0])] = True
        return bad

    def open_area_m2(self) -> float:
        """Area of the open space, square metres."""
        b = shapely_box(*self.box)
        if self.allowed is not None:
            b = shapely.intersection(self.allowed, b)
        if self.blocked is None:
            return float(b.area)
        return float(b.area - shapely.intersection(self.blocked, b).area)


def _validate_footprints(footprints_local: Iterable[Any]) -> list:
    if footprints_local is None:
        return []
    if isinstance(footprints_local, shapely.Geometry):
        footprints_local = [footprints_local]
    try:
        items = list(footprints_local)
    except TypeError:
        raise TwinInputError(
            f"footprints must be a list of shapely Polygons/MultiPolygons, got {type(footprints_local).__name__}",
            field="footprints_local",
            fix="pass the buildings' local-frame geometries (buildings.parquet 'geometry_local')",
        ) from None
    polys = []
    for i, g in enumerate(items):
        if g is None:
            continue
        if not isinstance(g, shapely.Polygon | shapely.MultiPolygon):
            raise TwinInputError(
                f"expected a shapely Polygon or MultiPolygon in local metres, got {type(g).__name__}",
                row=f"footprint {i}",
                field="footprints_local",
                fix="pass building footprints as (Multi)Polygons in the local frame",
            )
        if g.is_empty:
            continue
        if not g.is_valid:
            g = shapely.make_valid(g)
        for part in shapely.get_parts(g):
            if isinstance(part, shapely.Polygon) and not part.is_empty and part.area > 0:
                polys.append(part)
            elif isinstance(part, shapely.MultiPolygon | shapely.GeometryCollection):
                polys.extend(
                    p for p in shapely.get_parts(part) if isinstance(p, shapely.Polygon) and p.area > 0
                )
    return polys


def _validate_bounds(bounds: Sequence[float]) -> tuple[float, float, float, float]:
    fix = "pass bounds as (xmin, ymin, xmax, ymax) in local metres with xmin < xmax and ymin < ymax"
    try:
        b = tuple(float(v) for v in bounds)
    except (TypeError, ValueError):
        raise TwinInputError(f"bounds must be 4 numbers, got {bounds!r}", field="bounds", fix=fix) from None
    if len(b) != 4 or not all(math.isfinite(v) for v in b) or not (b[0] < b[2] and b[1] < b[3]):
        raise TwinInputError(f"invalid bounds {bounds!r}", field="bounds", fix=fix)
    return b  # type: ignore[return-value]


def open_space(footprints_local: Iterable[Any], bounds: Sequence[float], clearance_m: float, *,
               allowed: Any = None, area: str = "bbox") -> OpenSpace:
    """Build the :class:`OpenSpace` of ``bounds`` (metres) minus the footprints buffered by ``clearance_m``;
    ``allowed`` (a shapely geometry in metres) restricts it further ([receivers] area)."""
    b = _validate_bounds(bounds)
    c = float(clearance_m)
    box = (b[0] + c, b[1] + c, b[2] - c, b[3] - c)
    if not (box[0] <= box[2] and box[1] <= box[3]):
        raise TwinInputError(
            f"bounds {b} are smaller than twice the clearance ({c} m)",
            field="bounds",
            fix="enlarge the area or lower receivers.clearance_m",
        )
    polys = _validate_footprints(footprints_local)
    if allowed is not None:
        shapely.prepare(allowed)
    if not polys:
        return OpenSpace((), None, None, None, box, c, allowed, area)
    fp = np.array(polys, dtype=object)
    if c > 0:
        radius = c / math.cos(math.pi / (4 * _QUAD_SEGS)) + 1e-9
        buffered = shapely.buffer(fp, radius, quad_segs=_QUAD_SEGS)
    else:
        buffered = fp
    blocked = shapely.union_all(buffered)
    shapely.prepare(blocked)
    return OpenSpace(tuple(polys), blocked, shapely.STRtree(buffered), shapely.STRtree(fp), box, c, allowed, area)


# ------------------------------------------------------------------------------------------ [receivers] area


def resolve_area(config: ReceiverConfig, *, has_streets: bool, no_streets: str = "built") -> str:
    """The area receivers are placed in: ``config.area``, with ``"streets"`` falling back to ``no_streets``
    (``"bbox"``: the open space of a bundled scene, as before; ``"built"``: a file without streets) when the
    build has no street network."""
    if config.area == "streets" and not has_streets:
        return no_streets
    return config.area


def allowed_region(area: str, config: ReceiverConfig, footprints: Sequence[Any], streets: Sequence[Any]) -> Any:
    """The shapely region (metres) of ``area``: the street lines buffered by ``street_buffer_m`` ("streets"),
    the footprints buffered by ``built_distance_m`` ("built"), None ("bbox": the whole bounds)."""
    if area == "streets":
        lines = np.array([g for g in streets if g is not None and not g.is_empty], dtype=object)
        return shapely.union_all(shapely.buffer(lines, config.street_buffer_m, quad_segs=_QUAD_SEGS))
    if area == "built":
        if not len(footprints):
            raise TwinInputError("receivers near buildings need buildings: the area has none", field="receivers.area",
                                 fix='set [receivers] area = "bbox"')
        polys = np.array(list(footprints), dtype=object)
        return shapely.union_all(shapely.buffer(polys, config.built_distance_m, quad_segs=_QUAD_SEGS))
    return None


def _validate_streets(streets_local: Iterable[Any] | None) -> list:
    if streets_local is None:
        return []
    out = []
    for i, g in enumerate(streets_local):
        if g is None:
            continue
        if not isinstance(g, shapely.LineString | shapely.MultiLineString):
            raise TwinInputError(f"expected a shapely LineString in local metres, got {type(g).__name__}",
                                 row=f"street {i}", field="streets_local",
                                 fix="pass the street centre lines (streets.parquet 'geometry_local')")
        if not g.is_empty and g.length > 0:
            out.append(g)
    return out


def street_graph_from_lines(lines: Sequence[Any]) -> Any:
    """An undirected networkx graph in the local frame (``twin_local``) from street centre lines (metres): one node
    per distinct vertex (to the centimetre: OSM ways that share a node share it), one edge per segment."""
    import networkx as nx

    G = nx.Graph()
    G.graph["twin_local"] = True
    ids: dict[tuple[int, int], int] = {}
    for line in lines:
        for part in shapely.get_parts(line):
            c = np.asarray(part.coords, float)[:, :2]
            keys = [(int(round(x * 100)), int(round(y * 100))) for x, y in c]
            for k, (x, y) in zip(keys, c, strict=True):
                if k not in ids:
                    ids[k] = len(ids)
                    G.add_node(ids[k], x=float(x), y=float(y))
            for a, b in zip(keys[:-1], keys[1:], strict=True):
                if a != b:
                    G.add_edge(ids[a], ids[b])
    return G


# ------------------------------------------------------------------------------------------------ registry


@dataclass
class Placement:
    """Placed points (metres), and for routes their route id, time (s) and velocity (m/s)."""

    x: np.ndarray
    y: np.ndarray
    route_id: np.ndarray | None = None
    t_s: np.ndarray | None = None
    vx: np.ndarray | None = None
    vy: np.ndarray | None = None


Placer = Callable[..., Placement]
#: mode -> placer(space, config, rng, *, street_graph, frame) -> Placement
PLACERS: Registry[Placer] = Registry("receiver mode", field="receivers.mode", builtin=("twin.render.routes",))


def register_placer(mode: str) -> Callable[[Placer], Placer]:
    """Decorator: register a placement function under ``ReceiverConfig.mode`` = ``mode``."""
    return PLACERS.register(mode)


def make_receivers(
    footprints_local: Iterable[Any],
    bounds: Sequence[float],
    config: ReceiverConfig,
    *,
    street_graph: Any = None,
    frame: LocalFrame | None = None,
    streets_local: Iterable[Any] | None = None,
    no_streets: str = "bbox",
) -> pa.Table:
    """Place receivers outside buildings; a table in ``RECEIVER_SCHEMA`` (metres, seconds, m/s).

    ``streets_local``: the area's street centre lines (shapely LineStrings, local metres; ``streets.parquet``).
    ``[receivers] area`` decides where receivers may stand (:func:`resolve_area`, :func:`allowed_region`; a
    build without streets falls back to ``no_streets``); route receivers follow ``street_graph`` or, when there
    is none, the graph of ``streets_local`` (the same network), else the open-space lattice. The area used is
    in the table's schema metadata (``twin.receivers_area``).

    ``footprints_local``: shapely (Multi)Polygons in local metres. ``bounds``: (xmin, ymin, xmax, ymax),
    metres. ``street_graph``: for ``route`` mode, an osmnx graph (lon/lat with ``frame``, or already projected
    by :func:`twin.frame.project_street_graph`); None builds the offline lattice. rx_id runs 0..N-1; z = height_m.
    """
    if not isinstance(config, ReceiverConfig):
        raise TwinInputError(
            f"config must be a twin.config.ReceiverConfig, got {type(config).__name__}",
            field="config",
            fix="build it with twin.config.from_mapping(ReceiverConfig, table)",
        )
    placer = PLACERS.get(config.mode)  # UnknownNameError naming the modes
    if frame is not None and not isinstance(frame, LocalFrame):
        raise TwinInputError(
            f"frame must be a twin.frame.LocalFrame, got {type(frame).__name__}",
            field="frame",
            fix="pass the build's LocalFrame",
        )
    streets = _validate_streets(streets_local)
    area = resolve_area(config, has_streets=bool(streets), no_streets=no_streets)
    footprints = _validate_footprints(footprints_local)
    allowed = allowed_region(area, config, footprints, streets)
    space = open_space(footprints, bounds, config.clearance_m, allowed=allowed, area=area)
    if street_graph is None and streets and config.mode == "route":
        street_graph = street_graph_from_lines(streets)
    rng = np.random.default_rng(config.seed)
    placed = placer(space, config, rng, street_graph=street_graph, frame=frame)
    n = len(placed.x)
    zeros = np.zeros(n)
    cols = {
        "rx_id": np.arange(n, dtype=np.int64),
        "x": np.asarray(placed.x, dtype=np.float64),
        "y": np.asarray(placed.y, dtype=np.float64),
        "z": np.full(n, float(config.height_m)),
        "kind": pa.array([config.mode] * n, type=pa.string()),
        "route_id": placed.route_id if placed.route_id is not None else np.full(n, -1, dtype=np.int64),
        "t_s": placed.t_s if placed.t_s is not None else zeros,
        "vx": placed.vx if placed.vx is not None else zeros,
        "vy": placed.vy if placed.vy is not None else zeros,
        "vz": zeros,
    }
    return pa.Table.from_pydict(cols, schema=RECEIVER_SCHEMA).replace_schema_metadata({"twin.receivers_area": area})


def too_small_error(space: OpenSpace, what: str, config: ReceiverConfig) -> TwinInputError:
    return TwinInputError(
        f"the open area ({space.open_area_m2():.1f} m^2 outside buildings + {config.clearance_m} m clearance, "
        f"inside bounds shrunk to {tuple(round(v, 2) for v in space.box)}) is too small to place {what}",
        field="receivers.clearance_m" if space.area == "bbox" else "receivers.area",
        fix="enlarge the area (bounds), lower receivers.clearance_m, or ask for fewer receivers"
        + ("" if space.area == "bbox" else f' (receivers stand in [receivers] area = "{space.area}"; "bbox" widens it)'),
    )


# ------------------------------------------------------------------------------------------------- random


@register_placer("random")
def _place_random(space: OpenSpace, config: ReceiverConfig, rng: np.random.Generator, **_: Any) -> Placement:
    """``count`` points uniform over the open space (rejection sampling in batches)."""
    n = int(config.count)
    xmin, ymin, xmax, ymax = space.box
    box_area = (xmax - xmin) * (ymax - ymin)
    open_area = space.open_area_m2()
    if box_area <= 0 or open_area <= 1e-9 * max(box_area, 1.0):
        raise too_small_error(space, f"{n} random receivers", config)
    frac = open_area / box_area
    batch = int(min(max(1024, 1.3 * n / frac), 1_000_000))
    max_draws = _MAX_DRAWS_PER_POINT * n + 100_000
    xs, ys, got, drawn = [], [], 0, 0
    while got < n:
        if drawn >= max_draws:
            raise too_small_error(space, f"{n} random receivers (only {got} found in {drawn} draws)", config)
        x = rng.uniform(xmin, xmax, batch)
        y = rng.uniform(ymin, ymax, batch)
        drawn += batch
        ok = space.is_open(x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
    return Placement(np.concatenate(xs)[:n], np.concatenate(ys)[:n])


# --------------------------------------------------------------------------------------------------- grid


def grid_axis(lo: float, hi: float, step: float) -> np.ndarray:
    """Points every ``step`` metres in [lo, hi], centred in the interval."""
    k = int(math.floor((hi - lo) / step + 1e-9)) + 1
    start = lo + 0.5 * ((hi - lo) - (k - 1) * step)
    return start + step * np.arange(k)


@register_placer("grid")
def _place_grid(space: OpenSpace, config: ReceiverConfig, rng: np.random.Generator, **_: Any) -> Placement:
    """Grid every ``spacing_m`` metres over the shrunk bounds (centred), row-major from (xmin, ymin).

    ``count`` is ignored: the whole grid outside the buildings is kept.
    """
    xmin, ymin, xmax, ymax = space.box
    gx = grid_axis(xmin, xmax, config.spacing_m)
    gy = grid_axis(ymin, ymax, config.spacing_m)
    if len(gx) * len(gy) > MAX_GRID_POINTS:
        raise TwinInputError(
            f"a grid of {len(gx)} x {len(gy)} points is too large",
            field="receivers.spacing_m",
            fix=f"increase receivers.spacing_m (now {config.spacing_m} m) or shrink the area",
        )
    X, Y = np.meshgrid(gx, gy)
    x, y = X.ravel(), Y.ravel()
    ok = space.is_open(x, y)
    if not ok.any():
        raise too_small_error(space, f"a grid with spacing {config.spacing_m} m", config)
    return Placement(x[ok], y[ok])


__all__ = [
    "PLACERS",
    "OpenSpace",
    "Placement",
    "allowed_region",
    "make_receivers",
    "open_space",
    "resolve_area",
    "street_graph_from_lines",
    "register_placer",
    "too_small_error",
]
