"""Read OpenStreetMap building footprints (docs/architecture.md "Ingest"): local .osm / .osm.pbf / GeoJSON / GeoParquet, or osmnx.

Every reader returns a GeoDataFrame in EPSG:4326 with one row per building footprint:

* ``osm_id``: ``'way/123'`` or ``'relation/45'`` (OSM element type and id);
* ``geometry``: Polygon or MultiPolygon in lon/lat degrees; multipolygon relations keep inner rings (courtyards)
  as holes;
* the raw tags the height and material rules need (:data:`KEPT_TAGS`), as strings (missing -> ``None``).

``building:part`` objects without a ``building`` tag are not buildings and are skipped. ``gdf.attrs`` records the
source (``source``), the number of building ways and relations found in the input (``building_objects``,
``building_ways``, ``building_relations``) so a caller can check that the footprints read cover them, and the
objects skipped with the reason (``skipped``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from shapely import wkb as shapely_wkb

from twin.errors import TwinInputError

KEPT_TAGS = (
    "building",
    "height",
    "building:height",
    "building:levels",
    "roof:levels",
    "roof:height",
    "min_height",
    "building:min_level",
    "building:material",
    "building:facade:material",
    "facade:material",
    "name",
)
OSM_COLUMNS = ("osm_id", *KEPT_TAGS, "geometry")


def is_building(tags) -> bool:
    """An OSM object is a building when it has a ``building`` tag other than ``no`` (``building:part`` is not)."""
    v = tags.get("building")
    return v is not None and str(v).strip().lower() not in ("no", "", "none", "nan")


def _empty_frame(attrs: dict) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame({c: [] for c in OSM_COLUMNS[:-1]}, geometry=[], crs="EPSG:4326")
    gdf.attrs.update(attrs)
    return gdf


def _frame(rows: list[dict], attrs: dict) -> gpd.GeoDataFrame:
    if not rows:
        return _empty_frame(attrs)
    gdf = gpd.GeoDataFrame(rows, columns=list(OSM_COLUMNS), geometry="geometry", crs="EPSG:4326")
    gdf.attrs.update(attrs)
    return gdf


# ------------------------------------------------------------------------------------------------ pyosmium


def read_osm_xml_or_pbf(path: str | Path) -> gpd.GeoDataFrame:
    """Building areas of an ``.osm`` (XML) or ``.osm.pbf`` file through pyosmium's area assembler.

    Closed ways become polygons; ``type=multipolygon`` relations become (multi)polygons with their inner rings as
    holes. Unclosed building ways and relations whose rings do not close are counted in ``attrs['skipped']``.
    """
    import osmium

    path = Path(path)
    if not path.is_file():
        raise TwinInputError(
            "file not found", file=path, fix="pass an existing .osm or .osm.pbf file to --osm-file"
        )
    factory = osmium.geom.WKBFactory()
    rows: list[dict] = []
    n_ways = n_rels = 0
    seen_ways: set[int] = set()
    seen_rels: set[int] = set()
    skipped: dict[str, str] = {}
    way_rings: dict[int, tuple] = {}
    try:
        fp = osmium.FileProcessor(str(path)).with_areas(osmium.filter.KeyFilter("building"))
        obj: Any  # osmium yields Node | Way | Relation | Area; the is_*() checks below select the kind
        for obj in fp:
            if obj.is_way():
                if is_building(obj.tags):
                    n_ways += 1
                    if not obj.is_closed():
                        skipped[f"way/{obj.id}"] = "unclosed way"
                    else:
                        # kept so that a ring the area assembler rejects (self-intersection) can be repaired later
                        try:
                            ring = shapely_wkb.loads(factory.create_linestring(obj), hex=True)
                            way_rings[obj.id] = (ring, {k: obj.tags.get(k) for k in KEPT_TAGS})
                        except Exception as e:  # noqa: BLE001 - missing node locations
                            skipped[f"way/{obj.id}"] = f"no geometry: {e}"
                continue
            if obj.is_relation():
                if is_building(obj.tags):
                    n_rels += 1
                    if obj.tags.get("type") not in ("multipolygon", "building"):
                        skipped[f"relation/{obj.id}"] = (
                            f"relation type {obj.tags.get('type')!r} is not a multipolygon"
                        )
                continue
            if not obj.is_area() or not is_building(obj.tags):
                continue
            osm_id = f"{'way' if obj.from_way() else 'relation'}/{obj.orig_id()}"
            try:
                geom = shapely_wkb.loads(factory.create_multipolygon(obj), hex=True)
            except Exception as e:  # noqa: BLE001 - osmium raises RuntimeError/InvalidLocationError on broken rings
                skipped[osm_id] = f"area not built: {e}"
                continue
            if len(geom.geoms) == 1:
                geom = geom.geoms[0]
            (seen_ways if obj.from_way() else seen_rels).add(obj.orig_id())
            row = {"osm_id": osm_id, "geometry": geom}
            for k in KEPT_TAGS:
                row[k] = obj.tags.get(k)
            rows.append(row)
    except TwinInputError:
        raise
    except Exception as e:  # noqa: BLE001 - libosmium raises plain RuntimeError on corrupt input
        raise TwinInputError(
            f"cannot read OSM data ({type(e).__name__}: {e})",
            file=path,
            fix="check that the file is a complete .osm (XML) or .osm.pbf extract, e.g. re-download it",
        ) from None
    for wid, (ring, tags) in way_rings.items():
        # closed building ways the area assembler rejected: hand the raw ring on (invalid; repaired or dropped by
        # twin.ingest.buildings with a reason)
        if wid in seen_ways or len(ring.coords) < 4:
            continue
        skipped.pop(f"way/{wid}", None)
        rows.append({"osm_id": f"way/{wid}", "geometry": shapely.Polygon(ring.coords), **tags})
    attrs = {
        "source": str(path),
        "building_ways": n_ways,
        "building_relations": n_rels,
        "building_objects": n_ways + n_rels,
        "skipped": skipped,
    }
    return _frame(rows, attrs)


# ------------------------------------------------------------------------------------ GeoJSON / GeoParquet


def _osm_id_from_row(row, i: int) -> str:
    for key in ("osm_id", "@id", "id"):
        v = row.get(key)
        if v is not None and str(v) not in ("", "nan", "None"):
            s = str(v)
            if "/" in s:
                return s
            elem = row.get("element") or row.get("element_type") or row.get("osm_type") or "way"
            return f"{elem}/{s}"
    return f"feature/{i}"


def from_geoframe(raw: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    """Normalise a GeoDataFrame of OSM features (osmnx, GeoJSON, GeoParquet) to the reader's layout."""
    if raw.crs is None:
        raw = raw.set_crs("EPSG:4326")
    elif raw.crs.to_epsg() != 4326:
        raw = raw.to_crs("EPSG:4326")
    if isinstance(raw.index, pd.MultiIndex) and list(raw.index.names)[:2] == ["element", "id"]:
        raw = raw.reset_index()
    has_building_col = "building" in raw.columns
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    n_ways = n_rels = 0
    records = raw.to_dict("records")
    for i, rec in enumerate(records):
        osm_id = _osm_id_from_row(rec, i)
        if has_building_col and not is_building(
            {"building": rec.get("building") if isinstance(rec.get("building"), str) else None}
        ):
            continue
        if osm_id.startswith("relation/"):
            n_rels += 1
        else:
            n_ways += 1
        geom = rec.get("geometry")
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            skipped[osm_id] = f"geometry is {None if geom is None else geom.geom_type}, not a polygon"
            continue
        row = {"osm_id": osm_id, "geometry": geom}
        for k in KEPT_TAGS:
            v = rec.get(k)
            row[k] = None if v is None or (isinstance(v, float) and v != v) else str(v)
        if row["building"] is None:
            row["building"] = "yes"
        rows.append(row)
    attrs = {
        "source": source,
        "building_ways": n_ways,
        "building_relations": n_rels,
        "building_objects": n_ways + n_rels,
        "skipped": skipped,
    }
    return _frame(rows, attrs)


def read_geojson(path: str | Path) -> gpd.GeoDataFrame:
    """Building polygons of a GeoJSON FeatureCollection (properties hold OSM tags and ``osm_id`` or ``@id``)."""
    path = Path(path)
    if not path.is_file():
        raise TwinInputError("file not found", file=path, fix="pass an existing GeoJSON file")
    try:
        raw = gpd.read_file(path)
    except Exception as e:  # noqa: BLE001 - pyogrio raises several types on corrupt input
        raise TwinInputError(
            f"cannot read GeoJSON ({type(e).__name__}: {e})", file=path, fix="check that it is valid GeoJSON"
        ) from None
    return from_geoframe(raw, str(path))


def read_geoparquet(path: str | Path) -> gpd.GeoDataFrame:
    """Building polygons of a GeoParquet file (columns: OSM tags, ``osm_id``, geometry)."""
    path = Path(path)
    if not path.is_file():
        raise TwinInputError("file not found", file=path, fix="pass an existing GeoParquet file")
    try:
        raw = gpd.read_parquet(path)
    except Exception as e:  # noqa: BLE001
        raise TwinInputError(
            f"cannot read GeoParquet ({type(e).__name__}: {e})",
            file=path,
            fix="check that it is a GeoParquet file with a 'geometry' column",
        ) from None
    return from_geoframe(raw, str(path))


# Suffix -> reader. Longest suffix wins (".osm.pbf" before ".pbf").
READERS: dict[str, Callable[[Path], gpd.GeoDataFrame]] = {
    ".osm.pbf": read_osm_xml_or_pbf,
    ".pbf": read_osm_xml_or_pbf,
    ".osm": read_osm_xml_or_pbf,
    ".osm.xml": read_osm_xml_or_pbf,
    ".geojson": read_geojson,
    ".json": read_geojson,
    ".parquet": read_geoparquet,
    ".geoparquet": read_geoparquet,
}


def check_lonlat_bounds(gdf: gpd.GeoDataFrame, path: str | Path) -> gpd.GeoDataFrame:
    """``gdf`` unchanged when its coordinates are WGS84 degrees (lon -180..180, lat -90..90), else TwinInputError."""
    if len(gdf) == 0:
        return gdf
    import numpy as np

    w, s, e, n = (float(v) for v in gdf.total_bounds)
    if not (np.isfinite([w, s, e, n]).all() and -180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise TwinInputError(
            f"coordinates are not WGS84 longitude/latitude degrees (bounds {w:g}, {s:g}, {e:g}, {n:g})",
            file=path,
            field="coordinates",
            fix="write [longitude, latitude] in degrees (EPSG:4326): reproject projected coordinates, and check the order",
        )
    return gdf


def read_buildings_file(path: str | Path) -> gpd.GeoDataFrame:
    """Dispatch on the file suffix (:data:`READERS`)."""
    path = Path(path)
    name = path.name.lower()
    for suffix in sorted(READERS, key=len, reverse=True):
        if name.endswith(suffix):
            return check_lonlat_bounds(READERS[suffix](path), path)
    raise TwinInputError(
        "unknown building file type",
        file=path,
        fix=f"use one of: {', '.join(sorted(READERS))}",
    )


# ------------------------------------------------------------------------------------------------- online


def default_cache_dir() -> Path:
    """osmnx HTTP cache (:func:`twin.net.cache_dir`)."""
    from twin.net import cache_dir

    return cache_dir()


def read_osm_online(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    cache_dir: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """Buildings from the Overpass API through osmnx, by ``place`` name or ``bbox`` = (W, S, E, N) degrees.

    Responses are cached in :func:`default_cache_dir`. A failed request raises :class:`TwinInputError` that
    points at ``--offline`` and ``--osm-file``.
    """
    if (place is None) == (bbox is None):
        raise TwinInputError(
            "give exactly one of place or bbox", field="place/bbox", fix="use --place or --bbox"
        )
    if bbox is not None:
        if len(bbox) != 4:
            raise TwinInputError(
                f"bbox needs 4 numbers, got {bbox!r}", field="bbox", fix="--bbox W,S,E,N in degrees"
            )
        w, s, e, n = (float(v) for v in bbox)
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise TwinInputError(
                f"bbox {bbox!r} is not W,S,E,N with W<E and S<N",
                field="bbox",
                fix="--bbox W,S,E,N in degrees",
            )
    from twin.net import osmnx_session

    what = f"place {place!r}" if place is not None else f"bbox {bbox!r}"
    try:
        with osmnx_session(cache_dir) as osmnx:
            if place is not None:
                raw = osmnx.features_from_place(place, tags={"building": True})
            else:
                raw = osmnx.features_from_bbox((w, s, e, n), tags={"building": True})
    except Exception as e:  # noqa: BLE001 - network, Overpass and geocoder errors all mean "no data"
        raise TwinInputError(
            f"OpenStreetMap request for {what} failed ({type(e).__name__}: {e})",
            field="place" if place is not None else "bbox",
            fix="check the network and the place name, or build offline: --offline (bundled scene) or "
            "--osm-file FILE.osm.pbf (a local extract)",
        ) from None
    return from_geoframe(raw, f"osmnx:{what}")


def attrs_json(gdf: gpd.GeoDataFrame) -> str:
    """The reader's ``attrs`` as JSON (for the manifest)."""
    return json.dumps(gdf.attrs, sort_keys=True, default=str)


__all__ = [
    "KEPT_TAGS",
    "READERS",
    "default_cache_dir",
    "is_building",
    "read_buildings_file",
    "read_geojson",
    "read_geoparquet",
    "read_osm_online",
    "read_osm_xml_or_pbf",
]
