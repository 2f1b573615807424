"""A run directory: ``config.toml``, ``metrics.json``, ``errors.parquet``, ``cdf.png``, ``loss.png`` and the
trained state (``model.pt``; ``checkpoint.pt`` while training).

``metrics.json``: ``{"baseline", "data", "split", "n", "metrics": {"median", "p90", "mean", "rmse", "mae"},
"unit", "paper": {...}}`` plus extra keys per method. ``errors.parquet``: one row per test sample (``rx_id``,
ids, prediction, truth, ``error`` in ``unit``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twin.baselines.core import error_metrics

CONFIG = "config.toml"
METRICS = "metrics.json"
ERRORS = "errors.parquet"
CDF = "cdf.png"
LOSS = "loss.png"
MODEL = "model.pt"
RUN_FILES = (CONFIG, METRICS, ERRORS, CDF, LOSS, MODEL)


# ------------------------------------------------------------------------------------------------- TOML


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        return '""'
    return json.dumps(str(v))


def dumps_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for run configs: scalars and lists at the top, then nested tables (dotted names)."""
    lines: list[str] = []

    def table(prefix: str, d: Mapping[str, Any]) -> None:
        # TOML has no null: a None setting is left out (every optional setting defaults to None)
        scalars = {k: v for k, v in d.items() if not isinstance(v, Mapping) and v is not None}
        subs = {k: v for k, v in d.items() if isinstance(v, Mapping)}
        if prefix and (scalars or not subs):
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {_toml_value(v)}")
        for k, v in subs.items():
            table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_config(run: Path, data: Mapping[str, Any]) -> Path:
    path = Path(run) / CONFIG
    _atomic_write(path, dumps_toml(data))
    return path


def read_config(run: Path) -> dict[str, Any]:
    import tomllib

    from twin.errors import TwinInputError

    path = Path(run) / CONFIG
    if not path.exists():
        raise TwinInputError("not a run directory (no config.toml)", file=run,
                             fix="pass the --out directory of `twin train`")
    return tomllib.loads(path.read_text())


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- metrics


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def metrics_record(*, baseline: str, data: str, split: str, errors: np.ndarray, unit: str,
                   paper: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    m = error_metrics(errors)
    n = m.pop("n")
    rec = {"baseline": baseline, "data": data, "split": split, "n": n, "metrics": m, "unit": unit,
           "paper": dict(paper or {})}
    rec.update(extra)
    return _jsonable(rec)


def write_metrics(run: Path, record: Mapping[str, Any]) -> Path:
    path = Path(run) / METRICS
    _atomic_write(path, json.dumps(_jsonable(record), indent=2) + "\n")
    return path


def write_errors(run: Path, df) -> Path:
    """``errors.parquet`` from a predict() DataFrame (array cells are kept as lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {}
    for c in df.columns:
        v = df[c].to_numpy()
        if v.dtype == object and len(v) and isinstance(v[0], np.ndarray):
            cols[c] = pa.array([np.asarray(x).ravel().tolist() for x in v])
        else:
            cols[c] = pa.array(v)
    path = Path(run) / ERRORS
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(cols), tmp)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------ plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cdf(path: Path, errors: Mapping[str, np.ndarray], *, unit: str, title: str = "",
             paper: Mapping[str, float] | None = None) -> Path:
    """Empirical CDF of |error| of every method in ``errors`` on one axis; ``paper`` {label: value} are the
    paper's headline figures, drawn as vertical dashed lines (a median: the CDF reaches 0.5 there)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, e in errors.items():
        e = np.sort(np.abs(np.asarray(e, dtype=float)))
        e = e[np.isfinite(e)]
        if e.size == 0:
            continue
        ax.step(e, np.arange(1, e.size + 1) / e.size, where="post", label=f"{name} (median {np.median(e):.3g})")
    for i, (label, v) in enumerate((paper or {}).items()):
        if v is not None and math.isfinite(float(v)):
            ax.axvline(float(v), ls="--", color=f"C{(i + len(errors)) % 10}", label=f"paper: {label} = {v:g}")
    ax.axhline(0.5, color="0.8", lw=0.8)
    ax.set_xlabel(f"|error| ({unit})")
    ax.set_ylabel("CDF")
    pos = [np.abs(np.asarray(e, float)) for e in errors.values()]
    pos = [p[np.isfinite(p) & (p > 0)] for p in pos]
    if any(p.size for p in pos) and max(float(p.max()) for p in pos if p.size) / max(
            min(float(p.min()) for p in pos if p.size), 1e-12) > 100:
        ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_loss(path: Path, losses: Sequence[Mapping[str, Any]], *, title: str = "") -> Path:
    """The training curve (loss per optimiser step or epoch, as logged, with its unit; one line per split); a method without training gets a plot saying
    so, so that every run directory has the same files."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    by: dict[str, list[tuple[int, float]]] = {}
    for r in losses:
        by.setdefault(str(r.get("split", "train")), []).append((int(r["step"]), float(r["loss"])))
    if by:
        for split, pts in by.items():
            s, v = zip(*sorted(pts), strict=True)
            ax.plot(s, v, label=split, marker="." if len(s) < 50 else None)
        xs = {str(r.get("x", "step")) for r in losses}
        units = {str(r.get("unit", "")) for r in losses} - {""}
        ax.set_xlabel({"step": "optimiser step", "epoch": "epoch"}.get(xs.pop(), "step") if len(xs) == 1 else "step")
        ax.set_ylabel(f"loss ({', '.join(sorted(units))})" if units else "loss (dimensionless)")
        if all(v > 0 for pts in by.values() for _, v in pts):
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no training (closed-form method)", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


__all__ = ["CDF", "CONFIG", "ERRORS", "LOSS", "METRICS", "MODEL", "RUN_FILES", "dumps_toml", "metrics_record",
           "plot_cdf", "plot_loss", "read_config", "write_config", "write_errors", "write_metrics"]
