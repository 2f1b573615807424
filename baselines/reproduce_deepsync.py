"""``twin reproduce deepsync``: DeepSync's experiments (seeds/000 §8) on a twin Paris build.

Scenario: the Paris preset (offline scene), random street-level receivers, folded_lte windows placed by the
paper's training protocol (``truth_jitter``: true start ± uniform integer error, bound 10; 276-sample
template, 286-sample windows, §6.1), spatially disjoint tile split. Methods on the same test rows: DeepSync
(10 frames, bound 10), the matched filter with parabolic interpolation, and the ablations (1 frame; bounds 6
and 40; fusion by concat / add / correlation). Localization of each test receiver by TDoA from DeepSync's and
from the matched filter's offsets, and by RSSI trilateration (path-loss fit on train, same -70 dBm floor).

Sizes (``--scale``): small — 40 receivers, reduced encoder widths, 15 epochs (CPU, minutes); paper — 600
receivers, the encoder of §6.2 (32/64/128 channels), 60 epochs (meant for a GPU).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from twin.baselines import deepsync as ds
from twin.baselines.reproduce import REPRODUCTIONS, Row
from twin.baselines.runner import train

SCALES = {
    "small": {"receivers": 40, "epochs": 15, "channels": [16, 32, 32], "hidden": [64, 32], "samples_per_src": 10000,
              "max_depth": 2},
    "paper": {"receivers": 600, "epochs": 60, "channels": [32, 64, 128], "hidden": [256, 64], "samples_per_src": 100000,
              "max_depth": 3},
}

TRACE = """
[trace]
max_depth = {max_depth}
samples_per_src = {samples_per_src}
max_num_paths_per_src = {samples_per_src}
diffraction = false
"""


def _view_toml(path: Path, bound: int) -> Path:
    path.write_text(f'[views.folded_lte]\nwindow_placement = "truth_jitter"\njitter_max_samples = {bound}\n'
                    "template_len = 276\nwindow_margin = 5\n")
    return path


def _twin(*args: str) -> None:
    cmd = [sys.executable, "-c", "from twin.cli import main; main()", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def _variant(build_dir: Path, bound: int) -> str:
    import twin
    from twin.config import config_hash
    from twin.datasets.folded_lte import FoldedLteConfig

    h = config_hash(FoldedLteConfig(window_placement="truth_jitter", jitter_max_samples=bound, template_len=276))
    variants = twin.open(build_dir).views().get("folded_lte", [])
    return h if h in variants else (variants[0] if len(variants) == 1 else h)


@REPRODUCTIONS.register("deepsync")
def reproduce_deepsync(scale: str, out: Path, *, device: str = "cpu") -> list[Row]:
    import twin

    sz = SCALES[scale]
    out = Path(out)
    cfg_dir = out / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    trace = cfg_dir / "build.toml"
    trace.write_text(TRACE.format(**sz) + _view_toml(cfg_dir / "v10.toml", 10).read_text())
    build_dir = out / "build" / "paris"
    if not (build_dir / "twin.json").exists():
        _twin("build", "--city", "paris", "--offline", "--out", str(out / "build"), "--receivers", str(sz["receivers"]),
              "--config", str(trace), "--views", "folded_lte")
    for b in (6, 40):
        _twin("view", "build", "folded_lte", str(build_dir), "--config", str(_view_toml(cfg_dir / f"v{b}.toml", b)))
    _twin("split", str(build_dir), "--by", "tile")
    variants = {b: _variant(build_dir, b) for b in (6, 10, 40)}
    base = {"epochs": sz["epochs"], "channels": sz["channels"], "hidden": sz["hidden"], "heads": 4}
    if scale == "small":
        base.update(lr=1e-3, batch_size=16)  # fewer steps at small scale: a larger step size (paper: 1e-4)

    def run(name: str, method: str, **over):
        if method == "deepsync":
            return train(method, build_dir, out / "runs" / name, overrides={**base, **over}, device=device,
                         checkpoint_every=0)
        v = over.pop("variant", None)
        return train(method, build_dir, out / "runs" / name, overrides=over, variant=v, device=device,
                     checkpoint_every=0)

    mf = run("matched_filter", "matched_filter", variant=variants[10])
    main = train("deepsync", build_dir, out / "runs" / "deepsync", overrides={**base, "variant": variants[10]},
                 device=device, checkpoint_every=0, compare={"matched_filter": mf.predictions["error"].to_numpy()})
    rows = [
        Row("offset, 10 frames, bound 10", "deepsync", "median", "samples", main.metrics["metrics"]["median"],
            ds.PAPER_MEDIAN_OFFSET, "runs/deepsync", f"{main.metrics['n']} test rows"),
        Row("offset, 10 frames, bound 10", "matched_filter", "median", "samples", mf.metrics["metrics"]["median"],
            None, "runs/matched_filter", "same test rows"),
    ]
    abl = [("1 frame", "deepsync_1frame", {"frames": 1, "variant": variants[10]}, ds.PAPER_ONE_FRAME),
           ("bound 6", "deepsync_bound6", {"variant": variants[6]}, None),
           ("bound 40", "deepsync_bound40", {"variant": variants[40]}, ds.PAPER_BOUND_40)]
    abl += [(f"fusion {f}", f"deepsync_{f}", {"fusion": f, "variant": variants[10]}, None)
            for f in ("concat", "add", "correlation")]
    for label, name, over, paper in abl:
        r = run(name, "deepsync", **over)
        rows.append(Row(f"offset, {label}", "deepsync", "median", "samples", r.metrics["metrics"]["median"], paper,
                        f"runs/{name}"))
    b = twin.open(build_dir)
    h = float(np.median(b.receivers["z"].to_numpy()))
    for method, res in (("tdoa_deepsync", main), ("tdoa_matched_filter", mf)):
        loc = ds.tdoa_localize(res.predictions, b, rx_height_m=h)
        e = loc["error"].to_numpy()
        ok = np.isfinite(e)
        rows.append(Row("localization", method, "median", "m", float(np.median(e[ok])) if ok.any() else None,
                        ds.PAPER_LOC_MEDIAN_M if method == "tdoa_deepsync" else None, res.run.relative_to(out).as_posix(),
                        f"{int(ok.sum())} of {len(e)} test receivers with >= 3 sites"))
        loc.to_parquet(res.run / "localization.parquet")
    rs = train("rssi_trilateration", build_dir, out / "runs" / "rssi_trilateration",
               overrides={"min_rx_power_dbm": -70.0}, device=device, checkpoint_every=0)
    rows.append(Row("localization", "rssi_trilateration", "median", "m", rs.metrics["metrics"]["median"],
                    ds.PAPER_RSSI_LOC_MEDIAN_M, "runs/rssi_trilateration",
                    "paper: the compressed-spectrum RSSI system of Garg et al. 2024"))
    return rows


__all__ = ["SCALES", "reproduce_deepsync"]
