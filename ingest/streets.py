"""The street network of an area: where receivers stand (``[receivers] area = "streets"``) and what routes follow.

- An ``.osm`` / ``.osm.pbf`` input: its own highway ways (:func:`read_osm_streets`, pyosmium with node locations),
  read at ingest and written as ``streets.parquet``.
- An online source (``--place``, ``--bbox``, an online city preset): the OSM walk network of the area
  (:func:`street_graph_from_osm`, osmnx, cached), its edges written as ``streets.parquet`` at ingest.

``streets.parquet`` is GeoParquet: ``geometry`` (LineString, EPSG:4326), ``geometry_local`` (WKB LineString in the
local frame, metres), ``osm_id``, ``highway``, ``name``. The trace stage never goes online: it reads this file
(:func:`twin.render.receivers.make_receivers`). Ways that are not where people are outdoors are left out
(:data:`EXCLUDED_HIGHWAYS`, tunnels, indoor corridors, ``access``/``foot`` = no/private).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError
from twin.frame import LocalFrame, project_street_graph

#: highway values that are not streets a person stands on (motorways, proposals, ...), as osmnx's walk filter
EXCLUDED_HIGHWAYS = frozenset({
    "motorway", "motorway_link", "proposed", "construction", "abandoned", "disused", "platform", "raceway",
    "bus_guideway", "escape", "elevator", "corridor", "steps_indoor", "no", "razed", "planned",
})
STREET_COLUMNS = ("osm_id", "highway", "name", "geometry")


def is_street(tags: Any) -> bool:
    """An OSM way is a street receivers may stand on: a ``highway`` not in :data:`EXCLUDED_HIGHWAYS`, not in a
    tunnel or indoors, and not closed to pedestrians."""
    hw = tags.get("highway")
    if hw is None or hw in EXCLUDED_HIGHWAYS:
        return False
    if tags.get("tunnel") not in (None, "no") or tags.get("indoor") not in (None, "no"):
        return False
    if tags.get("covered") in ("yes",) or tags.get("location") in ("underground",):
        return False
    if tags.get("access") in ("no", "private") or tags.get("foot") in ("no", "private"):
        return tags.get("foot") in ("yes", "designated", "permissive")
    return True


def read_osm_streets(path: str | Path) -> Any:
    """The street ways (:func:`is_street`) of an ``.osm`` / ``.osm.pbf`` file as a GeoDataFrame (EPSG:4326
    LineStrings; columns :data:`STREET_COLUMNS`); ``attrs['highway_ways']`` counts the highway ways seen."""
    import geopandas as gpd
    import osmium
    from shapely import wkb as shapely_wkb

    path = Path(path)
    factory = osmium.geom.WKBFactory()
    rows: list[dict] = []
    seen = skipped = 0
    try:
        fp = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
              .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)).with_filter(osmium.filter.KeyFilter("highway")))
        w: Any  # the filters above leave ways only
        for w in fp:
            seen += 1
            if not is_street(w.tags):
                skipped += 1
                continue
            try:
                geom = shapely_wkb.loads(factory.create_linestring(w), hex=True)
            except Exception:  # noqa: BLE001 - a way with missing node locations or one node
                skipped += 1
                continue
            rows.append({"osm_id": f"way/{w.id}", "highway": w.tags.get("highway"), "name": w.tags.get("name"),
                         "geometry": geom})
    except Exception as e:  # noqa: BLE001 - libosmium raises plain RuntimeError on corrupt input
        raise TwinInputError(
            f"cannot read the street ways ({type(e).__name__}: {e})", file=path,
            fix="check that the file is a complete .osm (XML) or .osm.pbf extract, e.g. re-download it",
        ) from None
    gdf = gpd.GeoDataFrame(rows or {c: [] for c in STREET_COLUMNS[:-1]}, geometry="geometry" if rows else [], crs="EPSG:4326")
    gdf.attrs.update({"source": f"highway ways of {path.name}", "highway_ways": seen, "skipped": skipped})
    return gdf


def streets_from_graph(G: Any, frame: LocalFrame) -> Any:
    """The edges of a projected street graph (:func:`street_graph_from_osm`) as street LineStrings (EPSG:4326)."""
    import geopandas as gpd
    import numpy as np
    import shapely

    rows = []
    seen: set[tuple] = set()
    for u, v, data in G.edges(data=True):
        key = (min(u, v), max(u, v), data.get("osmid") if not isinstance(data.get("osmid"), list) else tuple(data["osmid"]))
        if key in seen:
            continue
        seen.add(key)
        geom = data.get("geometry")
        c = (np.asarray(geom.coords, float)[:, :2] if geom is not None
             else np.array([[G.nodes[u]["x"], G.nodes[u]["y"]], [G.nodes[v]["x"], G.nodes[v]["y"]]]))
        lon, lat = frame.to_wgs84(c[:, 0], c[:, 1])
        hw = data.get("highway")
        osmid = data.get("osmid")
        rows.append({"osm_id": f"way/{osmid[0] if isinstance(osmid, list) else osmid}",
                     "highway": hw[0] if isinstance(hw, list) else hw, "name": None if not isinstance(data.get("name"), str) else data["name"],
                     "geometry": shapely.LineString(np.column_stack([lon, lat]))})
    gdf = gpd.GeoDataFrame(rows or {c: [] for c in STREET_COLUMNS[:-1]}, geometry="geometry" if rows else [], crs="EPSG:4326")
    gdf.attrs.update({"source": "OSM walk network (osmnx)", "highway_ways": len(rows), "skipped": 0})
    return gdf


def with_local_geometry(gdf: Any, frame: LocalFrame) -> Any:
    """``gdf`` (EPSG:4326 lines) with ``geometry_local`` (shapely, local metres) beside ``geometry``."""
    import numpy as np
    import shapely

    out = gdf.copy()
    local = []
    for g in gdf.geometry:
        c = np.asarray(g.coords, float)
        x, y = frame.to_local(c[:, 0], c[:, 1])
        local.append(shapely.LineString(np.column_stack([x, y])))
    out["geometry_local"] = local
    return out


def street_graph_from_osm(
    bbox_lonlat: Sequence[float],
    frame: LocalFrame,
    *,
    network_type: str = "walk",
    cache_dir: str | Path | None = None,
) -> Any:
    """Download the OSM street network of ``bbox_lonlat`` = (west, south, east, north) degrees with osmnx.

    HTTP responses are cached in ``cache_dir`` (default ``$TWIN_CACHE_DIR/osmnx`` or ``~/.cache/twin/osmnx``).
    Returns the graph projected to ``frame`` (:func:`project_street_graph`). Network failures raise
    :class:`TwinInputError` suggesting ``--offline``.
    """
    fix_bbox = "pass (west, south, east, north) in degrees with west < east and south < north"
    try:
        w, s, e, n = (float(v) for v in bbox_lonlat)
    except (TypeError, ValueError):
        raise TwinInputError(
            f"bbox must be 4 numbers, got {bbox_lonlat!r}", field="bbox_lonlat", fix=fix_bbox
        ) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise TwinInputError(f"invalid bbox {bbox_lonlat!r}", field="bbox_lonlat", fix=fix_bbox)
    if not isinstance(frame, LocalFrame):
        raise TwinInputError(
            "frame must be a twin.frame.LocalFrame", field="frame", fix="pass the build's LocalFrame"
        )

    import osmnx as ox
    import requests

    from twin.net import osmnx_session

    errors: list[type[BaseException]] = [requests.exceptions.RequestException, OSError]
    for name in ("InsufficientResponseError", "ResponseStatusCodeError"):
        cls = getattr(getattr(ox, "_errors", None), name, None)
        if cls is not None:
            errors.append(cls)
    try:
        with osmnx_session(cache_dir):
            G = ox.graph_from_bbox((w, s, e, n), network_type=network_type)
    except tuple(errors) as exc:
        raise TwinInputError(
            f"could not download the OSM street network for bbox {(w, s, e, n)}: {type(exc).__name__}: {exc}",
            field="street_graph",
            fix="check the network connection, or run with --offline to build routes over the open space",
        ) from None
    return project_street_graph(G, frame)


__all__ = ["EXCLUDED_HIGHWAYS", "STREET_COLUMNS", "is_street", "read_osm_streets", "street_graph_from_osm",
           "streets_from_graph", "with_local_geometry"]
