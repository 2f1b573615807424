"""The baseline contract: a registered :class:`Baseline` class, the :class:`RunContext` a trainer reports to,
seeding, and the error metrics every run records.

A baseline reads one view (and variant) of a build through ``twin.open(D).view(...)`` readers, ``fit``s on the
train split (classical methods fit nothing or calibrate a few numbers) and ``predict``s a DataFrame with one row
per test sample: ``rx_id``, the sample's ids, prediction and truth columns and a scalar ``error`` in the
baseline's ``unit`` (absolute: a distance in metres, |offset error| in samples, or 0/1 for a class).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

log = logging.getLogger("twin.baselines")

TASKS = ("position", "offset", "range", "class")


@dataclass(frozen=True)
class NoConfig:
    """A baseline without settings (TOML section ``[baselines.NAME]`` stays empty)."""


class Baseline:
    """One method. Subclasses set the class attributes and override :meth:`fit` (optional) and :meth:`predict`.

    ``NAME`` is set by the registry decorator of :data:`twin.baselines.BASELINES`. ``view`` is the view a build
    must have (``"cir"`` reads the CIR rows), ``variant`` the config hash to read (None: the only one, or the one
    the caller names). ``paper`` holds the paper's headline figures, each keyed by what it measures, for
    ``metrics.json`` and the CDF plot (``headline``: the figure marked on the CDF, in ``unit``).
    """

    NAME: ClassVar[str] = ""
    view: ClassVar[str] = ""
    variant: ClassVar[str | None] = None
    task: ClassVar[str] = "position"
    unit: ClassVar[str] = "m"
    Config: ClassVar[type] = NoConfig
    paper: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, config: Any = None, *, device: str = "cpu", seed: int = 0) -> None:
        self.config = config if config is not None else self.Config()
        self.device = device
        self.seed = int(seed)
        # a generic method names its view in its config (e.g. wknn over any feature column)
        self.view = str(getattr(self.config, "view", "") or type(self).view)  # type: ignore[misc]

    def fit(self, train, val, *, run: RunContext) -> None:  # noqa: B027  (classical methods fit nothing)
        """Train on ``train`` (a Reader; ``val`` may be None). Default: nothing to fit."""

    def predict(self, test) -> Any:  # pandas.DataFrame
        raise NotImplementedError

    def state_dict(self) -> dict:
        """What a trained run keeps (torch tensors, numbers, arrays); classical methods: their calibration."""
        return {}

    def load_state_dict(self, d: dict) -> None:  # noqa: B027
        """Restore :meth:`state_dict`."""


# ---------------------------------------------------------------------------------------------- seeding


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch; with ``deterministic`` torch uses deterministic kernels (warns, never fails,
    where none exists) and cuDNN does not benchmark."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def resolve_device(device: str | None) -> str:
    """``"auto"``/None: CUDA when present, else CPU; otherwise the name given (checked)."""
    import torch

    from twin.errors import TwinInputError

    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        # intra-op threads (TWIN_TORCH_THREADS, default 1): on a shared machine more threads than free cores
        # make small convolutions several times slower (measured: 2 threads 8x slower on a loaded 2-core VM)
        torch.set_num_threads(max(1, int(os.environ.get("TWIN_TORCH_THREADS", "1"))))
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise TwinInputError(f"device {device!r} asked for but CUDA is not available here", field="--device",
                             fix="use --device cpu (or auto)")
    return str(device)


# ---------------------------------------------------------------------------------------------- metrics


def error_metrics(errors: np.ndarray) -> dict[str, float]:
    """median, p90, mean, rmse, mae of the finite errors (absolute values), and ``n`` of them."""
    e = np.abs(np.asarray(errors, dtype=np.float64))
    e = e[np.isfinite(e)]
    if e.size == 0:
        nan = float("nan")
        return {"median": nan, "p90": nan, "mean": nan, "rmse": nan, "mae": nan, "n": 0}
    return {
        "median": float(np.median(e)),
        "p90": float(np.percentile(e, 90)),
        "mean": float(np.mean(e)),
        "rmse": float(np.sqrt(np.mean(e * e))),
        "mae": float(np.mean(e)),
        "n": int(e.size),
    }


# ------------------------------------------------------------------------------------------- run context


class RunContext:
    """What a trainer reports to while it fits: a rich progress bar (loss, ETA), the loss log (``loss.jsonl``,
    plotted as ``loss.png``), checkpoints every ``checkpoint_every`` steps (``checkpoint.pt``, written
    atomically) and, with ``resume``, the last checkpoint to continue from."""

    CHECKPOINT = "checkpoint.pt"
    LOSS_LOG = "loss.jsonl"

    def __init__(self, out: str | Path, *, checkpoint_every: int = 100, resume: bool = False,
                 show_progress: bool = True, description: str = "train") -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.checkpoint_every = int(checkpoint_every)
        self.resume = bool(resume)
        self.description = description
        self.losses: list[dict[str, Any]] = []
        self._show = show_progress
        self._progress = None
        self._task = None
        self._t0 = time.perf_counter()
        log_path = self.out / self.LOSS_LOG
        if resume and log_path.exists():
            self.losses = [json.loads(ln) for ln in log_path.read_text().splitlines() if ln.strip()]
        elif log_path.exists():
            log_path.unlink()

    # -- progress
    def progress(self, step: int, total: int, **values: float) -> None:
        """Advance the bar to ``step`` of ``total`` and show ``values`` (e.g. loss=...)."""
        if not self._show:
            return
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                      console=Console(stderr=True), transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=total, info="")
        info = " ".join(f"{k}={v:.4g}" for k, v in values.items() if isinstance(v, int | float))
        self._progress.update(self._task, completed=step, total=total, info=info)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # -- losses
    def log_loss(self, step: int, loss: float, split: str = "train", *, x: str = "step", unit: str = "") -> None:
        """Append one point of the training curve: ``x`` names what ``step`` counts ("step" = optimiser steps,
        "epoch"), ``unit`` is the loss's unit ("" = dimensionless, e.g. "m" or "samples")."""
        rec = {"step": int(step), "loss": float(loss), "split": split, "t_s": time.perf_counter() - self._t0,
               "x": x, "unit": unit}
        self.losses.append(rec)
        with open(self.out / self.LOSS_LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")
        log.debug("step %d %s loss %.5g", step, split, loss)

    # -- checkpoints
    def checkpoint_due(self, step: int) -> bool:
        return self.checkpoint_every > 0 and step > 0 and step % self.checkpoint_every == 0

    def save_checkpoint(self, state: dict) -> Path:
        import torch

        path = self.out / self.CHECKPOINT
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def load_checkpoint(self) -> dict | None:
        """The last checkpoint when resuming (None when not resuming or none was written)."""
        path = self.out / self.CHECKPOINT
        if not self.resume or not path.exists():
            return None
        import torch

        log.info("resuming from %s", path)
        return torch.load(path, map_location="cpu", weights_only=False)


# ---------------------------------------------------------------------------------------------- helpers


def read_columns(reader, columns: list[str] | None = None) -> dict[str, Any]:
    """Every kept row of ``reader`` as {column: numpy array} (tensor columns shaped (rows, ...), complex64
    for complex pairs); ``columns`` selects (missing ones raise a TwinInputError naming them)."""
    from twin.datasets.access import table_columns
    from twin.errors import TwinInputError

    t = reader.to_table()
    if columns is not None:
        names = set(t.column_names)
        bad = [c for c in columns if c not in names and f"{c}_re" not in names]
        if bad:
            raise TwinInputError(f"{reader.name} has no column(s) {', '.join(bad)}", file=reader.build.url,
                                 field="columns", fix=f"columns of {reader.name}: {', '.join(t.column_names)}")
        keep = [c for c in t.column_names if c in columns or c[:-3] in columns]
        t = t.select(keep)
    out: dict[str, Any] = {}
    for k, v in table_columns(t).items():
        ragged = isinstance(v, list) and bool(v) and isinstance(v[0], np.ndarray)
        out[k] = v if ragged else np.asarray(v)
    return out


def receiver_positions(build, rx_ids: np.ndarray) -> np.ndarray:
    """(len(rx_ids), 3) receiver positions x, y, z (m, local frame) from the build's receivers table."""
    rec = build.receivers
    pos = dict(zip(rec["rx_id"].to_numpy().tolist(), rec[["x", "y", "z"]].to_numpy(dtype=np.float64), strict=True))
    return np.array([pos[int(r)] for r in np.asarray(rx_ids).tolist()], dtype=np.float64).reshape(-1, 3)


def tower_positions(build) -> dict[str, np.ndarray]:
    """{cell_id: (x, y, z)} of the build's cells (m, local frame; z the antenna height above ground)."""
    t = build.towers
    return dict(zip(t["cell_id"].astype(str).tolist(), t[["x", "y", "z"]].to_numpy(dtype=np.float64), strict=True))


def config_to_dict(config: Any) -> dict:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config or {})


def finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


__all__ = ["TASKS", "Baseline", "NoConfig", "RunContext", "error_metrics", "read_columns", "receiver_positions",
           "resolve_device", "seed_everything", "tower_positions"]
