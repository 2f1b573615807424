"""Building footprints -> a Mitsuba scene (XML + binary PLY meshes) that ``sionna.rt.load_scene`` opens (docs/architecture.md "Ingest").

Each footprint (holes included) is extruded into a closed prism: a wall quad on every edge of every ring (outer and
inner), the roof and the floor triangulated with earcut (``mapbox_earcut``) with the inner rings as holes. Outer
rings run counter-clockwise and holes clockwise seen from above, so every face normal points out of the solid
(right-hand rule). Meshes are merged into one PLY per ITU material (walls use ``material``; roofs use
``roof_material`` when the buildings table has it), plus a ground plane (two triangles at ``ground_z``).

The XML follows the scenes shipped with Sionna RT (``sionna/rt/scenes/*/*.xml``): ``<scene version="2.1.0">``,
one ``itu-radio-material`` BSDF per material with id ``mat-itu_<type>``, ``<shape type="ply">`` with
``face_normals`` true.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import mapbox_earcut
import numpy as np
import shapely
from shapely.geometry import Polygon

from twin.errors import TwinInputError
from twin.ingest.materials import check_material

DEFAULT_THICKNESS_M = 0.2  # slab thickness for the ITU transmission model, metres
SCENE_VERSION = "2.1.0"


@dataclass(frozen=True)
class SceneInfo:
    """A written scene: XML path, mesh paths, sha256 over XML + meshes, triangle count (ground included)."""

    xml_path: Path
    mesh_paths: tuple[Path, ...]
    content_hash: str
    n_triangles: int
    materials: tuple[str, ...] = ()
    n_buildings: int = 0


@dataclass(frozen=True)
class Prism:
    """An extruded footprint. ``vertices`` (N, 3) metres; faces (M, 3) vertex indices, outward winding."""

    vertices: np.ndarray
    walls: np.ndarray
    roof: np.ndarray
    floor: np.ndarray

    @property
    def faces(self) -> np.ndarray:
        return np.concatenate([self.walls, self.roof, self.floor])


def _ring_xy(ring) -> np.ndarray:
    xy = np.asarray(ring.coords, dtype=np.float64)[:, :2]
    if len(xy) > 1 and np.array_equal(xy[0], xy[-1]):
        xy = xy[:-1]
    return xy


def _signed_area2(tri_xy: np.ndarray) -> np.ndarray:
    """Twice the signed area of triangles (T, 3, 2); > 0 counter-clockwise."""
    a, b, c = tri_xy[:, 0], tri_xy[:, 1], tri_xy[:, 2]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def _triangulate(poly: Polygon, xy: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Triangles (T, 3) of the polygon with holes over the stacked ring vertices ``xy``; counter-clockwise."""
    tri = np.asarray(mapbox_earcut.triangulate_float64(xy, ends.astype(np.uint32)), dtype=np.int64).reshape(
        -1, 3
    )
    area = float(np.abs(_signed_area2(xy[tri])).sum()) / 2.0 if len(tri) else 0.0
    if abs(area - poly.area) > 1e-6 * max(poly.area, 1e-9):
        # earcut missed part of a complex ring; fall back to a constrained Delaunay triangulation of the same vertices
        tris = shapely.get_parts(shapely.constrained_delaunay_triangles(poly))
        lookup = {(float(x), float(y)): i for i, (x, y) in enumerate(xy)}
        rows = []
        for t in tris:
            c = np.asarray(t.exterior.coords)[:3]
            try:
                rows.append([lookup[(float(x), float(y))] for x, y in c])
            except KeyError:
                continue
        tri = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    if len(tri):
        neg = _signed_area2(xy[tri]) < 0
        tri[neg] = tri[neg][:, ::-1]
    return tri


def extrude_polygon(poly: Polygon, height_m: float, base_z_m: float = 0.0) -> Prism:
    """Closed prism of ``poly`` (metres, holes allowed) from ``base_z_m`` to ``base_z_m + height_m``."""
    if not height_m > 0:
        raise ValueError(f"height_m must be > 0, got {height_m}")
    poly = shapely.orient_polygons(poly)  # exterior CCW, interiors CW
    rings = [_ring_xy(poly.exterior)] + [_ring_xy(r) for r in poly.interiors]
    rings = [r for r in rings if len(r) >= 3]
    xy = np.concatenate(rings)
    n = len(xy)
    ends = np.cumsum([len(r) for r in rings])
    z0, z1 = float(base_z_m), float(base_z_m) + float(height_m)
    vertices = np.concatenate([np.column_stack([xy, np.full(n, z0)]), np.column_stack([xy, np.full(n, z1)])])
    walls = []
    start = 0
    for end in ends:
        i = np.arange(start, end)
        j = np.roll(i, -1)
        # quad b_i b_j t_j t_i; with the ring's orientation the normal (d_y, -d_x, 0) points out of the solid
        walls.append(np.column_stack([i, j, j + n]))
        walls.append(np.column_stack([i, j + n, i + n]))
        start = end
    tri = _triangulate(poly, xy, ends)
    roof = tri + n  # counter-clockwise from above: normal +z
    floor = tri[:, ::-1]  # clockwise from above: normal -z
    return Prism(vertices=vertices, walls=np.concatenate(walls), roof=roof, floor=floor)


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY: float32 x, y, z per vertex; uchar-count int32 triangles."""
    v = np.ascontiguousarray(vertices, dtype="<f4")
    f = np.empty(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    f["n"] = 3
    f["idx"] = faces
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by twin.ingest.scene\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(v.tobytes())
        fh.write(f.tobytes())


class _MeshAccumulator:
    def __init__(self) -> None:
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.n = 0

    def add(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        if len(faces) == 0:
            return
        used, inv = np.unique(faces, return_inverse=True)
        self.vertices.append(vertices[used])
        self.faces.append(inv.reshape(-1, 3) + self.n)
        self.n += len(used)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.vertices), np.concatenate(self.faces)


def _bsdf_xml(material: str, thickness_m: float, bsdf_id: str | None = None) -> str:
    return (
        f'\t<bsdf type="itu-radio-material" id={quoteattr(bsdf_id or "mat-itu_" + material)}>\n'
        f'\t\t<string name="type" value={quoteattr(material)}/>\n'
        f'\t\t<float name="thickness" value="{thickness_m:g}"/>\n'
        "\t</bsdf>\n"
    )


def _shape_xml(shape_id: str, filename: str, material: str, bsdf_id: str | None = None) -> str:
    return (
        f'\t<shape type="ply" id={quoteattr("mesh-" + shape_id)} name={quoteattr("mesh-" + shape_id)}>\n'
        f'\t\t<string name="filename" value={quoteattr(filename)}/>\n'
        '\t\t<boolean name="face_normals" value="true"/>\n'
        f'\t\t<ref id={quoteattr(bsdf_id or "mat-itu_" + material)} name="bsdf"/>\n'
        "\t</shape>\n"
    )


def write_scene(
    buildings,
    out_dir: str | Path,
    *,
    ground_bounds: tuple[float, float, float, float] | None = None,
    ground_material: str = "concrete",
    materials: Mapping[str, float] | None = None,
    ground_margin_m: float = 50.0,
    ground_z_m: float = 0.0,
    frequency_hz=None,
    ground_mesh: str | Path | None = None,
) -> SceneInfo:
    """Write ``out_dir/scene.xml`` and ``out_dir/meshes/*.ply`` for a :class:`~twin.ingest.buildings.BuildingSet`.

    ``ground_bounds``: (xmin, ymin, xmax, ymax) metres of the ground plane; default: the buildings' bounds grown
    by ``ground_margin_m``. ``materials``: slab thickness in metres per ITU type (default
    :data:`DEFAULT_THICKNESS_M`). ``frequency_hz``: when given, every material must be defined there (ITU-R
    P.2040 ranges). ``ground_mesh``: a PLY to use as the ground instead of the flat plane (e.g. the terrain of
    the bundled san_francisco scene, :attr:`~twin.ingest.bundled.BundledScene.ground_ply`). The caller makes ``out_dir`` atomic (e.g. :func:`twin.io.staging_dir`).
    """
    gdf = buildings.gdf
    out_dir = Path(out_dir)
    thickness = dict(materials or {})
    for m, t in thickness.items():
        if not (isinstance(t, int | float) and t > 0):
            raise TwinInputError(
                f"thickness {t!r} of {m!r} is not a positive number of metres",
                field="materials",
                fix="pass {material: thickness_m} with thickness_m > 0, e.g. {'concrete': 0.3}",
            )
    ground_material = check_material(ground_material, frequency_hz, field="ground_material")
    if ground_bounds is None:
        if len(gdf) == 0:
            raise TwinInputError(
                "no buildings and no ground_bounds", field="ground_bounds", fix="pass ground_bounds"
            )
        xmin, ymin, xmax, ymax = shapely.total_bounds(np.asarray(gdf["geometry_local"].values))
        ground_bounds = (
            xmin - ground_margin_m,
            ymin - ground_margin_m,
            xmax + ground_margin_m,
            ymax + ground_margin_m,
        )
    gx0, gy0, gx1, gy1 = (float(v) for v in ground_bounds)
    if not (gx0 < gx1 and gy0 < gy1):
        raise TwinInputError(
            f"ground_bounds {ground_bounds!r} is empty", field="ground_bounds", fix="xmin<xmax, ymin<ymax"
        )

    acc: dict[str, _MeshAccumulator] = {}
    has_roof_col = "roof_material" in gdf.columns
    has_base_col = "base_z_m" in gdf.columns
    checked: set[str] = set()
    n_buildings = 0
    for rec in gdf.to_dict("records"):
        wall_mat = str(rec["material"])
        roof_mat = str(rec["roof_material"]) if has_roof_col and rec.get("roof_material") else wall_mat
        for m in (wall_mat, roof_mat):
            if m not in checked:
                check_material(m, frequency_hz, field=f"material of {rec['osm_id']}")
                checked.add(m)
        h = float(rec["height_m"])
        if not h > 0:
            raise TwinInputError(
                f"height_m={h} is not positive",
                row=str(rec["osm_id"]),
                field="height_m",
                fix="drop or fix the building",
            )
        base = (
            float(rec["base_z_m"])
            if has_base_col and rec.get("base_z_m") == rec.get("base_z_m")
            else ground_z_m
        )
        geom = rec["geometry_local"]
        for poly in shapely.get_parts(geom):
            prism = extrude_polygon(poly, h, base)
            if roof_mat == wall_mat:  # one closed mesh with shared vertices
                acc.setdefault(wall_mat, _MeshAccumulator()).add(prism.vertices, prism.faces)
                continue
            acc.setdefault(wall_mat, _MeshAccumulator()).add(
                prism.vertices, np.concatenate([prism.walls, prism.floor])
            )
            acc.setdefault(roof_mat, _MeshAccumulator()).add(prism.vertices, prism.roof)
        n_buildings += 1

    mesh_dir = out_dir / "meshes"
    mesh_dir.mkdir(parents=True, exist_ok=True)
    mesh_paths: list[Path] = []
    bsdfs: list[str] = []
    shapes: list[str] = []
    n_tri = 0
    used_materials = sorted(set(acc) | {ground_material})
    for m in sorted(acc):
        bsdfs.append(_bsdf_xml(m, float(thickness.get(m, DEFAULT_THICKNESS_M))))
    # the ground gets its own BSDF id so that Sionna (which merges shapes sharing a material) keeps it a separate
    # scene object named "ground"
    ground_bsdf = f"mat-ground-itu_{ground_material}"
    bsdfs.append(
        _bsdf_xml(ground_material, float(thickness.get(ground_material, DEFAULT_THICKNESS_M)), ground_bsdf)
    )
    for m in sorted(acc):
        v, f = acc[m].arrays()
        name = f"buildings-itu_{m}"
        p = mesh_dir / f"{name}.ply"
        write_ply(p, v, f)
        mesh_paths.append(p)
        shapes.append(_shape_xml(name, f"meshes/{name}.ply", m))
        n_tri += len(f)
    gp = mesh_dir / "ground.ply"
    if ground_mesh is not None:
        import trimesh

        try:
            gm: Any = trimesh.load(ground_mesh, process=False, force="mesh")
        except Exception as e:  # noqa: BLE001
            raise TwinInputError(
                f"cannot read ground mesh ({e})", file=ground_mesh, fix="pass a PLY mesh"
            ) from None
        write_ply(gp, np.asarray(gm.vertices), np.asarray(gm.faces))
        n_tri += len(gm.faces)
    else:
        gv = np.array(
            [[gx0, gy0, ground_z_m], [gx1, gy0, ground_z_m], [gx1, gy1, ground_z_m], [gx0, gy1, ground_z_m]]
        )
        gf = np.array([[0, 1, 2], [0, 2, 3]])  # counter-clockwise: normal +z
        write_ply(gp, gv, gf)
        n_tri += 2
    mesh_paths.append(gp)
    shapes.append(_shape_xml("ground", "meshes/ground.ply", ground_material, ground_bsdf))
    xml = (
        f'<scene version="{SCENE_VERSION}">\n\n<!-- Materials (ITU-R P.2040 via Sionna RT) -->\n\n'
        + "".join(bsdfs)
        + "\n<!-- Shapes: buildings merged by material, ground plane -->\n\n"
        + "".join(shapes)
        + "</scene>\n"
    )
    xml_path = out_dir / "scene.xml"
    xml_path.write_text(xml)
    digest = hashlib.sha256()
    digest.update(xml.encode())
    for p in sorted(mesh_paths):
        digest.update(p.name.encode())
        digest.update(p.read_bytes())
    return SceneInfo(
        xml_path=xml_path,
        mesh_paths=tuple(mesh_paths),
        content_hash=digest.hexdigest(),
        n_triangles=int(n_tri),
        materials=tuple(used_materials),
        n_buildings=n_buildings,
    )


__all__ = ["DEFAULT_THICKNESS_M", "Prism", "SceneInfo", "extrude_polygon", "write_ply", "write_scene"]
