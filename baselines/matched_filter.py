"""Matched filter on the folded-LTE windows: the classical sub-sample timing estimate DeepSync is compared with.

Per row: the frame sum of the N detected windows (frames coherently aligned: frame-synchronous cells), its
correlation with the detected template (both mean-removed: the DC carries no timing) at every start inside the
window, the integer argmax and a parabola through the peak and its two neighbours (sub-sample offset
k + (r[k-1] − r[k+1]) / (2 (r[k-1] − 2 r[k] + r[k+1]))). The estimate is the template start within the window
in 1.92-MS/s samples — the same quantity as the view's label ``true_offset_samples``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.baselines import BASELINES
from twin.baselines.core import Baseline, read_columns

#: DeepSync (seeds/000) §8.2: median sub-sample offset error of its model, 10 frames, coarse bound 10
PAPER_DEEPSYNC_MEDIAN_SAMPLES = 0.239


def parabolic_peak(r: np.ndarray) -> np.ndarray:
    """Sub-sample argmax of each row of ``r`` (rows, L): integer argmax plus the vertex of the parabola through
    it and its neighbours (no refinement at the ends). Returns float positions (rows,)."""
    r = np.atleast_2d(np.asarray(r, dtype=np.float64))
    k = np.argmax(r, axis=1)
    out = k.astype(np.float64)
    inner = (k > 0) & (k < r.shape[1] - 1)
    i = np.flatnonzero(inner)
    if i.size:
        a, b, c = r[i, k[i] - 1], r[i, k[i]], r[i, k[i] + 1]
        den = a - 2 * b + c
        ok = den < 0
        out[i[ok]] += 0.5 * (a[ok] - c[ok]) / den[ok]
    return out


def correlate_windows(windows: np.ndarray, template: np.ndarray, frames: int | None = None) -> np.ndarray:
    """Correlation (rows, W − T + 1) of each row's frame sum (of the first ``frames`` frames) with its template,
    both mean-removed. ``windows`` (rows, N, W), ``template`` (rows, T)."""
    w = np.asarray(windows, dtype=np.float64)
    if frames is not None:
        w = w[:, :frames]
    s = w.sum(axis=1)
    s = s - s.mean(axis=1, keepdims=True)
    t = np.asarray(template, dtype=np.float64)
    t = t - t.mean(axis=1, keepdims=True)
    T = t.shape[1]
    L = s.shape[1] - T + 1
    if L < 1:
        raise ValueError(f"windows of {s.shape[1]} samples are shorter than the {T}-sample template")
    idx = np.arange(L)[:, None] + np.arange(T)[None, :]
    return np.einsum("rlt,rt->rl", s[:, idx], t)


@dataclass(frozen=True)
class MatchedFilterConfig:
    """``[baselines.matched_filter]``: ``frames`` of each row summed (0: all the view has)."""

    frames: int = 0

    def __post_init__(self) -> None:
        if self.frames < 0:
            raise ValueError(f"frames must be >= 0, got {self.frames}")


def offset_frame(test, preds: np.ndarray, cols: dict) -> object:
    """The prediction DataFrame of an offset method on folded_lte rows (ids, prediction, truth, |error|)."""
    import pandas as pd

    truth = np.asarray(cols["true_offset_samples"], dtype=np.float64)
    df = pd.DataFrame({
        "rx_id": np.asarray(cols["rx_id"], dtype=np.int64),
        "tx_id": [str(t) for t in cols["tx_id"]],
        "link_id": np.asarray(cols["link_id"], dtype=np.uint64),
        "coarse_index": np.asarray(cols["coarse_index"], dtype=np.int64),
        "pred_offset_samples": np.asarray(preds, dtype=np.float64),
        "true_offset_samples": truth,
    })
    df["error"] = np.abs(df["pred_offset_samples"] - truth)
    for extra in ("window_start", "sync_snr_db", "coarse_error_samples", "truth_in_window", "num_cochannel",
                  "rx_power_dbm", "los"):
        if extra in cols:
            df[extra] = np.asarray(cols[extra])
    return df


@BASELINES.register("matched_filter")
class MatchedFilter(Baseline):
    """Matched filter + parabolic interpolation on the frame sum (sub-sample offset, samples at 1.92 MS/s)."""

    view = "folded_lte"
    task = "offset"
    unit = "samples"
    Config = MatchedFilterConfig
    paper = {"median_deepsync": PAPER_DEEPSYNC_MEDIAN_SAMPLES}

    def predict(self, test):
        cols = read_columns(test)
        n = self.config.frames or None
        if len(cols["rx_id"]) == 0:
            return offset_frame(test, np.zeros(0), cols)
        r = correlate_windows(cols["windows"], cols["template"], n)
        return offset_frame(test, parabolic_peak(r), cols)


__all__ = ["MatchedFilter", "MatchedFilterConfig", "correlate_windows", "offset_frame", "parabolic_peak"]
