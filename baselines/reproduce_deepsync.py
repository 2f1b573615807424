"""``twin reproduce deepsync``: DeepSync's experiments (seeds/000 §8) on a twin Paris build.

Scenario: the Paris preset (offline scene), random street-level receivers, folded_lte windows placed on the
true template start (``truth_jitter`` with error 0) and stored wide (margin 45); each method cuts them to the
paper's 286 samples around a coarse error uniform in ±10 (§8.2; 276-sample template, §6.1) — fixed per test
row and the same for every method, drawn afresh every epoch for DeepSync's training rows, spatially disjoint 50-m tile split, 60/15/25 %. Methods on the same test rows: DeepSync
(10 frames, bound 10), the matched filter with parabolic interpolation, and the ablations (1 frame; bounds 6
and 40; fusion by concat / add / correlation). Localization of each test receiver by TDoA from DeepSync's and
from the matched filter's offsets, and by RSSI trilateration (path-loss fit on train, same -70 dBm floor).

Training rows: the view stores ``captures`` independent captures of every traced link (fresh data symbols,
oscillator phases, noise and sampling phase; the channel is the ray-traced one), and DeepSync cuts its training
windows with a fresh coarse error every epoch; the best epoch on the validation split is kept (early stopping).

Sizes (``--scale``): small — 160 receivers x 8 captures, encoder widths 8/16/16, up to 12 epochs (patience 3),
ablations 2 epochs (CPU, ~20 min on 2 shared cores); paper — 600 receivers x 20 captures, the encoder of §6.2
(32/64/128 channels), 60 epochs (meant for a GPU).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from twin.baselines import deepsync as ds
from twin.baselines.core import tower_positions
from twin.baselines.reproduce import REPRODUCTIONS, Row
from twin.baselines.runner import train

SCALES = {
    "small": {"receivers": 160, "captures": 8, "epochs": 12, "ablation_epochs": 2, "patience": 3,
              "channels": [8, 16, 16], "hidden": [64, 32], "samples_per_src": 10000, "max_depth": 2},
    "paper": {"receivers": 600, "captures": 20, "epochs": 60, "ablation_epochs": 60, "patience": 10,
              "channels": [32, 64, 128], "hidden": [256, 64], "samples_per_src": 100000, "max_depth": 3},
}

TRACE = """
[trace]
max_depth = {max_depth}
samples_per_src = {samples_per_src}
max_num_paths_per_src = {samples_per_src}
diffraction = false
"""


WIDE_MARGIN = 45  # stored windows: 276 + 2·45 samples, so that a 286-sample cut fits with coarse errors up to 40
CUT_MARGIN = 5  # DeepSync §6.1: 5 samples before and after the template (286-sample windows)


def _view_toml(path: Path, captures: int = 1) -> Path:
    path.write_text('[views.folded_lte]\nwindow_placement = "truth_jitter"\njitter_max_samples = 0\n'
                    f"template_len = 276\nwindow_margin = {WIDE_MARGIN}\ncaptures = {captures}\n")
    return path


def _twin(*args: str) -> None:
    cmd = [sys.executable, "-c", "from twin.cli import main; main()", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


@REPRODUCTIONS.register("deepsync")
def reproduce_deepsync(scale: str, out: Path, *, device: str = "cpu") -> list[Row]:
    import twin

    sz = SCALES[scale]
    out = Path(out)
    cfg_dir = out / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    trace = cfg_dir / "build.toml"
    trace.write_text(TRACE.format(**sz) + _view_toml(cfg_dir / "view.toml", sz["captures"]).read_text())
    build_dir = out / "build" / "paris"
    if not (build_dir / "twin.json").exists():
        _twin("build", "--city", "paris", "--offline", "--out", str(out / "build"), "--receivers", str(sz["receivers"]),
              "--config", str(trace), "--views", "folded_lte")
    _twin("split", str(build_dir), "--by", "tile", "--fractions", "0.6,0.15,0.25")
    base = {"epochs": sz["epochs"], "channels": sz["channels"], "hidden": sz["hidden"], "heads": 4,
            "crop_margin": CUT_MARGIN, "crop_bound": 10, "patience": sz["patience"]}
    if scale == "small":
        base.update(lr=1e-3, batch_size=32)  # fewer steps at small scale: a larger step size (paper: 1e-4)

    def run(name: str, method: str, **over):
        if method == "deepsync":
            return train(method, build_dir, out / "runs" / name,
                         overrides={**base, "epochs": sz["ablation_epochs"], **over}, device=device,
                         checkpoint_every=0)
        return train(method, build_dir, out / "runs" / name, overrides=over, device=device, checkpoint_every=0)

    mf = run("matched_filter", "matched_filter", crop_margin=CUT_MARGIN, crop_bound=10)
    main = train("deepsync", build_dir, out / "runs" / "deepsync", overrides=base, device=device,
                 checkpoint_every=0, compare={"matched_filter": mf.predictions["error"].to_numpy()})
    rows = [
        Row("offset, 10 frames, bound 10", "deepsync", "median", "samples", main.metrics["metrics"]["median"],
            ds.PAPER_MEDIAN_OFFSET, "runs/deepsync", f"{main.metrics['n']} test rows"),
        Row("offset, 10 frames, bound 10", "matched_filter", "median", "samples", mf.metrics["metrics"]["median"],
            None, "runs/matched_filter", "same test rows"),
    ]
    for res, method, rel in ((main, "deepsync", "runs/deepsync"), (mf, "matched_filter", "runs/matched_filter")):
        m = res.metrics
        rows.append(Row(f"offset, template inside the cut (|coarse error| <= {CUT_MARGIN})", method, "median",
                        "samples", m.get("median_template_inside"), None, rel,
                        f"{m.get('n_template_inside')} of {m['n']} test rows"))
        rows.append(Row(f"offset, template partly outside the cut (|coarse error| > {CUT_MARGIN})", method,
                        "median", "samples", m.get("median_template_outside"), None, rel,
                        "the matched filter searches only the lags inside the window"))
    abl = [("1 frame", "deepsync_1frame", {"frames": 1}, ds.PAPER_ONE_FRAME),
           ("bound 6", "deepsync_bound6", {"crop_bound": 6}, None),
           ("bound 40", "deepsync_bound40", {"crop_bound": 40}, ds.PAPER_BOUND_40)]
    abl += [(f"fusion {f}", f"deepsync_{f}", {"fusion": f}, None)
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
    rxp = b.receivers[["x", "y"]].to_numpy(float)
    sites = np.array(list(tower_positions(b).values()))[:, :2]
    test_rx = np.unique(mf.predictions["rx_id"].to_numpy())
    sel = np.isin(b.receivers["rx_id"].to_numpy(), test_rx)
    rows.append(Row("localization", "sites_centroid", "median", "m",
                    float(np.median(np.linalg.norm(rxp[sel] - sites.mean(axis=0), axis=1))), None, "",
                    "reference: every test receiver put at the sites' centroid (no measurement)"))
    rs = train("rssi_trilateration", build_dir, out / "runs" / "rssi_trilateration",
               overrides={"min_rx_power_dbm": -70.0}, device=device, checkpoint_every=0)
    rows.append(Row("localization", "rssi_trilateration", "median", "m", rs.metrics["metrics"]["median"],
                    ds.PAPER_RSSI_LOC_MEDIAN_M, "runs/rssi_trilateration",
                    "paper: the compressed-spectrum RSSI system of Garg et al. 2024"))
    return rows


__all__ = ["SCALES", "reproduce_deepsync"]
