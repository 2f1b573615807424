"""The area of an ingest: one building source + one tower file -> an :class:`AreaBundle` -> files on disk.

``load_area`` resolves the local frame and the area, reads and cleans buildings and towers, and puts masts on
rooftops; ``write_bundle`` writes scene/, buildings.parquet, towers.parquet and previews/top.png into a
directory the caller later moves into place atomically.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely
from shapely.geometry import box

from twin.config import IngestConfig, config_hash, to_dict
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest.cities import CityPreset, get_city
from twin.ingest.source import BuildingSource
from twin.io import atomic_path
from twin.schema import file_metadata

log = logging.getLogger(__name__)

OSM_LICENCE = "OpenStreetMap data, ODbL 1.0, (c) OpenStreetMap contributors"
SIONNA_LICENCE = "Sionna RT scene, Apache-2.0 (NVIDIA)"
USER_TOWERS_LICENCE = "supplied by the user: the licence of the tower file's own source applies (CellMapper, OpenCelliD CC BY-SA 4.0, ...)"
SHIPPED_TOWERS_LICENCE = "synthetic sites written for twin, CC0-1.0"


def _towers_licence(preset: CityPreset, towers_path: Path) -> str:
    shipped = preset.towers_path()
    if shipped is not None and Path(towers_path).resolve() == shipped.resolve():
        return SHIPPED_TOWERS_LICENCE
    return USER_TOWERS_LICENCE


@dataclass
class AreaBundle:
    frame: LocalFrame
    buildings: Any  # twin.ingest.buildings.BuildingSet
    towers: Any  # twin.ingest.towers.TowerTable
    area_bbox_wgs84: tuple[float, float, float, float]
    bounds_local: tuple[float, float, float, float]
    building_source: str
    scene_source: str  # "extruded" or "bundled:<name>"
    bundled_xml: str | None = None
    towers_note: str = ""
    licences: dict[str, str] = field(default_factory=dict)
    streets: Any = None  # GeoDataFrame of street LineStrings (EPSG:4326, twin.ingest.streets) or None


@dataclass(frozen=True)
class SceneResult:
    xml_path: str
    content_hash: str


def load_area(src: BuildingSource, towers_path: Path, config: IngestConfig, *, strict: bool = False) -> AreaBundle:
    """Buildings, towers and frame for ``src``."""
    from twin.ingest.buildings import buildings_from_source
    from twin.ingest.towers import read_towers

    if src.kind == "city" and src.offline:
        return _load_bundled(src.value, towers_path, config, strict=strict)
    from twin.ingest.osm import read_buildings_file, read_osm_online

    if src.kind == "city":
        # the embedded default: with no network a city preset uses the scene shipped in sionna-rt (docs/architecture.md "Ingest")
        try:
            raw = read_osm_online(bbox=get_city(src.value).bbox)
        except TwinInputError as e:
            log.warning("OpenStreetMap is not reachable (%s); using the %s scene shipped with sionna-rt "
                        "(pass --offline to skip this attempt)", e.message.split(" (")[0], src.value)
            bundle = _load_bundled(src.value, towers_path, config, strict=strict)
            bundle.building_source += " (fallback: OpenStreetMap unreachable)"
            return bundle

    clip_wgs = None
    if src.kind == "file":
        raw = read_buildings_file(src.value)
        building_source = f"file:{Path(src.value).name}"
    elif src.kind == "city":
        clip_wgs = box(*get_city(src.value).bbox)
        building_source = f"osmnx:city:{src.value}"
    elif src.kind == "place":
        raw = read_osm_online(place=src.value)
        building_source = f"osmnx:place:{src.value}"
    else:
        bbox = src.bbox
        raw = read_osm_online(bbox=bbox)
        clip_wgs = box(*bbox)
        building_source = f"osmnx:bbox:{','.join(f'{v:.6f}' for v in bbox)}"
    if len(raw) == 0:
        raise TwinInputError("no buildings in the area", file=src.value, fix="choose a larger area or another file")
    w, s, e_, n = (clip_wgs.bounds if clip_wgs is not None else tuple(raw.total_bounds))
    frame = LocalFrame(round((s + n) / 2, 7), round((w + e_) / 2, 7))
    area = clip_wgs if clip_wgs is not None else box(w, s, e_, n)
    towers = read_towers(towers_path, frame, config, strict=strict, area=area, allow_empty_area=not strict)
    _warn_if_no_towers(towers, towers_path)
    bset = buildings_from_source(raw, frame, config, clip=clip_wgs, strict=strict, frequency_hz=None)
    if len(bset.gdf) == 0:
        raise TwinInputError("no usable buildings in the area", file=src.value, fix="choose a larger area or another file")
    x0, y0 = frame.to_local([w, e_], [s, n])
    bounds_local = (float(min(x0)), float(min(y0)), float(max(x0)), float(max(y0)))
    place_on_roofs(towers.cells, bset, config)
    streets = _load_streets(src, (w, s, e_, n), frame)
    return AreaBundle(frame, bset, towers, (w, s, e_, n), bounds_local, building_source, "extruded",
                      towers_note="", licences={"buildings": OSM_LICENCE, "towers": USER_TOWERS_LICENCE},
                      streets=streets)


def _load_streets(src: BuildingSource, bbox: tuple[float, float, float, float], frame: LocalFrame) -> Any:
    """The street network receivers stand on (:mod:`twin.ingest.streets`): an .osm/.pbf file's highway ways, the
    OSM walk network online (None when unreachable: receivers then stand near buildings), None for other files."""
    from twin.ingest import streets

    if src.kind == "file":
        if not str(src.value).lower().endswith((".osm", ".pbf", ".osm.xml")):
            return None
        gdf = streets.read_osm_streets(src.value)
    else:
        try:
            gdf = streets.streets_from_graph(streets.street_graph_from_osm(bbox, frame), frame)
        except TwinInputError as e:
            log.warning("street network unavailable (%s); receivers stand near buildings instead", e.message)
            return None
    attrs = dict(gdf.attrs)
    gdf = gdf[gdf.geometry.intersects(box(*bbox))] if len(gdf) else gdf
    if not len(gdf):
        return None
    out = streets.with_local_geometry(gdf, frame)
    out.attrs.update(attrs)
    return out


def _load_bundled(city: str, towers_path: Path, config: IngestConfig, *, strict: bool) -> AreaBundle:
    from twin.ingest.bundled import bundled_buildings, bundled_scene_info
    from twin.ingest.towers import read_towers

    preset = get_city(city)
    info = bundled_scene_info(preset.name)
    frame = info.frame  # origin = the scene's (0, 0), anchored by the landmark (docs/architecture.md "Ingest")
    # materials keep their ITU type at every carrier: outside ITU-R P.2040's ranges the tracer extrapolates the
    # fit (twin.itu, applied by twin.render.itu) and the manifest lists where it does
    bset, _ = bundled_buildings(preset.name, config, frequency_hz=None)
    b = np.array([g.bounds for g in bset.gdf["geometry_local"]])
    bounds_local = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
    lon, lat = frame.to_wgs84([bounds_local[0], bounds_local[2]], [bounds_local[1], bounds_local[3]])
    bbox = (float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1]))
    towers = read_towers(towers_path, frame, config, strict=strict, area=box(*bbox), allow_empty_area=not strict)
    _warn_if_no_towers(towers, towers_path)
    place_on_roofs(towers.cells, bset, config)
    return AreaBundle(frame, bset, towers, bbox, bounds_local, f"sionna-rt:{info.name}", f"bundled:{info.name}",
                      bundled_xml=str(info.xml_path), towers_note=preset.towers_note,
                      licences={"scene": SIONNA_LICENCE, "buildings": "recovered from the Sionna RT scene meshes",
                                "towers": _towers_licence(preset, towers_path)})


def towers_summary(towers) -> dict[str, Any]:
    """Each row's fate for the manifest: counts, kept row numbers, and every repaired/skipped row with why."""
    kept = [r.row for r in towers.reports if r.status == "kept"]
    other = [
        {"row": r.row, "status": r.status, "reason": r.reason, "field": r.field, "cell_id": r.cell_id, "fix": r.fix}
        for r in towers.reports
        if r.status != "kept"
    ]
    return {"file": towers.source_file, "layout": towers.layout, "delimiter": towers.delimiter,
            "counts": dict(towers.counts), "kept_rows": kept, "repaired_or_skipped": other}


def _warn_if_no_towers(towers, towers_path: Path) -> None:
    if len(towers.cells) == 0:
        log.warning(
            "no tower of %s lies in the area: the scene is written without towers; `twin build` needs towers "
            "inside the area (pass --towers with sites there)", towers_path,
        )


def place_on_roofs(cells: pd.DataFrame, buildings, config: IngestConfig) -> None:
    """Mast heights (docs/architecture.md "Ingest"): CSV height if given and above the roof, else roof + mast, else the default.

    Updates ``height_m``, ``height_source``, ``z`` and ``quality_flags`` of ``cells`` in place. Heights are
    metres above local ground.
    """
    if len(cells) == 0:
        return
    geoms = list(buildings.gdf["geometry_local"])
    heights = buildings.gdf["height_m"].to_numpy(dtype=float)
    tree = shapely.STRtree(geoms)
    pts = shapely.points(cells["x"].to_numpy(dtype=float), cells["y"].to_numpy(dtype=float))
    idx_pt, idx_b = tree.query(pts, predicate="within")
    roof = np.full(len(cells), np.nan)
    for i, j in zip(idx_pt, idx_b, strict=True):
        roof[i] = np.nanmax([roof[i], heights[j]])
    h = cells["height_m"].to_numpy(dtype=float) if "height_m" in cells else np.full(len(cells), np.nan)
    src = cells["height_source"].astype(str).to_numpy() if "height_source" in cells else np.array(["default"] * len(cells))
    flags = cells["quality_flags"].fillna("").astype(str).to_numpy() if "quality_flags" in cells else np.array([""] * len(cells))
    new_h, new_src, new_flags = h.copy(), src.copy(), flags.copy()
    for i in range(len(cells)):
        has_csv = src[i] == "csv" and np.isfinite(h[i])
        on_roof = np.isfinite(roof[i])
        if has_csv and (not on_roof or h[i] >= roof[i] + 0.5):
            continue
        if on_roof:
            if has_csv:
                new_flags[i] = _flag(flags[i], f"csv height {h[i]:.1f} m below roof {roof[i]:.1f} m: raised to roof + mast")
            new_h[i] = roof[i] + config.roof_mast_m
            new_src[i] = "roof"
        else:
            new_h[i] = config.default_tower_height_m
            new_src[i] = "default"
    cells["height_m"] = new_h
    cells["height_source"] = new_src
    cells["z"] = new_h
    cells["quality_flags"] = new_flags


def _flag(old: str, new: str) -> str:
    return f"{old},{new}" if old else new


def scene_dir_hash(scene_dir: Path) -> str:
    """sha256 over the scene XML and every mesh file (relative names and bytes), in sorted order."""
    h = hashlib.sha256()
    for p in sorted(scene_dir.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(scene_dir).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def write_bundle(root: Path, bundle: AreaBundle, config: IngestConfig) -> SceneResult:
    """scene/, buildings.parquet, towers.parquet, previews/top.png into ``root``."""
    from twin.ingest.preview import plot_top
    from twin.ingest.scene import write_scene

    scene_dir = root / "scene"
    if bundle.bundled_xml:
        src_dir = Path(bundle.bundled_xml).parent
        scene_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(bundle.bundled_xml, scene_dir / "scene.xml")
        shutil.copytree(src_dir / "meshes", scene_dir / "meshes")
        content_hash = scene_dir_hash(scene_dir)
    else:
        m = config.ground_margin_m
        cx, cy = bundle.towers.cells["x"].to_numpy(dtype=float), bundle.towers.cells["y"].to_numpy(dtype=float)
        b = bundle.bounds_local
        gb = (min(b[0], *cx) - m, min(b[1], *cy) - m, max(b[2], *cx) + m, max(b[3], *cy) + m) if len(cx) else (b[0] - m, b[1] - m, b[2] + m, b[3] + m)
        info = write_scene(bundle.buildings, scene_dir, ground_bounds=gb, ground_material=config.ground_material, materials=None)
        xml = Path(info.xml_path)
        if xml.name != "scene.xml":
            xml.rename(scene_dir / "scene.xml")
        content_hash = scene_dir_hash(scene_dir)
    meta = file_metadata(config_hash=config_hash(config), scene_hash=content_hash, view="buildings", config=to_dict(config))
    write_geoparquet(bundle.buildings.gdf, root / "buildings.parquet", meta)
    from twin.ingest.towers import towers_to_geodataframe

    tmeta = dict(meta)
    tmeta["twin.view"] = "towers"
    write_geoparquet(towers_to_geodataframe(bundle.towers), root / "towers.parquet", tmeta)
    if bundle.streets is not None and len(bundle.streets):
        smeta = dict(meta)
        smeta["twin.view"] = "streets"
        write_geoparquet(bundle.streets, root / "streets.parquet", smeta)
    (root / "previews").mkdir(exist_ok=True)
    plot_top(bundle.buildings, bundle.towers.cells, None, str(root / "previews" / "top.png"), title=f"{bundle.building_source}")
    return SceneResult(str(scene_dir / "scene.xml"), content_hash)


def write_geoparquet(gdf, path: Path, meta: dict[str, str]) -> None:
    """GeoParquet (EPSG:4326 ``geometry``; other shapely columns as WKB) with the project's metadata, atomically."""
    import geopandas as gpd

    gdf = gdf.copy()
    for c in gdf.columns:
        if c != gdf.geometry.name and (isinstance(gdf[c], gpd.GeoSeries) or (len(gdf) and isinstance(gdf[c].iloc[0], shapely.Geometry))):
            gdf[c] = shapely.to_wkb(np.asarray(gdf[c], dtype=object))
    with atomic_path(path) as tmp:
        gdf.to_parquet(tmp)
        t = pq.read_table(tmp)
        t = t.replace_schema_metadata({**(t.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}})
        pq.write_table(t, tmp)


__all__ = ["AreaBundle", "load_area", "place_on_roofs", "scene_dir_hash", "towers_summary", "write_bundle", "write_geoparquet"]
