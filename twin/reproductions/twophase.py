"""``twin reproduce twophase``: the seed's §V experiments (``002_*.txt``) with the seed's layout placed in the
Paris scene (``--city paris --offline``).

Layout: M = 5 base stations (4 on the Paris build: no 5 of its towers see each other) chosen among the
build's real tower sites such that every pair sees each other (the seed's footnote 3: type I paths always
exist) and the largest distance fits the window; K = 2..7 street-level targets (TR 38.901 humans and cars,
§V: 2-7) placed only where >= 3 sites see them (``min_los_sites``, the seed's footnote 1), pair STOs in
[-10, 10] samples. Powers: the seed's 20 W / 22.5 W (Fig. 2) and a sweep up to 80 dBm; above a macro site's
46 dBm it is an SNR sweep (the echoes of pedestrians and cars 100-300 m from rooftop sites are 10-40 dB
under the per-tap noise at 20 W, see README "Baselines III"). The bistatic_echo view is built at 20 W and at
70 dBm (same placements); the curves for K < 7 keep the paths of the first K targets (their echoes are
labelled by target id) and every curve re-draws the noise at its power (``noise_var`` scales as 1/P). The
on-grid model (the seed's eq. 4) and the band-limited one are synthesized from the same traced paths by the
view's own functions. Nothing is fitted, so every snapshot is used for the curves; the ``twin train`` run
directories (20 W and 70 dBm views) use the snapshot split (:class:`~twin.baselines.twophase.TwoPhase`).

Scale ``small``: 48 snapshots (16 for the band-limited estimator comparison), 2 receivers' CIR (the build
needs some), 12 powers 20..80 dBm. Scale ``paper``: 100 snapshots, finer power grid.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from twin.baselines.reproduce import REPRODUCTIONS, Row
from twin.baselines.twophase import PAPER_MAX_RUNTIME_S, PAPER_POWERS_W, group_snapshots, table_rows
from twin.baselines.twophase_phase1 import PhaseIConfig, make_dictionary
from twin.baselines.twophase_phase2 import PhaseIIConfig
from twin.baselines.twophase_protocol import ScoreConfig, run_snapshot, score_snapshot, summarize
from twin.constants import SPEED_OF_LIGHT

TX_POWER_DBM = round(10 * math.log10(PAPER_POWERS_W[0] * 1e3), 4)  # 20 W = 43.0103 dBm
SCALES = {
    "small": dict(snapshots=48, powers_dbm=(20.0, 30.0, 40.0, 43.0, 43.5, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0),
                  vs_k_powers_dbm=(43.0, 43.5, 60.0, 70.0), loc_powers_dbm=(43.0, 70.0),
                  aware_powers_dbm=(43.0, 60.0, 70.0), aware_snapshots=16, train_powers_dbm=(TX_POWER_DBM, 70.0),
                  targets=(2, 3, 4, 5, 6, 7), receivers=2, samples=20_000),
    "paper": dict(snapshots=100, powers_dbm=(20.0, 30.0, 40.0, 43.0, 43.5, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0),
                  vs_k_powers_dbm=(43.0, 43.5, 60.0, 70.0), loc_powers_dbm=(43.0, 60.0, 70.0),
                  aware_powers_dbm=(43.0, 50.0, 60.0, 70.0, 80.0), aware_snapshots=100,
                  train_powers_dbm=(TX_POWER_DBM, 60.0, 70.0),
                  targets=(2, 3, 4, 5, 6, 7), receivers=4, samples=50_000),
}
NUM_SITES = 5
#: target placement rule: only where >= 3 sites see the target (the seed's footnote 1); the Paris towers give
#: only 4 mutually visible sites, so random street points are mostly seen by fewer
MIN_LOS_SITES = 3


def w_to_dbm(w: float) -> float:
    return 10 * math.log10(w * 1e3)


# ------------------------------------------------------------------------------------------- layout


def choose_sites(towers, scene_xml: str, window_m: float, num: int = NUM_SITES) -> list[str]:
    """``num`` site ids of the towers table with line of sight between every pair (Mitsuba ray tests) and
    the largest distance under 80 % of the window; among those, the widest (largest smallest distance)."""
    from sionna.rt import load_scene

    from twin.datasets.bistatic_echo import line_of_sight, sites_from_towers
    from twin.errors import TwinInputError
    from twin.llvm import setup_mitsuba

    setup_mitsuba()
    sites = sites_from_towers(towers)
    pos = np.array([s.position for s in sites])
    mi_scene = load_scene(scene_xml).mi_scene
    n = len(sites)
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    los = line_of_sight(mi_scene, pos[ii.ravel()], pos[jj.ravel()]).reshape(n, n) | (ii == jj)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    best, best_key = None, -1.0
    for m in range(num, 3, -1):
        for comb in itertools.combinations(range(n), m):
            c = np.array(comb)
            if not los[np.ix_(c, c)].all() or d[np.ix_(c, c)].max() > 0.8 * window_m:
                continue
            key = d[np.ix_(c, c)][np.triu_indices(m, 1)].min()
            if key > best_key:
                best, best_key = comb, key
        if best is not None:
            return [sites[i].site_id for i in best]
    raise TwinInputError("no 4 tower sites see each other within the window", file="towers.parquet", field="sites",
                         fix="use a build whose towers have mutual line of sight")


# --------------------------------------------------------------------------------------- synthesis


def view_config(table):
    from twin.config import from_mapping
    from twin.datasets.bistatic_echo import BistaticEchoConfig

    doc = json.loads(table.schema.metadata[b"twin.view_config"])
    return from_mapping(BistaticEchoConfig, doc, where="bistatic_echo view config")


def resynthesize(rows: list[dict], cfg, num_targets: int, channel_model: str) -> list[dict]:
    """Rows whose channel keeps the site-to-site paths and the echoes of targets 0..K-1 (``path_target``),
    under ``channel_model``; labels restricted likewise; ``h_clean`` replaced, ``h`` removed."""
    from twin.datasets.bistatic_echo import channel_taps

    c = replace(cfg, channel_model=channel_model)
    out = []
    for r in rows:
        keep = [i for i, t in enumerate(r["path_target"]) if t < num_targets]
        a = np.array([complex(r["path_a_re"][i], r["path_a_im"][i]) for i in keep], complex)
        obs = np.array([r["path_observed_samples"][i] for i in keep], np.float64)
        nr = {k: v for k, v in r.items() if k not in ("h", "h_clean")}
        for k in ("path_type", "path_target", "path_tap", "path_in_window", "path_aliased", "path_tau_s",
                  "path_observed_samples", "path_a_re", "path_a_im"):
            nr[k] = [r[k][i] for i in keep]
        for k in ("target_id", "target_kind", "target_x", "target_y", "target_z", "target_sp_x", "target_sp_y",
                  "target_sp_z", "target_yaw", "target_los_sites"):
            nr[k] = r[k][:num_targets]
        nr["h_clean"] = channel_taps(a, obs, c)
        out.append(nr)
    return out


def noisy(rows: list[dict], cfg, channel_model: str, power_dbm: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(h (B, L), noise_var (B,)) at transmit power ``power_dbm`` (noise_var ∝ 1/P) on ``channel_model``."""
    from twin.datasets.bistatic_echo import draw_noise

    c = replace(cfg, channel_model=channel_model)
    nv = np.array([r["noise_var"] * 10 ** ((r["tx_power_dbm"] - power_dbm) / 10) for r in rows])
    h = np.stack([r["h_clean"] for r in rows])
    w = np.concatenate([draw_noise(rng, float(v), c) for v in nv])
    return h + w, nv


def evaluate(snaps: dict[int, list[dict]], cfg, channel_model: str, estimator: str, power_dbm: float, seed: int,
             p2: PhaseIIConfig | None, exhaustive: bool = False, iterations: int = 150) -> dict:
    """Phase I (and Phase II when ``p2``) on every snapshot at one power; :func:`summarize` of the scores."""
    p1 = PhaseIConfig(estimator=estimator, iterations=iterations)
    dic = make_dictionary(cfg.ofdm, cfg.taps, p1)
    tol = 0 if channel_model == "on_grid" else 1
    rng = np.random.default_rng([seed, int(power_dbm * 100) & 0xFFFF])
    res, secs = [], []
    p2_ = p2 or PhaseIIConfig(min_sites=99)  # min_sites > M: Phase II does nothing
    for rows in snaps.values():
        h, nv = noisy(rows, cfg, channel_model, power_dbm, rng)
        t0 = time.perf_counter()
        r = _run(rows, cfg, dic, p1, p2_, h, nv, exhaustive)
        secs.append(time.perf_counter() - t0)
        res.append(score_snapshot(r, rows, tol, p2_.min_sites if p2 else 3, ScoreConfig()))
    s = summarize(res)
    s["seconds_per_snapshot"] = float(np.mean(secs))
    return s


def _run(rows, cfg, dic, p1, p2, h, nv, exhaustive):
    rr = [dict(r, noise_var=float(v)) for r, v in zip(rows, nv, strict=True)]
    return run_snapshot(rr, cfg.ofdm.sampling_rate_hz, dic, p1, p2, h_override=h, exhaustive=exhaustive)


# ------------------------------------------------------------------------------------------- plots


def _plot(path: Path, xs, curves: dict[str, list[float]], xlabel: str, ylabel: str, title: str, logy=False,
          marks: dict[float, str] | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, ys in curves.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if logy:
        ax.set_yscale("log")
    for x, lab in (marks or {}).items():
        ax.axvline(x, color="grey", ls="--", lw=0.8)
        ax.annotate(lab, (x, 0.5), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, color="grey",
                    ha="right", va="center")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------- the paper


@REPRODUCTIONS.register("twophase")
def reproduce_twophase(scale: str, out: Path, *, device: str = "cpu") -> list[Row]:
    """See the module docstring."""
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    import twin
    from twin.baselines.runner import train
    from twin.cli import app

    sc = SCALES[scale]
    out = Path(out)
    runner = CliRunner()

    def cli(*args):
        r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        if r.exit_code != 0:
            raise RuntimeError(f"twin {' '.join(map(str, args))} failed: {r.output}{getattr(r, 'stderr', '')}")
        return r

    t0 = time.perf_counter()
    build_cfg = out / "build.toml"
    build_cfg.write_text("[trace]\nmax_depth = 1\nsamples_per_src = 5000\nmax_num_paths_per_src = 5000\n"
                         "receivers_per_task = 2\ncells_per_task = 12\ndiffraction = false\n")
    root = out / "build" / "paris"
    if not (root / "towers.parquet").exists():
        cli("build", "--city", "paris", "--offline", "--receivers", sc["receivers"], "--out", out / "build",
            "--config", build_cfg)
    t_build = time.perf_counter() - t0
    from twin.datasets.bistatic_echo import BistaticEchoConfig

    window_m = BistaticEchoConfig().window_m
    m = json.loads((root / "twin.json").read_text()) if (root / "twin.json").exists() else {}
    scene_xml = str(root / (m.get("scene", {}).get("xml") or "scene/scene.xml"))
    towers = pq.read_table(root / "towers.parquet")
    towers = towers.select([c for c in towers.column_names if c != "geometry"])
    sites = choose_sites(towers, scene_xml, window_m)
    import tomllib

    from twin.config import config_hash, from_mapping

    def view_variant(power_dbm: float) -> str:
        """Build the bistatic_echo view at ``power_dbm`` per site (same placements: same seed); its variant."""
        vcfg = out / f"views_{power_dbm:g}dBm.toml"
        vcfg.write_text(
            "[views.bistatic_echo]\n"
            f"sites = {json.dumps(sites)}\nnum_targets = {max(sc['targets'])}\nnum_snapshots = {sc['snapshots']}\n"
            f"tx_power_dbm = {power_dbm}\ntarget_margin_m = 20.0\nsamples_per_src = {sc['samples']}\n"
            f"samples_per_sp = {sc['samples']}\nchannel_model = \"band_limited\"\nmin_los_sites = {MIN_LOS_SITES}\n")
        cli("view", "build", "bistatic_echo", root, "--config", vcfg)
        return config_hash(from_mapping(BistaticEchoConfig, tomllib.loads(vcfg.read_text())["views"]["bistatic_echo"],
                                        where=str(vcfg)))

    t1 = time.perf_counter()
    variants = {p: view_variant(p) for p in sc["train_powers_dbm"]}
    t_view = time.perf_counter() - t1
    b = twin.open(root)
    table = b.view("bistatic_echo", variants[TX_POWER_DBM]).to_table()
    rows_all = table_rows(table)
    cfg = view_config(table)
    fs = cfg.ofdm.sampling_rate_hz

    # -- twin train run directories (snapshot split) on the band-limited physics, at 20 W and at a higher power:
    # the proposed protocol with the off-grid estimator (Benchmark 1 is compared below, on the on-grid model)
    stage_s: dict[str, float] = {"build": round(t_build, 1), "views": round(t_view, 1)}
    t2 = time.perf_counter()
    runs = out / "runs"
    train_runs = {}
    for p, v in variants.items():
        train_runs[(p, "proposed")] = train("twophase", root, runs / f"twophase_{p:.0f}dBm", show_progress=False,
                                            variant=v)

    stage_s["twin train runs"] = round(time.perf_counter() - t2, 1)
    t2 = time.perf_counter()
    # -- Phase I: range error probability vs power and K (on-grid model, the seed's eq. 4)
    powers = list(sc["powers_dbm"])
    ks = list(sc["targets"])
    per_k = {k: group_snapshots(resynthesize(rows_all, cfg, k, "on_grid")) for k in ks}
    pe = {k: [evaluate(per_k[k], cfg, "on_grid", "on_grid", p, seed=k, p2=None)["range_error_probability"]
              for p in powers] for k in ks}
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    marks = {TX_POWER_DBM: "20 W (seed Fig. 2)", 46.0: "46 dBm: macro site max"}
    _plot(figs / "range_error_vs_power.png", powers, {f"K = {k}": pe[k] for k in ks}, "transmit power per site (dBm)",
          "range estimation error probability", f"Phase I, on-grid model, M = {len(sites)} Paris sites "
          f"({len(per_k[ks[0]])} snapshots); > 46 dBm = SNR sweep", marks=marks)
    pick = list(sc["vs_k_powers_dbm"])
    _plot(figs / "range_error_vs_targets.png", ks, {f"{p:g} dBm": [pe[k][powers.index(p)] for k in ks] for p in pick},
          "number of targets K", "range estimation error probability",
          f"Phase I vs K, on-grid model ({len(per_k[ks[0]])} snapshots; seed Fig. 2)")

    stage_s["phase I on-grid sweep"] = round(time.perf_counter() - t2, 1)
    t2 = time.perf_counter()
    # -- Phase I on the band-limited physics: on-grid estimator vs leakage-aware dictionary (K = 7)
    kmax = max(ks)
    bl = group_snapshots(resynthesize(rows_all, cfg, kmax, "band_limited"))
    bl = dict(list(bl.items())[: int(sc["aware_snapshots"])])
    aware_s = {est: [evaluate(bl, cfg, "band_limited", est, p, seed=99, p2=None, iterations=100)
                     for p in sc["aware_powers_dbm"]] for est in ("on_grid", "leakage_aware", "off_grid")}
    aware = {e: [x["range_error_probability"] for x in v] for e, v in aware_s.items()}
    aware_link = {e: [x["link_error_rate"] for x in v] for e, v in aware_s.items()}
    _plot(figs / "band_limited_estimators.png", list(sc["aware_powers_dbm"]),
          {**{f"{e}: snapshot error": v for e, v in aware.items()},
           **{f"{e}: link error rate": v for e, v in aware_link.items()}}, "transmit power per site (dBm)",
          "probability", f"Phase I on the band-limited channel, K = {kmax} "
          f"({len(bl)} snapshots)", marks=marks)

    stage_s["phase I band-limited estimators"] = round(time.perf_counter() - t2, 1)
    t2 = time.perf_counter()
    # -- Phase II: localization vs K (on-grid model), proposed vs Benchmark 1 (no association)
    loc: dict[tuple, dict] = {}
    for p in sc["loc_powers_dbm"]:
        for k in ks:
            for assoc in (True, False):
                loc[(p, k, assoc)] = evaluate(per_k[k], cfg, "on_grid", "on_grid", p, seed=k,
                                              p2=PhaseIIConfig(associate=assoc), exhaustive=assoc)
    p_loc = max(sc["loc_powers_dbm"])
    md_fa = {}
    for p in sc["loc_powers_dbm"]:
        md_fa[f"MD proposed, {p:g} dBm"] = [loc[(p, k, True)]["miss_detection"] for k in ks]
        md_fa[f"FA proposed, {p:g} dBm"] = [loc[(p, k, True)]["false_alarm"] for k in ks]
        md_fa[f"FA benchmark 1, {p:g} dBm"] = [loc[(p, k, False)]["false_alarm"] for k in ks]
    _plot(figs / "md_fa_vs_targets.png", ks, md_fa, "number of targets K", "probability",
          "Phase II miss detection / false alarm, 2 m radius (seed Fig. 3)")
    levels = sorted({q for k in ks for q in loc[(p_loc, k, True)]["feasible_sets"]}, reverse=True)
    fs_curves = {}
    for q in levels:
        for key, lab in (("exhaustive", "all"), ("phi", "Φ"), ("psi", "Ψ")):
            fs_curves[f"{lab} q={q}"] = [max(loc[(p_loc, k, True)]["feasible_sets"].get(q, {}).get(key, 0), 0.1)
                                         for k in ks]
    _plot(figs / "feasible_sets_vs_targets.png", ks, fs_curves, "number of targets K",
          "mappings per snapshot (log)",
          f"feasible-set sizes vs exhaustive at {p_loc:g} dBm, on-grid model (seed Fig. 5)", logy=True)

    stage_s["phase II"] = round(time.perf_counter() - t2, 1)
    # -- the table
    rows: list[Row] = []
    note_pw = "seed Fig. 2: 'very low', falls from 20 W to 22.5 W"
    for k in ks:
        for p in powers:
            rows.append(Row("Phase I range error", f"on-grid, K={k}", f"P_err @ {p:g} dBm", "prob",
                            pe[k][powers.index(p)], None, "", note_pw if p in (43.0, 43.5) else ""))
    for e, v in aware.items():
        for p, x, xl in zip(sc["aware_powers_dbm"], v, aware_link[e], strict=True):
            rows.append(Row("Phase I band-limited", f"{e} estimator, K={kmax}", f"P_err @ {p:g} dBm", "prob", x))
            rows.append(Row("Phase I band-limited", f"{e} estimator, K={kmax}", f"link error rate @ {p:g} dBm",
                            "prob", xl))
    for p in sc["loc_powers_dbm"]:
        for k in ks:
            s, s1 = loc[(p, k, True)], loc[(p, k, False)]
            ex = f"Phase II, on-grid model, {p:g} dBm"
            rows.append(Row(ex, f"proposed, K={k}", "miss detection", "prob", s["miss_detection"], None, "",
                            "seed Fig. 3: low for K = 2..7"))
            rows.append(Row(ex, f"proposed, K={k}", "false alarm", "prob", s["false_alarm"]))
            rows.append(Row(ex, f"benchmark 1, K={k}", "false alarm", "prob", s1["false_alarm"], None, "",
                            "seed: proposed beats benchmark 1"))
            rows.append(Row(ex, f"proposed, K={k}", "count accuracy", "prob", s["count_accuracy"]))
            rows.append(Row(ex, f"proposed, K={k}", "OSPA", "m", s["ospa_m"]))
            rows.append(Row(ex, f"proposed, K={k}", "matched RMSE", "m", s["matched_rmse_m"]))
            rows.append(Row(ex, f"proposed, K={k}", "time per snapshot", "s", s["seconds_per_snapshot"],
                            PAPER_MAX_RUNTIME_S, "", "seed Fig. 4: < 0.16 s (its own machine)"))
    for (p, name), run in train_runs.items():
        tp = run.metrics.get("twophase", {})
        ex = f"twin train, band-limited view at {p:.0f} dBm (test snapshots)"
        rel = str(Path(run.run).relative_to(out))
        for key, metric, unit in (("range_error_probability", "range error probability", "prob"),
                                  ("miss_detection", "miss detection", "prob"), ("false_alarm", "false alarm", "prob"),
                                  ("ospa_m", "OSPA", "m")):
            rows.append(Row(ex, f"{name} ({tp.get('estimator')})", metric, unit, tp.get(key), None, rel))
        rows.append(Row(ex, f"{name} ({tp.get('estimator')})", "median loc. error (found targets)", "m",
                        run.metrics["metrics"]["median"], None, rel))
    summary = {"sites": sites, "seconds_total": round(time.perf_counter() - t0, 1), "seconds_by_stage": stage_s, "variants": variants, "snapshots": len(per_k[ks[0]]), "seconds_build": round(t_build, 1),
               "seconds_view": round(t_view, 1), "range_error": {str(k): dict(zip(map(str, powers), pe[k], strict=True))
                                                                for k in ks},
               "band_limited": {e: dict(zip(map(str, sc["aware_powers_dbm"]), v, strict=True)) for e, v in aware.items()},
               "band_limited_link_error_rate": {e: dict(zip(map(str, sc["aware_powers_dbm"]), v, strict=True))
                                                for e, v in aware_link.items()},
               "localization": {f"{p:g}dBm/K={k}/{'proposed' if a else 'benchmark1'}": v for (p, k, a), v in loc.items()},
               "range_resolution_m": SPEED_OF_LIGHT / fs}
    (out / "twophase_summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return rows

