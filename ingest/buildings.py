"""Building footprints with heights and materials in the local frame (docs/architecture.md "Ingest").

:func:`buildings_from_source` turns OSM footprints (a file or a GeoDataFrame from :mod:`twin.ingest.osm`) into a
:class:`BuildingSet`: repaired, clipped, tiny ones dropped, each with a height (metres) and an ITU material, in
EPSG:4326 and in the local frame (metres, x east, y north).

Height rules, in order (``height_source``):

1. ``tag``: ``height``, else ``building:height`` ("12", "12 m", "12.5m", "40'" or "40 ft" feet, "12'6\\"",
   ranges such as "10-12" or "10;12" take the first number); values <= 0 or > 1000 m are rejected;
2. ``levels``: ``building:levels`` x ``level_height_m`` + (``roof:height``, else ``roof:levels`` x
   ``level_height_m``) + ``roof_height_m``;
3. ``default``: ``IngestConfig.default_height_m``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from twin.config import IngestConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest.materials import check_material, material_for_tags
from twin.ingest.osm import KEPT_TAGS, read_buildings_file
from twin.schema import BUILDING_COLUMNS

MAX_HEIGHT_M = 1000.0  # tallest building on Earth is 828 m; anything above is a tagging error
MAX_LEVELS = 250.0
FOOT_M = 0.3048
INCH_M = 0.0254

_NUM = r"[-+]?\d+(?:[.,]\d+)?"
_FEET_INCHES = re.compile(
    rf"^\s*({_NUM})\s*(?:'|ft|feet|foot)\s*(?:({_NUM})\s*(?:\"|''|in|inch|inches))?\s*$", re.I
)
_METRES = re.compile(rf"^\s*({_NUM})\s*(m|metre|metres|meter|meters)?\s*$", re.I)
_RANGE_SPLIT = re.compile(r"\s*(?:;|–|—|\s-\s|(?<=\d)-(?=\d)|\bto\b)\s*")


def _num(s: str) -> float:
    return float(s.replace(",", "."))


def parse_height_m(value) -> tuple[float | None, str]:
    """Parse an OSM ``height`` value to metres. Returns (metres or None, reason when None)."""
    if value is None:
        return None, "missing"
    if isinstance(value, int | float) and not isinstance(value, bool):
        h = float(value)
    else:
        s = str(value).strip().lower()
        if s in ("", "nan", "none"):
            return None, "missing"
        first = _RANGE_SPLIT.split(s)[0]  # ranges and lists: take the first value
        m = _FEET_INCHES.match(first)
        if m:
            h = _num(m.group(1)) * FOOT_M + (_num(m.group(2)) * INCH_M if m.group(2) else 0.0)
        else:
            m = _METRES.match(first)
            if not m:
                return None, f"not a height: {value!r}"
            h = _num(m.group(1))
    if not math.isfinite(h) or h <= 0.0 or h > MAX_HEIGHT_M:
        return None, f"height {value!r} outside (0, {MAX_HEIGHT_M:g}] m"
    return h, ""


def parse_levels(value) -> tuple[float | None, str]:
    """Parse ``building:levels`` / ``roof:levels`` (a count, first of a range/list). Returns (levels, reason)."""
    if value is None:
        return None, "missing"
    s = str(value).strip()
    if s.lower() in ("", "nan", "none"):
        return None, "missing"
    first = _RANGE_SPLIT.split(s)[0]
    if not re.fullmatch(_NUM, first):
        return None, f"not a level count: {value!r}"
    n = _num(first)
    if not math.isfinite(n) or n < 0 or n > MAX_LEVELS:
        return None, f"levels {value!r} outside [0, {MAX_LEVELS:g}]"
    return n, ""


def height_for_tags(tags, config: IngestConfig) -> tuple[float, str, str]:
    """(height metres, source tag|levels|default, note) by the rules in the module docstring (docs/architecture.md "Ingest")."""
    notes = []
    for key in ("height", "building:height"):
        h, why = parse_height_m(tags.get(key))
        if h is not None:
            return h, "tag", ""
        if why != "missing":
            notes.append(f"{key}: {why}")
    levels, why = parse_levels(tags.get("building:levels"))
    if levels is not None and levels > 0:
        roof, _ = parse_height_m(tags.get("roof:height"))
        if roof is None:
            roof_levels, _ = parse_levels(tags.get("roof:levels"))
            roof = (roof_levels or 0.0) * config.level_height_m
        h = levels * config.level_height_m + roof + config.roof_height_m
        if h <= MAX_HEIGHT_M:
            return h, "levels", "; ".join(notes)
    elif levels == 0:
        notes.append("building:levels=0 ignored")
    elif why != "missing":
        notes.append(f"building:levels: {why}")
    return config.default_height_m, "default", "; ".join(notes)


@dataclass(frozen=True)
class BuildingSet:
    """Buildings of one twin.

    ``gdf``: the columns of :data:`twin.schema.BUILDING_COLUMNS` (``geometry`` EPSG:4326, ``geometry_local`` a
    shapely column in metres) and optionally ``roof_material`` (bare ITU type of the roof; the scene writer uses
    ``material`` when absent) and ``base_z_m`` (bundled scenes: the building's base above the scene origin).
    ``report``: counts (read, kept, repaired, dropped_invalid, dropped_tiny, clipped, clipped_out, ...) and
    ``reasons`` {osm_id: why} for every repaired or dropped object.
    """

    gdf: gpd.GeoDataFrame
    report: dict = field(default_factory=dict)
    frame: LocalFrame | None = None

    def __len__(self) -> int:
        return len(self.gdf)

    def bounds_local(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the local footprints, metres."""
        if len(self.gdf) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        b = shapely.total_bounds(np.asarray(self.gdf["geometry_local"].values))
        return tuple(float(v) for v in b)  # type: ignore[return-value]


def _polygonal(g: BaseGeometry | None) -> BaseGeometry | None:
    """Polygonal part of a geometry (drops lines/points that make_valid may produce); None when empty."""
    if g is None or g.is_empty:
        return None
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = []
    for p in parts:
        polys.extend(shapely.get_parts(p))
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _drop_small_parts(g: BaseGeometry, min_area: float) -> BaseGeometry | None:
    if g.geom_type == "Polygon":
        return g if g.area >= min_area else None
    parts = [p for p in g.geoms if p.area >= min_area]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _to_local(geoms: np.ndarray, frame: LocalFrame) -> np.ndarray:
    def fn(xy):
        x, y = frame.to_local(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, fn)


def _to_wgs84(geoms: np.ndarray, frame: LocalFrame) -> np.ndarray:
    def fn(xy):
        lon, lat = frame.to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, fn)


def _load(source) -> gpd.GeoDataFrame:
    if isinstance(source, gpd.GeoDataFrame):
        gdf = source
        if "osm_id" not in gdf.columns:
            from twin.ingest.osm import from_geoframe

            gdf = from_geoframe(gdf, "GeoDataFrame")
        elif gdf.crs is None:
            gdf = gdf.set_crs("EPSG:4326")
        elif gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs("EPSG:4326")
        return gdf
    if isinstance(source, str | Path):
        return read_buildings_file(source)
    raise TwinInputError(
        f"buildings source must be a file path or a GeoDataFrame, got {type(source).__name__}",
        field="source",
        fix="pass a .osm/.osm.pbf/.geojson/.parquet path or the result of twin.ingest.osm.read_*",
    )


def buildings_from_source(
    source,
    frame: LocalFrame,
    config: IngestConfig | None = None,
    *,
    clip: BaseGeometry | None = None,
    strict: bool = False,
    frequency_hz=None,
) -> BuildingSet:
    """Footprints of ``source`` (path or GeoDataFrame from :mod:`twin.ingest.osm`) as a :class:`BuildingSet`.

    ``clip``: a shapely polygon in lon/lat degrees; footprints are cut to it (those outside are dropped).
    ``strict``: every dropped geometry raises :class:`TwinInputError` naming its ``osm_id``.
    ``frequency_hz``: carrier(s) in Hz; materials must be defined there (ITU-R P.2040 ranges), else the default.
    """
    config = config or IngestConfig()
    if not isinstance(frame, LocalFrame):
        raise TwinInputError(f"frame must be a LocalFrame, got {type(frame).__name__}", field="frame")
    if clip is not None and (
        not isinstance(clip, BaseGeometry) or clip.geom_type not in ("Polygon", "MultiPolygon")
    ):
        raise TwinInputError("clip must be a shapely Polygon in lon/lat degrees", field="clip")
    default_material = check_material(config.default_material, frequency_hz, field="default_material")
    raw = _load(source)
    source_name = str(raw.attrs.get("source", source if isinstance(source, str | Path) else "GeoDataFrame"))
    reasons: dict[str, str] = {}
    counts: Counter = Counter()
    counts["read"] = len(raw)

    def drop(osm_id: str, kind: str, why: str, *, error: bool = True) -> None:
        counts[kind] += 1
        reasons[osm_id] = why
        if strict and error:
            raise TwinInputError(
                why,
                file=source_name,
                row=osm_id,
                field="geometry",
                fix="fix the footprint in OpenStreetMap or the file, or run without strict to drop it",
            )

    if strict and raw.attrs.get("skipped"):
        # objects the reader could not turn into polygons (unclosed ways, non-multipolygon relations, broken rings)
        osm_id, why = next(iter(raw.attrs["skipped"].items()))
        drop(osm_id, "dropped_invalid", f"no footprint: {why}")
    geoms = np.asarray(raw.geometry.values, dtype=object)
    local = _to_local(geoms, frame) if len(geoms) else geoms
    clip_local = _to_local(np.array([clip], dtype=object), frame)[0] if clip is not None else None
    if clip_local is not None and not clip_local.is_valid:
        clip_local = shapely.make_valid(clip_local)

    keep_rows = []
    out_local = []
    for i, (osm_id, g) in enumerate(zip(raw["osm_id"].astype(str), local, strict=True)):
        if g is None or g.is_empty:
            drop(osm_id, "dropped_invalid", "empty geometry")
            continue
        g = shapely.remove_repeated_points(g, 1e-3)
        if not g.is_valid:
            why = shapely.is_valid_reason(g)
            fixed = _polygonal(shapely.make_valid(g))
            if fixed is None or fixed.area <= 0:
                fixed = _polygonal(g.buffer(0))
            if fixed is None or fixed.is_empty or not fixed.is_valid:
                drop(osm_id, "dropped_invalid", f"invalid geometry ({why}) could not be repaired")
                continue
            counts["repaired"] += 1
            reasons[osm_id] = f"repaired: {why}"
            g = fixed
        g = _polygonal(g)
        if g is None:
            drop(osm_id, "dropped_invalid", "not a polygon")
            continue
        if clip_local is not None:
            if not g.intersects(clip_local):
                drop(osm_id, "clipped_out", "outside the clip area", error=False)
                continue
            if not clip_local.contains(g):
                cut = _polygonal(g.intersection(clip_local))
                if cut is None:
                    drop(osm_id, "clipped_out", "outside the clip area", error=False)
                    continue
                counts["clipped"] += 1
                g = cut
        g = _drop_small_parts(g, config.min_area_m2)
        if g is None:
            drop(osm_id, "dropped_tiny", f"footprint smaller than min_area_m2={config.min_area_m2:g} m^2")
            continue
        keep_rows.append(i)
        out_local.append(shapely.orient_polygons(g))  # outer rings CCW, holes CW

    kept = raw.iloc[keep_rows].reset_index(drop=True)
    out_local_arr = np.empty(len(out_local), dtype=object)
    out_local_arr[:] = out_local
    heights, hsrc, mats, msrc = [], [], [], []
    for rec in kept.to_dict("records"):
        tags = {k: rec.get(k) for k in KEPT_TAGS}
        tags = {k: (None if isinstance(v, float) and v != v else v) for k, v in tags.items()}
        h, src, note = height_for_tags(tags, config)
        heights.append(h)
        hsrc.append(src)
        counts[f"height_{src}"] += 1
        if note:
            reasons.setdefault(str(rec["osm_id"]), note)
        mc = material_for_tags(tags, default=default_material, frequency_hz=frequency_hz)
        mats.append(mc.material)
        msrc.append(mc.source)
        if mc.note:
            counts["material_fallback"] += 1
            reasons.setdefault(str(rec["osm_id"]), mc.note)
    geometry = _to_wgs84(out_local_arr, frame) if len(out_local_arr) else out_local_arr
    gdf = gpd.GeoDataFrame(
        {
            "building_id": np.arange(len(kept), dtype=np.int64),
            "osm_id": kept["osm_id"].astype(str).to_numpy() if len(kept) else np.array([], dtype=object),
            "height_m": np.asarray(heights, dtype=np.float64),
            "height_source": pd.Series(hsrc, dtype=object),
            "material": pd.Series(mats, dtype=object),
            "material_source": pd.Series(msrc, dtype=object),
            "area_m2": np.asarray(shapely.area(out_local_arr), dtype=np.float64)
            if len(out_local_arr)
            else [],
            "num_holes": np.asarray(
                [int(shapely.get_num_interior_rings(shapely.get_parts(g)).sum()) for g in out_local_arr],
                dtype=np.int32,
            ),
            "geometry_local": out_local_arr,
        },
        geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"),
    )
    gdf = gdf[list(BUILDING_COLUMNS)]
    counts["kept"] = len(gdf)
    report: dict[str, Any] = {
        k: int(counts.get(k, 0))
        for k in ("read", "kept", "repaired", "dropped_invalid", "dropped_tiny", "clipped", "clipped_out")
    }
    report.update({k: int(v) for k, v in counts.items() if k not in report})
    for k in ("building_objects", "building_ways", "building_relations"):
        if k in raw.attrs:
            report[k] = int(raw.attrs[k])
    if raw.attrs.get("skipped"):
        report["skipped_by_reader"] = len(raw.attrs["skipped"])
        for k, v in raw.attrs["skipped"].items():
            reasons.setdefault(k, v)
    report["source"] = source_name
    report["reasons"] = reasons
    return BuildingSet(gdf=gdf, report=report, frame=frame)


def write_buildings_parquet(buildings: BuildingSet, path: str | Path) -> Path:
    """Write ``buildings.parquet`` (GeoParquet, EPSG:4326; ``geometry_local`` as WKB), atomically."""
    from twin.io import atomic_path

    path = Path(path)
    df = buildings.gdf.copy()
    df["geometry_local"] = shapely.to_wkb(np.asarray(df["geometry_local"].values, dtype=object))
    with atomic_path(path) as tmp:
        gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:4326").to_parquet(tmp, index=False)
    return path


def read_buildings_parquet(path: str | Path) -> BuildingSet:
    """Inverse of :func:`write_buildings_parquet` (``report`` is empty)."""
    path = Path(path)
    try:
        gdf = gpd.read_parquet(path)
    except Exception as e:  # noqa: BLE001
        raise TwinInputError(f"cannot read buildings ({e})", file=path, fix="rebuild the twin") from None
    gdf["geometry_local"] = shapely.from_wkb(np.asarray(gdf["geometry_local"].values, dtype=object))
    return BuildingSet(gdf=gdf, report={})


__all__ = [
    "BuildingSet",
    "buildings_from_source",
    "height_for_tags",
    "parse_height_m",
    "parse_levels",
    "read_buildings_parquet",
    "write_buildings_parquet",
]
