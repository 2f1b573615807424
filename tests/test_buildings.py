"""Buildings ingest: OSM readers, height rules, repairs, materials, the bundled etoile scene, previews.

Fixtures come from tests/fixtures/make_osm_fixtures.py (regenerated into tmp_path, so the test does not depend on
the committed copies being current); expected values are the definitions in that script.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from twin.config import IngestConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest import osm as osm_mod
from twin.ingest.buildings import (
    buildings_from_source,
    height_for_tags,
    parse_height_m,
    parse_levels,
    read_buildings_parquet,
    write_buildings_parquet,
)
from twin.ingest.materials import is_valid_at, itu_frequency_ranges, material_for_tags, valid_materials
from twin.ingest.osm import read_buildings_file, read_osm_online
from twin.schema import BUILDING_COLUMNS

FIXTURE_SCRIPT = Path(__file__).parent / "fixtures" / "make_osm_fixtures.py"


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_osm_fixtures", FIXTURE_SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FIX = _fixture_module()
FRAME = LocalFrame(*FIX.ORIGIN)
FT = 0.3048


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return FIX.main(tmp_path_factory.mktemp("osm"))


def _ring_area(ring):
    x = np.array([p[0] for p in ring])
    y = np.array([p[1] for p in ring])
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


# ------------------------------------------------------------------------------------------ height parsing


@pytest.mark.parametrize(
    "value, metres",
    [
        ("12", 12.0),
        ("12 m", 12.0),
        ("12.5m", 12.5),
        ("40'", 40 * FT),
        ("40 ft", 40 * FT),
        ("12'6\"", 12 * FT + 6 * 0.0254),
        ("10-12", 10.0),
        ("10;12", 10.0),
        ("12,5", 12.5),
        (7, 7.0),
    ],
)
def test_parse_height(value, metres):
    h, why = parse_height_m(value)
    assert why == ""
    assert h == pytest.approx(metres, rel=1e-12)


@pytest.mark.parametrize("value", ["ten", "-3", "0", "2000", "", None, "12 storeys", "nan"])
def test_parse_height_rejects_nonsense(value):
    h, why = parse_height_m(value)
    assert h is None and why


def test_levels_and_rules():
    cfg = IngestConfig(level_height_m=3.0, roof_height_m=1.0, default_height_m=12.0)
    assert parse_levels("4") == (4.0, "")
    assert parse_levels("3;5")[0] == 3.0
    assert parse_levels("many")[0] is None
    assert height_for_tags({"height": "15", "building:levels": "9"}, cfg)[:2] == (15.0, "tag")
    assert height_for_tags({"building:height": "8"}, cfg)[:2] == (8.0, "tag")
    assert height_for_tags({"building:levels": "4", "roof:levels": "1"}, cfg)[:2] == (4 * 3 + 3 + 1, "levels")
    assert height_for_tags({"building:levels": "4", "roof:height": "2.5"}, cfg)[:2] == (
        4 * 3 + 2.5 + 1,
        "levels",
    )
    h, src, note = height_for_tags({"height": "ten"}, cfg)
    assert (h, src) == (12.0, "default") and "height" in note


# --------------------------------------------------------------------------------------------- readers


@pytest.mark.parametrize("kind", ["osm", "pbf", "geojson"])
def test_readers_agree_and_count(files, kind):
    gdf = read_buildings_file(files[kind])
    assert gdf.crs.to_epsg() == 4326
    expected = {"way/101", "way/102", "way/103", "way/104", "way/106", "way/107", "way/108", "relation/201"}
    assert (
        set(gdf["osm_id"]) == expected
    )  # building:part way/105 and the relation's member ways are not buildings
    # the count of building ways + relations in the file (7 + 1) is matched within 5 %
    assert gdf.attrs["building_objects"] == 8
    assert abs(len(gdf) - gdf.attrs["building_objects"]) <= 0.05 * gdf.attrs["building_objects"]
    rel = gdf[gdf["osm_id"] == "relation/201"].geometry.iloc[0]
    assert sum(len(p.interiors) for p in shapely.get_parts(rel)) == 1
    assert gdf.set_index("osm_id").loc["way/102", "building:height"] == "12.5 m"


def test_geoparquet_reader(files, tmp_path):
    src = read_buildings_file(files["osm"])
    p = tmp_path / "osm_buildings.parquet"
    src.to_parquet(p)
    back = read_buildings_file(p)
    assert sorted(back["osm_id"]) == sorted(src["osm_id"])
    assert back.attrs["building_objects"] == len(src)
    b = back.set_index("osm_id")
    assert b.loc["relation/201", "height"] == "40'"
    assert b.loc["relation/201", "geometry"].equals_exact(src.set_index("osm_id").loc["relation/201", "geometry"], 1e-12)


def test_buildings_from_source_heights_holes_materials(files):
    bs = buildings_from_source(files["pbf"], FRAME, IngestConfig(), frequency_hz=3.5e9)
    g = bs.gdf.set_index("osm_id")
    assert list(bs.gdf.columns) == list(BUILDING_COLUMNS)
    expect = {
        "way/101": (15.0, "tag"),
        "way/102": (12.5, "tag"),
        "way/103": (16.0, "levels"),
        "way/104": (12.0, "default"),
        "relation/201": (40 * FT, "tag"),
        "way/106": (2 * 3.0 + 1.0, "levels"),
        "way/108": (30.0, "tag"),
    }
    assert set(g.index) == set(expect)
    for oid, (h, src) in expect.items():
        assert g.loc[oid, "height_m"] == pytest.approx(h, rel=1e-12), oid
        assert g.loc[oid, "height_source"] == src, oid
    # courtyard: one hole, area outer - inner (coordinates rounded to 1e-7 deg, ~1 cm)
    assert g.loc["relation/201", "num_holes"] == 1
    assert g.loc["relation/201", "area_m2"] == pytest.approx(40 * 40 - 20 * 20, rel=1e-3)
    court = shapely.Point(50, 50)
    assert not g.loc["relation/201", "geometry_local"].contains(court)
    assert g.loc["relation/201", "geometry_local"].contains(shapely.Point(35, 35))
    # local geometry agrees with the WGS84 one through the frame
    lon, lat = FRAME.to_wgs84(50.0, 35.0)
    assert g.loc["relation/201", "geometry"].contains(shapely.Point(float(lon), float(lat)))
    # bow tie repaired into its two triangles (2 x 100 m^2), shed dropped as tiny
    assert g.loc["way/106", "area_m2"] == pytest.approx(200.0, rel=1e-3)
    assert bs.report["repaired"] == 1 and "way/106" in bs.report["reasons"]
    assert bs.report["dropped_tiny"] == 1 and "way/107" in bs.report["reasons"]
    assert bs.report["read"] == 8 and bs.report["kept"] == 7
    for oid, (ring, _tags) in FIX.WAYS.items():
        if f"way/{oid}" in g.index and oid != 106:
            assert g.loc[f"way/{oid}", "area_m2"] == pytest.approx(_ring_area(ring), rel=1e-3)
    # materials: brick and glass from tags (valid at 3.5 GHz), the rest the default
    assert g.loc["relation/201", ["material", "material_source"]].tolist() == ["brick", "tag"]
    assert g.loc["way/108", ["material", "material_source"]].tolist() == ["glass", "tag"]
    assert g.loc["way/101", ["material", "material_source"]].tolist() == ["concrete", "default"]


def test_material_frequency_validity(files):
    # ITU-R P.2040 Table 3 in Sionna: brick 1-40 GHz, so at 60 GHz the brick building falls back to concrete
    assert is_valid_at("brick", [3.5e9]) and not is_valid_at("brick", [60e9])
    assert itu_frequency_ranges()["concrete"][0] == (1e9, 100e9)
    bs = buildings_from_source(files["osm"], FRAME, frequency_hz=60e9)
    g = bs.gdf.set_index("osm_id")
    assert g.loc["relation/201", ["material", "material_source"]].tolist() == ["concrete", "default"]
    assert "brick" in bs.report["reasons"]["relation/201"]
    # below 1 GHz concrete is undefined: the configured default is rejected with the valid choices named
    with pytest.raises(TwinInputError) as e:
        buildings_from_source(files["osm"], FRAME, frequency_hz=800e6)
    assert e.value.field == "default_material" and "wood" in e.value.fix
    assert set(valid_materials([800e6])) == {"glass", "wood"}
    assert material_for_tags({"building:material": "brick"}, frequency_hz=[2e9, 3.5e9]).material == "brick"
    assert material_for_tags({"building:facade:material": "Steel"}).material == "metal"


def test_strict_names_the_dropped_object(files):
    with pytest.raises(TwinInputError) as e:
        buildings_from_source(files["osm"], FRAME, strict=True)
    assert e.value.row == "way/107" and e.value.field == "geometry" and str(files["osm"]) in str(e.value)


def test_clip(files):
    # clip to x < 50 m: way/101, 102, 104, 108 inside, relation/201 cut (half), 103 (x 60-75) and 106 outside
    lon, lat = FRAME.to_wgs84([-10, 50, 50, -10], [-10, -10, 100, 100])
    clip = shapely.Polygon(list(zip(lon, lat, strict=True)))
    bs = buildings_from_source(files["geojson"], FRAME, clip=clip)
    g = bs.gdf.set_index("osm_id")
    assert set(g.index) == {"way/101", "way/102", "way/104", "way/108", "relation/201"}
    assert bs.report["clipped"] == 1 and bs.report["clipped_out"] == 2
    assert g.loc["relation/201", "area_m2"] == pytest.approx(20 * 40 - 10 * 20, rel=2e-3)


def test_bad_files_raise_input_errors(tmp_path):
    bad = tmp_path / "broken.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0dnot really a pbf at all" * 10)
    with pytest.raises(TwinInputError) as e:
        read_buildings_file(bad)
    assert str(bad) in str(e.value)
    bad_xml = tmp_path / "broken.osm"
    bad_xml.write_text("<osm><node id='1' lat='x'")
    with pytest.raises(TwinInputError) as e:
        read_buildings_file(bad_xml)
    assert e.value.file == str(bad_xml)
    with pytest.raises(TwinInputError):
        read_buildings_file(tmp_path / "missing.osm.pbf")
    with pytest.raises(TwinInputError) as e:
        read_buildings_file(tmp_path / "buildings.shp")
    assert ".osm.pbf" in e.value.fix
    bad_gj = tmp_path / "x.geojson"
    bad_gj.write_text("{not json")
    with pytest.raises(TwinInputError):
        read_buildings_file(bad_gj)


def test_online_failure_points_offline(monkeypatch, tmp_path):
    # error path only: the network call itself is replaced by one that fails as a dead Overpass server does
    import osmnx

    seen = []

    def boom(*a, **k):
        seen.append((osmnx.settings.use_cache, Path(osmnx.settings.cache_folder)))
        raise ConnectionError("overpass unreachable")

    monkeypatch.setattr(osmnx, "features_from_place", boom)
    monkeypatch.setattr(osmnx, "features_from_bbox", boom)
    with pytest.raises(TwinInputError) as e:
        read_osm_online(place="Nowhere, Atlantis", cache_dir=tmp_path)
    assert "--offline" in e.value.fix and "--osm-file" in e.value.fix
    with pytest.raises(TwinInputError) as e:
        read_osm_online(bbox=(2.29, 48.87, 2.30, 48.88), cache_dir=tmp_path)
    assert seen and all(use and folder == tmp_path for use, folder in seen)  # the request ran with the cache on
    with pytest.raises(TwinInputError):
        read_osm_online(bbox=(2.30, 48.87, 2.29, 48.88), cache_dir=tmp_path)  # W > E


def test_online_result_is_normalised():
    # osmnx 2.x returns a GeoDataFrame indexed by (element, id); the normaliser turns it into 'way/123'
    import geopandas as gpd

    idx = pd.MultiIndex.from_tuples([("way", 5), ("relation", 7), ("node", 9)], names=["element", "id"])
    raw = gpd.GeoDataFrame(
        {"building": ["yes", "yes", "yes"], "height": ["9", None, None]},
        geometry=[
            shapely.box(2.35, 48.85, 2.3501, 48.8501),
            shapely.box(2.36, 48.85, 2.3601, 48.8501),
            shapely.Point(2.3, 48.8),
        ],
        index=idx,
        crs="EPSG:4326",
    )
    out = osm_mod.from_geoframe(raw, "osmnx:test")
    assert list(out["osm_id"]) == ["way/5", "relation/7"]
    assert out.attrs["skipped"] == {"node/9": "geometry is Point, not a polygon"}


def test_parquet_round_trip(files, tmp_path):
    bs = buildings_from_source(files["osm"], FRAME)
    p = write_buildings_parquet(bs, tmp_path / "buildings.parquet")
    back = read_buildings_parquet(p)
    assert list(back.gdf["osm_id"]) == list(bs.gdf["osm_id"])
    for a, b in zip(back.gdf["geometry_local"], bs.gdf["geometry_local"], strict=True):
        assert a.equals_exact(b, 1e-9)
    assert back.gdf.crs.to_epsg() == 4326


# --------------------------------------------------------------------------------------------- bundled


@pytest.fixture(scope="module")
def etoile():
    from twin.ingest.bundled import bundled_buildings

    return bundled_buildings("paris", frequency_hz=3.5e9)


def test_bundled_etoile(etoile):
    bs, info = etoile
    g = bs.gdf
    assert len(g) >= 300
    assert (g["height_m"] > 0).all() and (g["height_source"] == "scene").all()
    assert g["height_m"].max() <= 60.0
    assert set(g["material"]) <= set(itu_frequency_ranges())
    assert (g["area_m2"] >= IngestConfig().min_area_m2).all()
    assert all(geom.is_valid for geom in g["geometry_local"])
    # anchor computed from the Arc de Triomphe meshes, near (-127, 38) (docs/architecture.md "Ingest")
    assert info.anchor_xy[0] == pytest.approx(-127.0, abs=3.0) and info.anchor_xy[1] == pytest.approx(
        38.0, abs=3.0
    )
    lon, lat = info.frame.to_wgs84(*info.anchor_xy)
    d_north = (float(lat) - 48.87378) * 111_195.0
    d_east = (float(lon) - 2.29503) * 111_195.0 * math.cos(math.radians(48.87378))
    assert math.hypot(d_north, d_east) < 0.5
    # the Arc itself is recovered as ~50 m tall (its real height)
    arc = g[g["osm_id"].str.startswith("Arc_de_Triomphe")]
    assert arc["height_m"].max() == pytest.approx(50.0, abs=1.0)
    # footprints do not overlap each other much (taller components win within an object)
    assert bs.report["kept"] == len(g)


def test_bundled_etoile_orientation(etoile):
    """x east / y north holds: the Champs-Elysees, from the Arc towards the Concorde obelisk (48.86546 N,
    2.32124 E, real coordinates), is an open corridor in the recovered footprints, while 15 degrees off it is not."""
    bs, info = etoile
    built = shapely.union_all(list(bs.gdf["geometry_local"]))
    cx, cy = info.frame.to_local(2.32124, 48.86546)
    ax, ay = info.anchor_xy
    bearing = math.atan2(float(cx) - ax, float(cy) - ay)  # radians clockwise from north
    assert math.degrees(bearing) == pytest.approx(115.0, abs=3.0)

    def covered(b):
        s, c = math.sin(b), math.cos(b)
        ray = shapely.LineString([(ax + 120 * s, ay + 120 * c), (ax + 330 * s, ay + 330 * c)])
        return ray.intersection(built).length / ray.length

    assert covered(bearing) < 0.02
    assert covered(bearing + math.radians(15)) > 0.2 and covered(bearing - math.radians(15)) > 0.2


def test_bundled_anchors_other_cities():
    from twin.ingest.bundled import bundled_scene_info

    for city, lat in (("munich", 48.1386), ("florence", 43.7731)):
        info = bundled_scene_info(city)
        assert info.approximate and info.anchor_latlon[0] == lat and info.xml_path.is_file()
        assert abs(info.anchor_xy[0]) < 1000 and abs(info.anchor_xy[1]) < 1000
    with pytest.raises(TwinInputError):
        bundled_scene_info("atlantis")


# --------------------------------------------------------------------------------------------- preview


def test_previews(etoile, tmp_path):
    from matplotlib.image import imread

    from twin.ingest.preview import plot_path_gain, plot_top

    bs, _ = etoile
    towers = pd.DataFrame(
        {"x": [0.0] * 3, "y": [0.0] * 3, "azimuth_deg": [0, 120, 240], "site_id": ["s"] * 3}
    )
    rx = pd.DataFrame({"x": [10.0, -50.0], "y": [5.0, 20.0]})
    p = plot_top(bs, towers, rx, tmp_path / "top.png", title="etoile")
    img = imread(p)
    assert img.shape[0] > 300 and img.shape[1] > 300 and img[..., :3].std() > 0.05
    q = plot_path_gain(
        np.array([[0.0, 0.0], [10.0, 10.0]]), np.array([-80.0, -90.0]), bs, tmp_path / "pg.png"
    )
    assert q.stat().st_size > 1000
    with pytest.raises(TwinInputError):
        plot_top(bs, towers.drop(columns=["azimuth_deg"]), None, tmp_path / "x.png")
