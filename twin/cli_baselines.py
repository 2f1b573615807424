"""CLI commands of the baselines: ``twin baselines``, ``twin train``, ``twin eval``, ``twin reproduce``.

Mounted from :mod:`twin.cli` with :func:`register` (the app, the error handler and the output console are passed
in). Heavy imports (torch, the methods) happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, handle_errors, out) -> None:
    """Add the baseline commands to ``app``."""

    @app.command("baselines")
    @handle_errors
    def baselines_list(
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
    ) -> None:
        """The registered baselines: the view (and variant) each reads, its task and unit."""
        from rich.table import Table

        from twin.baselines import BASELINES

        rows = []
        for name, cls in BASELINES.items():
            rows.append({"name": name, "view": cls.view, "variant": cls.variant or "", "task": cls.task,
                         "unit": cls.unit, "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""})
        if as_json:
            out.print_json(json.dumps(rows))
            return
        t = Table(title="twin baselines")
        for c in ("name", "view", "variant", "task", "unit", "doc"):
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*(str(r[c]) for c in ("name", "view", "variant", "task", "unit", "doc")))
        out.print(t)

    @app.command("train")
    @handle_errors
    def train_cmd(
        name: Annotated[str, typer.Argument(help="Baseline name (twin baselines).")],
        data: Annotated[Path, typer.Option("--data", help="Twin directory the baseline trains on.")],
        run_out: Annotated[Path, typer.Option("--out", help="Run directory to write.")],
        config: Annotated[Path | None, typer.Option("--config", help="TOML with a [baselines.NAME] section.")] = None,
        split_by: Annotated[str | None, typer.Option("--split-by", help="Re-split the build first: tile | route | cell | random.")] = None,
        variant: Annotated[str | None, typer.Option("--variant", help="View variant (config hash or prefix) to read.")] = None,
        device: Annotated[str, typer.Option("--device", help="cpu | cuda | auto.")] = "cpu",
        seed: Annotated[int, typer.Option("--seed", help="Seed of torch/numpy (runs are deterministic for a seed).")] = 0,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from the run's last checkpoint.")] = False,
        checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Checkpoint every N steps (0: never).")] = 100,
        as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json.")] = False,
    ) -> None:
        """Fit a baseline on a build's train split, test it on the test split, write the run directory."""
        from twin.baselines.runner import train

        res = train(name, data, run_out, config=config, split_by=split_by, device=device, resume=resume, seed=seed,
                    variant=variant, checkpoint_every=checkpoint_every)
        _report(res, as_json)

    @app.command("eval")
    @handle_errors
    def eval_cmd(
        run: Annotated[Path, typer.Argument(help="Run directory written by `twin train`.")],
        data: Annotated[Path, typer.Option("--data", help="Twin directory to evaluate on (same view settings).")],
        split: Annotated[str | None, typer.Option("--split", help="Split of DATA to evaluate (all: every row; default: test when DATA has a split table, else all).")] = None,
        device: Annotated[str, typer.Option("--device", help="cpu | cuda | auto.")] = "cpu",
        eval_out: Annotated[Path | None, typer.Option("--out", help="Where to write (default RUN/eval-<name>).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json.")] = False,
    ) -> None:
        """Evaluate a trained run on another build (held-out area, other receivers)."""
        from twin.baselines.runner import evaluate

        res = evaluate(run, data, split=split, device=device, out=eval_out)
        _report(res, as_json)

    @app.command("reproduce")
    @handle_errors
    def reproduce_cmd(
        paper: Annotated[str, typer.Argument(help="Paper name (e.g. deepsync, vinloc).")],
        repro_out: Annotated[Path, typer.Option("--out", help="Directory for the builds, runs and results.")],
        scale: Annotated[str, typer.Option("--scale", help="small (CPU, minutes) | paper (the paper's sizes).")] = "small",
        device: Annotated[str, typer.Option("--device", help="cpu | cuda | auto.")] = "cpu",
    ) -> None:
        """Build the paper's scenario, train its method and the comparisons, print ours beside the paper's."""
        import twin.reproductions  # noqa: F401  (registers the reproductions that build scenarios themselves)
        from twin.baselines.reproduce import run_reproduction

        run_reproduction(paper, scale, repro_out, device=device, console=out)
        out.print(f"wrote {repro_out / 'results.json'} and {repro_out / 'results.md'}", highlight=False)

    def _report(res, as_json: bool) -> None:
        if as_json:
            out.print_json(json.dumps(res.metrics))
            return
        m = res.metrics["metrics"]

        def f(v) -> str:
            return "–" if v is None else f"{v:.4g}"

        out.print(f"{res.baseline} on {res.metrics['split']} ({res.metrics['n']} samples): median "
                  f"{f(m['median'])} {res.metrics['unit']}, p90 {f(m['p90'])}, rmse {f(m['rmse'])} -> {res.run}",
                  highlight=False)
