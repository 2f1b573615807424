"""Atomic writes: everything goes to a temporary path first, then an ``os.replace`` moves it into place."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success fsync it and rename it to ``dest``.

    On an exception the temporary file is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; final files get the usual permissions
    try:
        yield tmp_path
        fsync_file(tmp_path)
        os.replace(tmp_path, dest)
        fsync_dir(dest.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(e, OSError) and e.errno is not None and not e.filename:
            raise OSError(e.errno, os.strerror(e.errno), str(dest)) from e  # name the file being written
        raise


def write_bytes_atomic(dest: str | Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: str | Path, obj: Any) -> None:
    write_bytes_atomic(dest, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


@contextlib.contextmanager
def staging_dir(dest: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``dest`` at the end.

    If ``dest`` exists and ``overwrite`` is true it is replaced only after the new one is complete; on an
    exception the staging directory is removed and ``dest`` is untouched.
    """
    dest = Path(dest)
    made = make_parents(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".staging", dir=dest.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if dest.exists():
            if not overwrite:
                raise FileExistsError(dest)
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(made)
        raise


def make_parents(dest: str | Path) -> list[Path]:
    """Create the missing parent folders of ``dest``; returns those created, deepest first (see :func:`remove_empty`)."""
    made = []
    p = Path(dest).parent
    while not p.exists():
        made.append(p)
        p = p.parent
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) that are still empty: a failed command leaves no new empty folder."""
    for p in folders:
        with contextlib.suppress(OSError):
            p.rmdir()


def tree_sha256(folder: str | Path) -> str:
    """sha256 over every file of ``folder`` (relative POSIX name, then bytes), in sorted order: a content hash of a tree."""
    root = Path(folder)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def replace_dir(new: str | Path, dest: str | Path) -> None:
    """Move the finished directory ``new`` to ``dest``, replacing ``dest`` if it exists.

    The old ``dest`` is renamed to ``.<name>.old-<pid>`` first and removed only once ``new`` is in place; a
    crash between the two renames leaves the old build under that name, which the next run of the build puts
    back (:func:`twin.lock.remove_stale`).
    """
    new, dest = Path(new), Path(dest)
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(new, dest)
        fsync_dir(dest.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, dest)
        fsync_dir(dest.parent)
