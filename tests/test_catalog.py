"""The catalog stage (docs/architecture.md "Catalog"): atomic shard writes, snapshots, verify, DuckDB queries, publish, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import twin.catalog.core as core
from twin.catalog import Catalog, ShardEntry, VerifyReport, publish, write_shard
from twin.catalog.cli import catalog_app
from twin.errors import TwinInputError
from twin.schema import (
    CIR_SCHEMA,
    META_CODE_VERSION,
    META_CONFIG_HASH,
    META_TASK_KEY,
    META_VIEW,
    file_metadata,
    tensor_array,
    tensor_field,
)

# ----------------------------------------------------------------------------------------------- fixtures


def cir_table(n: int, seed: int = 0, rx0: int = 0) -> pa.Table:
    """n synthetic CIR rows (CIR_SCHEMA) with 1..4 paths each; delays = distance / c."""
    rng = np.random.default_rng(seed)
    c = 299_792_458.0
    cols: dict[str, list] = {k: [] for k in CIR_SCHEMA.names}
    for i in range(n):
        k = int(rng.integers(1, 5))
        tx = rng.uniform(-200, 200, 3)
        rx = rng.uniform(-200, 200, 3)
        d = float(np.linalg.norm(tx - rx))
        tau = np.sort(d / c + rng.uniform(0, 1e-6, k))
        tau[0] = d / c
        a = rng.normal(size=k) * 1e-4
        b = rng.normal(size=k) * 1e-4
        cols["link_id"].append(int(rng.integers(0, 2**63)) + 2**63 * (i % 2))
        cols["tx_id"].append(f"208-1-{i % 3}-{i % 7}")
        cols["rx_id"].append(rx0 + i)
        for j, ax in enumerate("xyz"):
            cols[f"tx_{ax}"].append(float(tx[j]))
            cols[f"rx_{ax}"].append(float(rx[j]))
        cols["frequency_hz"].append(2.6e9)
        cols["num_paths"].append(k)
        cols["tau_s"].append(tau.tolist())
        cols["a_re"].append(a.astype(np.float32).tolist())
        cols["a_im"].append(b.astype(np.float32).tolist())
        for ang in ("theta_t", "phi_t", "theta_r", "phi_r"):
            cols[ang].append(rng.uniform(0, np.pi, k).astype(np.float32).tolist())
        cols["doppler_hz"].append([0.0] * k)
        cols["interactions"].append([[1] * j for j in range(k)])
        cols["los"].append(bool(i % 2))
        cols["los_distance_m"].append(d)
        cols["path_gain_db"].append(float(10 * np.log10(np.sum(a**2 + b**2))))
    return pa.Table.from_pydict(cols, schema=CIR_SCHEMA)


def view_table(n: int) -> pa.Table:
    f = tensor_field("window", (3, 2), ("sample", "reim"), units="V^2")
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 3, 2)
    return pa.table(
        {"rx_id": pa.array(range(n), pa.int64()), "window": tensor_array(x, f)},
        schema=pa.schema([pa.field("rx_id", pa.int64()), f]),
    )


META = file_metadata(config_hash="abcd1234abcd1234", scene_hash="s1")


def build(root: Path, shards: int = 2, rows: int = 5) -> list[ShardEntry]:
    """A tiny twin directory: `shards` CIR shards + one folded_lte view shard, all registered."""
    entries = [
        write_shard(
            root,
            f"cir/part-{i:05d}.parquet",
            cir_table(rows, seed=i, rx0=100 * i),
            view="cir",
            metadata=file_metadata(config_hash="abcd1234abcd1234", task_key=f"t{i}"),
            task_key=f"t{i}",
            dataset="paris",
            city="Paris",
        )
        for i in range(shards)
    ]
    entries.append(
        write_shard(
            root,
            "views/folded_lte/part-00000.parquet",
            view_table(4),
            view="folded_lte",
            metadata=META,
            task_key="v0",
            bbox=(2.289, 48.870, 2.301, 48.877),
            dataset="paris",
            city="Paris",
        )
    )
    Catalog(root).register(entries)
    manifest = {  # the layout twin.pipeline writes
        "name": "paris",
        "origin": {"lat": 48.87378, "lon": 2.29503},
        "area": {"bbox_wgs84": [2.289, 48.870, 2.301, 48.877]},
        "sources": {
            "buildings": {"kind": "bundled", "name": "etoile"},
            "towers": {"path": "towers.csv", "sha256": "00", "note": "synthetic"},
            "licences": {"scene": "Sionna RT scene, Apache-2.0 (NVIDIA)", "towers": "CC0-1.0 (synthetic)"},
        },
        "versions": {"sionna-rt": "2.2.0"},
        "config": {"trace": {"seed": 1}},
        "code_version": "0.1.0",
    }
    (root / "twin.json").write_text(json.dumps(manifest))
    (root / "previews").mkdir(exist_ok=True)
    (root / "previews" / "top.png").write_bytes(b"\x89PNG fake preview bytes")
    return entries


def mount() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(catalog_app, name="catalog")

    @app.callback()
    def _root() -> None:  # makes "catalog" a sub-command rather than the app itself
        pass

    return app


def cli(*args: str):
    return CliRunner().invoke(mount(), ["catalog", *map(str, args)])


# ---------------------------------------------------------------------------------------------- write_shard


def test_write_register_entries_round_trip(tmp_path):
    t = cir_table(25, seed=3)
    e = write_shard(
        tmp_path,
        "cir/part-00000.parquet",
        t,
        view="cir",
        metadata=META,
        task_key="k0",
        dataset="paris",
        city="Paris",
    )
    f = tmp_path / "cir/part-00000.parquet"
    # independent oracles: hashlib over the bytes on disk, os.stat, the Parquet footer
    assert e.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert e.bytes == f.stat().st_size and e.rows == t.num_rows
    md = pq.ParquetFile(f).metadata
    assert md.row_group(0).column(0).compression == "ZSTD"
    kv = pq.read_schema(f).metadata
    assert kv[META_VIEW.encode()] == b"cir" and kv[META_TASK_KEY.encode()] == b"k0"
    assert kv[META_CONFIG_HASH.encode()] == b"abcd1234abcd1234" and e.config_hash == "abcd1234abcd1234"
    assert e.code_version == META[META_CODE_VERSION]
    assert pq.read_table(f).cast(CIR_SCHEMA).equals(t)
    # stats: numeric scalar columns only, values from numpy
    stats = e.stats
    assert set(stats) == {
        "link_id",
        "rx_id",
        "tx_x",
        "tx_y",
        "tx_z",
        "rx_x",
        "rx_y",
        "rx_z",
        "frequency_hz",
        "num_paths",
        "los_distance_m",
        "path_gain_db",
    }
    assert stats["rx_x"]["min"] == pytest.approx(np.min(t["rx_x"].to_numpy()))
    assert (
        stats["num_paths"]["max"] == int(np.max(t["num_paths"].to_numpy())) and stats["rx_id"]["nulls"] == 0
    )
    assert e.bbox is None  # not given; the local extent is in the stats instead
    assert (stats["rx_y"]["min"], stats["rx_y"]["max"]) == (
        min(t["rx_y"].to_pylist()),
        max(t["rx_y"].to_pylist()),
    )
    # fingerprint ignores metadata but not types
    assert e.schema_fingerprint == core.schema_fingerprint(CIR_SCHEMA.with_metadata({"x": "y"}))
    assert e.schema_fingerprint != core.schema_fingerprint(CIR_SCHEMA.set(0, pa.field("link_id", pa.int64())))

    cat = Catalog(tmp_path)
    assert cat.entries().num_rows == 0 and cat.entries().schema.equals(core.CATALOG_SCHEMA)
    cat.register([e])
    got = cat.shard_entries()
    assert len(got) == 1 and got[0] == e
    assert cat.task_keys("cir") == {"k0"} and cat.task_keys("folded_lte") == set()
    # the snapshot is plain Parquet: pyarrow and DuckDB read it directly
    snap = cat.snapshot_path()
    assert pq.read_table(snap)["sha256"].to_pylist() == [e.sha256]
    import duckdb

    assert duckdb.sql(f"select rows from read_parquet('{snap}')").fetchall() == [(t.num_rows,)]


def test_row_groups_capped(tmp_path):
    t = pa.table({"x": pa.array(np.arange(25_000, dtype=np.float64))})
    e = write_shard(tmp_path, "views/v/part-0.parquet", t, view="v", metadata=META)
    md = pq.ParquetFile(tmp_path / e.path).metadata
    assert md.num_row_groups == 3 and max(md.row_group(i).num_rows for i in range(3)) <= 10_000
    assert e.bbox is None and e.stats["x"] == {"min": 0.0, "max": 24_999.0, "nulls": 0}


def test_stats_nan_inf_and_view_tensor(tmp_path):
    t = pa.table(
        {
            "a": [1.0, float("nan"), float("inf")],
            "b": pa.array([None, 2, 3], pa.int32()),
            "s": ["x", "y", "z"],
        }
    )
    e = write_shard(tmp_path, "views/v/p.parquet", t, view="v", metadata=META)
    assert e.stats == {"a": {"min": 1.0, "max": "inf", "nulls": 0}, "b": {"min": 2, "max": 3, "nulls": 1}}
    json.loads(e.column_stats)  # strict JSON (no NaN tokens)
    v = write_shard(tmp_path, "views/folded_lte/p.parquet", view_table(3), view="folded_lte", metadata=META)
    f = pq.read_schema(tmp_path / v.path).field("window")
    assert json.loads(f.metadata[b"shape"]) == [3, 2]  # field metadata survives


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"relpath": "/abs/x.parquet"}, "relpath"),
        ({"relpath": "../x.parquet"}, "relpath"),
        ({"relpath": "cir/x.csv"}, "relpath"),
        ({"view": "bad view!"}, "view"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"bbox": (1, 0, 0, 1)}, "bbox"),
        ({"bbox": (2.29, 48.87, 2.30, 91.0)}, "bbox"),
        ({"bbox": (2.29, 48.87, 2.30)}, "bbox"),
        ({"table": {"a": [1]}}, "table"),
    ],
)
def test_write_shard_bad_arguments(tmp_path, kwargs, field):
    args = {"relpath": "cir/x.parquet", "table": cir_table(1), "view": "cir", "metadata": META} | kwargs
    with pytest.raises(TwinInputError) as ei:
        write_shard(tmp_path, args.pop("relpath"), args.pop("table"), **args)
    assert ei.value.field == field and ei.value.fix


# ---------------------------------------------------------------------------------------------- register


def test_register_replaces_same_path_and_keeps_history(tmp_path):
    cat = Catalog(tmp_path)
    a = write_shard(tmp_path, "cir/a.parquet", cir_table(3, seed=1), view="cir", metadata=META, task_key="ka")
    b = write_shard(tmp_path, "cir/b.parquet", cir_table(4, seed=2), view="cir", metadata=META, task_key="kb")
    cat.register([a, b])
    a2 = write_shard(
        tmp_path, "cir/a.parquet", cir_table(6, seed=9), view="cir", metadata=META, task_key="ka2"
    )
    cat.register([a2])
    t = cat.entries()
    assert t["path"].to_pylist() == ["cir/a.parquet", "cir/b.parquet"]
    assert t["rows"].to_pylist() == [6, 4] and t["sha256"].to_pylist()[0] == a2.sha256
    assert cat.task_keys("cir") == {"ka2", "kb"}
    assert cat.pointer()["seq"] == 2 and len(cat.history()) == 2
    for _ in range(core.KEEP_SNAPSHOTS + 3):
        cat.register([b])
    assert len(cat.history()) == core.KEEP_SNAPSHOTS and cat.snapshot_path().name in cat.history()
    assert cat.verify().ok


def test_register_refuses_unwritten_files(tmp_path):
    e = write_shard(tmp_path, "cir/a.parquet", cir_table(2), view="cir", metadata=META)
    (tmp_path / "cir/a.parquet").unlink()
    with pytest.raises(TwinInputError) as ei:
        Catalog(tmp_path).register([e])
    assert ei.value.field == "bytes" and "cir/a.parquet" in str(ei.value)
    with pytest.raises(TwinInputError):
        Catalog(tmp_path).register(["not an entry"])  # type: ignore[list-item]
    assert Catalog(tmp_path).pointer() is None


# --------------------------------------------------------------------------------------------- atomicity


def test_crash_inside_write_shard_leaves_nothing_listed_or_partial(tmp_path, monkeypatch):
    cat = Catalog(tmp_path)
    good = write_shard(tmp_path, "cir/part-00000.parquet", cir_table(3), view="cir", metadata=META)
    cat.register([good])
    real = pq.write_table

    def half_then_die(table, where, **kw):
        real(table, where, **kw)
        data = Path(where).read_bytes()
        Path(where).write_bytes(data[: len(data) // 2])  # half a file on disk, then the "crash"
        raise OSError("disk full (injected)")

    monkeypatch.setattr(core.pq, "write_table", half_then_die)
    for rel in (
        "cir/part-00001.parquet",
        "cir/part-00000.parquet",
    ):  # a new shard, and overwriting a listed one
        with pytest.raises(OSError, match="injected"):
            write_shard(tmp_path, rel, cir_table(50, seed=7), view="cir", metadata=META)
    monkeypatch.undo()
    assert not (tmp_path / "cir/part-00001.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "cir").iterdir()) == ["part-00000.parquet"]  # no temp file left
    assert cat.entries()["path"].to_pylist() == ["cir/part-00000.parquet"]
    rep = cat.verify()
    assert rep.ok, rep.problems  # the listed shard is still the complete, original one
    assert pq.read_table(tmp_path / "cir/part-00000.parquet").num_rows == 3


def test_crash_between_snapshot_and_pointer_keeps_previous(tmp_path, monkeypatch):
    cat = Catalog(tmp_path)
    a = write_shard(tmp_path, "cir/a.parquet", cir_table(3), view="cir", metadata=META)
    cat.register([a])
    before = cat.pointer()
    b = write_shard(tmp_path, "cir/b.parquet", cir_table(3, seed=1), view="cir", metadata=META)

    def die(self, pointer):
        assert (self.snapshot_dir / pointer["snapshot"]).is_file()  # the new snapshot is written...
        raise KeyboardInterrupt("killed before the rename (injected)")

    monkeypatch.setattr(Catalog, "_write_pointer", die)
    with pytest.raises(KeyboardInterrupt):
        cat.register([b])
    monkeypatch.undo()
    assert cat.pointer() == before  # ...but the previous snapshot is still the current one
    assert cat.entries()["path"].to_pylist() == ["cir/a.parquet"]
    # b is now an orphan (written but never listed): verify says so; registering it again fixes it
    assert cat.verify().problems == ["orphan shard (not in the catalog): cir/b.parquet"]
    cat.register([b])
    assert cat.verify().ok and cat.pointer()["seq"] == 2


# ------------------------------------------------------------------------------------------------ verify


def test_verify_catches_corruption_missing_orphan_temp_and_pointer(tmp_path):
    build(tmp_path)
    cat = Catalog(tmp_path)
    rep = cat.verify()
    assert isinstance(rep, VerifyReport) and rep.ok and rep.checked == 3, rep.problems
    assert cli("verify", tmp_path).exit_code == 0

    # flip bytes in the middle of a shard (same size): only the checksum sees it
    f = tmp_path / "cir/part-00000.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    assert cat.verify(checksums=False).ok
    assert cat.verify().problems == [
        "sha256 mismatch: cir/part-00000.parquet (file changed or corrupted after it was written)"
    ]
    r = cli("verify", tmp_path)
    assert r.exit_code == 1 and "sha256 mismatch" in r.stderr

    (tmp_path / "cir/part-00001.parquet").unlink()
    (tmp_path / "views/folded_lte/part-99.parquet").write_bytes(b"stray")
    (tmp_path / "cir/.part-00002.parquet.abc123.tmp").write_bytes(b"half")
    probs = cat.verify(checksums=False).problems
    assert sorted(probs) == sorted(
        [
            "missing shard: cir/part-00001.parquet",
            "orphan shard (not in the catalog): views/folded_lte/part-99.parquet",
            "temporary file left over: cir/.part-00002.parquet.abc123.tmp",
        ]
    )
    r = cli("verify", tmp_path, "--no-checksums")
    assert r.exit_code == 1 and "missing shard" in r.stderr and "orphan" in r.stderr

    # the pointer names a snapshot that is gone
    cat.snapshot_path().unlink()
    assert any("snapshot pointer broken" in p for p in cat.verify().problems)
    assert cli("verify", tmp_path).exit_code == 1
    (tmp_path / "catalog/CURRENT").write_text("{not json")
    assert any("snapshot pointer broken" in p for p in cat.verify().problems)


def test_not_a_twin_directory_exits_2(tmp_path):
    for cmd in (
        ["ls", tmp_path],
        ["show", tmp_path],
        ["verify", tmp_path],
        ["query", tmp_path, "select 1"],
        ["publish", tmp_path, tmp_path / "out"],
        ["ls", tmp_path / "nope"],
    ):
        r = cli(*cmd)
        assert r.exit_code == 2, (cmd, r.output)
        assert "not a twin directory" in r.stderr and "Traceback" not in r.output
    with pytest.raises(TwinInputError) as ei:
        Catalog(tmp_path, must_exist=True)
    assert ei.value.field == "catalog/CURRENT"
    for cmd in ("ls", "show", "verify", "query", "publish"):
        assert cli(cmd, "--help").exit_code == 0


# ------------------------------------------------------------------------------------------------- query


def test_query_counts_and_joins(tmp_path):
    build(tmp_path, shards=3, rows=5)
    (tmp_path / "cir/part-orphan.parquet").write_bytes(b"not listed, must not be read")
    cat = Catalog(tmp_path)
    assert cat.query("select count(*) as n from cir").to_pylist() == [{"n": 15}]
    assert cat.query("select count(*) as n from folded_lte").to_pylist() == [{"n": 4}]
    j = cat.query(
        "select c.task_key, count(*) as n, min(cir.rx_id) as r0 from cir join catalog c on c.path = cir.shard_path "
        "group by c.task_key order by c.task_key"
    )
    assert j.to_pylist() == [{"task_key": f"t{i}", "n": 5, "r0": 100 * i} for i in range(3)]
    # the catalog's row counts agree with DuckDB's count of the shards themselves
    chk = cat.query(
        "select c.rows = (select count(*) from cir x where x.shard_path = c.path) as ok "
        "from catalog c where c.view = 'cir'"
    )
    assert chk["ok"].to_pylist() == [True] * 3
    with pytest.raises(TwinInputError) as ei:
        cat.query("select * from nonexistent_table")
    assert ei.value.field == "sql" and "cir" in ei.value.fix
    r = cli(
        "query", tmp_path, "select view, sum(rows) as n from catalog group by view order by view", "--json"
    )
    assert r.exit_code == 0, r.output
    assert [json.loads(x) for x in r.stdout.splitlines()] == [
        {"view": "cir", "n": 15},
        {"view": "folded_lte", "n": 4},
    ]
    r = cli("query", tmp_path, "select rx_id, tau_s from cir order by rx_id limit 2", "--csv")
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "rx_id,tau_s"
    import csv

    rows = list(csv.DictReader(r.stdout.splitlines()))
    shard0 = pq.read_table(tmp_path / "cir/part-00000.parquet")  # rx_id 0 and 1 live in the first shard
    assert [int(x["rx_id"]) for x in rows] == [0, 1]
    assert [json.loads(x["tau_s"]) for x in rows] == shard0["tau_s"].to_pylist()[:2]
    r = cli("query", tmp_path, "select count(*) from cir")
    assert r.exit_code == 0 and "15" in r.stdout
    assert cli("query", tmp_path, "select count(*) from cir", "--json", "--csv").exit_code == 2
    assert cli("query", tmp_path, "selec oops").exit_code == 2


# ----------------------------------------------------------------------------------------------- publish


def test_publish_local_and_memory(tmp_path):
    src = tmp_path / "paris"
    build(src)
    (src / "cir/part-orphan.parquet").write_bytes(b"orphan")  # orphans are not published
    out = publish(src, str(tmp_path / "pub"))
    pub = Path(out)
    assert pub == (tmp_path / "pub").resolve()
    assert not (pub / "cir/part-orphan.parquet").exists()
    rep = Catalog(pub, must_exist=True).verify()
    assert rep.ok and rep.checked == 3, rep.problems
    for rel in (
        "twin.json",
        "previews/top.png",
        "README.md",
        "dataset_card.json",
        "croissant.json",
        "catalog/catalog.parquet",
    ):
        assert (pub / rel).is_file(), rel
    card = json.loads((pub / "dataset_card.json").read_text())
    assert card["views"]["cir"]["shards"] == 2 and card["views"]["cir"]["rows"] == 10
    assert card["views"]["cir"]["bytes"] == sum(
        (src / f"cir/part-0000{i}.parquet").stat().st_size for i in range(2)
    )
    cols = {c["name"]: c for c in card["configs"]["folded_lte"]["columns"]}
    assert json.loads(cols["window"]["metadata"]["shape"]) == [3, 2]
    assert [c["name"] for c in card["configs"]["cir"]["columns"]] == list(CIR_SCHEMA.names)
    lic = {x["license"] for x in card["licenses"]}
    assert lic == {"Apache-2.0", "CC0-1.0"}  # no OpenStreetMap data in this build: no ODbL
    md = (pub / "README.md").read_text()
    assert "ODbL" not in md and "load_dataset" in md and "duckdb" in md.lower()
    assert md.startswith("---\nlicense:\n- apache-2.0\n- cc0-1.0\n")
    assert card["provenance"]["sources"]["towers"]["path"] == "towers.csv"
    assert card["provenance"]["versions"] == {"sionna-rt": "2.2.0"} and "sionna-rt" in md
    # relative paths only: nothing in the published catalog points back at the source
    assert all(
        not p.startswith("/") for p in pq.read_table(pub / "catalog/catalog.parquet")["path"].to_pylist()
    )
    assert Catalog(pub).query("select count(*) as n from cir").to_pylist() == [{"n": 10}]

    with pytest.raises(TwinInputError) as ei:
        publish(src, str(tmp_path / "pub"))
    assert ei.value.field == "dest" and "--overwrite" in ei.value.fix
    assert cli("publish", src, tmp_path / "pub").exit_code == 2
    r = cli("publish", src, tmp_path / "pub", "--overwrite")
    assert r.exit_code == 0, r.output
    assert Catalog(pub).verify().ok
    with pytest.raises(TwinInputError):
        publish(src, str(src / "inside"))

    import fsspec

    furl = publish(src, f"file://{tmp_path}/pub-url")
    assert Path(furl) == (tmp_path / "pub-url").resolve() and Catalog(furl).verify().ok

    url = publish(src, "memory://twin-test/paris")
    fs = fsspec.filesystem("memory")
    try:
        for e in Catalog(src).shard_entries():
            assert hashlib.sha256(fs.cat(f"/twin-test/paris/{e.path}")).hexdigest() == e.sha256
        assert json.loads(fs.cat("/twin-test/paris/catalog/CURRENT"))["rows"] == 3
        assert fs.exists("/twin-test/paris/README.md") and url.startswith("memory://")
        # copy the in-memory publication to disk and verify it as a twin directory
        local = tmp_path / "from-memory"
        fs.get("/twin-test/paris", str(local), recursive=True)
        assert Catalog(local).verify().ok
    finally:
        fs.rm("/twin-test", recursive=True)


def test_tower_licence_lookup():
    from twin.catalog.publish import TOWER_LICENCE_UNKNOWN, tower_licence

    assert tower_licence(None) == TOWER_LICENCE_UNKNOWN
    assert tower_licence({"sources": {"towers": {"path": "x.csv"}}}) == TOWER_LICENCE_UNKNOWN
    assert tower_licence({"sources": {"towers": {"license": "CC-BY-SA-4.0"}}}) == "CC-BY-SA-4.0"
    assert tower_licence({"sources": {"licences": {"towers": "ODbL-1.0"}}}) == "ODbL-1.0"
    assert tower_licence({"sources": [{"kind": "towers", "licence": "CC0-1.0"}]}) == "CC0-1.0"
    assert tower_licence({"towers_license": "proprietary"}) == "proprietary"


def test_publish_refuses_a_corrupted_build(tmp_path):
    src = tmp_path / "b"
    build(src, shards=1)
    f = src / "cir/part-00000.parquet"
    data = bytearray(f.read_bytes())
    data[100] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(core.TwinError, match="sha256 mismatch"):
        publish(src, str(tmp_path / "pub"))
    assert not (tmp_path / "pub").exists()  # staging removed, destination untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pub")]


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_ls_json_and_show(tmp_path):
    entries = build(tmp_path)
    r = cli("ls", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 3
    by_path = {x["path"]: x for x in lines}
    for e in entries:
        x = by_path[e.path]
        assert (x["view"], x["rows"], x["bytes"], x["sha256"]) == (e.view, e.rows, e.bytes, e.sha256)
        assert x["task_key"] == e.task_key and isinstance(x["column_stats"], dict)
        assert x["bbox"] == (list(e.bbox) if e.bbox else None)
    assert by_path["views/folded_lte/part-00000.parquet"]["bbox"] == [2.289, 48.870, 2.301, 48.877]
    r = cli("ls", tmp_path, "--json", "--view", "folded_lte")
    assert [json.loads(x)["view"] for x in r.stdout.splitlines()] == ["folded_lte"]
    r = cli("ls", tmp_path)
    assert r.exit_code == 0 and "part-00001" in r.stdout
    r = cli("show", tmp_path)
    assert r.exit_code == 0, r.output
    assert "abcd1234abcd1234" in r.stdout and "folded_lte" in r.stdout and "tau_s" in r.stdout


# ------------------------------------------------------------------------------------------ property test


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from("abcde"), st.integers(1, 40)), min_size=1, max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_register_sequences_last_writer_wins(batches):
    """After any sequence of register() calls the snapshot is the union of all entries, last writer per path."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        cat = Catalog(root)
        expect: dict[str, tuple[int, str]] = {}
        for bi, batch in enumerate(batches):
            entries = []
            for name, size in batch:
                rel = f"cir/{name}.parquet"
                payload = os.urandom(size)
                (root / "cir").mkdir(exist_ok=True)
                (root / rel).write_bytes(payload)
                sha = hashlib.sha256(payload).hexdigest()
                entries.append(
                    ShardEntry(view="cir", path=rel, rows=bi, bytes=size, sha256=sha, task_key=f"{bi}{name}")
                )
                expect[rel] = (size, sha)
            cat.register(entries)
            t = cat.entries()
            got = dict(
                zip(
                    t["path"].to_pylist(),
                    zip(t["bytes"].to_pylist(), t["sha256"].to_pylist(), strict=True),
                    strict=True,
                )
            )
            assert got == expect and t.num_rows == len(expect)
        assert cat.pointer()["seq"] == len(batches)
        assert cat.verify().ok


_REGISTER_MANY = """
import sys
import pyarrow as pa
from twin.catalog import Catalog, write_shard
root, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cat = Catalog(root)
for i in range(n):
    e = write_shard(root, f"cir/{tag}-{i}.parquet", pa.table({"rx_id": [i]}), view="cir", metadata={})
    cat.register([e])
"""


def test_concurrent_registration_from_two_processes(tmp_path):
    """Two processes committing at once lose nothing: the catalog lock serialises read-modify-write."""
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REGISTER_MANY, str(tmp_path), tag, "8"], stderr=subprocess.PIPE
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    cat = Catalog(tmp_path)
    assert cat.entries().num_rows == 16 and cat.pointer()["seq"] == 16
    assert cat.verify().ok
