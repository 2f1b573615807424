"""Issue 9 on real builds (Sionna RT + Dask): overwrite keeps the old build on failure, one config per build
directory, corrupted shards re-traced on resume, one build per directory, SIGTERM then re-run, the same
inputs give the same CIR, and a dry run of 1e8 receivers answers in seconds writing nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from twin.cli import app

SMALL = """
[trace]
max_depth = 2
samples_per_src = 20000
max_num_paths_per_src = 20000
receivers_per_task = 3
cells_per_task = 12
diffraction = true
"""
# sites ~700 km from Paris (Monaco): a valid file whose towers all lie outside the Paris area
FAR_TOWERS = "latitude,longitude,MCC,MNC,LAC,CID,ARFCN,PCI\n43.7384,7.4246,208,1,751,1,1501,10\n43.7390,7.4250,208,1,751,2,1501,11\n"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def files(root: Path) -> dict[str, str]:
    out = {}
    for dp, _, fns in os.walk(root):
        for n in fns:
            p = Path(dp) / n
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "small.toml"
    p.write_text(SMALL)
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory, cfg) -> Path:
    out = tmp_path_factory.mktemp("build")
    r = run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 6, "--config", cfg)
    assert r.exit_code == 0, r.output
    return out


def _build_cmd(out: Path, cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "twin", "build", "--city", "paris", "--offline", "--out", str(out),
            "--receivers", "6", "--config", str(cfg), *extra]


# ------------------------------------------------------------------------------------------------- fast


def test_dry_run_of_1e8_receivers_answers_in_seconds_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    r = run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 100_000_000, "--dry-run")
    dt = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    assert "dry run" in r.stdout and "100,000,000 receivers" in r.stdout and "[limits] max_receivers" in r.stdout
    assert dt < 60 and not out.exists()
    r = run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 100_000_000)
    assert r.exit_code == 2 and "max_receivers" in r.stderr and not out.exists()


def _read_only(folder: Path, cmd: list[str]) -> subprocess.CompletedProcess:
    """Run ``cmd`` with ``folder`` bind-mounted read-only in a private mount namespace (root + unshare)."""
    script = f"mount --bind -o ro {folder} {folder} && exec " + " ".join(f"'{c}'" for c in cmd)
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=300)


needs_unshare = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or sys.platform != "linux",
                                   reason="a read-only mount needs root and util-linux unshare")


@needs_unshare
def test_read_only_output_is_one_message_and_nothing_written(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = _read_only(out, [sys.executable, "-m", "twin", "ingest", "--city", "paris", "--offline", "--out", str(out)])
    assert r.returncode == 2, r.stderr
    assert str(out) in r.stderr and "not writable" in r.stderr and "fix:" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


# ------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_overwrite_with_bad_input_keeps_the_old_build(built: Path, cfg: Path, tmp_path):
    root = built / "paris"
    before = files(root)
    far = tmp_path / "far.csv"
    far.write_text(FAR_TOWERS)
    # a bad value: refused before anything is touched
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL + 'polarization = "Q"\n')
    r = run("build", "--city", "paris", "--offline", "--out", built, "--receivers", 6, "--config", bad, "--overwrite")
    assert r.exit_code == 2 and "polarization" in r.stderr
    # a tower file of another area: fails only once the new scene is ingested, in staging
    r = run("build", "--city", "paris", "--offline", "--out", built, "--receivers", 6, "--config", cfg,
            "--towers", far, "--overwrite")
    assert r.exit_code == 2 and "no tower lies in the area" in r.stderr, r.output
    assert files(root) == before
    assert sorted(p.name for p in built.iterdir()) == ["paris"]  # no staging, no lock left behind
    assert run("catalog", "verify", root).exit_code == 0


@pytest.mark.slow
def test_another_config_into_a_build_exits_2(built: Path, tmp_path):
    root = built / "paris"
    before = files(root)
    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace("max_depth = 2", "max_depth = 1"))
    r = run("build", "--city", "paris", "--offline", "--out", built, "--receivers", 6, "--config", other)
    assert r.exit_code == 2 and "[trace]" in r.stderr and "--overwrite" in r.stderr
    r = run("build", "--city", "paris", "--offline", "--out", built, "--receivers", 7, "--config", other.with_name("small.toml")
            if other.with_name("small.toml").exists() else _same(tmp_path))
    assert r.exit_code == 2 and "[receivers]" in r.stderr, r.output
    assert files(root) == before


def _same(tmp_path: Path) -> Path:
    p = tmp_path / "small.toml"
    p.write_text(SMALL)
    return p


@pytest.mark.slow
def test_corrupted_shard_is_traced_again_on_resume(built: Path, cfg: Path):
    root = built / "paris"
    shard = sorted((root / "cir").glob("*.parquet"))[0]
    good = pq.read_table(shard)
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    assert run("catalog", "verify", root).exit_code == 1
    r = run("build", "--city", "paris", "--offline", "--out", built, "--receivers", 6, "--config", cfg)
    assert r.exit_code == 0 and "(1 of " in " ".join(r.stdout.split()), r.output  # only the damaged task
    assert run("catalog", "verify", root).exit_code == 0
    again = pq.read_table(shard)
    assert again.column("link_id").to_pylist() == good.column("link_id").to_pylist()
    assert again.column("num_paths").to_pylist() == good.column("num_paths").to_pylist()


@pytest.mark.slow
def test_two_concurrent_builds_one_runs_one_exits_2(tmp_path, cfg: Path):
    out = tmp_path / "out"
    p = subprocess.Popen(_build_cmd(out, cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / ".paris.lock"
    for _ in range(600):
        if lock.exists() and lock.read_text().strip():
            break
        time.sleep(0.1)
    r = run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 6, "--config", cfg)
    assert r.exit_code == 2 and f"pid {p.pid}" in r.stderr, r.output
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err[-2000:]
    assert run("catalog", "verify", out / "paris").exit_code == 0


@pytest.mark.slow
def test_sigterm_then_rerun_gives_a_clean_build(tmp_path, cfg: Path):
    out = tmp_path / "out"
    p = subprocess.Popen(_build_cmd(out, cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(1200):  # until the trace has written its first shard
        if list((out / "paris" / "cir").glob("part-*.parquet")) if (out / "paris" / "cir").is_dir() else []:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err, err[-3000:]
    r = run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 6, "--config", cfg)
    assert r.exit_code == 0, r.output
    assert run("catalog", "verify", out / "paris").exit_code == 0
    assert sorted(x.name for x in out.iterdir()) == ["paris"]


@pytest.mark.slow
def test_two_fresh_builds_give_identical_cir_shards(tmp_path, cfg: Path, built: Path):
    """Same config, fresh directories: the same shard names and the same bytes (the default layout is
    deterministic: one Dr.Jit thread per worker process)."""
    out = tmp_path / "again"
    r = run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 6, "--config", cfg)
    assert r.exit_code == 0, r.output
    a = {p.name: p for p in (built / "paris" / "cir").glob("*.parquet")}
    b = {p.name: p for p in (out / "paris" / "cir").glob("*.parquet")}
    assert a.keys() == b.keys() and a
    for name in a:
        ta, tb = pq.read_table(a[name]), pq.read_table(b[name])
        assert ta.equals(tb), name
        assert a[name].read_bytes() == b[name].read_bytes(), name
    ma = json.loads((built / "paris" / "twin.json").read_text())
    assert ma["stages"]["trace"]["links_with_paths"] == json.loads((out / "paris" / "twin.json").read_text())["stages"]["trace"]["links_with_paths"]


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_gives_one_message_and_no_worker_traceback(tmp_path, cfg: Path):
    """Ctrl-C in a terminal signals the driver and every Dask worker and nanny (one process group)."""
    out = tmp_path / "out"
    p = subprocess.Popen(_build_cmd(out, cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    for _ in range(1200):
        if (out / "paris" / "cir").is_dir() and list((out / "paris" / "cir").glob("part-*.parquet")):
            break
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert run("build", "--city", "paris", "--offline", "--out", out, "--receivers", 6, "--config", cfg).exit_code == 0
    assert run("catalog", "verify", out / "paris").exit_code == 0


@pytest.mark.slow
@needs_unshare
def test_finished_build_on_read_only_media_is_refused_untouched(built: Path, cfg: Path):
    before = files(built / "paris")
    r = _read_only(built, _build_cmd(built, cfg))
    assert r.returncode == 2 and "not writable" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert files(built / "paris") == before
    # reading a read-only build works: verify and a query
    r = _read_only(built, [sys.executable, "-m", "twin", "catalog", "verify", str(built / "paris")])
    assert r.returncode == 0, r.stdout + r.stderr
