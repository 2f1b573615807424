"""The build pipeline: ingest -> receivers -> trace (Dask) -> catalog -> previews -> views.

``run_ingest`` writes a scene bundle (DESIGN §3, §4) into a staging directory and moves it into place at the
end; ``run_build`` adds receivers, the Dask-distributed trace with resume, the catalog, previews and views;
``run_views`` builds views on an existing build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twin import __version__
from twin.config import BuildConfig, config_hash, from_mapping, to_dict
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.io import atomic_path, sha256_file, staging_dir, write_json_atomic
from twin.manifest import now_iso, package_versions, read_manifest, set_stage
from twin.schema import RECEIVER_SCHEMA, file_metadata

log = logging.getLogger(__name__)

C0 = 299_792_458.0  # speed of light, m/s


# --------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class BuildingSource:
    """Exactly one building source: a city preset, a place name, a bbox (W,S,E,N degrees) or a file."""

    kind: str  # city | place | bbox | file
    value: str
    offline: bool = False
    bbox: tuple[float, float, float, float] | None = None

    @classmethod
    def from_options(cls, *, city=None, place=None, bbox=None, osm_file=None, offline=False) -> BuildingSource:
        given = [(k, v) for k, v in (("--city", city), ("--place", place), ("--bbox", bbox), ("--osm-file", osm_file)) if v]
        if len(given) != 1:
            raise TwinInputError(
                "give exactly one building source" + (f" (got {', '.join(k for k, _ in given)})" if given else ""),
                field="--city/--place/--bbox/--osm-file",
                fix="e.g. --city paris, --place 'Monaco, Monaco', --bbox 7.41,43.72,7.44,43.75 or --osm-file area.osm.pbf",
            )
        opt, val = given[0]
        if opt == "--city":
            from twin.presets import get_preset

            return cls("city", get_preset(str(val)).name, offline)
        if opt == "--place":
            if offline:
                raise TwinInputError("--place needs the network", field="--place", fix="drop --offline, or use --osm-file with a downloaded extract")
            return cls("place", str(val), offline)
        if opt == "--bbox":
            return cls("bbox", str(val), offline, parse_bbox(str(val)))
        p = Path(val)
        if not p.exists():
            raise TwinInputError("file not found", file=p, field="--osm-file", fix="pass an existing .osm, .osm.pbf, .geojson or GeoParquet file")
        return cls("file", str(p), offline)

    def default_name(self) -> str:
        if self.kind == "city":
            return self.value
        if self.kind == "file":
            stem = Path(self.value).name.split(".")[0]
            return _slug(stem)
        if self.kind == "place":
            return _slug(self.value.split(",")[0])
        return "bbox-" + hashlib.sha256(self.value.encode()).hexdigest()[:8]

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "value": self.value, "offline": self.offline}
        if self.kind == "file":
            d["sha256"] = sha256_file(self.value)
        return d


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.strip().lower()).strip("_") or "twin"


def parse_bbox(s: str) -> tuple[float, float, float, float]:
    parts = [p.strip() for p in s.split(",")]
    fix = "write --bbox W,S,E,N in degrees, e.g. 2.289,48.870,2.301,48.877"
    if len(parts) != 4:
        raise TwinInputError(f"expected 4 numbers, got {len(parts)}", field="--bbox", fix=fix)
    try:
        w, s_, e, n = (float(p) for p in parts)
    except ValueError:
        raise TwinInputError(f"not numbers: {s!r}", field="--bbox", fix=fix) from None
    if not (-180 <= w < e <= 180 and -90 <= s_ < n <= 90):
        raise TwinInputError(f"not a valid W,S,E,N box: {s!r}", field="--bbox", fix=fix)
    return (w, s_, e, n)


# ----------------------------------------------------------------------------------------------- ingest


@dataclass
class IngestResult:
    root: Path
    counts: dict[str, Any] = field(default_factory=dict)
    reused: bool = False

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c.get('buildings', 0)} buildings, {c.get('cells', 0)} cells on {c.get('sites', 0)} sites, "
            f"scene {str(c.get('scene_hash', ''))[:12]}"
        )


def _towers_path(src: BuildingSource, towers: Path | None) -> Path:
    if towers is not None:
        if not Path(towers).exists():
            raise TwinInputError("file not found", file=towers, field="--towers", fix="pass an existing tower CSV")
        return Path(towers)
    if src.kind == "city":
        from twin.presets import get_preset

        p = get_preset(src.value).towers_path()
        if p is not None:
            return p
        raise TwinInputError(
            f"the {src.value} preset ships no tower file",
            field="--towers",
            fix="pass --towers FILE.csv (CellMapper or OpenCelliD layout)",
        )
    raise TwinInputError("a tower file is required for this source", field="--towers", fix="pass --towers FILE.csv (CellMapper or OpenCelliD layout)")


def ingest_inputs_hash(src: BuildingSource, towers_path: Path, config: BuildConfig) -> str:
    d = {"source": src.describe(), "towers_sha256": sha256_file(towers_path), "ingest": to_dict(config.ingest), "code": __version__}
    return config_hash(d)


def run_ingest(
    src: BuildingSource,
    out_dir: Path,
    *,
    towers: Path | None = None,
    name: str | None = None,
    config: BuildConfig | None = None,
    strict: bool = False,
    overwrite: bool = False,
) -> IngestResult:
    """Write OUT/<name>/ with twin.json, scene/, buildings.parquet, towers.parquet, previews/top.png."""
    config = config or BuildConfig()
    name = _slug(name) if name else src.default_name()
    dest = Path(out_dir) / name
    tpath = _towers_path(src, towers)
    if dest.exists() and not overwrite:
        raise TwinInputError(
            "output directory exists",
            file=dest,
            fix="pass --overwrite to replace it, or choose another --out/--name",
        )
    with staging_dir(dest, overwrite=overwrite) as tmp:
        counts = _ingest_into(tmp, name, src, tpath, config, strict)
    return IngestResult(dest, counts)


def _ingest_into(root: Path, name: str, src: BuildingSource, towers_path: Path, config: BuildConfig, strict: bool) -> dict:
    from rich.console import Console

    from twin.ingest import pipeline as ip

    console = Console(stderr=True, soft_wrap=True, emoji=False)
    t0 = time.perf_counter()
    with console.status(f"ingest {name}: buildings ..."):
        bundle = ip.load_area(src, towers_path, config.ingest, strict=strict)
    _report_rows(console, bundle.towers)
    with console.status(f"ingest {name}: scene ..."):
        scene = ip.write_bundle(root, bundle, config.ingest)
    counts = {
        "buildings": int(len(bundle.buildings.gdf)),
        "cells": int(len(bundle.towers.cells)),
        "sites": int(bundle.towers.cells["site_id"].nunique()) if len(bundle.towers.cells) else 0,
        "scene_hash": scene.content_hash,
    }
    manifest = {
        "name": name,
        "schema_version": "1",
        "code_version": __version__,
        "created_at": now_iso(),
        "origin": {"lat": bundle.frame.lat0, "lon": bundle.frame.lon0},
        "frame": bundle.frame.to_dict(),
        "area": {"bbox_wgs84": list(bundle.area_bbox_wgs84), "bounds_local": list(bundle.bounds_local)},
        "sources": {
            "buildings": {**src.describe(), "kind_detail": bundle.building_source},
            "towers": {"path": str(towers_path), "sha256": sha256_file(towers_path), "layout": bundle.towers.layout,
                       "note": bundle.towers_note},
            "licences": bundle.licences,
        },
        "versions": package_versions(),
        "config": {"ingest": to_dict(config.ingest)},
        "ingest_inputs_hash": ingest_inputs_hash(src, towers_path, config),
        "scene": {"xml": "scene/scene.xml", "hash": scene.content_hash, "source": bundle.scene_source},
        "stages": {
            "ingest": {
                "status": "done",
                "seconds": round(time.perf_counter() - t0, 2),
                "building_report": bundle.buildings.report,
                "tower_rows": ip.towers_summary(bundle.towers),
                "materials_extrapolated_hz": ip.material_notes(
                    list(bundle.buildings.gdf["material"]) + [config.ingest.ground_material, "marble", "metal", "wood"]
                    if bundle.bundled_xml else list(bundle.buildings.gdf["material"]) + [config.ingest.ground_material],
                    bundle.towers.cells["frequency_hz"].tolist()),
                **counts,
                "updated_at": now_iso(),
            }
        },
    }
    write_json_atomic(root / "twin.json", manifest)
    return counts


def _report_rows(console, towers, limit: int = 10) -> None:
    """Print the tower rows that were skipped or repaired (file, row, field, why, fix); all are in twin.json."""
    from rich.markup import escape

    bad = [r for r in towers.reports if r.status != "kept"]
    if not bad:
        return
    c = towers.counts
    console.print(f"[yellow]{towers.source_file}: {c.get('skipped', 0)} row(s) skipped, {c.get('repaired', 0)} repaired "
                  f"(of {c.get('rows', len(towers.reports))}); --strict makes these errors[/]", highlight=False)
    for r in bad[:limit]:
        fld = f" field '{r.field}'" if r.field else ""
        console.print(escape(f"  row {r.row}{fld}: {r.status}: {r.reason}" + (f" (fix: {r.fix})" if r.fix and r.status == "skipped" else "")),
                      highlight=False)
    if len(bad) > limit:
        console.print(f"  ... {len(bad) - limit} more in twin.json (stages.ingest.tower_rows)", highlight=False)


# ------------------------------------------------------------------------------------------------ build


@dataclass
class BuildResult:
    root: Path
    links_planned: int = 0
    links_traced: int = 0
    links_with_paths: int = 0
    tasks_total: int = 0
    tasks_skipped: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    views: dict[str, Any] = field(default_factory=dict)
    estimate_s: float | None = None

    def summary(self) -> str:
        if self.dry_run:
            est = (f", about {self.estimate_s:.0f} s at the rate this build measured before" if self.estimate_s
                   else " (no earlier trace of this build to time from; `twin bench trace` gives this machine's links/s)")
            return (f"dry run: {self.tasks_total} trace tasks ({self.tasks_skipped} already done), "
                    f"{self.links_planned} links{est}; nothing traced")
        s = (f"[green]built[/] {self.root}: {self.links_with_paths} links with paths in the catalog (CIR rows) of "
             f"{self.links_planned} tower-receiver pairs; this run traced {self.links_traced} pairs "
             f"({self.tasks_total - self.tasks_skipped} of {self.tasks_total} tasks, {self.tasks_skipped} already done) "
             f"in {self.seconds:.1f} s")
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
    config = config or BuildConfig()
    views = list(views or [])
    if views:
        from twin.datasets import get_view

        for v in views:
            try:
                get_view(v)
            except KeyError as e:
                raise TwinInputError(str(e.args[0]), field="--views", fix="see `twin view list`") from None
    t0 = time.perf_counter()
    name = _slug(name) if name else src.default_name()
    root = Path(out_dir) / name
    tpath = _towers_path(src, towers)
    if dry_run and (overwrite or not root.exists()):
        # plan in a scratch copy: a dry run writes nothing under --out
        import tempfile

        with tempfile.TemporaryDirectory(prefix="twin-dry-run-") as td:
            run_ingest(src, Path(td), towers=tpath, name=name, config=config, strict=strict)
            res = trace_build(Path(td) / name, config, resume=False, dry_run=True)
        res.root = root
        res.seconds = time.perf_counter() - t0
        return res
    if root.exists():
        try:
            m = read_manifest(root)
        except TwinInputError:
            m = {}
        same = m.get("ingest_inputs_hash") == ingest_inputs_hash(src, tpath, config)
        if overwrite:
            run_ingest(src, out_dir, towers=tpath, name=name, config=config, strict=strict, overwrite=True)
        elif not same:
            raise TwinInputError(
                "output directory exists with other inputs (source, towers or [ingest] config differ)",
                file=root,
                fix="pass --overwrite to replace it, or choose another --out/--name",
            )
    else:
        run_ingest(src, out_dir, towers=tpath, name=name, config=config, strict=strict, overwrite=False)
    res = trace_build(root, config, resume=resume, dry_run=dry_run)
    if not dry_run and views:
        res.views = run_views(root, views, config)
    res.seconds = time.perf_counter() - t0
    return res


def _read_cells(root: Path) -> pd.DataFrame:
    t = pq.read_table(root / "towers.parquet")
    cols = [c for c in t.column_names if c != "geometry"]
    return t.select(cols).to_pandas()


def ensure_receivers(root: Path, config: BuildConfig) -> pd.DataFrame:
    """Place receivers (or reuse the file if the [receivers] config is unchanged)."""
    from twin.render.receivers import make_receivers

    path = root / "receivers.parquet"
    h = config_hash(config.receivers)
    if path.exists():
        md = pq.read_schema(path).metadata or {}
        if md.get(b"twin.config_hash", b"").decode() == h:
            from twin.geo import without_geometry

            return without_geometry(pq.read_table(path)).to_pandas()
    m = read_manifest(root)
    b = pq.read_table(root / "buildings.parquet", columns=["geometry_local"]).column("geometry_local").to_pylist()
    import shapely

    footprints = list(shapely.from_wkb(b))
    bounds = tuple(m["area"]["bounds_local"])
    frame = LocalFrame.from_dict(m["frame"])
    graph = None
    if config.receivers.mode == "route" and not m["sources"]["buildings"].get("offline", True):
        from twin.render.receivers import street_graph_from_osm

        try:
            graph = street_graph_from_osm(tuple(m["area"]["bbox_wgs84"]), frame)
        except TwinInputError as e:
            log.warning("street network unavailable (%s); routes follow the open space of the scene", e)
    table = make_receivers(footprints, bounds, config.receivers, street_graph=graph, frame=frame)
    meta = file_metadata(config_hash=h, scene_hash=m["scene"]["hash"], view="receivers", config=to_dict(config.receivers))
    table = table.cast(RECEIVER_SCHEMA).replace_schema_metadata(meta)
    from twin.geo import with_point_geometry

    with atomic_path(path) as tmp:  # GeoParquet: EPSG:4326 points beside x, y, z
        pq.write_table(with_point_geometry(table, frame), tmp)
    set_stage(root, "receivers", status="done", count=table.num_rows, mode=config.receivers.mode, config=to_dict(config.receivers))
    _top_preview(root, table.to_pandas(), f"{m['name']}: {table.num_rows} {config.receivers.mode} receivers")
    return table.to_pandas()


def _top_preview(root: Path, receivers: pd.DataFrame, title: str) -> None:
    """previews/top.png again, now with the receivers (DESIGN §3: buildings + towers + receivers)."""
    from twin.ingest.buildings import read_buildings_parquet
    from twin.ingest.preview import plot_top

    bs = read_buildings_parquet(root / "buildings.parquet")
    with atomic_path(root / "previews" / "top.png") as tmp:
        out = plot_top(bs, _read_cells(root), receivers, str(tmp) + ".png", title=title)
        shutil.move(str(out), tmp)


def _load_plan(root: Path) -> list:
    from twin.render.plan import TraceTask

    p = root / "render_plan.json"
    if not p.exists():
        return []
    d = json.loads(p.read_text())
    return [TraceTask(t["key"], t["carrier_hz"], tuple(t["cell_ids"]), tuple(t["rx_ids"]), t["rx_batch"]) for t in d["tasks"]]


def trace_build(root: Path, config: BuildConfig, *, resume: bool = True, dry_run: bool = False, client=None) -> BuildResult:
    """Receivers, then every trace task not already in the catalog, as Dask tasks; shards streamed in."""
    from twin.catalog import Catalog
    from twin.render.plan import plan_trace_tasks

    m = read_manifest(root)
    scene_hash = m["scene"]["hash"]
    cells = _read_cells(root)
    if len(cells) == 0:
        raise TwinInputError(
            "no tower lies in the area: nothing to trace",
            file=root / "towers.parquet",
            fix="pass --towers with a CSV whose sites lie inside the area (see twin.json: stages.ingest.tower_rows)",
        )
    receivers = ensure_receivers(root, config)
    tasks = plan_trace_tasks(cells, receivers, config.trace, scene_hash=scene_hash, max_links=config.max_links)
    plan_doc = {"created_at": now_iso(), "trace_config": to_dict(config.trace), "max_links": config.max_links,
                "tasks": [dataclasses.asdict(t) for t in tasks]}
    cat = Catalog(root)
    done = cat.task_keys("cir") if resume else set()
    todo = [t for t in tasks if t.key not in done or not (root / t.shard_relpath).exists()]
    res = BuildResult(root, links_planned=sum(t.n_links for t in tasks), tasks_total=len(tasks), tasks_skipped=len(tasks) - len(todo))
    if dry_run:
        rate = _measured_rate(m)
        res.dry_run = True
        res.estimate_s = sum(t.n_links for t in todo) / rate if rate else None
        return res
    if todo or not (root / "render_plan.json").exists():
        write_json_atomic(root / "render_plan.json", plan_doc)
    set_stage(root, "trace", status="running", tasks=len(tasks), config=to_dict(config.trace))
    t0 = time.perf_counter()
    stats = execute_trace_tasks(root, todo, cells, receivers, config, manifest=m, client=client)
    elapsed = time.perf_counter() - t0
    res.links_traced = stats["links"]
    entries = cat.entries(view="cir")
    res.links_with_paths = int(sum(entries.column("rows").to_pylist())) if entries.num_rows else 0
    info = {"status": "done", "tasks": len(tasks), "links_planned": res.links_planned, "links_with_paths": res.links_with_paths}
    if stats["links"]:
        info.update(last_run_links=stats["links"], last_run_seconds=round(elapsed, 2), links_per_s=round(stats["links"] / elapsed, 2))
    set_stage(root, "trace", **info)
    if todo or not (root / "previews" / "path_gain.png").exists():
        _path_gain_preview(root)
    return res


def execute_trace_tasks(
    root: Path,
    todo: list,
    cells: pd.DataFrame,
    receivers: pd.DataFrame,
    config: BuildConfig,
    *,
    manifest: dict,
    client=None,
    progress: bool = True,
) -> dict[str, int]:
    """Run trace tasks as Dask jobs; each finished shard is written atomically and registered at once."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from twin.catalog import Catalog, write_shard
    from twin.render.distributed import Job, dask_client, run_jobs

    m = manifest
    scene_hash = m["scene"]["hash"]
    scene_xml = str((root / m["scene"]["xml"]).resolve())
    trace_cfg = to_dict(config.trace)
    cfg_hash = config_hash(config.trace)
    bbox = tuple(m["area"]["bbox_wgs84"])
    cat = Catalog(root)
    cells_by_id = cells.set_index("cell_id", drop=False)
    rx_by_id = receivers.set_index("rx_id", drop=False)
    jobs = [
        Job(
            key=t.dask_key(),
            fn=_trace_job,
            args=(scene_xml, cells_by_id.loc[list(t.cell_ids)].to_dict("list"), rx_by_id.loc[list(t.rx_ids)].to_dict("list"), trace_cfg, scene_hash),
            weight=t.n_links,
        )
        for t in todo
    ]
    task_by_dask = {t.dask_key(): t for t in todo}
    stats = {"links": 0, "rows": 0}
    if not jobs:
        return stats
    t0 = time.perf_counter()

    def on_result(job: Job, table: pa.Table) -> None:
        t = task_by_dask[job.key]
        meta = file_metadata(config_hash=cfg_hash, scene_hash=scene_hash, view="cir", config=trace_cfg, task_key=t.key)
        meta["twin.rx_batch"] = str(t.rx_batch)
        meta["twin.carrier_hz"] = repr(t.carrier_hz)
        entry = write_shard(root, t.shard_relpath, table, view="cir", metadata=meta, task_key=t.key, dataset=m["name"], city=m["name"], bbox=bbox)
        cat.register([entry])
        stats["links"] += t.n_links
        stats["rows"] += table.num_rows

    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(dask_client(config.dask))
        on_progress = None
        if progress:
            prog = stack.enter_context(Progress(
                TextColumn("[bold]trace[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("links"),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
            ))
            bar = prog.add_task("trace", total=sum(j.weight for j in jobs), rate="")

            def on_progress(job: Job) -> None:
                el = time.perf_counter() - t0
                prog.update(bar, advance=job.weight, rate=f"{stats['links'] / max(el, 1e-9):.1f} links/s")

        run_jobs(client, jobs, on_result, retries=config.dask.retries, on_progress=on_progress)
    return stats


def _measured_rate(m: dict) -> float | None:
    """Links/s of the last trace of this build (its own measurement), for --dry-run estimates."""
    return m.get("stages", {}).get("trace", {}).get("links_per_s")


def _trace_job(scene_xml: str, cells: dict, receivers: dict, trace_cfg: dict, scene_hash: str) -> pa.Table:
    """Runs on a Dask worker: one PathSolver call -> CIR rows."""
    from twin.config import TraceConfig
    from twin.render.trace import trace_links

    return trace_links(scene_xml, pd.DataFrame(cells), pd.DataFrame(receivers), TraceConfig(**trace_cfg), scene_hash=scene_hash)


def _path_gain_preview(root: Path) -> None:
    """previews/path_gain.png: best-server path gain per receiver (dB, max over cells)."""
    from types import SimpleNamespace

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


# ------------------------------------------------------------------------------------------------ views


def run_views(root: str | Path, names: list[str], config: BuildConfig) -> dict[str, Any]:
    """Build the named views over the CIR shards of ``root`` as Dask tasks (resumable)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin.catalog import Catalog, write_shard
    from twin.datasets import get_view
    from twin.render.distributed import Job, dask_client, run_jobs
    from twin.render.plan import plan_view_tasks, task_seed

    root = Path(root)
    m = read_manifest(root)
    tasks = _load_plan(root)
    if not tasks:
        raise TwinInputError("no trace plan in this directory", file=root, fix="run `twin build` first")
    cat = Catalog(root)
    cir = cat.entries(view="cir")
    path_by_key = dict(zip(cir.column("task_key").to_pylist(), cir.column("path").to_pylist(), strict=True))
    missing = [t.key for t in tasks if t.key not in path_by_key]
    if missing:
        raise TwinInputError(f"{len(missing)} trace tasks are not finished", file=root, fix="re-run `twin build` (it resumes) before building views")
    scene_xml = str((root / m["scene"]["xml"]).resolve())
    seed = config.trace.seed
    out: dict[str, Any] = {}
    jobs: list[Job] = []
    job_info: dict[str, tuple] = {}
    for name in names:
        try:
            view = get_view(name)
        except KeyError as e:
            raise TwinInputError(str(e.args[0]), field="view", fix="see `twin view list`") from None
        vcfg = from_mapping(view.config_cls, config.views.get(name, {}), where=f"[views.{name}]")
        vhash = config_hash(vcfg)
        vtasks = plan_view_tasks(name, vhash, tasks, granularity=getattr(view, "granularity", "per_receiver_batch"), seed=seed)
        done = cat.task_keys(name)
        todo = [vt for vt in vtasks if vt.key not in done or not (root / vt.shard_relpath).exists()]
        out[name] = {"tasks": len(vtasks), "skipped": len(vtasks) - len(todo), "rows": 0}
        for vt in todo:
            shard_paths = [str((root / path_by_key[k]).resolve()) for k in vt.cir_keys]
            key = f"view-{vt.key}"
            jobs.append(Job(key, _view_job, (name, to_dict(vcfg), shard_paths, str(root.resolve()), list(vt.rx_ids), scene_xml, task_seed(seed, vt.key), m), 1))
            job_info[key] = (vt, vhash, to_dict(vcfg))
    t0 = time.perf_counter()

    def on_result(job: Job, table: pa.Table) -> None:
        vt, vhash, vcfg = job_info[job.key]
        meta = file_metadata(config_hash=vhash, scene_hash=m["scene"]["hash"], view=vt.view, config=vcfg, task_key=vt.key)
        entry = write_shard(root, vt.shard_relpath, table, view=vt.view, metadata=meta, task_key=vt.key, dataset=m["name"], city=m["name"], bbox=tuple(m["area"]["bbox_wgs84"]))
        cat.register([entry])
        out[vt.view]["rows"] += table.num_rows

    if jobs:
        with dask_client(config.dask) as client, Progress(
            TextColumn("[bold]views[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"), TimeElapsedColumn()
        ) as prog:
            bar = prog.add_task("views", total=len(jobs))
            run_jobs(client, jobs, on_result, retries=config.dask.retries, on_progress=lambda j: prog.update(bar, advance=1))
    for name in names:
        set_stage(root, f"view:{name}", status="done", **out[name], views_run_seconds=round(time.perf_counter() - t0, 2), config=to_dict(from_mapping(get_view(name).config_cls, config.views.get(name, {}), where=f"[views.{name}]")))
    return out


def _view_job(name: str, vcfg: dict, shard_paths: list[str], root: str, rx_ids: list[int], scene_xml: str, seed: int, manifest: dict) -> pa.Table:
    """Runs on a Dask worker: read the CIR rows of a receiver batch and apply the view."""
    import pyarrow.compute as pc

    from twin.datasets import ViewInputs, get_view

    view = get_view(name)
    cfg = view.config_cls(**vcfg)
    cir = pa.concat_tables([pq.read_table(p) for p in shard_paths]) if shard_paths else None
    from twin.geo import without_geometry

    rx = without_geometry(pq.read_table(Path(root) / "receivers.parquet"))
    if rx_ids:
        mask = pc.is_in(rx.column("rx_id"), value_set=pa.array(rx_ids, pa.int64()))
        rx = rx.filter(mask)
        if cir is not None:
            cir = cir.filter(pc.is_in(cir.column("rx_id"), value_set=pa.array(rx_ids, pa.int64())))
    towers = pq.read_table(Path(root) / "towers.parquet")
    towers = towers.select([c for c in towers.column_names if c != "geometry"])
    inputs = ViewInputs(cir=cir, towers=towers, receivers=rx, scene_path=scene_xml, seed=seed, manifest=manifest)
    table = view(inputs, cfg)
    return table
