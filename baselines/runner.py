"""Train a registered baseline on a build and write its run directory; evaluate a run on another build.

:func:`train` opens the build (``twin.open``), checks it has the baseline's view and variant (exit 2 naming them
otherwise), reads the ``train`` / ``validation`` / ``test`` splits of the build's split table, fits, saves the
state (``model.pt``), predicts the test split and writes every file of :mod:`twin.baselines.rundir`.
:func:`evaluate` rebuilds the method from a run's ``config.toml`` and ``model.pt`` and predicts on a second build
(held-out area, other receivers) that must have the same view variant (same view settings).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.baselines import BASELINES
from twin.baselines import rundir as rd
from twin.baselines.core import RunContext, config_to_dict, resolve_device, seed_everything
from twin.errors import TwinInputError

log = logging.getLogger("twin.baselines")

VAL_NAMES = ("validation", "val")


@dataclass
class RunResult:
    run: Path
    baseline: str
    metrics: dict[str, Any]
    predictions: Any  # pandas.DataFrame
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def load_config(cls: type, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
    """The baseline's frozen config from TOML section ``[baselines.NAME]`` of ``path`` (other sections are
    ignored) and ``overrides`` on top; unknown keys and wrong types exit 2 naming them."""
    from twin.config import from_mapping

    data: dict[str, Any] = {}
    where = f"[baselines.{cls.NAME}]"
    if path is not None:
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise TwinInputError("config file not found", file=p, fix="pass an existing TOML file") from None
        except tomllib.TOMLDecodeError as e:
            raise TwinInputError(f"not valid TOML ({e})", file=p) from None
        data.update(doc.get("baselines", {}).get(cls.NAME, {}))
        where = f"{p} [baselines.{cls.NAME}]"
    data.update(overrides or {})
    if not dataclasses.fields(cls.Config) and not data:
        return cls.Config()
    return from_mapping(cls.Config, data, where=where)


def _split_names(build, model: Any = None) -> list[str]:
    """The split names a baseline can read: its own (``model.split_names(build)``, for baselines that split
    by something other than receivers, e.g. site-pair snapshots), else those of the build's split table."""
    own = getattr(model, "split_names", None)
    if own is not None:
        return sorted(own(build))
    t = build.split_table()
    return sorted(set(t.column("split").to_pylist()))


def readers(build, view: str, variant: str | None, splits: tuple[str, ...], model: Any = None) -> dict[str, Any]:
    """{split: Reader} of ``view`` (``"cir"``: the CIR rows) for each split the build has. A baseline whose rows
    are not receivers' (e.g. site-pair snapshots) selects a split itself: ``model.split_reader(build, variant,
    split)``."""
    names = _split_names(build, model)
    out = {}
    own = getattr(model, "split_reader", None)
    for s in splits:
        if s not in names:
            continue
        if own is not None:
            out[s] = own(build, variant, s)
            continue
        out[s] = build.cir(split=s) if view == "cir" else build.view(view, variant, split=s)
    return out


def check_view(build, model: Any, variant: str | None) -> str:
    """The variant of the baseline's view to read on ``build`` (exit 2 naming the view/variant when missing)."""
    view = model.view
    if view == "cir":
        return ""
    try:
        return build.resolve_variant(view, variant)
    except TwinInputError as e:
        raise TwinInputError(
            f"baseline {model.NAME!r} reads view {view!r}" + (f" variant {variant!r}" if variant else "")
            + f", which this build cannot give: {e.message}",
            file=build.url, field="view" if "variant" not in e.message else "variant",
            fix=e.fix or f"build it: `twin view build {view} {build.url}`") from None


def _variant_of(model: Any, variant: str | None) -> str | None:
    if variant:
        return variant
    v = getattr(model.config, "variant", None) or type(model).variant
    return v or None


def _maybe_split(data: Path, split_by: str | None) -> None:
    if not split_by:
        return
    from twin.config import from_mapping
    from twin.datasets.splits import SplitConfig, write_split

    write_split(data, from_mapping(SplitConfig, {"by": split_by}, where="--split-by"))


def _test_split(names: list[str], split: str) -> str:
    if split not in names:
        raise TwinInputError(f"the build has no split {split!r}", field="--split",
                             fix=f"splits of this build: {', '.join(names)} (or run `twin split`)")
    return split


def train(name: str, data: str | Path, out: str | Path, *, config: str | Path | None = None,
          overrides: Mapping[str, Any] | None = None, split_by: str | None = None, device: str = "cpu",
          resume: bool = False, seed: int = 0, variant: str | None = None, checkpoint_every: int = 100,
          show_progress: bool = True, test_split: str = "test",
          compare: Mapping[str, np.ndarray] | None = None) -> RunResult:
    """Fit ``name`` on ``data``'s train split, predict its ``test_split``, write the run directory ``out``.

    ``compare`` adds other methods' errors (same test rows) to ``cdf.png``."""
    import twin

    cls = BASELINES.get(name)
    cfg = load_config(cls, config, overrides)
    device = resolve_device(device)
    seed_everything(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _maybe_split(Path(data), split_by)
    build = twin.open(data)
    model = cls(cfg, device=device, seed=seed)
    v = check_view(build, model, _variant_of(model, variant))
    names = _split_names(build, model)
    test_split = _test_split(names, test_split)
    val_name = next((n for n in VAL_NAMES if n in names), None)
    rs = readers(build, model.view, v or None, tuple(s for s in ("train", val_name, test_split) if s), model=model)
    if "train" not in rs:
        raise TwinInputError("the build's split table has no 'train' split", file=build.url, field="split",
                             fix="run `twin split DIR` with a split named train")
    t0 = time.perf_counter()
    ctx = RunContext(out, checkpoint_every=checkpoint_every, resume=resume, show_progress=show_progress,
                     description=f"train {name}")
    try:
        model.fit(rs["train"], rs.get(val_name) if val_name else None, run=ctx)
    finally:
        ctx.close()
    t_fit = time.perf_counter() - t0
    import torch

    torch.save({"baseline": name, "state": model.state_dict()}, out / rd.MODEL)
    rd.write_config(out, {
        "baseline": name, "data": str(Path(data).resolve()) if Path(str(data)).exists() else str(data),
        "view": model.view, "variant": v, "seed": seed, "device": device, "split_by": split_by or "",
        "splits": {"train": "train", "validation": val_name or "", "test": test_split},
        "baselines": {name: config_to_dict(cfg)},
    })
    res = _predict_and_write(model, rs[test_split], out, data=str(data), split=test_split, compare=compare,
                             losses=ctx.losses, extra={"fit_seconds": t_fit, "train_rows": len(rs["train"]),
                                                       "variant": v, "seed": seed})
    res.seconds = time.perf_counter() - t0
    return res


def _predict_and_write(model, test, out: Path, *, data: str, split: str, compare, losses, extra) -> RunResult:
    t0 = time.perf_counter()
    df = model.predict(test)
    if "error" not in df.columns:
        raise RuntimeError(f"{model.NAME}.predict returned no 'error' column")
    t_pred = time.perf_counter() - t0
    err = df["error"].to_numpy(dtype=float)
    method_extra = dict(getattr(model, "extra_metrics", lambda df: {})(df))
    rec = rd.metrics_record(baseline=model.NAME, data=data, split=split, errors=err, unit=model.unit,
                            paper=dict(model.paper), task=model.task, view=model.view,
                            predict_seconds=t_pred, **extra, **method_extra)
    rd.write_metrics(out, rec)
    rd.write_errors(out, df)
    errs = {model.NAME: err}
    errs.update(compare or {})
    headline = {k: v for k, v in model.paper.items() if k == "headline" or k.startswith("median")}
    headline = {k: float(v) for k, v in headline.items() if isinstance(v, int | float)}
    rd.plot_cdf(out / rd.CDF, errs, unit=model.unit, title=f"{model.NAME} on {Path(data).name} ({split})",
                paper=headline)
    rd.plot_loss(out / rd.LOSS, losses, title=model.NAME)
    return RunResult(out, model.NAME, rec, df, t_pred, extra=method_extra)


def load_run(run: str | Path, *, device: str = "cpu"):
    """(model with its trained state, the run's config.toml as a dict)."""
    import torch

    run = Path(run)
    doc = rd.read_config(run)
    name = doc.get("baseline")
    cls = BASELINES.get(str(name))
    cfg = load_config(cls, None, doc.get("baselines", {}).get(name, {}))
    model = cls(cfg, device=resolve_device(device), seed=int(doc.get("seed", 0)))
    path = run / rd.MODEL
    if not path.exists():
        raise TwinInputError("the run has no trained state (model.pt)", file=run,
                             fix="train it again with `twin train`")
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["state"])
    return model, doc


def evaluate(run: str | Path, data: str | Path, *, split: str | None = "test", device: str = "cpu",
             out: str | Path | None = None) -> RunResult:
    """Predict with a trained run on the build ``data`` (its ``split``; "all": every row; None: "test" when the
    build has a split table, every row of a build without one — a second build of other receivers is held out
    as a whole). The build must have the run's view variant; the metrics go to ``out`` (default
    ``RUN/eval-<build name>``)."""
    import twin

    run = Path(run)
    model, doc = load_run(run, device=device)
    build = twin.open(data)
    v = str(doc.get("variant", "")) or None
    v = check_view(build, model, v)
    view = model.view
    if split is None:
        try:
            build.split_table()
            split = "test"
        except TwinInputError:
            split = "all"
    if split in ("", "all"):
        test = build.cir() if view == "cir" else build.view(view, v or None)
        split = "all"
    else:
        _test_split(_split_names(build, model), split)
        if getattr(model, "split_reader", None) is not None:
            test = model.split_reader(build, v or None, split)
        else:
            test = build.cir(split=split) if view == "cir" else build.view(view, v or None, split=split)
    name = Path(str(data)).name or "data"
    dest = Path(out) if out is not None else run / f"eval-{name}"
    dest.mkdir(parents=True, exist_ok=True)
    losses = []
    loss_log = run / RunContext.LOSS_LOG
    if loss_log.exists():
        import json

        losses = [json.loads(ln) for ln in loss_log.read_text().splitlines() if ln.strip()]
    rd.write_config(dest, {**doc, "eval_of": str(run.resolve()), "eval_data": str(data)})
    import shutil

    shutil.copyfile(run / rd.MODEL, dest / rd.MODEL)
    return _predict_and_write(model, test, dest, data=str(data), split=split, compare=None, losses=losses,
                              extra={"run": str(run), "variant": v})


__all__ = ["RunResult", "check_view", "evaluate", "load_config", "load_run", "readers", "train"]
