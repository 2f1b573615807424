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


def crop_windows(cols: dict, crop_margin: int, bound: int, rng: np.random.Generator) -> dict:
    """DeepSync §8.2's coarse-error protocol on wide stored windows: each row's window is cut again to
    template + 2·``crop_margin`` samples, starting ``crop_margin − e`` samples before the stored template start
    (the window_start + round(true_offset) of a ``truth_jitter`` view with error 0), e uniform in [-bound, bound];
    the labels move with the cut. Returns a copy of ``cols`` with ``windows``, ``true_offset_samples``,
    ``window_start`` and ``coarse_error_samples`` replaced."""
    w = np.asarray(cols["windows"])
    T = np.asarray(cols["template"]).shape[1]
    n, W = len(w), w.shape[2]
    L = T + 2 * crop_margin
    off = np.asarray(cols["true_offset_samples"], dtype=np.float64)
    e = rng.integers(-bound, bound + 1, n)
    c = np.rint(off).astype(np.int64) - crop_margin + e
    if n and (c.min() < 0 or c.max() > W - L):
        raise ValueError(f"stored windows of {W} samples cannot hold a {L}-sample cut with errors up to {bound}: "
                         "build the view with a wider window_margin")
    idx = c[:, None] + np.arange(L)[None, :]
    out = dict(cols)
    out["windows"] = np.take_along_axis(w, np.broadcast_to(idx[:, None, :], (n, w.shape[1], L)), axis=2)
    out["true_offset_samples"] = off - c
    out["window_start"] = np.asarray(cols["window_start"], dtype=np.int64) + c
    out["coarse_error_samples"] = e
    return out


def test_crops(cols: dict, crop_margin: int, bound: int, seed: int = 12) -> dict:
    """:func:`crop_windows` with errors fixed per row (seeded by the row's link_id and capture): every method
    sees the same test windows."""
    if crop_margin <= 0:
        return cols
    link = np.asarray(cols["link_id"], dtype=np.uint64)
    cap = np.asarray(cols.get("capture", np.zeros(len(link))), dtype=np.int64)
    parts = []
    for i in range(len(link)):
        one = {k: (v[i : i + 1] if isinstance(v, np.ndarray | list) else v) for k, v in cols.items()}
        key = [seed, int(link[i])] if cap[i] == 0 else [seed, int(link[i]), int(cap[i])]
        parts.append(crop_windows(one, crop_margin, bound, np.random.default_rng(key)))
    if not parts:
        return cols
    out = dict(cols)
    for k in ("windows", "true_offset_samples", "window_start", "coarse_error_samples"):
        out[k] = np.concatenate([p[k] for p in parts])
    return out


@dataclass(frozen=True)
class MatchedFilterConfig:
    """``[baselines.matched_filter]``: ``frames`` of each row summed (0: all the view has); ``crop_margin`` > 0
    cuts wide stored windows to template + 2·crop_margin with a coarse error in ±``crop_bound`` (fixed per
    row, the same cut as DeepSync's test rows, :func:`test_crops`)."""

    frames: int = 0
    crop_margin: int = 0
    crop_bound: int = 10

    def __post_init__(self) -> None:
        if self.frames < 0:
            raise ValueError(f"frames must be >= 0, got {self.frames}")
        if self.crop_margin < 0 or self.crop_bound < 0:
            raise ValueError("crop_margin and crop_bound must be >= 0")


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
    for extra in ("capture", "detection_db", "window_start", "sync_snr_db", "coarse_error_samples", "truth_in_window", "num_cochannel",
                  "rx_power_dbm", "los"):
        if extra in cols:
            df[extra] = np.asarray(cols[extra])
    return df


def offset_breakdown(df, crop_margin: int) -> dict:
    """Median |error| (samples) of an offset prediction frame on the rows whose coarse error keeps the template
    inside the cut window (|coarse_error| <= crop_margin: every lag the matched filter searches holds it) and
    on the rest, with their counts."""
    if "coarse_error_samples" not in df or not len(df) or crop_margin <= 0:
        return {}
    inside = np.abs(df["coarse_error_samples"].to_numpy()) <= crop_margin
    e = df["error"].to_numpy()
    return {"median_template_inside": float(np.median(e[inside])) if inside.any() else None,
            "n_template_inside": int(inside.sum()),
            "median_template_outside": float(np.median(e[~inside])) if (~inside).any() else None}


@BASELINES.register("matched_filter")
class MatchedFilter(Baseline):
    """Matched filter + parabolic interpolation on the frame sum (sub-sample offset, samples at 1.92 MS/s)."""

    view = "folded_lte"
    task = "offset"
    unit = "samples"
    Config = MatchedFilterConfig
    paper = {"median_deepsync": PAPER_DEEPSYNC_MEDIAN_SAMPLES}

    def predict(self, test):
        cols = test_crops(read_columns(test), self.config.crop_margin, self.config.crop_bound)
        n = self.config.frames or None
        if len(cols["rx_id"]) == 0:
            return offset_frame(test, np.zeros(0), cols)
        r = correlate_windows(cols["windows"], cols["template"], n)
        return offset_frame(test, parabolic_peak(r), cols)

    def extra_metrics(self, df) -> dict:
        return offset_breakdown(df, self.config.crop_margin)


__all__ = ["MatchedFilter", "MatchedFilterConfig", "correlate_windows", "crop_windows", "offset_breakdown",
           "offset_frame", "parabolic_peak",
           "test_crops"]
