"""Position from anchors: TDoA multilateration (Chan's closed form, then Gauss-Newton) and range trilateration.

Coordinates in metres in the build's local frame. Every solver estimates the ``dim`` first coordinates of the
position; ``fixed`` gives the remaining ones (e.g. a street-level receiver's height: ``dim=2``,
``fixed=(1.5,)``), which then enter the distances as constants.

- :func:`chan_init` — Y. T. Chan and K. C. Ho, "A simple and efficient estimator for hyperbolic location",
  IEEE Trans. Signal Processing 42(8), 1994, §III: with r_i0 = d_i − d_0 the squared distances give equations
  linear in (p, d_0): −2(b_i − b_0)·p − 2 r_i0 d_0 = r_i0² − k_i + k_0, k_i = ‖b_i‖² + h_i (h_i the squared
  fixed-coordinate distance). Least squares when there are more equations than unknowns (here unweighted, the
  first step of Chan's estimator); with exactly ``dim`` equations p = u + v·d_0 and the constraint
  ‖p − b_0‖² + h_0 = d_0² is a quadratic in d_0 (the root with the smaller residual is kept).
- :func:`tdoa_gauss_newton` — Levenberg-damped Gauss-Newton on the range differences, from Chan's solution.
- :func:`trilaterate` — ranges d_i: linear least squares on differences of squared ranges, then Gauss-Newton.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _split(anchors_m: np.ndarray, dim: int, fixed: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    a = np.atleast_2d(np.asarray(anchors_m, dtype=np.float64))
    if a.shape[1] < dim:
        raise ValueError(f"anchors have {a.shape[1]} coordinates, fewer than dim={dim}")
    fx = np.asarray(fixed if fixed is not None else [], dtype=np.float64).ravel()
    if a.shape[1] - dim != fx.size:
        raise ValueError(f"anchors have {a.shape[1]} coordinates: dim={dim} needs {a.shape[1] - dim} fixed values")
    b = a[:, :dim]
    h = np.sum((a[:, dim:] - fx[None, :]) ** 2, axis=1) if fx.size else np.zeros(len(a))
    return b, h


def _dist(p: np.ndarray, b: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum((p[None, :] - b) ** 2, axis=1) + h)


def chan_init(anchors_m: np.ndarray, tdoa_m: np.ndarray, *, dim: int = 2, fixed: Sequence[float] | None = None
              ) -> np.ndarray:
    """Closed-form TDoA position. ``anchors_m`` (M, D): anchor 0 is the reference; ``tdoa_m`` (M-1,) are the
    range differences d_i − d_0 (m) of anchors 1..M-1. Returns (dim,) or NaNs when under-determined."""
    b, h = _split(anchors_m, dim, fixed)
    r = np.asarray(tdoa_m, dtype=np.float64).ravel()
    if r.size != len(b) - 1:
        raise ValueError(f"{len(b)} anchors need {len(b) - 1} range differences, got {r.size}")
    k = np.sum(b * b, axis=1) + h
    A = np.concatenate([-2.0 * (b[1:] - b[0]), -2.0 * r[:, None]], axis=1)
    c = r * r - k[1:] + k[0]
    m = len(r)
    nan = np.full(dim, np.nan)
    if m >= dim + 1:
        sol, *_ = np.linalg.lstsq(A, c, rcond=None)
        return sol[:dim]
    if m < dim:
        return nan
    Ap, Ad = A[:, :dim], A[:, dim]
    try:
        u = np.linalg.solve(Ap, c)
        v = -np.linalg.solve(Ap, Ad)
    except np.linalg.LinAlgError:
        return nan
    w = u - b[0]  # ‖w + v d0‖² + h0 = d0²
    qa, qb, qc = v @ v - 1.0, 2.0 * (w @ v), w @ w + h[0]
    if abs(qa) < 1e-12:
        roots = np.array([-qc / qb]) if qb != 0 else np.array([])
    else:
        disc = qb * qb - 4 * qa * qc
        if disc < 0:
            disc = 0.0
        roots = np.array([(-qb + s * np.sqrt(disc)) / (2 * qa) for s in (1.0, -1.0)])
    roots = roots[roots >= 0]
    if roots.size == 0:
        return nan
    cands = [u + v * d0 for d0 in roots]
    res = [np.sum((r - (_dist(p, b, h)[1:] - _dist(p, b, h)[0])) ** 2) for p in cands]
    return cands[int(np.argmin(res))]


def _lm(fun, jac, p0: np.ndarray, iters: int, tol: float) -> np.ndarray:
    """Levenberg-damped Gauss-Newton: minimise ‖fun(p)‖² from p0."""
    p = np.asarray(p0, dtype=np.float64).copy()
    lam = 1e-3
    f = fun(p)
    cost = float(f @ f)
    for _ in range(iters):
        J = jac(p)
        g = J.T @ f
        H = J.T @ J
        while True:
            try:
                step = -np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-9), g)
            except np.linalg.LinAlgError:
                return p
            q = p + step
            fq = fun(q)
            cq = float(fq @ fq)
            if cq <= cost:
                p, f, cost = q, fq, cq
                lam = max(lam / 3, 1e-9)
                break
            lam *= 4
            if lam > 1e9:
                return p
        if np.linalg.norm(step) < tol * (1 + np.linalg.norm(p)):
            break
    return p


def tdoa_gauss_newton(anchors_m: np.ndarray, tdoa_m: np.ndarray, *, dim: int = 2,
                      fixed: Sequence[float] | None = None, p0: np.ndarray | None = None, iters: int = 50,
                      tol: float = 1e-10) -> np.ndarray:
    """TDoA position (dim,) from range differences d_i − d_0 (m, anchors 1..M-1 against anchor 0), by
    Levenberg-damped Gauss-Newton from ``p0`` (default: :func:`chan_init`, or the anchors' centroid where Chan's
    solution does not exist). NaNs with fewer than ``dim`` differences."""
    b, h = _split(anchors_m, dim, fixed)
    r = np.asarray(tdoa_m, dtype=np.float64).ravel()
    if r.size < dim:
        return np.full(dim, np.nan)
    if p0 is None:
        p0 = chan_init(anchors_m, r, dim=dim, fixed=fixed)
    if not np.all(np.isfinite(p0)):
        p0 = b.mean(axis=0)

    def fun(p):
        d = _dist(p, b, h)
        return (d[1:] - d[0]) - r

    def jac(p):
        d = np.maximum(_dist(p, b, h), 1e-9)
        u = (p[None, :] - b) / d[:, None]
        return u[1:] - u[0]

    return _lm(fun, jac, p0, iters, tol)


def trilaterate(anchors_m: np.ndarray, ranges_m: np.ndarray, *, dim: int = 2, fixed: Sequence[float] | None = None,
                weights: np.ndarray | None = None, iters: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Position (dim,) from ranges (m) to the anchors: linear least squares on the differences of squared ranges
    (needs > dim anchors; otherwise the weighted centroid), then Gauss-Newton on the (weighted) range residuals."""
    b, h = _split(anchors_m, dim, fixed)
    d = np.asarray(ranges_m, dtype=np.float64).ravel()
    if d.size != len(b):
        raise ValueError(f"{len(b)} anchors need {len(b)} ranges, got {d.size}")
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(b) == 0:
        return np.full(dim, np.nan)
    p0 = (w[:, None] * b).sum(axis=0) / w.sum()
    if len(b) > dim:
        k = np.sum(b * b, axis=1) + h
        A = -2.0 * (b[1:] - b[0])
        c = d[1:] ** 2 - d[0] ** 2 - k[1:] + k[0]
        sol, *_ = np.linalg.lstsq(A, c, rcond=None)
        if np.all(np.isfinite(sol)):
            p0 = sol
    sw = np.sqrt(w)

    def fun(p):
        return sw * (_dist(p, b, h) - d)

    def jac(p):
        dd = np.maximum(_dist(p, b, h), 1e-9)
        return sw[:, None] * (p[None, :] - b) / dd[:, None]

    return _lm(fun, jac, p0, iters, tol)


__all__ = ["chan_init", "tdoa_gauss_newton", "trilaterate"]
