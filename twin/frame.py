"""The local Cartesian frame of a twin: metres, x east, y north, z up, origin at (lat0, lon0).

A transverse Mercator projection centred on the origin (scale 1): within a few km the distortion is below
1e-6, so local distances equal ground distances for ray tracing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from pyproj import CRS, Transformer


@dataclass(frozen=True)
class LocalFrame:
    """Local frame anchored at ``lat0``/``lon0`` (degrees, WGS84)."""

    lat0: float
    lon0: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lat0", float(self.lat0))
        object.__setattr__(self, "lon0", float(self.lon0))
        if not (-90.0 <= self.lat0 <= 90.0) or not (-180.0 <= self.lon0 <= 180.0):
            raise ValueError(f"LocalFrame origin out of range: lat0={self.lat0}, lon0={self.lon0}")

    @property
    def proj4(self) -> str:
        return (
            f"+proj=tmerc +lat_0={self.lat0!r} +lon_0={self.lon0!r} +k=1 +x_0=0 +y_0=0 "
            "+ellps=WGS84 +units=m +no_defs"
        )

    @cached_property
    def crs(self) -> CRS:
        return CRS.from_proj4(self.proj4)

    @cached_property
    def _fwd(self) -> Transformer:
        return Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)

    @cached_property
    def _inv(self) -> Transformer:
        return Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    def to_local(self, lon, lat):
        """(lon, lat) degrees -> (x, y) metres."""
        x, y = self._fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return x, y

    def to_wgs84(self, x, y):
        """(x, y) metres -> (lon, lat) degrees."""
        lon, lat = self._inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return lon, lat

    def to_dict(self) -> dict:
        return {"lat0": self.lat0, "lon0": self.lon0, "proj4": self.proj4, "axes": "x east, y north, z up; metres"}

    @classmethod
    def from_dict(cls, d: dict) -> LocalFrame:
        return cls(float(d["lat0"]), float(d["lon0"]))


def graph_to_local_xy(G: Any, frame: LocalFrame | None) -> Callable[[np.ndarray, np.ndarray], tuple]:
    """Function mapping a (networkx/osmnx) graph's coordinates to local metres."""
    from twin.errors import TwinInputError

    crs = G.graph.get("crs")
    if G.graph.get("twin_local"):
        return lambda x, y: (np.asarray(x, float), np.asarray(y, float))
    if frame is None:
        raise TwinInputError(
            "the street graph is not in the local frame and no frame was given",
            field="frame",
            fix="pass frame=LocalFrame(...) or project the graph with twin.frame.project_street_graph",
        )
    src = CRS.from_user_input(crs) if crs is not None else CRS.from_epsg(4326)
    t = Transformer.from_crs(src, frame.crs, always_xy=True)
    return lambda x, y: t.transform(np.asarray(x, float), np.asarray(y, float))


def project_street_graph(G: Any, frame: LocalFrame) -> Any:
    """Copy of an osmnx graph with node x/y, edge geometry and length in the local frame (metres).

    The original lon/lat (or source-CRS) coordinates are kept as node attributes ``lon``/``lat``.
    """
    to_local = graph_to_local_xy(G, frame)
    from shapely import LineString

    H = G.copy()
    nodes = list(H.nodes)
    if nodes:
        ox_ = np.array([H.nodes[n]["x"] for n in nodes], dtype=float)
        oy_ = np.array([H.nodes[n]["y"] for n in nodes], dtype=float)
        lx, ly = to_local(ox_, oy_)
        for n, a, b, xx, yy in zip(nodes, ox_, oy_, np.atleast_1d(lx), np.atleast_1d(ly), strict=True):
            d = H.nodes[n]
            d["lon"], d["lat"], d["x"], d["y"] = float(a), float(b), float(xx), float(yy)
    for u, v, data in H.edges(data=True):
        geom = data.get("geometry")
        if geom is not None:
            c = np.asarray(geom.coords, dtype=float)
            lx, ly = to_local(c[:, 0], c[:, 1])
            line = np.column_stack([lx, ly])
            data["geometry"] = LineString(line)
        else:
            line = np.array([[H.nodes[u]["x"], H.nodes[u]["y"]], [H.nodes[v]["x"], H.nodes[v]["y"]]])
        data["length"] = float(np.sum(np.hypot(*np.diff(line, axis=0).T)))
    H.graph["crs"] = frame.crs.to_wkt()
    H.graph["twin_local"] = True
    H.graph["twin_frame"] = frame.to_dict()
    return H
