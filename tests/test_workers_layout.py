"""The local cluster's layout, and the same CIR shards from one worker and from two."""

from __future__ import annotations

from importlib import resources

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from twin.cluster import local_layout
from twin.config import DaskConfig


def test_layout_follows_the_machine():
    cpu = local_layout(DaskConfig(), gpus=0)  # the deterministic default: one single-threaded worker per core
    assert cpu.workers == cpu.cpus and cpu.gpus == 0 and cpu.drjit_threads == 1
    gpu = local_layout(DaskConfig(), gpus=4)
    assert gpu.workers == 4 and "4 GPU" in gpu.describe()
    assert local_layout(DaskConfig(workers=2, drjit_threads=1), gpus=0).workers == 2
    fast = local_layout(DaskConfig(workers=1, drjit_threads=0), gpus=0)  # one worker owning every core
    assert fast.workers == 1 and fast.drjit_threads == fast.cpus


def _cir(root) -> pa.Table:
    files = sorted((root / "cir").glob("*.parquet"))
    t = pa.concat_tables([pq.read_table(f) for f in files])
    return t.sort_by("link_id")


def test_same_shards_on_one_and_two_workers(tmp_path):
    from twin.cli import app

    towers = tmp_path / "towers.csv"
    lines = (resources.files("twin") / "data" / "paris_towers.csv").read_text().splitlines()
    towers.write_text("\n".join(lines[:7]) + "\n")  # two sites, six cells, two carriers
    outs = {}
    for workers in (1, 2):
        cfg = tmp_path / f"w{workers}.toml"
        cfg.write_text("[trace]\nsamples_per_src = 5000\nmax_depth = 2\ncells_per_task = 3\nreceivers_per_task = 4\n"
                       f"[dask]\nworkers = {workers}\ndrjit_threads = 1\n")
        r = CliRunner().invoke(app, ["build", "--city", "paris", "--offline", "--towers", str(towers), "--receivers", "8",
                                     "--out", str(tmp_path / f"o{workers}"), "--config", str(cfg)])
        assert r.exit_code == 0, r.output
        outs[workers] = _cir(tmp_path / f"o{workers}" / "paris")
    a, b = outs[1], outs[2]
    assert a.num_rows > 0 and len(list((tmp_path / "o1" / "paris" / "cir").glob("*.parquet"))) >= 4  # several tasks
    for col in ("link_id", "num_paths", "tau_s", "a_re", "a_im", "path_gain_db"):
        assert a.column(col).equals(b.column(col)), col
