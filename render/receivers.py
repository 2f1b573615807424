"""Receiver placement (DESIGN §5 "Receivers"): street-level points outside buildings, in the local frame.

Three placements, registered in :data:`PLACERS` by ``ReceiverConfig.mode``:

- ``random``: ``count`` points uniform in the bounds shrunk by ``clearance_m``, at least ``clearance_m``
  metres from every footprint (rejection sampling in vectorised batches).
- ``grid``: a regular grid of step ``spacing_m`` metres over the shrunk bounds (centred in them), keeping the
  points at least ``clearance_m`` from every footprint. The grid ignores ``count``: the whole grid is kept.
- ``route``: ``num_routes`` pedestrian/vehicle routes with ``count`` points in total, sampled every
  ``sample_interval_s`` seconds at ``speed_mps`` (so every ``speed_mps * sample_interval_s`` metres of arc
  length). Routes follow shortest paths over a street graph: the OSM walk network from
  :func:`twin.ingest.streets.street_graph_from_osm` (online, at ingest) or, offline, a lattice over the open space (nodes every
  :data:`OFFLINE_LATTICE_M` metres, edges between 8-neighbours whose segment stays ``clearance_m`` away
  from the buildings; lattice paths are then string-pulled into straight segments that stay clear, so the
  heading follows the street rather than the lattice's 0/45 degree steps).
  Velocity = ``speed_mps`` x the unit tangent of the path, ``t_s`` = arc length / speed.
  On the OSM graph, edges that leave the bounds or intersect a footprint (passages through buildings) are
  dropped; street points are not pushed away from facades, so they may come closer than ``clearance_m``.
  A route chains shortest paths between random far-apart nodes (the farthest quarter by path length)
  until it is long enough, then is cut at ``(n - 1) * speed_mps * sample_interval_s`` metres.

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
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely.geometry import box as shapely_box

from twin.config import ReceiverConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame, project_street_graph
from twin.schema import RECEIVER_SCHEMA

#: Node spacing of the offline street lattice, metres (finer lattices are tried when the open space is narrow).
OFFLINE_LATTICE_M = 5.0
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

    def is_open(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where (x, y) (metres) lies inside the shrunk bounds and >= clearance from every footprint."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        xmin, ymin, xmax, ymax = self.box
        ok = (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
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


def open_space(footprints_local: Iterable[Any], bounds: Sequence[float], clearance_m: float) -> OpenSpace:
    """Build the :class:`OpenSpace` of ``bounds`` (metres) minus the footprints buffered by ``clearance_m``."""
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
    if not polys:
        return OpenSpace((), None, None, None, box, c)
    fp = np.array(polys, dtype=object)
    if c > 0:
        radius = c / math.cos(math.pi / (4 * _QUAD_SEGS)) + 1e-9
        buffered = shapely.buffer(fp, radius, quad_segs=_QUAD_SEGS)
    else:
        buffered = fp
    blocked = shapely.union_all(buffered)
    shapely.prepare(blocked)
    return OpenSpace(tuple(polys), blocked, shapely.STRtree(buffered), shapely.STRtree(fp), box, c)


# ------------------------------------------------------------------------------------------------ registry


@dataclass
class _Placed:
    x: np.ndarray
    y: np.ndarray
    route_id: np.ndarray | None = None
    t_s: np.ndarray | None = None
    vx: np.ndarray | None = None
    vy: np.ndarray | None = None


Placer = Callable[..., _Placed]
#: mode -> placer(space, config, rng, *, street_graph, frame) -> _Placed
PLACERS: dict[str, Placer] = {}


def register_placer(mode: str) -> Callable[[Placer], Placer]:
    """Register a placement function under ``ReceiverConfig.mode`` = ``mode`` (one of RECEIVER_KINDS)."""

    def deco(fn: Placer) -> Placer:
        PLACERS[mode] = fn
        return fn

    return deco


def make_receivers(
    footprints_local: Iterable[Any],
    bounds: Sequence[float],
    config: ReceiverConfig,
    *,
    street_graph: Any = None,
    frame: LocalFrame | None = None,
) -> pa.Table:
    """Place receivers outside buildings; a table in ``RECEIVER_SCHEMA`` (metres, seconds, m/s).

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
    if config.mode not in PLACERS:
        raise TwinInputError(
            f"unknown receiver mode {config.mode!r}",
            field="receivers.mode",
            fix=f"use one of {', '.join(sorted(PLACERS))}",
        )
    if frame is not None and not isinstance(frame, LocalFrame):
        raise TwinInputError(
            f"frame must be a twin.frame.LocalFrame, got {type(frame).__name__}",
            field="frame",
            fix="pass the build's LocalFrame",
        )
    space = open_space(footprints_local, bounds, config.clearance_m)
    rng = np.random.default_rng(config.seed)
    placed = PLACERS[config.mode](space, config, rng, street_graph=street_graph, frame=frame)
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
    return pa.Table.from_pydict(cols, schema=RECEIVER_SCHEMA)


def _too_small(space: OpenSpace, what: str, config: ReceiverConfig) -> TwinInputError:
    return TwinInputError(
        f"the open area ({space.open_area_m2():.1f} m^2 outside buildings + {config.clearance_m} m clearance, "
        f"inside bounds shrunk to {tuple(round(v, 2) for v in space.box)}) is too small to place {what}",
        field="receivers.clearance_m",
        fix="enlarge the area (bounds), lower receivers.clearance_m, or ask for fewer receivers",
    )


# ------------------------------------------------------------------------------------------------- random


@register_placer("random")
def _place_random(space: OpenSpace, config: ReceiverConfig, rng: np.random.Generator, **_: Any) -> _Placed:
    """``count`` points uniform over the open space (rejection sampling in batches)."""
    n = int(config.count)
    xmin, ymin, xmax, ymax = space.box
    box_area = (xmax - xmin) * (ymax - ymin)
    open_area = space.open_area_m2()
    if box_area <= 0 or open_area <= 1e-9 * max(box_area, 1.0):
        raise _too_small(space, f"{n} random receivers", config)
    frac = open_area / box_area
    batch = int(min(max(1024, 1.3 * n / frac), 1_000_000))
    max_draws = _MAX_DRAWS_PER_POINT * n + 100_000
    xs, ys, got, drawn = [], [], 0, 0
    while got < n:
        if drawn >= max_draws:
            raise _too_small(space, f"{n} random receivers (only {got} found in {drawn} draws)", config)
        x = rng.uniform(xmin, xmax, batch)
        y = rng.uniform(ymin, ymax, batch)
        drawn += batch
        ok = space.is_open(x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
    return _Placed(np.concatenate(xs)[:n], np.concatenate(ys)[:n])


# --------------------------------------------------------------------------------------------------- grid


def _axis(lo: float, hi: float, step: float) -> np.ndarray:
    """Points every ``step`` metres in [lo, hi], centred in the interval."""
    k = int(math.floor((hi - lo) / step + 1e-9)) + 1
    start = lo + 0.5 * ((hi - lo) - (k - 1) * step)
    return start + step * np.arange(k)


@register_placer("grid")
def _place_grid(space: OpenSpace, config: ReceiverConfig, rng: np.random.Generator, **_: Any) -> _Placed:
    """Grid every ``spacing_m`` metres over the shrunk bounds (centred), row-major from (xmin, ymin).

    ``count`` is ignored: the whole grid outside the buildings is kept.
    """
    xmin, ymin, xmax, ymax = space.box
    gx = _axis(xmin, xmax, config.spacing_m)
    gy = _axis(ymin, ymax, config.spacing_m)
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
        raise _too_small(space, f"a grid with spacing {config.spacing_m} m", config)
    return _Placed(x[ok], y[ok])


# -------------------------------------------------------------------------------------------------- routes


@dataclass
class RouteGraph:
    """An undirected street graph in the local frame: node positions (metres) and edge polylines.

    ``csr``: symmetric sparse matrix of edge lengths (metres). ``polylines[(i, j)]`` with i < j is the
    (k, 2) polyline from node i to node j (absent for straight edges). ``space``: set for a lattice over the
    open space, whose paths may be straightened (any-angle shortcuts that stay clear of the buildings).
    """

    xy: np.ndarray
    csr: csr_matrix
    polylines: dict[tuple[int, int], np.ndarray]
    space: OpenSpace | None = None

    @classmethod
    def from_edges(
        cls, xy: np.ndarray, edges: dict[tuple[int, int], tuple[float, np.ndarray | None]]
    ) -> RouteGraph:
        n = len(xy)
        if edges:
            ij = np.array(list(edges.keys()), dtype=np.int64)
            w = np.array([max(v[0], 1e-9) for v in edges.values()])
            rows = np.concatenate([ij[:, 0], ij[:, 1]])
            cols = np.concatenate([ij[:, 1], ij[:, 0]])
            csr = csr_matrix((np.concatenate([w, w]), (rows, cols)), shape=(n, n))
        else:
            csr = csr_matrix((n, n))
        polys = {k: v[1] for k, v in edges.items() if v[1] is not None}
        return cls(np.asarray(xy, dtype=float), csr, polys)

    def edge_polyline(self, i: int, j: int) -> np.ndarray:
        """Polyline (k, 2) metres from node i to node j."""
        key = (i, j) if i < j else (j, i)
        line = self.polylines.get(key)
        if line is None:
            return self.xy[[i, j]]
        return line if i < j else line[::-1]


def offline_route_graph(space: OpenSpace, lattice_m: float = OFFLINE_LATTICE_M) -> RouteGraph:
    """Lattice over the open space: nodes every ``lattice_m`` metres, 8-neighbour edges clear of buildings."""
    xmin, ymin, xmax, ymax = space.box
    gx = _axis(xmin, xmax, lattice_m)
    gy = _axis(ymin, ymax, lattice_m)
    X, Y = np.meshgrid(gx, gy)  # (ny, nx)
    ok = space.is_open(X.ravel(), Y.ravel()).reshape(X.shape)
    idx = np.full(X.shape, -1, dtype=np.int64)
    idx[ok] = np.arange(int(ok.sum()))
    xy = np.column_stack([X[ok], Y[ok]])
    ny, nx = X.shape
    edges: dict[tuple[int, int], tuple[float, None]] = {}
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        # pairs (row, col) -> (row + dy, col + dx); dy in {0, 1}, dx in {-1, 0, 1}
        a = idx[0 : ny - dy, max(0, -dx) : nx - max(0, dx)].ravel()
        b = idx[dy:ny, max(0, dx) : nx - max(0, -dx)].ravel()
        both = (a >= 0) & (b >= 0)
        a, b = a[both], b[both]
        if len(a) == 0:
            continue
        bad = space.segments_blocked(xy[a], xy[b])
        length = float(lattice_m * math.hypot(dx, dy))
        for i, j in zip(a[~bad].tolist(), b[~bad].tolist(), strict=True):
            edges[(i, j) if i < j else (j, i)] = (length, None)
    g = RouteGraph.from_edges(xy, edges)
    g.space = space
    return g


def street_route_graph(G: Any, space: OpenSpace, frame: LocalFrame | None) -> RouteGraph:
    """RouteGraph from an osmnx street graph, keeping edges inside the bounds that cross no footprint."""
    if not hasattr(G, "nodes") or not hasattr(G, "edges") or not hasattr(G, "graph"):
        raise TwinInputError(
            f"street_graph must be a networkx graph from osmnx, got {type(G).__name__}",
            field="street_graph",
            fix="use twin.ingest.streets.street_graph_from_osm, or pass None to build routes offline",
        )
    if not G.graph.get("twin_local"):
        G = project_street_graph(G, frame)  # raises when frame is None
    node_ids = list(G.nodes)
    pos = {n: k for k, n in enumerate(node_ids)}
    xy = np.array([[G.nodes[n]["x"], G.nodes[n]["y"]] for n in node_ids], dtype=float).reshape(-1, 2)
    keys, lines = [], []
    for u, v, data in G.edges(data=True):
        i, j = pos[u], pos[v]
        if i == j:
            continue
        geom = data.get("geometry")
        line = np.asarray(geom.coords, dtype=float)[:, :2] if geom is not None else xy[[i, j]]
        # orient the polyline from node i to node j
        if np.hypot(*(line[0] - xy[i])) > np.hypot(*(line[-1] - xy[i])):
            line = line[::-1]
        keys.append((i, j))
        lines.append(line)
    edges: dict[tuple[int, int], tuple[float, np.ndarray | None]] = {}
    if keys:
        geoms = (
            shapely.linestrings(lines)
            if len({len(line) for line in lines}) == 1
            else np.array([shapely.LineString(line) for line in lines], dtype=object)
        )
        inside = shapely.within(geoms, shapely_box(*space.box))
        crosses = np.zeros(len(keys), dtype=bool)
        if space.footprint_tree is not None:
            hit = space.footprint_tree.query(geoms, predicate="intersects")
            crosses[np.unique(hit[0])] = True
        for (i, j), line, keep in zip(keys, lines, inside & ~crosses, strict=True):
            if not keep:
                continue
            length = float(np.sum(np.hypot(*np.diff(line, axis=0).T)))
            key = (i, j) if i < j else (j, i)
            if key in edges and edges[key][0] <= length:
                continue
            edges[key] = (length, line if i < j else line[::-1])
    return RouteGraph.from_edges(xy, edges)


def _largest_component(g: RouteGraph) -> np.ndarray:
    n = len(g.xy)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    deg = np.diff(g.csr.indptr)
    _, labels = connected_components(g.csr, directed=False)
    # prefer components with edges; size = number of nodes
    counts = (
        np.bincount(labels[deg > 0], minlength=labels.max() + 1) if (deg > 0).any() else np.bincount(labels)
    )
    return np.flatnonzero(labels == int(np.argmax(counts)))


def _trace(pred: np.ndarray, end: int) -> list[int]:
    path = [end]
    while pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    return path[::-1]


def _shortcut(space: OpenSpace, pts: np.ndarray, lookahead: int = 400) -> np.ndarray:
    """String-pull a lattice path (m, 2): from each kept vertex jump to the farthest later vertex (within
    ``lookahead``) whose straight segment stays clear of the buffered buildings. Removes the 0/45 degree
    staircase of an 8-connected lattice so that headings follow the street."""
    keep = [0]
    i, m = 0, len(pts)
    while i < m - 1:
        js = np.arange(i + 1, min(m, i + 1 + lookahead))
        bad = space.segments_blocked(np.repeat(pts[i][None, :], len(js), axis=0), pts[js])
        clear = js[~bad]
        i = int(clear.max()) if len(clear) else i + 1  # the lattice edge i -> i + 1 is always clear
        keep.append(i)
    return pts[keep]


def _walk(g: RouteGraph, comp: np.ndarray, need_m: float, rng: np.random.Generator) -> np.ndarray:
    """Polyline (k, 2) metres of at least ``need_m`` metres: shortest paths between random far-apart nodes.

    Starts at a random node of ``comp``; each leg goes to a random node among the farthest quarter (by path
    length) of the component and is chained to the previous one until the route is long enough.
    """
    cur = int(rng.choice(comp))
    pts = [g.xy[cur][None, :]]
    length = 0.0
    legs = 0
    while legs == 0 or length < need_m:
        dist, pred = dijkstra(g.csr, directed=False, indices=cur, return_predecessors=True)
        cand = comp[np.isfinite(dist[comp]) & (comp != cur)]
        if len(cand) == 0:
            break
        d = dist[cand]
        far = cand[d >= np.quantile(d, 0.75)]
        end = int(rng.choice(far))
        path = _trace(pred, end)
        if g.space is not None:
            leg = _shortcut(g.space, g.xy[path])
        else:
            leg = np.concatenate(
                [g.xy[path[:1]]]
                + [g.edge_polyline(a, b)[1:] for a, b in zip(path[:-1], path[1:], strict=True)]
            )
        pts.append(leg[1:])
        length += float(np.sum(np.hypot(*np.diff(leg, axis=0).T)))
        cur = end
        legs += 1
        if legs > 10_000:  # pragma: no cover - guards a degenerate graph
            break
    line = np.concatenate(pts, axis=0)
    seg = np.hypot(*np.diff(line, axis=0).T)
    keep = np.concatenate([[True], seg > 1e-9])
    return line[keep]


def _resample(line: np.ndarray, n: int, step_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points every ``step_m`` metres of arc length along ``line``: positions, unit tangents, arc lengths."""
    s = step_m * np.arange(n)
    if len(line) < 2:
        return np.repeat(line[:1], n, axis=0), np.zeros((n, 2)), s
    d = np.diff(line, axis=0)
    seg = np.hypot(d[:, 0], d[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    f = np.clip((s - cum[k]) / seg[k], 0.0, 1.0)[:, None]
    pos = line[k] + f * d[k]
    tan = d[k] / seg[k][:, None]
    return pos, tan, s


@register_placer("route")
def _place_route(
    space: OpenSpace,
    config: ReceiverConfig,
    rng: np.random.Generator,
    *,
    street_graph: Any = None,
    frame: LocalFrame | None = None,
) -> _Placed:
    """``num_routes`` routes, ``count`` points in total (the first ``count % num_routes`` routes get one more)."""
    if config.speed_mps <= 0:
        raise TwinInputError(
            "route receivers need a positive speed",
            field="receivers.speed_mps",
            fix="set receivers.speed_mps > 0 (1.39 m/s walking, 13.9 m/s driving at 50 km/h)",
        )
    if config.count < config.num_routes:
        raise TwinInputError(
            f"{config.count} points cannot fill {config.num_routes} routes",
            field="receivers.count",
            fix="set receivers.count >= receivers.num_routes",
        )
    step = config.speed_mps * config.sample_interval_s
    per = np.full(config.num_routes, config.count // config.num_routes)
    per[: config.count % config.num_routes] += 1

    if street_graph is not None:
        g = street_route_graph(street_graph, space, frame)
        comp = _largest_component(g)
        source = "street graph"
    else:
        comp = np.zeros(0, dtype=np.int64)
        for lattice in (OFFLINE_LATTICE_M, OFFLINE_LATTICE_M / 2, OFFLINE_LATTICE_M / 5):
            g = offline_route_graph(space, lattice)
            comp = _largest_component(g)
            if len(comp) >= 2:
                break
        source = "open-space lattice"
    if len(comp) < 2 and per.max() > 1:
        if street_graph is not None:
            raise TwinInputError(
                "the street graph has no connected streets inside the bounds clear of buildings",
                field="street_graph",
                fix="enlarge the area, or build routes offline (street_graph=None)",
            )
        raise _too_small(space, f"routes ({source} has no connected open space)", config)

    xs, ys, rid, ts, vxs, vys = [], [], [], [], [], []
    for r, n in enumerate(per.tolist()):
        if len(comp) == 0:
            raise _too_small(space, "routes", config)
        line = _walk(g, comp, (n - 1) * step, rng) if len(comp) >= 2 else g.xy[comp[:1]]
        pos, tan, s = _resample(line, n, step)
        xs.append(pos[:, 0])
        ys.append(pos[:, 1])
        rid.append(np.full(n, r, dtype=np.int64))
        ts.append(s / config.speed_mps)
        vxs.append(config.speed_mps * tan[:, 0])
        vys.append(config.speed_mps * tan[:, 1])
    cat = np.concatenate
    return _Placed(cat(xs), cat(ys), cat(rid), cat(ts), cat(vxs), cat(vys))


__all__ = [
    "OFFLINE_LATTICE_M",
    "PLACERS",
    "OpenSpace",
    "RouteGraph",
    "make_receivers",
    "offline_route_graph",
    "open_space",
    "register_placer",
    "street_route_graph",
]
