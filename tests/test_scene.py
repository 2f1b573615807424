"""Scene writer: watertight extrusion with holes, PLY/XML output, and Sionna RT opening and tracing the scene.

Oracles: polygon area x height (prism volume), outer minus inner ring area (roof), a point just outside each
face along its normal lies outside the solid (outward winding), free-space delay d / c and the image-method
ground reflection delay sqrt(d_h^2 + (h_t + h_r)^2) / c.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely
import trimesh

from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest.buildings import buildings_from_source
from twin.ingest.scene import extrude_polygon, write_scene

C = 299_792_458.0  # m/s
FIXTURE_SCRIPT = Path(__file__).parent / "fixtures" / "make_osm_fixtures.py"


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_osm_fixtures", FIXTURE_SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FIX = _fixture_module()
COURTYARD = shapely.Polygon(
    [(30, 30), (70, 30), (70, 70), (30, 70)], [[(40, 40), (60, 40), (60, 60), (40, 60)]]
)


def _star(rng, n=9, hole=False):
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(8, 20, n)
    shell = np.column_stack([r * np.cos(ang), r * np.sin(ang)]) + rng.uniform(-200, 200, 2)
    if hole:
        c = shell.mean(axis=0)
        holes = [[tuple(c + [-2, -2]), tuple(c + [2, -2]), tuple(c + [2, 2]), tuple(c + [-2, 2])]]
        p = shapely.Polygon(shell, holes)
        if p.is_valid:
            return p
    return shapely.Polygon(shell)


def _check_prism(poly: shapely.Polygon, h: float, base: float = 0.0) -> trimesh.Trimesh:
    pr = extrude_polygon(poly, h, base)
    m = trimesh.Trimesh(pr.vertices, pr.faces, process=False)
    assert m.is_watertight and m.is_winding_consistent
    assert m.volume > 0
    assert m.volume == pytest.approx(poly.area * h, rel=1e-6)
    # roof area = polygon area (outer minus holes); the roof lies at base + h and faces up
    tri = pr.vertices[pr.roof]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(n[:, 2] > 0)
    assert 0.5 * n[:, 2].sum() == pytest.approx(poly.area, rel=1e-9)
    assert np.allclose(tri[:, :, 2], base + h)
    # outward normals: a point 1 cm out along each face normal is outside the solid, 1 cm in is inside
    fn = np.cross(
        pr.vertices[pr.faces][:, 1] - pr.vertices[pr.faces][:, 0],
        pr.vertices[pr.faces][:, 2] - pr.vertices[pr.faces][:, 0],
    )
    area2 = np.linalg.norm(fn, axis=1)
    ok = area2 > 1e-6
    fn = fn[ok] / area2[ok, None]
    cen = pr.vertices[pr.faces][ok].mean(axis=1)

    def inside(p):
        in_xy = shapely.contains_xy(poly, p[:, 0], p[:, 1])
        return in_xy & (p[:, 2] > base) & (p[:, 2] < base + h)

    assert not inside(cen + 0.01 * fn).any()
    big = area2[ok] > 1e-2  # skip slivers whose inward offset may leave a thin polygon
    assert inside(cen[big] - 0.01 * fn[big]).all()
    return m


def test_extrude_courtyard_is_a_hole():
    m = _check_prism(COURTYARD, 12.0)
    assert m.volume == pytest.approx((1600 - 400) * 12.0, rel=1e-12)
    # a vertical ray at the courtyard centre meets no roof or floor triangle; one in the solid meets both
    pr = extrude_polygon(COURTYARD, 12.0)
    tri = pr.vertices[np.concatenate([pr.roof, pr.floor])][:, :, :2]

    def hits(x, y):
        return int(sum(shapely.Polygon(t).buffer(1e-9).contains(shapely.Point(x, y)) for t in tri))

    assert hits(50, 50) == 0
    assert hits(33.3, 36.1) == 2


def test_extrude_many_shapes():
    rng = np.random.default_rng(3)
    shapes = [
        shapely.Polygon([(0, 0), (20, 0), (20, 5), (5, 5), (5, 20), (0, 20)]),  # L (concave)
        shapely.Polygon([(0, 0), (5, 0), (10, 0), (10, 10), (0, 10)]),  # collinear vertex
        shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)][::-1]),  # clockwise input
    ] + [_star(rng, hole=(i % 2 == 0)) for i in range(12)]
    for p in shapes:
        _check_prism(p, float(rng.uniform(3, 60)), base=float(rng.uniform(0, 5)))
    with pytest.raises(ValueError):
        extrude_polygon(shapes[0], 0.0)


@pytest.fixture(scope="module")
def tiny_buildings(tmp_path_factory):
    files = FIX.main(tmp_path_factory.mktemp("osm"))
    return buildings_from_source(files["pbf"], LocalFrame(*FIX.ORIGIN), frequency_hz=3.5e9)


@pytest.fixture(scope="module")
def tiny_scene(tiny_buildings, tmp_path_factory):
    out = tmp_path_factory.mktemp("scene")
    return write_scene(
        tiny_buildings,
        out,
        ground_bounds=(-60, -60, 160, 160),
        ground_material="concrete",
        frequency_hz=3.5e9,
    )


def test_written_meshes(tiny_buildings, tiny_scene):
    info = tiny_scene
    g = tiny_buildings.gdf
    n_faces = 0
    for p in info.mesh_paths:
        assert p.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
        m = trimesh.load(p, process=False, force="mesh")
        n_faces += len(m.faces)
        if p.name == "ground.ply":
            assert np.allclose(m.vertices[:, 2], 0.0) and len(m.faces) == 2
            assert m.bounds.tolist() == [[-60, -60, 0], [160, 160, 0]]
            continue
        mat = p.stem.removeprefix("buildings-itu_")
        sub = g[g["material"] == mat]
        m.merge_vertices()
        bodies = m.split(only_watertight=False)
        assert len(bodies) == sum(len(shapely.get_parts(x)) for x in sub["geometry_local"])
        for b in bodies:
            assert b.is_watertight and b.is_winding_consistent and b.volume > 0
        # float32 vertices ~100 m from the origin: volume to 1e-5
        assert m.volume == pytest.approx(float((sub["area_m2"] * sub["height_m"]).sum()), rel=1e-5)
    assert n_faces == info.n_triangles
    assert info.n_buildings == len(g)


def test_xml_and_hash(tiny_buildings, tiny_scene, tmp_path):
    root = ET.parse(tiny_scene.xml_path).getroot()
    assert root.tag == "scene" and root.get("version") == "2.1.0"
    bsdfs = {b.get("id"): b for b in root.iter("bsdf")}
    assert {"mat-itu_concrete", "mat-itu_brick", "mat-itu_glass", "mat-ground-itu_concrete"} <= set(bsdfs)
    for b in bsdfs.values():
        assert b.get("type") == "itu-radio-material"
        vals = {e.get("name"): e.get("value") for e in b}
        assert vals["thickness"] == "0.2" and b.get("id").endswith("itu_" + vals["type"])
    for sh in root.iter("shape"):
        fields = {e.get("name"): e for e in sh}
        assert sh.get("type") == "ply"
        assert fields["face_normals"].get("value") == "true"
        assert (tiny_scene.xml_path.parent / fields["filename"].get("value")).is_file()
        assert fields["bsdf"].get("id") in bsdfs
    again = write_scene(tiny_buildings, tmp_path / "a", ground_bounds=(-60, -60, 160, 160))
    assert again.content_hash == tiny_scene.content_hash
    taller = type(tiny_buildings)(
        gdf=tiny_buildings.gdf.assign(height_m=tiny_buildings.gdf["height_m"] + 1.0)
    )
    assert (
        write_scene(taller, tmp_path / "b", ground_bounds=(-60, -60, 160, 160)).content_hash
        != again.content_hash
    )
    with pytest.raises(TwinInputError):
        write_scene(tiny_buildings, tmp_path / "c", ground_material="itu_unobtainium")
    with pytest.raises(TwinInputError):
        write_scene(tiny_buildings, tmp_path / "d", ground_bounds=(10, 0, 0, 10))


# ------------------------------------------------------------------------------------------------ Sionna


@pytest.fixture(scope="module")
def rt():
    from twin.llvm import setup_mitsuba

    setup_mitsuba()
    import sionna.rt as rt

    return rt


def _trace(rt, xml, tx, rx, *, max_depth=1, refraction=False):
    scene = rt.load_scene(str(xml))
    scene.frequency = 3.5e9
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.add(rt.Transmitter("tx", position=list(map(float, tx))))
    scene.add(rt.Receiver("rx", position=list(map(float, rx))))
    paths = rt.PathSolver()(
        scene,
        max_depth=max_depth,
        samples_per_src=20_000,
        max_num_paths_per_src=2_000,
        refraction=refraction,
        seed=1,
    )
    tau = np.asarray(paths.tau.numpy()).reshape(-1)
    valid = np.asarray(paths.valid.numpy()).reshape(-1).astype(bool)
    inter = (
        np.asarray(paths.interactions.numpy()).reshape(max_depth, -1)
        if max_depth
        else np.zeros((1, len(tau)))
    )
    return scene, tau[valid], inter[:, valid]


def test_sionna_loads_and_traces(rt, tiny_scene):
    tx = np.array([-40.0, -30.0, 10.0])
    rx = np.array([120.0, -20.0, 1.5])
    scene, tau, inter = _trace(rt, tiny_scene.xml_path, tx, rx)
    assert {"ground", "buildings-itu_concrete", "buildings-itu_brick", "buildings-itu_glass"} <= set(
        scene.objects
    )
    los = (inter == 0).all(axis=0)
    assert los.sum() == 1
    d = float(np.linalg.norm(rx - tx))
    assert abs(tau[los][0] - d / C) < 0.1e-9
    # ground bounce: image of the transmitter below z = 0
    d_h = float(np.linalg.norm(rx[:2] - tx[:2]))
    d_ground = np.hypot(d_h, tx[2] + rx[2])
    assert np.min(np.abs(tau[~los] - d_ground / C)) < 0.1e-9


def test_sionna_sees_solid_buildings_and_open_courtyard(rt, tiny_scene):
    # through way/108 (x 0-20, y 80-95, 30 m tall): no line of sight without refraction
    _, tau, inter = _trace(rt, tiny_scene.xml_path, [10.0, 70.0, 5.0], [10.0, 105.0, 5.0], max_depth=0)
    assert len(tau) == 0
    # from above the courtyard of relation/201 into it: the hole is open to the sky in the mesh
    tx, rx = np.array([50.0, 50.0, 40.0]), np.array([50.0, 50.0, 1.5])
    _, tau, inter = _trace(rt, tiny_scene.xml_path, tx, rx, max_depth=0)
    assert len(tau) == 1 and abs(tau[0] - np.linalg.norm(tx - rx) / C) < 0.1e-9
    # the same vertical link over the solid part of the building is blocked by the roof
    _, tau, _ = _trace(rt, tiny_scene.xml_path, [35.0, 35.0, 40.0], [35.0, 35.0, 1.5], max_depth=0)
    assert len(tau) == 0


def test_bundled_etoile_scene_written_and_loaded(rt, tmp_path):
    from twin.ingest.bundled import bundled_buildings

    bs, _info = bundled_buildings("paris", frequency_hz=3.5e9)
    info = write_scene(bs, tmp_path / "scene", frequency_hz=3.5e9)
    scene = rt.load_scene(str(info.xml_path))
    assert {"ground", "buildings-itu_marble", "buildings-itu_metal"} <= set(scene.objects)
    assert info.n_triangles > 10 * len(bs.gdf)
