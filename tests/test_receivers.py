"""Receiver placement (twin.render.receivers): counts, determinism, clearance, grid spacing, routes, errors.

Oracles are independent of the implementation: exact shapely distances to the raw footprints (not the
buffered union the code uses), the grid written out from its definition, arc length = speed * dt.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

import twin.net
from twin.config import ReceiverConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame, project_street_graph
from twin.ingest.streets import street_graph_from_osm
from twin.render import receivers as R
from twin.render import routes
from twin.render.receivers import make_receivers
from twin.schema import RECEIVER_SCHEMA

BOUNDS = (-100.0, -80.0, 100.0, 80.0)


def city() -> list:
    """A tiny synthetic block city in local metres: blocks, an L-shape, a courtyard building, a multipolygon."""
    fps = [
        box(-90, -70, -40, -30),
        box(-20, -70, 30, -30),
        Polygon([(50, -70), (90, -70), (90, -50), (70, -50), (70, -30), (50, -30)]),  # L-shape
        Polygon(box(-90, -10, -40, 30).exterior.coords, [box(-75, 0, -55, 20).exterior.coords]),  # courtyard
        MultiPolygon([box(-20, -10, 5, 30), box(10, -10, 30, 30)]),
        box(50, -10, 90, 30),
        box(-90, 50, 90, 70),
    ]
    return fps


def min_distance(x: np.ndarray, y: np.ndarray, fps: list) -> np.ndarray:
    pts = shapely.points(x, y)
    return np.min(np.stack([shapely.distance(pts, f) for f in fps]), axis=0)


def check_schema(t, cfg: ReceiverConfig, kind: str) -> None:
    assert t.schema.equals(RECEIVER_SCHEMA)
    n = t.num_rows
    assert t["rx_id"].to_pylist() == list(range(n))
    assert set(t["kind"].to_pylist()) == {kind}
    np.testing.assert_array_equal(t["z"].to_numpy(), cfg.height_m)
    np.testing.assert_array_equal(t["vz"].to_numpy(), 0.0)


def in_shrunk_bounds(t, c: float) -> bool:
    x, y = t["x"].to_numpy(), t["y"].to_numpy()
    return bool(
        np.all(x >= BOUNDS[0] + c)
        and np.all(x <= BOUNDS[2] - c)
        and np.all(y >= BOUNDS[1] + c)
        and np.all(y <= BOUNDS[3] - c)
    )


# ------------------------------------------------------------------------------------------------ random


def test_random_count_clearance_determinism():
    cfg = ReceiverConfig(mode="random", count=300, clearance_m=2.0, height_m=1.5, seed=3)
    fps = city()
    t = make_receivers(fps, BOUNDS, cfg)
    assert t.num_rows == 300
    check_schema(t, cfg, "random")
    assert t["route_id"].to_pylist() == [-1] * 300
    for c in ("t_s", "vx", "vy"):
        np.testing.assert_array_equal(t[c].to_numpy(), 0.0)
    d = min_distance(t["x"].to_numpy(), t["y"].to_numpy(), fps)
    assert d.min() >= 2.0
    assert in_shrunk_bounds(t, 2.0)
    # not inside the courtyard building's solid part, but the courtyard itself (open air) is allowed
    assert t.equals(make_receivers(fps, BOUNDS, cfg))
    other = make_receivers(fps, BOUNDS, ReceiverConfig(mode="random", count=300, clearance_m=2.0, seed=4))
    assert not np.allclose(other["x"].to_numpy(), t["x"].to_numpy())


def test_random_is_uniform_over_open_space():
    """Share of points in the left half = left open area / total open area (binomial, 5 sigma)."""
    fps = [box(-100, -80, 0, 40)]  # left half is 25 % open, right half fully open
    cfg = ReceiverConfig(mode="random", count=4000, clearance_m=0.0, seed=11)
    t = make_receivers(fps, BOUNDS, cfg)
    p = (100 * 40) / (100 * 40 + 100 * 160)
    k = int(np.sum(t["x"].to_numpy() < 0))
    n = t.num_rows
    assert abs(k - n * p) < 5 * math.sqrt(n * p * (1 - p))


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-95, 80), st.floats(-75, 60), st.floats(2, 40), st.floats(2, 40)),
        min_size=1,
        max_size=8,
    ),
    st.floats(0.0, 3.0),
    st.integers(0, 2**31),
)
def test_random_property_clearance(rects, clearance, seed):
    fps = [box(x, y, x + w, y + h) for x, y, w, h in rects]
    cfg = ReceiverConfig(mode="random", count=50, clearance_m=clearance, seed=seed)
    t = make_receivers(fps, BOUNDS, cfg)
    assert t.num_rows == 50
    assert min_distance(t["x"].to_numpy(), t["y"].to_numpy(), fps).min() >= clearance


# --------------------------------------------------------------------------------------------------- grid


def test_grid_spacing_and_complete():
    fps = city()
    cfg = ReceiverConfig(mode="grid", spacing_m=7.0, clearance_m=1.5, count=5)  # count ignored by grid
    t = make_receivers(fps, BOUNDS, cfg)
    check_schema(t, cfg, "grid")
    assert t.num_rows > 5
    x, y = t["x"].to_numpy(), t["y"].to_numpy()
    # oracle: the grid by its definition (step 7 m, centred in the bounds shrunk by 1.5 m)
    lo_x, hi_x, lo_y, hi_y = BOUNDS[0] + 1.5, BOUNDS[2] - 1.5, BOUNDS[1] + 1.5, BOUNDS[3] - 1.5
    nx_, ny_ = int((hi_x - lo_x) // 7) + 1, int((hi_y - lo_y) // 7) + 1
    gx = lo_x + ((hi_x - lo_x) - (nx_ - 1) * 7) / 2 + 7 * np.arange(nx_)
    gy = lo_y + ((hi_y - lo_y) - (ny_ - 1) * 7) / 2 + 7 * np.arange(ny_)
    GX, GY = (a.ravel() for a in np.meshgrid(gx, gy))
    d_all = min_distance(GX, GY, fps)
    got = {(round(a, 6), round(b, 6)) for a, b in zip(x, y, strict=True)}
    full = {(round(a, 6), round(b, 6)) for a, b in zip(GX, GY, strict=True)}
    assert got <= full  # every point is a grid node
    must = {(round(a, 6), round(b, 6)) for a, b, d in zip(GX, GY, d_all, strict=True) if d >= 1.5 * 1.01}
    assert must <= got  # every node clearly outside the buildings is kept
    assert min_distance(x, y, fps).min() >= 1.5
    # neighbouring kept points are exactly one spacing apart
    ux = np.unique(np.round(x, 6))
    assert np.allclose(np.diff(ux) / 7.0, np.round(np.diff(ux) / 7.0))
    assert np.isclose(np.min(np.diff(ux)), 7.0)


# ------------------------------------------------------------------------------------------------- routes


def check_routes(t, cfg: ReceiverConfig, fps: list) -> None:
    step = cfg.speed_mps * cfg.sample_interval_s
    rid = t["route_id"].to_numpy()
    assert sorted(set(rid.tolist())) == list(range(cfg.num_routes))
    sizes = np.bincount(rid)
    assert sizes.sum() == cfg.count and sizes.max() - sizes.min() <= 1
    x, y, ts = t["x"].to_numpy(), t["y"].to_numpy(), t["t_s"].to_numpy()
    vx, vy = t["vx"].to_numpy(), t["vy"].to_numpy()
    np.testing.assert_allclose(np.hypot(vx, vy), cfg.speed_mps, rtol=1e-9)
    assert min_distance(x, y, fps).min() >= cfg.clearance_m - 1e-9
    union = shapely.union_all(fps)
    straight = []
    for r in range(cfg.num_routes):
        m = rid == r
        assert np.all(np.diff(rid[m].astype(float)) == 0) and np.all(
            np.flatnonzero(m) == np.arange(m.argmax(), m.argmax() + m.sum())
        )
        np.testing.assert_allclose(ts[m], cfg.sample_interval_s * np.arange(m.sum()), atol=1e-9)
        assert np.all(np.diff(ts[m]) > 0)
        p = np.column_stack([x[m], y[m]])
        chord = np.hypot(*np.diff(p, axis=0).T)
        assert np.all(chord <= step + 1e-9)  # never farther than the arc length speed*dt
        segs = shapely.linestrings(np.stack([p[:-1], p[1:]], axis=1))
        assert not np.any(shapely.intersects(segs, union))  # continuous and never through a building
        # where the path is straight, p[k+1] = p[k] + v[k] * dt exactly
        pred = p[:-1] + np.column_stack([vx[m], vy[m]])[:-1] * cfg.sample_interval_s
        straight.append(np.hypot(*(pred - p[1:]).T) < 1e-6)
    assert np.mean(np.concatenate(straight)) > 0.7


def test_routes_offline():
    fps = city()
    cfg = ReceiverConfig(
        mode="route", count=203, num_routes=4, speed_mps=1.39, sample_interval_s=1.0, clearance_m=1.0, seed=5
    )
    t = make_receivers(fps, BOUNDS, cfg)
    check_schema(t, cfg, "route")
    check_routes(t, cfg, fps)
    assert in_shrunk_bounds(t, 1.0)
    assert t.equals(make_receivers(fps, BOUNDS, cfg))
    # routes move: each covers (n - 1) * speed * dt metres of arc; endpoints differ
    for r in range(4):
        m = t["route_id"].to_numpy() == r
        assert np.hypot(np.ptp(t["x"].to_numpy()[m]), np.ptp(t["y"].to_numpy()[m])) > 10.0


def test_routes_vehicle_speed_longer_than_area():
    """A route longer than any shortest path chains several legs and stays continuous."""
    fps = city()
    cfg = ReceiverConfig(
        mode="route", count=60, num_routes=2, speed_mps=13.9, sample_interval_s=0.5, clearance_m=1.0, seed=1
    )
    t = make_receivers(fps, BOUNDS, cfg)  # 29 steps x 6.95 m = 201 m per route
    check_routes(t, cfg, fps)


def street_graph(frame: LocalFrame) -> nx.MultiDiGraph:
    """An osmnx-like walk graph in lon/lat: streets between the blocks of city(), one edge through a building,
    one curved edge with a 'geometry' polyline."""
    pts = {
        1: (-95, -20),
        2: (-30, -20),
        3: (40, -20),
        4: (95, -20),
        5: (-95, 40),
        6: (-30, 40),
        7: (40, 40),
        8: (95, 40),
        9: (-65, -20),  # south of the courtyard building: edge 9 -> 5 cuts through it
    }
    G = nx.MultiDiGraph(crs="epsg:4326")
    for n, (x, y) in pts.items():
        lon, lat = frame.to_wgs84(x, y)
        G.add_node(n, x=float(lon), y=float(lat))
    streets = [(1, 2), (2, 3), (3, 4), (5, 6), (6, 7), (7, 8), (1, 5), (2, 6), (3, 7), (4, 8), (9, 5), (1, 9)]
    for u, v in streets:
        G.add_edge(u, v, length=0.0)
        G.add_edge(v, u, length=0.0)
    # curved edge 3 -> 4 through (67, -25): a polyline in lon/lat
    lon, lat = frame.to_wgs84(np.array([40.0, 67.0, 95.0]), np.array([-20.0, -25.0, -20.0]))
    G.add_edge(3, 4, length=0.0, geometry=LineString(np.column_stack([lon, lat])))
    return G


def test_routes_on_street_graph():
    frame = LocalFrame(48.87378, 2.29503)
    fps = city()
    G = street_graph(frame)
    cfg = ReceiverConfig(mode="route", count=160, num_routes=3, speed_mps=2.0, clearance_m=1.0, seed=2)
    t = make_receivers(fps, BOUNDS, cfg, street_graph=G, frame=frame)
    check_schema(t, cfg, "route")
    check_routes(t, cfg, fps)
    H = project_street_graph(G, frame)
    n9 = np.array([H.nodes[9]["x"], H.nodes[9]["y"]])
    assert np.allclose(n9, (-65, -20), atol=1e-6)  # projection round trip
    assert all(
        abs(d["length"] - LineString(d["geometry"]).length) < 1e-6
        for _, _, d in H.edges(data=True)
        if "geometry" in d
    )
    kept = [
        d.get("geometry")
        or LineString([(H.nodes[u]["x"], H.nodes[u]["y"]), (H.nodes[v]["x"], H.nodes[v]["y"])])
        for u, v, d in H.edges(data=True)
        if {u, v} != {9, 5}
    ]
    streets = shapely.union_all(kept)
    x, y = t["x"].to_numpy(), t["y"].to_numpy()
    assert shapely.distance(shapely.points(x, y), streets).max() < 1e-6  # every point on a street
    assert not any(Point(a, b).within(shapely.union_all(fps)) for a, b in zip(x, y, strict=True))
    # the projected graph works without a frame too
    t2 = make_receivers(fps, BOUNDS, cfg, street_graph=H)
    np.testing.assert_allclose(t2["x"].to_numpy(), x, atol=1e-6)


def test_street_graph_edge_through_building_dropped():
    frame = LocalFrame(48.87378, 2.29503)
    space = R.open_space(city(), BOUNDS, 1.0)
    g = routes.street_route_graph(street_graph(frame), space, frame)
    ids = list(street_graph(frame).nodes)
    i9, i5, i1 = ids.index(9), ids.index(5), ids.index(1)
    assert g.csr[i9, i5] == 0 and g.csr[i5, i9] == 0
    assert g.csr[i1, i9] == pytest.approx(30.0, abs=1e-6)


# ------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("mode", ["random", "grid", "route"])
def test_no_open_space_errors_clearly(mode):
    fps = [box(-99, -79, 99, 79)]  # covers the bounds shrunk by 1 m
    with pytest.raises(TwinInputError) as e:
        make_receivers(fps, BOUNDS, ReceiverConfig(mode=mode, clearance_m=1.0))
    assert "too small" in str(e.value) and "fix:" in str(e.value)


def test_bad_inputs_name_the_field():
    with pytest.raises(TwinInputError, match="bounds"):
        make_receivers([], (0, 0, -1, 5), ReceiverConfig())
    with pytest.raises(TwinInputError, match="clearance"):
        make_receivers([], (0, 0, 1, 1), ReceiverConfig(clearance_m=1.0))
    with pytest.raises(TwinInputError) as e:
        make_receivers([box(0, 0, 1, 1), Point(3, 3)], BOUNDS, ReceiverConfig())
    assert "footprint 1" in str(e.value)
    with pytest.raises(TwinInputError, match="speed_mps"):
        make_receivers([], BOUNDS, ReceiverConfig(mode="route", speed_mps=0.0))
    with pytest.raises(TwinInputError, match="count"):
        make_receivers([], BOUNDS, ReceiverConfig(mode="route", count=2, num_routes=4))
    with pytest.raises(TwinInputError, match="frame"):
        make_receivers(
            [], BOUNDS, ReceiverConfig(mode="route"), street_graph=street_graph(LocalFrame(48.8, 2.3))
        )
    with pytest.raises(TwinInputError, match="config"):
        make_receivers([], BOUNDS, {"mode": "random"})  # type: ignore[arg-type]


def test_invalid_footprint_is_repaired():
    bowtie = Polygon([(-50, -50), (50, 50), (50, -50), (-50, 50)])  # self-intersecting
    t = make_receivers([bowtie], BOUNDS, ReceiverConfig(count=200, clearance_m=0.5, seed=9))
    assert min_distance(t["x"].to_numpy(), t["y"].to_numpy(), [shapely.make_valid(bowtie)]).min() >= 0.5


def test_street_graph_from_osm_network_failure(monkeypatch, tmp_path):
    import osmnx as ox
    import requests

    def offline(*a, **k):
        raise requests.exceptions.ConnectionError("Name or service not known")

    monkeypatch.setattr(ox, "graph_from_bbox", offline)
    monkeypatch.setattr(twin.net, "reachable", lambda *a, **k: False)
    before = (ox.settings.use_cache, ox.settings.cache_folder, ox.settings.overpass_rate_limit)
    with pytest.raises(TwinInputError) as e:
        street_graph_from_osm((2.29, 48.87, 2.30, 48.88), LocalFrame(48.875, 2.295), cache_dir=tmp_path)
    assert "--offline" in str(e.value)
    assert (ox.settings.use_cache, ox.settings.cache_folder, ox.settings.overpass_rate_limit) == before
    with pytest.raises(TwinInputError, match="bbox"):
        street_graph_from_osm((2.30, 48.87, 2.29, 48.88), LocalFrame(48.875, 2.295), cache_dir=tmp_path)


def test_open_space_exact_clearance_at_corners():
    """Points just inside the clearance circle around a corner are blocked, points just outside are open
    (the polygonal buffer must contain the exact offset curve, not be inscribed in it)."""
    space = R.open_space([box(0, 0, 10, 10)], BOUNDS, 2.0)
    ang = np.linspace(0.0, math.pi / 2, 721)
    for r, want in ((2.0 * (1 - 1e-6), False), (2.0 * 1.02, True)):
        ok = space.is_open(10 + r * np.cos(ang), 10 + r * np.sin(ang))
        assert np.all(ok == want)


def overpass_response(frame: LocalFrame) -> dict:
    """An Overpass API answer (OSM JSON) for the streets of city(): osmnx builds and simplifies the graph."""
    ids: dict[tuple[float, float], int] = {}
    elements: list[dict] = []

    def node(x: float, y: float) -> int:
        if (x, y) not in ids:
            ids[(x, y)] = len(ids) + 1
            lon, lat = frame.to_wgs84(x, y)
            elements.append({"type": "node", "id": ids[(x, y)], "lat": float(lat), "lon": float(lon)})
        return ids[(x, y)]

    ways = [
        [(x, -20.0) for x in (-95, -80, -65, -30, 0, 40, 60, 95)],
        [(x, 40.0) for x in (-95, -30, 0, 40, 60, 95)],
        [(-95.0, -20.0), (-95.0, 10.0), (-97.0, 25.0), (-95.0, 40.0)],  # a bent street: one simplified edge
        [(-30.0, -20.0), (-30.0, 40.0)],
        [(40.0, -20.0), (40.0, 40.0)],
        [(95.0, -20.0), (95.0, 40.0)],
        [(60.0, -20.0), (60.0, 40.0)],  # a passage through box(50, -10, 90, 30): must not be used
    ]
    for k, w in enumerate(ways):
        elements.append(
            {
                "type": "way",
                "id": 1000 + k,
                "nodes": [node(x, y) for x, y in w],
                "tags": {"highway": "footway"},
            }
        )
    return {"version": 0.6, "elements": elements}


def test_street_graph_from_osm_builds_projected_graph(monkeypatch, tmp_path):
    """The real osmnx pipeline (graph building, simplification, truncation) on a stored Overpass answer."""
    import osmnx as ox

    frame = LocalFrame(48.87378, 2.29503)
    answer = overpass_response(frame)
    monkeypatch.setattr(ox._overpass, "_download_overpass_network", lambda *a, **k: iter([answer]))
    monkeypatch.setattr(twin.net, "reachable", lambda *a, **k: True)
    lon, lat = frame.to_wgs84(np.array([BOUNDS[0], BOUNDS[2]]), np.array([BOUNDS[1], BOUNDS[3]]))
    G = street_graph_from_osm((lon[0], lat[0], lon[1], lat[1]), frame, cache_dir=tmp_path)
    assert G.graph["twin_local"]
    bent = [d for _, _, d in G.edges(data=True) if "geometry" in d and min(d["geometry"].coords)[0] < -96]
    assert bent and all(abs(d["length"] - d["geometry"].length) < 1e-6 for d in bent)
    cfg = ReceiverConfig(mode="route", count=150, num_routes=3, speed_mps=1.39, clearance_m=1.0, seed=8)
    fps = city()
    t = make_receivers(fps, BOUNDS, cfg, street_graph=G)
    check_routes(t, cfg, fps)
    lines = [
        LineString(w)
        for w in (
            [(-95, -20), (95, -20)],
            [(-95, 40), (95, 40)],
            [(-30, -20), (-30, 40)],
            [(40, -20), (40, 40)],
            [(95, -20), (95, 40)],
            [(-95, -20), (-95, 10), (-97, 25), (-95, 40)],
        )
    ]
    d = shapely.distance(shapely.points(t["x"].to_numpy(), t["y"].to_numpy()), shapely.union_all(lines))
    assert d.max() < 1e-6  # on the streets, never on the passage at x = 60
    # the passage x = 60 crosses a building: between its ends only the 130 m detour via x = 95 remains
    g = routes.street_route_graph(G, R.open_space(fps, BOUNDS, 1.0), None)
    ends = [int(np.argmin(np.hypot(g.xy[:, 0] - 60, g.xy[:, 1] - y))) for y in (-20, 40)]
    assert np.allclose(g.xy[ends], [(60, -20), (60, 40)], atol=1e-6)
    assert g.csr[ends[0], ends[1]] == pytest.approx(130.0, abs=1e-6)


def test_offline_route_follows_a_diagonal_street():
    """In a 20 m wide street at 30 degrees the heading follows the street (no 0/45 degree lattice staircase)."""
    b = (0.0, 0.0, 200.0, 200.0)
    a = math.radians(30)
    u = np.array([math.cos(a), math.sin(a)])
    street = LineString([(100, 100) - 300 * u, (100, 100) + 300 * u]).buffer(10.0, cap_style="flat")
    blocks = box(*b).difference(street)  # a MultiPolygon: everything but the street
    cfg = ReceiverConfig(mode="route", count=100, num_routes=2, speed_mps=1.39, clearance_m=1.0, seed=4)
    t = make_receivers([blocks], b, cfg)
    check_routes(t, cfg, [blocks])
    heading = np.degrees(np.arctan2(t["vy"].to_numpy(), t["vx"].to_numpy())) % 180.0
    assert np.mean(np.abs(heading - 30.0) < 3.0) > 0.8
