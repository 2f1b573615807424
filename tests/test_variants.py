"""The build's [split] table survives resume and publish. Two variants of cir_taps side by side (default and ``rx_array = true``) in one build: each in its own folder
``views/cir_taps/<variant>/``, and pyarrow, polars, DuckDB (``twin catalog query``), ``twin.open`` and
HuggingFace ``load_dataset`` on a published copy each read either one cleanly; verify fails on a mixed folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import twin
from twin.catalog import Catalog
from twin.cli import app

runner = CliRunner()

SMALL = """
[trace]
max_depth = 2
samples_per_src = 20000
max_num_paths_per_src = 20000
receivers_per_task = 2
cells_per_task = 12
diffraction = false
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("variants")
    (base / "small.toml").write_text(SMALL)
    (base / "array.toml").write_text(SMALL + "\n[views.cir_taps]\nrx_array = true\n")
    r = runner.invoke(app, ["build", "--city", "paris", "--offline", "--out", str(base / "out"), "--receivers", "4",
                            "--config", str(base / "small.toml"), "--views", "cir_taps"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    root = base / "out" / "paris"
    r = runner.invoke(app, ["view", "build", "cir_taps", str(root), "--config", str(base / "array.toml")],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    variants = twin.open(root).views()["cir_taps"]
    assert len(variants) == 2
    by_array = {}
    for v in variants:
        cfg = json.loads(pq.read_schema(next((root / "views" / "cir_taps" / v).glob("part-*.parquet"))).metadata[b"twin.config"])
        by_array[bool(cfg["rx_array"])] = v
    return {"root": root, "base": base, "variants": variants, "default": by_array[False], "array": by_array[True]}


def _antennas(shape_meta: bytes) -> int:
    return json.loads(shape_meta)[1]  # (cell, rx_antenna, tap, complex)


def test_each_variant_in_its_own_folder_and_verify_ok(build):
    root = build["root"]
    cat = Catalog(root).entries(view="cir_taps").to_pylist()
    for r in cat:
        assert r["path"].startswith(f"views/cir_taps/{r['config_hash']}/part-"), r["path"]
    assert not list((root / "views" / "cir_taps").glob("*.parquet"))  # nothing beside the variant folders
    r = runner.invoke(app, ["catalog", "verify", str(root)])
    assert r.exit_code == 0, r.output
    ls = runner.invoke(app, ["view", "ls", str(root)])
    assert ls.exit_code == 0 and all(v in ls.output for v in build["variants"]), ls.output


def test_build_split_survives_resume_and_publish(build, tmp_path):
    root, base = build["root"], build["base"]
    m = json.loads((root / "twin.json").read_text())
    assert m["split"]["by"] == "tile" and m["split"]["tile_m"] == 50.0 and m["split"]["fractions"] == [0.8, 0.1, 0.1]
    split = pq.read_table(root / "splits/split.parquet").to_pandas()
    assert sorted(split["rx_id"]) == sorted(pq.read_table(root / "receivers.parquet")["rx_id"].to_pylist())
    assert (split.groupby("group")["split"].nunique() == 1).all()  # no tile in two splits
    assert Catalog(root).entries(view="split").num_rows == 1
    sha = m["split"]["sha256"]
    r = runner.invoke(app, ["build", "--city", "paris", "--offline", "--out", str(base / "out"), "--receivers", "4",
                            "--config", str(base / "small.toml"), "--views", "cir_taps"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    m2 = json.loads((root / "twin.json").read_text())
    assert m2["split"]["sha256"] == sha and Catalog(root).entries(view="split")["sha256"].to_pylist() == [sha]
    pub = tmp_path / "pub"
    assert runner.invoke(app, ["catalog", "publish", str(root), str(pub)], catch_exceptions=False).exit_code == 0
    assert json.loads((pub / "twin.json").read_text())["split"]["sha256"] == sha
    assert pq.read_table(pub / "splits/split.parquet").equals(pq.read_table(root / "splits/split.parquet"))
    assert twin.open(pub).split_table().num_rows == len(split)
    card = json.loads((pub / "dataset_card.json").read_text())
    b = twin.open(root)
    counts = {s: len(b.cir(split=s)) for s in sorted(set(split["split"]))}  # 4 receivers: a split may be empty
    got = {s: n for s, n in card["configs"]["cir"]["split_rows"].items() if n}
    assert got == {s: n for s, n in counts.items() if n} and sum(counts.values()) == len(b.cir())


def test_pyarrow_polars_duckdb_twin_open_read_one_variant(build):
    import polars as pl

    root = build["root"]
    n_rx = pq.read_metadata(root / "receivers.parquet").num_rows
    rows = {}
    for v in build["variants"]:
        folder = root / "views" / "cir_taps" / v
        t = pads.dataset(folder, format="parquet").to_table()
        rows[v] = t.num_rows
        assert t.num_rows == len(set(t.column("rx_id").to_pylist())) <= n_rx  # every receiver once
        df = pl.scan_parquet(str(folder / "*.parquet")).collect()
        assert df.height == t.num_rows and sorted(df["rx_id"].to_list()) == sorted(t.column("rx_id").to_pylist())
        q = runner.invoke(app, ["catalog", "query", str(root),
                                f"select count(*) as n, count(distinct rx_id) as d from cir_taps_{v}", "--json"])
        assert q.exit_code == 0, q.output
        got = json.loads(q.output.strip().splitlines()[-1])
        assert int(got["n"]) == int(got["d"]) == t.num_rows
        reader = twin.open(root).view("cir_taps", variant=v)
        assert len(reader) == t.num_rows
    # the two variants differ in the receive array: the CIR tensors' antenna axis
    sd = pq.read_schema(next((root / "views/cir_taps" / build["default"]).glob("*.parquet")))
    sa = pq.read_schema(next((root / "views/cir_taps" / build["array"]).glob("*.parquet")))
    assert sd.field("cir").type != sa.field("cir").type
    # a query naming the bare view is refused, listing the variant tables
    q = runner.invoke(app, ["catalog", "query", str(root), "select count(*) from cir_taps"])
    assert q.exit_code == 2 and all(f"cir_taps_{v}" in q.output for v in build["variants"]), q.output
    with pytest.raises(twin.errors.TwinInputError, match="2 variants"):
        twin.open(root).view("cir_taps")


def test_hf_load_dataset_reads_each_variant_config(build, tmp_path):
    root = build["root"]
    assert runner.invoke(app, ["split", str(root), "--by", "random", "--seed", "1",
                               "--fractions", "0.5,0,0.5"]).exit_code == 0
    pub = tmp_path / "pub"
    r = runner.invoke(app, ["catalog", "publish", str(root), str(pub)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    card = json.loads((pub / "dataset_card.json").read_text())
    want = {}
    for v in build["variants"]:
        name = f"cir_taps-{v}"
        assert card["configs"][name]["variant"] == v
        want[name] = {s: n for s, n in card["configs"][name]["split_rows"].items() if n}
    script = (
        "import json, sys, datasets\n"
        "pub, want = sys.argv[1], json.loads(sys.argv[2])\n"
        "out = {}\n"
        "for cfg, splits in want.items():\n"
        "    for s in splits:\n"
        "        d = datasets.load_dataset(pub, cfg, split=s)\n"
        "        out[f'{cfg}/{s}'] = [len(d), len(d[0]['cir'][0]), len(set(d['rx_id']))]\n"
        "print(json.dumps(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TWIN_WT")}  # HF's `datasets`, not ours
    env["HF_DATASETS_CACHE"] = str(tmp_path / "hf")
    env["HF_HUB_OFFLINE"] = "1"
    p = subprocess.run([sys.executable, "-c", script, str(pub), json.dumps(want)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for cfg, splits in want.items():
        v = cfg.split("-", 1)[1]
        sch = pq.read_schema(next((root / "views/cir_taps" / v).glob("*.parquet")))
        n_ant = _antennas(sch.field("cir").metadata[b"shape"])
        for s, n in splits.items():
            rows, outer, distinct = got[f"{cfg}/{s}"]
            assert rows == n == distinct  # each receiver once: one variant's rows, not both
            assert outer == n_ant


def test_verify_fails_on_a_mixed_variant_folder_and_drop(build, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(build["root"], root)
    d, a = build["default"], build["array"]
    cat = Catalog(root)
    moved = [r["path"] for r in cat.entries(view="cir_taps").to_pylist() if r["config_hash"] == a][0]
    dest = f"views/cir_taps/{d}/{Path(moved).name}"
    (root / moved).rename(root / dest)
    rows = [r for r in cat.shard_entries(view="cir_taps") if r.path == moved]
    cat.unregister([moved])
    import dataclasses

    cat.register([dataclasses.replace(rows[0], path=dest)])
    r = runner.invoke(app, ["catalog", "verify", str(root)])
    assert r.exit_code == 1 and f"views/cir_taps/{d}/" in (r.output + (r.stderr or "")), r.output
    # dropping a variant removes its folder and its catalog rows; the other stays readable
    root2 = tmp_path / "copy2"
    shutil.copytree(build["root"], root2)
    r = runner.invoke(app, ["view", "drop", str(root2), "cir_taps", "--variant", a[:6]])
    assert r.exit_code == 0, r.output
    assert not (root2 / "views/cir_taps" / a).exists() and (root2 / "views/cir_taps" / d).is_dir()
    b = twin.open(root2)
    assert b.views()["cir_taps"] == [d]
    assert len(b.view("cir_taps")) == pads.dataset(root2 / "views/cir_taps" / d).count_rows()
    assert runner.invoke(app, ["catalog", "verify", str(root2)]).exit_code == 0
    assert np.all(np.isfinite(b.view("cir_taps")[0]["cir"].real))


def test_published_copy_validates_has_no_build_paths_and_rederives_a_view(build, tmp_path):
    """Publish: mlcroissant validates croissant.json; no absolute path of the build machine anywhere in PUB;
    `twin view build cir_taps` works on a copy of PUB (scene and trace plan travel with it)."""
    root = build["root"]
    pub = tmp_path / "pub"
    r = runner.invoke(app, ["catalog", "publish", str(root), str(pub)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    needles = {str(root.resolve()).encode(), str(build["base"].resolve()).encode(), str(tmp_path.resolve()).encode()}
    for f in pub.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not any(n in data for n in needles), f"absolute build path in {f.relative_to(pub)}"
    script = ("import sys, mlcroissant as mlc\n"
              "ds = mlc.Dataset(jsonld=sys.argv[1])\n"
              "print(len(ds.metadata.record_sets))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TWIN_WT")}
    p = subprocess.run([sys.executable, "-c", script, str(pub / "croissant.json")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and int(p.stdout.strip().splitlines()[-1]) >= 1, p.stderr[-3000:]
    pub2 = tmp_path / "pub2"
    shutil.copytree(pub, pub2)
    v = build["default"]
    assert runner.invoke(app, ["view", "drop", str(pub2), "cir_taps", "--variant", v]).exit_code == 0
    assert not (pub2 / "views" / "cir_taps" / v).exists()
    r = runner.invoke(app, ["view", "build", "cir_taps", str(pub2), "--config", str(build["base"] / "small.toml")],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    got = twin.open(pub2).view("cir_taps", variant=v).to_table()
    want = twin.open(root).view("cir_taps", variant=v).to_table()
    assert got.num_rows == want.num_rows
    key = [c for c in ("rx_id", "tx_id") if c in want.column_names]
    assert got.sort_by([(k, "ascending") for k in key]).equals(want.sort_by([(k, "ascending") for k in key]))
    assert runner.invoke(app, ["catalog", "verify", str(pub2)]).exit_code == 0
