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
