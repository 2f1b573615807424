"""One path resolver for every reader of a build: catalog query/show/verify, view inputs, resume, publish, ``twin.open``.

A path stored in a build (a catalog row, a ``twin.json`` entry) is POSIX, relative to the build directory,
without ``..``, and once resolved it stays inside the build: a symbolic link that leads out of the build is
refused, as is a missing file. A bad path *passed by the user* is a :class:`~twin.errors.TwinInputError`
(exit 2); a bad path *found in the build* means the build is damaged or hand-edited and raises
:class:`DamagedBuildError` (exit 1). Both name the build, the path and the fix; neither is a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from twin.errors import TwinInputError

_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_DAMAGED_FIX = "run `twin catalog verify` on the build; rebuild it (`twin build ... --overwrite`) or re-publish it from a good build"


class DamagedBuildError(TwinInputError):
    """A path found in the build (catalog row, manifest) is unsafe or missing: the build is damaged. Exit 1."""

    exit_code = 1


def check_relpath(
    rel: str | os.PathLike,
    *,
    file: Any = None,
    field: str = "path",
    suffix: str | None = None,
    damaged: bool = True,
) -> str:
    """``rel`` normalised to a POSIX path relative to a build; absolute paths, drives and ``..`` refused.

    ``suffix`` (e.g. ``".parquet"``) is required when given. ``damaged`` picks the error: True (the path
    was read from the build) raises :class:`DamagedBuildError`, False (the user passed it) TwinInputError.
    """
    err = DamagedBuildError if damaged else TwinInputError
    s = os.fspath(rel).replace("\\", "/") if isinstance(rel, str | os.PathLike) else ""
    p = PurePosixPath(s)
    if not s or "\x00" in s or p.is_absolute() or ".." in p.parts or _DRIVE_RE.match(s):
        raise err(
            f"path {s or rel!r} is not relative to the build directory (absolute, empty or with '..')",
            file=file,
            field=field,
            fix=_DAMAGED_FIX if damaged else "pass a path relative to the build, e.g. 'cir/part-00000.parquet'",
        )
    if suffix is not None and p.suffix != suffix:
        raise err(
            f"path {s!r} must end in {suffix}",
            file=file,
            field=field,
            fix=_DAMAGED_FIX if damaged else f"name the file '<...>{suffix}'",
        )
    return p.as_posix()


def inside(root: str | os.PathLike, rel: str, *, field: str = "path", damaged: bool = True) -> Path:
    """``root/rel`` after checking that its real path (symlinks resolved) lies inside ``root``'s real path."""
    base = os.path.realpath(root)
    full = Path(root) / rel
    real = os.path.realpath(full)
    if os.path.commonpath([base, real]) != base:
        err = DamagedBuildError if damaged else TwinInputError
        raise err(
            f"{rel} resolves outside the build directory (to {real}); a build holds no links out of itself",
            file=os.fspath(root),
            field=field,
            fix="replace the link with the file itself, or rebuild",
        )
    return full


def resolve(
    root: str | os.PathLike,
    rel: str | os.PathLike,
    *,
    field: str = "path",
    suffix: str | None = None,
    must_exist: bool = True,
    damaged: bool = True,
) -> Path:
    """The local path of the build-relative ``rel``: checked relative, inside ``root``, and (``must_exist``) a file."""
    r = check_relpath(rel, file=root, field=field, suffix=suffix, damaged=damaged)
    full = inside(root, r, field=field, damaged=damaged)
    if must_exist and not full.is_file():
        err = DamagedBuildError if damaged else TwinInputError
        raise err(f"{r} is missing", file=os.fspath(root), field=field, fix=_DAMAGED_FIX)
    return full
