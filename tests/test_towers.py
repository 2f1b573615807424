"""Tower CSV ingest: layouts, row reports, strict mode, sites, default sectors, the embedded Paris file."""

from __future__ import annotations

import importlib.util
import math
import random
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from twin.config import IngestConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest.towers import CELL_COLUMNS, read_towers, towers_to_geodataframe
from twin.schema import TOWER_COLUMNS

FIX = Path(__file__).parent / "fixtures" / "towers"
CM = FIX / "cellmapper_mixed.csv"
OCI = FIX / "opencellid.csv"
OCI_NOHEADER = FIX / "opencellid_headerless.csv"
XY = FIX / "projected_xy.csv"
FRAME = LocalFrame(48.87378, 2.29503)
CFG = IngestConfig()


def _load_fixture_module():
    spec = importlib.util.spec_from_file_location("make_tower_fixtures", FIX.parent / "make_tower_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cm():
    return read_towers(CM, FRAME, CFG)


def _cell(table, cell_id):
    row = table.cells[table.cells.cell_id == cell_id]
    assert len(row) == 1, cell_id
    return row.iloc[0]


# ------------------------------------------------------------------------------------ fixtures, layouts


def test_fixtures_are_what_the_script_writes(tmp_path):
    mod = _load_fixture_module()
    for p in mod.write_fixtures(tmp_path):
        assert p.read_bytes() == (FIX / p.name).read_bytes(), f"{p.name}: rerun tests/fixtures/make_tower_fixtures.py"


def test_layout_detection(cm):
    assert (cm.layout, cm.delimiter) == ("cellmapper", ",")
    oci = read_towers(OCI, FRAME, CFG)
    assert oci.layout == "opencellid"
    nohdr = read_towers(OCI_NOHEADER, FRAME, CFG, default_earfcn=1501)
    assert nohdr.layout == "opencellid"
    assert nohdr.reports[0].row == 1  # no header: the first data row is line 1


def test_columns_and_types(cm):
    assert list(cm.cells.columns) == [c for c in TOWER_COLUMNS if c != "geometry"] == list(CELL_COLUMNS)
    d = cm.cells.dtypes
    assert str(d["mcc"]) == "int32" and str(d["cid"]) == "int64" and str(d["frequency_hz"]) == "float64"
    assert cm.cells.cell_id.is_unique
    assert (cm.cells.z == cm.cells.height_m).all()


def test_opencellid_gives_the_same_cells_as_cellmapper(cm):
    oci = read_towers(OCI, FRAME, CFG)
    assert oci.counts["skipped"] == 0 and oci.counts["repaired"] == 0
    a = cm.cells.set_index("cell_id")
    b = oci.cells.set_index("cell_id")
    assert set(b.index) <= set(a.index)
    common = list(b.index)
    for col in ("frequency_hz", "band", "pci", "site_id", "lat", "lon"):
        assert (a.loc[common, col] == b.loc[common, col]).all(), col


def test_headerless_opencellid_needs_a_carrier():
    with pytest.raises(TwinInputError) as ei:
        read_towers(OCI_NOHEADER, FRAME, CFG)
    e = ei.value
    assert "no usable tower rows" in e.message and e.row == 1 and "default_earfcn" in e.fix
    t = read_towers(OCI_NOHEADER, FRAME, CFG, default_earfcn=6300)
    lte = t.cells[t.cells.radio == "LTE"]
    assert (lte.frequency_hz == 806e6).all() and len(lte) == 8
    assert lte.quality_flags.str.contains("earfcn_default").all() and t.counts["kept"] == 8
    # the NR and GSM rows have no channel number and no default applies to them
    assert {r.row for r in t.skipped()} == {9, 10}


def test_unknown_layout_error_names_columns_layouts_and_delimiter():
    with pytest.raises(TwinInputError) as ei:
        read_towers(XY, None, CFG)
    e = ei.value
    text = str(e)
    assert e.file == str(XY)
    assert "semicolon" in e.message and "unknown tower CSV layout" in e.message
    for lacking in ("latitude", "longitude", "lac|tac", "arfcn", "radio", "net|mnc", "area", "cell"):
        assert lacking in e.message, lacking
    assert "cellmapper" in text and "opencellid" in text
    assert "x/y" in e.fix and "EPSG:4326" in e.fix


# ------------------------------------------------------------------------------------ row reports


def test_each_bad_row_is_reported_with_line_and_field(cm):
    rep = {r.row: r for r in cm.reports}
    # blank lines 3 and 20 are no rows; the header is line 1
    assert sorted(rep) == [2, *range(4, 20)]
    expect = {
        10: ("skipped", "Latitude", "out of range"),
        11: ("skipped", "LONGITUDE", "not a number"),
        12: ("skipped", "ARFCN", "unknown EARFCN 99999"),
        13: ("skipped", "cid", "duplicate cell 208-1-751-100 (first at line 2)"),
        14: ("repaired", "PCI", "missing"),
        16: ("repaired", "ARFCN", "uplink EARFCN 19675"),
        19: ("skipped", "Type", "CDMA"),
    }
    for line, (status, field, words) in expect.items():
        r = rep[line]
        assert (r.status, r.field) == (status, field), r
        assert words in r.reason, r
        assert r.fix, r
    assert all(rep[n].status == "kept" for n in rep if n not in expect)
    assert cm.counts == {"kept": 10, "repaired": 2, "skipped": 5, "rows": 17, "cells": 12, "sites": 5}


def test_repairs_are_applied(cm):
    assert _cell(cm, "208-10-6016-203").pci == -1
    assert "pci_missing" in _cell(cm, "208-10-6016-203").quality_flags
    up = _cell(cm, "208-20-3408-301")
    assert up.earfcn == 1675 and up.frequency_hz == pytest.approx(1852.5e6)
    assert "uplink_arfcn_mapped" in up.quality_flags
    # the duplicate kept the first row's values
    assert _cell(cm, "208-1-751-100").source_row == 2


def test_carriers_and_rats(cm):
    assert _cell(cm, "208-1-751-100").frequency_hz == pytest.approx(1835.1e6)
    assert _cell(cm, "208-1-751-103").frequency_hz == pytest.approx(806e6) and _cell(cm, "208-1-751-103").band == 20
    nr = _cell(cm, "208-15-1712-400")
    assert (nr.radio, nr.band, nr.frequency_hz, nr.pci) == ("NR", 78, 3489.42e6, 500)
    gsm = _cell(cm, "208-1-751-500")
    assert gsm.radio == "GSM" and gsm.frequency_hz == pytest.approx(937e6) and gsm.bandwidth_hz == 200e3
    assert "legacy_rat_gsm" in gsm.quality_flags


def test_strict_raises_at_first_bad_row():
    with pytest.raises(TwinInputError) as ei:
        read_towers(CM, FRAME, CFG, strict=True)
    e = ei.value
    assert (e.row, e.field, e.file) == (10, "Latitude", str(CM))
    assert "-90" in e.fix


def test_strict_raises_on_a_repair(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("latitude,longitude,altitude,MCC,MNC,LAC,CID,signal,type,subtype,ARFCN,PSC\n"
                 "48.87,2.29,0,208,1,1,1,-80,LTE,LTE,1501,7\n"
                 "48.87,2.29,0,208,1,1,2,-80,LTE,LTE,1501,\n"
                 "48.87,2.29,0,208\n")
    t = read_towers(p, None, CFG)
    assert t.report(3).status == "repaired"
    short = t.report(4)  # a short row: the missing fields are named
    assert (short.status, short.field) == ("skipped", "MNC") and "missing" in short.reason
    with pytest.raises(TwinInputError) as ei:
        read_towers(p, None, CFG, strict=True)
    assert (ei.value.row, ei.value.field) == (3, "PSC")


# ------------------------------------------------------------------------------------ sites and sectors


def test_site_grouping(cm):
    c = cm.cells.set_index("cell_id")
    site_a = {c.loc[f"208-1-751-{k}", "site_id"] for k in (100, 101, 102, 103)}
    assert len(site_a) == 1  # cell 103 is 2 m away on another carrier: same mast
    assert c.loc["208-10-6016-200", "site_id"] not in site_a  # other operator at the same spot
    assert c.loc["208-1-751-500", "site_id"] not in site_a  # same operator, 170 m away
    # one mast: every cell of a site sits at the same point
    assert (cm.cells.groupby("site_id")[["x", "y"]].nunique() == 1).all().all()
    a = c.loc["208-1-751-100"]
    x, y = FRAME.to_local(a.lon, a.lat)
    assert (float(x), float(y)) == pytest.approx((a.x, a.y), abs=1e-6)
    # about 1 m from the three cells at 48.874000: the centroid of 3 cells there and one 2 m north
    x0, y0 = FRAME.to_local(2.296, 48.874)
    assert math.hypot(a.x - float(x0), a.y - float(y0)) == pytest.approx(2.0 / 4, abs=0.05)
    # with a 1 m merge distance cell 103 is its own site
    t = read_towers(CM, FRAME, IngestConfig(site_merge_m=1.0))
    c1 = t.cells.set_index("cell_id")
    assert c1.loc["208-1-751-103", "site_id"] != c1.loc["208-1-751-100", "site_id"]


def test_site_ids_do_not_depend_on_row_order(tmp_path, cm):
    lines = CM.read_text(encoding="utf-8-sig").splitlines()
    body = [ln for ln in lines[1:] if ln.strip()]
    random.Random(3).shuffle(body)
    p = tmp_path / "shuffled.csv"
    p.write_text("\n".join([lines[0], *body]) + "\n")
    t = read_towers(p, FRAME, CFG)
    a = cm.cells.set_index("cell_id")["site_id"]
    b = t.cells.set_index("cell_id")["site_id"]
    # a duplicate may now come first: compare the cells both keep
    common = a.index.intersection(b.index)
    assert len(common) >= 11 and (a[common] == b[common]).all()


def test_default_sectors(cm):
    c = cm.cells.set_index("cell_id")
    assert [c.loc[f"208-1-751-{k}", "azimuth_deg"] for k in (100, 101, 102)] == [0.0, 120.0, 240.0]
    assert c.loc["208-1-751-103", "azimuth_deg"] == 0.0  # alone on its carrier
    assert [c.loc[f"208-20-3408-{k}", "azimuth_deg"] for k in (300, 301)] == [0.0, 180.0]
    assert c.loc["208-1-751-100", "azimuth_source"] == "default_sectors"
    assert [c.loc[f"208-10-6016-{k}", "azimuth_deg"] for k in (200, 201, 202)] == [10.0, 130.0, 250.0]
    assert c.loc["208-10-6016-200", "azimuth_source"] == "csv"


def test_config_defaults_and_heights(cm):
    c = cm.cells.set_index("cell_id")
    a = c.loc["208-1-751-100"]
    assert (a.tx_power_dbm, a.bandwidth_hz, a.tilt_deg) == (46.0, 10e6, 6.0)
    assert (a.height_m, a.height_source) == (25.0, "default")
    b = c.loc["208-10-6016-200"]
    assert (b.height_m, b.height_source, b.z) == (30.0, "csv", 30.0)
    t = read_towers(CM, None, IngestConfig(default_tx_power_dbm=43.0, default_bandwidth_hz=20e6,
                                           default_tilt_deg=4.0, default_tower_height_m=18.0))
    a = t.cells.set_index("cell_id").loc["208-1-751-100"]
    assert (a.tx_power_dbm, a.bandwidth_hz, a.tilt_deg, a.height_m) == (43.0, 20e6, 4.0, 18.0)
    assert np.isnan(t.cells.x).all() and np.isnan(t.cells.y).all()  # no frame, no local coordinates


def test_optional_column_aliases_and_units(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(
        "LATITUDE;LONGITUDE;MCC;MNC;LAC;CID;ARFCN;PSC;Azimuth_Deg;Downtilt;Antenna_Height;TX_Power_dBm;Bandwidth\n"
        "48,8740;2,2960;208;1;1;1;1501;7;-30;8;31,5;43;20\n"
        "48,8740;2,2960;208;1;1;2;1501;8;90;bad;;43;5000000\n"
    )
    t = read_towers(p, None, CFG)
    c = t.cells.set_index("cell_id")
    assert t.delimiter == ";" and t.layout == "cellmapper"
    one = c.loc["208-1-1-1"]
    assert (one.lat, one.azimuth_deg, one.tilt_deg, one.height_m, one.tx_power_dbm, one.bandwidth_hz) == (
        48.874, 330.0, 8.0, 31.5, 43.0, 20e6)
    two = c.loc["208-1-1-2"]
    assert (two.tilt_deg, two.bandwidth_hz, two.height_m) == (6.0, 5e6, 31.5)  # bad tilt -> default; mast height
    assert t.report(3).status == "repaired" and t.report(3).field == "Downtilt"


def test_azimuth_outside_0_360_is_wrapped_and_reported(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("latitude,longitude,mcc,mnc,lac,cid,earfcn,pci,azimuth\n"
                 "48.874,2.296,208,1,1,1,1501,7,720\n"
                 "48.874,2.296,208,1,1,2,1501,8,-30\n"
                 "48.874,2.296,208,1,1,3,1501,9,360\n"
                 "48.874,2.296,208,1,1,4,1501,10,721\n")
    t = read_towers(p, None, CFG)
    c = t.cells.set_index("cell_id")
    assert [c.loc[f"208-1-1-{k}", "azimuth_deg"] for k in (1, 2, 3)] == [0.0, 330.0, 0.0]
    for row, value in ((2, "720"), (3, "-30")):
        r = t.report(row)
        assert (r.status, r.field) == ("repaired", "azimuth") and value in r.reason and "wrapped" in r.reason
        assert "azimuth_wrapped" in c.loc[f"208-1-1-{row - 1}", "quality_flags"]
    assert t.report(4).status == "kept"  # 360 is north: nothing to say
    assert t.report(5).status == "repaired" and "out of range" in t.report(5).reason  # 721: default sectors
    assert c.loc["208-1-1-4", "azimuth_source"] == "default_sectors"
    with pytest.raises(TwinInputError) as ei:
        read_towers(p, None, CFG, strict=True)
    assert (ei.value.row, ei.value.field) == (2, "azimuth")


# ------------------------------------------------------------------------------------ area, errors, fuzz


def test_area_marks_outside_towers_skipped():
    area = box(2.2955, 48.8735, 2.2965, 48.8745)  # around site A/B only
    near = read_towers(CM, FRAME, CFG, area=area)  # default: kept up to 150 m outside, flagged outside_scene
    assert CFG.max_tower_outside_m == 150.0
    flagged = set(near.cells.loc[near.cells.quality_flags.str.contains("outside_scene"), "site_id"].str.rsplit("-", n=1).str[0])
    assert flagged == {"208-15", "208-1"} and len(near.cells) > 8
    t = read_towers(CM, FRAME, IngestConfig(max_tower_outside_m=0.0), area=area)
    assert set(t.cells.site_id.str.rsplit("-", n=1).str[0]) == {"208-1", "208-10"}
    outside = [r for r in t.skipped() if "outside the area" in r.reason]
    assert {r.cell_id for r in outside} == {"208-20-3408-300", "208-20-3408-301", "208-15-1712-400", "208-1-751-500"}
    with pytest.raises(TwinInputError, match="no usable tower rows"):
        read_towers(CM, FRAME, CFG, area=box(0.0, 0.0, 0.01, 0.01))
    assert "outside_scene" not in ",".join(t.cells.quality_flags)
    t = read_towers(CM, FRAME, IngestConfig(max_tower_outside_m=400.0), area=area)
    assert len(t.cells) == 12
    with pytest.raises(TwinInputError) as ei:
        read_towers(CM, FRAME, CFG, area="paris")
    assert ei.value.field == "area"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"latitude,longitude,MCC,MNC,LAC,CID,ARFCN,PCI\n", "no data rows"),
        (b"\x00\x01\x02binary", "binary"),
        (b"hello world\n1 2 3\n", "unknown tower CSV layout"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, content, words):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(TwinInputError, match=words) as ei:
        read_towers(p, None, CFG)
    assert ei.value.file == str(p)


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(TwinInputError, match="not found"):
        read_towers(tmp_path / "nope.csv", None, CFG)
    with pytest.raises(TwinInputError, match="directory"):
        read_towers(tmp_path, None, CFG)
    with pytest.raises(TypeError, match="frame"):
        read_towers(CM, (48.0, 2.0), CFG)
    with pytest.raises(TwinInputError, match="default_earfcn"):
        read_towers(CM, None, CFG, default_earfcn=99999)


_CELLS = st.sampled_from(["48.87", "2.29", "208", "1", "", "abc", "1501", "-1", "1e400", "LTE", '"', "9" * 30])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_CELLS, min_size=0, max_size=14), min_size=0, max_size=6),
       header=st.sampled_from(["latitude,longitude,altitude,MCC,MNC,LAC,CID,signal,type,subtype,ARFCN,PSC",
                               "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal",
                               "", "a;b;c"]))
def test_any_text_gives_a_table_or_a_twin_input_error(tmp_path, rows, header):
    p = tmp_path / "fuzz.csv"
    p.write_text("\n".join([header, *(",".join(r) for r in rows)]))
    try:
        t = read_towers(p, FRAME, CFG)
    except TwinInputError:
        return
    assert len(t.cells) >= 1 and t.cells.cell_id.is_unique
    assert t.counts["rows"] == len(t.reports)


def test_geodataframe(cm):
    g = towers_to_geodataframe(cm)
    assert g.crs.to_epsg() == 4326
    assert np.allclose(g.geometry.x, cm.cells.lon) and np.allclose(g.geometry.y, cm.cells.lat)


# ------------------------------------------------------------------------------------ embedded Paris file

# Sionna's etoile scene: ground plane +-426.83 m x +-338.06 m (scene frame), Arc de Triomphe meshes centred
# at (-127.19, 38.08) m; the twin's local frame is centred on the monument (docs/architecture.md "Ingest").
ETOILE_HALF = (426.83, 338.06)
ARC_SCENE = (-127.19, 38.08)


def test_embedded_paris_towers():
    p = Path(str(resources.files("twin") / "data" / "paris_towers.csv"))
    t = read_towers(p, FRAME, CFG, strict=True)
    c = t.cells
    assert t.layout == "cellmapper" and t.counts["skipped"] == t.counts["repaired"] == 0
    sites = c.groupby("site_id")
    assert 10 <= sites.ngroups <= 12
    assert (sites.size() == 3).all() and (c.radio == "LTE").all()
    assert set(zip(c.mcc, c.mnc, strict=True)) == {(208, 1), (208, 10), (208, 15), (208, 20)}
    assert set(c.band) <= {3, 7, 20} and 3 in set(c.band) and 20 in set(c.band)
    assert (sites["pci"].agg(lambda s: len(set(s % 3))) == 3).all()  # PCI mod 3 differs within a site
    assert not c.duplicated(["earfcn", "pci"]).any()  # PCIs distinct on each carrier
    assert (c.azimuth_source == "csv").all()
    csv_h = sites["height_source"].first()
    assert (csv_h == "csv").sum() == 2 and (csv_h == "default").sum() == sites.ngroups - 2
    # every site at least 60 m inside the scene, and not all on the Arc
    sx, sy = c.x + ARC_SCENE[0], c.y + ARC_SCENE[1]
    assert (ETOILE_HALF[0] - sx.abs() >= 60).all() and (ETOILE_HALF[1] - sy.abs() >= 60).all()
    d_arc = np.hypot(c.x, c.y)
    assert (d_arc > 50).sum() >= len(c) - 3
    # and inside the bbox the `paris` preset asks OpenStreetMap for
    from twin.ingest.cities import get_city

    t2 = read_towers(p, FRAME, CFG, strict=True, area=box(*get_city("paris").bbox))
    assert len(t2.cells) == len(c)


def test_tests_do_not_read_the_real_data_folder():
    needle = "data" + "/" + "real"  # the folder of real files on the developers' machine only
    other = "etoile_towers_" + "cellmapper"
    for f in Path(__file__).parent.rglob("*"):
        if f.is_file() and f.suffix in (".py", ".csv", ".toml", ".json", ".txt", ".md"):
            text = f.read_text(errors="replace")
            assert needle not in text and other not in text, f
