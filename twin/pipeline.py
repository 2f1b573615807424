"""The order of the stages of ``twin build``: ingest -> receivers + trace -> previews -> views.

Each stage runs itself (docs/architecture.md): :mod:`twin.ingest.stage` writes the scene bundle,
:mod:`twin.render.stage` places receivers and traces (Dask, shards, catalog), :mod:`twin.datasets.stage` builds
views. This module only decides which stage runs when (reuse, ``--overwrite``, ``--dry-run``), hands the street
graph to the trace stage and redraws the previews between stages.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.config import BuildConfig
from twin.constants import LARGE_PLAN_PAIRS
from twin.datasets.stage import run_views
from twin.errors import TwinInputError
from twin.ingest.source import BuildingSource, parse_bbox, slug
from twin.ingest.stage import IngestResult, ingest_inputs_hash, run_ingest, towers_path
from twin.manifest import read_manifest
from twin.render.stage import (
    TraceResult,
    check_same_config,
    estimate_trace_seconds,
    format_duration,
    run_trace,
)

log = logging.getLogger(__name__)


@dataclass
class BuildResult(TraceResult):
    """A build: what the trace stage did, plus the views and the wall-clock time of the whole command."""

    seconds: float = 0.0
    views: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    split: dict[str, Any] = field(default_factory=dict)  # the manifest's split entry ([split] settings, counts)

    def summary(self) -> str:
        from rich.markup import escape

        if self.dry_run:
            est = (f"; estimated trace time {format_duration(self.estimate_s)} at {self.rate_source}"
                   if self.estimate_s is not None
                   else " (no rate to estimate the time from; `twin bench trace` gives this machine's links/s)")
            out = (f"dry run: {self.tasks_total} trace tasks ({self.tasks_skipped} already done), "
                   f"{self.links_planned} links ({self.links_todo} to trace){est}; nothing traced")
            if self.links_todo > LARGE_PLAN_PAIRS:
                out += (f"\n  [yellow]warning:[/] a plan of over {LARGE_PLAN_PAIRS:,} pairs; --max-links caps them, "
                        "fewer receivers or cells shrink it")
            return out + (f"\n  note: {escape(self.note)}" if self.note else "")
        s = (f"[green]built[/] {self.root}: {self.links_with_paths} links with paths in the catalog (CIR rows) of "
             f"{self.links_planned} tower-receiver pairs; this run traced {self.links_traced} pairs "
             f"({self.tasks_total - self.tasks_skipped} of {self.tasks_total} tasks, {self.tasks_skipped} already done) "
             f"in {self.seconds:.1f} s")
        if self.split.get("receivers"):
            parts = ", ".join(f"{k} {n}" for k, n in self.split["receivers"].items())
            s += f"\n  split by {self.split['by']}: {parts}"
        for v, st in self.views.items():
            s += f"\n  view {v}: {st}"
        return s


def run_build(
    src: BuildingSource,
    out_dir: Path,
    *,
    towers: Path | None = None,
    name: str | None = None,
    config: BuildConfig | None = None,
    strict: bool = False,
    overwrite: bool = False,
    resume: bool = True,
    dry_run: bool = False,
    views: list[str] | None = None,
) -> BuildResult:
    """Ingest (or reuse the bundle of the same inputs), trace, previews, then the named views.

    Holds the build directory's lock throughout (:func:`twin.lock.build_session`). ``overwrite`` builds
    everything in a staging directory and swaps it in at the end, so a failure leaves the old build intact.
    An existing directory built with another [trace]/[receivers] config exits 2 (:mod:`twin.guards`).
    """
    from twin import guards
    from twin.lock import build_session

    config = config or BuildConfig()
    views = list(views or [])
    if views:
        from twin.datasets.registry import VIEWS

        for v in views:
            if v not in VIEWS:
                VIEWS.get(v)  # UnknownNameError naming the views, before any work
    t0 = time.perf_counter()
    name = slug(name) if name else src.default_name()
    root = Path(out_dir) / name
    tpath = towers_path(src, towers)
    if config.receivers.mode != "grid" and not dry_run:
        guards.check_receivers(config.receivers.count, config)
    if dry_run and config.receivers.mode != "grid" and 0 < config.limits.max_receivers < config.receivers.count:
        quick = _count_plan(src, tpath, config, root)  # over the cap: count the plan from the tower file alone
        if quick is not None:
            quick.seconds = time.perf_counter() - t0
            return quick
    if dry_run and (overwrite or not root.exists()):
        # plan in a scratch copy: a dry run writes nothing under --out
        with tempfile.TemporaryDirectory(prefix="twin-dry-run-") as td:
            run_ingest(src, Path(td), towers=tpath, name=name, config=config, strict=strict)
            res = trace_build(Path(td) / name, config, resume=False, dry_run=True)
        res.root = root
        res.seconds = time.perf_counter() - t0
        return res
    with build_session(root):
        if root.exists():
            try:
                m = read_manifest(root)
            except TwinInputError:
                m = {}
            same = m.get("ingest_inputs_hash") == ingest_inputs_hash(src, tpath, config)
            if overwrite:
                res = _build_staged(src, Path(out_dir), name, tpath, config, strict=strict, views=views)
                res.seconds = time.perf_counter() - t0
                return res
            if not same:
                raise TwinInputError(
                    "output directory exists with other inputs (source, towers or [ingest] config differ)",
                    file=root,
                    fix="pass --overwrite to replace it, or choose another --out/--name",
                )
            check_same_config(root, config)
        else:
            run_ingest(src, out_dir, towers=tpath, name=name, config=config, strict=strict, overwrite=False)
        res = trace_build(root, config, resume=resume, dry_run=dry_run)
        if not dry_run:
            res.split = _write_split(root, config)
        if not dry_run and views:
            res.views = run_views(root, views, config)
    res.seconds = time.perf_counter() - t0
    return res


def _write_split(root: Path, config: BuildConfig) -> dict[str, Any]:
    """The ``[split]`` table of the build (skipped when one of the same settings and receivers is there: resume)."""
    if not config.split.enabled:
        return {}
    from twin.datasets.splits import write_split

    return write_split(root, config.split)


def _count_plan(src: BuildingSource, tpath: Path, config: BuildConfig, root: Path) -> BuildResult | None:
    """The dry-run plan of a receiver set above ``[limits] max_receivers``, counted from the tower file and the
    source's area (a city preset or a --bbox) without ingesting or placing anything; None for other sources."""
    from shapely.geometry import box

    from twin import guards
    from twin.ingest.towers import read_towers

    if src.kind == "city":
        from twin.ingest.cities import get_city

        bbox = get_city(src.value).bbox
    elif src.bbox is not None:
        bbox = src.bbox
    else:
        return None
    cells = read_towers(tpath, None, config.ingest, area=box(*bbox), allow_empty_area=True).cells
    n = config.receivers.count
    est = guards.estimate_plan(n, cells.groupby("frequency_hz").size().tolist(), config)
    res = BuildResult(root, links_planned=est.links, tasks_total=est.tasks, dry_run=True)
    res.links_todo = est.links
    res.estimate_s, res.rate_source = estimate_trace_seconds(est.links, None, config.trace)
    res.note = (f"{n:,} receivers x {est.cells} cells (counted from the tower file); above [limits] max_receivers = "
                f"{config.limits.max_receivers:,}, so a build refuses it (exit 2)")
    return res


def _build_staged(src: BuildingSource, out_dir: Path, name: str, tpath: Path, config: BuildConfig, *, strict: bool,
                  views: list[str]) -> BuildResult:
    """The whole build in ``OUT/.<name>.<random>.staging/<name>``, moved over ``OUT/<name>`` only once complete."""
    import shutil

    from twin.io import replace_dir

    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=out_dir))
    try:
        run_ingest(src, stage, towers=tpath, name=name, config=config, strict=strict)
        res = trace_build(stage / name, config, resume=False)
        res.split = _write_split(stage / name, config)
        if views:
            res.views = run_views(stage / name, views, config)
        replace_dir(stage / name, Path(out_dir) / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    res.root = Path(out_dir) / name
    return res


def trace_build(root: Path, config: BuildConfig, *, resume: bool = True, dry_run: bool = False, client=None) -> BuildResult:
    """The trace stage on an ingested build, with the street graph (online sources) and the previews."""
    from twin import guards, previews

    root = Path(root)
    m = read_manifest(root)
    n_rx = guards.receiver_count(config, tuple(m["area"]["bounds_local"]))
    cap = config.limits.max_receivers
    if cap and n_rx > cap:
        if not dry_run:
            guards.check_receivers(n_rx, config)
        # the plan counted, not made: placing 1e8 receivers would take minutes and gigabytes
        from twin.render.stage import read_cells

        per_carrier = read_cells(root).groupby("frequency_hz").size().tolist()
        est = guards.estimate_plan(n_rx, per_carrier, config)
        res = BuildResult(root, links_planned=est.links, tasks_total=est.tasks, dry_run=True)
        res.links_todo = est.links
        res.estimate_s, res.rate_source = estimate_trace_seconds(est.links, m, config.trace)
        res.note = (f"{n_rx:,} receivers x {est.cells} cells; above [limits] max_receivers = {cap:,}, "
                    "so a build refuses it (exit 2)")
        return res

    def on_receivers(rx) -> None:
        previews.top_preview(root, rx, f"{m['name']}: {len(rx)} {config.receivers.mode} receivers")

    tr = run_trace(root, config, resume=resume, dry_run=dry_run, client=client,
                   street_graph=_street_graph(m), on_receivers=on_receivers)
    res = BuildResult(**{f.name: getattr(tr, f.name) for f in dataclasses.fields(TraceResult)})
    if not dry_run and (res.tasks_total > res.tasks_skipped or not (root / "previews" / "path_gain.png").exists()):
        previews.path_gain_preview(root)
    return res


def _street_graph(m: dict):
    """A callable giving the OSM street graph of the build's area (None offline or when OSM is unreachable)."""
    if m["sources"]["buildings"].get("offline", True):
        return None

    def fetch():
        from twin.frame import LocalFrame
        from twin.ingest.streets import street_graph_from_osm

        try:
            return street_graph_from_osm(tuple(m["area"]["bbox_wgs84"]), LocalFrame.from_dict(m["frame"]))
        except TwinInputError as e:
            log.warning("street network unavailable (%s); routes follow the open space of the scene", e)
            return None

    return fetch


__all__ = ["BuildResult", "BuildingSource", "IngestResult", "parse_bbox", "run_build", "run_ingest", "run_views",
           "trace_build"]
