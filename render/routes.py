"""Route receivers: ``num_routes`` pedestrian/vehicle routes along a street graph, with velocity.

Routes follow shortest paths over a street graph: the OSM walk network (downloaded at ingest by
:func:`twin.ingest.streets.street_graph_from_osm`) or, offline, a lattice over the open space (nodes every
:data:`OFFLINE_LATTICE_M` metres, edges between 8-neighbours whose segment stays ``clearance_m`` away from the
buildings; lattice paths are then string-pulled into straight segments that stay clear). The ``route`` placer of
:data:`twin.render.receivers.PLACERS`; the module docstring there gives the sampling rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely.geometry import box as shapely_box

from twin.config import ReceiverConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame, project_street_graph
from twin.render.receivers import OpenSpace, Placement, grid_axis, register_placer, too_small_error

#: Node spacing of the offline street lattice, metres (finer lattices are tried when the open space is narrow).
OFFLINE_LATTICE_M = 5.0


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
    gx = grid_axis(xmin, xmax, lattice_m)
    gy = grid_axis(ymin, ymax, lattice_m)
    X, Y = np.meshgrid(gx, gy)  # (ny, nx)
    ok = space.is_open(X.ravel(), Y.ravel()).reshape(X.shape)
    idx = np.full(X.shape, -1, dtype=np.int64)
    idx[ok] = np.arange(int(ok.sum()))
    xy = np.column_stack([X[ok], Y[ok]])
    ny, nx = X.shape
    edges: dict[tuple[int, int], tuple[float, np.ndarray | None]] = {}
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
        G = project_street_graph(G, frame)  # type: ignore[arg-type]  # raises a TwinInputError when frame is None
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
) -> Placement:
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
        raise too_small_error(space, f"routes ({source} has no connected open space)", config)

    xs, ys, rid, ts, vxs, vys = [], [], [], [], [], []
    for r, n in enumerate(per.tolist()):
        if len(comp) == 0:
            raise too_small_error(space, "routes", config)
        line = _walk(g, comp, (n - 1) * step, rng) if len(comp) >= 2 else g.xy[comp[:1]]
        pos, tan, s = _resample(line, n, step)
        xs.append(pos[:, 0])
        ys.append(pos[:, 1])
        rid.append(np.full(n, r, dtype=np.int64))
        ts.append(s / config.speed_mps)
        vxs.append(config.speed_mps * tan[:, 0])
        vys.append(config.speed_mps * tan[:, 1])
    cat = np.concatenate
    return Placement(cat(xs), cat(ys), cat(rid), cat(ts), cat(vxs), cat(vys))


__all__ = ["OFFLINE_LATTICE_M", "RouteGraph", "offline_route_graph", "street_route_graph"]
