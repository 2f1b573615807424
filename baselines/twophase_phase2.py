"""Two-phase networked sensing, Phase II (seed ``002_*.txt`` §IV): joint LOS identification and data
association from the Phase I range sets, then Gauss-Newton localization.

A *mapping* (eq. 19) picks, for a set B of q sites, one direct range d_m (|site m - target|) per site and,
for every ordered pair (n, m) of B, one sum range s_nm (|n - target| + |target - m|). Feasible region
Φ_q (eqs. 30-31): every s_nm within ``eps_sum_m`` of d_n + d_m (eqs. 23-24), built by backtracking so that
Π|D_m| combinations are never enumerated. Ψ_q (eq. 32): the mappings of Φ_q whose Gauss-Newton fit (P1)
leaves an RMS range residual <= ``eps_res_m`` (eq. 25). Then the largest set of mappings that share no
range (eq. 22, problem P4) by the greedy maximum-cardinality search of Algorithm 1 (groups by the first
site's direct range, eqs. 35-36; several partial solutions kept; ties broken by the summed residual), or
by exhaustive search (the reference). Algorithm 2: q = M, M-1, ..., 3, the ranges of the targets found at
one level removed before the next.

Geometry: sites in 3D (metres), targets on a horizontal plane z = ``target_z_m`` with unknown (x, y) — the
seed's 2D model lifted to rooftop sites and street-level targets.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PhaseIIConfig:
    """Phase II thresholds (metres). ``eps_sum_m``: range-sum gate (eqs. 23-24); ``eps_res_m``: RMS
    localization residual gate (eq. 25); both default to None = derived from the range resolution c/f_s by
    the seed's worst-case error (eq. 17): rounding to the nearest tap errs by <= c/(2 f_s) per range, a
    direct range (half an echo) by <= c/(4 f_s), so d_n + d_m - s_nm errs by <= c/f_s -> eps_sum = 1.25 c/f_s,
    eps_res = 0.6 c/f_s. ``target_z_m``: height of the target plane. ``min_sites``: 3 (seed footnote: a
    target seen by fewer sites cannot be localized). ``max_solutions``: partial solutions Algorithm 1 keeps.
    ``exhaustive_limit``: the exhaustive reference runs when |Ψ_q| <= this. ``associate``: False = the
    seed's Benchmark 1 (no exclusivity, every mapping in Ψ is a target)."""

    eps_sum_m: float | None = None
    eps_res_m: float | None = None
    target_z_m: float = 1.0
    min_sites: int = 3
    max_solutions: int = 32
    exhaustive_limit: int = 18
    gn_iterations: int = 20
    associate: bool = True

    def gates(self, range_resolution_m: float) -> tuple[float, float]:
        e1 = self.eps_sum_m if self.eps_sum_m is not None else 1.25 * range_resolution_m
        e2 = self.eps_res_m if self.eps_res_m is not None else 0.6 * range_resolution_m
        return e1, e2


@dataclass
class Mapping:
    """One candidate target: its sites, direct-range index per site, sum-range index per ordered pair,
    the Gauss-Newton position (x, y, z) and RMS residual (m)."""

    sites: tuple[int, ...]
    direct: dict[int, int]
    sums: dict[tuple[int, int], int]
    position: np.ndarray | None = None
    residual: float = math.inf

    def uses(self) -> set[tuple]:
        return {("d", m, i) for m, i in self.direct.items()} | {("s", n, m, i) for (n, m), i in self.sums.items()}


@dataclass
class PhaseIIResult:
    targets: list[Mapping]
    #: per level q: |exhaustive mappings| (Π|D_m| over the q-subsets), |Φ_q|, |Ψ_q|, greedy and exhaustive picks
    levels: dict[int, dict] = field(default_factory=dict)

    @property
    def positions(self) -> np.ndarray:
        return np.array([t.position for t in self.targets], np.float64).reshape(-1, 3)


# -------------------------------------------------------------------------------- Gauss-Newton (P1)


def gauss_newton(sites_xyz: np.ndarray, direct: dict[int, float], sums: dict[tuple[int, int], float],
                 z: float, iterations: int = 20, init: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """argmin_{x,y} Σ_m (|p - s_m| - d_m)² + Σ_nm (|p - s_n| + |p - s_m| - s_nm)², p = (x, y, z) (P1).

    Started at the direct-range-weighted centroid of the sites (or ``init``); returns (p, RMS residual m).
    """
    rows_d = list(direct.items())
    rows_s = list(sums.items())
    if init is None:
        w = np.array([1.0 / max(r, 1.0) for _, r in rows_d])
        idx = [m for m, _ in rows_d]
        xy = (w[:, None] * sites_xyz[idx, :2]).sum(0) / w.sum()
    else:
        xy = np.asarray(init, np.float64)[:2].copy()

    def resid_jac(xy):
        p = np.array([xy[0], xy[1], z])
        r, j = [], []
        for m, d in rows_d:
            v = p - sites_xyz[m]
            nv = max(np.linalg.norm(v), 1e-9)
            r.append(nv - d)
            j.append(v[:2] / nv)
        for (n, m), s in rows_s:
            v1, v2 = p - sites_xyz[n], p - sites_xyz[m]
            n1, n2 = max(np.linalg.norm(v1), 1e-9), max(np.linalg.norm(v2), 1e-9)
            r.append(n1 + n2 - s)
            j.append(v1[:2] / n1 + v2[:2] / n2)
        return np.array(r), np.array(j)

    r, jac = resid_jac(xy)
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(iterations):
        a = jac.T @ jac
        step = np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-9), -jac.T @ r)
        r2, j2 = resid_jac(xy + step)
        c2 = float(r2 @ r2)
        if c2 < cost:
            xy, r, jac, cost = xy + step, r2, j2, c2
            lam = max(lam / 3, 1e-9)
            if np.linalg.norm(step) < 1e-6:
                break
        else:
            lam *= 10
    return np.array([xy[0], xy[1], z]), math.sqrt(cost / max(len(r), 1))


# ---------------------------------------------------------------------------------- feasible sets


def feasible_mappings(sites: tuple[int, ...], direct: list[np.ndarray], sums: dict[tuple[int, int], np.ndarray],
                      free_d: list[np.ndarray], free_s: dict[tuple[int, int], np.ndarray], eps: float) -> list[Mapping]:
    """Φ for one site set B (eqs. 30-31): backtracking over the free direct ranges, pruning with eqs. 23-24.

    For each pair (n, m) of B and each direction measured, the free sum range nearest d_n + d_m must lie
    within ``eps``; it joins the mapping.
    """
    out: list[Mapping] = []

    def match(n, m, target):
        got = []
        for key in ((n, m), (m, n)):
            if key not in sums:
                continue
            s, free = sums[key], free_s[key]
            cand = np.nonzero(free & (np.abs(s - target) <= eps))[0]
            if len(cand) == 0:
                return None
            got.append((key, int(cand[np.argmin(np.abs(s[cand] - target))])))
        return got or None

    def rec(k, chosen_d, chosen_s):
        if k == len(sites):
            out.append(Mapping(sites, dict(chosen_d), dict(chosen_s)))
            return
        m = sites[k]
        for i in np.nonzero(free_d[m])[0]:
            dm = direct[m][i]
            new_s = {}
            ok = True
            for n in sites[:k]:
                got = match(n, m, direct[n][chosen_d[n]] + dm)
                if got is None:
                    ok = False
                    break
                new_s.update(dict(got))
            if not ok:
                continue
            chosen_d[m] = int(i)
            rec(k + 1, chosen_d, {**chosen_s, **new_s})
            del chosen_d[m]

    rec(0, {}, {})
    return out


def localize(mp: Mapping, sites_xyz: np.ndarray, direct: list[np.ndarray], sums: dict[tuple[int, int], np.ndarray],
             config: PhaseIIConfig) -> Mapping:
    d = {m: float(direct[m][i]) for m, i in mp.direct.items()}
    s = {k: float(sums[k][i]) for k, i in mp.sums.items()}
    mp.position, mp.residual = gauss_newton(sites_xyz, d, s, config.target_z_m, config.gn_iterations)
    return mp


# ------------------------------------------------------------------------------ selection (P4 / P5)


def greedy_select(psi: list[Mapping], max_solutions: int) -> list[Mapping]:
    """Algorithm 1: groups Ψ by (first site, its direct range) (eqs. 35-36) and adds at most one mapping of
    each group to every kept partial solution if it shares no range with it (eq. 22); solutions that can
    grow replace those that cannot. Returns the largest solution with the smallest summed residual."""
    groups: dict[tuple[int, int], list[Mapping]] = {}
    for mp in sorted(psi, key=lambda m: m.residual):
        first = mp.sites[0]
        groups.setdefault((first, mp.direct[first]), []).append(mp)
    order = sorted(groups.values(), key=lambda g: g[0].residual)
    sols: list[tuple[list[Mapping], set]] = [([], set())]
    for g in order:
        grown = []
        for chosen, used in sols:
            for mp in g:
                u = mp.uses()
                if not (u & used):
                    grown.append((chosen + [mp], used | u))
        if grown:
            grown.sort(key=lambda s: sum(m.residual for m in s[0]))
            sols = grown[:max_solutions]
    best = max(sols, key=lambda s: (len(s[0]), -sum(m.residual for m in s[0])))
    return best[0]


def exhaustive_select(psi: list[Mapping]) -> list[Mapping]:
    """Problem P4 by exhaustive search: the largest subset of Ψ with no shared range (smallest residual sum)."""
    uses = [m.uses() for m in psi]
    for k in range(len(psi), 0, -1):
        best = None
        for comb in itertools.combinations(range(len(psi)), k):
            u: set = set()
            ok = True
            for c in comb:
                if u & uses[c]:
                    ok = False
                    break
                u |= uses[c]
            if ok:
                r = sum(psi[c].residual for c in comb)
                if best is None or r < best[0]:
                    best = (r, comb)
        if best is not None:
            return [psi[c] for c in best[1]]
    return []


# ------------------------------------------------------------------------------------- Algorithm 2


def phase2(sites_xyz: np.ndarray, direct: list[np.ndarray], sums: dict[tuple[int, int], np.ndarray],
           range_resolution_m: float, config: PhaseIIConfig, *, exhaustive: bool = False) -> PhaseIIResult:
    """Algorithm 2 on one snapshot's range sets; see the module docstring. ``exhaustive``: also solve each
    level's P4 exhaustively (when |Ψ_q| <= ``exhaustive_limit``) and record its cardinality."""
    eps1, eps2 = config.gates(range_resolution_m)
    num = len(sites_xyz)
    free_d = [np.ones(len(d), bool) for d in direct]
    free_s = {k: np.ones(len(v), bool) for k, v in sums.items()}
    targets: list[Mapping] = []
    res = PhaseIIResult(targets)
    for q in range(num, config.min_sites - 1, -1):
        phi: list[Mapping] = []
        full = 0
        for b in itertools.combinations(range(num), q):
            full += int(np.prod([free_d[m].sum() for m in b]))
            phi += feasible_mappings(b, direct, sums, free_d, free_s, eps1)
        psi = [mp for mp in (localize(mp, sites_xyz, direct, sums, config) for mp in phi) if mp.residual <= eps2]
        chosen = greedy_select(psi, config.max_solutions) if config.associate else psi
        info = {"exhaustive": full, "phi": len(phi), "psi": len(psi), "greedy": len(chosen)}
        if exhaustive and config.associate and len(psi) <= config.exhaustive_limit:
            info["exhaustive_pick"] = len(exhaustive_select(psi))
        res.levels[q] = info
        for mp in chosen:
            for m, i in mp.direct.items():
                free_d[m][i] = False
            for k, i in mp.sums.items():
                free_s[k][i] = False
        targets += chosen
    return res


# ---------------------------------------------------------------------------------------- metrics


def ospa(est: np.ndarray, true: np.ndarray, cutoff_m: float = 10.0, order: float = 2.0) -> float:
    """OSPA distance (Schuhmacher et al. 2008) between 2D point sets (m): cutoff c, order p."""
    from scipy.optimize import linear_sum_assignment

    m, n = len(est), len(true)
    if m == 0 and n == 0:
        return 0.0
    if m == 0 or n == 0:
        return cutoff_m
    d = np.minimum(np.linalg.norm(est[:, None, :2] - true[None, :, :2], axis=-1), cutoff_m) ** order
    r, c = linear_sum_assignment(d)
    return float(((d[r, c].sum() + cutoff_m ** order * abs(m - n)) / max(m, n)) ** (1 / order))


def match(est: np.ndarray, true: np.ndarray, gate_m: float) -> list[tuple[int, int, float]]:
    """Optimal assignment of estimates to true targets (2D distance), pairs within ``gate_m``: (i, j, d)."""
    from scipy.optimize import linear_sum_assignment

    if len(est) == 0 or len(true) == 0:
        return []
    d = np.linalg.norm(est[:, None, :2] - true[None, :, :2], axis=-1)
    r, c = linear_sum_assignment(d)
    return [(int(i), int(j), float(d[i, j])) for i, j in zip(r, c, strict=True) if d[i, j] <= gate_m]
