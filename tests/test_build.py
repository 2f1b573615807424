"""`twin build` end to end on the embedded Paris default (small): catalog, resume, worker loss, dry run, config errors."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.schema import CIR_COLUMNS

runner = CliRunner()
C0 = 299_792_458.0

SMALL = """
[trace]
max_depth = 2
samples_per_src = 20000
max_num_paths_per_src = 20000
receivers_per_task = 3
cells_per_task = 12
diffraction = false

[views.bistatic_echo]
num_snapshots = 1
samples_per_src = 5000
samples_per_sp = 5000
"""


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small_cfg(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "small.toml"
    p.write_text(SMALL)
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory, small_cfg) -> Path:
    out = tmp_path_factory.mktemp("build")
    r = run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 6, "--config", small_cfg)
    assert r.exit_code == 0, r.output + r.stderr
    return out


def _cir(root: Path):
    import pandas as pd

    paths = [json.loads(line)["path"] for line in run("catalog", "ls", root, "--json", "--view", "cir").output.splitlines()
             if line.strip()]
    return pd.concat([pq.read_table(root / p).to_pandas() for p in paths], ignore_index=True), paths


def test_catalog_rows_add_up_and_verify(built: Path):
    root = built / "paris"
    every = [json.loads(x) for x in run("catalog", "ls", root, "--json").output.splitlines() if x.strip()]
    assert sorted({e["view"] for e in every}) == ["cir", "split"]  # the [split] table the build writes
    lines = [e for e in every if e["view"] == "cir"]
    assert lines
    for k in ("path", "rows", "bytes", "sha256"):
        assert all(k in e for e in lines)
    m = json.loads((root / "twin.json").read_text())
    assert sum(e["rows"] for e in lines) == m["stages"]["trace"]["links_with_paths"] > 0
    plan = json.loads((root / "render_plan.json").read_text())
    assert len(lines) == len(plan["tasks"])
    assert run("catalog", "verify", root).exit_code == 0
    assert (root / "receivers.parquet").exists() and (root / "previews" / "path_gain.png").exists()


def test_shards_schema_metadata_and_los_delay(built: Path):
    root = built / "paris"
    df, paths = _cir(root)
    assert list(df.columns)[: len(CIR_COLUMNS)] == list(CIR_COLUMNS)
    md = pq.read_schema(root / paths[0]).metadata
    for k in (b"twin.schema_version", b"twin.config_hash", b"twin.scene_hash", b"twin.code_version"):
        assert md.get(k), k
    assert df["link_id"].is_unique
    los = df[df["los"]]
    assert len(los) > 0
    for r in los.itertuples():
        assert abs(min(r.tau_s) - r.los_distance_m / C0) < 0.1e-9


def test_query_answers(built: Path):
    r = run("catalog", "query", built / "paris", "select count(*) as n from cir", "--json")
    assert r.exit_code == 0, r.stderr
    n = json.loads(r.output.strip().splitlines()[0])["n"] if r.output.strip().startswith("{") else json.loads(r.output)[0]["n"]
    df, _ = _cir(built / "paris")
    assert n == len(df)


def test_rerun_traces_nothing(built: Path, small_cfg):
    root = built / "paris"
    before = (root / "catalog" / "CURRENT").read_bytes()
    r = run("build", "--city", "paris", "--offline", "--out", built, "--receivers", 6, "--config", small_cfg)
    assert r.exit_code == 0, r.stderr
    assert "traced 0 pairs" in " ".join(r.output.split())
    assert (root / "catalog" / "CURRENT").read_bytes() == before


def test_dry_run_traces_nothing(tmp_path, small_cfg):
    r = run("build", "--city", "paris", "--offline", "--out", tmp_path, "--receivers", 4, "--config", small_cfg, "--dry-run")
    assert r.exit_code == 0, r.stderr
    text = " ".join(r.output.split())
    assert "dry run" in text and "nothing traced" in text
    assert not (tmp_path / "paris").exists()  # a dry run writes nothing


@pytest.mark.parametrize(
    "toml,key",
    [("[trace]\nmax_depth = -1\n", "max_depth"), ("[trace]\nsampels_per_src = 10\n", "sampels_per_src"), ("[receivers]\ncount = 'many'\n", "count"), ("[tracing]\n", "tracing")],
)
def test_bad_config_values_exit_2(tmp_path, toml, key):
    p = tmp_path / "bad.toml"
    p.write_text(toml)
    r = run("build", "--city", "paris", "--offline", "--out", tmp_path / "o", "--config", p)
    assert r.exit_code == 2
    assert key in r.stderr and "bad.toml" in r.stderr
    assert "Traceback" not in r.stderr + r.output


def test_resume_after_interrupted_build(tmp_path, small_cfg, monkeypatch):
    """A build that dies after two shards resumes: no task traced twice, nothing missing."""
    from twin import pipeline
    from twin.catalog import Catalog
    from twin.config import load_build_config

    cfg = load_build_config(small_cfg, {"receivers": {"count": 6}})
    src = pipeline.BuildingSource.from_options(city="paris", offline=True)
    import twin.cluster as dist

    real = dist.run_jobs
    seen: list[str] = []

    def dying(client, jobs, on_result, **kw):
        def cb(job, res):
            on_result(job, res)
            seen.append(job.key)
            if len(seen) == 2:
                raise KeyboardInterrupt  # the user hits Ctrl-C after two shards

        return real(client, jobs, cb, **kw)

    monkeypatch.setattr(dist, "run_jobs", dying)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_build(src, tmp_path, config=cfg)
    root = tmp_path / "paris"
    first = Catalog(root).entries(view="cir").to_pandas().set_index("task_key")
    assert len(first) == 2
    monkeypatch.setattr(dist, "run_jobs", real)
    res = pipeline.run_build(src, tmp_path, config=cfg)
    assert res.tasks_skipped == 2
    plan = json.loads((root / "render_plan.json").read_text())
    keys = {t["key"] for t in plan["tasks"]}
    assert Catalog(root).task_keys("cir") == keys
    # the two finished shards were not traced again: same files, same registration
    after = Catalog(root).entries(view="cir").to_pandas().set_index("task_key")
    for k in first.index:
        assert after.loc[k, "sha256"] == first.loc[k, "sha256"]
        assert after.loc[k, "created_at"] == first.loc[k, "created_at"]
    n_links = {t["key"]: len(t["cell_ids"]) * len(t["rx_ids"]) for t in plan["tasks"]}
    assert res.links_traced == sum(v for k, v in n_links.items() if k not in first.index)
    df, _ = _cir(root)
    assert df["link_id"].is_unique
    assert Catalog(root).verify().ok


def test_killed_worker_loses_and_duplicates_nothing(tmp_path, small_cfg):
    """SIGKILL one of two Dask worker processes mid-build: every task lands once, link ids unique."""
    from twin import pipeline
    from twin.catalog import Catalog
    from twin.cluster import dask_client
    from twin.config import DaskConfig, load_build_config

    cfg = load_build_config(small_cfg, {"receivers": {"count": 9}, "dask": {"workers": 2}})
    src = pipeline.BuildingSource.from_options(city="paris", offline=True)
    pipeline.run_ingest(src, tmp_path, config=cfg)
    root = tmp_path / "paris"
    killed: list[int] = []
    with dask_client(DaskConfig(workers=2)) as client:
        pids = list(client.run(os.getpid).values())

        def killer():
            deadline = time.time() + 300
            while time.time() < deadline:
                if (root / "cir").exists() and any((root / "cir").glob("part-*.parquet")):
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    return
                time.sleep(0.05)

        th = threading.Thread(target=killer, daemon=True)
        th.start()
        res = pipeline.trace_build(root, cfg, client=client)
        th.join(timeout=1)
    assert killed, "the build finished before a worker could be killed"
    plan = json.loads((root / "render_plan.json").read_text())
    keys = [t["key"] for t in plan["tasks"]]
    assert sorted(Catalog(root).task_keys("cir")) == sorted(keys)
    assert res.tasks_total == len(keys)
    df, paths = _cir(root)
    assert len(paths) == len(set(paths)) == len(keys)
    assert df["link_id"].is_unique
    assert Catalog(root).verify().ok


def test_views_on_the_build(built: Path):
    """All five views build on the Paris build, register shards with shapes/axes metadata, labels filled."""
    import pyarrow as pa

    root = built / "paris"
    names = ["folded_lte", "spike_train", "cir_taps", "tb_fingerprint", "bistatic_echo"]
    for name in names:
        r = run("view", "build", name, root)
        assert r.exit_code == 0, (name, r.output, r.stderr)
    lines = [json.loads(x) for x in run("catalog", "ls", root, "--json").output.splitlines() if x.strip()]
    views = {e["view"] for e in lines}
    assert set(names) <= views
    for e in lines:
        if e["view"] in ("cir", "split"):
            continue
        t = pq.read_table(root / e["path"])
        assert t.num_rows > 0, e["view"]
        tensors = [f for f in t.schema if pa.types.is_fixed_size_list(f.type)]
        assert tensors, e["view"]
        for f in tensors:
            md = f.metadata or {}
            shape, axes = json.loads(md[b"shape"]), json.loads(md[b"axes"])
            assert len(shape) == len(axes)
            inner, depth = f.type, 0
            while pa.types.is_fixed_size_list(inner):
                assert inner.list_size == shape[depth]
                inner, depth = inner.value_type, depth + 1
            assert depth == len(shape)
        for f in t.schema:
            if not pa.types.is_fixed_size_list(f.type) and not pa.types.is_list(f.type):
                assert t.column(f.name).null_count == 0, (e["view"], f.name)
    assert run("catalog", "verify", root).exit_code == 0
    # re-running a view builds nothing new
    before = (root / "catalog" / "CURRENT").read_bytes()
    assert run("view", "build", "spike_train", root).exit_code == 0
    assert (root / "catalog" / "CURRENT").read_bytes() == before


def test_existing_cluster_by_scheduler_address(tmp_path, small_cfg):
    """--scheduler-address sends the work to an existing Dask cluster (the worker plugin sets it up)."""
    from distributed import LocalCluster

    from twin.llvm import ensure_llvm_env

    ensure_llvm_env()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        r = run("build", "--city", "paris", "--offline", "--out", tmp_path, "--receivers", 2, "--config", small_cfg,
                "--scheduler-address", cluster.scheduler_address)
        assert r.exit_code == 0, r.output + r.stderr
        assert "links with paths" in r.output
    assert run("catalog", "verify", tmp_path / "paris").exit_code == 0
