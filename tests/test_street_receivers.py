"""Receivers where users are (``[receivers] area``) on the tiny generated town of tests/fixtures/osm/streets.osm
(tests/fixtures/make_street_fixture.py): streets beside an empty "sea" half with a tunnel and a motorway in it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from typer.testing import CliRunner

from twin.cli import app
from twin.config import BuildConfig, ReceiverConfig, load_build_config
from twin.errors import TwinConfigError
from twin.frame import LocalFrame

FIX = Path(__file__).resolve().parent / "fixtures"
runner = CliRunner()


def _fixture():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_street_fixture", FIX / "make_street_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> dict:
    fx = _fixture()
    base = tmp_path_factory.mktemp("town")
    osm = fx.write(base / "streets.osm")
    assert osm.read_text() == (FIX / "osm" / "streets.osm").read_text()  # the committed fixture is the script's
    lat0, lon0 = fx.ORIGIN
    f = LocalFrame(lat0, lon0)
    lon, lat = f.to_wgs84([60.0, 170.0], [200.0, 20.0])
    rows = [f"{la:.7f},{lo:.7f},0,212,10,1,{100 + i},-80,LTE,LTE,1300,{i},0,25"
            for i, (la, lo) in enumerate(zip(lat, lon, strict=True))]
    towers = base / "towers.csv"
    towers.write_text("latitude,longitude,altitude,MCC,MNC,TAC,CID,signal,type,subtype,ARFCN,PCI,azimuth,height\n"
                      + "\n".join(rows) + "\n")
    r = runner.invoke(app, ["ingest", "--osm-file", str(osm), "--towers", str(towers), "--out", str(base / "out")],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    root = next((base / "out").iterdir())
    build = LocalFrame.from_dict(json.loads((root / "twin.json").read_text())["frame"])

    def to_build(xy):  # fixture metres -> the build's local frame (through lon/lat)
        lo, la = f.to_wgs84([p[0] for p in xy], [p[1] for p in xy])
        bx, by = build.to_local(lo, la)
        return list(zip(np.atleast_1d(bx).tolist(), np.atleast_1d(by).tolist(), strict=True))

    return {"root": root, "fx": fx, "to_build": to_build}


def _line(town, w):
    return shapely.LineString(town["to_build"](town["fx"].STREETS[w][0]))


def _kept_lines(town) -> list:
    return [_line(town, w) for w in town["fx"].KEPT]


def _box(town, b):
    (x0, y0), (x1, y1) = town["to_build"]([(b[0], b[1]), (b[2], b[3])])
    return shapely.box(x0, y0, x1, y1)


def _sea_x(town) -> float:
    return town["to_build"]([(200.0, 0.0)])[0][0]


def _place(root: Path, **kw):
    from twin.render.stage import ensure_receivers

    (root / "receivers.parquet").unlink(missing_ok=True)
    return ensure_receivers(root, BuildConfig(receivers=ReceiverConfig(**kw)))


def test_ingest_writes_the_files_street_ways(town):
    root, fx = town["root"], town["fx"]
    import geopandas as gpd

    g = gpd.read_parquet(root / "streets.parquet")
    assert g.crs.to_epsg() == 4326
    assert sorted(g["osm_id"]) == sorted(f"way/{w}" for w in fx.KEPT)  # no tunnel, motorway or proposed way
    m = json.loads((root / "twin.json").read_text())
    assert m["streets"]["ways"] == 3 and m["streets"]["path"] == "streets.parquet"
    local = shapely.from_wkb(pq.read_table(root / "streets.parquet")["geometry_local"].to_pylist())
    want = {f"way/{w}": _line(town, w) for w in fx.KEPT}
    for oid, line in zip(g["osm_id"], local, strict=True):  # the local frame, from the file's lon/lat
        assert line.hausdorff_distance(want[oid]) < 0.05


def test_default_receivers_stand_on_the_streets_not_in_the_sea(town):
    root, fx = town["root"], town["fx"]
    rx = _place(root, count=300)
    x, y = rx["x"].to_numpy(), rx["y"].to_numpy()
    pts = shapely.points(x, y)
    d = shapely.distance(pts[:, None], np.array(_kept_lines(town))[None, :]).min(axis=1)
    assert len(rx) == 300 and d.max() <= 3.0 + 1e-6  # street_buffer_m
    assert (x <= _sea_x(town) + 3.0 + 1e-6).all()  # nothing at sea (tunnel, motorway and proposed way left out)
    blds = [_box(town, b) for b in fx.BUILDINGS]
    assert not any(shapely.contains_xy(b, x, y).any() for b in blds)
    # spread along all three streets, not only one
    for w in fx.KEPT:
        near = shapely.distance(pts, _line(town, w)) <= 3.0 + 1e-6
        assert near.sum() > 30, w
    assert json.loads((root / "twin.json").read_text())["stages"]["receivers"]["area"] == "streets"


def test_bbox_and_built_areas_and_routes_on_the_same_network(town):
    root, fx = town["root"], town["fx"]
    bbox = _place(root, count=300, area="bbox")
    assert (bbox["x"].to_numpy() > _sea_x(town)).sum() > 100  # the old behaviour: half of them at sea
    built = _place(root, count=300, area="built", built_distance_m=15.0)
    pts = shapely.points(built["x"].to_numpy(), built["y"].to_numpy())
    d = shapely.distance(pts[:, None], np.array([_box(town, b) for b in fx.BUILDINGS])[None, :]).min(axis=1)
    assert d.max() <= 15.0 + 0.1 and d.min() >= 1.0 - 1e-6  # within built_distance_m, outside clearance
    routes = _place(root, mode="route", count=80, num_routes=2)
    rp = shapely.points(routes["x"].to_numpy(), routes["y"].to_numpy())
    dr = shapely.distance(rp[:, None], np.array(_kept_lines(town))[None, :]).min(axis=1)
    assert dr.max() < 0.05 and set(routes["route_id"]) == {0, 1}  # on the street centre lines
    speed = np.hypot(routes["vx"], routes["vy"]).to_numpy()
    np.testing.assert_allclose(speed, 1.39, rtol=1e-6)


def test_a_file_without_streets_falls_back_to_built(tmp_path):
    from twin.render.receivers import make_receivers

    fps = [shapely.box(0, 0, 20, 20)]
    t = make_receivers(fps, (-200, -200, 200, 200), ReceiverConfig(count=200), no_streets="built")
    assert t.schema.metadata[b"twin.receivers_area"] == b"built"
    d = shapely.distance(shapely.points(t["x"].to_numpy(), t["y"].to_numpy()), fps[0])
    assert d.max() <= 30.0 + 0.1
    bundled = make_receivers(fps, (-200, -200, 200, 200), ReceiverConfig(count=200))  # the bundled scene's default
    assert bundled.schema.metadata[b"twin.receivers_area"] == b"bbox"


def test_bad_area_settings_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[receivers]\narea = "sea"\n')
    with pytest.raises(TwinConfigError, match="area"):
        load_build_config(bad)
    bad.write_text("[receivers]\nstreet_buffer_m = 0\n")
    with pytest.raises(TwinConfigError, match="street_buffer_m"):
        load_build_config(bad)
