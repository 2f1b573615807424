"""Train / validation / test splits of a build's receivers (docs/architecture.md "Data access and baselines"): a table rx_id -> split.

The settings are :class:`twin.config.SplitConfig` (``[split]`` of a build config: the build writes the table after
the trace; ``twin split D`` writes another one). Receivers are put into *groups* and whole groups go to one split, so that nothing of a group leaks across:

- ``tile``: square tiles of ``tile_m`` metres in the local frame (x east, y north); a tile is
  ``(floor(x / tile_m), floor(y / tile_m))``. Splits are spatially disjoint: no tile holds receivers of two
  splits, so a localization model is tested on streets it never saw (random splits of one street are optimistic).
- ``route``: one group per route (``route_id``; receivers not on a route are their own group).
- ``cell``: one group per serving site (the site of the cell with the highest path gain at the receiver, from
  the CIR shards): the test receivers are served by towers held out of training. Receivers no cell reaches
  are their own group.
- ``random``: one group per receiver.

Groups are shuffled with ``seed`` and laid end to end; a group goes to the split whose cumulative fraction
(of receivers) its midpoint falls in, so the splits hold close to ``fractions`` of the receivers (exactly so as
groups get small). The table (``splits/split.parquet``: ``rx_id`` int64, ``split`` string, ``group`` string)
is written atomically, registered in the catalog (view ``split``) and recorded in ``twin.json`` (``split``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from twin.config import SPLIT_KINDS, SplitConfig, config_hash, to_dict
from twin.errors import TwinInputError
from twin.schema import SPLIT_PATH, SPLIT_SCHEMA, SPLIT_VIEW


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"0.8,0.1,0.1"`` -> (0.8, 0.1, 0.1); a clear error otherwise."""
    try:
        return tuple(float(p) for p in text.split(","))
    except ValueError:
        raise TwinInputError(f"not numbers: {text!r}", field="--fractions",
                             fix="write three fractions that add up to 1, e.g. --fractions 0.8,0.1,0.1") from None


def tile_groups(x: np.ndarray, y: np.ndarray, tile_m: float) -> np.ndarray:
    """Tile key ``"ix,iy"`` of each point: ix = floor(x / tile_m), iy = floor(y / tile_m) (metres)."""
    ix = np.floor(np.asarray(x, float) / tile_m).astype(np.int64)
    iy = np.floor(np.asarray(y, float) / tile_m).astype(np.int64)
    return np.array([f"{a},{b}" for a, b in zip(ix, iy, strict=True)], dtype=object)


def assign_groups(groups: np.ndarray, fractions: tuple[float, ...], names: tuple[str, ...], seed: int) -> np.ndarray:
    """Split label of each element; all elements of a group get the same label (see the module docstring)."""
    keys, inverse, sizes = np.unique(np.asarray(groups).astype(str), return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(keys))
    cum = np.cumsum(sizes[order]) - sizes[order] / 2.0
    mid = cum / max(len(groups), 1)
    edges = np.cumsum(np.asarray(fractions, float))
    idx = np.minimum(np.searchsorted(edges, mid, side="right"), len(names) - 1)
    label_of_key = np.empty(len(keys), dtype=object)
    label_of_key[order] = np.asarray(names, dtype=object)[idx]
    return label_of_key[inverse]


def receiver_groups(receivers: pa.Table, cfg: SplitConfig, serving_site: Mapping[int, str] | None = None) -> np.ndarray:
    """The group key of every receiver row for ``cfg.by``."""
    rx = np.asarray(receivers.column("rx_id").to_numpy(), dtype=np.int64)
    if cfg.by == "tile":
        return tile_groups(receivers.column("x").to_numpy(), receivers.column("y").to_numpy(), cfg.tile_m)
    if cfg.by == "route":
        route = np.asarray(receivers.column("route_id").to_numpy(), dtype=np.int64)
        return np.array([f"route:{r}" if r >= 0 else f"rx:{i}" for r, i in zip(route, rx, strict=True)], dtype=object)
    if cfg.by == "cell":
        site = serving_site or {}
        return np.array([f"site:{site[i]}" if i in site else f"rx:{i}" for i in rx], dtype=object)
    return np.array([f"rx:{i}" for i in rx], dtype=object)


def split_table(receivers: pa.Table, cfg: SplitConfig, serving_site: Mapping[int, str] | None = None) -> pa.Table:
    """The split table (:data:`SPLIT_SCHEMA`) of ``receivers`` (``twin.schema.RECEIVER_SCHEMA``)."""
    groups = receiver_groups(receivers, cfg, serving_site)
    labels = assign_groups(groups, cfg.fractions, cfg.names, cfg.seed)
    return pa.Table.from_arrays(
        [pa.array(receivers.column("rx_id").to_numpy(), pa.int64()), pa.array(list(labels), pa.string()),
         pa.array(list(groups), pa.string())],
        schema=SPLIT_SCHEMA,
    )


def serving_sites(root: Path) -> dict[int, str]:
    """{rx_id: site_id of the cell with the highest path gain there} from the CIR shards of a build."""
    from twin.catalog import Catalog

    paths = Catalog(root, must_exist=True).entries(view="cir").column("path").to_pylist()
    if not paths:
        raise TwinInputError("a cell split needs the CIR: this build has no CIR shards", file=root, field="--by",
                             fix="run `twin build` first, or split --by tile")
    cir = pa.concat_tables([pq.read_table(root / p, columns=["rx_id", "tx_id", "path_gain_db"]) for p in paths]).to_pandas()
    towers = pq.read_table(root / "towers.parquet", columns=["cell_id", "site_id"]).to_pandas()
    site = dict(zip(towers["cell_id"], towers["site_id"], strict=True))
    best = cir.sort_values("path_gain_db", ascending=False).drop_duplicates("rx_id")
    return {int(r): str(site.get(t, t)) for r, t in zip(best["rx_id"], best["tx_id"], strict=True)}


def split_hash(cfg: SplitConfig, receivers_hash: str) -> str:
    return config_hash({"split": to_dict(cfg), "receivers": receivers_hash})


def write_split(root: str | Path, cfg: SplitConfig, *, force: bool = False) -> dict[str, Any]:
    """Write ``splits/split.parquet`` for the build at ``root``, register it and record it in ``twin.json``.

    Skipped (returns the recorded entry with ``"skipped": True``) when a split table of the same settings and
    receivers is already registered, unless ``force``. Returns the manifest's ``split`` entry.
    """
    from twin.catalog import Catalog
    from twin.manifest import read_manifest
    from twin.schema import META_CONFIG_HASH

    root = Path(root)
    m = read_manifest(root)
    rx_path = root / "receivers.parquet"
    if not rx_path.is_file():
        raise TwinInputError("this build has no receivers yet", file=rx_path, fix="run `twin build` first")
    receivers = pq.read_table(rx_path, columns=["rx_id", "x", "y", "route_id"])
    rx_hash = (pq.read_schema(rx_path).metadata or {}).get(META_CONFIG_HASH.encode(), b"").decode()
    h = split_hash(cfg, rx_hash)
    cat = Catalog(root, must_exist=True)
    old = cat.entries(view=SPLIT_VIEW)
    if not force and old.num_rows and old.column("config_hash").to_pylist() == [h] and (root / SPLIT_PATH).is_file():
        return {**m.get("split", {}), "skipped": True}
    site = serving_sites(root) if cfg.by == "cell" else None
    table = split_table(receivers, cfg, site)
    rec = {**dataclasses.asdict(cfg), "fractions": list(cfg.fractions), "names": list(cfg.names)}
    return install_split_table(root, table, config_hash=h, settings=rec)


def install_split_table(root: str | Path, table: pa.Table, *, config_hash: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Write a split table (:data:`SPLIT_SCHEMA`: rx_id, split, group) as the build's split, register it and record
    it in ``twin.json`` with ``settings``; for splits no :class:`SplitConfig` describes (e.g. a reproduction's
    grid-train / random-test protocol). Every receiver of the build must appear once. Returns the record."""
    from twin.catalog import Catalog, write_shard
    from twin.manifest import read_manifest, write_manifest
    from twin.schema import file_metadata

    root = Path(root)
    m = read_manifest(root)
    table = table.select(SPLIT_SCHEMA.names).cast(SPLIT_SCHEMA)
    rx = pq.read_table(root / "receivers.parquet", columns=["rx_id"]).column("rx_id").to_numpy()
    ids = table.column("rx_id").to_numpy()
    if len(ids) != len(set(ids.tolist())) or set(ids.tolist()) != set(rx.tolist()):
        raise ValueError("a split table must list every receiver of the build exactly once")
    meta = file_metadata(config_hash=config_hash, scene_hash=m.get("scene", {}).get("hash", ""), view=SPLIT_VIEW,
                         config=settings)
    entry = write_shard(root, SPLIT_PATH, table, view=SPLIT_VIEW, metadata=meta, dataset=m.get("name", ""),
                        city=m.get("name", ""), bbox=tuple(m["area"]["bbox_wgs84"]) if "area" in m else None)
    Catalog(root, must_exist=True).register([entry])
    counts = {n: int(c) for n, c in zip(*np.unique(table.column("split").to_numpy(zero_copy_only=False), return_counts=True),
                                         strict=True)}
    groups = {n: len(set(table.filter(pa.compute.equal(table["split"], n)).column("group").to_pylist())) for n in counts}
    rec = {**settings, "path": SPLIT_PATH, "sha256": entry.sha256, "config_hash": config_hash, "receivers": counts,
           "groups": groups}
    m = read_manifest(root)
    m["split"] = rec
    write_manifest(root, m)
    return rec


__all__ = ["SPLIT_KINDS", "SplitConfig", "assign_groups", "parse_fractions", "receiver_groups", "serving_sites",
           "split_hash", "split_table", "tile_groups", "write_split"]
