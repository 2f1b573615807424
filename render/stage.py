"""The trace stage: receivers, task planning, the Dask job per task, shard writing and catalog registration.

:func:`run_trace` is what ``twin build`` runs after ingest: it places (or reuses) the receivers, plans the
trace tasks (:mod:`twin.render.plan`), skips those already in the catalog (resume), runs the rest as Dask tasks
(:mod:`twin.cluster`) that each make one Sionna RT call (:func:`twin.render.trace.trace_links`), and writes and
registers every shard (``cir/part-<task key>.parquet``) as it arrives. This module never goes online: a street
graph for route receivers comes from the caller (``twin.ingest.streets``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twin import cluster
from twin.config import BuildConfig, TraceConfig, config_hash, to_dict
from twin.constants import DEFAULT_TRACE_LINKS_PER_S, LARGE_PLAN_PAIRS
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.geo import with_point_geometry, without_geometry
from twin.io import atomic_path, write_json_atomic
from twin.manifest import now_iso, read_manifest, set_stage
from twin.render.bundle import SceneBundle, local_scene, pack_scene
from twin.render.plan import TraceTask, plan_trace_tasks
from twin.schema import RECEIVER_SCHEMA, file_metadata

PLAN_FILE = "render_plan.json"
log = logging.getLogger(__name__)


@dataclass
class TraceResult:
    """What a trace stage run did: links planned / traced / in the catalog, tasks total / skipped (resume)."""

    root: Path
    links_planned: int = 0
    links_traced: int = 0
    links_with_paths: int = 0
    tasks_total: int = 0
    tasks_skipped: int = 0
    dry_run: bool = False
    estimate_s: float | None = None
    rate_source: str = ""  # where the links/s of ``estimate_s`` comes from
    links_todo: int = 0  # pairs of the tasks not done yet (what this run traces)


def read_cells(root: Path) -> pd.DataFrame:
    """The cells of a build (``towers.parquet`` without its geometry column)."""
    t = pq.read_table(Path(root) / "towers.parquet")
    cols = [c for c in t.column_names if c != "geometry"]
    return t.select(cols).to_pandas()


def ensure_receivers(
    root: Path,
    config: BuildConfig,
    *,
    street_graph: Callable[[], Any] | None = None,
    on_placed: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Place receivers (or reuse ``receivers.parquet`` when the [receivers] config is unchanged).

    ``street_graph``: called (only when receivers are placed in route mode) for a projected street graph, or
    None for routes through the open space of the scene. ``on_placed(receivers)`` runs after a new placement
    (previews).
    """
    from twin.render.receivers import make_receivers

    path = root / "receivers.parquet"
    h = config_hash(config.receivers)
    if path.exists():
        md = pq.read_schema(path).metadata or {}
        if md.get(b"twin.config_hash", b"").decode() == h:
            return without_geometry(pq.read_table(path)).to_pandas()
    m = read_manifest(root)
    b = pq.read_table(root / "buildings.parquet", columns=["geometry_local"]).column("geometry_local").to_pylist()
    import shapely

    footprints = list(shapely.from_wkb(b))
    bounds = tuple(m["area"]["bounds_local"])
    frame = LocalFrame.from_dict(m["frame"])
    streets = read_streets(root)
    # routes follow the build's own street network when it has one (streets.parquet), else the caller's graph
    want_graph = street_graph is not None and config.receivers.mode == "route" and not streets
    graph = street_graph() if want_graph else None  # type: ignore[misc]
    no_streets = "bbox" if str(m.get("scene", {}).get("source", "")).startswith("bundled") else "built"
    table = make_receivers(footprints, bounds, config.receivers, street_graph=graph, frame=frame,
                           streets_local=streets, no_streets=no_streets)
    area = (table.schema.metadata or {}).get(b"twin.receivers_area", b"").decode()
    meta = {**file_metadata(config_hash=h, scene_hash=m["scene"]["hash"], view="receivers", config=to_dict(config.receivers)),
            "twin.receivers_area": area}
    table = table.cast(RECEIVER_SCHEMA).replace_schema_metadata(meta)
    with atomic_path(path) as tmp:  # GeoParquet: EPSG:4326 points beside x, y, z
        pq.write_table(with_point_geometry(table, frame), tmp)
    set_stage(root, "receivers", status="done", count=table.num_rows, mode=config.receivers.mode, area=area,
              config=to_dict(config.receivers))
    out = table.to_pandas()
    if on_placed is not None:
        on_placed(out)
    return out


def read_streets(root: Path) -> list:
    """The street centre lines of a build (``streets.parquet`` ``geometry_local``, metres), [] when it has none."""
    import shapely

    p = Path(root) / "streets.parquet"
    if not p.is_file():
        return []
    return list(shapely.from_wkb(pq.read_table(p, columns=["geometry_local"]).column("geometry_local").to_pylist()))


def check_same_config(root: Path, config: BuildConfig) -> None:
    """A build directory holds the CIR of one [trace] and one [receivers] config; another one exits 2.

    Views may have several configs (variants); CIR shards may not: a different trace or receiver set would
    be catalogued beside the old one (mixed rows, repeated link ids).
    """
    import pyarrow.parquet as pq

    from twin.catalog import Catalog

    cat = Catalog(root)
    try:
        hashes = set(cat.entries("cir")["config_hash"].to_pylist())
    except Exception:  # noqa: BLE001 - a damaged catalog is verify's business; nothing to compare then
        return
    if not hashes:
        return
    fix = "pass --overwrite to rebuild the directory with this config, or build into another --out/--name"
    want = config_hash(config.trace)
    if hashes != {want}:
        raise TwinInputError(
            f"this build directory holds CIR of another [trace] config (hash {', '.join(sorted(hashes))}; now {want})",
            file=root, field="[trace]", fix=fix,
        )
    rx = root / "receivers.parquet"
    if rx.exists():
        md = pq.read_schema(rx).metadata or {}
        have = md.get(b"twin.config_hash", b"").decode()
        now = config_hash(config.receivers)
        if have and have != now:
            raise TwinInputError(
                f"this build directory holds CIR of another [receivers] config (hash {have}; now {now})",
                file=root, field="[receivers]", fix=fix,
            )


def run_trace(
    root: Path,
    config: BuildConfig,
    *,
    resume: bool = True,
    dry_run: bool = False,
    client=None,
    street_graph: Callable[[], Any] | None = None,
    on_receivers: Callable[[pd.DataFrame], None] | None = None,
) -> TraceResult:
    """Receivers, then every trace task not already in the catalog, as Dask tasks; shards streamed in."""
    from twin.catalog import Catalog

    root = Path(root)
    m = read_manifest(root)
    scene_hash = m["scene"]["hash"]
    cells = read_cells(root)
    if len(cells) == 0:
        raise TwinInputError(
            "no tower lies in the area: nothing to trace",
            file=root / "towers.parquet",
            fix="pass --towers with a CSV whose sites lie inside the area (see twin.json: stages.ingest.tower_rows)",
        )
    receivers = ensure_receivers(root, config, street_graph=street_graph, on_placed=on_receivers)
    tasks = plan_trace_tasks(cells, receivers, config.trace, scene_hash=scene_hash, max_links=config.max_links)
    plan_doc = {"created_at": now_iso(), "trace_config": to_dict(config.trace), "max_links": config.max_links,
                "tasks": [dataclasses.asdict(t) for t in tasks]}
    cat = Catalog(root)
    done, bad = cat.checked_task_keys("cir") if resume else (set(), [])
    for problem in bad:  # a finished shard that fails its size/sha256 check is traced again
        log.warning("%s: traced again", problem)
    todo = [t for t in tasks if t.key not in done]
    res = TraceResult(root, links_planned=sum(t.n_links for t in tasks), tasks_total=len(tasks), tasks_skipped=len(tasks) - len(todo))
    n_todo = sum(t.n_links for t in todo)
    res.links_todo = n_todo
    if dry_run:
        res.dry_run = True
        res.estimate_s, res.rate_source = estimate_trace_seconds(n_todo, m, config.trace)
        return res
    if n_todo > LARGE_PLAN_PAIRS:
        est, src = estimate_trace_seconds(n_todo, m, config.trace)
        log.warning("a large plan: %s tower-receiver pairs to trace (over %s)%s; Ctrl-C keeps the finished shards, "
                    "--max-links caps the pairs, --dry-run shows the plan", f"{n_todo:,}", f"{LARGE_PLAN_PAIRS:,}",
                    f", about {format_duration(est)} at {src}" if est else "")
    if todo or not (root / PLAN_FILE).exists():
        write_json_atomic(root / PLAN_FILE, plan_doc)
    set_stage(root, "trace", status="running", tasks=len(tasks), config=to_dict(config.trace))
    t0 = time.perf_counter()
    stats = execute_trace_tasks(root, todo, cells, receivers, config, manifest=m, client=client)
    elapsed = time.perf_counter() - t0
    res.links_traced = stats["links"]
    entries = cat.entries(view="cir")
    res.links_with_paths = int(sum(entries.column("rows").to_pylist())) if entries.num_rows else 0
    info = {"status": "done", "tasks": len(tasks), "links_planned": res.links_planned, "links_with_paths": res.links_with_paths}
    if stats["links"]:
        work_s = max(elapsed - stats.get("startup_ms", 0) / 1000.0, 1e-9)
        info.update(last_run_links=stats["links"], last_run_seconds=round(elapsed, 2),
                    startup_seconds=round(stats.get("startup_ms", 0) / 1000.0, 2), links_per_s=round(stats["links"] / elapsed, 2),
                    work_links_per_s=round(stats["links"] / work_s, 2))
    set_stage(root, "trace", **info)
    return res


def execute_trace_tasks(
    root: Path,
    todo: list[TraceTask],
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

    m = manifest
    scene_hash = m["scene"]["hash"]
    scene_xml = str((root / m["scene"]["xml"]).resolve())
    trace_cfg = to_dict(config.trace)
    cfg_hash = config_hash(config.trace)
    bbox = tuple(m["area"]["bbox_wgs84"])
    cat = Catalog(root)
    cells_by_id = cells.set_index("cell_id", drop=False)
    rx_by_id = receivers.set_index("rx_id", drop=False)
    task_by_dask = {t.dask_key(): t for t in todo}
    stats = {"links": 0, "rows": 0}
    if not todo:
        return stats
    t0 = time.perf_counter()

    def on_result(job: cluster.Job, table: pa.Table) -> None:
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
            client = stack.enter_context(cluster.dask_client(config.dask))
        # the scene travels with the tasks (once per worker): workers need not see the build directory
        bundle = client.scatter(pack_scene(scene_xml), broadcast=False, hash=False)
        stats["startup_ms"] = int(1000 * (time.perf_counter() - t0))  # cluster start + scene scatter
        jobs = [
            cluster.Job(
                key=t.dask_key(),
                fn=trace_job,
                args=(scene_xml, cells_by_id.loc[list(t.cell_ids)].reset_index(drop=True),
                      rx_by_id.loc[list(t.rx_ids)].reset_index(drop=True), config.trace, scene_hash, bundle),
                weight=t.n_links,
            )
            for t in todo
        ]
        on_progress = None
        if progress:
            prog = stack.enter_context(Progress(
                TextColumn("[bold]trace[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("links"),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
            ))
            bar = prog.add_task("trace", total=sum(j.weight for j in jobs), rate="")

            def on_progress(job: cluster.Job) -> None:
                el = time.perf_counter() - t0
                prog.update(bar, advance=job.weight, rate=f"{stats['links'] / max(el, 1e-9):.1f} links/s")

        cluster.run_jobs(client, jobs, on_result, retries=config.dask.retries, on_progress=on_progress)
    return stats


def _measured_rate(m: dict) -> float | None:
    """Links/s of the last trace of this build (its own measurement), for --dry-run estimates."""
    return m.get("stages", {}).get("trace", {}).get("links_per_s")


def estimate_trace_seconds(links: int, manifest: dict | None, trace: TraceConfig) -> tuple[float | None, str]:
    """Seconds to trace ``links`` pairs and where the rate comes from: this build's own measured links/s
    (``twin.json``) when it traced before with the same [trace] config, else
    :data:`twin.constants.DEFAULT_TRACE_LINKS_PER_S` (measured with the default [trace] config; other configs
    are marked as such)."""
    st = (manifest or {}).get("stages", {}).get("trace", {})
    rate = _measured_rate(manifest or {})
    if rate and st.get("config") == json.loads(json.dumps(to_dict(trace))):
        return links / rate, f"{rate:.1f} links/s measured by this build's last trace"
    if DEFAULT_TRACE_LINKS_PER_S <= 0:
        return None, ""
    note = "" if trace == TraceConfig() else ", measured with the default [trace]; yours differs"
    return links / DEFAULT_TRACE_LINKS_PER_S, (f"the documented default of {DEFAULT_TRACE_LINKS_PER_S:g} links/s "
                                              f"(twin.constants, 2-core CPU{note})")


def format_duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def trace_job(scene_xml: str, cells: pd.DataFrame, receivers: pd.DataFrame, config: TraceConfig, scene_hash: str,
              bundle: SceneBundle | None = None) -> pa.Table:
    """Runs on a Dask worker: one trace task (PathSolver calls of at most ``receivers_per_call`` receivers) -> CIR rows.

    ``scene_xml`` is the client's path; a worker that does not see it (or sees other content) loads ``bundle``,
    unpacked once per machine (:func:`twin.render.bundle.local_scene`).
    """
    from twin.render.trace import trace_links

    xml = local_scene(scene_xml, bundle.content_hash, bundle) if bundle is not None else scene_xml
    return trace_links(xml, cells, receivers, config, scene_hash=scene_hash)


__all__ = ["PLAN_FILE", "TraceResult", "check_same_config", "ensure_receivers", "execute_trace_tasks", "read_cells", "run_trace", "trace_job"]
