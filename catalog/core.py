"""The catalog of a twin directory (docs/architecture.md "Catalog"): one Parquet row per shard, committed atomically.

Layout under a twin directory ``root``::

    root/catalog/CURRENT                          pointer: {"snapshot": name, "seq": n, "rows": r, ...}
    root/catalog/snapshots/<seq:06d>-<uuid>.parquet   one snapshot per commit (the last 20 are kept)

A commit writes a new snapshot (temporary name, fsync, rename) and then replaces ``CURRENT`` (temporary
name, fsync, rename). A reader follows ``CURRENT`` and sees either the old or the new snapshot, never a
mix. Shards are written by :func:`write_shard` under their final name only once complete, and
:meth:`Catalog.register` refuses to list a file that is not there with the recorded size, so a crash at
any point never leaves a listed shard missing or half-written.

Sizes are in bytes, times are UTC, bounding boxes are WGS84 degrees (lon_min, lat_min, lon_max, lat_max);
a shard's extent in the local frame (metres) is in its column stats (``rx_x``/``rx_y`` min and max).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import posixpath
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from twin.catalog.paths import DamagedBuildError, check_relpath, inside
from twin.errors import TwinError, TwinInputError
from twin.io import atomic_path, fsync_dir, sha256_file, write_json_atomic
from twin.schema import (
    META_CODE_VERSION,
    META_CONFIG_HASH,
    META_SCENE_HASH,
    META_SCHEMA_VERSION,
    META_TASK_KEY,
    META_VIEW,
)

CATALOG_DIR = "catalog"
SNAPSHOT_DIR = "snapshots"
POINTER_NAME = "CURRENT"
LOCK_NAME = ".lock"
CATALOG_FORMAT = "1"
KEEP_SNAPSHOTS = 20
MAX_ROW_GROUP_ROWS = 10_000
#: folders of a twin directory whose Parquet files must all be listed in the catalog
SHARD_DIRS = ("cir", "views")

_SNAPSHOT_RE = re.compile(r"^(\d{6,})-([0-9a-f]{32})\.parquet$")
_VIEW_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: One row per shard. Column names are the catalog's contract (docs/architecture.md "Catalog").
CATALOG_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string()),  # build name, e.g. "paris"
        pa.field("city", pa.string()),
        pa.field("view", pa.string()),  # "cir" for CIR shards, else the view name
        pa.field("path", pa.string()),  # POSIX path relative to the twin directory
        pa.field("rows", pa.int64()),
        pa.field("bytes", pa.int64()),  # file size, bytes
        pa.field("sha256", pa.string()),  # hex digest of the file
        pa.field("schema_fingerprint", pa.string()),  # sha256 of the arrow schema without metadata
        pa.field("config_hash", pa.string()),  # producer config hash (twin.config_hash)
        pa.field("code_version", pa.string()),
        pa.field("schema_version", pa.string()),
        pa.field("scene_hash", pa.string()),
        pa.field("task_key", pa.string()),  # the render/view task that produced it ("" if none)
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("bbox_xmin", pa.float64()),  # WGS84 degrees: west longitude; null when unknown
        pa.field("bbox_ymin", pa.float64()),  # south latitude
        pa.field("bbox_xmax", pa.float64()),  # east longitude
        pa.field("bbox_ymax", pa.float64()),  # north latitude
        pa.field("column_stats", pa.string()),  # JSON {column: {"min", "max", "nulls"}}
    ],
    metadata={"twin.catalog_format": CATALOG_FORMAT},
)
CATALOG_COLUMNS = tuple(CATALOG_SCHEMA.names)


@dataclass(frozen=True)
class ShardEntry:
    """One catalog row: a shard file of a twin directory and what is known about it.

    ``path`` is relative to the twin directory (POSIX separators); ``bytes`` the file size in bytes;
    ``bbox`` = (lon_min, lat_min, lon_max, lat_max) in WGS84 degrees, or None; ``column_stats`` a JSON string.
    """

    view: str
    path: str
    rows: int
    bytes: int
    sha256: str
    schema_fingerprint: str = ""
    config_hash: str = ""
    code_version: str = ""
    schema_version: str = ""
    scene_hash: str = ""
    task_key: str = ""
    dataset: str = ""
    city: str = ""
    created_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))
    bbox: tuple[float, float, float, float] | None = None
    column_stats: str = "{}"

    def to_record(self) -> dict[str, Any]:
        """A dict with exactly the columns of :data:`CATALOG_SCHEMA`."""
        b = self.bbox or (None, None, None, None)
        d = {k: getattr(self, k) for k in CATALOG_COLUMNS if hasattr(self, k)}
        d.update(bbox_xmin=b[0], bbox_ymin=b[1], bbox_xmax=b[2], bbox_ymax=b[3])
        return {k: d[k] for k in CATALOG_COLUMNS}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> ShardEntry:
        """Inverse of :meth:`to_record` (a row of :meth:`Catalog.entries` as a dict)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in rec.items() if k in names}
        box: list[Any] = [rec.get(k) for k in ("bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax")]
        kw["bbox"] = None if any(v is None for v in box) else tuple(float(v) for v in box)
        return cls(**kw)

    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        """``column_stats`` parsed."""
        return json.loads(self.column_stats or "{}")


def entries_to_table(entries: Sequence[ShardEntry]) -> pa.Table:
    """A catalog table (:data:`CATALOG_SCHEMA`) from entries."""
    return pa.Table.from_pylist([e.to_record() for e in entries], schema=CATALOG_SCHEMA)


def empty_catalog_table() -> pa.Table:
    return CATALOG_SCHEMA.empty_table()


# ------------------------------------------------------------------------------------------- shard writing


def schema_fingerprint(schema: pa.Schema) -> str:
    """sha256 (hex) of the arrow schema's names and types, with schema and field metadata removed."""
    text = schema.to_string(show_field_metadata=False, show_schema_metadata=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def column_stats(table: pa.Table) -> dict[str, dict[str, Any]]:
    """min, max and null count of every numeric scalar (integer or floating) column.

    NaNs are ignored by min/max (a column of only NaN gives null), infinities are written as "inf"/"-inf".
    """
    out: dict[str, dict[str, Any]] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            continue
        mm = pc.min_max(col)
        out[name] = {
            "min": _json_number(mm["min"].as_py()),
            "max": _json_number(mm["max"].as_py()),
            "nulls": int(col.null_count),
        }
    return out


def check_shard_relpath(relpath: str | os.PathLike, *, what: str = "relpath", file: Any = None) -> str:
    """Normalise a shard path passed by a writer (relative, without '..', ``.parquet``); TwinInputError if not."""
    return check_relpath(relpath, file=file, field=what, suffix=".parquet", damaged=False)


def _check_view(view: Any) -> str:
    if not isinstance(view, str) or not _VIEW_RE.match(view):
        raise TwinInputError(
            f"view name {view!r} is not valid",
            field="view",
            fix="use letters, digits, '_', '-' or '.', e.g. 'cir' or 'folded_lte'",
        )
    return view


def _check_bbox(bbox: Any) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        b = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        b = ()
    if (
        len(b) != 4
        or not all(math.isfinite(v) for v in b)
        or not -180.0 <= b[0] <= b[2] <= 180.0
        or not -90.0 <= b[1] <= b[3] <= 90.0
    ):
        raise TwinInputError(
            f"bbox {bbox!r} is not (lon_min, lat_min, lon_max, lat_max) in WGS84 degrees",
            field="bbox",
            fix="pass four numbers with -180 <= lon_min <= lon_max <= 180 and -90 <= lat_min <= lat_max <= 90, or None",
        )
    return b  # type: ignore[return-value]


def write_shard(
    root: str | os.PathLike,
    relpath: str | os.PathLike,
    table: pa.Table,
    *,
    view: str,
    metadata: dict[str, str],
    task_key: str = "",
    dataset: str = "",
    city: str = "",
    bbox: tuple[float, float, float, float] | None = None,
) -> ShardEntry:
    """Write ``table`` to ``root/relpath`` atomically and describe it; does not register it.

    The file is written under a temporary name in the same folder (zstd, row groups of at most
    10 000 rows, ``metadata`` merged into the schema metadata with ``twin.view``/``twin.task_key``),
    fsynced and renamed into place. Returns the :class:`ShardEntry` (sha256 and size in bytes of the file,
    row count, schema fingerprint, column stats). ``bbox`` is the area the shard covers, WGS84 degrees
    (lon_min, lat_min, lon_max, lat_max), or None.
    """
    if not isinstance(table, pa.Table):
        raise TwinInputError(
            f"table must be a pyarrow.Table, got {type(table).__name__}",
            field="table",
            fix="convert it first, e.g. pa.Table.from_pandas(df) or pa.table({...})",
        )
    rel = check_shard_relpath(relpath)
    view = _check_view(view)
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TwinInputError(
            "metadata must map strings to strings",
            field="metadata",
            fix="build it with twin.schema.file_metadata()",
        )
    if not isinstance(task_key, str):
        raise TwinInputError(
            f"task_key must be a string, got {task_key!r}",
            field="task_key",
            fix="pass the task's hash as str",
        )
    box = _check_bbox(bbox)

    meta: dict[bytes | str, bytes | str] = dict(table.schema.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in metadata.items()})
    meta[META_VIEW.encode()] = view.encode()
    if task_key:
        meta[META_TASK_KEY.encode()] = task_key.encode()
    out = table.replace_schema_metadata(meta)

    dest = Path(root) / rel
    with atomic_path(dest) as tmp:
        pq.write_table(out, tmp, compression="zstd", row_group_size=MAX_ROW_GROUP_ROWS)
        digest = sha256_file(tmp)
        size = tmp.stat().st_size

    from twin import __version__

    return ShardEntry(
        view=view,
        path=rel,
        rows=int(table.num_rows),
        bytes=int(size),
        sha256=digest,
        schema_fingerprint=schema_fingerprint(table.schema),
        config_hash=metadata.get(META_CONFIG_HASH, ""),
        code_version=metadata.get(META_CODE_VERSION, __version__),
        schema_version=metadata.get(META_SCHEMA_VERSION, ""),
        scene_hash=metadata.get(META_SCENE_HASH, ""),
        task_key=task_key,
        dataset=dataset,
        city=city,
        created_at=_dt.datetime.now(_dt.UTC),
        bbox=box,
        column_stats=json.dumps(column_stats(table), sort_keys=True, allow_nan=False),
    )


# ------------------------------------------------------------------------------------------------- catalog


@dataclass
class VerifyReport:
    """Result of :meth:`Catalog.verify`: ``ok`` when ``problems`` is empty; ``checked`` = shards checked."""

    problems: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:  # noqa: D105
        return self.ok


def _config_hash_problems(table: pa.Table) -> list[str]:
    """One problem per shard folder that holds shards of more than one config hash or schema: a folder is one
    variant (``views/<view>/<variant>/``, ``cir/``), and every reader (pyarrow datasets, polars, DuckDB, HF) reads
    a folder as one table, so mixed shards there fail to read or return rows twice."""
    out = []
    by_dir: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    cols = [table[c].to_pylist() for c in ("view", "path", "config_hash", "schema_fingerprint")]
    for view, path, h, fp in zip(*cols, strict=True):
        hashes, fps = by_dir.setdefault((view, posixpath.dirname(path)), (set(), set()))
        hashes.add(h or "")
        fps.add(fp or "")
    for (view, folder), (hashes, fps) in sorted(by_dir.items()):
        if len(hashes) > 1:
            out.append(
                f"shards of {len(hashes)} config hashes in view {view}, one folder {folder}/ ({', '.join(sorted(hashes))}): "
                "a different config was built into this folder; drop one (`twin view drop`) or rebuild with --overwrite"
            )
        elif len(fps) > 1:
            out.append(
                f"shards of {len(fps)} schemas in view {view}, one folder {folder}/: readers of the folder fail on "
                "mixed schemas; drop the variant (`twin view drop`) and build it again"
            )
    return out


def _duplicate_link_problems(root: Path, files: Sequence[Path]) -> list[str]:
    """A problem when a ``link_id`` appears in more than one CIR row (over all listed CIR shards)."""
    cols = []
    for f in files:
        try:
            if "link_id" in pq.read_schema(f).names:
                cols.append(pq.read_table(f, columns=["link_id"]).column("link_id"))
        except (OSError, pa.ArrowException):
            continue  # not Parquet: the size/sha256 checks above speak for it
    if not cols:
        return []
    ids = pa.chunked_array([c for col in cols for c in col.chunks], type=cols[0].type)
    counts = pc.value_counts(ids)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(dup) == 0:
        return []
    return [
        f"duplicate link_id: {len(dup)} link_id(s) appear in more than one CIR row "
        f"(e.g. {dup.field('values')[0].as_py()}); rebuild the directory with --overwrite"
    ]


class CatalogError(TwinError):
    """The catalog itself is damaged (e.g. the CURRENT pointer names a missing snapshot)."""

    exit_code = 1


def _is_temp_name(name: str) -> bool:
    """Names our atomic writers use while a file is in flight (``.<name>.<rand>.tmp``, staging dirs)."""
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".staging") or ".old-" in name)


class Catalog:
    """The catalog of the twin directory ``root`` (files under ``root/catalog/``).

    ``must_exist=True`` raises :class:`TwinInputError` (exit code 2) when ``root`` has no catalog, for
    commands that read an existing build; the default lets a new build start an empty catalog.
    """

    def __init__(self, root: str | os.PathLike, *, must_exist: bool = False) -> None:
        self.root = Path(root)
        self.dir = self.root / CATALOG_DIR
        self.snapshot_dir = self.dir / SNAPSHOT_DIR
        self.pointer_path = self.dir / POINTER_NAME
        if must_exist and not (self.pointer_path.exists() or self.snapshot_dir.is_dir()):
            what = "does not exist" if not self.root.exists() else "has no catalog (catalog/CURRENT)"
            raise TwinInputError(
                f"not a twin directory: {what}",
                file=self.root,
                field="catalog/CURRENT",
                fix="point at a twin directory written by `twin build` (it contains catalog/CURRENT)",
            )

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    # ------------------------------------------------------------------------------------ pointer / read
    def pointer(self) -> dict[str, Any] | None:
        """The parsed ``CURRENT`` pointer, or None when no snapshot was ever committed.

        Raises :class:`CatalogError` when the pointer exists but cannot be read or names no snapshot.
        """
        if not self.pointer_path.exists():
            if self.snapshot_dir.is_dir() and any(
                _SNAPSHOT_RE.match(p.name) for p in self.snapshot_dir.iterdir()
            ):
                raise CatalogError(f"{self.pointer_path}: snapshot pointer missing while snapshots exist")
            return None
        try:
            ptr = json.loads(self.pointer_path.read_text())
            name = ptr["snapshot"]
            int(ptr["seq"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CatalogError(
                f"{self.pointer_path}: snapshot pointer broken ({type(e).__name__}: {e})"
            ) from None
        if not isinstance(name, str) or not _SNAPSHOT_RE.match(name):
            raise CatalogError(f"{self.pointer_path}: snapshot pointer broken (bad snapshot name {name!r})")
        if not (self.snapshot_dir / name).is_file():
            raise CatalogError(f"{self.pointer_path}: snapshot pointer broken (snapshot {name} is missing)")
        return ptr

    def snapshot_path(self) -> Path | None:
        """Path of the current snapshot file, or None when there is none."""
        ptr = self.pointer()
        return None if ptr is None else self.snapshot_dir / ptr["snapshot"]

    def _read_current(self) -> tuple[pa.Table, int]:
        ptr = self.pointer()
        if ptr is None:
            return empty_catalog_table(), 0
        path = self.snapshot_dir / ptr["snapshot"]
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            raise CatalogError(f"{path}: snapshot unreadable ({e})") from None
        missing = [c for c in CATALOG_COLUMNS if c not in table.column_names]
        if missing:
            raise CatalogError(f"{path}: snapshot lacks column(s) {', '.join(missing)}")
        table = table.select(list(CATALOG_COLUMNS)).cast(CATALOG_SCHEMA)
        return table, int(ptr["seq"])

    def entries(self, view: str | None = None) -> pa.Table:
        """The current snapshot (:data:`CATALOG_SCHEMA`), optionally only the rows of ``view``."""
        table, _ = self._read_current()
        if view is not None:
            table = table.filter(pc.equal(table["view"], view))
        return table

    def shard_entries(self, view: str | None = None) -> list[ShardEntry]:
        """:meth:`entries` as :class:`ShardEntry` objects."""
        return [ShardEntry.from_record(r) for r in self.entries(view).to_pylist()]

    def views(self) -> list[str]:
        """Sorted names of the views that have at least one shard."""
        return sorted(set(self.entries()["view"].to_pylist()))

    def checked_task_keys(self, view: str, *, checksums: bool = True) -> tuple[set[str], list[str]]:
        """(task keys of ``view`` whose shard is sound, problems of the others), for resume and view inputs.

        A shard is sound when its path resolves inside the build, the file exists, and its size and (with
        ``checksums``) sha256 are those the catalog recorded when it was written.
        """
        good: set[str] = set()
        bad: list[str] = []
        for rec in self.entries(view).select(["path", "bytes", "sha256", "task_key"]).to_pylist():
            if not rec["task_key"]:
                continue
            problem = self._shard_problem(rec, checksums=checksums)
            if problem:
                bad.append(problem)
            else:
                good.add(rec["task_key"])
        return good, bad

    def _shard_problem(self, rec: Mapping[str, Any], *, checksums: bool) -> str:
        try:
            f = inside(self.root, check_relpath(rec["path"], suffix=".parquet"))
        except DamagedBuildError:
            return f"bad path in catalog: {rec['path']!r}"
        if not f.is_file():
            return f"missing shard: {rec['path']}"
        size = f.stat().st_size
        if size != rec["bytes"]:
            return f"size mismatch: {rec['path']} has {size} bytes, catalog says {rec['bytes']}"
        if checksums and sha256_file(f) != rec["sha256"]:
            return f"sha256 mismatch: {rec['path']} (file changed or corrupted after it was written)"
        return ""

    def task_keys(self, view: str) -> set[str]:
        """Task keys already registered for ``view`` (for resume); empty keys are left out."""
        return {k for k in self.entries(view)["task_key"].to_pylist() if k}

    # ---------------------------------------------------------------------------------------- register
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """An exclusive inter-process lock on ``catalog/.lock`` (POSIX flock; a no-op where unavailable)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        with open(self.dir / LOCK_NAME, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def register(self, entries: Iterable[ShardEntry]) -> None:
        """Commit a new snapshot = current rows + ``entries``; an entry with a listed path replaces it.

        Every entry's file must exist under the root with the recorded size. Writes
        ``snapshots/<seq:06d>-<uuid>.parquet`` then atomically replaces ``CURRENT``; keeps the last 20
        snapshots.
        """
        new: dict[str, ShardEntry] = {}
        for i, e in enumerate(entries):
            if not isinstance(e, ShardEntry):
                raise TwinInputError(
                    f"entry {i} is a {type(e).__name__}, not a ShardEntry",
                    field="entries",
                    fix="pass what write_shard() returns",
                )
            rel = check_shard_relpath(e.path, what="path", file=self.root)
            _check_view(e.view)
            new.pop(rel, None)  # last one wins, and keeps its place in the order
            new[rel] = e if rel == e.path else dataclasses.replace(e, path=rel)
        for rel, e in new.items():
            f = self.root / rel
            if not f.is_file() or f.stat().st_size != e.bytes:
                found = f"{f.stat().st_size} bytes" if f.is_file() else "no file"
                raise TwinInputError(
                    f"cannot register {rel}: expected {e.bytes} bytes, found {found}",
                    file=f,
                    field="bytes",
                    fix="register a shard only after write_shard() returned",
                )
        if not new:
            return
        with self._lock():
            current, seq = self._read_current()
            keep = current.filter(
                pc.invert(pc.is_in(current["path"], value_set=pa.array(list(new), pa.string())))
            )
            merged = pa.concat_tables([keep, entries_to_table(list(new.values()))])
            merged = merged.sort_by([("path", "ascending")])
            self._commit(merged, seq + 1)

    def unregister(self, paths: Iterable[str]) -> int:
        """Commit a new snapshot without the rows of ``paths`` (one atomic commit); returns rows removed.

        The files are left alone: the caller removes them after this returns (a crash in between leaves
        orphans that ``verify`` reports, never a listed shard that is missing).
        """
        drop = [check_shard_relpath(p, what="path", file=self.root) for p in paths]
        if not drop:
            return 0
        with self._lock():
            current, seq = self._read_current()
            gone = pc.is_in(current["path"], value_set=pa.array(drop, pa.string()))
            n = int(pc.sum(gone).as_py() or 0)
            if n:
                self._commit(current.filter(pc.invert(gone)), seq + 1)
        return n

    def _commit(self, table: pa.Table, seq: int) -> None:
        name = f"{seq:06d}-{uuid.uuid4().hex}.parquet"
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        meta = dict(CATALOG_SCHEMA.metadata)
        meta[b"twin.catalog_seq"] = str(seq).encode()
        with atomic_path(self.snapshot_dir / name) as tmp:
            pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
        self._write_pointer(
            {
                "snapshot": name,
                "seq": seq,
                "rows": int(table.num_rows),
                "format": CATALOG_FORMAT,
                "committed_at": _dt.datetime.now(_dt.UTC).isoformat(),
            }
        )
        self._prune(keep_name=name)

    def _write_pointer(self, pointer: dict[str, Any]) -> None:
        """Replace ``CURRENT`` atomically (temporary file, fsync, rename)."""
        write_json_atomic(self.pointer_path, pointer)

    def _prune(self, *, keep_name: str) -> None:
        snaps = sorted(
            (p for p in self.snapshot_dir.iterdir() if _SNAPSHOT_RE.match(p.name)),
            key=lambda p: (int(_SNAPSHOT_RE.match(p.name).group(1)), p.stat().st_mtime),  # type: ignore[union-attr]
        )
        for p in snaps[:-KEEP_SNAPSHOTS]:
            if p.name != keep_name:
                with contextlib.suppress(OSError):
                    p.unlink()
        fsync_dir(self.snapshot_dir)

    def history(self) -> list[str]:
        """Names of the snapshot files kept, oldest first."""
        if not self.snapshot_dir.is_dir():
            return []
        return sorted(p.name for p in self.snapshot_dir.iterdir() if _SNAPSHOT_RE.match(p.name))

    # ------------------------------------------------------------------------------------------ verify
    def verify(self, *, checksums: bool = True) -> VerifyReport:
        """Check the catalog against the files: missing shards, size and (``checksums``) sha256 mismatches,
        Parquet files under ``cir/`` and ``views/`` that are not listed (orphans), temporary files left by
        an interrupted write, and a broken snapshot pointer.
        """
        rep = VerifyReport()
        try:
            table, _ = self._read_current()
            ptr = self.pointer()
            if ptr is not None and int(ptr.get("rows", table.num_rows)) != table.num_rows:
                rep.problems.append(
                    f"snapshot pointer broken: CURRENT says {ptr.get('rows')} rows, snapshot has {table.num_rows}"
                )
        except CatalogError as e:
            rep.problems.append(str(e))
            table = empty_catalog_table()
        listed: set[str] = set()
        cir_files: list[Path] = []
        for rec in table.select(["path", "bytes", "sha256", "view"]).to_pylist():
            rel = rec["path"]
            try:
                rel = check_relpath(rel, suffix=".parquet")
                f = inside(self.root, rel)
            except DamagedBuildError:
                rep.problems.append(
                    f"bad path in catalog: {rel!r} (must be relative, without '..', inside the build)"
                )
                continue
            listed.add(rel)
            rep.checked += 1
            if not f.is_file():
                rep.problems.append(f"missing shard: {rel}")
                continue
            size = f.stat().st_size
            if size != rec["bytes"]:
                rep.problems.append(f"size mismatch: {rel} has {size} bytes, catalog says {rec['bytes']}")
                continue
            if checksums and sha256_file(f) != rec["sha256"]:
                rep.problems.append(
                    f"sha256 mismatch: {rel} (file changed or corrupted after it was written)"
                )
                continue
            if rec["view"] == "cir":
                cir_files.append(f)
        rep.problems.extend(_config_hash_problems(table))
        rep.problems.extend(_duplicate_link_problems(self.root, cir_files))
        for sub in SHARD_DIRS:
            base = self.root / sub
            if not base.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                for name in sorted(dirnames + filenames):
                    p = Path(dirpath) / name
                    rel = p.relative_to(self.root).as_posix()
                    if _is_temp_name(name):
                        rep.problems.append(f"temporary file left over: {rel}")
                    elif name in filenames and name.endswith(".parquet") and rel not in listed:
                        rep.problems.append(f"orphan shard (not in the catalog): {rel}")
                dirnames[:] = [d for d in dirnames if not _is_temp_name(d)]
        for base in (self.dir, self.snapshot_dir):
            if base.is_dir():
                for p in sorted(base.iterdir()):
                    if _is_temp_name(p.name):
                        rep.problems.append(
                            f"temporary file left over: {p.relative_to(self.root).as_posix()}"
                        )
        return rep

    # ------------------------------------------------------------------------------------------- query
    def query(self, sql: str) -> pa.Table:
        """Run DuckDB ``sql`` over the catalog and the shards; see :func:`twin.catalog.query.run_query`."""
        from twin.catalog.query import run_query

        return run_query(self, sql)
