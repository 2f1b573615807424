"""The two-phase protocol (seed ``002_*.txt``) on bistatic-echo view rows, and its scoring.

:func:`run_snapshot` takes the rows of one snapshot (every ordered site pair), runs Phase I on each link
(:mod:`twophase_phase1`) and Phase II on the range sets (:mod:`twophase_phase2`), and scores the result
against the view's labels (:func:`score_snapshot`):

* range estimation error (seed §V-A): a snapshot is in error when, on some link, the estimated STO differs
  from the true one, a type I/II path in the window has no detected tap at its compensated position, or a
  detected tap lies where no path at all is (± ``tap_tolerance``: 0 on the on-grid model, 1 on the
  band-limited one, whose fractional delays round either way). The seed's rule compares the whole sets; in
  a ray-traced city most of the type III paths are tens of dB under the noise, so missing them is not
  counted (a detected one is never an error). ``strict_match`` records the seed's whole-set equality too;
  ``link_error_rate`` is the fraction of links with such an error.
* target count: the targets that at least ``min_sites`` sites can range (:func:`visible_sites`: LOS by the
  ``target_los_sites`` label and their own echo in the window) are the ones the protocol can find; K̂
  against that count.
* localization: OSPA (cutoff ``ospa_cutoff_m``, order 2), matched errors (Hungarian, gate
  ``correct_radius_m``; the seed's correct-localization radius), miss-detection and false-alarm rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.baselines.twophase_phase1 import Dictionary, PairEstimate, PhaseIConfig, phase1, range_sets
from twin.baselines.twophase_phase2 import PhaseIIConfig, PhaseIIResult, match, ospa, phase2
from twin.constants import SPEED_OF_LIGHT


@dataclass(frozen=True)
class ScoreConfig:
    ospa_cutoff_m: float = 10.0
    correct_radius_m: float = 2.0


@dataclass
class SnapshotResult:
    snapshot: int
    pairs: list[PairEstimate]
    phase2: PhaseIIResult
    range_error: bool = False
    strict_match: bool = False
    sto_errors: int = 0
    link_errors: int = 0
    links: int = 0
    k_true: int = 0
    k_hat: int = 0
    ospa_m: float = 0.0
    matched: list[tuple[int, int, float]] = field(default_factory=list)
    true_xy: np.ndarray | None = None
    target_ids: list[int] = field(default_factory=list)


def complex_taps(h) -> np.ndarray:
    """A view's ``h`` as complex (L,): accepts (L, 2) re/im floats or complex."""
    h = np.asarray(h)
    if h.ndim == 2 and h.shape[-1] == 2 and not np.iscomplexobj(h):
        return h[:, 0].astype(np.float64) + 1j * h[:, 1].astype(np.float64)
    return h.astype(np.complex128)


def site_table(rows: list[dict]) -> tuple[list[str], np.ndarray]:
    """Site ids (sorted) and their positions (S, 3), m, from the rows of one snapshot."""
    pos: dict[str, tuple] = {}
    for r in rows:
        pos[r["tx_site"]] = (r["tx_x"], r["tx_y"], r["tx_z"])
        pos[r["rx_site"]] = (r["rx_x"], r["rx_y"], r["rx_z"])
    ids = sorted(pos)
    return ids, np.array([pos[i] for i in ids], np.float64)


def run_snapshot(rows: list[dict], fs_hz: float, dic: Dictionary, p1: PhaseIConfig, p2: PhaseIIConfig,
                 *, h_key: str = "h", noise_var: float | None = None, exhaustive: bool = False,
                 h_override: np.ndarray | None = None) -> SnapshotResult:
    """Phase I + II on one snapshot's rows. ``h_override`` (B, L): channels to use instead of the rows'
    (e.g. the clean channel re-noised at another power, with ``noise_var`` its per-tap variance)."""
    ids, xyz = site_table(rows)
    idx = {s: i for i, s in enumerate(ids)}
    h = h_override if h_override is not None else np.stack([complex_taps(r[h_key]) for r in rows])
    nv = np.array([r["noise_var"] if noise_var is None else noise_var for r in rows], np.float64)
    tx = np.array([idx[r["tx_site"]] for r in rows])
    rx = np.array([idx[r["rx_site"]] for r in rows])
    los = np.array([r["los_delay_s"] for r in rows], np.float64)
    pairs = phase1(h, nv, tx, rx, los, fs_hz, dic, p1)
    direct, sums = range_sets(pairs, len(ids))
    res2 = phase2(xyz, direct, sums, SPEED_OF_LIGHT / fs_hz, p2, exhaustive=exhaustive)
    return SnapshotResult(int(rows[0]["snapshot"]), pairs, res2)


def label_taps(row: dict) -> tuple[set[int], set[int], set[int]]:
    """Compensated taps (STO removed) of a link's in-window paths: (all paths but type I, type II, type I)."""
    d = int(row["sto_diff_samples"])
    allp: set[int] = set()
    t2: set[int] = set()
    t1: set[int] = set()
    for ty, tap, inw in zip(row["path_type"], row["path_tap"], row["path_in_window"], strict=True):
        if not inw:
            continue
        (t1 if ty == 1 else allp).add(int(tap) - d)
        if ty == 2:
            t2.add(int(tap) - d)
    return allp - t1 if row["tx_site"] != row["rx_site"] else allp | t1, t2, t1


def score_snapshot(res: SnapshotResult, rows: list[dict], tap_tolerance: int, min_sites: int,
                   config: ScoreConfig) -> SnapshotResult:
    """Fill ``res``'s scores from the rows' labels (see the module docstring)."""
    err = False
    strict = True
    sto_err = link_err = 0
    for pe, r in zip(res.pairs, rows, strict=True):
        allp, t2, _ = label_taps(r)
        est = set(int(v) for v in pe.taps)
        bad = False
        if r["tx_site"] != r["rx_site"] and pe.sto != int(r["sto_diff_samples"]):
            sto_err += 1
            bad = True

        def near(t, s):
            return (any(abs(t - u) <= tap_tolerance for u in s))
        if any(not near(t, est) for t in t2) or any(not near(e, allp) for e in est):
            bad = True
        err |= bad
        link_err += bad
        strict &= est == allp and (r["tx_site"] == r["rx_site"] or pe.sto == int(r["sto_diff_samples"]))
    r0 = rows[0]
    seen = [k for k in range(len(r0["target_id"])) if len(visible_sites(rows, k)) >= min_sites]
    true_xy = np.column_stack([np.asarray(r0["target_sp_x"])[seen], np.asarray(r0["target_sp_y"])[seen]]) \
        if seen else np.zeros((0, 2))
    est = res.phase2.positions[:, :2]
    res.range_error, res.strict_match, res.sto_errors = err, strict, sto_err
    res.link_errors, res.links = link_err, len(rows)
    res.k_true, res.k_hat = len(seen), len(est)
    res.ospa_m = ospa(est, true_xy, config.ospa_cutoff_m)
    res.matched = match(est, true_xy, config.correct_radius_m)
    res.true_xy, res.target_ids = true_xy, [int(r0["target_id"][k]) for k in seen]
    return res


def visible_sites(rows: list[dict], k: int) -> set[str]:
    """Sites that can range target k: in line of sight of it (``target_los_sites``) with their own type II
    echo of it (m -> k -> m) inside the window."""
    los = set(rows[0]["target_los_sites"][k])
    out = set()
    for r in rows:
        if r["tx_site"] == r["rx_site"] and r["rx_site"] in los:
            if any(t == 2 and g == k and w for t, g, w in zip(r["path_type"], r["path_target"], r["path_in_window"],
                                                             strict=True)):
                out.add(r["rx_site"])
    return out


def summarize(results: list[SnapshotResult]) -> dict:
    """Aggregate scores over snapshots (probabilities in [0, 1], distances in m)."""
    n = len(results)
    kt = sum(r.k_true for r in results)
    kh = sum(r.k_hat for r in results)
    ok = sum(len(r.matched) for r in results)
    errs = [d for r in results for _, _, d in r.matched]
    lv: dict[str, dict[str, float]] = {}
    for r in results:
        for q, info in r.phase2.levels.items():
            for k, v in info.items():
                lv.setdefault(str(q), {}).setdefault(k, 0.0)
                lv[str(q)][k] += v / n
    return {
        "snapshots": n,
        "range_error_probability": sum(r.range_error for r in results) / max(n, 1),
        "strict_set_match_rate": sum(r.strict_match for r in results) / max(n, 1),
        "sto_error_links": int(sum(r.sto_errors for r in results)),
        "link_error_rate": sum(r.link_errors for r in results) / max(sum(r.links for r in results), 1),
        "count_accuracy": sum(r.k_hat == r.k_true for r in results) / max(n, 1),
        "targets_true": kt, "targets_detected": kh, "targets_correct": ok,
        "miss_detection": 1 - ok / kt if kt else 0.0,
        "false_alarm": 1 - ok / kh if kh else 0.0,
        "ospa_m": float(np.mean([r.ospa_m for r in results])) if results else 0.0,
        "matched_rmse_m": float(np.sqrt(np.mean(np.square(errs)))) if errs else float("nan"),
        "feasible_sets": lv,
    }
