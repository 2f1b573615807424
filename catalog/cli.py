"""``twin catalog ...``: list, show, verify, query and publish the catalog of a twin directory (docs/architecture.md "Catalog").

Mounted by ``twin/cli.py`` as ``app.add_typer(catalog_app, name="catalog")``. User errors print one red
line (plus the fix) on stderr and exit 2; ``verify`` exits 1 when it finds a problem.
"""

from __future__ import annotations

import csv
import decimal
import functools
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from twin.errors import TwinError, TwinInputError

F = TypeVar("F", bound=Callable[..., Any])

catalog_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="List, show, verify, query (DuckDB SQL) and publish the catalog of a twin directory.",
    rich_markup_mode=None,
)


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def _stdout():
    from rich.console import Console

    # piped output (files, tests) is not cut at 80 columns
    return Console(highlight=False, width=None if sys.stdout.isatty() else 240, emoji=False)


def _handle_errors(fn: F) -> F:
    """Turn the project's errors into a red message on stderr and their exit code (2 for bad input)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwinError as e:
            from rich.markup import escape

            _stderr().print(f"[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(getattr(e, "exit_code", 1)) from None
        except (OSError, MemoryError) as e:
            from rich.markup import escape

            from twin.errors import environment_error

            env = environment_error(e)
            if env is None:
                raise
            _stderr().print(f"[red]error:[/red] {escape(str(env))}")
            raise typer.Exit(env.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _json_value(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, decimal.Decimal):  # DuckDB sums of integers come back as HUGEINT -> decimal128
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def _entry_json(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: _json_value(v) for k, v in rec.items() if not k.startswith("bbox_") and k != "column_stats"}
    box = [rec.get(k) for k in ("bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax")]
    out["bbox"] = None if any(b is None for b in box) else box
    out["column_stats"] = json.loads(rec.get("column_stats") or "{}")
    return out


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _open(directory: Path):
    from twin.catalog.core import Catalog

    return Catalog(directory, must_exist=True)


DirArg = typer.Argument(
    ..., help="twin directory (the folder with twin.json and catalog/)", show_default=False
)


@catalog_app.command("ls")
@_handle_errors
def ls_cmd(
    directory: Path = DirArg,
    as_json: bool = typer.Option(False, "--json", help="one JSON object per shard per line"),
    view: str | None = typer.Option(None, "--view", help="only shards of this view (e.g. cir, folded_lte)"),
) -> None:
    """List the shards of the current catalog snapshot."""
    cat = _open(directory)
    table = cat.entries(view)
    if view is not None and table.num_rows == 0:
        known = sorted(set(cat.entries().column("view").to_pylist()))
        raise TwinInputError(f"no shards of view {view!r} in this catalog", file=directory, field="--view",
                             fix="views in this build: " + (", ".join(known) if known else "none"))
    if as_json:
        for rec in table.to_pylist():
            typer.echo(json.dumps(_entry_json(rec), sort_keys=True))
        return
    from rich.table import Table

    t = Table(title=f"{directory} — {table.num_rows} shard(s)")
    for col, just in (
        ("view", "left"),
        ("path", "left"),
        ("rows", "right"),
        ("bytes", "right"),
        ("sha256", "left"),
        ("task_key", "left"),
        ("created_at", "left"),
    ):
        t.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for r in table.to_pylist():
        t.add_row(
            r["view"],
            r["path"],
            str(r["rows"]),
            _human_bytes(r["bytes"]),
            r["sha256"][:12],
            r["task_key"][:16],
            r["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
        )
    _stdout().print(t)


@catalog_app.command("show")
@_handle_errors
def show_cmd(directory: Path = DirArg) -> None:
    """Summary per view (shards, rows, bytes), config hashes, code versions and schemas."""
    import pyarrow.parquet as pq
    from rich.table import Table

    cat = _open(directory)
    table = cat.entries()
    ptr = cat.pointer() or {}
    con = _stdout()
    con.print(f"[bold]{directory}[/bold]  snapshot {ptr.get('snapshot', '(none)')}  seq {ptr.get('seq', 0)}")
    rows = table.to_pylist()
    from twin.catalog.paths import resolve

    for r in rows:  # every row's path is checked before anything is printed or opened
        resolve(cat.root, r["path"], suffix=".parquet", field="catalog path")
    summary = Table(title="views")
    for col in ("view", "shards", "rows", "bytes", "schemas"):
        summary.add_column(col, justify="left" if col == "view" else "right")
    for view in cat.views():
        vr = [r for r in rows if r["view"] == view]
        summary.add_row(
            view,
            str(len(vr)),
            str(sum(r["rows"] for r in vr)),
            _human_bytes(sum(r["bytes"] for r in vr)),
            str(len({r["schema_fingerprint"] for r in vr})),
        )
    con.print(summary)
    for label, col in (
        ("config hashes", "config_hash"),
        ("code versions", "code_version"),
        ("scene hashes", "scene_hash"),
        ("datasets", "dataset"),
        ("cities", "city"),
    ):
        vals = sorted({r[col] for r in rows if r[col]})
        con.print(f"{label}: {', '.join(vals) if vals else '(none recorded)'}")
    for view in cat.views():
        first = next(r for r in rows if r["view"] == view)
        path = resolve(cat.root, first["path"], suffix=".parquet", field="catalog path")
        con.print(f"\n[bold]schema of {view}[/bold] (from {first['path']})")
        try:
            schema = pq.read_schema(path)
        except OSError as e:
            con.print(f"  [red]cannot read: {e}[/red]")
            continue
        for f in schema:
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            con.print(f"  {f.name}: {f.type}" + (f"  {meta}" if meta else ""), markup=False)


@catalog_app.command("verify")
@_handle_errors
def verify_cmd(
    directory: Path = DirArg,
    no_checksums: bool = typer.Option(
        False, "--no-checksums", help="check sizes only, do not recompute sha256"
    ),
) -> None:
    """Check every listed shard (exists, size, sha256), orphans, temp files and the snapshot pointer.

    Exit code 0 when clean, 1 when anything is wrong.
    """
    cat = _open(directory)
    rep = cat.verify(checksums=not no_checksums)
    from rich.markup import escape

    err = _stderr()
    for p in rep.problems:
        err.print(f"[red]problem:[/red] {escape(p)}")
    what = "sizes" if no_checksums else "sizes and sha256"
    if rep.ok:
        _stdout().print(f"[green]ok[/green]: {rep.checked} shard(s) checked ({what}), no problems")
        return
    _stdout().print(f"[red]{len(rep.problems)} problem(s)[/red] in {rep.checked} shard(s) checked ({what})")
    raise typer.Exit(1)


@catalog_app.command("query")
@_handle_errors
def query_cmd(
    directory: Path = DirArg,
    sql: str = typer.Argument(
        ..., help="DuckDB SQL over `catalog` and one table per view variant (cir, folded_lte; <view>_<variant> when a view has several)"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per row per line"),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header (nested values as JSON)"),
    max_rows: int = typer.Option(
        100, "--max-rows", help="rows shown in the table view (not with --json/--csv)"
    ),
) -> None:
    """Run DuckDB SQL; views' rows carry `shard_path` to join with `catalog.path`."""
    if as_json and as_csv:
        raise TwinInputError("--json and --csv exclude each other", field="--json/--csv", fix="pass only one")
    cat = _open(directory)
    result = cat.query(sql)
    recs = result.to_pylist()
    if as_json:
        for r in recs:
            typer.echo(json.dumps(_json_value(r), sort_keys=False, default=str))
        return
    if as_csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(result.column_names)
        for r in recs:
            w.writerow(
                [
                    json.dumps(_json_value(v))
                    if isinstance(v, list | dict)
                    else ("" if v is None else _json_value(v))
                    for v in r.values()
                ]
            )
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
        return
    from rich.table import Table

    t = Table(title=f"{result.num_rows} row(s)")
    for c in result.column_names:
        t.add_column(c)
    for r in recs[:max_rows]:
        t.add_row(*[json.dumps(_json_value(v)) if isinstance(v, list | dict) else str(v) for v in r.values()])
    con = _stdout()
    con.print(t)
    if result.num_rows > max_rows:
        con.print(f"... {result.num_rows - max_rows} more row(s); use --json or --csv for all")


@catalog_app.command("publish")
@_handle_errors
def publish_cmd(
    directory: Path = DirArg,
    dest: str = typer.Argument(..., help="destination folder or fsspec URL (file://, s3://, memory://, ...)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a non-empty destination"),
) -> None:
    """Copy the listed shards, catalog, twin.json and previews to DEST with a dataset card; checksums verified."""
    from twin.catalog.publish import publish

    out = publish(directory, dest, overwrite=overwrite)
    _stdout().print(f"[green]published[/green] {directory} -> {out}")
