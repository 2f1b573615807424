"""twin.catalog: the Parquet catalog of a twin directory's shards (docs/architecture.md "Catalog").

``write_shard`` writes a shard atomically and describes it, ``Catalog.register`` commits it to a new
snapshot, ``Catalog.verify`` checks files against the catalog, ``Catalog.query`` runs DuckDB SQL, and
``publish`` copies a build with a dataset card to any fsspec URL. This stage imports no other stage.
"""

from __future__ import annotations

from twin.catalog.core import (
    CATALOG_COLUMNS,
    CATALOG_SCHEMA,
    Catalog,
    CatalogError,
    ShardEntry,
    VerifyReport,
    column_stats,
    schema_fingerprint,
    write_shard,
)
from twin.catalog.publish import PublishError, publish
from twin.catalog.query import SHARD_PATH_COLUMN, sql_identifier

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_SCHEMA",
    "SHARD_PATH_COLUMN",
    "Catalog",
    "CatalogError",
    "PublishError",
    "ShardEntry",
    "VerifyReport",
    "column_stats",
    "publish",
    "schema_fingerprint",
    "sql_identifier",
    "write_shard",
]
