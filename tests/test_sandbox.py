"""Issue 9: `twin catalog query` is a sandbox, and every reader resolves catalog paths inside the build.

Each attack of the issue runs as a test through the in-process CLI: it must exit 2 (refused input) or 1
(damaged build), print no traceback, and leave the build's files and the rest of the disk as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from twin.catalog import Catalog, write_shard
from twin.catalog.cli import catalog_app
from twin.catalog.core import entries_to_table
from twin.catalog.paths import DamagedBuildError, check_relpath, resolve
from twin.errors import TwinInputError
from twin.schema import file_metadata


def _table(n: int, first_link: int = 0) -> pa.Table:
    return pa.table(
        {
            "link_id": pa.array(range(first_link, first_link + n), pa.uint64()),
            "rx_id": pa.array(range(n), pa.int64()),
            "path_gain_db": pa.array([-100.0 - i for i in range(n)], pa.float64()),
        }
    )


def make_build(root: Path, *, shards: int = 2, config_hash: str = "abcd1234abcd1234") -> None:
    root.mkdir(parents=True, exist_ok=True)
    entries = [
        write_shard(
            root,
            f"cir/part-{i:05d}.parquet",
            _table(3, first_link=10 * i),
            view="cir",
            metadata=file_metadata(config_hash=config_hash, task_key=f"t{i}"),
            task_key=f"t{i}",
        )
        for i in range(shards)
    ]
    Catalog(root).register(entries)
    (root / "twin.json").write_text(json.dumps({"name": "t"}))


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under root (the build must not change)."""
    out = {}
    for dp, _, fns in os.walk(root):
        for fn in fns:
            p = Path(dp) / fn
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def cli(*args):
    app = typer.Typer()
    app.add_typer(catalog_app, name="catalog")

    @app.callback()
    def _root() -> None:
        pass

    return CliRunner().invoke(app, ["catalog", *map(str, args)])


def _add_raw_row(root: Path, path: str) -> None:
    """Commit a catalog row naming ``path`` without the writer's checks (what a hand edit would do)."""
    cat = Catalog(root)
    e = cat.shard_entries()[0]
    import dataclasses

    rows = [*cat.shard_entries(), dataclasses.replace(e, path=path)]
    cat._commit(entries_to_table(rows), cat.pointer()["seq"] + 1)


# --------------------------------------------------------------------------------------------- attacks

ATTACKS = [
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/passwd')",
    "select * from read_blob('/etc/hostname')",
    "select * from glob('/root/*')",
    "select * from glob('{root}/*')",
    "select * from read_text('{root}/twin.json')",
    "select * from read_parquet('{root}/cir/orphan.parquet')",
    "select * from read_json('{root}/catalog/CURRENT')",
    "copy (select 1 as a) to '{tmp}/x.csv'",
    "copy (select 1 as a) to '{root}/cir/part-00000.parquet' (format parquet)",
    "copy (select 1 as a) to '{root}/twin.json'",
    "copy cir to '{root}/cir/part-00001.parquet' (format parquet, use_tmp_file false)",
    "attach '{tmp}/y.duckdb' as y",
    "install httpfs",
    "load httpfs",
    "set enable_external_access = true",
    "reset lock_configuration",
    "pragma enable_profiling",
    "create table t as select 1",
    "select 1; copy (select 1) to '{tmp}/z.csv'",
    "select * from read_csv('https://example.com/x.csv')",
    "select * from read_parquet('{root}/../outside.parquet')",
    "call dbgen(sf = 0.01)",
    "export database '{tmp}/exp'",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_query_attack_refused(tmp_path, attack):
    root = tmp_path / "b"
    make_build(root)
    pq.write_table(_table(1), root / "cir" / "orphan.parquet")  # inside the build but not listed
    (tmp_path / "outside.parquet").write_bytes(pq.read_table(root / "cir/part-00000.parquet").to_string().encode())
    before = snapshot(root)
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    sql = attack.format(root=root.resolve(), tmp=tmp_path.resolve())
    r = cli("query", root, sql)
    assert r.exit_code == 2, (sql, r.output)
    assert "Traceback" not in r.output and "error:" in r.stderr and "sql" in r.stderr
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == outside_before


def test_query_still_answers_plain_selects(tmp_path):
    root = tmp_path / "b"
    make_build(root)
    r = cli("query", root, "with x as (select count(*) as n from cir) select n from x", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"n": 6}
    got = Catalog(root).query("select shard_path, count(*) as n from cir group by 1 order by 1").to_pylist()
    assert got == [{"shard_path": "cir/part-00000.parquet", "n": 3}, {"shard_path": "cir/part-00001.parquet", "n": 3}]


# ---------------------------------------------------------------------------------------- traversal rows


@pytest.mark.parametrize("bad", ["../outside.parquet", "../../outside.parquet", "/etc/passwd.parquet", "cir/link.parquet"])
def test_traversal_and_symlink_rows_refused_by_every_reader(tmp_path, bad):
    root = tmp_path / "b"
    make_build(root)
    pq.write_table(_table(2, first_link=500), tmp_path / "outside.parquet")
    (root / "cir" / "link.parquet").symlink_to(tmp_path / "outside.parquet")
    _add_raw_row(root, bad)
    before = snapshot(root)
    for cmd in (("query", root, "select count(*) from cir"), ("show", root)):
        r = cli(*cmd)
        assert r.exit_code == 1, (cmd, r.output)
        assert "Traceback" not in r.output and "outside the build" in r.stderr or "not relative" in r.stderr
    r = cli("verify", root)
    assert r.exit_code == 1 and "bad path in catalog" in r.stderr
    import twin

    if (root / "twin.json").exists():
        b = twin.open(root)
        with pytest.raises(TwinInputError):
            b.read_table(bad)
    assert snapshot(root) == before


def test_missing_shard_is_a_damaged_build_not_a_traceback(tmp_path):
    root = tmp_path / "b"
    make_build(root)
    (root / "cir/part-00001.parquet").unlink()
    for cmd in (("query", root, "select count(*) from cir"), ("show", root)):
        r = cli(*cmd)
        assert r.exit_code == 1, r.output
        assert "part-00001.parquet is missing" in r.stderr and "Traceback" not in r.output


def test_resolver_unit():
    assert check_relpath("cir\\a.parquet") == "cir/a.parquet"
    for bad in ("", "/x", "a/../../x", "C:/x", "a\x00b"):
        with pytest.raises(DamagedBuildError) as ei:
            check_relpath(bad)
        assert ei.value.exit_code == 1 and ei.value.fix
    with pytest.raises(TwinInputError) as ei:
        check_relpath("../x", damaged=False)
    assert ei.value.exit_code == 2
    with pytest.raises(DamagedBuildError, match="end in .parquet"):
        check_relpath("cir/x.csv", suffix=".parquet")


def test_resolver_allows_links_inside_the_build(tmp_path):
    (tmp_path / "cir").mkdir()
    (tmp_path / "cir/a.parquet").write_bytes(b"x")
    (tmp_path / "cir/b.parquet").symlink_to("a.parquet")
    assert resolve(tmp_path, "cir/b.parquet").read_bytes() == b"x"
    (tmp_path / "up").symlink_to(tmp_path.parent)
    with pytest.raises(DamagedBuildError, match="outside the build"):
        resolve(tmp_path, "up/x.parquet", must_exist=False)


# --------------------------------------------------------------------------------------------- verify


def test_verify_fails_on_duplicate_link_ids_and_foreign_config_hash(tmp_path):
    root = tmp_path / "b"
    make_build(root)
    assert Catalog(root).verify().ok
    e = write_shard(root, "cir/part-00009.parquet", _table(3, first_link=0), view="cir",
                    metadata=file_metadata(config_hash="ffff0000ffff0000", task_key="t9"), task_key="t9")
    Catalog(root).register([e])
    probs = Catalog(root).verify().problems
    assert any("duplicate link_id" in p and "3 link_id" in p for p in probs), probs
    assert any("2 config hashes in view cir" in p for p in probs), probs
    r = cli("verify", root)
    assert r.exit_code == 1 and "duplicate link_id" in r.stderr
