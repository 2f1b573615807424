"""Issue 9: bad input, as a careless user gives it. Each case runs the CLI in-process and asserts: the exit
code (2 for bad input, 1 for a damaged build), one message naming the file/row/field and the fix, no
traceback, and nothing written or removed anywhere under the test's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

FIX = Path(__file__).parent / "fixtures" / "towers"
TOWERS = FIX / "cellmapper_mixed.csv"
CM_HEADER = "latitude,longitude,MCC,MNC,LAC,CID,ARFCN,PCI"


@dataclass(frozen=True)
class Case:
    """``args(d)`` gives the CLI arguments for the test folder ``d`` (after ``files`` are written there)."""

    id: str
    args: Callable[[Path], list[str]]
    words: tuple[str, ...]  # each must appear in the message (file/row/field and what is wrong)
    files: tuple[tuple[str, bytes], ...] = ()
    code: int = 2
    fix: bool = True  # the message carries a "fix:" line


def cfg_case(id: str, body: str, *words: str, cmd: str = "ingest") -> Case:
    """A bad --config for a cheap command: the config is read before any stage starts."""
    base = ["ingest", "--city", "paris", "--offline"] if cmd == "ingest" else ["build", "--city", "paris", "--offline", "--dry-run"]
    return Case(id, lambda d: [*base, "--out", str(d / "out"), "--config", str(d / "c.toml")],
                ("c.toml", *words), files=(("c.toml", body.encode()),))


def towers_case(id: str, content: bytes, *words: str, name: str = "t.csv", extra: tuple[str, ...] = ()) -> Case:
    return Case(id, lambda d: ["ingest", "--city", "paris", "--offline", "--out", str(d / "out"),
                                "--towers", str(d / name), *extra],
                (name, *words), files=((name, content),))


def ingest(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["ingest", "--out", str(d / "out"), *extra]


def build(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["build", "--city", "paris", "--offline", "--out", str(d / "out"), *extra]


CASES = [
    # ---------------------------------------------------------------- config file: read before any stage
    cfg_case("config-unknown-section", "[tracer]\nmax_depth = 2\n", "tracer", "sections"),
    cfg_case("config-unknown-key", "[trace]\nmax_depht = 2\n", "[trace]", "max_depht", "max_depth"),
    cfg_case("config-unknown-top-key", "max_link = 3\n", "max_link", "max_links"),
    cfg_case("config-wrong-type", "[trace]\nmax_depth = 'deep'\n", "[trace]", "max_depth", "an integer"),
    cfg_case("config-nan", "[trace]\nmin_path_gain_db = nan\n", "min_path_gain_db", "finite"),
    cfg_case("config-inf", "[receivers]\nheight_m = inf\n", "[receivers]", "height_m", "finite"),
    cfg_case("config-negative", "[receivers]\ncount = -3\n", "count", "> 0"),
    cfg_case("config-depth-range", "[trace]\nmax_depth = 99\n", "max_depth", "0..10"),
    cfg_case("config-polarization", "[trace]\npolarization = 'Q'\n", "polarization", "V, H, VH, cross"),
    cfg_case("config-rx-pattern", "[trace]\nrx_pattern = 'omni'\n", "rx_pattern", "tr38901"),
    cfg_case("config-tx-pattern", "[trace]\nantenna_pattern = 'yagi'\n", "antenna_pattern", "iso"),
    cfg_case("config-receiver-mode", "[receivers]\nmode = 'spiral'\n", "mode", "'random'"),
    cfg_case("config-drjit-threads", "[dask]\ndrjit_threads = -4\n", "drjit_threads", ">= 0"),
    cfg_case("config-memory-limit", "[dask]\nmemory_limit = 'lots'\n", "memory_limit", "4GB"),
    cfg_case("config-scheduler-address", "[dask]\nscheduler_address = 'my laptop'\n", "scheduler_address", "tcp://"),
    cfg_case("config-threads-per-worker", "[dask]\nthreads_per_worker = 2\n", "threads_per_worker", "must be 1"),
    cfg_case("config-max-links", "max_links = -1\n", "max_links", ">= 0"),
    cfg_case("config-not-toml", "[trace\nmax_depth = 2\n", "not valid TOML"),
    cfg_case("config-bool-as-int", "[trace]\nlos = 1\n", "los", "true or false"),
    cfg_case("config-ingest-range", "[ingest]\nlevel_height_m = 0\n", "[ingest]", "level_height_m", "> 0"),
    cfg_case("views-unknown-section", "[views.cir_tap]\nnum_taps = 3\n", "[views.cir_tap]", "cir_taps", cmd="build"),
    cfg_case("views-unknown-key", "[views.folded_lte]\nnum_framez = 3\n", "[views.folded_lte]", "num_framez", "num_frames", cmd="build"),
    cfg_case("views-wrong-type", "[views.cir_taps]\nnum_taps = 'many'\n", "[views.cir_taps]", "num_taps", cmd="build"),
    cfg_case("views-not-a-table", "[views]\nfolded_lte = 3\n", "views.folded_lte", "not a table", cmd="build"),
    cfg_case("views-enum", "[views.spike_train]\npassband_shape = 'gauss'\n", "passband_shape", "'ideal'", cmd="build"),
    Case("config-missing", ingest("--city", "paris", "--offline", "--config", "/nonexistent/c.toml"),
         ("/nonexistent/c.toml", "not found")),
    Case("config-is-a-directory", lambda d: ["ingest", "--city", "paris", "--out", str(d / "out"), "--config", str(d)],
         ("is not a file",)),
    # ---------------------------------------------------------------- command-line options
    Case("views-unknown-name", build("--views", "folded_lte,folded-lte"), ("--views", "folded-lte", "folded_lte")),
    Case("receivers-zero", build("--receivers", "0", "--dry-run"), ("count", "> 0")),
    Case("receivers-and-spacing", build("--receivers", "3", "--spacing", "5"), ("--receivers", "--spacing"), fix=False),
    Case("spacing-negative", build("--spacing", "-5"), ("spacing_m", "> 0")),
    Case("workers-negative", build("--workers", "-1"), ("workers", ">= 0")),
    Case("scheduler-option", build("--scheduler-address", "nowhere"), ("scheduler_address", "tcp://")),
    Case("max-links-negative", build("--max-links", "-1"), ("--max-links", ">= 0"), fix=False),
    Case("bbox-three-numbers", ingest("--bbox", "1,2,3", "--offline"), ("--bbox", "4 numbers")),
    Case("bbox-out-of-range", ingest("--bbox", "200,0,201,1", "--offline"), ("--bbox", "200,0,201,1")),
    Case("bbox-west-east-swapped", ingest("--bbox", "2.3,48.8,2.2,48.9", "--offline"), ("--bbox",)),
    Case("city-unknown", ingest("--city", "atlantis", "--offline"), ("--city", "atlantis", "paris")),
    Case("place-offline", ingest("--place", "Monaco", "--offline"), ("--place", "network")),
    Case("bbox-offline", ingest("--bbox", "2.29,48.87,2.30,48.88", "--offline"), ("--bbox", "network", "--osm-file")),
    Case("bbox-too-large", ingest("--bbox", "2.0,48.6,2.7,49.0", "--towers", str(TOWERS)),
         ("--bbox", "km^2", "--large-area")),
    Case("scheduler-unreachable", build("--scheduler-address", "tcp://127.0.0.1:9", "--receivers", "2"),
         ("tcp://127.0.0.1:9", "scheduler")),
    cfg_case("config-limits", "[limits]\nmax_area_km2 = -1\n", "[limits]", "max_area_km2"),
    Case("no-source", ingest(), ("--city/--place/--bbox/--osm-file",)),
    Case("two-sources", ingest("--city", "paris", "--bbox", "2.29,48.87,2.30,48.88"), ("--city, --bbox",)),
    Case("out-is-a-file", lambda d: ["ingest", "--city", "paris", "--offline", "--out", str(d / "afile")],
         ("afile", "--out", "is a file"), files=(("afile", b"x"),)),
    Case("out-under-a-file", lambda d: ["ingest", "--city", "paris", "--offline", "--out", str(d / "afile" / "sub")],
         ("--out", "is a file"), files=(("afile", b"x"),)),
    # ---------------------------------------------------------------- building files
    Case("osm-file-missing", ingest("--osm-file", "/nonexistent/area.osm.pbf", "--towers", str(TOWERS)),
         ("/nonexistent/area.osm.pbf", "--osm-file", "not found")),
    Case("osm-file-unknown-type", lambda d: ["ingest", "--out", str(d / "out"), "--osm-file", str(d / "a.shp"), "--towers", str(TOWERS)],
         ("a.shp", "unknown building file type", ".osm.pbf"), files=(("a.shp", b"x"),)),
    Case("osm-file-garbage", lambda d: ["ingest", "--out", str(d / "out"), "--osm-file", str(d / "a.osm"), "--towers", str(TOWERS)],
         ("a.osm", "cannot read OSM data"), files=(("a.osm", b"garbage"),)),
    Case("geojson-not-json", lambda d: ["ingest", "--out", str(d / "out"), "--osm-file", str(d / "a.geojson"), "--towers", str(TOWERS)],
         ("a.geojson", "GeoJSON"), files=(("a.geojson", b"{not json"),)),
    Case("geojson-coordinates-out-of-range",
         lambda d: ["ingest", "--out", str(d / "out"), "--osm-file", str(d / "a.geojson"), "--towers", str(TOWERS)],
         ("a.geojson", "coordinates", "longitude/latitude", "EPSG:4326"),
         files=(("a.geojson", json.dumps({"type": "FeatureCollection", "features": [{
             "type": "Feature", "properties": {"building": "yes"}, "geometry": {"type": "Polygon", "coordinates": [
                 [[651000, 6862000], [651020, 6862000], [651020, 6862020], [651000, 6862000]]]}}]}).encode()),)),
    # ---------------------------------------------------------------- tower files: checked before the scene is loaded
    Case("towers-missing", ingest("--city", "paris", "--offline", "--towers", "/nonexistent/t.csv"),
         ("/nonexistent/t.csv", "not found")),
    Case("towers-directory", lambda d: ["ingest", "--city", "paris", "--offline", "--out", str(d / "out"), "--towers", str(d)],
         ("is a directory",)),
    towers_case("towers-empty", b"", "empty"),
    towers_case("towers-blank-lines", b"\n \n\t\n", "empty"),
    towers_case("towers-binary", b"\x00\x01\x02PK", "binary"),
    towers_case("towers-header-only", (CM_HEADER + "\n").encode(), "no data rows"),
    towers_case("towers-unknown-layout", b"name,value\na,1\n", "unknown tower CSV layout", "cellmapper", "opencellid"),
    towers_case("towers-projected-xy", b"x,y,cid\n651000,6862000,1\n", "projected x/y", "WGS84"),
    towers_case("towers-latitude-range", (CM_HEADER + "\n95,2.29,208,1,751,1,1501,10\n").encode(),
                "row 2", "latitude", "-90.0..90.0"),
    towers_case("towers-longitude-text", (CM_HEADER + "\n48.87,east,208,1,751,1,1501,10\n").encode(),
                "row 2", "longitude", "not a number"),
    towers_case("towers-unknown-earfcn", (CM_HEADER + "\n48.87,2.29,208,1,751,1,999999,10\n").encode(),
                "row 2", "ARFCN", "3GPP"),
    towers_case("towers-missing-cid", (CM_HEADER + "\n48.87,2.29,208,1,751,,1501,10\n").encode(),
                "row 2", "CID", "missing"),
    towers_case("towers-strict-repair", (CM_HEADER + ",azimuth\n48.87,2.29,208,1,751,1,1501,10,999\n").encode(),
                "row 2", "azimuth", extra=("--strict",)),
    towers_case("towers-radio-unsupported", b"radio,mcc,net,area,cell,unit,lon,lat\nCDMA,208,1,751,1,1,2.29,48.87\n",
                "row 2", "radio", "CDMA"),
    # ---------------------------------------------------------------- existing builds and catalogs
    Case("view-build-not-a-build", lambda d: ["view", "build", "folded_lte", str(d)], ("not a twin directory",)),
    Case("view-build-unknown-view", lambda d: ["view", "build", "nope", str(d)], ("nope", "folded_lte")),
    Case("catalog-not-a-build", lambda d: ["catalog", "ls", str(d)], ("not a twin directory", "catalog/CURRENT")),
    Case("catalog-query-not-a-build", lambda d: ["catalog", "query", str(d), " "], ("not a twin directory",)),
]


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the sha256 of files ('dir' for folders)."""
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns:
            out[os.path.relpath(os.path.join(dp, n), root)] = "dir"
        for n in fns:
            p = os.path.join(dp, n)
            out[os.path.relpath(p, root)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def test_at_least_40_kinds():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path, case: Case):
    for name, content in case.files:
        (tmp_path / name).write_bytes(content)
    before = tree(tmp_path)
    r = CliRunner().invoke(app, case.args(tmp_path))
    msg = r.stderr
    assert r.exit_code == case.code, (r.exit_code, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output and "error:" in msg
    flat = " ".join(msg.split())
    for w in case.words:
        assert w in flat, (w, flat)
    if case.fix:
        assert "fix:" in flat, flat
    assert tree(tmp_path) == before, "a failed command wrote or removed files"
