"""``twin bench``: speed as ratios against the bare library doing the same work in the same run.

``bench_trace``: the twin pipeline (Dask worker, CIR rows, Parquet shards written atomically, catalog
registration) against bare Sionna RT ``PathSolver`` called the way its documentation shows, on the same
scene, cells, receivers and settings; both warmed up first, runs alternated, the best of each kept. Also the
naive loop that moves one receiver between solver calls. The bare runs execute in the pipeline's own Dask
worker process (timed there), so both sides see the same process, threads and scene files. Last line: ``ratio <pipeline ÷ bare links/s>``.

``bench_calls``: what the number of receivers in one ``PathSolver`` call does to the result and the time. The
same cells and receivers are traced with calls of N receivers for each N asked, against single-receiver calls
(the reference: nothing competes for Sionna's candidate de-duplication table, NVlabs/sionna-rt#76): paths found
(share of the reference), links whose total gain is off by more than 1 dB / 3 dB, and seconds (ratio to the
reference's own time).
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
    trace = dataclasses.replace(trace, cells_per_task=max(n_cells, 1), receivers_per_task=max(n_receivers, 1),
                                receivers_per_call=max(n_receivers, 1))
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


@dataclasses.dataclass(frozen=True)
class CallsRow:
    """One receivers-per-call setting of :func:`bench_calls` against the single-receiver reference."""

    receivers_per_call: int
    seconds: float
    paths: int
    paths_share: float  # paths found / paths of the reference
    off_1db: float  # share of the reference's links whose path gain differs by > 1 dB (missing link: off)
    off_3db: float
    median_abs_db: float


def compare_to_reference(table, reference) -> tuple[int, float, float, float, float]:
    """(paths, share of the reference's paths, share of its links off by > 1 dB, > 3 dB, median |dB|) of a CIR
    table against a reference CIR table of the same links (``link_id``, ``num_paths``, ``path_gain_db``)."""
    import numpy as np

    ref = reference.to_pandas().set_index("link_id")
    got = table.to_pandas().set_index("link_id")
    g = got["path_gain_db"].reindex(ref.index)
    d = (g - ref["path_gain_db"]).abs().fillna(np.inf).to_numpy()
    n_ref = int(ref["num_paths"].sum())
    paths = int(got["num_paths"].sum())
    return (paths, paths / n_ref if n_ref else float("nan"), float(np.mean(d > 1.0)), float(np.mean(d > 3.0)),
            float(np.median(d)) if len(d) else float("nan"))


def bench_calls(*, n_cells: int = 3, n_receivers: int = 128, per_call: tuple[int, ...] = (128, 64, 32, 16),
                samples_per_src: int | None = None, root: Path | None = None) -> tuple[list[str], list[CallsRow]]:
    """Trace ``n_cells`` cells x ``n_receivers`` street receivers of the embedded Paris scene (or the build at
    ``root``) in calls of each ``per_call`` receivers and in single-receiver calls; report lines and rows."""
    from twin.cluster import setup_worker_process
    from twin.manifest import read_manifest
    from twin.render.receivers import make_receivers
    from twin.render.stage import read_cells
    from twin.render.trace import trace_links

    trace = TraceConfig() if samples_per_src is None else TraceConfig(samples_per_src=samples_per_src)
    setup_worker_process(1)  # one Dr.Jit thread: the deterministic layout of a build's workers
    with tempfile.TemporaryDirectory(prefix="twin-bench-calls-") as td:
        base = root if root is not None else _paris_root(Path(td))
        m = read_manifest(base)
        scene_xml = str((base / m["scene"]["xml"]).resolve())
        cells_all = read_cells(base)
        carrier = float(cells_all["frequency_hz"].value_counts().idxmax())  # type: ignore[arg-type]
        cells = cells_all[cells_all["frequency_hz"] == carrier].sort_values("cell_id").head(n_cells).reset_index(drop=True)
        import pyarrow.parquet as pq

        if (base / "receivers.parquet").is_file():
            rx = pq.read_table(base / "receivers.parquet").to_pandas().head(n_receivers).reset_index(drop=True)
        else:
            import shapely

            fp = list(shapely.from_wkb(pq.read_table(base / "buildings.parquet", columns=["geometry_local"]).column(0).to_pylist()))
            rx = make_receivers(fp, tuple(m["area"]["bounds_local"]), ReceiverConfig(count=n_receivers, seed=11)).to_pandas()

        def run(k: int):
            cfg = dataclasses.replace(trace, receivers_per_call=k)
            t0 = time.perf_counter()
            tab = trace_links(scene_xml, cells, rx, cfg, scene_hash=m["scene"]["hash"])
            return tab, time.perf_counter() - t0

        run(min(8, len(rx)))  # scene load and kernel compilation
        ref, ref_s = run(1)
        rows = []
        for k in per_call:
            tab, sec = run(k)
            paths, share, off1, off3, med = compare_to_reference(tab, ref)
            rows.append(CallsRow(k, round(sec, 3), paths, round(share, 4), round(off1, 4), round(off3, 4), round(med, 4)))
    lines = [f"{len(cells)} cells at {carrier / 1e6:.1f} MHz x {len(rx)} receivers, max_depth {trace.max_depth}, "
             f"samples_per_src {trace.samples_per_src}; reference: 1 receiver per call, {int(ref['num_paths'].to_numpy().sum())} "
             f"paths on {ref.num_rows} links in {ref_s:.1f} s",
             f"{'rx/call':>8} {'seconds':>8} {'x ref':>6} {'paths':>7} {'share':>7} {'>1 dB':>7} {'>3 dB':>7} {'median dB':>9}"]
    for r in rows:
        lines.append(f"{r.receivers_per_call:8d} {r.seconds:8.2f} {r.seconds / ref_s:6.2f} {r.paths:7d} {r.paths_share:7.4f} "
                     f"{r.off_1db:7.4f} {r.off_3db:7.4f} {r.median_abs_db:9.4f}")
    return lines, rows


def bench_views(*, quick: bool = False, only: list[str] | None = None) -> list[str]:
    from twin.datasets.bench import BENCHES

    fns = [(n, BENCHES.get(n)) for n in (only or BENCHES.names())]  # an unknown name: UnknownNameError first
    lines = []
    for _, fn in fns:
        for r in fn(quick):
            notes = "  ".join(f"{k}={v}" for k, v in r.notes.items())
            lines.append(f"{r.name:34s} {r.items_per_s:14.1f} {r.unit}/s  ({r.seconds:.3f} s)  {notes}")
    return lines
