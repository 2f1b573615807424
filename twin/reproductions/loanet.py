"""``twin reproduce loanet``: LOA-Net's localization experiment (seed ``004_*.txt`` §V-A/B, Fig. 7, Table IV) and
its orientation experiment (§V-C) on a ray-traced open square of the Paris twin.

Scenario (LOA-Net §V-A, Table II): one BS with a 128-element UPA (8 x 16, λ/2, vertical, facing north: the
paper's X-Z plane), 25 m high, in the middle of a 40 m x 40 m area; UEs at 1.5 / 4.5 / 7.5 m ("floors"); training
UEs on a square grid of each floor, test UEs uniform over the area (the same count per floor); LTE band 46 at
5.8 GHz (EARFCN 53290), 15 kHz, 2048 subcarriers, CP 144, 8 slots x 14 symbols, 5 km/h, 20 dB SNR (the
``tb_fingerprint`` view's defaults). The paper simulates QuaDRiGa's 3GPP 38.901 indoor NLOS; twin traces a
scene, and the only scene available offline is the Paris preset (Place Charles-de-Gaulle, Sionna RT's
``etoile``): the area is the building-free 40 m x 40 m square nearest the Arc de Triomphe (the 50 m arch and
the ring of façades are the scatterers). It is an outdoor, mostly line-of-sight channel, sparser in paths than
the paper's indoor NLOS one (``summary.json``: LOS share, paths per link). A generated indoor hall would match
the paper better; twin has no scene generator yet.

Well-posedness (``LoaSizes.half_space``, ``antenna_pattern``): a planar array resolves direction cosines only, so
a UE and its mirror image behind the array plane give the same angle-delay fingerprint; in a line-of-sight square
nothing breaks the tie (measured with UEs on both sides and an isotropic element: 45-48 % of every method's
predictions on the wrong side, ~10 m north-south error). A real BS panel (3GPP 38.901, the paper's channel model)
is a sector antenna that serves its front half-space only, so the reproduction keeps the paper's area, BS and
distance bands but places the UEs in the half of the square in front of the array (1..20 m north of the BS,
40 m wide) and gives the BS the 38.901 element (``antenna_pattern = "tr38901"``, 30 dB front-to-back);
``half_space = "both"`` with ``"iso"`` restores the mirror-ambiguous variant.

Doppler (§V-C): the view already uses the paper's frame (8 x 14 symbols: 8.0 ms, 125 Hz Doppler bins) and speed
(5 km/h: at most 26.8 Hz at 5.8 GHz). The motion direction is visible in principle: an off-grid Doppler line leaks
into the neighbouring bins with a Dirichlet skirt whose asymmetry follows the sign and size of the shift
(measured on the training UEs: log10 D(+1 bin)/D(-1 bin) up to ±0.18, mean ±0.1 for opposite directions; a
plain MLP on log D + the true position reaches 96 % test accuracy in 40 s once D is standardised per (tap, bin),
and stays at chance without it). Fusion-TDC therefore reads D in dB, standardised with the training rows' statistics.

Split (the paper's protocol, a spatial one: the test positions are not training positions): grid UEs -> train
(and a random ``val_fraction`` of them -> validation, for early stopping), random UEs -> test.

Methods: ``de_maskdetr``, ``ec_maskdetr``, ``cnn2d``, ``cnn3d`` (position, the ``tb_fingerprint`` variant with one
random motion direction per UE, "randomized motion directions"), ``wknn`` (Euclidean distance on the same
angle-delay image the networks get, k = 5, inverse-distance weights) and ``fusion_tdc`` (16 motion directions;
trained on all 16 orientations of every training position with the true position as prior, tested on all 16
orientations of every test position, i.e. uniform random orientations). Fusion-TDC reads only the Doppler
information D = Σ_angles P (eq. 30), which the unitary angle DFT makes independent of the array: its variant is
built with a 1 x 1 array (D is then the 128-element D divided by 128 exactly, signal and noise alike; the view
test checks it), 16 rows per UE at 5 KB each instead of 663 KB.

Scales (:data:`SIZES`): "small" took 1004 s on 2 shared CPU cores (load ~2): a 2 m grid on the front half (231
points per floor, 693 training + validation UEs), 300 test UEs, up to 300 epochs with early stopping (patience
12) inside per-method fit budgets (``fit_budget_s``), hidden 128, backbone width 16 with 4 stages, delay taps
0..47 of the CP (1.56 µs, 470 m of path: the area's delays and its first-order façade echoes), Fusion-TDC on
6000 of its 16 x 624 training rows. "paper": the paper's sizes (1 m grid, hidden 256, all 144 taps, early
stopping with patience 100 epochs; a GPU job, not run here).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.baselines.loanet import PAPER, PAPER_BANDS_M
from twin.baselines.reproduce import REPRODUCTIONS, Row

log = logging.getLogger("twin.baselines")

AREA_M = 40.0  # LOA-Net §V-A: 40 m x 40 m centred on the BS
BS_HEIGHT_M = 25.0
FLOORS_M = (1.5, 4.5, 7.5)
EARFCN_5800 = 53290  # LTE band 46 (TS 36.101): 5150 MHz + 0.1 MHz (53290 - 46790) = 5800 MHz
BANDWIDTH_HZ = 2048 * 15e3
FRONT_MIN_M = 1.0  # front half-space UEs: at least 1 m in front of the array plane (no UE in the plane itself)
BANDS_M = ((0.0, 5.0), (5.0, 10.0), (10.0, 15.0), (15.0, 20.0))  # Table IV, horizontal distance to the BS
POSITION_METHODS = ("de_maskdetr", "ec_maskdetr", "cnn2d", "cnn3d", "wknn")


@dataclass(frozen=True)
class LoaSizes:
    grid_m: float  # training grid spacing per floor
    test_per_floor: int
    epochs: int
    tdc_epochs: int
    hidden: int
    width: int
    stages: int
    ff: int
    keep_taps: int | None
    tdc_train_rows: int | None
    patience: int = 100
    fit_budget_s: dict[str, float] | None = None  # per-method max_fit_s (None: no limit)
    half_space: str = "front"  # "front": UEs only in front of the array; "both": the whole square (mirror-ambiguous)
    antenna_pattern: str = "tr38901"  # BS element: 3GPP 38.901 directive panel element ("iso": isotropic)
    tdc_doppler_scale: str = "db"
    val_fraction: float = 0.1
    samples_per_src: int = 20_000
    max_depth: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.half_space not in ("front", "both"):
            raise ValueError(f"half_space must be 'front' or 'both', got {self.half_space!r}")
        if self.tdc_doppler_scale not in ("db", "linear"):
            raise ValueError(f"tdc_doppler_scale must be 'db' or 'linear', got {self.tdc_doppler_scale!r}")


SIZES = {
    "small": LoaSizes(grid_m=2.0, test_per_floor=100, epochs=300, tdc_epochs=300, hidden=128, width=16, stages=4,
                      ff=256, keep_taps=48, tdc_train_rows=6000, patience=12,
                      fit_budget_s={"de_maskdetr": 190.0, "ec_maskdetr": 190.0, "cnn2d": 80.0, "cnn3d": 110.0,
                                    "fusion_tdc": 200.0}),
    "paper": LoaSizes(grid_m=1.0, test_per_floor=700, epochs=1000, tdc_epochs=1000, hidden=256, width=32, stages=3,
                      ff=512, keep_taps=None, tdc_train_rows=None, samples_per_src=100_000),
}


# ------------------------------------------------------------------------------------------- scenario


def open_square(footprints, bounds, centre_xy, *, half_m: float = AREA_M / 2, margin_m: float = 2.0,
                r0_m: float = 30.0, r_step_m: float = 5.0, bearing_step_deg: float = 15.0) -> tuple[float, float]:
    """Centre of the building-free ``2 half_m`` square (plus ``margin_m``) nearest ``centre_xy``: rings of radius
    r0, r0 + r_step, ... and bearings 0, step, ... (clockwise from north), first free one wins."""
    import shapely

    union = shapely.union_all(list(footprints))
    inner = shapely.box(*bounds).buffer(-half_m - margin_m)
    cx, cy = centre_xy
    r = r0_m
    while r < 400.0:
        for b in np.arange(0.0, 360.0, bearing_step_deg):
            x, y = cx + r * np.sin(np.radians(b)), cy + r * np.cos(np.radians(b))
            box = shapely.box(x - half_m, y - half_m, x + half_m, y + half_m).buffer(margin_m)
            if inner.contains(shapely.Point(x, y)) and not box.intersects(union):
                return float(x), float(y)
        r += r_step_m
    raise ValueError(f"no building-free {2 * half_m:g} m square within 400 m of the centre")


def write_tower_csv(path: Path, xy: tuple[float, float], frame) -> Path:
    """One LTE band-46 cell at 5.8 GHz, 25 m mast, azimuth 0 (the UPA faces north), CellMapper layout."""
    lon, lat = frame.to_wgs84(np.array([xy[0]]), np.array([xy[1]]))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["latitude", "longitude", "altitude", "MCC", "MNC", "TAC", "CID", "signal", "type", "subtype",
                    "ARFCN", "PCI", "azimuth", "height", "power", "bandwidth_mhz"])
        w.writerow([f"{float(np.atleast_1d(lat)[0]):.8f}", f"{float(np.atleast_1d(lon)[0]):.8f}", 0, 999, 99, 1,
                    4001, "", "LTE", "LTE", EARFCN_5800, 1, 0, BS_HEIGHT_M, 30.0, BANDWIDTH_HZ / 1e6])
    return path


def receivers(bs_xy: tuple[float, float], sz: LoaSizes):
    """Grid UEs (kind "grid": every floor, spacing ``grid_m`` over the area, edges included) then random UEs
    (kind "random": ``test_per_floor`` uniform points per floor, seeded); rx_id dense from 0. The area is the
    40 m x 40 m square, or with ``half_space = "front"`` its half in front of the array (north of the BS, from
    ``FRONT_MIN_M``): a planar array cannot tell a UE from its mirror image behind its plane."""
    import pyarrow as pa

    from twin.schema import RECEIVER_SCHEMA

    h = AREA_M / 2
    gx1 = np.linspace(-h, h, int(round(AREA_M / sz.grid_m)) + 1)
    y_lo = FRONT_MIN_M if sz.half_space == "front" else -h
    gy1 = np.linspace(y_lo, h, int(round((h - y_lo) / sz.grid_m)) + 1)
    gx, gy = np.meshgrid(gx1, gy1, indexing="ij")
    rows = []
    for z in FLOORS_M:
        rows += [(bs_xy[0] + x, bs_xy[1] + y, z, "grid") for x, y in zip(gx.ravel(), gy.ravel(), strict=True)]
    rng = np.random.default_rng([sz.seed, 4004])
    for z in FLOORS_M:
        p = np.column_stack([rng.uniform(-h, h, sz.test_per_floor), rng.uniform(y_lo, h, sz.test_per_floor)])
        rows += [(bs_xy[0] + x, bs_xy[1] + y, z, "random") for x, y in p]
    k = len(rows)
    cols = {"rx_id": np.arange(k, dtype=np.int64), "x": [r[0] for r in rows], "y": [r[1] for r in rows],
            "z": [r[2] for r in rows], "kind": [r[3] for r in rows], "route_id": np.full(k, -1, np.int64),
            "t_s": np.zeros(k), "vx": np.zeros(k), "vy": np.zeros(k), "vz": np.zeros(k)}
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in RECEIVER_SCHEMA}, schema=RECEIVER_SCHEMA)


def view_settings(tdc: bool) -> dict:
    """The tb_fingerprint settings: the view's defaults (Table II) and, for Fusion-TDC, all 16 orientations on a
    1 x 1 array (see the module docstring)."""
    return {"orientations": "all", "num_rows": 1, "num_cols": 1} if tdc else {}


def build_config(n_rx: int, sz: LoaSizes, views: dict):
    from twin.config import load_build_config

    cfg = load_build_config(None, overrides={
        "ingest": {"site_merge_m": 0.0, "default_bandwidth_hz": BANDWIDTH_HZ},
        "receivers": {"mode": "random", "count": n_rx, "seed": sz.seed + 11},
        "trace": {"antenna_pattern": sz.antenna_pattern, "samples_per_src": sz.samples_per_src, "max_depth": sz.max_depth,
                  "max_num_paths_per_src": 2 * sz.samples_per_src, "seed": sz.seed + 42},
        "dask": {"workers": 1},
    })
    return dataclasses.replace(cfg, views=views)


def write_protocol_split(root: Path, val_fraction: float, seed: int) -> dict:
    """Grid UEs -> train / validation (a random ``val_fraction``), random UEs -> test (groups "grid", "random")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from twin.config import config_hash
    from twin.datasets.splits import install_split_table

    rx = pq.read_table(root / "receivers.parquet", columns=["rx_id", "kind"]).to_pandas()
    grid = rx["kind"].to_numpy() == "grid"
    rng = np.random.default_rng([seed, 77])
    val = np.zeros(len(rx), bool)
    gi = np.flatnonzero(grid)
    val[rng.choice(gi, int(round(val_fraction * len(gi))), replace=False)] = True
    split = np.where(~grid, "test", np.where(val, "validation", "train"))
    table = pa.table({"rx_id": rx["rx_id"].to_numpy(np.int64), "split": split.tolist(),
                      "group": np.where(grid, "grid", "random").tolist()})
    settings = {"by": "loanet_protocol", "val_fraction": val_fraction, "seed": seed,
                "names": ["train", "validation", "test"]}
    return install_split_table(root, table, config_hash=config_hash(settings), settings=settings)


def build_scenario(out: Path, sz: LoaSizes) -> dict:
    """Ingest the Paris preset, place the BS and UEs, trace (5.8 GHz), build both tb_fingerprint variants, split.

    Returns a summary (BS position, UE counts, LOS share, paths per link, the two variants, seconds)."""
    import pyarrow.parquet as pq

    import twin
    from twin.datasets.stage import run_views
    from twin.ingest.source import BuildingSource
    from twin.ingest.stage import run_ingest
    from twin.render.stage import run_trace
    from twin.reproductions.vinloc_scenarios import ARC_DE_TRIOMPHE_LONLAT, scene_geometry, write_receivers

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    src = BuildingSource.from_options(city="paris", offline=True)
    probe = out / "probe"
    if not (probe / "buildings.parquet").exists():
        run_ingest(src, out, name="probe", config=build_config(1, sz, {}), overwrite=True)
    fps, _, bounds, frame = scene_geometry(probe)
    ax, ay = frame.to_local(*ARC_DE_TRIOMPHE_LONLAT)
    bs = open_square(fps, bounds, (float(ax), float(ay)))
    rx = receivers(bs, sz)
    reg, tdc = view_settings(False), view_settings(True)
    root = out / "loanet"
    done = root / "loanet_scenario.json"
    if done.exists():
        summary = json.loads(done.read_text())
        if summary.get("sizes") == dataclasses.asdict(sz):
            return summary
    towers = write_tower_csv(out / "loanet_tower.csv", bs, frame)
    cfg = build_config(rx.num_rows, sz, {"tb_fingerprint": reg})
    run_ingest(src, out, towers=towers, name="loanet", config=cfg, overwrite=True)
    write_receivers(root, rx, cfg)
    run_trace(root, cfg, resume=True)
    t_trace = time.perf_counter() - t0
    run_views(root, ["tb_fingerprint"], cfg)
    run_views(root, ["tb_fingerprint"], dataclasses.replace(cfg, views={"tb_fingerprint": tdc}))
    t_views = time.perf_counter() - t0 - t_trace
    split = write_protocol_split(root, sz.val_fraction, sz.seed)
    b = twin.open(root)
    variants = {}
    for name, settings in (("position", reg), ("fusion_tdc", tdc)):
        variants[name] = next(r["variant"] for r in _variants(root) if _settings(r["settings"]) == settings)
    cir = b.cir(columns=["rx_id", "los", "num_paths", "tau_s"]).to_table().to_pandas()
    tw = pq.read_table(root / "towers.parquet", columns=["x", "y", "z"]).to_pandas().iloc[0]
    summary = {
        "sizes": dataclasses.asdict(sz), "root": str(root), "bs_local_m": [float(tw.x), float(tw.y), float(tw.z)],
        "arc_local_m": [float(ax), float(ay)], "bs_to_arc_m": float(np.hypot(bs[0] - ax, bs[1] - ay)),
        "receivers": int(rx.num_rows), "links_with_paths": int(len(cir)), "los_share": float(cir["los"].mean()),
        "paths_per_link_median": float(cir["num_paths"].median()),
        "max_excess_delay_us_median": float(np.median([max(t) - min(t) for t in cir["tau_s"] if len(t)]) * 1e6),
        "split": split.get("receivers"), "variants": variants,
        "seconds": {"ingest_trace": round(t_trace, 1), "views": round(t_views, 1)},
    }
    done.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _settings(text: str) -> dict:
    return {} if text in ("", "defaults") else json.loads(text)


def _variants(root: Path) -> list[dict]:
    from twin.datasets.variants import variant_rows

    return [r for r in variant_rows(root) if r["view"] == "tb_fingerprint"]


# ------------------------------------------------------------------------------------------- methods


def angle_delay_features(reader, keep_taps: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rx_id, the flattened angle-delay images A of eq. 28 (N, R·C·L), positions (N, 3)) of a view reader."""
    from twin.baselines.core import read_columns
    from twin.baselines.loanet_models import preprocess

    cols = read_columns(reader, ["rx_id", "x", "y", "z", "tb_power"])
    db = b"dB" in (reader.schema.field("tb_power").metadata or {}).get(b"units", b"")
    tb = np.asarray(cols["tb_power"], np.float32)
    if keep_taps is not None:
        tb = tb[..., :keep_taps, :]
    a, _, _ = preprocess(tb, db=db)
    pos = np.column_stack([cols["x"], cols["y"], cols["z"]]).astype(np.float64)
    return np.asarray(cols["rx_id"], np.int64), a.reshape(len(a), -1).numpy().astype(np.float64), pos


def wknn_run(root: Path, out: Path, variant: str, *, keep_taps: int | None, k: int = 5) -> np.ndarray:
    """WKNN (Euclidean distance on A, no standardisation: the paper's "WKNN based on the Euclidean distance") via
    the shared ``wknn`` baseline's matcher; writes the run directory files and returns the test errors (m)."""
    import torch

    import twin
    from twin.baselines import rundir as rd
    from twin.baselines.wknn import Wknn, WknnConfig, position_frame

    b = twin.open(root)
    t0 = time.perf_counter()
    _, xtr, ytr = angle_delay_features(b.view("tb_fingerprint", variant, split="train"), keep_taps)
    rx, xte, yte = angle_delay_features(b.view("tb_fingerprint", variant, split="test"), keep_taps)
    model = Wknn(WknnConfig(view="tb_fingerprint", feature="tb_power (angle-delay image, eq. 28)", k=k))
    model.load_state_dict({"cells": [], "x": xtr, "y": ytr, "mu": np.zeros(xtr.shape[1]),
                           "sd": np.ones(xtr.shape[1])})
    pred = model.predict_features(xte)
    df = position_frame(rx, pred, yte)
    err = df["error"].to_numpy(float)
    out.mkdir(parents=True, exist_ok=True)
    rd.write_config(out, {"baseline": "wknn", "data": str(root), "view": "tb_fingerprint", "variant": variant,
                          "seed": 0, "baselines": {"wknn": {"k": k, "feature": "angle-delay image A (eq. 28)",
                                                            "keep_taps": keep_taps if keep_taps else 0,
                                                            "standardise": False}}})
    rd.write_metrics(out, rd.metrics_record(baseline="wknn", data=str(root), split="test", errors=err, unit="m",
                                            train_rows=len(ytr), fit_seconds=time.perf_counter() - t0))
    rd.write_errors(out, df)
    rd.plot_cdf(out / rd.CDF, {"wknn": err}, unit="m", title=f"wknn on {root.name} (test)")
    rd.plot_loss(out / rd.LOSS, [], title="wknn")
    torch.save({"baseline": "wknn", "state": model.state_dict()}, out / rd.MODEL)
    return err


def band_means(df, bs_xy) -> list[float | None]:
    """Mean error per Table IV band of horizontal UE-BS distance (the last band runs to the area's corners)."""
    d = np.hypot(df["true_x"].to_numpy() - bs_xy[0], df["true_y"].to_numpy() - bs_xy[1])
    e = df["error"].to_numpy(float)
    out: list[float | None] = []
    for i, (lo, hi) in enumerate(BANDS_M):
        sel = (d >= lo) & ((d < hi) if i < len(BANDS_M) - 1 else np.ones_like(d, bool))
        out.append(float(e[sel].mean()) if sel.any() else None)
    return out


def _losses(run: Path) -> dict:
    """First/last training loss (mean of the first/last 20 steps) and the best validation loss of a run."""
    p = run / "loss.jsonl"
    if not p.exists():
        return {}
    rows = [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    tr = [r["loss"] for r in rows if r.get("split", "train") == "train"]
    va = [r["loss"] for r in rows if r.get("split") == "val"]
    return {"train_first": float(np.mean(tr[:20])) if tr else None, "train_last": float(np.mean(tr[-20:])) if tr
            else None, "val_best": float(min(va)) if va else None, "val_last": float(va[-1]) if va else None,
            "steps": len(tr), "epochs": len(va)}


def plot_losses(path: Path, runs: dict[str, Path]) -> Path:
    """Training (thin) and validation (markers) loss of every network on one axis (standardised-position MSE)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, run) in enumerate(runs.items()):
        p = run / "loss.jsonl"
        if not p.exists():
            continue
        rows = [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
        tr = [(r["step"], r["loss"]) for r in rows if r.get("split", "train") == "train"]
        va = [(r["step"], r["loss"]) for r in rows if r.get("split") == "val"]
        if tr:
            s, v = np.array(tr).T
            w = max(1, len(v) // 40)
            ax.plot(s[w - 1:], np.convolve(v, np.ones(w) / w, "valid"), color=f"C{i}", lw=0.8, alpha=0.7,
                    label=f"{name} train")
        if va:
            s, v = np.array(va).T
            ax.plot(s, v, "o-", color=f"C{i}", ms=3, label=f"{name} validation")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE (standardised position)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("LOA-Net reproduction: loss curves", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def ranking_note(mean: dict[str, float]) -> tuple[bool, str]:
    """Whether the paper's ranking DE <= EC <= CNNs, WKNN holds on the measured mean errors, and the order."""
    de, ec = mean.get("de_maskdetr"), mean.get("ec_maskdetr")
    others = {k: v for k, v in mean.items() if k in ("cnn2d", "cnn3d", "wknn")}
    if de is None or ec is None or not others:
        return False, "ranking: not every method finished"
    order = " < ".join(f"{k} {v:.2f}" for k, v in sorted(mean.items(), key=lambda kv: kv[1]))
    holds = de <= ec <= min(others.values())
    return holds, f"paper's ranking (DE <= EC <= CNN, WKNN) {'holds' if holds else 'does not hold'}: {order} m (mean)"


@REPRODUCTIONS.register("loanet")
def reproduce_loanet(scale: str, out: Path, *, device: str = "cpu") -> list[Row]:
    import pandas as pd

    from twin.baselines import rundir as rd
    from twin.baselines.core import error_metrics
    from twin.baselines.runner import evaluate, train

    sz = SIZES[scale]
    out = Path(out)
    t0 = time.perf_counter()
    summary = build_scenario(out / "builds", sz)
    root = Path(summary["root"])
    bs = summary["bs_local_m"]
    v_pos, v_tdc = summary["variants"]["position"], summary["variants"]["fusion_tdc"]
    seconds: dict[str, float] = {"build": round(time.perf_counter() - t0, 1)}
    budget = sz.fit_budget_s or {}
    common = {"epochs": sz.epochs, "patience": sz.patience, "keep_taps": sz.keep_taps}
    net = {"hidden": sz.hidden, "width": sz.width, "stages": sz.stages, "ff": sz.ff}
    overrides = {"de_maskdetr": {**common, **net}, "ec_maskdetr": {**common, **net}, "cnn2d": dict(common),
                 "cnn3d": dict(common)}
    for name, o in overrides.items():
        o["max_fit_s"] = float(budget.get(name, 0.0))
    errs: dict[str, np.ndarray] = {}
    frames: dict[str, pd.DataFrame] = {}
    info: dict[str, dict] = {}
    runs: dict[str, Path] = {}
    for name in POSITION_METHODS:
        t = time.perf_counter()
        run = out / "runs" / name
        runs[name] = run
        if name == "wknn":
            errs[name] = wknn_run(root, run, v_pos, keep_taps=sz.keep_taps)
            frames[name] = pd.read_parquet(run / rd.ERRORS)
            info[name] = {"train_rows": json.loads((run / rd.METRICS).read_text()).get("train_rows")}
        else:
            res = train(name, root, run, overrides=overrides[name], variant=v_pos, device=device, show_progress=True)
            frames[name] = res.predictions
            errs[name] = res.predictions["error"].to_numpy(float)
            val = evaluate(run, root, split="validation", device=device, out=run / "eval-validation")
            info[name] = {"train_rows": res.metrics.get("train_rows"), "params": res.metrics.get("params"),
                          "fit_seconds": res.metrics.get("fit_seconds"), **_losses(run),
                          "validation_mean_m": float(val.predictions["error"].mean())}
        seconds[name] = round(time.perf_counter() - t, 1)
        log.info("loanet %s: mean %.2f m (%.0f s)", name, float(np.mean(errs[name])), seconds[name])
    t = time.perf_counter()
    tdc_run = out / "runs" / "fusion_tdc"
    res = train("fusion_tdc", root, tdc_run, variant=v_tdc, device=device, show_progress=True,
                overrides={"epochs": sz.tdc_epochs, "patience": sz.patience, "keep_taps": sz.keep_taps,
                           "hidden": sz.hidden, "ff": sz.ff, "max_train_rows": sz.tdc_train_rows,
                           "max_fit_s": float(budget.get("fusion_tdc", 0.0)),
                           "doppler_scale": sz.tdc_doppler_scale})
    acc = float(res.metrics.get("accuracy_pct", float("nan")))
    info["fusion_tdc"] = {"train_rows": res.metrics.get("train_rows"), "used_train_rows": sz.tdc_train_rows,
                          "fit_seconds": res.metrics.get("fit_seconds"),
                          "test_rows": res.metrics.get("n"), **_losses(tdc_run)}
    seconds["fusion_tdc"] = round(time.perf_counter() - t, 1)

    rows: list[Row] = []
    mean: dict[str, float] = {}
    label = "localization, test UEs (Fig. 7)"
    for name in POSITION_METHODS:
        m = error_metrics(errs[name])
        mean[name] = m["mean"]
        p = PAPER.get(name, {})
        note = f"{info[name].get('train_rows')} training UEs, {m['n']} test"
        rows.append(Row(label, name, "mean", "m", m["mean"], p.get("mean_m"), f"runs/{name}", note))
        rows.append(Row(label, name, "median", "m", m["median"], None, f"runs/{name}"))
        rows.append(Row(label, name, "p90", "m", m["p90"], p.get("p90_below_m"), f"runs/{name}",
                        "paper: 90 % below 1.8 m" if p.get("p90_below_m") else ""))
    for name in POSITION_METHODS:
        for (lo, hi), ours, paper in zip(BANDS_M, band_means(frames[name], bs), PAPER_BANDS_M[name], strict=True):
            hi_s = f"{hi:g}" if hi < 20 else "28 (corners)"
            rows.append(Row(f"Table IV, distance {lo:g}-{hi_s} m", name, "mean", "m", ours, paper, f"runs/{name}"))
    rows.append(Row("orientation, 16 classes (§V-C)", "fusion_tdc", "accuracy", "%", acc,
                    PAPER["fusion_tdc"]["accuracy_pct_5kmh"], "runs/fusion_tdc",
                    f"5 km/h, true position prior; {info['fusion_tdc']['test_rows']} test rows"))
    holds, note = ranking_note(mean)
    rows.append(Row("ranking", "DE <= EC <= CNN, WKNN", "holds (1 yes, 0 no)", "", float(holds), 1.0, "", note))
    errs_plot = {k: errs[k] for k in POSITION_METHODS}
    rd.plot_cdf(out / "cdf_localization.png", errs_plot, unit="m",
                title=f"LOA-Net localization, twin Paris square ({scale}), test UEs",
                paper={"DE-MaskDETR mean": PAPER["de_maskdetr"]["mean_m"],
                       "EC-MaskDETR mean": PAPER["ec_maskdetr"]["mean_m"]})
    plot_losses(out / "loss_curves.png", {k: runs[k] for k in POSITION_METHODS if k != "wknn"})
    seconds["total"] = round(time.perf_counter() - t0, 1)
    doc = {"scenario": summary, "methods": info, "seconds": seconds, "ranking": note, "mean_m": mean}
    (out / "loanet_summary.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return rows


__all__ = ["SIZES", "LoaSizes", "angle_delay_features", "band_means", "build_scenario", "open_square",
           "ranking_note", "receivers", "reproduce_loanet", "wknn_run", "write_protocol_split"]
