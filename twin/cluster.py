"""Dask client/cluster handling shared by the trace stage (:mod:`twin.render.stage`) and the view stage
(:mod:`twin.datasets.stage`); a core module (see docs/architecture.md).

A :class:`LocalCluster` by default (one single-threaded worker process per machine on a CPU: Dr.Jit's own
thread pool uses the cores; Mitsuba objects must not be shared across Python threads), or any existing
cluster through ``scheduler_address`` / ``DASK_SCHEDULER_ADDRESS``. A worker plugin selects the Mitsuba
variant and sets Dr.Jit's thread count; scenes are cached per worker process (``twin.render.scene_cache``).
Results stream back with ``as_completed``; the caller writes and registers each shard as it arrives.
Trace tasks get the scene as a bundle (:mod:`twin.render.bundle`) beside its path and return their rows to the
client, which writes the shards: trace workers need not see the build directory. View tasks still read CIR
shards by path (a shared file system, or run views where the build is).

The local layout follows the machine (:func:`local_layout`): on a GPU machine one worker per GPU, each pinned
to its device; on a CPU one worker process whose Dr.Jit pool uses the cores. Inside a worker, BLAS/OpenMP
pools are limited to one thread (threadpoolctl): Dr.Jit or the view kernel owns the cores, and nested pools
oversubscribe them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from twin.config import DaskConfig
from twin.errors import TwinError

log = logging.getLogger(__name__)


class TaskFailed(TwinError):
    """A trace or view task raised on a worker (its traceback is logged with -vv)."""


class TwinWorkerPlugin(WorkerPlugin):
    """Sets up Mitsuba/Dr.Jit once per worker process: libLLVM, the variant (CUDA if a GPU is there), threads.

    With ``gpus > 0`` (a local GPU cluster), worker ``i`` is pinned to GPU ``i % gpus`` before Mitsuba loads.
    """

    name = "twin-setup"

    def __init__(self, drjit_threads: int = 0, gpus: int = 0, blas_threads: int = 1) -> None:
        self.drjit_threads = int(drjit_threads)
        self.gpus = int(gpus)
        self.blas_threads = int(blas_threads)

    def setup(self, worker: Any) -> None:  # pragma: no cover - runs in the worker process
        if self.gpus > 0 and isinstance(worker.name, int) and "mitsuba" not in sys.modules:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(worker.name % self.gpus)
        setup_worker_process(self.drjit_threads, blas_threads=getattr(self, "blas_threads", 1))


#: threadpoolctl's limiter of this process's BLAS/OpenMP pools (kept alive: dropping it does not restore them).
_BLAS_LIMIT: Any = None


def limit_blas_threads(n: int = 1) -> None:
    """Limit every BLAS/OpenMP pool of this process to ``n`` threads (threadpoolctl), once per process."""
    global _BLAS_LIMIT
    if _BLAS_LIMIT is None:
        from threadpoolctl import threadpool_limits

        _BLAS_LIMIT = threadpool_limits(limits=n)


def setup_worker_process(drjit_threads: int = 0, *, blas_threads: int = 1) -> str:
    """Prepare this process for tracing; returns the Mitsuba variant in use. ``blas_threads`` > 0 limits the
    BLAS/OpenMP pools (0: leave them at the libraries' default, one thread per core, which oversubscribes)."""
    from twin.llvm import setup_mitsuba

    if drjit_threads > 0:
        os.environ["TWIN_DRJIT_THREADS"] = str(drjit_threads)
    if blas_threads > 0:
        limit_blas_threads(blas_threads)
    variant = setup_mitsuba()
    n = int(os.environ.get("TWIN_DRJIT_THREADS", "0") or 0)
    if n > 0:
        import drjit as dr

        dr.set_thread_count(n)
    return variant


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _drjit_threads(cfg: DaskConfig, workers: int) -> int:
    if cfg.drjit_threads > 0:
        return cfg.drjit_threads
    return max(1, _cores() // max(1, workers))


@dataclass(frozen=True)
class Layout:
    """How a local cluster uses this machine: worker processes, Dr.Jit threads per worker, GPUs."""

    workers: int
    drjit_threads: int
    gpus: int
    cpus: int

    def describe(self) -> str:
        where = f"{self.gpus} GPU(s), one worker each" if self.gpus else f"{self.cpus} CPU core(s)"
        return f"local Dask cluster: {self.workers} worker(s) x 1 task thread, Dr.Jit {self.drjit_threads} thread(s) each ({where})"


def local_layout(cfg: DaskConfig, gpus: int | None = None) -> Layout:
    """The local cluster for ``cfg`` on this machine. ``workers = 0`` (default): one worker per GPU when CUDA
    devices are visible (each pinned to its device), else one per core (with one Dr.Jit thread each: the
    deterministic default); ``workers > 0`` as given."""
    from twin.llvm import gpu_count

    g = gpu_count() if gpus is None else gpus
    workers = cfg.workers if cfg.workers > 0 else (g if g > 0 else _cores())
    return Layout(workers=workers, drjit_threads=_drjit_threads(cfg, workers), gpus=g, cpus=_cores())


def local_workers(cfg: DaskConfig) -> int:
    """Worker processes of a local cluster for ``cfg`` (see :func:`local_layout`)."""
    return local_layout(cfg).workers


@contextlib.contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Start processes with SIGINT ignored (inherited across exec): Ctrl-C reaches the whole process group,
    but only the driver should act on it (it closes the cluster, which stops the workers) and print one line,
    not every worker and nanny its own KeyboardInterrupt traceback."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def dask_client(cfg: DaskConfig) -> Iterator[Client]:
    """A connected client: the configured/env scheduler, else a fresh LocalCluster closed on exit."""
    from twin.llvm import ensure_llvm_env

    ensure_llvm_env()  # worker processes inherit DRJIT_LIBLLVM_PATH
    address = cfg.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    layout = local_layout(cfg)
    threads = layout.drjit_threads
    os.environ["TWIN_DRJIT_THREADS"] = str(threads)
    if address:
        log.info("connecting to Dask scheduler at %s", address)
        client = _connect(address)
        log.info("Dask dashboard %s", client.dashboard_link)
        client.register_plugin(TwinWorkerPlugin(cfg.drjit_threads, blas_threads=cfg.blas_threads))
        try:
            yield client
        finally:
            client.close()
        return
    log.info("%s", layout.describe())
    with _children_ignore_sigint():
        cluster = LocalCluster(
            n_workers=layout.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: concurrent builds never collide
            memory_limit=cfg.memory_limit,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    log.info("Dask: %d local worker process(es), dashboard %s", layout.workers, client.dashboard_link)
    client.register_plugin(TwinWorkerPlugin(threads, gpus=layout.gpus, blas_threads=cfg.blas_threads))
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        with contextlib.suppress(Exception):
            cluster.close()


def _connect(address: str) -> Client:
    """A client of the scheduler at ``address``; an unreachable one is a TwinInputError naming it (exit 2)."""
    from twin.errors import TwinInputError

    fix = ("start the scheduler (dask scheduler) or correct [dask] scheduler_address / --scheduler-address / "
           "DASK_SCHEDULER_ADDRESS; leave it unset for a local cluster")
    try:
        return Client(address, timeout="15s")
    except (OSError, TimeoutError, ValueError) as e:
        raise TwinInputError(f"cannot reach the Dask scheduler at {address} ({type(e).__name__}: {e})",
                             field="scheduler_address", fix=fix) from None


@dataclass(frozen=True)
class Job:
    """One Dask task: ``fn(*args)``, or ``fn(*make_args())`` where the arguments are made by the driver only when
    the job is submitted (inputs read on the client and shipped, so workers need no shared file system)."""

    key: str  # stable Dask key
    fn: Callable[..., Any]
    args: tuple = ()
    weight: int = 1  # for progress (e.g. links)
    make_args: Callable[[], tuple] | None = None


def run_jobs(
    client: Client,
    jobs: Sequence[Job],
    on_result: Callable[[Job, Any], None],
    *,
    retries: int = 3,
    on_progress: Callable[[Job], None] | None = None,
    max_in_flight: int | None = None,
) -> None:
    """Submit ``jobs``, call ``on_result(job, result)`` in the driver as each finishes (any order).

    At most ``max_in_flight`` jobs are submitted at a time (None: all at once), so jobs whose arguments are made
    on submission (``Job.make_args``) hold only that many inputs in the driver's memory. A job whose worker dies
    is rescheduled by Dask (``distributed.scheduler.allowed-failures``); a job that raises is retried
    ``retries`` times, then its exception propagates and the remaining futures are cancelled. Results already
    handed to ``on_result`` stay written (resume picks up the rest).
    """
    if not jobs:
        return
    by_key = {j.key: j for j in jobs}
    pending = list(reversed(jobs))  # popped from the end: submission in the given order
    limit = len(jobs) if not max_in_flight or max_in_flight <= 0 else int(max_in_flight)

    def submit_one():
        j = pending.pop()
        args = j.make_args() if j.make_args is not None else j.args
        return client.submit(j.fn, *args, key=j.key, retries=retries, pure=False)

    futures = [submit_one() for _ in range(min(limit, len(pending)))]
    queue = as_completed(futures)
    try:
        for fut in queue:
            job = by_key[fut.key]
            try:
                result = fut.result()
            except TwinError:
                raise
            except Exception as e:  # a task's own failure, after its retries
                log.debug("task %s failed", job.key, exc_info=True)
                raise TaskFailed(f"task {job.key} failed after {retries} retries: {type(e).__name__}: {e}") from e
            fut.release()
            if pending:
                nxt = submit_one()
                futures.append(nxt)
                queue.add(nxt)
            on_result(job, result)
            if on_progress:
                on_progress(job)
    except BaseException:
        for f in futures:
            f.cancel()
        raise
