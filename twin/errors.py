"""Errors that the CLI turns into a clear message and an exit code (2 for bad input), never a traceback."""

from __future__ import annotations

from pathlib import Path


class TwinError(Exception):
    """Base class of the project's own errors."""

    exit_code = 1


class TwinInputError(TwinError):
    """Bad input from the user: names the file, the row or object, the field, and the fix.

    Exit code 2. ``row`` is 1-based as a spreadsheet shows it (header is row 1, first data row is 2) when
    it comes from a CSV; for other objects it is an id such as an OSM way id.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(f"{self.file}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        head = ": ".join([", ".join(where), self.message]) if where else self.message
        if self.fix:
            head += f"\n  fix: {self.fix}"
        return head


class TwinConfigError(TwinInputError):
    """A bad configuration value (CLI option or TOML key)."""


class TwinEnvironmentError(TwinInputError):
    """The machine refused the work (disk full, read-only or forbidden path, out of memory): exit 1, one message
    naming the path or address and the fix; what was already written stays valid (atomic writes)."""

    exit_code = 1


_OS_FIXES = {
    "ENOSPC": "free space on that file system (or pass another --out); finished shards are kept and a re-run resumes",
    "EDQUOT": "free space in your quota (or pass another --out); finished shards are kept and a re-run resumes",
    "EROFS": "the file system is read-only: pass a writable --out",
    "EACCES": "check the permissions of that path, or pass another --out",
    "EPERM": "check the permissions of that path, or pass another --out",
    "EMFILE": "raise the open-file limit (ulimit -n) or use fewer workers",
}


def environment_error(e: BaseException) -> TwinEnvironmentError | None:
    """A :class:`TwinEnvironmentError` for an OSError the machine raised (disk full, read-only, ...) or a
    MemoryError; None for anything else (a bug, to be shown as one)."""
    import errno

    if isinstance(e, MemoryError):
        return TwinEnvironmentError("out of memory", fix="use fewer receivers per task ([trace] receivers_per_task), "
                                    "fewer workers, or a machine with more memory")
    if isinstance(e, OSError) and e.errno is not None:
        name = errno.errorcode.get(e.errno, "")
        if name in _OS_FIXES:
            return TwinEnvironmentError(e.strerror or name, file=e.filename, fix=_OS_FIXES[name])
    return None
