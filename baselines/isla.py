"""ISLA (seed ``001_*.txt``): self-localization from ambient 5G with a spike-train filter, and its comparisons.

Per link of the ``spike_train`` view, the first path's ToF is estimated off-grid (:mod:`twin.baselines.tof`) from

- ``isla``: the spike-train's recovered subcarriers together with the plain narrowband channel of the same
  capture (ISLA §10.2 C: ISLA combines them; the twin's two captures share timing and phase), each sample
  weighted by its SNR (the spike-train's samples carry |G|² of the signal and P-fold folded chain noise);
- ``isla_spike_only``: the recovered subcarriers alone (ISLA's "without combining with narrowband" ablation);
- ``narrowband``: the central N/P subcarriers only (a plain 6.25 MHz receiver: ISLA's narrowband ablation);
- ``full_band``: all N subcarriers (the 100 MHz upper bound);
- ``music``: MUSIC on the same samples as ``isla`` (SpotFi's ToF dimension, adapted as ISLA §10.1 (4) describes:
  the smoothing sub-array is restructured for the non-uniform subcarriers: every contiguous band (each passband,
  and the narrowband) contributes its first W-L+1 subcarriers, shifted by 0..L-1 subcarriers for the L snapshots).

Only ToF differences are observable (the capture's timing offset is unknown), so the ToF error is that of the
relative ToF to the receiver's reference anchor, and localization solves pseudo-ranges with a free clock bias
(TDoA), with residual-based rejection of outlying anchors. Anchors: one cell per mast position (the strongest),
the K strongest masts a receiver hears (K = 5 / 15 / 25 as ISLA Fig. 10(d)).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twin.baselines.tof import Capture, LocalizeConfig, TofConfig, estimate_tof, localize_pseudoranges
from twin.constants import SPEED_OF_LIGHT

#: ISLA's figures (paper column only). §10.2 C / Fig. 10(a-c): median localization error, metres, per testbed
#: (campus, parking lot, farm) for ISLA on the narrowband, with the spike-train, and on the full 100 MHz.
PAPER_MEDIAN_M = {
    "narrowband": (7.9, 58.9, 142.52),
    "isla": (1.68, 18.8, 45.04),
    "full_band": (1.38, 11.44, 25.8),
}
#: §10.2 D / Fig. 10(d), parking lot: median localization error (m) with 5, 15, 25 base stations; 90th percentile
#: 73.16 m (5) and 10.9 m (25).
PAPER_ANCHORS_MEDIAN_M = {5: 17.6, 15: 9.27, 25: 4.26}
PAPER_ANCHORS_P90_M = {5: 73.16, 25: 10.9}
#: §10.2 C: spike-train vs full band 1.21-1.74x; vs narrowband 3.16-4.7x better.
PAPER_RATIO_TO_FULL = (1.21, 1.74)
PAPER_GAIN_OVER_NARROWBAND = (3.16, 4.7)

METHODS = ("isla", "isla_spike_only", "narrowband", "full_band", "music")


@dataclass(frozen=True)
class MusicConfig:
    """MUSIC settings: ``shifts`` smoothing snapshots L, pseudo-spectrum grid ``step_s`` over [0, search_s),
    model order: eigenvalues above ``order_ratio`` x the median eigenvalue (at most L-1)."""

    shifts: int = 8
    step_s: float = 1e-9
    search_s: float = 8e-6
    order_ratio: float = 10.0
    first_path_db: float = 12.0


def _passbands(idx: np.ndarray) -> list[np.ndarray]:
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    return np.split(np.arange(len(idx)), cuts)


def music_first_path(h: np.ndarray, idx: np.ndarray, df_hz: float, cfg: MusicConfig | None = None) -> float:
    """First-path delay (s) by MUSIC on subcarriers ``idx`` made of contiguous passbands (restructured smoothing)."""
    cfg = cfg or MusicConfig()
    idx = np.asarray(idx)
    order = np.argsort(idx)
    idx, h = idx[order], np.asarray(h)[order]
    bands = _passbands(idx)
    width = min(len(b) for b in bands)
    L = min(cfg.shifts, width - 1) if width > 1 else 1
    keep = width - L + 1
    base = np.concatenate([b[:keep] for b in bands])  # positions of the sub-array at shift 0
    snaps = np.stack([h[base + s] for s in range(L)], axis=1)  # (M, L)
    r = snaps @ snaps.conj().T / L
    w, v = np.linalg.eigh(r)
    w, v = w[::-1], v[:, ::-1]
    k = int(np.clip(np.sum(w > cfg.order_ratio * np.median(w)), 1, max(1, L - 1)))
    es = v[:, :k]  # signal subspace: ||E_n^H a||² = ||a||² - ||E_s^H a||² for unit-norm a
    f_sub = idx[base] * df_hz
    taus = np.arange(0.0, cfg.search_s, cfg.step_s)
    spec = np.empty(len(taus))
    for i0 in range(0, len(taus), 2048):
        t = taus[i0:i0 + 2048]
        a = np.exp(-2j * np.pi * np.outer(f_sub, t)) / np.sqrt(len(f_sub))
        spec[i0:i0 + 2048] = 1.0 / np.maximum(1.0 - np.sum(np.abs(es.conj().T @ a) ** 2, axis=0), 1e-12)
    peaks = np.flatnonzero((spec[1:-1] > spec[:-2]) & (spec[1:-1] >= spec[2:])) + 1
    if peaks.size == 0:
        return float(taus[int(np.argmax(spec))])
    peaks = peaks[np.argsort(spec[peaks])[::-1][:k]]
    a = np.exp(-2j * np.pi * np.outer(idx * df_hz, taus[peaks]))
    amp, *_ = np.linalg.lstsq(a, h, rcond=None)
    pw = np.abs(amp) ** 2
    strong = pw >= pw.max() * 10 ** (-cfg.first_path_db / 10)
    return float(taus[peaks][strong].min())


def view_settings(reader_or_meta) -> dict:
    """The spike_train view config (dict) from a table's schema metadata or a Reader."""
    meta = getattr(reader_or_meta, "schema", reader_or_meta)
    meta = meta.metadata if hasattr(meta, "metadata") else meta
    return json.loads(meta[b"twin.view_config"])


def sample_weights(gain_db: np.ndarray, settings: dict) -> tuple[np.ndarray, float]:
    """Inverse noise variance of the recovered spike-train samples and of the narrowband ones (relative).

    A recovered sample has noise (k·T_ant·|G|² + P·k·T0·(F-1)) / |G|² relative to a unit-gain signal (folded chain
    noise), a narrowband one k·T_ant + k·T0·(F-1). Returns (spike weights, narrowband weight).
    """
    g2 = 10 ** (np.asarray(gain_db, np.float64) / 10)
    t_ant = float(settings.get("antenna_noise_temperature_k", 290.0)) / 290.0
    f_ex = max(10 ** (float(settings.get("noise_figure_db", 7.0)) / 10) - 1.0, 0.0)
    p = int(settings["p"])
    var_spike = (t_ant * g2 + p * f_ex) / np.maximum(g2, 1e-30)
    var_nb = t_ant + f_ex
    return 1.0 / np.maximum(var_spike, 1e-30), 1.0 / max(var_nb, 1e-30)


def link_tof(sample: dict, method: str, settings: dict, tof_cfg: TofConfig | None = None,
             music_cfg: MusicConfig | None = None) -> float:
    """Estimated first-path delay (s, including the capture's unknown timing offset) of one view row."""
    df = float(settings["subcarrier_spacing_hz"])
    n = int(settings["num_subcarriers"])
    q = n // int(settings["p"])
    idx_rec = np.rint(np.asarray(sample["passed_freq_hz"]) / df).astype(np.int64)
    idx_nb = np.arange(-q // 2, q // 2)
    if method == "full_band":
        return estimate_tof([Capture(sample["h_full"], np.arange(-n // 2, n // 2), df)], tof_cfg).first_path_s
    if method == "narrowband":
        return estimate_tof([Capture(sample["h_narrowband"], idx_nb, df)], tof_cfg).first_path_s
    w_s, w_nb = sample_weights(sample["passed_gain_db"], settings)
    if method == "isla_spike_only":
        return estimate_tof([Capture(sample["h_recovered"], idx_rec, df, w_s)], tof_cfg).first_path_s
    if method == "isla":
        cap = Capture(np.concatenate([sample["h_recovered"], sample["h_narrowband"]]),
                      np.concatenate([idx_rec, idx_nb]), df, np.concatenate([w_s, np.full(q, w_nb)]))
        return estimate_tof([cap], tof_cfg).first_path_s
    if method == "music":  # the same samples as ISLA: recovered subcarriers + the narrowband
        return music_first_path(np.concatenate([sample["h_recovered"], sample["h_narrowband"]]),
                                np.concatenate([idx_rec, idx_nb]), df, music_cfg)
    raise ValueError(f"unknown ISLA method {method!r}; one of {', '.join(METHODS)}")


def mast_key(x: float, y: float, z: float) -> tuple[int, int, int]:
    return (round(x), round(y), round(z))


@dataclass
class IslaEval:
    """Per-link ToF rows and per-receiver fixes of one method."""

    links: pd.DataFrame
    fixes: pd.DataFrame
    extra: dict = field(default_factory=dict)


def select_anchors(rows: pd.DataFrame, k: int) -> pd.DataFrame:
    """One row per mast position (its strongest cell, by anchor_rank), the ``k`` strongest masts per receiver."""
    r = rows.copy()
    r["mast"] = [mast_key(x, y, z) for x, y, z in zip(r.tx_x, r.tx_y, r.tx_z, strict=True)]
    r = r.sort_values(["rx_id", "anchor_rank"]).drop_duplicates(["rx_id", "mast"], keep="first")
    return r.groupby("rx_id", sort=True).head(k)


def evaluate(samples: list[dict], settings: dict, method: str, anchors: int, *,
             tof_cfg: TofConfig | None = None, loc_cfg: LocalizeConfig | None = None,
             music_cfg: MusicConfig | None = None, min_anchors: int = 4) -> IslaEval:
    """ToF per link, relative ToF error per non-reference anchor (m), and a TDoA fix per receiver.

    ``samples``: spike_train view rows (dicts). Receivers with fewer than ``min_anchors`` masts are skipped.
    ToF error: |(τ̂_i - τ̂_ref) - (τ_i - τ_ref)|·c with τ the true first-path delays, ref = the strongest mast.
    Localization error: horizontal distance (m) between the fix (at the receiver's known height) and the truth.
    """
    keys = ("rx_id", "tx_id", "link_id", "anchor_rank", "tx_x", "tx_y", "tx_z", "rx_x", "rx_y", "rx_z",
            "first_path_tof_s", "los_tof_s", "los")
    meta = pd.DataFrame([{k: s[k] for k in keys} for s in samples])
    meta["i"] = np.arange(len(samples))
    chosen = select_anchors(meta, anchors)
    counts = chosen.groupby("rx_id").size()
    chosen = chosen[chosen.rx_id.isin(counts[counts >= min_anchors].index)].copy()
    chosen["tof_hat_s"] = [link_tof(samples[i], method, settings, tof_cfg, music_cfg) for i in chosen.i]
    rel_rows, fixes = [], []
    for rx, g in chosen.groupby("rx_id", sort=True):
        g = g.sort_values("anchor_rank")
        ref = g.iloc[0]
        est = (g.tof_hat_s - ref.tof_hat_s) * SPEED_OF_LIGHT
        true = (g.first_path_tof_s - ref.first_path_tof_s) * SPEED_OF_LIGHT
        for (_, row), e, t in zip(g.iloc[1:].iterrows(), est.iloc[1:], true.iloc[1:], strict=True):
            rel_rows.append(dict(rx_id=rx, tx_id=row.tx_id, rel_tof_hat_m=e, rel_tof_true_m=t,
                                 error=abs(e - t), los=bool(row.los)))
        ok = np.isfinite(g.tof_hat_s.to_numpy())
        if ok.sum() < 3:
            continue
        a = g[["tx_x", "tx_y", "tx_z"]].to_numpy()[ok]
        fix = localize_pseudoranges(a, g.tof_hat_s.to_numpy()[ok] * SPEED_OF_LIGHT, float(ref.rx_z), loc_cfg)
        fixes.append(dict(rx_id=rx, x_hat=fix.xy[0], y_hat=fix.xy[1], x=ref.rx_x, y=ref.rx_y,
                          error=float(np.hypot(fix.xy[0] - ref.rx_x, fix.xy[1] - ref.rx_y)),
                          anchors=int(ok.sum()), anchors_used=int(fix.used.sum())))
    return IslaEval(pd.DataFrame(rel_rows), pd.DataFrame(fixes))
