"""Python access to a twin directory (docs/architecture.md "Data access and baselines"): ``twin.open(path_or_url) -> Build`` and its readers.

A :class:`Build` is opened from a local twin directory or any fsspec URL of a published copy. It gives the
manifest, the towers, receivers and buildings as GeoDataFrames (EPSG:4326 ``geometry``; local-frame
coordinates x east, y north, z up in metres beside it), the views with their variants (a variant is the
config hash of the settings a view was built with), and readers:

- :meth:`Build.cir` — the per-link CIR rows (``twin.schema.CIR_SCHEMA``), with ``a_re``/``a_im`` combined
  into one complex64 ``a`` per path;
- :meth:`Build.view` — one variant of a view; tensor columns (nested ``fixed_size_list`` with ``shape`` /
  ``axes`` field metadata) come back as numpy arrays of that shape, complex ones (trailing axis ``complex``
  of size 2) as complex64 without the trailing axis.

A :class:`Reader` is a ``collections.abc.Sequence`` of samples (``reader[i]`` is a dict of numpy arrays and
scalars, labels such as ``rx_x``/``rx_y`` beside the tensors). ``split="train"`` keeps the receivers the
build's split table assigns to that split (see :mod:`twin.datasets.splits`). Files are read one row group
at a time; ``torch_iterable`` hands (file, row group) units to DataLoader workers and distributed ranks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import twin.catalog.paths as _paths
from twin.errors import TwinInputError
from twin.schema import SPLIT_VIEW

MANIFEST = "twin.json"
CIR_VIEW = "cir"
#: catalog entries that are tables of the build, not views a user reads as samples
NOT_VIEWS = (CIR_VIEW, SPLIT_VIEW)


# ---------------------------------------------------------------------------------------- path handling
# The build's one path resolver (twin.catalog.paths): relative, inside the build, no symlink out of it.


def check_relpath(rel: str, *, root: str) -> str:
    """``rel`` as a POSIX path relative to the build; absolute paths and '..' are refused (damaged build, exit 1)."""
    return _paths.check_relpath(rel, file=root, field="catalog path")


def _inside_local(base: str, rel: str) -> str:
    """Local ``base/rel`` after refusing a symlink that leads out of ``base``."""
    return os.fspath(_paths.inside(base, rel, field="catalog path"))


# -------------------------------------------------------------------------------------------- conversion


def _field_meta(f: pa.Field) -> dict[str, Any]:
    md = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
    out: dict[str, Any] = dict(md)
    for k in ("shape", "axes"):
        if k in md:
            out[k] = json.loads(md[k])
    return out


def _innermost(t: pa.DataType) -> pa.DataType:
    while pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    return t


def _fixed_shape(t: pa.DataType) -> list[int]:
    shape = []
    while pa.types.is_fixed_size_list(t):
        shape.append(t.list_size)
        t = t.value_type
    return shape


def is_complex_field(f: pa.Field) -> bool:
    """A tensor column stored as (re, im) on a trailing axis named ``complex`` of size 2 (docs/architecture.md "Contracts")."""
    m = _field_meta(f)
    return bool(m.get("axes")) and m["axes"][-1] == "complex" and m["shape"][-1] == 2


@dataclass(frozen=True)
class FieldInfo:
    """What ``reader[i][name]`` holds: numpy ``dtype``, ``shape`` (None: varies per sample), ``axes``, ``units``."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...] | None
    axes: tuple[str, ...]
    units: str


def _np_dtype(t: pa.DataType) -> np.dtype:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.dtype(object)
    return np.dtype(t.to_pandas_dtype())


def sample_fields(schema: pa.Schema) -> dict[str, FieldInfo]:
    """The :class:`FieldInfo` of every sample key a reader of ``schema`` returns."""
    out: dict[str, FieldInfo] = {}
    names = set(schema.names)
    for f in schema:
        m = _field_meta(f)
        base = f.name[:-3]
        if f.name.endswith("_re") and base + "_im" in names:
            out[base] = FieldInfo(base, np.dtype(np.complex64), None, ("path",), m.get("units", ""))
            continue
        if f.name.endswith("_im") and base + "_re" in names:
            continue
        inner = _innermost(f.type)
        if pa.types.is_fixed_size_list(f.type):
            shape = tuple(m.get("shape") or _fixed_shape(f.type))
            axes = tuple(m.get("axes") or ())
            if is_complex_field(f):
                out[f.name] = FieldInfo(f.name, np.dtype(np.complex64), shape[:-1], axes[:-1], m.get("units", ""))
            else:
                out[f.name] = FieldInfo(f.name, _np_dtype(inner), shape, axes, m.get("units", ""))
        elif pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            out[f.name] = FieldInfo(f.name, _np_dtype(inner), None, tuple(m.get("axes") or ()), m.get("units", ""))
        else:
            out[f.name] = FieldInfo(f.name, _np_dtype(f.type), (), (), m.get("units", ""))
    return out


def _ragged(col: pa.Array) -> list:
    """A list column -> one numpy array per row (nested lists -> 2-D when rectangular, else a list)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if col.null_count:
        col = pc.fill_null(col, pa.scalar([], col.type))
    offsets = np.asarray(col.offsets.to_numpy(zero_copy_only=False))
    offsets = offsets - offsets[0]
    values = col.values.slice(int(col.offsets[0].as_py()), int(offsets[-1]))
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        inner = _ragged(values)
        rows = []
        for a, b in zip(offsets[:-1], offsets[1:], strict=True):
            part = inner[a:b]
            if part and all(len(p) == len(part[0]) for p in part):
                rows.append(np.stack(part))
            elif not part:
                rows.append(np.zeros((0, 0), dtype=_np_dtype(_innermost(values.type))))
            else:
                rows.append(list(part))  # type: ignore[arg-type]  # ragged: a list of arrays
        return rows
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        flat = values.to_pylist()
        return [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    arr = np.asarray(values.to_numpy(zero_copy_only=False))
    return [arr[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def _tensor(col: pa.Array, f: pa.Field) -> np.ndarray:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    shape = _fixed_shape(f.type)
    flat = col
    for _ in shape:
        flat = flat.flatten()
    arr = np.asarray(flat.to_numpy(zero_copy_only=False)).reshape((len(col), *shape))
    if is_complex_field(f):
        arr = np.ascontiguousarray(arr, dtype=np.float32).view(np.complex64)[..., 0]
    return arr


def table_columns(table: pa.Table) -> dict[str, Any]:
    """Columns of ``table`` as numpy: tensors shaped (rows, *shape) (complex64 where stored as (re, im)),
    scalars as (rows,), variable-length lists as one array per row, ``X_re``/``X_im`` pairs as complex ``X``."""
    out: dict[str, Any] = {}
    names = set(table.column_names)
    for f in table.schema:
        col = table.column(f.name)
        base = f.name[:-3]
        if f.name.endswith("_re") and base + "_im" in names:
            re_, im_ = _ragged(col), _ragged(table.column(base + "_im"))
            out[base] = [(r + 1j * i).astype(np.complex64) for r, i in zip(re_, im_, strict=True)]
        elif f.name.endswith("_im") and base + "_re" in names:
            continue
        elif pa.types.is_fixed_size_list(f.type):
            out[f.name] = _tensor(col, f)
        elif pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            out[f.name] = _ragged(col)
        elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            out[f.name] = col.to_pylist()
        else:
            out[f.name] = np.asarray(col.to_numpy(zero_copy_only=False))
    return out


def _row(cols: Mapping[str, Any], i: int) -> dict[str, Any]:
    return {k: v[i] for k, v in cols.items()}


# ------------------------------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class Unit:
    """A unit of work: row group ``row_group`` of file ``path``; ``rows`` = the row positions kept in it."""

    path: str
    row_group: int
    rows: np.ndarray


class Reader(Sequence):
    """A ``Sequence`` of samples over Parquet files of one view variant (or the CIR) of a build.

    ``reader[i]`` is a dict {column: numpy value} (see :func:`table_columns`); ``len(reader)`` the number of
    rows (after ``split``). Row groups are read on demand and the last one is cached.
    """

    def __init__(self, build: Build, name: str, paths: Sequence[str], *, columns: Sequence[str] | None = None,
                 rx_ids: np.ndarray | None = None, split: str | None = None, variant: str = "") -> None:
        self.build = build
        self.name = name
        self.variant = variant
        self.split = split
        self.paths = list(paths)
        self.columns = list(columns) if columns is not None else None
        self._rx_ids = rx_ids
        self._cache: tuple[tuple[str, int], dict[str, Any]] | None = None
        if self.columns is not None:
            known = set(self.schema.names)
            bad = [c for c in self.columns if c not in known]
            if bad:
                raise TwinInputError(
                    f"{name} has no column(s) {', '.join(bad)}",
                    file=build.url,
                    field="columns",
                    fix=f"columns of {name}: {', '.join(self.schema.names)}",
                )

    def __repr__(self) -> str:
        v = f" variant {self.variant}" if self.variant else ""
        s = f" split {self.split}" if self.split else ""
        return f"<twin Reader {self.name}{v}{s}: {len(self)} samples in {len(self.paths)} files>"

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_cache"] = None
        return d

    @cached_property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the files (with field metadata: shape, axes, units)."""
        if not self.paths:
            raise TwinInputError(f"{self.name} has no files", file=self.build.url, fix="build it first")
        return self.build.parquet_file(self.paths[0]).schema_arrow

    @property
    def read_columns(self) -> list[str] | None:
        if self.columns is None:
            return None
        cols = list(self.columns)
        names = set(self.schema.names)
        for c in list(cols):  # a complex pair is read whole
            for a, b in (("_re", "_im"), ("_im", "_re")):
                if c.endswith(a) and c[: -len(a)] + b in names and c[: -len(a)] + b not in cols:
                    cols.append(c[: -len(a)] + b)
        return cols

    @property
    def fields(self) -> dict[str, FieldInfo]:
        """{sample key: :class:`FieldInfo`} (dtype, shape from the field metadata, axes, units)."""
        schema = self.schema
        if self.read_columns is not None:
            schema = pa.schema([schema.field(c) for c in self.read_columns])
        return sample_fields(schema)

    @cached_property
    def units(self) -> list[Unit]:
        """Every (file, row group) with the rows kept in it (all rows, or those of the split's receivers)."""
        out = []
        for p in self.paths:
            pf = self.build.parquet_file(p)
            for rg in range(pf.num_row_groups):
                n = pf.metadata.row_group(rg).num_rows
                if self._rx_ids is None:
                    rows = np.arange(n)
                else:
                    if "rx_id" not in pf.schema_arrow.names:
                        raise TwinInputError(
                            f"{self.name} has no rx_id column: a receiver split cannot select its rows",
                            file=self.build.url,
                            field="split",
                            fix="read it without split=",
                        )
                    rx = pf.read_row_group(rg, columns=["rx_id"]).column("rx_id").to_numpy()
                    rows = np.flatnonzero(np.isin(rx, self._rx_ids))
                if len(rows):
                    out.append(Unit(p, rg, rows))
        return out

    @cached_property
    def _offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(u.rows) for u in self.units])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def read_unit_table(self, unit: Unit) -> pa.Table:
        """The kept rows of one unit as an Arrow table."""
        t = self.build.parquet_file(unit.path).read_row_group(unit.row_group, columns=self.read_columns)
        if len(unit.rows) != t.num_rows:
            t = t.take(pa.array(unit.rows))
        return t

    def unit_columns(self, unit: Unit) -> dict[str, Any]:
        key = (unit.path, unit.row_group)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, table_columns(self.read_unit_table(unit)))
        return self._cache[1]

    def iter_unit(self, unit: Unit) -> Iterator[dict[str, Any]]:
        cols = table_columns(self.read_unit_table(unit))
        for i in range(len(unit.rows)):
            yield _row(cols, i)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not isinstance(i, int | np.integer):
            raise TypeError(f"reader indices must be integers or slices, not {type(i).__name__}")
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample {i} out of range ({n} samples)")
        u = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return _row(self.unit_columns(self.units[u]), int(i - self._offsets[u]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for u in self.units:
            yield from self.iter_unit(u)

    # ----------------------------------------------------------------------------------------- tables
    def to_table(self) -> pa.Table:
        """All kept rows as one Arrow table (the stored columns, unconverted)."""
        if not self.units:
            return self.schema.empty_table() if self.read_columns is None else pa.schema(
                [self.schema.field(c) for c in self.read_columns]).empty_table()
        return pa.concat_tables([self.read_unit_table(u) for u in self.units])

    def to_pandas(self):
        """A DataFrame, one row per sample: tensors as shaped numpy arrays (complex64), lists as arrays."""
        import pandas as pd

        cols = table_columns(self.to_table())
        return pd.DataFrame({k: (list(v) if isinstance(v, np.ndarray) and v.ndim > 1 else v) for k, v in cols.items()})

    # ------------------------------------------------------------------------------------------ torch
    def torch(self):
        """A map-style ``torch.utils.data.Dataset`` of the samples (use :func:`twin.datasets.collate`)."""
        from twin.datasets.loaders import MapDataset

        return MapDataset(self)

    def torch_iterable(self, *, shuffle_buffer: int = 0, seed: int = 0, shuffle_units: bool | None = None):
        """An ``IterableDataset``: (file, row group) units split across DataLoader workers and distributed
        ranks, each row exactly once per epoch; ``shuffle_buffer`` > 0 shuffles rows within a buffer of that
        many samples (and the unit order, seeded by ``seed`` + epoch; call ``set_epoch``)."""
        from twin.datasets.loaders import UnitIterableDataset

        return UnitIterableDataset(self, shuffle_buffer=shuffle_buffer, seed=seed,
                                   shuffle_units=bool(shuffle_buffer) if shuffle_units is None else shuffle_units)


# -------------------------------------------------------------------------------------------------- build


class Build:
    """A twin directory (local path or fsspec URL), opened for reading. See the module docstring."""

    def __init__(self, path_or_url: str | os.PathLike) -> None:
        import fsspec

        self.url = os.fspath(path_or_url)
        try:
            self._fs, base = fsspec.core.url_to_fs(self.url)
        except (ValueError, ImportError) as e:
            raise TwinInputError(f"cannot open {self.url!r}: {e}", file=self.url,
                                 fix="pass a twin directory or a URL whose fsspec backend is installed") from None
        self._base = base.rstrip("/")
        self._local = type(self._fs).__name__ == "LocalFileSystem"
        if not self._fs.exists(self._join(MANIFEST)):
            raise TwinInputError(
                "not a twin directory (no twin.json)",
                file=self.url,
                fix="pass the directory a build wrote, e.g. OUT/paris after `twin build --city paris --out OUT`",
            )

    def __repr__(self) -> str:
        return f"<twin Build {self.manifest.get('name', '?')} at {self.url}>"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    # ---------------------------------------------------------------------------------------- files
    def _join(self, rel: str) -> str:
        return f"{self._base}/{rel}"

    def resolve(self, rel: str) -> str:
        """The filesystem path of the build-relative ``rel`` (checked: relative, inside the build)."""
        rel = check_relpath(rel, root=self.url)
        if self._local:
            return _inside_local(self._base, rel)
        return self._join(rel)

    def exists(self, rel: str) -> bool:
        return bool(self._fs.exists(self.resolve(rel)))

    def open_file(self, rel: str, mode: str = "rb"):
        path = self.resolve(rel)
        try:
            return self._fs.open(path, mode)
        except FileNotFoundError:
            raise _paths.DamagedBuildError(f"{rel} is missing", file=self.url, field=rel,
                                 fix="run `twin catalog verify` on the build; rebuild or re-publish it") from None

    def parquet_file(self, rel: str) -> pq.ParquetFile:
        return pq.ParquetFile(self.open_file(rel))

    def read_table(self, rel: str, columns: Sequence[str] | None = None) -> pa.Table:
        return self.parquet_file(rel).read(columns=list(columns) if columns is not None else None)

    # ------------------------------------------------------------------------------------ metadata
    @cached_property
    def manifest(self) -> dict[str, Any]:
        """``twin.json`` (name, frame, sources, config, stages, split)."""
        with self.open_file(MANIFEST) as f:
            try:
                return json.loads(f.read())
            except ValueError as e:
                raise TwinInputError(f"twin.json is not valid JSON ({e})", file=self.url, field=MANIFEST,
                                     fix="rebuild, or re-publish from a good build") from None

    @cached_property
    def catalog(self) -> pa.Table:
        """The current catalog snapshot (one row per shard, ``twin.catalog.CATALOG_SCHEMA``)."""
        if self._local:
            from twin.catalog import Catalog

            return Catalog(self._base, must_exist=True).entries()
        try:
            with self._fs.open(self._join("catalog/CURRENT"), "rb") as f:
                ptr = json.loads(f.read())
            name = str(ptr["snapshot"])
        except (FileNotFoundError, ValueError, KeyError) as e:
            raise TwinInputError(f"no readable catalog pointer ({type(e).__name__}: {e})", file=self.url,
                                 field="catalog/CURRENT", fix="publish the build again") from None
        if "/" in name or name.startswith("."):
            raise TwinInputError(f"bad snapshot name {name!r}", file=self.url, field="catalog/CURRENT",
                                 fix="publish the build again")
        return self.read_table(f"catalog/snapshots/{name}")

    @property
    def frame(self):
        from twin.frame import LocalFrame

        return LocalFrame.from_dict(self.manifest["frame"])

    # -------------------------------------------------------------------------------------- tables
    def _geo(self, rel: str):
        import geopandas as gpd

        with self.open_file(rel) as f:
            return gpd.read_parquet(f)

    @cached_property
    def towers(self):
        """Cells (one row per cell, ``twin.schema.TOWER_COLUMNS``), GeoDataFrame, EPSG:4326 points."""
        return self._geo("towers.parquet")

    @cached_property
    def buildings(self):
        """Building footprints (``twin.schema.BUILDING_COLUMNS``), GeoDataFrame, EPSG:4326 polygons;
        ``geometry_local`` holds the same footprints in the local frame (metres) as shapely geometries."""
        import shapely

        gdf = self._geo("buildings.parquet")
        if "geometry_local" in gdf:
            gdf["geometry_local"] = shapely.from_wkb(np.asarray(gdf["geometry_local"].values, dtype=object))
        return gdf

    @cached_property
    def receivers(self):
        """Receivers (``twin.schema.RECEIVER_SCHEMA``: x, y, z in the local frame, metres), GeoDataFrame
        with EPSG:4326 points (from the file's GeoParquet geometry, or computed from x, y)."""
        import geopandas as gpd

        t = self.read_table("receivers.parquet")
        if b"geo" in (t.schema.metadata or {}):
            with self.open_file("receivers.parquet") as f:
                return gpd.read_parquet(f)
        df = t.to_pandas()
        lon, lat = self.frame.to_wgs84(df["x"].to_numpy(), df["y"].to_numpy())
        return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")

    # ---------------------------------------------------------------------------------------- views
    def views(self) -> dict[str, list[str]]:
        """{view name: its variants (config hashes), sorted}; the CIR and the split table are not listed."""
        cat = self.catalog
        out: dict[str, set[str]] = {}
        for v, h in zip(cat.column("view").to_pylist(), cat.column("config_hash").to_pylist(), strict=True):
            if v not in NOT_VIEWS:
                out.setdefault(v, set()).add(h or "")
        return {k: sorted(s) for k, s in sorted(out.items())}

    def _paths(self, view: str, variant: str | None = None) -> list[str]:
        cat = self.catalog
        rows = [r for r in cat.select(["view", "path", "config_hash"]).to_pylist()
                if r["view"] == view and (variant is None or (r["config_hash"] or "") == variant)]
        return sorted(r["path"] for r in rows)

    def split_table(self) -> pa.Table:
        """The build's split table (``rx_id``, ``split``, ``group``), see :mod:`twin.datasets.splits`."""
        paths = self._paths(SPLIT_VIEW)
        if not paths:
            raise TwinInputError(
                "this build has no split table",
                file=self.url,
                field="split",
                fix="run `twin split DIR --by tile` (or add a [split] section to the build config)",
            )
        return self.read_table(paths[0])

    def split_rx_ids(self, split: str) -> np.ndarray:
        t = self.split_table()
        names = sorted(set(t.column("split").to_pylist()))
        if split not in names:
            raise TwinInputError(f"unknown split {split!r}", file=self.url, field="split",
                                 fix=f"splits of this build: {', '.join(names)}")
        return np.asarray(t.filter(pc.equal(t["split"], split)).column("rx_id").to_numpy(), dtype=np.int64)

    def cir(self, split: str | None = None, columns: Sequence[str] | None = None) -> Reader:
        """The per-link CIR rows as a :class:`Reader` (``a`` = complex64 path coefficients)."""
        paths = self._paths(CIR_VIEW)
        if not paths:
            raise TwinInputError("the catalog lists no CIR shards", file=self.url, fix="run `twin build` first")
        rx = self.split_rx_ids(split) if split is not None else None
        return Reader(self, CIR_VIEW, paths, columns=columns, rx_ids=rx, split=split)

    def resolve_variant(self, name: str, variant: str | None = None) -> str:
        """The variant of ``name`` to read: ``variant`` (a config hash or a unique prefix of one), or the only
        variant there is; several variants and none named is an error listing them."""
        views = self.views()
        if name not in views:
            raise TwinInputError(
                f"no view {name!r} in this build",
                file=self.url,
                field="view",
                fix=("built views: " + ", ".join(views)) if views else "build one: `twin view build NAME DIR`",
            )
        variants = views[name]
        if variant is None:
            if len(variants) > 1:
                raise TwinInputError(
                    f"view {name!r} has {len(variants)} variants",
                    file=self.url,
                    field="variant",
                    fix=f"pass variant= one of {', '.join(variants)} (see `twin view ls`)",
                )
            return variants[0]
        hits = [v for v in variants if v == variant] or [v for v in variants if v.startswith(variant)]
        if len(hits) != 1:
            raise TwinInputError(
                f"view {name!r} has no variant {variant!r}" if not hits else f"variant {variant!r} is ambiguous",
                file=self.url,
                field="variant",
                fix=f"variants of {name}: {', '.join(variants)}",
            )
        return hits[0]

    def view(self, name: str, variant: str | None = None, split: str | None = None,
             columns: Sequence[str] | None = None) -> Reader:
        """One variant of a view as a :class:`Reader`; ``split`` keeps the rows of that split's receivers."""
        v = self.resolve_variant(name, variant)
        rx = self.split_rx_ids(split) if split is not None else None
        return Reader(self, name, self._paths(name, v), columns=columns, rx_ids=rx, split=split, variant=v)


def open_build(path_or_url: str | os.PathLike) -> Build:
    """Open a twin directory (local path or any fsspec URL of a published copy) for reading."""
    return Build(path_or_url)
