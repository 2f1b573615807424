"""The previews ``twin build`` redraws after a stage: previews/top.png with the receivers, previews/path_gain.png.

Run by :mod:`twin.pipeline` between stages (the plotting itself is :mod:`twin.ingest.preview`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twin.io import atomic_path


def top_preview(root: Path, receivers: pd.DataFrame, title: str) -> None:
    """previews/top.png again, now with the receivers (buildings + towers + receivers)."""
    from twin.ingest.buildings import read_buildings_parquet
    from twin.ingest.preview import plot_top
    from twin.render.stage import read_cells

    bs = read_buildings_parquet(root / "buildings.parquet")
    with atomic_path(root / "previews" / "top.png") as tmp:
        out = plot_top(bs, read_cells(root), receivers, str(tmp) + ".png", title=title)
        shutil.move(str(out), tmp)


def path_gain_preview(root: Path) -> None:
    """previews/path_gain.png: best-server path gain per receiver (dB, max over cells)."""
    import shapely

    from twin.catalog import Catalog
    from twin.ingest.preview import plot_path_gain

    ent = Catalog(root).entries(view="cir")
    if ent.num_rows == 0:
        return
    tabs = [pq.read_table(root / p, columns=["rx_id", "rx_x", "rx_y", "path_gain_db"]) for p in ent.column("path").to_pylist()]
    df = pa.concat_tables(tabs).to_pandas()
    best = df.groupby("rx_id").agg(g=("path_gain_db", "max"))
    rx = pq.read_table(root / "receivers.parquet", columns=["rx_id", "x", "y"]).to_pandas().set_index("rx_id")
    best = rx.join(best, how="left").reset_index()  # receivers without any path: NaN, drawn as crosses
    b = pq.read_table(root / "buildings.parquet", columns=["geometry_local", "height_m"]).to_pandas()
    b["geometry_local"] = shapely.from_wkb(b["geometry_local"])
    with atomic_path(root / "previews" / "path_gain.png") as tmp:
        out = plot_path_gain(np.c_[best["x"], best["y"]], best["g"].to_numpy(), SimpleNamespace(gdf=b), str(tmp) + ".png",
                             title="best-server path gain (dB)")
        shutil.move(str(out), tmp)


__all__ = ["path_gain_preview", "top_preview"]
