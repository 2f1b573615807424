"""Paper reproductions (``twin reproduce PAPER --scale small|paper --out DIR``).

A reproduction is a function registered in :data:`REPRODUCTIONS` under the paper's name; it builds the paper's
scenario with twin under ``DIR``, trains the paper's method and its comparison methods, and returns
:class:`Row` s. :func:`run_reproduction` writes ``DIR/results.json`` (``{"paper", "scale", "rows": [...]}``) and
``DIR/results.md`` (the same table) and returns the rows. Paper figures appear only in ``Row.paper``; ``ours``
is measured.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from twin.registry import Registry

SCALES = ("small", "paper")


def _load_all() -> None:
    from twin.baselines import BASELINES

    BASELINES.names()  # importing every module of the package registers the reproductions too


class _Reproductions(Registry[Callable[..., list["Row"]]]):
    _all_loaded = False  # a Registry without builtin modules starts with _loaded = True: keep a flag of our own

    def _load(self) -> None:
        if not self._all_loaded:
            self._all_loaded = True
            _load_all()


REPRODUCTIONS: Registry[Callable[..., list[Row]]] = _Reproductions("paper", field="PAPER")


@dataclass
class Row:
    """One line of a reproduction table. ``ours``/``paper`` in ``unit`` (``paper`` None where the paper gives no
    figure); ``run`` the run directory relative to the output directory ('' when none); ``note`` a short
    measured reason where ours and the paper's differ, or the conditions of the row."""

    experiment: str
    method: str
    metric: str
    unit: str
    ours: float | None
    paper: float | None = None
    run: str = ""
    note: str = ""


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    a = abs(v)
    return f"{v:.3g}" if a < 1000 else f"{v:.0f}"


def markdown_table(rows: Sequence[Row]) -> str:
    head = "| experiment | method | metric | ours | paper | unit | run | note |\n|---|---|---|---|---|---|---|---|\n"
    body = "".join(f"| {r.experiment} | {r.method} | {r.metric} | {_fmt(r.ours)} | {_fmt(r.paper)} | {r.unit} | "
                   f"{r.run} | {r.note} |\n" for r in rows)
    return head + body


def write_results(out: Path, paper: str, scale: str, rows: Sequence[Row], *, seconds: float | None = None,
                  extra: dict | None = None) -> tuple[Path, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def clean(v):
        return None if isinstance(v, float) and not math.isfinite(v) else v

    doc = {"paper": paper, "scale": scale, "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in rows]}
    if seconds is not None:
        doc["seconds"] = round(seconds, 1)
    if extra:
        doc.update(extra)
    pj = out / "results.json"
    pj.write_text(json.dumps(doc, indent=2) + "\n")
    pm = out / "results.md"
    t = f" in {seconds:.0f} s" if seconds is not None else ""
    pm.write_text(f"# twin reproduce {paper} --scale {scale}{t}\n\n" + markdown_table(rows))
    return pj, pm


def print_table(rows: Sequence[Row], *, title: str = "", console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    t = Table(title=title or None)
    for c in ("experiment", "method", "metric", "ours", "paper", "unit", "note"):
        t.add_column(c, justify="right" if c in ("ours", "paper") else "left", overflow="fold")
    for r in rows:
        t.add_row(r.experiment, r.method, r.metric, _fmt(r.ours), _fmt(r.paper), r.unit, r.note)
    con.print(t)


def run_reproduction(paper: str, scale: str, out: str | Path, *, device: str = "cpu", console=None) -> list[Row]:
    from twin.errors import TwinInputError

    if scale not in SCALES:
        raise TwinInputError(f"unknown scale {scale!r}", field="--scale", fix=f"use one of: {', '.join(SCALES)}")
    fn = REPRODUCTIONS.get(paper)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = fn(scale, out, device=device)
    dt = time.perf_counter() - t0
    write_results(out, paper, scale, rows, seconds=dt)
    print_table(rows, title=f"{paper} (scale {scale}, {dt:.0f} s)", console=console)
    return rows


__all__ = ["REPRODUCTIONS", "SCALES", "Row", "markdown_table", "print_table", "run_reproduction", "write_results"]
