"""CLI commands of data access: ``twin split``, ``twin view ls``, ``twin view drop``.

Mounted from :mod:`twin.cli` with :func:`register` (the objects are passed in, so this module does not import
the CLI module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, view_app: typer.Typer, handle_errors, out) -> None:
    """Add the data-access commands to ``app`` (top level) and ``view_app`` (``twin view ...``)."""

    @app.command("split")
    @handle_errors
    def split(
        root: Annotated[Path, typer.Argument(help="Twin directory, e.g. out/paris.")],
        by: Annotated[str, typer.Option("--by", help="tile | route | cell | random.")] = "tile",
        fractions: Annotated[str, typer.Option("--fractions", help="Fractions of receivers, e.g. 0.8,0.1,0.1.")] = "0.8,0.1,0.1",
        names: Annotated[str, typer.Option("--names", help="Split names, as many as fractions.")] = "train,validation,test",
        tile_m: Annotated[float, typer.Option("--tile-m", help="Tile edge for --by tile, metres.")] = 50.0,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the group shuffle.")] = 0,
    ) -> None:
        """Write the build's split table (rx_id -> split): whole tiles, routes or serving towers go to one split."""
        from twin.config import from_mapping
        from twin.datasets.splits import SplitConfig, parse_fractions, write_split

        cfg = from_mapping(SplitConfig, {"by": by, "fractions": list(parse_fractions(fractions)),
                                         "names": [n.strip() for n in names.split(",")], "tile_m": tile_m, "seed": seed},
                           where="twin split")
        rec = write_split(root, cfg, force=True)
        parts = ", ".join(f"{n}: {rec['receivers'].get(n, 0)} receivers in {rec['groups'].get(n, 0)} groups" for n in cfg.names)
        out.print(f"split {root} by {cfg.by}: {parts}", highlight=False)

    @view_app.command("ls")
    @handle_errors
    def view_ls(root: Annotated[Path, typer.Argument(help="Twin directory, e.g. out/paris.")]) -> None:
        """The built views of a build with their variants (config hash), shards and rows."""
        from twin.datasets.variants import variant_rows

        for r in variant_rows(root):
            out.print(f"{r['view']}\t{r['variant']}\t{r['shards']} shards\t{r['rows']} rows\t{r['settings']}",
                      highlight=False, markup=False)

    @view_app.command("drop")
    @handle_errors
    def view_drop(
        root: Annotated[Path, typer.Argument(help="Twin directory, e.g. out/paris.")],
        name: Annotated[str, typer.Argument(help="View name.")],
        variant: Annotated[str, typer.Option("--variant", help="Variant (config hash, or a unique prefix).")],
    ) -> None:
        """Remove one variant of a view: its catalog rows (one atomic commit), then its files."""
        from twin.datasets.variants import drop_variant

        n = drop_variant(root, name, variant)
        out.print(f"dropped {name} variant {variant}: {n} shards", highlight=False)
