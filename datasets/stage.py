"""The view stage: one Dask task per receiver batch (or per build) turns CIR shards into view shards.

:func:`run_views` reads the trace plan the trace stage wrote (``render_plan.json``: task keys, receiver batches
and their receivers) and the catalog's CIR entries, plans the view tasks (keyed by the view's config, its input
shards and the seed), skips those already in the catalog (resume), runs the rest on Dask (:mod:`twin.cluster`;
each task's CIR rows, receivers and towers are read on the client and shipped with it, at most a few tasks per
worker at a time, so workers need not see the build directory) and writes and registers every shard as it
arrives, in the folder of its variant: ``views/<name>/<variant>/part-<task key>.parquet`` (variant = the view
config's hash, :func:`twin.datasets.variants.variant_dir`), so two variants of a view never share a folder.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from twin import cluster
from twin.config import BuildConfig, config_hash, from_mapping, to_dict
from twin.datasets.variants import variant_dir
from twin.errors import TwinInputError
from twin.keys import task_digest, task_seed
from twin.manifest import read_manifest, set_stage
from twin.render.bundle import SceneBundle, local_scene, pack_scene
from twin.schema import file_metadata

PLAN_FILE = "render_plan.json"  # written by the trace stage (twin.render.stage.PLAN_FILE)


@dataclass(frozen=True)
class PlannedTrace:
    """The part of a trace task (``render_plan.json``) a view task depends on."""

    key: str
    rx_batch: int
    rx_ids: tuple[int, ...]


@dataclass(frozen=True)
class ViewTask:
    key: str
    view: str
    rx_batch: int  # -1 for a per-build task
    cir_keys: tuple[str, ...]
    rx_ids: tuple[int, ...]
    variant: str = ""  # the view config's hash: the shard's folder

    @property
    def shard_relpath(self) -> str:
        folder = variant_dir(self.view, self.variant) if self.variant else f"views/{self.view}"
        return f"{folder}/part-{self.key}.parquet"


def load_trace_plan(root: Path) -> list[PlannedTrace]:
    """The trace tasks of a build, from ``render_plan.json`` (empty when there is none)."""
    p = Path(root) / PLAN_FILE
    if not p.exists():
        return []
    d = json.loads(p.read_text())
    return [PlannedTrace(t["key"], int(t["rx_batch"]), tuple(t["rx_ids"])) for t in d["tasks"]]


def plan_view_tasks(view: str, view_config_hash: str, trace_tasks: list[PlannedTrace], *, granularity: str, seed: int) -> list[ViewTask]:
    """One view task per receiver batch (or one per build), keyed by the view config and its input shards."""
    by_batch: dict[int, list[PlannedTrace]] = {}
    for t in trace_tasks:
        by_batch.setdefault(t.rx_batch, []).append(t)
    if granularity == "per_build":
        keys = tuple(sorted(t.key for t in trace_tasks))
        rx_ids = tuple(sorted({r for t in trace_tasks for r in t.rx_ids}))
        return [ViewTask(task_digest("view/v1", view, view_config_hash, seed, keys), view, -1, keys, rx_ids, view_config_hash)]
    out = []
    for b in sorted(by_batch):
        ts = by_batch[b]
        keys = tuple(sorted(t.key for t in ts))
        out.append(ViewTask(task_digest("view/v1", view, view_config_hash, seed, keys), view, b, keys, ts[0].rx_ids,
                            view_config_hash))
    return out


def run_views(root: str | Path, names: list[str], config: BuildConfig) -> dict[str, Any]:
    """Build the named views over the CIR shards of ``root`` as Dask tasks (resumable)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin.catalog import Catalog, write_shard
    from twin.catalog.paths import resolve
    from twin.datasets.registry import get_view

    root = Path(root)
    m = read_manifest(root)
    tasks = load_trace_plan(root)
    if not tasks:
        raise TwinInputError("no trace plan in this directory", file=root, fix="run `twin build` first")
    cat = Catalog(root)
    cir = cat.entries(view="cir")
    path_by_key = dict(zip(cir.column("task_key").to_pylist(), cir.column("path").to_pylist(), strict=True))
    missing = [t.key for t in tasks if t.key not in path_by_key]
    if missing:
        raise TwinInputError(f"{len(missing)} trace tasks are not finished", file=root, fix="re-run `twin build` (it resumes) before building views")
    sound, bad = cat.checked_task_keys("cir")  # the inputs are checked as resume checks them (size + sha256)
    if bad or any(t.key not in sound for t in tasks):
        from twin.catalog.paths import DamagedBuildError

        raise DamagedBuildError(
            f"{len(bad)} CIR shard(s) fail their check ({'; '.join(bad[:3])})", file=root, field="cir",
            fix="re-run `twin build` with the same config: it traces those shards again; then build the view",
        )
    scene_xml = str((root / m["scene"]["xml"]).resolve())
    seed = config.trace.seed
    out: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    jobs: list[cluster.Job] = []
    job_info: dict[str, tuple] = {}
    tables = _BuildTables(root)
    needs_scene = False
    for name in names:
        view = get_view(name)
        vcfg = from_mapping(view.config_cls, config.views.get(name, {}), where=f"[views.{name}]")
        configs[name] = vcfg
        vhash = config_hash(vcfg)
        vtasks = plan_view_tasks(name, vhash, tasks, granularity=getattr(view, "granularity", "per_receiver_batch"), seed=seed)
        done, _ = cat.checked_task_keys(name)  # a damaged view shard is built again
        todo = [vt for vt in vtasks if vt.key not in done]
        out[name] = {"tasks": len(vtasks), "skipped": len(vtasks) - len(todo), "rows": 0}
        reads_cir = getattr(view, "reads_cir", True)
        needs_scene = needs_scene or (bool(todo) and not reads_cir)
        for vt in todo:
            # a view that traces the scene itself (reads_cir = False) gets no CIR rows
            shards = [resolve(root, path_by_key[k], suffix=".parquet") for k in vt.cir_keys] if reads_cir else []
            key = f"view-{vt.key}"
            jobs.append(cluster.Job(key, view_job, weight=1, make_args=functools.partial(
                tables.task_args, name, vcfg, shards, list(vt.rx_ids), scene_xml, task_seed(seed, vt.key), m)))
            job_info[key] = (vt, vhash, to_dict(vcfg))
    t0 = time.perf_counter()

    def on_result(job: cluster.Job, table: pa.Table) -> None:
        vt, vhash, vcfg = job_info[job.key]
        meta = file_metadata(config_hash=vhash, scene_hash=m["scene"]["hash"], view=vt.view, config=vcfg, task_key=vt.key)
        entry = write_shard(root, vt.shard_relpath, table, view=vt.view, metadata=meta, task_key=vt.key, dataset=m["name"], city=m["name"], bbox=tuple(m["area"]["bbox_wgs84"]))
        cat.register([entry])
        out[vt.view]["rows"] += table.num_rows

    if jobs:
        with cluster.dask_client(config.dask) as client, Progress(
            TextColumn("[bold]views[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"), TimeElapsedColumn()
        ) as prog:
            if needs_scene:  # the scene travels with the tasks (once per worker), as for the trace stage
                tables.bundle = client.scatter(pack_scene(scene_xml), broadcast=False, hash=False)
            bar = prog.add_task("views", total=len(jobs))
            in_flight = VIEW_TASKS_IN_FLIGHT_PER_WORKER * max(1, len(client.scheduler_info().get("workers", {})))
            cluster.run_jobs(client, jobs, on_result, retries=config.dask.retries, max_in_flight=in_flight,
                             on_progress=lambda j: prog.update(bar, advance=1))
    for name in names:
        set_stage(root, f"view:{name}", status="done", **out[name], views_run_seconds=round(time.perf_counter() - t0, 2),
                  config=to_dict(configs[name]))
    return out


#: View tasks submitted per worker at a time: their inputs (one receiver batch of CIR rows each) are read on the
#: client and shipped with the task, so only these many batches sit in the client's memory.
VIEW_TASKS_IN_FLIGHT_PER_WORKER = 2


class _BuildTables:
    """The build's receivers and towers, read once on the client; each view task gets its rows shipped with it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bundle: Any = None
        self._rx: pa.Table | None = None
        self._towers: pa.Table | None = None

    def _tables(self) -> tuple[pa.Table, pa.Table]:
        from twin.geo import without_geometry

        if self._rx is None or self._towers is None:
            self._rx = without_geometry(pq.read_table(self.root / "receivers.parquet"))
            towers = pq.read_table(self.root / "towers.parquet")
            self._towers = towers.select([c for c in towers.column_names if c != "geometry"])
        return self._rx, self._towers

    def task_args(self, name: str, vcfg: Any, shards: list[Path], rx_ids: list[int], scene_xml: str, seed: int,
                  manifest: dict) -> tuple:
        """``view_job``'s arguments for one task: its CIR rows, receivers and the towers (read here, on the client)."""
        import pyarrow.compute as pc

        rx, towers = self._tables()
        cir = pa.concat_tables([pq.read_table(p) for p in shards]) if shards else pa.table({})
        if rx_ids:
            ids = pa.array(rx_ids, pa.int64())
            rx = rx.filter(pc.is_in(rx.column("rx_id"), value_set=ids))
            if cir.num_columns:
                cir = cir.filter(pc.is_in(cir.column("rx_id"), value_set=ids))
        return (name, vcfg, cir, rx, towers, scene_xml, self.bundle, seed, manifest)


def view_job(name: str, vcfg: Any, cir: pa.Table, rx: pa.Table, towers: pa.Table, scene_xml: str,
             bundle: SceneBundle | None, seed: int, manifest: dict) -> pa.Table:
    """Runs on a Dask worker: apply the view (``vcfg``: its config) to one receiver batch's CIR rows.

    Everything comes with the task (no path of the build is opened here); a view that traces the scene itself
    loads the client's scene file when this machine sees it, else the shipped bundle."""
    from twin.datasets.registry import ViewInputs, get_view

    view = get_view(name)
    scene = scene_xml
    if bundle is not None and not getattr(view, "reads_cir", True):
        scene = local_scene(scene_xml, bundle.content_hash, bundle)
    inputs = ViewInputs(cir=cir, towers=towers, receivers=rx, scene_path=scene, seed=seed, manifest=manifest)
    return view(inputs, vcfg)


__all__ = ["PlannedTrace", "ViewTask", "load_trace_plan", "plan_view_tasks", "run_views", "view_job"]
