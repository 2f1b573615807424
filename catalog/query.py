"""DuckDB SQL over a catalog (DESIGN §7): the snapshot as table ``catalog``, one view per catalog view.

Each view (``cir``, ``folded_lte``, ...) is ``read_parquet`` of exactly the shards the catalog lists
(``union_by_name``), plus a column ``shard_path`` (the shard's path relative to the twin directory) so that
rows join with the catalog: ``... from cir join catalog c on c.path = cir.shard_path``. Files on disk that
the catalog does not list are not read.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyarrow as pa

from twin.errors import TwinInputError

if TYPE_CHECKING:
    from twin.catalog.core import Catalog

SHARD_PATH_COLUMN = "shard_path"
_FILE_COLUMN = "__twin_shard_file"


def sql_identifier(view: str) -> str:
    """The SQL name of a catalog view: non-alphanumeric characters become '_' (``folded-lte`` -> ``folded_lte``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", view)
    return name if not name[:1].isdigit() else f"v_{name}"


def _quote_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _quote_ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def connect(catalog: Catalog):
    """An in-memory DuckDB connection with ``catalog`` and one view per catalog view registered."""
    import duckdb

    table = catalog.entries()
    con = duckdb.connect()
    con.register("catalog", table)
    root = catalog.root.resolve()
    prefix = root.as_posix().rstrip("/") + "/"
    by_view: dict[str, list[str]] = {}
    for view, path in zip(table["view"].to_pylist(), table["path"].to_pylist(), strict=True):
        by_view.setdefault(view, []).append(path)
    for view, paths in sorted(by_view.items()):
        files = ", ".join(_quote_literal(prefix + p) for p in sorted(paths))
        con.execute(
            f"CREATE VIEW {_quote_ident(sql_identifier(view))} AS "
            f"SELECT * EXCLUDE ({_quote_ident(_FILE_COLUMN)}), "
            f"substr({_quote_ident(_FILE_COLUMN)}, {len(prefix) + 1}) AS {SHARD_PATH_COLUMN} "
            f"FROM read_parquet([{files}], union_by_name = true, filename = {_quote_literal(_FILE_COLUMN)})"
        )
    return con


def run_query(catalog: Catalog, sql: str) -> pa.Table:
    """Run ``sql`` (DuckDB dialect) and return the result as an Arrow table (empty for statements)."""
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise TwinInputError(
            "empty SQL query", field="sql", fix='e.g. "select view, count(*) from catalog group by view"'
        )
    con = connect(catalog)
    try:
        rel = con.sql(sql)
        if rel is None:
            return pa.table({})
        return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    except duckdb.Error as e:
        views = ", ".join(["catalog", *(sql_identifier(v) for v in catalog.views())])
        raise TwinInputError(
            f"query failed: {str(e).splitlines()[0]}",
            file=catalog.root,
            field="sql",
            fix=f"tables available: {views}",
        ) from None
    finally:
        con.close()
