"""View output tables: cell attributes per link, the view table with its provenance metadata, complex -> pairs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def cell_attributes(towers: pa.Table, tx_ids, columns: tuple[str, ...], *, view: str) -> dict[str, np.ndarray]:
    """Per CIR row, the ``columns`` of its cell (``towers.cell_id == tx_id``) as numpy arrays.

    A tx_id missing from the towers table or a missing column raises TwinInputError naming them.
    """
    from twin.errors import TwinInputError

    names = set(towers.column_names)
    for c in ("cell_id", *columns):
        if c not in names:
            raise TwinInputError(
                f"the towers table has no column {c!r} (view {view} needs it)",
                file="towers.parquet", field=c, fix="re-run ingest so towers.parquet has the twin.schema columns",
            )
    ids = [str(v) for v in towers.column("cell_id").to_pylist()]
    index = {cid: i for i, cid in enumerate(ids)}
    tx = [str(t) for t in tx_ids]
    missing = [t for t in tx if t not in index]
    if missing:
        raise TwinInputError(
            f"CIR rows name cell {missing[0]!r} that is not in the towers table ({len(set(missing))} unknown)",
            file="towers.parquet", row=missing[0], field="cell_id",
            fix="build the view from the towers.parquet of the same build as the CIR shards",
        )
    rows = np.array([index[t] for t in tx], dtype=np.int64)
    return {c: np.asarray(towers.column(c).to_numpy(zero_copy_only=False))[rows] for c in columns}


def view_table(fields_arrays: list[tuple[pa.Field, pa.Array]], config, view: str) -> pa.Table:
    """A table of the given (field, array) columns with the view's config (JSON) under ``twin.view_config``."""
    import dataclasses
    import json

    schema = pa.schema([f for f, _ in fields_arrays]).with_metadata(
        {
            "twin.view_config": json.dumps(dataclasses.asdict(config), sort_keys=True, default=str),
            "twin.view": view,
        }
    )
    return pa.Table.from_arrays([a for _, a in fields_arrays], schema=schema)


def complex_to_pairs(z: np.ndarray) -> np.ndarray:
    """Complex array (..., n) -> float32 (..., n, 2) with (re, im) on the trailing axis (docs/architecture.md "Contracts")."""
    out = np.empty(z.shape + (2,), dtype=np.float32)
    out[..., 0] = z.real
    out[..., 1] = z.imag
    return out


__all__ = ["cell_attributes", "complex_to_pairs", "view_table"]
