"""DuckDB SQL over a catalog (docs/architecture.md "Catalog"): the snapshot as table ``catalog``, one view per catalog view.

Each view (``cir``, ``folded_lte``, ...) is ``read_parquet`` of exactly the shards the catalog lists for one
variant (config hash) of it, plus a column ``shard_path`` (the shard's path relative to the twin directory) so that
rows join with the catalog: ``... from cir join catalog c on c.path = cir.shard_path``. Files on disk that
the catalog does not list are not read. A view built with several variants gets one SQL view per variant,
``<view>_<variant>`` (e.g. ``cir_taps_0123456789abcdef``), and no bare ``<view>``: a query never mixes the rows
of two variants (:func:`query_tables`).

The session is a sandbox (:func:`connect`, :func:`check_statement`): one SELECT, reading only the build's
catalog and listed shards; no other file, no network, no writes, no extensions, configuration locked.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from twin.catalog.paths import resolve
from twin.errors import TwinInputError

if TYPE_CHECKING:
    from twin.catalog.core import Catalog

SHARD_PATH_COLUMN = "shard_path"
_FILE_COLUMN = "__twin_shard_file"


def sql_identifier(view: str) -> str:
    """The SQL name of a catalog view: non-alphanumeric characters become '_' (``folded-lte`` -> ``folded_lte``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", view)
    return name if not name[:1].isdigit() else f"v_{name}"


def query_tables(table: pa.Table) -> dict[str, list[str]]:
    """{SQL view name: the catalog paths it reads}: one name per (view, variant); the bare view name when the
    view has one variant, ``<view>_<variant>`` for each when it has several."""
    acc: dict[str, dict[str, list[str]]] = {}
    for view, h, path in zip(table["view"].to_pylist(), table["config_hash"].to_pylist(), table["path"].to_pylist(),
                             strict=True):
        acc.setdefault(view, {}).setdefault(h or "", []).append(path)
    out: dict[str, list[str]] = {}
    for view, variants in sorted(acc.items()):
        for h, paths in sorted(variants.items()):
            name = sql_identifier(view if len(variants) == 1 else f"{view}_{h}")
            out[name] = sorted(paths)
    return out


def _quote_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _quote_ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _sandbox(con: Any, files: list[str]) -> None:
    """Lock ``con`` down: only ``files`` readable, no other file or network access, no extensions, config locked."""
    listed = ", ".join(_quote_literal(f) for f in files)
    con.execute(f"SET allowed_paths = [{listed}]")
    con.execute("SET allowed_directories = []")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allow_community_extensions = false")
    con.execute("SET lock_configuration = true")


def connect(catalog: Catalog) -> Any:
    """A sandboxed in-memory DuckDB connection with ``catalog`` and one view per catalog view registered.

    Every shard path goes through the build's path resolver (:mod:`twin.catalog.paths`): a row that is
    absolute, has ``..``, leads out of the build through a symlink or names a missing file raises
    :class:`~twin.catalog.paths.DamagedBuildError` (exit 1) before anything is read. The views are created
    first; then the session is locked (:func:`_sandbox`): the listed shards are the only files it may open,
    external access (other files, network, ``ATTACH``, ``COPY``), extension installs and loads are off and
    the configuration cannot be changed back.
    """
    import duckdb

    table = catalog.entries()
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.register("catalog", table)
    root = os.path.realpath(catalog.root)
    prefix = root.rstrip("/") + "/"
    files: list[str] = []
    for name, paths in query_tables(table).items():
        real = [os.path.realpath(resolve(catalog.root, p, suffix=".parquet", field="catalog path")) for p in paths]
        files.extend(real)
        listed = ", ".join(_quote_literal(p) for p in sorted(real))
        con.execute(
            f"CREATE VIEW {_quote_ident(name)} AS "
            f"SELECT * EXCLUDE ({_quote_ident(_FILE_COLUMN)}), "
            f"substr({_quote_ident(_FILE_COLUMN)}, {len(prefix) + 1}) AS {SHARD_PATH_COLUMN} "
            f"FROM read_parquet([{listed}], union_by_name = true, filename = {_quote_literal(_FILE_COLUMN)})"
        )
    _sandbox(con, files)
    return con


def check_statement(sql: str) -> None:
    """Accept exactly one SELECT (``WITH ... SELECT`` included); anything else is a TwinInputError (exit 2).

    The sandbox already refuses files outside the build, but DuckDB may write (``COPY ... TO``) to a path
    it may read, so statements other than a query are refused by type before they run.
    """
    import duckdb

    try:
        stmts = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise TwinInputError(
            f"query does not parse: {str(e).splitlines()[0]}", field="sql",
            fix='write one DuckDB SELECT, e.g. "select view, count(*) from catalog group by view"',
        ) from None
    kinds = [str(getattr(st.type, "name", st.type)) for st in stmts]
    if len(stmts) != 1 or stmts[0].type != duckdb.StatementType.SELECT:
        raise TwinInputError(
            f"only one SELECT statement is allowed, got {len(stmts)} statement(s): {', '.join(kinds) or 'none'}",
            field="sql",
            fix="`twin catalog query` is read-only: one SELECT (or WITH ... SELECT); "
            "COPY, ATTACH, INSTALL, SET, CREATE and PRAGMA are refused",
        )


def run_query(catalog: Catalog, sql: str) -> pa.Table:
    """Run one SELECT ``sql`` (DuckDB dialect) in the sandbox of :func:`connect`; the result as an Arrow table."""
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise TwinInputError(
            "empty SQL query", field="sql", fix='e.g. "select view, count(*) from catalog group by view"'
        )
    check_statement(sql)
    con = connect(catalog)
    try:
        rel = con.sql(sql)
        if rel is None:
            return pa.table({})
        return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    except duckdb.PermissionException as e:
        raise TwinInputError(
            f"query refused by the sandbox: {str(e).splitlines()[0]}",
            file=catalog.root,
            field="sql",
            fix="a query reads only the build's own catalog and shards (tables: "
            + ", ".join(["catalog", *query_tables(catalog.entries())]) + ")",
        ) from None
    except duckdb.Error as e:
        views = ", ".join(["catalog", *query_tables(catalog.entries())])
        raise TwinInputError(
            f"query failed: {str(e).splitlines()[0]}",
            file=catalog.root,
            field="sql",
            fix=f"tables available: {views}",
        ) from None
    finally:
        con.close()
