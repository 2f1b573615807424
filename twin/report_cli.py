"""``twin report D``: diagnostic figures of a build (``D/report/index.html`` + PNGs), see
:mod:`twin.datasets.report`. Mounted from :mod:`twin.cli` with :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, handle_errors, out) -> None:
    """Add ``twin report`` to ``app``."""

    @app.command("report")
    @handle_errors
    def report(
        root: Annotated[Path, typer.Argument(help="Twin directory, e.g. out/paris.")],
        out_dir: Annotated[Path | None, typer.Option("--out", help="Folder of the report (default: ROOT/report).")] = None,
    ) -> None:
        """Path-gain maps per carrier, CDFs, per-cell coverage and one example figure per built view."""
        from twin.datasets.report import write_report

        rep = write_report(root, out_dir)
        out.print(f"wrote {rep.index} with {len(rep.figures)} figures", highlight=False, markup=False)
        for s in rep.skipped:
            out.print(f"  not drawn: {s}", highlight=False, markup=False)
