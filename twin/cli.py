"""The ``twin`` command line: doctor, ingest, build, catalog, view, bench.

Every command turns the project's own errors into a red message and an exit code (2 for bad input), never a
traceback. Long work shows rich progress; logs go through ``logging`` (``-v`` for more).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from twin.errors import TwinError, TwinInputError

# messages stay on one line (paths can be copied); no :emoji: codes: a CSV header ":x:" stays ":x:"
console = Console(stderr=True, soft_wrap=True, emoji=False)
out = Console(soft_wrap=True, emoji=False)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Ray-traced digital twins of real cities: OpenStreetMap + tower CSVs -> Sionna RT -> CIR Parquet -> views.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain text: "[ingest]" in a help string is shown, not parsed as markup
)
view_app = typer.Typer(no_args_is_help=True, help="List views and build them on an existing twin directory.",
                       rich_markup_mode=None)
bench_app = typer.Typer(no_args_is_help=True, help="Speed measured as ratios against the bare libraries, in one run.",
                        rich_markup_mode=None)
app.add_typer(view_app, name="view")
app.add_typer(bench_app, name="bench")


def _mount_catalog() -> None:
    from twin.catalog.cli import catalog_app

    app.add_typer(catalog_app, name="catalog", help="List, show, verify, query and publish a build's catalog.")


def handle_errors(fn):
    """Print TwinError as a clear message and exit with its code (2 for bad input)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TwinError as e:
            console.print("[bold red]error:[/] " + _escape(str(e)), highlight=False)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted; finished shards are kept and a re-run resumes[/]")
            raise typer.Exit(130) from None
        except (OSError, MemoryError) as e:
            from twin.errors import environment_error

            env = environment_error(e)
            if env is None:
                raise
            console.print("[bold red]error:[/] " + _escape(str(env)), highlight=False)
            raise typer.Exit(env.exit_code) from None

    return wrapper


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def _print_version(value: bool) -> None:
    if value:
        from twin import __version__

        out.print(f"twin {__version__}", highlight=False, markup=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_path=False, level=level)
    if verbose == 1:  # -v: twin's own INFO records; other libraries (Dask, tornado, ...) only from WARNING up
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name == "twin" or r.name.startswith("twin."))
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)
    # Dask's own loggers are chatty at INFO; keep them to warnings unless -vv
    for name in ("distributed", "tornado", "bokeh", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


# ----------------------------------------------------------------------------------------------- doctor


@app.command()
@handle_errors
def doctor() -> None:
    """Versions, the Mitsuba variants that work, the libLLVM found, CUDA. Exit 0 when a build can run."""
    from twin.doctor import run_doctor

    with console.status("probing Mitsuba variants ..."):
        rep = run_doctor()
    t = Table(title="twin doctor", show_header=False)
    for k, v in rep.versions.items():
        t.add_row(k, v)
    t.add_row("libLLVM", f"{rep.llvm_path} (LLVM {rep.llvm_version})" if rep.llvm_path else "none")
    t.add_row("libLLVM note", rep.llvm_reason)
    t.add_row("CUDA", f"yes, {rep.gpus} GPU(s)" if rep.cuda else "no")
    t.add_row("build layout", rep.layout)
    for var, status in rep.variants.items():
        t.add_row(f"variant {var}", status)
    out.print(t)
    if not rep.can_build:
        console.print("[bold red]no Mitsuba variant works: a build cannot run here[/]")
        raise typer.Exit(1)
    out.print("[green]a build can run here[/]")


# ----------------------------------------------------------------------------------------------- ingest

CityOpt = Annotated[str | None, typer.Option("--city", help="City preset: paris, munich, florence, san_francisco.")]
PlaceOpt = Annotated[str | None, typer.Option("--place", help='Place name for OpenStreetMap, e.g. "Monaco, Monaco".')]
BboxOpt = Annotated[str | None, typer.Option("--bbox", help="W,S,E,N in degrees.")]
OsmFileOpt = Annotated[Path | None, typer.Option("--osm-file", help=".osm, .osm.pbf, .geojson or GeoParquet file.")]
TowersOpt = Annotated[Path | None, typer.Option("--towers", help="Tower CSV (CellMapper or OpenCelliD layout).")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never touch the network (city presets use the scene shipped in sionna-rt).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Turn every skipped row or geometry into an error.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory; the twin is written to OUT/<name>/.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Name of the twin directory (default: from the source).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing twin directory.")]
LargeAreaOpt = Annotated[bool, typer.Option("--large-area", help="Allow an area above [limits] max_area_km2 (4 km^2).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config ([ingest] [receivers] [trace] [dask] [views.*]).")]


def _source(city, place, bbox, osm_file, offline):
    from twin.ingest.source import BuildingSource

    return BuildingSource.from_options(city=city, place=place, bbox=bbox, osm_file=osm_file, offline=offline)


@app.command()
@handle_errors
def ingest(
    out_dir: OutOpt = Path("out"),
    city: CityOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    osm_file: OsmFileOpt = None,
    towers: TowersOpt = None,
    offline: OfflineOpt = False,
    strict: StrictOpt = False,
    name: NameOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    large_area: LargeAreaOpt = False,
) -> None:
    """Buildings + towers -> a Sionna-ready scene bundle in OUT/<name>/ (scene, buildings, towers, previews)."""
    from twin.config import load_build_config
    from twin.ingest.stage import run_ingest

    cfg = load_build_config(config)
    from twin.checks import check_input_files, check_out_dir, check_source, with_large_area
    from twin.ingest.source import slug
    from twin.lock import build_session

    cfg = with_large_area(cfg, large_area)
    check_out_dir(out_dir)
    check_input_files(towers=towers, osm_file=osm_file, ingest=cfg.ingest, strict=strict)
    src = _source(city, place, bbox, osm_file, offline)
    check_source(src, cfg)
    with build_session(Path(out_dir) / (slug(name) if name else src.default_name())):
        res = run_ingest(src, out_dir, towers=towers, name=name, config=cfg, strict=strict, overwrite=overwrite)
    out.print(f"[green]wrote[/] {res.root}: {res.summary()}")


# ------------------------------------------------------------------------------------------------ build


@app.command()
@handle_errors
def build(
    out_dir: OutOpt = Path("out"),
    city: CityOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    osm_file: OsmFileOpt = None,
    towers: TowersOpt = None,
    offline: OfflineOpt = False,
    strict: StrictOpt = False,
    name: NameOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    receivers: Annotated[int | None, typer.Option("--receivers", help="Random street-level receivers (count).")] = None,
    spacing: Annotated[float | None, typer.Option("--spacing", help="Grid receivers every SPACING metres.")] = None,
    routes: Annotated[int | None, typer.Option("--routes", help="Receivers on this many routes (with velocity).")] = None,
    max_links: Annotated[int | None, typer.Option("--max-links", help="Trace at most this many links.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local Dask worker processes.")] = None,
    scheduler_address: Annotated[str | None, typer.Option("--scheduler-address", envvar="DASK_SCHEDULER_ADDRESS", help="Existing Dask scheduler.")] = None,
    views: Annotated[str | None, typer.Option("--views", help="Comma-separated views to build after tracing.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip finished tasks of an earlier run.")] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and estimate; trace nothing.")] = False,
    large_area: LargeAreaOpt = False,
) -> None:
    """Ingest + receivers + trace + catalog + previews (+ views) in one command."""
    from twin.config import load_build_config
    from twin.pipeline import run_build

    overrides: dict[str, dict] = {"receivers": {}, "dask": {}}
    modes = [m for m, v in (("random", receivers), ("grid", spacing), ("route", routes)) if v is not None]
    if len(modes) > 1 and not (modes == ["random", "route"]):
        raise TwinInputError("choose one of --receivers, --spacing, --routes (or --routes with --receivers as the count)", field="--receivers/--spacing/--routes")
    if spacing is not None:
        overrides["receivers"].update(mode="grid", spacing_m=spacing)
    if routes is not None:
        overrides["receivers"].update(mode="route", num_routes=routes)
    if receivers is not None:
        overrides["receivers"]["count"] = receivers
        overrides["receivers"].setdefault("mode", "random")
    if workers is not None:
        overrides["dask"]["workers"] = workers
    if scheduler_address:
        overrides["dask"]["scheduler_address"] = scheduler_address
    cfg = load_build_config(config, overrides)
    if max_links is not None:
        if max_links < 0:
            raise TwinInputError(f"must be >= 0, got {max_links}", field="--max-links")
        import dataclasses

        cfg = dataclasses.replace(cfg, max_links=max_links)
    view_list = [v.strip() for v in views.split(",") if v.strip()] if views else []
    from twin.config import check_view_names

    check_view_names(view_list)
    from twin.checks import check_input_files, check_out_dir, check_source, with_large_area

    cfg = with_large_area(cfg, large_area)
    check_out_dir(out_dir)
    check_input_files(towers=towers, osm_file=osm_file, ingest=cfg.ingest, strict=strict)
    src = _source(city, place, bbox, osm_file, offline)
    check_source(src, cfg)
    from twin.checks import check_scheduler

    check_scheduler(cfg)
    res = run_build(
        src, out_dir, towers=towers, name=name, config=cfg, strict=strict, overwrite=overwrite,
        resume=resume, dry_run=dry_run, views=view_list,
    )
    out.print(res.summary())


# ------------------------------------------------------------------------------------------------- view


@view_app.command("build")
@handle_errors
def view_build(
    name: Annotated[str, typer.Argument(help="View name (twin view list).")],
    root: Annotated[Path, typer.Argument(help="Twin directory, e.g. out/paris.")],
    config: ConfigOpt = None,
    workers: Annotated[int | None, typer.Option("--workers")] = None,
    scheduler_address: Annotated[str | None, typer.Option("--scheduler-address", envvar="DASK_SCHEDULER_ADDRESS")] = None,
) -> None:
    """Build one view on an existing build (resumable)."""
    from twin.config import load_build_config
    from twin.datasets.stage import run_views

    overrides: dict[str, dict] = {"dask": {}}
    if workers is not None:
        overrides["dask"]["workers"] = workers
    if scheduler_address:
        overrides["dask"]["scheduler_address"] = scheduler_address
    cfg = load_build_config(config, overrides)
    from twin.config import check_view_names

    check_view_names([name], field="NAME")
    from twin.checks import check_scheduler
    from twin.lock import build_session

    check_scheduler(cfg)

    with build_session(root):
        stats = run_views(root, [name], cfg)
    out.print(stats)


@view_app.command("list")
@handle_errors
def view_list() -> None:
    """The registered views and their defaults."""
    import dataclasses

    from twin.datasets import available_views, get_view

    for n in available_views():
        v = get_view(n)
        defaults = {f.name: f.default for f in dataclasses.fields(v.config_cls)} if dataclasses.is_dataclass(v.config_cls) else {}
        out.print(f"[bold]{n}[/] ({v.granularity}): {json.dumps(defaults, default=str)}")


# ------------------------------------------------------------------------------------------------ bench


@bench_app.command("trace")
@handle_errors
def bench_trace(
    cells: Annotated[int, typer.Option("--cells", help="Cells (one carrier).")] = 3,
    receivers: Annotated[int, typer.Option("--receivers", help="Receivers.")] = 200,
    naive_receivers: Annotated[int, typer.Option("--naive-receivers", help="Receivers for the naive moving-receiver loop.")] = 20,
    samples_per_src: Annotated[int | None, typer.Option("--samples-per-src")] = None,
    repeat: Annotated[int, typer.Option("--repeat", help="Alternating runs of each; the best is kept.")] = 7,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda: the Mitsuba variant of both sides.")] = "auto",
) -> None:
    """Pipeline (Dask, shards, catalog) vs bare Sionna PathSolver on the same scene, cells and receivers."""
    import os

    from twin.llvm import DEVICE_ENV, has_cuda

    if device not in ("auto", "cpu", "cuda"):
        raise TwinInputError(f"unknown device {device!r}", field="--device", fix="one of auto, cpu, cuda")
    if device == "cuda" and not has_cuda():
        raise TwinInputError("no CUDA driver is visible on this machine", field="--device",
                             fix="run on a GPU machine, or use --device cpu")
    os.environ[DEVICE_ENV] = device  # the bench's Dask worker inherits it
    from twin.bench import bench_trace as run

    lines = run(n_cells=cells, n_receivers=receivers, naive_receivers=naive_receivers, samples_per_src=samples_per_src, repeat=repeat)
    for ln in lines:
        out.print(ln, highlight=False)


@bench_app.command("calls")
@handle_errors
def bench_calls(
    cells: Annotated[int, typer.Option("--cells", help="Cells (one carrier).")] = 3,
    receivers: Annotated[int, typer.Option("--receivers", help="Receivers.")] = 128,
    per_call: Annotated[str, typer.Option("--per-call", help="Comma-separated receivers per PathSolver call.")] = "128,64,32,16",
    samples_per_src: Annotated[int | None, typer.Option("--samples-per-src")] = None,
    build: Annotated[Path | None, typer.Option("--build", help="A build directory (its scene, cells, receivers) "
                                               "instead of the embedded Paris scene.")] = None,
) -> None:
    """Paths found and time against receivers per PathSolver call (single-receiver calls as the reference)."""
    from twin.bench import bench_calls as run

    try:
        ks = tuple(int(x) for x in per_call.split(",") if x.strip())
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1:
        raise TwinInputError(f"not a list of positive integers: {per_call!r}", field="--per-call", fix="e.g. --per-call 128,32")
    if cells < 1 or receivers < 1:
        raise TwinInputError("must be >= 1", field="--cells/--receivers")
    if build is not None and not (Path(build) / "twin.json").is_file():
        raise TwinInputError("not a twin build (no twin.json)", file=build, field="--build", fix="give OUT/<name> of `twin build`")
    lines, _ = run(n_cells=cells, n_receivers=receivers, per_call=ks, samples_per_src=samples_per_src, root=build)
    for ln in lines:
        out.print(ln, highlight=False)


@bench_app.command("views")
@handle_errors
def bench_views(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller sizes (smoke run).")] = False,
    only: Annotated[str | None, typer.Option("--only", help="Comma-separated bench names.")] = None,
) -> None:
    """Samples/s per view, and the kernels against Sionna / the straightforward method in the same run."""
    from twin.bench import bench_views as run

    for ln in run(quick=quick, only=[s.strip() for s in only.split(",")] if only else None):
        out.print(ln, highlight=False)


@bench_app.command("towers")
@handle_errors
def bench_towers(
    rows: Annotated[int, typer.Option("--rows", help="Rows of the synthetic OpenCelliD-style file.")] = 1_000_000,
) -> None:
    """Read a ROWS-row tower file (spread over +-3 degrees) for the etoile area: seconds and peak memory."""
    import tempfile

    from twin.ingest.tower_stream import bench_stream

    if rows < 1:
        raise TwinInputError(f"must be >= 1, got {rows}", field="--rows")
    with tempfile.TemporaryDirectory(prefix="twin-bench-towers-") as d:
        r = bench_stream(rows, d)
    out.print(f"{r['rows']:,} rows ({r['file_mb']:.0f} MB) read for the area in {r['seconds']:.2f} s, "
              f"peak memory {r['peak_rss_mb']:.0f} MB (process after imports: {r['rss_before_mb']:.0f} MB); "
              f"kept {r['counts']['cells']} cells, {r['counts'].get('far_outside', 0):,} rows dropped early",
              highlight=False)


_mount_catalog()
from twin.data_cli import register as _register_data  # noqa: E402  (data-access commands: split, view ls/drop)

_register_data(app, view_app, handle_errors, out)
from twin.cli_baselines import register as _register_baselines  # noqa: E402  (twin baselines/train/eval/reproduce)

_register_baselines(app, handle_errors, out)

from twin.bench_scale import register as _register_scale  # noqa: E402  (twin bench scale)

_register_scale(bench_app, handle_errors, out)

from twin.report_cli import register as _register_report  # noqa: E402  (twin report)

_register_report(app, handle_errors, out)


def main() -> None:
    try:
        app()
    except TwinError as e:  # raised outside a command body (e.g. while parsing)
        console.print("[bold red]error:[/] " + _escape(str(e)))
        sys.exit(e.exit_code)
