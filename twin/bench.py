"""``twin bench``: speed as ratios against the bare library doing the same work in the same run.

``bench_trace``: the twin pipeline (Dask worker, CIR rows, Parquet shards written atomically, catalog
registration) against bare Sionna RT ``PathSolver`` called the way its documentation shows, on the same
scene, cells, receivers and settings; both warmed up first, runs alternated, the best of each kept. Also the
naive loop that moves one receiver between solver calls. The bare runs execute in the pipeline's own Dask
worker process (timed there), so both sides see the same process, threads and scene files. Last line: ``ratio <pipeline ÷ bare links/s>``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import pandas as pd

from twin.config import BuildConfig, ReceiverConfig, TraceConfig


def _paris_root(tmp: Path) -> Path:
    from twin.ingest.source import BuildingSource
    from twin.ingest.stage import run_ingest

    src = BuildingSource.from_options(city="paris", offline=True)
    return run_ingest(src, tmp, config=BuildConfig()).root


def bench_trace(
    *,
    n_cells: int = 3,
    n_receivers: int = 100,
    naive_receivers: int = 20,
    samples_per_src: int | None = None,
    repeat: int = 2,
) -> list[str]:
    from twin.catalog import Catalog
    from twin.cluster import dask_client
    from twin.llvm import setup_mitsuba
    from twin.manifest import read_manifest
    from twin.render.bare import bare_sionna_links, naive_loop_links
    from twin.render.plan import plan_trace_tasks
    from twin.render.receivers import make_receivers
    from twin.render.stage import execute_trace_tasks, read_cells

    lines: list[str] = []
    trace = TraceConfig() if samples_per_src is None else TraceConfig(samples_per_src=samples_per_src)
    # one task holds all cells and receivers: the same single PathSolver call the bare run makes
    trace = dataclasses.replace(trace, cells_per_task=max(n_cells, 1), receivers_per_task=max(n_receivers, 1))
    cfg = BuildConfig(trace=trace)
    with tempfile.TemporaryDirectory(prefix="twin-bench-") as td:
        root = _paris_root(Path(td))
        m = read_manifest(root)
        scene_xml = str((root / m["scene"]["xml"]).resolve())
        cells_all = read_cells(root)
        carrier = float(cells_all["frequency_hz"].value_counts().idxmax())  # type: ignore[arg-type]
        cells = cells_all[cells_all["frequency_hz"] == carrier].sort_values("cell_id").head(n_cells).reset_index(drop=True)
        import pyarrow.parquet as pq
        import shapely

        fp = list(shapely.from_wkb(pq.read_table(root / "buildings.parquet", columns=["geometry_local"]).column(0).to_pylist()))
        rx_all = make_receivers(fp, tuple(m["area"]["bounds_local"]), ReceiverConfig(count=n_receivers + 8, seed=11)).to_pandas()
        rx_warm, rx = rx_all.iloc[n_receivers:].reset_index(drop=True), rx_all.iloc[:n_receivers].reset_index(drop=True)
        n_links = len(cells) * len(rx)
        lines.append(f"scene etoile (Paris), {len(cells)} cells at {carrier / 1e6:.1f} MHz, {len(rx)} receivers, "
                     f"{n_links} links, max_depth {trace.max_depth}, samples_per_src {trace.samples_per_src}")
        with dask_client(cfg.dask) as client:
            rows_written = [0]
            variant = client.submit(setup_mitsuba, pure=False).result()
            lines.append(f"device: Mitsuba variant {variant} in the Dask worker (both sides)")

            def pipeline_run(receivers: pd.DataFrame) -> float:
                tasks = plan_trace_tasks(cells, receivers, trace, scene_hash=m["scene"]["hash"])
                t0 = time.perf_counter()
                stats = execute_trace_tasks(root, tasks, cells, receivers, cfg, manifest=m, client=client, progress=False)
                rows_written[0] = stats["rows"]
                return time.perf_counter() - t0

            # bare Sionna runs in the same worker process as the pipeline's tasks (same threads, same memory)
            def bare_run(receivers: pd.DataFrame) -> tuple[int, float]:
                return client.submit(bare_sionna_links, scene_xml, cells, receivers, trace, pure=False).result()

            pipeline_run(rx_warm)  # worker start-up, scene load, kernel compilation
            bare_run(rx_warm)
            best_p, best_b, bare_links = float("inf"), float("inf"), 0
            for _ in range(max(1, repeat)):
                best_p = min(best_p, pipeline_run(rx))
                bare_links, s = bare_run(rx)
                best_b = min(best_b, s)
            naive_n = min(naive_receivers, len(rx))
            naive_paths, naive_s = client.submit(naive_loop_links, scene_xml, cells, rx, trace, max_receivers=naive_n, pure=False).result()
        report = Catalog(root).verify()
        if not report.ok:
            raise RuntimeError(f"bench catalog failed verification: {report.problems}")
    p_rate, b_rate, n_rate = n_links / best_p, n_links / best_b, naive_n * len(cells) / naive_s
    lines.append(f"pipeline (Dask + shards + catalog): {p_rate:9.1f} links/s  ({best_p:.2f} s, {rows_written[0]} links with paths written and catalogued)")
    lines.append(f"bare Sionna PathSolver:             {b_rate:9.1f} links/s  ({best_b:.2f} s, {bare_links} links with paths)")
    lines.append(f"naive loop, moving one receiver:    {n_rate:9.1f} links/s  ({naive_s:.2f} s for {naive_n} receivers, {naive_paths} links with paths)")
    lines.append(f"ratio {p_rate / b_rate:.3f}")
    return lines


def bench_views(*, quick: bool = False, only: list[str] | None = None) -> list[str]:
    from twin.datasets.bench import BENCHES

    fns = [(n, BENCHES.get(n)) for n in (only or BENCHES.names())]  # an unknown name: UnknownNameError first
    lines = []
    for _, fn in fns:
        for r in fn(quick):
            notes = "  ".join(f"{k}={v}" for k, v in r.notes.items())
            lines.append(f"{r.name:34s} {r.items_per_s:14.1f} {r.unit}/s  ({r.seconds:.3f} s)  {notes}")
    return lines
