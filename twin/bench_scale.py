"""``twin bench scale``: how time and memory grow with the number of receivers.

One build per size, each a fresh ``twin build`` process (same scene, towers and settings; only the receiver count
changes), watched from outside: the peak resident memory of the client process and of every Dask worker process
(sampled with psutil every 0.1 s; the OS's ``ru_maxrss`` of each child is not visible before it exits), the wall
time of each stage as the manifest records it, the links with paths and the bytes on disk per link. The growth
exponents are least-squares slopes in log-log space (time ~ size^a; memory ~ size^b): a = 1 is linear time,
b = 0 flat memory. The trace stage's time is split as the manifest records it: start-up (Dask cluster start and
the scene scattered to the workers, a fixed cost per build) and work (the trace tasks); the work exponent is the
one that says whether tracing itself scales linearly, the stage exponent includes the fixed start-up. ``--json`` writes the table, ``--plot`` draws time and peak RSS against size.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from twin.errors import TwinInputError

#: Tower sites of the bundled Paris file a scale build uses by default (3 cells each): 24 cells keep the traced work
#: large against the fixed start-up (at 2 sites the time exponent read 0.60).
DEFAULT_SITES = 8

#: Sampling period of the memory watcher, seconds.
SAMPLE_PERIOD_S = 0.1


@dataclass(frozen=True)
class ScaleRow:
    """One build of the scale bench (times in s, memory in MB = 2**20 bytes, bytes per link with paths)."""

    receivers: int
    pairs: int
    links_with_paths: int
    trace_s: float
    startup_s: float
    work_s: float
    views_s: float
    wall_s: float
    pairs_per_s: float
    client_peak_rss_mb: float
    worker_peak_rss_mb: float
    workers_seen: int
    bytes_per_link: float


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) against log(size): the a of value ~ size^a."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if s > 0 and v > 0]
    if len(pts) < 2:
        raise TwinInputError("a growth exponent needs at least two sizes with positive values", field="--receivers",
                             fix="give two or more sizes, e.g. --receivers 250,1000,4000")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    return sxy / sxx


def parse_sizes(text: str) -> list[int]:
    """``"250,1000,4000"`` -> ``[250, 1000, 4000]`` (positive, increasing)."""
    try:
        sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        raise TwinInputError(f"not a list of receiver counts: {text!r}", field="--receivers",
                             fix="comma-separated integers, e.g. --receivers 250,1000,4000") from None
    if len(sizes) < 2 or any(s <= 0 for s in sizes) or sizes != sorted(set(sizes)):
        raise TwinInputError(f"need two or more increasing positive receiver counts, got {text!r}", field="--receivers",
                             fix="e.g. --receivers 250,1000,4000")
    return sizes


def subset_towers(src: Path, dst: Path, sites: int) -> int:
    """Write the first ``sites`` sites (rows sharing latitude/longitude) of a tower CSV to ``dst``; returns cells."""
    with src.open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    seen: list[tuple[str, str]] = []
    keep = []
    for r in body:
        key = (r[0], r[1])
        if key not in seen:
            if len(seen) == sites:
                continue
            seen.append(key)
        keep.append(r)
    with dst.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(keep)
    return len(keep)


def _watch(proc, period_s: float = SAMPLE_PERIOD_S) -> tuple[float, float, int]:
    """Poll a running process tree until it exits: (client peak MB, largest worker peak MB, worker processes seen)."""
    import psutil

    client = psutil.Process(proc.pid)
    client_peak = 0
    worker_peak: dict[int, int] = {}
    while proc.poll() is None:
        try:
            client_peak = max(client_peak, client.memory_info().rss)
            for ch in client.children(recursive=True):
                try:
                    rss = ch.memory_info().rss
                    cmd = " ".join(ch.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                if "resource_tracker" in cmd:  # multiprocessing's helper, not a worker
                    continue
                worker_peak[ch.pid] = max(worker_peak.get(ch.pid, 0), rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(period_s)
    mb = 2.0 ** 20
    return client_peak / mb, (max(worker_peak.values()) / mb if worker_peak else 0.0), len(worker_peak)


def _stage_seconds(manifest: dict, prefix: str) -> float:
    total = 0.0
    for name, st in manifest.get("stages", {}).items():
        if name == prefix or (prefix.endswith(":") and name.startswith(prefix)):
            for key in ("last_run_seconds", "views_run_seconds", "seconds"):
                if key in st:
                    total += float(st[key])
                    break
    return total


def _trace_tasks(root: Path) -> int:
    plan = root / "render_plan.json"
    return len(json.loads(plan.read_text()).get("tasks", [])) if plan.exists() else 0


def run_one(out: Path, receivers: int, *, towers: Path, config: Path | None, views: str | None, env: dict) -> ScaleRow:
    """Build ``receivers`` random street receivers into ``out`` in a fresh process and measure it."""
    cmd = [sys.executable, "-m", "twin", "build", "--city", "paris", "--offline", "--towers", str(towers),
           "--receivers", str(receivers), "--out", str(out), "--name", "paris"]
    if config is not None:
        cmd += ["--config", str(config)]
    if views:
        cmd += ["--views", views]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    client_mb, worker_mb, nworkers = _watch(proc)
    log_text = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"twin build --receivers {receivers} failed (exit {proc.returncode}):\n{log_text[-3000:]}")
    root = out / "paris"
    m = json.loads((root / "twin.json").read_text())
    tr = m["stages"]["trace"]
    pairs = int(tr["links_planned"])
    links = int(tr["links_with_paths"])
    trace_s = _stage_seconds(m, "trace")
    startup_s = float(tr.get("startup_seconds", 0.0))
    cir_bytes = sum(p.stat().st_size for p in (root / "cir").glob("*.parquet"))
    return ScaleRow(receivers=receivers, pairs=pairs, links_with_paths=links, trace_s=round(trace_s, 3),
                    startup_s=round(startup_s, 3), work_s=round(max(trace_s - startup_s, 0.0), 3),
                    views_s=round(_stage_seconds(m, "view:"), 3), wall_s=round(wall, 3),
                    pairs_per_s=round(pairs / trace_s, 2) if trace_s else 0.0,
                    client_peak_rss_mb=round(client_mb, 1), worker_peak_rss_mb=round(worker_mb, 1),
                    workers_seen=nworkers, bytes_per_link=round(cir_bytes / links, 1) if links else 0.0)


def _noop(i: int) -> int:
    return i


def measure_dask_overhead(n_tasks: int = 200) -> float:
    """Milliseconds per task of Dask itself: ``n_tasks`` no-op tasks through twin's own job runner on a fresh
    local cluster (the same submit / as_completed / release path the trace stage uses), after a warm-up."""
    from twin import cluster
    from twin.config import DaskConfig

    with cluster.dask_client(DaskConfig()) as client:
        seen: list[int] = []
        warm = [cluster.Job(f"twin-noop-warm-{i}", _noop, (i,)) for i in range(20)]
        cluster.run_jobs(client, warm, lambda j, r: seen.append(r))
        jobs = [cluster.Job(f"twin-noop-{i}", _noop, (i,)) for i in range(n_tasks)]
        t0 = time.perf_counter()
        cluster.run_jobs(client, jobs, lambda j, r: seen.append(r))
        dt = time.perf_counter() - t0
    return 1000.0 * dt / n_tasks


def bench_scale(sizes: Sequence[int], *, sites: int = DEFAULT_SITES, config: Path | None = None, views: str | None = None,
                workdir: Path | None = None, json_path: Path | None = None, plot_path: Path | None = None,
                progress=None) -> dict:
    """Run one build per size; return ``{"sizes": [...], "time_exponent", "memory_exponent", ...}``."""
    from importlib import resources

    base = Path(tempfile.mkdtemp(prefix="twin-scale-")) if workdir is None else Path(workdir)
    base.mkdir(parents=True, exist_ok=True)
    towers = base / "towers.csv"
    src = Path(str(resources.files("twin") / "data" / "paris_towers.csv"))
    cells = subset_towers(src, towers, sites)
    env = dict(os.environ)
    rows: list[ScaleRow] = []
    for n in sizes:
        row = run_one(base / f"rx{n}", n, towers=towers, config=config, views=views, env=env)
        rows.append(row)
        if progress is not None:
            progress(row)
    xs = [r.receivers for r in rows]
    overhead_ms = measure_dask_overhead()
    last = rows[-1]
    tasks = _trace_tasks(base / f"rx{sizes[-1]}" / "paris")
    task_s = last.work_s / max(tasks, 1) * max(last.workers_seen, 1)
    doc = {
        "command": "twin bench scale --receivers " + ",".join(map(str, sizes)) + f" --sites {sites}",
        "cells": cells,
        "cpu_count": os.cpu_count(),
        "sizes": [asdict(r) for r in rows],
        "time_exponent": round(growth_exponent(xs, [r.trace_s for r in rows]), 3),
        "work_time_exponent": round(growth_exponent(xs, [r.work_s for r in rows]), 3),
        "memory_exponent": round(growth_exponent(xs, [max(r.client_peak_rss_mb, r.worker_peak_rss_mb) for r in rows]), 3),
        "client_memory_growth": round(rows[-1].client_peak_rss_mb / rows[0].client_peak_rss_mb - 1, 3),
        "worker_memory_growth": round(rows[-1].worker_peak_rss_mb / rows[0].worker_peak_rss_mb - 1, 3)
        if rows[0].worker_peak_rss_mb else None,
        # scale-out on paper: per-task cost of the largest build, Dask's own cost per task
        "dask_overhead_ms_per_task": round(overhead_ms, 2),
        "trace_tasks_largest": tasks,
        "trace_s_per_task_largest": round(task_s, 3),
        "overhead_share_largest": round(overhead_ms / 1000.0 / task_s, 4) if task_s else None,
        # a task must run >= 20x the per-task overhead to keep the scheduler under 5 %
        "min_task_s_for_5pct": round(20 * overhead_ms / 1000.0, 3),
        "min_links_per_task_for_5pct": math.ceil(20 * overhead_ms / 1000.0 * last.pairs_per_s),
    }
    if json_path is not None:
        from twin.io import write_json_atomic

        write_json_atomic(Path(json_path), doc)
    if plot_path is not None:
        plot_scale(doc, Path(plot_path))
    return doc


def plot_scale(doc: dict, path: Path) -> Path:
    """Trace time and peak RSS against receivers (log-log), with the fitted exponents in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.io import atomic_path

    rows = doc["sizes"]
    x = [r["receivers"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.loglog(x, [r["trace_s"] for r in rows], "o-", label=f"trace stage (exponent {doc['time_exponent']:.2f})")
    a1.loglog(x, [r["work_s"] for r in rows], "^-", label=f"trace tasks, without start-up (exponent {doc['work_time_exponent']:.2f})")
    a1.loglog(x, [r["wall_s"] for r in rows], "s--", label="whole build, wall")
    a1.set_xlabel("receivers")
    a1.set_ylabel("time [s]")
    a1.set_title(f"time vs size ({doc['cells']} cells)")
    a1.grid(True, which="both", alpha=0.3)
    a1.legend()
    a2.semilogx(x, [r["client_peak_rss_mb"] for r in rows], "o-", label="client (twin build process)")
    a2.semilogx(x, [r["worker_peak_rss_mb"] for r in rows], "s-", label="largest Dask worker")
    a2.set_xlabel("receivers")
    a2.set_ylabel("peak RSS [MB]")
    a2.set_ylim(0, 1.15 * max(max(r["client_peak_rss_mb"], r["worker_peak_rss_mb"]) for r in rows))
    a2.set_title(f"memory vs size (exponent {doc['memory_exponent']:.2f})")
    a2.grid(True, which="both", alpha=0.3)
    a2.legend()
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, ScalarFormatter

    for ax in (a1, a2):  # ticks at the measured sizes only, plain numbers (no overlapping minor labels)
        ax.xaxis.set_major_locator(FixedLocator(x))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    a1.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    a1.yaxis.set_major_formatter(ScalarFormatter())
    a1.yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def register(bench_app, handle_errors, out) -> None:
    """Add ``twin bench scale`` to the bench command group (objects passed in: no import of the CLI module)."""
    @bench_app.command("scale")
    @handle_errors
    def scale(
        receivers: Annotated[str, typer.Option("--receivers", help="Receiver counts, one build each, e.g. 250,1000,4000.")] = "250,1000,4000",
        sites: Annotated[int, typer.Option("--sites", help="Tower sites of the bundled Paris file to use (3 cells each).")] = DEFAULT_SITES,
        config: Annotated[Path | None, typer.Option("--config", help="TOML build config used for every size.")] = None,
        views: Annotated[str | None, typer.Option("--views", help="Comma-separated views built after each trace.")] = None,
        workdir: Annotated[Path | None, typer.Option("--workdir", help="Where the builds go (default: a new temporary folder).")] = None,
        json_path: Annotated[Path | None, typer.Option("--json", help="Write the table and exponents as JSON.")] = None,
        plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of time and peak RSS against size.")] = None,
    ) -> None:
        """Time and peak memory of one build per receiver count; fitted growth exponents (time ~ linear, memory ~ flat)."""
        sizes = parse_sizes(receivers)
        if sites < 1:
            raise TwinInputError(f"--sites must be >= 1, got {sites}", field="--sites", fix="e.g. --sites 2")
        out.print(f"{'receivers':>9} {'pairs':>7} {'links':>7} {'trace_s':>8} {'startup':>8} {'work_s':>8} {'views_s':>8} {'pairs/s':>8} "
                  f"{'client_MB':>9} {'worker_MB':>9} {'B/link':>8}", highlight=False)

        def show(r: ScaleRow) -> None:
            out.print(f"{r.receivers:9d} {r.pairs:7d} {r.links_with_paths:7d} {r.trace_s:8.1f} {r.startup_s:8.1f} {r.work_s:8.1f} {r.views_s:8.1f} "
                      f"{r.pairs_per_s:8.1f} {r.client_peak_rss_mb:9.0f} {r.worker_peak_rss_mb:9.0f} {r.bytes_per_link:8.0f}",
                      highlight=False)

        doc = bench_scale(sizes, sites=sites, config=config, views=views, workdir=workdir, json_path=json_path,
                          plot_path=plot, progress=show)
        out.print(f"Dask overhead {doc['dask_overhead_ms_per_task']:.1f} ms/task; largest build: {doc['trace_tasks_largest']} "
                  f"trace tasks of {doc['trace_s_per_task_largest']:.2f} s (overhead {100 * (doc['overhead_share_largest'] or 0):.2f}%); "
                  f"tasks of >= {doc['min_task_s_for_5pct']:.2f} s (~{doc['min_links_per_task_for_5pct']} links at this rate) "
                  "keep the scheduler under 5%", highlight=False)
        out.print(f"time exponent {doc['time_exponent']:.2f} for the trace stage, {doc['work_time_exponent']:.2f} for its tasks "
                  f"without the start-up (1 = linear); memory exponent {doc['memory_exponent']:.2f} "
                  f"(0 = flat); client RSS {100 * doc['client_memory_growth']:+.0f}%, worker RSS "
                  f"{100 * (doc['worker_memory_growth'] or 0):+.0f}% from {sizes[0]} to {sizes[-1]} receivers", highlight=False)
