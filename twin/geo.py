"""GeoParquet for tables of points in the local frame (receivers): a WKB ``geometry`` column in EPSG:4326 beside
x, y, z, and the ``geo`` file metadata of GeoParquet 1.1 (https://geoparquet.org/releases/v1.1.0/).

The local frame (``twin.frame.LocalFrame``: x east, y north, z up, metres, an azimuthal-equidistant projection
around the build's origin) stays the coordinate system of the computation; the geometry is for GIS tools
(geopandas, DuckDB spatial, QGIS) and is computed from x, y, never read back into x, y.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pyarrow as pa

GEOPARQUET_VERSION = "1.1.0"
GEOMETRY_COLUMN = "geometry"


@lru_cache(maxsize=1)
def _wgs84_projjson() -> dict:
    from pyproj import CRS

    return CRS.from_epsg(4326).to_json_dict()


def geo_metadata(lon: np.ndarray, lat: np.ndarray, *, column: str = GEOMETRY_COLUMN) -> dict:
    """The GeoParquet ``geo`` metadata of a WKB point column in EPSG:4326 (degrees, lon/lat order)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    col: dict = {"encoding": "WKB", "geometry_types": ["Point"], "crs": _wgs84_projjson()}
    if len(lon):
        col["bbox"] = [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]
    return {"version": GEOPARQUET_VERSION, "primary_column": column, "columns": {column: col}}


def with_point_geometry(table: pa.Table, frame) -> pa.Table:
    """``table`` (columns x, y in the local frame, metres) with a WKB ``geometry`` of EPSG:4326 points appended
    and the GeoParquet ``geo`` key added to the schema metadata (other metadata kept)."""
    import shapely

    x = np.asarray(table.column("x").to_numpy(zero_copy_only=False), dtype=float)
    y = np.asarray(table.column("y").to_numpy(zero_copy_only=False), dtype=float)
    lon, lat = frame.to_wgs84(x, y)
    wkb = shapely.to_wkb(shapely.points(np.c_[lon, lat])) if len(x) else np.array([], dtype=object)
    if GEOMETRY_COLUMN in table.column_names:
        table = table.drop_columns([GEOMETRY_COLUMN])
    meta = dict(table.schema.metadata or {})
    table = table.append_column(pa.field(GEOMETRY_COLUMN, pa.binary()), pa.array(list(wkb), pa.binary()))
    meta[b"geo"] = json.dumps(geo_metadata(lon, lat)).encode()
    return table.replace_schema_metadata(meta)


def without_geometry(table: pa.Table) -> pa.Table:
    """The same table without its GeoParquet geometry column (for the stages that compute in x, y, z)."""
    return table.drop_columns([GEOMETRY_COLUMN]) if GEOMETRY_COLUMN in table.column_names else table


__all__ = ["GEOMETRY_COLUMN", "geo_metadata", "with_point_geometry", "without_geometry"]
