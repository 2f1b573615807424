"""One build at a time per build directory; leftovers of dead runs removed; SIGTERM handled like Ctrl-C.

:class:`BuildLock` is an exclusive, non-blocking POSIX ``flock`` on ``OUT/.<name>.lock`` (beside the build
directory, so it also covers the staging directory of a new or ``--overwrite`` build). The holder writes its
pid, host, command and start time into the lock file; a second build of the same directory exits 2 naming
them. The kernel drops the lock when its process dies, so a killed build never leaves a lock behind.

While holding the lock, :func:`remove_stale` deletes what dead runs of this build left: temporary files of the
atomic writers (``.<name>.<random>.tmp``), staging directories (``.<name>.<random>.staging``) and old copies
(``.<name>.old-<pid>``). No live process can own them: every writer of this build holds the lock.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError

LOCK_SUFFIX = ".lock"


def lock_path(dest: str | os.PathLike) -> Path:
    """``OUT/.<name>.lock`` for the build directory ``OUT/<name>``."""
    d = Path(dest)
    return d.parent / f".{d.name}{LOCK_SUFFIX}"


def _holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


class BuildLock:
    """Exclusive lock of the build directory ``dest`` (a context manager); see the module docstring."""

    def __init__(self, dest: str | os.PathLike) -> None:
        self.dest = Path(dest)
        self.path = lock_path(self.dest)
        self._fd: int | None = None
        self._made: list[Path] = []

    def acquire(self) -> BuildLock:
        import fcntl

        from twin.io import make_parents

        self._made = make_parents(self.path)
        got = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                break
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                got = True
                break
            os.close(fd)  # the holder removed the file as we opened it: lock the new one
        if not got:
            from twin.io import remove_empty

            remove_empty(self._made)
            h = _holder(self.path)
            who = f"pid {h.get('pid', '?')}" + (f" on {h['host']}" if h.get("host") else "")
            since = f" since {h['started_at']}" if h.get("started_at") else ""
            cmd = f" ({h['command']})" if h.get("command") else ""
            raise TwinInputError(
                f"another build is writing this directory: {who}{since}{cmd}",
                file=self.dest,
                field="--out",
                fix=f"wait for it to finish or stop it (kill {h.get('pid', '<pid>')}); or build into another --out/--name",
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file (while still holding it), unlock, and remove the folders acquire() created if empty."""
        if self._fd is None:
            return
        import fcntl

        from twin.io import remove_empty

        with contextlib.suppress(OSError):
            self.path.unlink()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        remove_empty(self._made)

    def __enter__(self) -> BuildLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_temp_name(name: str) -> bool:
    """Names the atomic writers use while in flight (``.<name>.<rand>.tmp``, ``.staging``, ``.old-<pid>``)."""
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".staging") or ".old-" in name)


def remove_stale(dest: str | os.PathLike) -> list[str]:
    """Remove the leftovers of dead runs of the build ``dest`` (call it holding :class:`BuildLock`).

    Staging directories and old copies of ``dest`` beside it, and temporary files anywhere inside it.
    Returns the paths removed (relative to ``dest``'s parent).
    """
    d = Path(dest)
    removed: list[str] = []
    parent = d.parent
    if parent.is_dir() and not d.exists():
        # a swap interrupted between its two renames: the old copy is the build, put it back
        olds = sorted(p for p in parent.iterdir() if p.name.startswith(f".{d.name}.old-") and p.is_dir())
        if olds:
            os.replace(olds[-1], d)
    if parent.is_dir():
        for p in parent.iterdir():
            if p.name.startswith(f".{d.name}.") and is_temp_name(p.name) and not p.name.endswith(LOCK_SUFFIX):
                _remove(p)
                removed.append(p.name)
    if d.is_dir() and not d.is_symlink():
        for dirpath, dirnames, filenames in os.walk(d):
            for n in [*dirnames]:
                if is_temp_name(n):
                    _remove(Path(dirpath) / n)
                    removed.append(os.path.relpath(os.path.join(dirpath, n), parent))
                    dirnames.remove(n)
            for n in filenames:
                if is_temp_name(n):
                    _remove(Path(dirpath) / n)
                    removed.append(os.path.relpath(os.path.join(dirpath, n), parent))
    return sorted(removed)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM (``kill PID``) raises KeyboardInterrupt in the main thread, as Ctrl-C does, so the
    same clean-up runs (temporary files removed, finished shards kept, exit 130). A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def build_session(dest: str | os.PathLike) -> Iterator[list[str]]:
    """Hold the lock of the build ``dest``, remove the leftovers of dead runs, treat SIGTERM as Ctrl-C.

    Yields the leftovers removed. Every command that writes into a build directory runs inside one.
    """
    import logging

    with BuildLock(dest), sigterm_as_interrupt():
        removed = remove_stale(dest)
        if removed:
            logging.getLogger(__name__).warning("removed %d leftover(s) of an interrupted run: %s",
                                                len(removed), ", ".join(removed[:5]))
        yield removed
