"""Footprints and heights recovered from the city scenes that ship with sionna-rt (docs/architecture.md "Ingest", the offline default).

The scenes (``sionna/rt/scenes/<name>/<name>.xml``) list one or a few PLY meshes per building object, named
``<object>-itu_<material>.ply`` (etoile, munich: walls marble, roofs metal) or ``<object>-wall.ply`` /
``<object>-roof.ply`` (florence, san_francisco), plus a ground mesh (``Plane``, ``ground`` or ``Terrain``). The
PLYs are read with trimesh, not through Sionna. For each object the upward-facing triangles (roofs) are split
into connected components; each component becomes one prism: footprint = union of its triangles projected on the
ground (slightly simplified), height = its highest vertex minus the ground under the object; overlapping
components of one object keep the taller one (a tower on a podium gives the tower plus a podium with a hole).

Georeference: the scenes carry none. Each is anchored by one landmark object: the centre of that object's
meshes (bounding box in x, y, computed from the meshes) is put at the landmark's WGS84 position; x east and
y north are assumed (no rotation). The landmarks and their positions are part of the city presets
(:mod:`twin.ingest.cities`).
"""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.config import IngestConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest.buildings import BuildingSet
from twin.ingest.cities import get_city
from twin.ingest.materials import check_material, is_valid_at
from twin.schema import BUILDING_COLUMNS

GROUND_NAMES = ("plane", "ground", "terrain")
_SUFFIX = re.compile(r"^(?P<obj>.+)-(?P<part>itu_[a-z_]+|roof|wall|[0-9a-f]{6})$")
UP_NZ = 0.1  # a triangle whose unit normal has z > this faces up (roof); |z| <= this is a wall
SIMPLIFY_M = 0.05  # footprint simplification tolerance, metres


def _scenes_dir() -> Path:
    spec = importlib.util.find_spec("sionna")
    if spec is None or not spec.submodule_search_locations:
        raise TwinInputError(
            "sionna-rt is not installed",
            field="--city",
            fix="pip install sionna-rt (it ships the bundled scenes)",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "rt" / "scenes"


@dataclass(frozen=True)
class SceneShape:
    object_name: str
    part: str
    ply_path: Path
    material: str  # bare ITU type


def parse_scene_xml(xml_path: Path) -> list[SceneShape]:
    """The PLY shapes of a Mitsuba/Sionna scene XML with their ITU material types."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise TwinInputError(
            f"cannot read scene XML ({e})", file=xml_path, fix="reinstall sionna-rt"
        ) from None
    bsdf_type: dict[str, str] = {}
    for b in root.iter("bsdf"):
        t = next((s.get("value") for s in b.findall("string") if s.get("name") == "type"), None)
        bid = b.get("id")
        if bid and t:
            bsdf_type[bid] = t
    shapes = []
    for sh in root.iter("shape"):
        if sh.get("type") != "ply":
            continue
        fn = next((s.get("value") for s in sh.findall("string") if s.get("name") == "filename"), None)
        ref = next((r.get("id") for r in sh.findall("ref") if r.get("name") in ("bsdf", None)), None)
        if fn is None:
            continue
        stem = Path(fn).stem
        m = _SUFFIX.match(stem)
        obj, part = (m.group("obj"), m.group("part")) if m else (stem, "")
        shapes.append(SceneShape(obj, part, xml_path.parent / fn, bsdf_type.get(ref or "", "concrete")))
    return shapes


def _triangles(path: Path) -> np.ndarray:
    import trimesh

    m: Any = trimesh.load(path, process=False, force="mesh")
    return np.asarray(m.vertices, dtype=np.float64)[np.asarray(m.faces)]


@dataclass(frozen=True)
class BundledScene:
    """A sionna-rt scene with its georeference: ``anchor_xy`` (scene metres) sits at ``anchor_latlon`` (deg)."""

    name: str
    xml_path: Path
    anchor_xy: tuple[float, float]
    anchor_latlon: tuple[float, float]
    landmark: str = ""
    approximate: bool = False
    note: str = ""
    ground_ply: Path | None = None  # the scene's ground mesh (Plane / ground / Terrain)
    terrain: bool = (
        False  # ground mesh not flat (san_francisco): pass ground_ply to write_scene(ground_mesh=...)
    )

    @cached_property
    def frame(self) -> LocalFrame:
        """Local frame whose origin is the scene's (0, 0): scene x, y are local metres (x east, y north)."""
        at_anchor = LocalFrame(*self.anchor_latlon)
        lon, lat = at_anchor.to_wgs84(-self.anchor_xy[0], -self.anchor_xy[1])
        return LocalFrame(float(lat), float(lon))


def bundled_scene_info(city: str) -> BundledScene:
    """Path and georeference of the sionna-rt scene for ``city`` (paris/etoile, munich, florence, san_francisco)."""
    a = get_city(city)
    xml_path = _scenes_dir() / a.scene / f"{a.scene}.xml"
    if not xml_path.is_file():
        raise TwinInputError("bundled scene not found", file=xml_path, fix="pip install 'sionna-rt>=2.2'")
    tris = [_triangles(s.ply_path) for s in parse_scene_xml(xml_path) if s.object_name == a.landmark]
    if not tris:
        raise TwinInputError(f"landmark {a.landmark!r} not in the scene", file=xml_path, fix="update the landmark of the preset in twin.ingest.cities")
    xy = np.concatenate(tris).reshape(-1, 3)[:, :2]
    centre = (float((xy[:, 0].min() + xy[:, 0].max()) / 2), float((xy[:, 1].min() + xy[:, 1].max()) / 2))
    ground = [s.ply_path for s in parse_scene_xml(xml_path) if s.object_name.lower() in GROUND_NAMES]
    terrain = bool(ground) and float(np.ptp(_triangles(ground[0])[:, :, 2])) > 0.5
    return BundledScene(
        a.scene,
        xml_path,
        centre,
        (a.anchor_lat, a.anchor_lon),
        a.landmark,
        a.anchor_approximate,
        a.anchor_note,
        ground[0] if ground else None,
        terrain,
    )


def _components(tri: np.ndarray) -> list[np.ndarray]:
    """Indices of edge-connected components of triangles (T, 3, 3) after merging coincident vertices."""
    import trimesh

    m = trimesh.Trimesh(
        vertices=tri.reshape(-1, 3), faces=np.arange(len(tri) * 3).reshape(-1, 3), process=False
    )
    m.merge_vertices(digits_vertex=4)
    return [
        np.asarray(c, dtype=np.int64)
        for c in trimesh.graph.connected_components(m.face_adjacency, nodes=np.arange(len(tri)), min_len=1)
    ]


def _footprint(tri_xy: np.ndarray):
    polys = shapely.polygons(tri_xy)
    polys = polys[shapely.area(polys) > 1e-8]
    if len(polys) == 0:
        return None
    fp = shapely.union_all(polys, grid_size=1e-3)
    fp = shapely.make_valid(fp.simplify(SIMPLIFY_M))
    parts = [p for p in shapely.get_parts(fp) if p.geom_type == "Polygon" and p.area > 0]
    # drop slivers left between triangles as holes
    clean = [
        shapely.Polygon(p.exterior, [r for r in p.interiors if shapely.Polygon(r).area > 0.5]) for p in parts
    ]
    if not clean:
        return None
    return clean[0] if len(clean) == 1 else shapely.MultiPolygon(clean)


def bundled_buildings(
    city: str = "paris",
    config: IngestConfig | None = None,
    *,
    frequency_hz=None,
) -> tuple[BuildingSet, BundledScene]:
    """Buildings of a sionna-rt scene as a :class:`BuildingSet` in the scene's own frame (``height_source='scene'``).

    ``osm_id`` is the scene object name (``'<object>#<k>'`` when an object splits into several prisms);
    ``material`` is the object's wall material, ``roof_material`` its roof's; ``base_z_m`` the ground under it.
    Materials not defined at ``frequency_hz`` fall back to ``config.default_material``.
    """
    config = config or IngestConfig()
    default_material = check_material(config.default_material, frequency_hz, field="default_material")
    info = bundled_scene_info(city)
    shapes = parse_scene_xml(info.xml_path)
    ground = [s for s in shapes if s.object_name.lower() in GROUND_NAMES]
    ground_z = 0.0
    terrain = False
    if ground:
        gz = np.concatenate([_triangles(s.ply_path) for s in ground]).reshape(-1, 3)[:, 2]
        terrain = float(np.ptp(gz)) > 0.5
        ground_z = float(gz.min())
    groups: dict[str, list[SceneShape]] = defaultdict(list)
    for s in shapes:
        if s.object_name.lower() not in GROUND_NAMES:
            groups[s.object_name].append(s)

    fs = (
        []
        if frequency_hz is None
        else ([frequency_hz] if isinstance(frequency_hz, int | float) else list(frequency_hz))
    )

    def mat_ok(m: str) -> tuple[str, str]:
        if fs and not is_valid_at(m, fs):
            return default_material, "default"
        return m, "scene"

    rows: list[dict] = []
    counts: Counter = Counter()
    reasons: dict[str, str] = {}
    for obj in sorted(groups):
        tris, mats = [], []
        for s in groups[obj]:
            t = _triangles(s.ply_path)
            tris.append(t)
            mats.extend([s.material] * len(t))
        tri = np.concatenate(tris)
        mats_arr = np.asarray(mats, dtype=object)
        counts["objects"] += 1
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area2 = np.linalg.norm(n, axis=1)
        nz = np.divide(n[:, 2], area2, out=np.zeros_like(area2), where=area2 > 0)
        up = (nz > UP_NZ) & (area2 > 2e-6)
        wall = (np.abs(nz) <= UP_NZ) & (area2 > 2e-6)
        base = float(tri[:, :, 2].min()) if terrain else ground_z
        wall_area: Counter[str] = Counter()
        for m, a in zip(mats_arr[wall], area2[wall], strict=True):
            wall_area[m] += a
        wall_mat = wall_area.most_common(1)[0][0] if wall_area else Counter(mats).most_common(1)[0][0]
        if not up.any():
            counts["dropped_no_roof"] += 1
            reasons[obj] = "no upward-facing triangles"
            continue
        up_idx = np.flatnonzero(up)
        comps = []
        for c in _components(tri[up_idx]):
            idx = up_idx[c]
            fp = _footprint(tri[idx][:, :, :2])
            if fp is None:
                continue
            top = float(tri[idx][:, :, 2].max())
            roof_area: Counter[str] = Counter()
            for m, a in zip(mats_arr[idx], area2[idx], strict=True):
                roof_area[m] += a
            comps.append((top, fp, roof_area.most_common(1)[0][0]))
        comps.sort(key=lambda c: -c[0])
        taken = None
        k = 0
        for top, fp, roof_mat in comps:
            if taken is not None:
                fp = shapely.make_valid(fp.difference(taken))
                parts = [
                    p
                    for p in shapely.get_parts(fp)
                    if p.geom_type == "Polygon" and p.area >= config.min_area_m2
                ]
                if not parts:
                    continue
                fp = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
            taken = fp if taken is None else shapely.union_all([taken, fp])
            height = top - base
            if fp.area < config.min_area_m2 or height <= 0.1:
                counts["dropped_tiny"] += 1
                continue
            wm, wsrc = mat_ok(wall_mat)
            rm, _ = mat_ok(roof_mat)
            rows.append(
                {
                    "osm_id": obj if k == 0 else f"{obj}#{k}",
                    "height_m": height,
                    "height_source": "scene",
                    "material": wm,
                    "material_source": wsrc,
                    "roof_material": rm,
                    "base_z_m": base,
                    "geometry_local": shapely.orient_polygons(fp),
                }
            )
            k += 1
    frame = info.frame
    local = np.empty(len(rows), dtype=object)
    local[:] = [r["geometry_local"] for r in rows]

    def to_wgs(xy):
        lon, lat = frame.to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    df = pd.DataFrame(rows)
    df.insert(0, "building_id", np.arange(len(df), dtype=np.int64))
    df["area_m2"] = shapely.area(local)
    df["num_holes"] = np.asarray(
        [int(shapely.get_num_interior_rings(shapely.get_parts(g)).sum()) for g in local], dtype=np.int32
    )
    if len(df) == 0:
        raise TwinInputError(
            "no buildings recovered from the scene", file=info.xml_path, fix="reinstall sionna-rt"
        )
    df["geometry_local"] = local
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(shapely.transform(local, to_wgs), crs="EPSG:4326"))
    gdf = gdf[[*BUILDING_COLUMNS, "roof_material", "base_z_m"]]
    report = {
        "read": int(counts["objects"]),
        "kept": len(gdf),
        "repaired": 0,
        "dropped_invalid": int(counts["dropped_no_roof"]),
        "dropped_tiny": int(counts["dropped_tiny"]),
        "clipped": 0,
        "clipped_out": 0,
        "height_scene": len(gdf),
        "terrain": terrain,
        "ground_z_m": ground_z,
        "source": f"sionna-rt:{info.name}",
        "anchor": {
            "xy": info.anchor_xy,
            "latlon": info.anchor_latlon,
            "landmark": info.landmark,
            "approximate": info.approximate,
        },
        "reasons": reasons,
    }
    return BuildingSet(gdf=gdf, report=report, frame=frame), info


__all__ = ["BundledScene", "bundled_buildings", "bundled_scene_info", "parse_scene_xml"]
