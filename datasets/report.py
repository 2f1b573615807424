"""``twin report D``: diagnostic figures of a build, written to ``D/report/`` (``index.html`` + PNGs).

What is drawn (local frame: x east, y north, metres; gains in dB, delays in seconds shown as ns):

- per carrier, the best-server path gain at every receiver (max over the cells on that carrier of the link's
  ``path_gain_db``) over the building footprints, with the towers that carry the carrier and their sector
  azimuths; the colour scale spans the 2nd-98th percentile of the map's values (outliers saturate, the
  colour bar's arrows say so); receivers no cell of the carrier reaches are grey crosses;
- CDFs per carrier of the per-link path gain, RMS delay spread and number of paths, and the LOS share of links;
- per cell, the receivers it reaches and the receivers it serves best (on its carrier);
- one example figure per built view variant (registered in :data:`EXAMPLES` by view name).

The build's own ``previews/path_gain.png`` is :func:`write_path_gain_preview` (the same carrier panels, in one
image). Everything reads the build through :func:`twin.open`, so a published copy works too.

RMS delay spread of a link (3GPP TR 38.901 §7.5 definition, power-weighted over its paths):
``tau_rms = sqrt(sum p_k (tau_k - tau_mean)^2 / sum p_k)``, ``tau_mean = sum p_k tau_k / sum p_k``,
``p_k = |a_k|^2``.
"""

from __future__ import annotations

import html
import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from twin.errors import TwinInputError
from twin.registry import Registry

log = logging.getLogger(__name__)

#: robust colour scale of the path-gain maps: these percentiles of the map's finite values
GAIN_PERCENTILES = (2.0, 98.0)
#: length of the sector-azimuth tick drawn from a tower, metres
SECTOR_TICK_M = 40.0
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------------------------------ data


def rms_delay_spread_s(tau_s: pa.Array | pa.ChunkedArray, a_re, a_im) -> np.ndarray:
    """Power-weighted RMS delay spread per row (seconds) of list columns ``tau_s``, ``a_re``, ``a_im``.

    Rows without paths (or with zero power) give NaN. See the module docstring for the definition.
    """
    def flat(col):
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        return col

    tau_c, re_c, im_c = flat(tau_s), flat(a_re), flat(a_im)
    n = len(tau_c)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(tau_c), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    tau = np.asarray(pc.list_flatten(tau_c).to_numpy(zero_copy_only=False), dtype=np.float64)
    re = np.asarray(pc.list_flatten(re_c).to_numpy(zero_copy_only=False), dtype=np.float64)
    im = np.asarray(pc.list_flatten(im_c).to_numpy(zero_copy_only=False), dtype=np.float64)
    row = np.repeat(np.arange(n), lengths)
    p = re * re + im * im
    sp = np.bincount(row, weights=p, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(row, weights=p * tau, minlength=n) / sp
        dev = tau - mean[row]
        var = np.bincount(row, weights=p * dev * dev, minlength=n) / sp
    var[~(sp > 0)] = np.nan
    return np.sqrt(np.maximum(var, 0.0, where=np.isfinite(var), out=var))


@dataclass
class ReportData:
    """What the figures need, read once: links (one row per CIR link), receivers, cells, footprints."""

    name: str
    links: pd.DataFrame  # rx_id, tx_id, frequency_hz, path_gain_db, los, num_paths, delay_spread_s
    receivers: pd.DataFrame  # rx_id, x, y
    cells: pd.DataFrame  # cell_id, site_id, x, y, azimuth_deg, frequency_hz
    footprints: list = field(default_factory=list)  # shapely polygons, local frame

    @property
    def carriers_hz(self) -> list[float]:
        return sorted(float(f) for f in self.cells["frequency_hz"].unique())


def load_report_data(build) -> ReportData:
    """Read the CIR summary columns, receivers, cells and building footprints of a :class:`twin.open` build."""
    import shapely

    cat = build.catalog
    paths = sorted(p for v, p in zip(cat.column("view").to_pylist(), cat.column("path").to_pylist(), strict=True)
                   if v == "cir")
    cols = ["rx_id", "tx_id", "frequency_hz", "path_gain_db", "los", "num_paths", "tau_s", "a_re", "a_im"]
    if paths:
        t = pa.concat_tables([build.read_table(p, columns=cols) for p in paths])
        links = t.select(cols[:6]).to_pandas()
        links["delay_spread_s"] = rms_delay_spread_s(t["tau_s"], t["a_re"], t["a_im"])
    else:
        links = pd.DataFrame({c: pd.Series(dtype=float) for c in [*cols[:6], "delay_spread_s"]})
    rx = build.read_table("receivers.parquet", columns=["rx_id", "x", "y"]).to_pandas()
    tw = build.read_table("towers.parquet", columns=["cell_id", "site_id", "x", "y", "azimuth_deg", "frequency_hz"])
    b = build.read_table("buildings.parquet", columns=["geometry_local"])
    fp = list(shapely.from_wkb(np.asarray(b.column("geometry_local").to_pylist(), dtype=object))) if b.num_rows else []
    return ReportData(str(build.manifest.get("name", "")), links, rx, tw.to_pandas(), fp)


def best_server(data: ReportData, carrier_hz: float) -> pd.DataFrame:
    """Per receiver (every receiver of the build): the best path gain over the carrier's cells (dB, NaN where
    none reaches) and that cell's id; columns rx_id, x, y, gain_db, cell_id."""
    lk = data.links[np.isclose(data.links["frequency_hz"].to_numpy(dtype=float), carrier_hz, rtol=0, atol=1.0)]
    out = data.receivers[["rx_id", "x", "y"]].copy()
    if len(lk):
        idx = lk.groupby("rx_id")["path_gain_db"].idxmax()
        best = lk.loc[idx, ["rx_id", "path_gain_db", "tx_id"]].rename(columns={"path_gain_db": "gain_db", "tx_id": "cell_id"})
        out = out.merge(best, on="rx_id", how="left")
    else:
        out["gain_db"] = np.nan
        out["cell_id"] = None
    out["gain_db"] = out["gain_db"].astype(float)
    return out


def robust_range(values: np.ndarray, percentiles: tuple[float, float] = GAIN_PERCENTILES) -> tuple[float, float]:
    """(lo, hi) percentiles of the finite values; a degenerate range is widened to +-1 around it."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return (0.0, 1.0)
    lo, hi = (float(x) for x in np.percentile(v, percentiles))
    if hi - lo < 1e-6:
        lo, hi = lo - 1.0, hi + 1.0
    return lo, hi


def _mhz(f_hz: float) -> str:
    return f"{f_hz / 1e6:g} MHz"


# ---------------------------------------------------------------------------------------------- drawing


def draw_footprints(ax, footprints, *, face="0.82", edge="0.45") -> None:
    """Building footprints (local metres) as grey patches, holes kept."""
    import shapely
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    patches = []
    for geom in footprints:
        for poly in shapely.get_parts(geom):
            if poly.is_empty or poly.geom_type != "Polygon":
                continue
            rings = [np.asarray(poly.exterior.coords)[:, :2]] + [np.asarray(r.coords)[:, :2] for r in poly.interiors]
            verts = np.concatenate(rings)
            codes = np.concatenate([[MPath.MOVETO] + [MPath.LINETO] * (len(r) - 2) + [MPath.CLOSEPOLY] for r in rings])
            patches.append(PathPatch(MPath(verts, codes)))
    if patches:
        ax.add_collection(PatchCollection(patches, facecolor=face, edgecolor=edge, linewidths=0.2, zorder=1))


def draw_towers(ax, cells: pd.DataFrame, *, label: str = "towers") -> None:
    """One triangle per site, one tick per cell along its azimuth (degrees clockwise from north)."""
    if not len(cells):
        return
    sites = cells.groupby("site_id", sort=True)[["x", "y"]].first()
    ax.scatter(sites["x"], sites["y"], marker="^", s=70, c="tab:cyan", edgecolors="k", linewidths=0.8,
               label=label, zorder=5)
    for x, y, az in cells[["x", "y", "azimuth_deg"]].itertuples(index=False):
        if az is None or not np.isfinite(az):
            continue
        a = math.radians(float(az))
        ax.plot([x, x + SECTOR_TICK_M * math.sin(a)], [y, y + SECTOR_TICK_M * math.cos(a)], c="k", lw=1.0, zorder=5)


def draw_carrier_map(ax, fig, data: ReportData, carrier_hz: float, *, point_size: float = 14.0) -> dict[str, Any]:
    """Best-server path-gain map of one carrier on ``ax`` with its colour bar; returns a few numbers of it."""
    bs = best_server(data, carrier_hz)
    cells = data.cells[np.isclose(data.cells["frequency_hz"].to_numpy(dtype=float), carrier_hz, rtol=0, atol=1.0)]
    draw_footprints(ax, data.footprints)
    g = bs["gain_db"].to_numpy()
    ok = np.isfinite(g)
    lo, hi = robust_range(g)
    if (~ok).any():
        ax.scatter(bs["x"][~ok], bs["y"][~ok], marker="x", s=12, c="0.35", linewidths=0.7, zorder=3,
                   label=f"not reached ({int((~ok).sum())})")
    sc = ax.scatter(bs["x"][ok], bs["y"][ok], c=g[ok], s=point_size, cmap="viridis", vmin=lo, vmax=hi,
                    edgecolors="none", zorder=4)
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[
        (bool(ok.any() and g[ok].min() < lo), bool(ok.any() and g[ok].max() > hi))]
    fig.colorbar(sc, ax=ax, label="best-server path gain (dB)", shrink=0.85, extend=extend)
    draw_towers(ax, cells, label=f"towers ({cells['site_id'].nunique()} sites, {len(cells)} cells)")
    xs = np.r_[data.receivers["x"].to_numpy(), cells["x"].to_numpy()]
    ys = np.r_[data.receivers["y"].to_numpy(), cells["y"].to_numpy()]
    if len(xs):
        pad = 0.04 * max(np.ptp(xs), np.ptp(ys), 1.0)
        ax.set_xlim(xs.min() - pad, xs.max() + pad)
        ax.set_ylim(ys.min() - pad, ys.max() + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x east (m)")
    ax.set_ylabel("y north (m)")
    ax.set_title(f"{_mhz(carrier_hz)}: best-server path gain\n(colours: {GAIN_PERCENTILES[0]:g}-"
                 f"{GAIN_PERCENTILES[1]:g}th percentile, {lo:.0f} to {hi:.0f} dB)", fontsize=9)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    return {"carrier_hz": carrier_hz, "reached": int(ok.sum()), "receivers": len(bs), "vmin_db": lo, "vmax_db": hi,
            "median_db": float(np.median(g[ok])) if ok.any() else None}


def write_carrier_maps(data: ReportData, out_dir: Path) -> list[tuple[Path, dict]]:
    """One PNG per carrier, ``pathgain_<MHz>MHz.png``."""
    plt = _pyplot()
    res = []
    for f in data.carriers_hz:
        fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=DPI)
        try:
            info = draw_carrier_map(ax, fig, data, f)
            p = out_dir / ("pathgain_" + f"{f / 1e6:g}".replace(".", "p") + "MHz.png")
            fig.savefig(p, bbox_inches="tight")
        finally:
            plt.close(fig)
        res.append((p, info))
    return res


def write_path_gain_preview(data: ReportData, out_png: Path) -> Path:
    """The build's ``previews/path_gain.png``: the carrier maps side by side (at most 4 per row)."""
    plt = _pyplot()
    fs = data.carriers_hz or [0.0]
    ncol = min(len(fs), 4)
    nrow = math.ceil(len(fs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.6 * nrow), dpi=90, squeeze=False)
    try:
        for ax, f in zip(axes.flat, fs, strict=False):
            draw_carrier_map(ax, fig, data, f, point_size=8.0)
        for ax in list(axes.flat)[len(fs):]:
            ax.set_axis_off()
        fig.suptitle(f"{data.name}: best-server path gain per carrier", fontsize=11)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_png, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_png


def _ecdf(ax, values, label):
    v = np.sort(np.asarray(values, dtype=float)[np.isfinite(np.asarray(values, dtype=float))])
    if len(v):
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=f"{label} (n={len(v)})")


def write_cdfs(data: ReportData, out_png: Path) -> Path:
    """Per-carrier CDFs of link path gain (dB), RMS delay spread (ns), number of paths; LOS share of links."""
    plt = _pyplot()
    lk = data.links
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), dpi=DPI)
    try:
        (a_g, a_ds), (a_np, a_los) = axes
        shares, labels, counts = [], [], []
        for f in data.carriers_hz:
            sel = lk[np.isclose(lk["frequency_hz"].to_numpy(dtype=float), f, rtol=0, atol=1.0)]
            lab = _mhz(f)
            _ecdf(a_g, sel["path_gain_db"], lab)
            _ecdf(a_ds, sel["delay_spread_s"] * 1e9, lab)
            _ecdf(a_np, sel["num_paths"], lab)
            labels.append(lab)
            counts.append(len(sel))
            shares.append(float(sel["los"].mean()) if len(sel) else 0.0)
        for ax, xl in ((a_g, "link path gain (dB)"), (a_ds, "RMS delay spread (ns)"), (a_np, "number of paths per link")):
            ax.set_xlabel(xl)
            ax.set_ylabel("CDF (fraction of links)")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="lower right")
        a_g.set_title("path gain of every traced link")
        a_ds.set_title("RMS delay spread (power-weighted)")
        a_np.set_title("paths per link")
        xs = np.arange(len(labels))
        bars = a_los.bar(xs, shares, color="tab:blue")
        for b, s, n in zip(bars, shares, counts, strict=True):
            a_los.text(b.get_x() + b.get_width() / 2, s + 0.01, f"{100 * s:.0f}%\nof {n}", ha="center", va="bottom", fontsize=7)
        a_los.set_xticks(xs, labels, rotation=30, ha="right", fontsize=8)
        a_los.set_ylim(0, 1.15)
        a_los.set_ylabel("LOS share of links")
        a_los.set_title("links with a line-of-sight path")
        a_los.grid(axis="y", alpha=0.3)
        fig.suptitle(f"{data.name}: link statistics per carrier ({len(lk)} links)", fontsize=11)
        fig.tight_layout()
        fig.savefig(out_png, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_png


def coverage_counts(data: ReportData) -> pd.DataFrame:
    """Per cell: receivers reached (a link with paths) and receivers it serves best on its carrier."""
    reached = data.links.groupby("tx_id")["rx_id"].nunique()
    best = pd.concat([best_server(data, f) for f in data.carriers_hz]) if data.carriers_hz else pd.DataFrame(columns=["cell_id"])
    served = best.dropna(subset=["cell_id"]).groupby("cell_id")["rx_id"].nunique() if len(best) else pd.Series(dtype=int)
    c = data.cells[["cell_id", "site_id", "frequency_hz"]].copy()
    c["reached"] = c["cell_id"].map(reached).fillna(0).astype(int)
    c["best_server"] = c["cell_id"].map(served).fillna(0).astype(int)
    return c.sort_values(["frequency_hz", "cell_id"]).reset_index(drop=True)


def write_coverage(data: ReportData, out_png: Path) -> Path:
    """Horizontal bars per cell (grouped by carrier): receivers reached and receivers served best."""
    plt = _pyplot()
    cov = coverage_counts(data)
    n = len(cov)
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.22 * n + 1.5)), dpi=DPI)
    try:
        y = np.arange(n)
        ax.barh(y + 0.2, cov["reached"], height=0.4, color="tab:blue", label="receivers reached (link with paths)")
        ax.barh(y - 0.2, cov["best_server"], height=0.4, color="tab:orange", label="receivers served best (on its carrier)")
        ax.set_yticks(y, [f"{c}  ({_mhz(f)})" for c, f in zip(cov["cell_id"], cov["frequency_hz"], strict=True)], fontsize=6)
        ax.invert_yaxis()
        ax.axvline(len(data.receivers), c="0.3", ls="--", lw=0.8, label=f"all receivers ({len(data.receivers)})")
        ax.set_xlabel("receivers (count)")
        ax.set_title(f"{data.name}: coverage per cell ({n} cells)")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        fig.savefig(out_png, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_png


# ------------------------------------------------------------------------------------ view examples

#: example figure of one view variant: fn(reader, fig) -> caption (HTML-escaped by the caller)
EXAMPLES: Registry[Callable[..., str]] = Registry("report example", field="view")


def _field_extra(reader, name: str, key: str, default=None):
    md = reader.schema.field(name).metadata or {}
    v = md.get(key.encode())
    if v is None:
        return default
    try:
        return json.loads(v)
    except ValueError:
        return v.decode()


def _pick(reader, column: str, how: str = "max") -> int:
    """Index of the row with the largest (finite) value of ``column``; 0 when there is none."""
    t = reader.build.view(reader.name, variant=reader.variant, columns=[column]).to_table() if reader.name != "cir" else None
    if t is None or t.num_rows == 0:
        return 0
    v = np.asarray(t.column(column).to_numpy(zero_copy_only=False), dtype=float)
    v = np.where(np.isfinite(v), v, -np.inf if how == "max" else np.inf)
    return int(np.argmax(v) if how == "max" else np.argmin(v))


def _db(x, floor_db: float = -300.0):
    with np.errstate(divide="ignore"):
        return np.maximum(20 * np.log10(np.abs(x)), floor_db)


def _si_scale(v: float) -> tuple[float, str]:
    """(factor, prefix) so that ``v * factor`` lies in [1, 1000) (W -> mW, µW, nW, pW, fW)."""
    prefixes = {0: "", 1: "m", 2: "µ", 3: "n", 4: "p", 5: "f", 6: "a"}
    if not (v > 0 and np.isfinite(v)):
        return 1.0, ""
    k = int(min(6, max(0, math.ceil(-math.log10(v) / 3))))
    return 10.0 ** (3 * k), prefixes[k]


@EXAMPLES.register("folded_lte")
def _ex_folded_lte(reader, fig) -> str:
    i = _pick(reader, "sync_snr_db")
    s = reader[i]
    win, tpl, off = s["windows"], s["template"], s["true_offset_per_frame"]
    fs = float(_field_extra(reader, "windows", "sample_rate_hz", 1.92e6))
    k, pre = _si_scale(float(np.max(win)))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    n = np.arange(win.shape[1])
    mean = win.mean(axis=0)
    ax1.plot(n, win[0] * k, c="0.65", lw=0.7, label="frame 0")
    ax1.plot(n, mean * k, c="tab:blue", lw=1.1, label=f"mean of the {win.shape[0]} frames")
    k0 = int(np.rint(np.mean(off)))
    seg = mean[k0:k0 + len(tpl)]
    t = tpl[: len(seg)]
    if len(seg) > 2:  # least-squares scale and level of the template against the frame mean
        alpha, beta = np.linalg.lstsq(np.c_[t, np.ones_like(t)], seg, rcond=None)[0]
        ax1.plot(k0 + np.arange(len(t)), (alpha * t + beta) * k, c="tab:orange", lw=0.9,
                 label="template (SSS+PSS) at the true offset, least-squares scaled")
    ax1.axvline(off[0], c="tab:red", ls="--", lw=1.0, label=f"true offset {off[0]:.2f} samples (frame 0)")
    ax1.set_xlabel(f"sample in window (1 sample = {1e6 / fs:.3f} µs)")
    ax1.set_ylabel(f"detector output ({pre}W)")
    ax1.legend(fontsize=7, loc="upper right")
    ax1.set_title(f"rx {int(s['rx_id'])}, cell {s['tx_id']} (PCI {int(s['pci'])}), sync SNR {float(s['sync_snr_db']):.1f} dB, "
                  f"{int(s['num_cochannel'])} co-channel cells", fontsize=9)
    im = ax2.imshow(win * k, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                    extent=(-0.5, win.shape[1] - 0.5, -0.5, win.shape[0] - 0.5))
    ax2.plot(off, np.arange(len(off)), "c.", ms=6, label="true offset per frame")
    ax2.set_xlabel("sample in window")
    ax2.set_ylabel("frame")
    ax2.legend(fontsize=7, loc="upper right")
    fig.colorbar(im, ax=ax2, label=f"detector output ({pre}W)")
    ax2.set_title(f"all {win.shape[0]} frames", fontsize=9)
    return (f"folded LTE: the window with the best sync SNR of the variant, with its template placed at the true "
            f"offset ({off[0]:.2f} samples in frame 0; coarse index {int(s['coarse_index'])}).")


def _selectivity_pick(reader, column: str) -> int:
    """Row whose channel ``column`` varies most over frequency (std of |H| in dB): a telling example."""
    best, arg = -1.0, 0
    for j, row in enumerate(reader.build.view(reader.name, variant=reader.variant, columns=[column])):
        sd = float(np.std(_db(row[column], -300.0)))
        if np.isfinite(sd) and sd > best:
            best, arg = sd, j
    return arg


@EXAMPLES.register("spike_train")
def _ex_spike_train(reader, fig) -> str:
    i = _selectivity_pick(reader, "h_narrowband")
    s = reader[i]
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    cap = s["capture"]
    q = len(cap)
    if "h_full" in s:
        hf = s["h_full"]
        nfull = len(hf)
        ax1.plot(np.arange(nfull) - nfull // 2, _db(hf), c="0.3", lw=0.7, label=f"full band H ({nfull} subcarriers)")
    nb = np.arange(q) - q // 2
    ax1.plot(nb, _db(s["h_narrowband"]), c="tab:blue", lw=1.0, label=f"narrowband receiver (central {q})")
    sub = _field_extra(reader, "h_recovered", "subcarriers")
    if isinstance(sub, list) and len(sub) == q:
        ax1.plot(np.asarray(sub), _db(s["h_recovered"]), ".", c="tab:red", ms=2.5,
                 label=f"recovered at the {q} passed subcarriers")
    ax1.set_xlabel("subcarrier index n (from the band centre)")
    ax1.set_ylabel("|H| (dB)")
    ax1.legend(fontsize=7, loc="lower left")
    ax1.set_title(f"rx {int(s['rx_id'])}, cell {s['tx_id']}, LOS {bool(s['los'])}, "
                  f"first path {float(s['first_path_tof_s']) * 1e9:.0f} ns", fontsize=9)
    ax1.grid(alpha=0.3)
    ax2.plot(nb, _db(cap), c="tab:purple", lw=0.8)
    ax2.set_xlabel("capture bin k (after sub-sampling by P)")
    ax2.set_ylabel("|Y| (dB re 1 √W)")
    ax2.set_title(f"spike-train capture ({q} bins)", fontsize=9)
    ax2.grid(alpha=0.3)
    return ("spike train: the most frequency-selective link's full-band channel, a plain narrowband receiver's "
            "central subcarriers and the channel recovered at the spike-train filter's passed subcarriers (left); "
            "the folded capture itself (right).")


@EXAMPLES.register("cir_taps")
def _ex_cir_taps(reader, fig) -> str:
    i = _pick(reader, "num_cells")
    s = reader[i]
    mag = np.abs(s["cir"])[:, 0, :]  # cell x tap, first receive antenna
    m = np.asarray(s["cell_mask"], dtype=bool)
    dt = float(_field_extra(reader, "cir", "tap_spacing_s", 1.0))
    mag_db = np.where(m[:, None], _db(mag, -300.0), np.nan)
    finite = mag_db[np.isfinite(mag_db) & (mag_db > -299)]
    hi = float(finite.max()) if finite.size else 0.0
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    im = ax1.imshow(mag_db, aspect="auto", cmap="viridis", vmin=hi - 60, vmax=hi, interpolation="nearest",
                    extent=(-0.5 * dt * 1e9, (mag.shape[1] - 0.5) * dt * 1e9, mag.shape[0] - 0.5, -0.5))
    fig.colorbar(im, ax=ax1, label="|h| (dB), 60 dB range", extend="min")
    ax1.set_xlabel("tap delay (ns, tap 0 = transmission time)")
    ax1.set_ylabel("cell slot (strongest first; empty = masked)")
    inside = int(np.sum(np.nanmax(mag_db, axis=1) > hi - 60)) if m.any() else 0
    ax1.set_title(f"rx {int(s['rx_id'])}: {int(m.sum())} cells, {inside} with taps within 60 dB of the strongest; "
                  f"taps every {dt * 1e9:.1f} ns", fontsize=9)
    t = np.arange(mag.shape[1]) * dt * 1e9
    ids = list(s["tx_ids"]) if "tx_ids" in s else []
    for c in np.flatnonzero(m)[:4]:
        ax2.plot(t, _db(mag[c], -300.0), lw=0.8, label=str(ids[c]) if c < len(ids) else f"slot {c}")
    ax2.set_ylim(hi - 60, hi + 3)
    ax2.set_xlabel("tap delay (ns)")
    ax2.set_ylabel("|h| (dB)")
    ax2.set_title("the 4 strongest cells", fontsize=9)
    ax2.legend(fontsize=6)
    ax2.grid(alpha=0.3)
    return ("cir taps: one receiver's band-limited CIR magnitude per cell (rows in the order stored, strongest first); "
            "a dark row is a cell whose paths arrive after the last tap.")


PATH_TYPES = {1: ("I: site-site LOS", "tab:green"), 2: ("II: via a target", "tab:red"), 3: ("III: other", "tab:gray")}


@EXAMPLES.register("bistatic_echo")
def _ex_bistatic(reader, fig) -> str:
    t = reader.build.view(reader.name, variant=reader.variant, columns=["tx_site", "rx_site", "path_type"]).to_table()
    types = [list(v or []) for v in t.column("path_type").to_pylist()]
    diff = [a != b for a, b in zip(t.column("tx_site").to_pylist(), t.column("rx_site").to_pylist(), strict=True)]
    # a pair of two sites, with a target echo if any, and as many kinds and paths as there are
    score = [(diff[k], 2 in types[k], len(set(types[k])), len(types[k])) for k in range(t.num_rows)]
    s = reader[int(max(range(t.num_rows), key=lambda k: score[k]))]
    h = s["h"]
    fs = float(_field_extra(reader, "h", "sampling_rate_hz", 1.0))
    ax = fig.subplots(1, 1)
    n = np.arange(len(h))
    ax.plot(n, _db(h), c="0.55", lw=0.7, label="h (with noise)")
    if "h_clean" in s:
        ax.plot(n, _db(s["h_clean"]), c="k", lw=0.9, label="h without noise")
    obs = np.asarray(s["path_observed_samples"], dtype=float)
    typ = np.asarray(s["path_type"], dtype=int)
    a = np.asarray(s["path_a"])
    top = float(max(np.max(_db(h)), np.max(_db(a), initial=-300.0))) + 3
    floor = 10 * math.log10(max(float(s["noise_var"]), 1e-300))
    for code, (lab, col) in sorted(PATH_TYPES.items(), reverse=True):  # type I drawn last, on top
        sel = typ == code
        if sel.any():
            ax.vlines(obs[sel], floor - 20, _db(a[sel]), colors=col, lw=1.4, label=f"type {lab} ({int(sel.sum())})")
            ax.plot(obs[sel], _db(a[sel]), "o", c=col, ms=4)
    xmax = float(np.nanmax(obs)) if len(obs) else len(h) / 4
    ax.set_xlim(-2, min(len(h), max(40.0, 1.3 * xmax + 10)))
    ax.axhline(floor, c="tab:blue", ls=":", lw=0.9, label="noise level per tap (noise_var)")
    ax.set_ylim(min(floor - 20, top - 60), top + 2)
    ax.set_xlabel(f"delay tap (1 tap = {1e9 / fs:.2f} ns at the receiving site's clock)")
    ax.set_ylabel("|h| (dB re linear gain 1)")
    ax.set_title(f"snapshot {int(s['snapshot'])}: {s['tx_site']} -> {s['rx_site']}, "
                 f"STO difference {int(s['sto_diff_samples'])} samples", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    return ("bistatic echo: the delay profile of one site pair with each path's observed tap and gain, "
            "coloured by type (I line of sight, II target echo, III other).")


@EXAMPLES.register("tb_fingerprint")
def _ex_tb(reader, fig) -> str:
    i = _pick(reader, "num_paths")
    s = reader[i]
    tb = np.asarray(s["tb_power"], dtype=np.float32)  # row x col x delay x doppler
    r, c, d, v = np.unravel_index(int(np.argmax(tb)), tb.shape)
    dt = float(_field_extra(reader, "tb_power", "delay_tap_s", 1.0))
    dop = float(_field_extra(reader, "tb_power", "doppler_bin_hz", 1.0))
    v0 = int((_field_extra(reader, "tb_power", "doppler_crop_bins", [0, tb.shape[3]]) or [0])[0])
    ax1, ax2 = fig.subplots(1, 2)
    ang = 10 * np.log10(np.maximum(tb[:, :, d, v], 1e-6))
    im1 = ax1.imshow(ang, origin="lower", aspect="auto", cmap="inferno", vmin=-40, vmax=0, interpolation="nearest")
    fig.colorbar(im1, ax=ax1, label="power (dB re the tensor's max)", extend="min")
    ax1.set_xlabel("angle column bin (fftshifted)")
    ax1.set_ylabel("angle row bin (fftshifted)")
    dd = 10 * np.log10(np.maximum(tb[r, c, :, :], 1e-6))
    live = np.flatnonzero((dd > -40).any(axis=1))
    d0 = max(0, int(live.min()) - 8) if len(live) else 0
    d1 = min(tb.shape[2], (int(live.max()) + 9) if len(live) else tb.shape[2])
    im2 = ax2.imshow(dd[d0:d1].T, origin="lower", aspect="auto", cmap="inferno", vmin=-40, vmax=0, interpolation="nearest",
                     extent=((d0 - 0.5) * dt * 1e9, (d1 - 0.5) * dt * 1e9, (v0 - 0.5) * dop, (v0 + tb.shape[3] - 0.5) * dop))
    fig.colorbar(im2, ax=ax2, label="power (dB re the tensor's max)", extend="min")
    ax2.set_xlabel("delay (ns)")
    ax2.set_ylabel("Doppler (Hz)")
    ax2.set_title(f"delay-Doppler slice at angle bin ({r}, {c})", fontsize=9)
    ax1.set_title(f"rx {int(s['rx_id'])}, cell {s['tx_id']}, {float(s['speed_mps']):.1f} m/s, {int(s['num_paths'])} paths\n"
                  f"angle slice at delay tap {d}, Doppler bin {v0 + v}", fontsize=9)
    return "triple beam: slices through the strongest bin of one link's angle-delay-Doppler power tensor."


# ----------------------------------------------------------------------------------------------- report


@dataclass
class Report:
    root: Path
    figures: list[tuple[str, str]] = field(default_factory=list)  # (png name, caption)
    skipped: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.root / "index.html"


def write_report(build_dir: str | Path, out_dir: str | Path | None = None) -> Report:
    """Write ``index.html`` and the PNGs into ``out_dir`` (default ``<build>/report``); returns what was written."""
    import twin

    build = twin.open(build_dir)
    data = load_report_data(build)
    if not len(data.links):
        raise TwinInputError("this build has no traced links to report on", file=build_dir,
                             fix="run `twin build` (it resumes) first")
    out = Path(out_dir) if out_dir is not None else Path(build_dir) / "report"
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rep = Report(out)
    maps = write_carrier_maps(data, tmp)
    for p, info in maps:
        rep.figures.append((p.name, f"{_mhz(info['carrier_hz'])}: {info['reached']} of {info['receivers']} receivers "
                                    f"reached, median best-server gain {info['median_db']:.1f} dB"
                            if info["median_db"] is not None else f"{_mhz(info['carrier_hz'])}: no receiver reached"))
    write_cdfs(data, tmp / "cdfs.png")
    rep.figures.append(("cdfs.png", "per-carrier CDFs of link path gain, RMS delay spread and paths per link; LOS share"))
    write_coverage(data, tmp / "coverage.png")
    rep.figures.append(("coverage.png", "receivers each cell reaches, and those it serves best on its carrier"))
    plt = _pyplot()
    for name, variants in build.views().items():
        if name not in EXAMPLES:
            rep.skipped.append(f"{name}: no example figure is registered for this view")
            continue
        for v in variants:
            reader = build.view(name, variant=v)
            if len(reader) == 0:
                rep.skipped.append(f"{name} variant {v}: no rows")
                continue
            fig = plt.figure(figsize=(12, 4.6), dpi=DPI)
            try:
                caption = EXAMPLES.get(name)(reader, fig)
                fig.suptitle(f"view {name}, variant {v}", fontsize=10)
                fig.tight_layout()
                png = f"view_{name}_{v}.png"
                fig.savefig(tmp / png, bbox_inches="tight")
            finally:
                plt.close(fig)
            rep.figures.append((png, caption))
    _write_index(tmp / "index.html", build, data, rep)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return rep


def _write_index(path: Path, build, data: ReportData, rep: Report) -> None:
    m = build.manifest
    e = html.escape
    rows = [("build", m.get("name", "")), ("code version", m.get("code_version", "")),
            ("receivers", len(data.receivers)), ("cells", len(data.cells)),
            ("carriers", ", ".join(_mhz(f) for f in data.carriers_hz)), ("links with paths", len(data.links)),
            ("views", ", ".join(f"{k} ({len(v)} variant{'s' if len(v) > 1 else ''})" for k, v in build.views().items()) or "none")]
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>twin report: {e(str(m.get('name', '')))}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}img{max-width:100%;border:1px solid #ccc}"
             "figure{margin:1.5em 0}td{padding:2px 10px}</style></head><body>",
             f"<h1>twin report: {e(str(m.get('name', '')))}</h1><table>"]
    parts += [f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in rows]
    parts.append("</table>")
    for png, cap in rep.figures:
        parts.append(f"<figure><img src='{e(png)}' alt='{e(cap)}'><figcaption>{e(cap)}</figcaption></figure>")
    if rep.skipped:
        parts.append("<h2>not drawn</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in rep.skipped) + "</ul>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


__all__ = ["EXAMPLES", "Report", "ReportData", "best_server", "coverage_counts", "load_report_data", "rms_delay_spread_s",
           "robust_range", "write_carrier_maps", "write_cdfs", "write_coverage", "write_path_gain_preview", "write_report"]
