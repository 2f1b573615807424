"""A build on an external Dask cluster whose worker cannot see the build directory (no shared file system).

The worker runs in its own mount namespace with an empty tmpfs over the build's parent folder (``unshare
--mount``, as root), so the client's scene and shard paths do not exist there: the scene must reach it as a
bundle and the rows must come back to the client, which writes and registers the shards; view tasks get their
CIR rows, receivers and towers with the task.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from importlib import resources

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or sys.platform != "linux",
    reason="needs root and util-linux unshare for a private mount namespace",
)


def _wait_for(path, seconds: float = 60.0) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if path.exists() and path.stat().st_size > 0:
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
        time.sleep(0.2)
    raise TimeoutError(f"{path} did not appear")


def test_build_on_a_worker_that_cannot_see_the_build_directory(tmp_path):
    from distributed import Client

    from twin.catalog import Catalog
    from twin.cli import app
    from twin.llvm import ensure_llvm_env

    ensure_llvm_env()
    hidden = tmp_path / "hidden"  # the build goes here; the worker sees an empty tmpfs instead
    hidden.mkdir()
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ, TWIN_DRJIT_THREADS="1", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(sched_file), "--port", "0",
             "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = _wait_for(sched_file)["address"]
        worker_cmd = (f"mount -t tmpfs tmpfs {hidden} && exec {sys.executable} -m distributed.cli.dask_worker {address} "
                      "--nthreads 1 --nworkers 1 --no-dashboard")
        procs.append(subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", worker_cmd], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
            seen = c.run(os.path.exists, str(hidden / "probe"))
            (hidden / "probe").write_text("x")
            assert not any(c.run(os.path.exists, str(hidden / "probe")).values()), "the worker must not see the build directory"
            assert seen
        towers = tmp_path / "towers.csv"  # one site, three cells on one carrier: one kernel to compile
        lines = (resources.files("twin") / "data" / "paris_towers.csv").read_text().splitlines()
        towers.write_text("\n".join(lines[:4]) + "\n")
        cfg = tmp_path / "c.toml"
        cfg.write_text("[trace]\nsamples_per_src = 5000\nmax_depth = 1\ndiffraction = false\n")
        r = CliRunner().invoke(app, ["build", "--city", "paris", "--offline", "--towers", str(towers), "--receivers", "4", "--out", str(hidden),
                                     "--config", str(cfg), "--scheduler-address", address,
                                     "--views", "cir_taps,folded_lte"])
        assert r.exit_code == 0, r.output
        root = hidden / "paris"
        entries = Catalog(root).entries(view="cir")
        assert entries.num_rows > 0 and sum(entries.column("rows").to_pylist()) > 0
        for view in ("cir_taps", "folded_lte"):  # view tasks get their CIR rows with the task, not a path
            v = Catalog(root).entries(view=view)
            assert v.num_rows > 0 and sum(v.column("rows").to_pylist()) > 0, view
        assert Catalog(root).verify().ok
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
