"""The CLI in-process: ingest of the embedded Paris default, bad input (exit 2, no traceback, nothing written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from twin.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def paris(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ingest")
    r = run("ingest", "--city", "paris", "--offline", "--out", out)
    assert r.exit_code == 0, r.output + r.stderr
    return out / "paris"


def test_help_everywhere():
    for cmd in ([], ["ingest"], ["build"], ["doctor"], ["catalog"], ["view"], ["bench"], ["bench", "trace"], ["view", "build"]):
        r = run(*cmd, "--help")
        assert r.exit_code == 0, (cmd, r.output)
        assert "Usage" in r.output


def test_paris_offline_bundle(paris: Path):
    for rel in ("twin.json", "scene/scene.xml", "buildings.parquet", "towers.parquet", "previews/top.png"):
        assert (paris / rel).exists(), rel
    assert any((paris / "scene" / "meshes").glob("*.ply"))
    b = pq.read_table(paris / "buildings.parquet").to_pandas()
    assert len(b) >= 300
    assert (b["height_m"] > 0).all() and b["height_source"].notna().all()
    t = pq.read_table(paris / "towers.parquet").to_pandas()
    assert t["site_id"].nunique() >= 8
    for col in ("cell_id", "site_id", "pci", "earfcn", "frequency_hz", "x", "y", "z", "azimuth_deg", "height_m"):
        assert col in t.columns
    m = json.loads((paris / "twin.json").read_text())
    assert m["stages"]["ingest"]["status"] == "done"
    assert len(m["scene"]["hash"]) == 64
    md = pq.read_schema(paris / "towers.parquet").metadata
    assert md[b"twin.scene_hash"].decode() == m["scene"]["hash"]
    # the tower rows' fate is accounted for
    acc = m["stages"]["ingest"]["tower_rows"]
    assert len(acc["kept_rows"]) + len(acc["repaired_or_skipped"]) == sum(acc["counts"][k] for k in ("kept", "repaired", "skipped"))


def test_paris_scene_loads_in_sionna(paris: Path):
    from twin.llvm import setup_mitsuba

    setup_mitsuba()
    import sionna.rt as rt

    scene = rt.load_scene(str(paris / "scene" / "scene.xml"))
    assert len(scene.objects) > 0


def test_existing_output_refused(paris: Path):
    r = run("ingest", "--city", "paris", "--offline", "--out", paris.parent)
    assert r.exit_code == 2
    assert "exists" in r.stderr and "--overwrite" in r.stderr
    assert "Traceback" not in r.stderr + r.output
    assert (paris / "twin.json").exists()  # nothing lost


def test_unknown_tower_layout_exit_2(tmp_path: Path):
    csv = tmp_path / "sites.csv"
    csv.write_text("Operateur;x;y;2G;3G;4G\n20810;647884.0;6864134.0;0;1;0\n")
    out = tmp_path / "out"
    r = run("ingest", "--city", "paris", "--offline", "--towers", csv, "--out", out)
    assert r.exit_code == 2
    err = " ".join(r.stderr.split())
    assert "sites.csv" in err and "latitude" in err.lower() and "cellmapper" in err.lower() and "opencellid" in err.lower()
    assert "Traceback" not in r.stderr + r.output
    assert not (out / "paris").exists()
    assert not any(out.glob(".paris*")) if out.exists() else True


def test_bad_latitude_reported_by_row_and_field(tmp_path: Path):
    csv = tmp_path / "towers.csv"
    csv.write_text(
        "latitude,longitude,altitude,MCC,MNC,LAC,CID,signal,type,subtype,ARFCN,PCI\n"
        "48.8738,2.2950,0,208,1,75008,100,-80,LTE,LTE,1501,10\n"
        "123,2.2950,0,208,1,75008,101,-80,LTE,LTE,1501,11\n"
    )
    r = run("ingest", "--city", "paris", "--offline", "--towers", csv, "--strict", "--out", tmp_path / "o")
    assert r.exit_code == 2
    err = " ".join(r.stderr.split())
    assert "row 3" in err and "latitude" in err
    assert "Traceback" not in r.stderr + r.output


def test_two_sources_exit_2(tmp_path: Path):
    r = run("ingest", "--city", "paris", "--bbox", "2.28,48.87,2.30,48.88", "--out", tmp_path)
    assert r.exit_code == 2 and "exactly one" in r.stderr


def test_no_top_level_stage_packages(tmp_path: Path):
    code = (
        "import importlib.util as u, json; "
        "print(json.dumps({n: u.find_spec(n) is not None for n in ['ingest','render','datasets','baselines','catalog']}));"
        "import twin.ingest, twin.render, twin.datasets, twin.baselines, twin.catalog"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    # 'datasets' may legitimately be HuggingFace's if installed; it must never resolve into this repo
    for n, present in found.items():
        if present:
            spec = subprocess.run([sys.executable, "-c", f"import importlib.util as u; print(u.find_spec('{n}').origin)"], cwd=tmp_path, capture_output=True, text=True)
            repo = str(Path(__file__).resolve().parents[1])
            assert not spec.stdout.strip().startswith(os.path.join(repo, n) + os.sep), (n, spec.stdout)


def test_doctor_exit_0_names_llvm():
    r = run("doctor")
    assert r.exit_code == 0, r.output + r.stderr
    assert "libLLVM" in r.output and ".so" in r.output


def test_bad_rows_reported_without_strict(tmp_path: Path):
    csv = tmp_path / "towers.csv"
    csv.write_text(
        "latitude,longitude,altitude,MCC,MNC,LAC,CID,signal,type,subtype,ARFCN,PCI\n"
        "48.8738,2.2950,0,208,1,75008,100,-80,LTE,LTE,1501,10\n"
        "123,2.2950,0,208,1,75008,101,-80,LTE,LTE,1501,11\n"
    )
    r = run("ingest", "--city", "paris", "--offline", "--towers", csv, "--out", tmp_path / "o")
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "row 3" in err and "latitude" in err and "skipped" in err
    m = json.loads((tmp_path / "o" / "paris" / "twin.json").read_text())
    rows = m["stages"]["ingest"]["tower_rows"]["repaired_or_skipped"]
    assert rows == [dict(rows[0], row=3, status="skipped", field="latitude")]
