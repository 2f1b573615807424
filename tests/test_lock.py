"""Issue 9: one build per directory (the second exits 2 naming the holder), leftovers of dead runs removed,
SIGTERM handled like Ctrl-C. Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twin.errors import TwinInputError
from twin.lock import BuildLock, lock_path, remove_stale

HOLD = """
import sys, time
from twin.lock import BuildLock
with BuildLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _child(code: str, *args: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line.strip() in ("held", "ready"), (line, p.stderr.read() if p.poll() is not None else "")
    return p


def test_second_build_is_refused_naming_the_holder_and_a_killed_holder_frees_it(tmp_path):
    dest = tmp_path / "out" / "paris"
    p = _child(HOLD, str(dest))
    try:
        with pytest.raises(TwinInputError) as ei:
            BuildLock(dest).acquire()
        e = ei.value
        assert e.exit_code == 2 and f"pid {p.pid}" in str(e) and e.field == "--out" and f"kill {p.pid}" in e.fix
    finally:
        p.kill()
        p.wait()
    with BuildLock(dest) as lk:  # the kernel released the dead holder's lock
        assert lk.path == lock_path(dest) and str(os.getpid()) in lk.path.read_text()
    assert not dest.exists()  # the lock lives beside the build, not in it


def test_lock_is_exclusive_within_one_process(tmp_path):
    with BuildLock(tmp_path / "b"), pytest.raises(TwinInputError, match="another build"):
        BuildLock(tmp_path / "b").acquire()
    BuildLock(tmp_path / "b").acquire().release()


def test_remove_stale_takes_only_leftovers(tmp_path):
    dest = tmp_path / "paris"
    keep = ["twin.json", "cir/part-00000.parquet", "catalog/CURRENT", "catalog/snapshots/000001-x.parquet"]
    stale = ["cir/.part-00001.parquet.k2j3.tmp", "catalog/.CURRENT.ab12.tmp", "views/folded_lte/.p.parquet.zz.tmp"]
    for rel in keep + stale:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text("x")
    (tmp_path / ".paris.a1b2.staging" / "cir").mkdir(parents=True)
    (tmp_path / ".paris.old-999").mkdir()
    (tmp_path / ".other.c3.staging").mkdir()  # another build's: not ours to remove
    (tmp_path / "sibling").mkdir()
    removed = remove_stale(dest)
    assert set(removed) == {".paris.a1b2.staging", ".paris.old-999", *(f"paris/{s}" for s in stale)}
    assert all((dest / k).exists() for k in keep)
    assert (tmp_path / ".other.c3.staging").exists() and (tmp_path / "sibling").exists()
    assert remove_stale(dest) == []


TERM = """
import sys, time
from pathlib import Path
from twin.io import atomic_path
from twin.lock import sigterm_as_interrupt
try:
    with sigterm_as_interrupt(), atomic_path(Path(sys.argv[1]) / "shard.parquet") as tmp:
        tmp.write_text("half")
        print("ready", flush=True)
        time.sleep(60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_sigterm_runs_the_same_cleanup_as_ctrl_c(tmp_path):
    p = _child(TERM, str(tmp_path))
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "interrupted" in out and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # the temporary file was removed, nothing half-written is left


def test_disk_full_is_one_message_naming_the_file(tmp_path, monkeypatch):
    """ENOSPC from the kernel (writing to /dev/full) inside an atomic write: exit 1, the path and the fix."""
    from typer.testing import CliRunner

    import twin.ingest.stage as stage
    from twin.cli import app
    from twin.io import atomic_path

    if not Path("/dev/full").is_char_device():
        pytest.skip("no /dev/full here")

    def full(root, *a, **k):
        with atomic_path(Path(root) / "buildings.parquet") as tmp:
            tmp.unlink()
            tmp.symlink_to("/dev/full")  # the kernel answers every write with ENOSPC
            with open(tmp, "wb") as f:  # plain open: writes to the device, never replaces it
                f.write(b"x" * (1 << 16))

    monkeypatch.setattr(stage, "_ingest_into", full)
    r = CliRunner().invoke(app, ["ingest", "--city", "paris", "--offline", "--out", str(tmp_path / "out")])
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    msg = " ".join(r.stderr.split())
    assert "No space left on device" in msg and "buildings.parquet" in msg and "free space" in msg
    assert not (tmp_path / "out").exists()  # the staging directory and the new --out folder are gone
