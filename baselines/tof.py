"""First-path time of flight from channel samples on (possibly non-uniform) OFDM subcarriers, and TDoA fixes.

ISLA (seed ``001_*.txt``) estimates the CIR off-grid from the wideband channel the spike-train filter recovers
and takes the first path's ToF; only ToF differences across anchors are meaningful (the IoT clock is not
synchronised). The ISLA text available here lost its algorithm section (§6-7 are missing from the extraction), so
the estimator is ours, of the kind the issue names: orthogonal matching pursuit over a delay grid (one zero-padded
FFT per iteration, since every subcarrier sits on the N-point grid), continuous Newton refinement of every
selected delay (off-grid), least-squares amplitudes, then the earliest path within ``first_path_db`` of the
strongest. ISLA combines the spike-train samples with the plain narrowband channel (§10.2 C, "without combining
with narrowband channel" is its ablation); the twin's two captures share timing and phase (one SS burst), so they
are passed as one coherent :class:`Capture` over the union of subcarriers. Several captures can also be passed
separately (delays shared, own amplitudes: an unknown phase between them does not matter; path powers are then
taken from the widest one).

Localization from pseudo-ranges ρ_i = c·τ̂_i = ||p - a_i|| + b (b: the unknown common clock offset, metres):
equivalent to TDoA without choosing a reference anchor. An NLOS first path only ever adds delay, so the robust
fit uses an asymmetric L1 cost (positive residuals cheaper), from the best point of a coarse grid, then least
squares on the anchors its residuals do not reject (:func:`localize_pseudoranges`).

Units: seconds, Hz, metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.constants import SPEED_OF_LIGHT


@dataclass(frozen=True)
class Capture:
    """Channel samples ``h`` at subcarrier indices ``idx`` (integers on the N-point grid, spacing ``df_hz``).

    ``weight``: per-sample weights (e.g. |G|² of the spike-train filter: the recovered samples' relative SNR);
    None for uniform.
    """

    h: np.ndarray
    idx: np.ndarray
    df_hz: float
    weight: np.ndarray | None = None

    @property
    def freqs_hz(self) -> np.ndarray:
        return np.asarray(self.idx, dtype=np.float64) * self.df_hz


@dataclass(frozen=True)
class TofConfig:
    """Estimator settings (times in seconds).

    ``max_paths``: OMP iterations at most; ``stop_db``: stop when the residual energy falls this far below the
    captured energy; ``first_path_db``: the first path is the earliest estimated path within this many dB of the
    strongest; ``search_s``: delays searched in [0, search_s) (must exceed timing offset + delay spread);
    ``oversample``: FFT grid oversampling; ``newton_iters``: refinement steps per path and sweep.
    """

    max_paths: int = 8
    stop_db: float = 20.0
    first_path_db: float = 12.0
    search_s: float = 8e-6
    oversample: int = 4
    newton_iters: int = 6
    sweeps: int = 1


@dataclass
class TofResult:
    first_path_s: float
    delays_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    powers: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _grid_n(captures: list[Capture]) -> int:
    span = max(int(np.max(c.idx)) - int(np.min(c.idx)) + 1 for c in captures)
    n = 1
    while n < span:
        n *= 2
    return n


def _score_grid(res: list[np.ndarray], captures: list[Capture], n_fft: int, df: float, search_s: float):
    """Σ_c |Σ_n w_n r_n e^{+j2π f_n τ}|² / Σ w on the grid τ_k = k/(n_fft·df), k < search_s·n_fft·df."""
    k_max = max(1, min(n_fft, int(np.ceil(search_s * n_fft * df))))
    score = np.zeros(k_max)
    for r, c in zip(res, captures, strict=True):
        w = np.ones(len(r)) if c.weight is None else c.weight
        buf = np.zeros(n_fft, dtype=np.complex128)
        np.add.at(buf, np.mod(c.idx, n_fft), w * r)
        z = np.fft.ifft(buf) * n_fft  # Σ w r e^{+j2π n k / n_fft}
        score += np.abs(z[:k_max]) ** 2 / np.sum(w)
    return score, 1.0 / (n_fft * df)


def _ls_amplitudes(y: np.ndarray, f: np.ndarray, w: np.ndarray, taus: np.ndarray) -> np.ndarray:
    a = np.exp(-2j * np.pi * np.outer(f, taus))
    sw = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(a * sw, y * sw[:, 0], rcond=None)
    return coef


def _refine(tau: float, ys: list[np.ndarray], captures: list[Capture], iters: int, max_step: float) -> float:
    """Newton steps on g(τ) = Σ_c |z_c(τ)|², z_c = Σ w y e^{+j2πfτ}: the off-grid delay of one path."""
    for _ in range(iters):
        g1 = g2 = 0.0
        for y, c in zip(ys, captures, strict=True):
            f = c.freqs_hz
            w = np.ones(len(y)) if c.weight is None else c.weight
            e = w * y * np.exp(2j * np.pi * f * tau)
            z = e.sum() / np.sum(w)
            z1 = (2j * np.pi * f * e).sum() / np.sum(w)
            z2 = (-(2 * np.pi * f) ** 2 * e).sum() / np.sum(w)
            g1 += 2 * np.real(np.conj(z) * z1)
            g2 += 2 * (np.abs(z1) ** 2 + np.real(np.conj(z) * z2))
        step = -g1 / g2 if g2 < 0 else np.sign(g1) * max_step
        step = float(np.clip(step, -max_step, max_step))
        tau += step
        if abs(step) < 1e-3 * max_step:
            break
    return tau


def estimate_tof(captures: list[Capture], config: TofConfig | None = None) -> TofResult:
    """Off-grid sparse CIR (OMP + Newton) from one or more captures of a link; the first path's delay (s).

    Delays are those the captures' phases imply (including any timing offset of the capture). Each capture
    keeps its own amplitudes; delays are shared.
    """
    cfg = config or TofConfig()
    caps = [Capture(np.asarray(c.h, np.complex128), np.asarray(c.idx, np.int64), float(c.df_hz),
                    None if c.weight is None else np.asarray(c.weight, np.float64)) for c in captures]
    df = caps[0].df_hz
    n_fft = _grid_n(caps) * cfg.oversample
    ws = [np.ones(len(c.h)) if c.weight is None else c.weight for c in caps]
    energy = sum(float(np.sum(w * np.abs(c.h) ** 2)) for w, c in zip(ws, caps, strict=True))
    if energy <= 0:
        return TofResult(float("nan"))
    res = [c.h.copy() for c in caps]
    taus: list[float] = []
    amps: list[np.ndarray] = []
    cell = 1.0 / (n_fft * df) * cfg.oversample  # one resolution cell of the widest capture
    fs = [c.freqs_hz for c in caps]
    for _ in range(cfg.max_paths):
        score, dt = _score_grid(res, caps, n_fft, df, cfg.search_s)
        for t in taus:  # do not pick an already-selected delay again
            k = int(round(t / dt))
            score[max(0, k - cfg.oversample // 2): k + cfg.oversample // 2 + 1] = 0.0
        taus.append(_refine(int(np.argmax(score)) * dt, res, caps, cfg.newton_iters, 0.5 * cell))
        for _sweep in range(cfg.sweeps):  # re-refine every delay against the joint LS fit of the others
            atoms = [np.exp(-2j * np.pi * np.outer(f, taus)) for f in fs]
            amps = [_ls_amplitudes(c.h, f, w, np.array(taus)) for c, f, w in zip(caps, fs, ws, strict=True)]
            full = [c.h - a @ co for c, a, co in zip(caps, atoms, amps, strict=True)]
            for j in range(len(taus)):
                ys = [r + a[:, j] * co[j] for r, a, co in zip(full, atoms, amps, strict=True)]
                taus[j] = _refine(taus[j], ys, caps, cfg.newton_iters, 0.5 * cell)
        amps = [_ls_amplitudes(c.h, f, w, np.array(taus)) for c, f, w in zip(caps, fs, ws, strict=True)]
        res = [c.h - np.exp(-2j * np.pi * np.outer(f, taus)) @ a for c, f, a in zip(caps, fs, amps, strict=True)]
        left = sum(float(np.sum(w * np.abs(r) ** 2)) for w, r in zip(ws, res, strict=True))
        if left < energy * 10 ** (-cfg.stop_db / 10):
            break
    tau_arr = np.array(taus)
    # path powers from the widest capture: a narrower one cannot separate close paths (its LS amplitudes for
    # two delays inside one of its resolution cells are ill-conditioned)
    widest = int(np.argmax([np.ptp(c.idx) for c in caps]))
    pw: np.ndarray = np.asarray(np.abs(amps[widest]) ** 2)
    strong = pw >= pw.max() * 10 ** (-cfg.first_path_db / 10)
    first = float(tau_arr[strong].min())
    order = np.argsort(tau_arr)
    return TofResult(first, tau_arr[order], pw[order])


# -------------------------------------------------------------------------------------------- localization


@dataclass(frozen=True)
class LocalizeConfig:
    """Pseudo-range fix settings (metres).

    ``nlos_weight`` α: the cost of a positive residual (pseudo-range longer than the fit: a non-LOS first path,
    which only ever adds delay) relative to a negative one; ``reject_m``: after the robust fit, anchors whose
    |residual| exceeds it are dropped and the rest solved by least squares (at least ``min_anchors`` kept, the
    smallest residuals); ``grid_m``/``margin_m``: the coarse initial grid over the anchors' box grown by the margin.
    """

    nlos_weight: float = 0.1
    reject_m: float = 5.0
    min_anchors: int = 3
    grid_m: float = 10.0
    margin_m: float = 400.0
    iters: int = 30


@dataclass
class Fix:
    xy: np.ndarray
    bias_m: float
    used: np.ndarray  # bool per anchor
    residual_m: np.ndarray


def _dist(p: np.ndarray, anchors: np.ndarray, z: float) -> np.ndarray:
    return np.sqrt((p[0] - anchors[:, 0]) ** 2 + (p[1] - anchors[:, 1]) ** 2 + (z - anchors[:, 2]) ** 2)


def _gn(anchors: np.ndarray, rho: np.ndarray, z: float, x0: np.ndarray, b0: float, iters: int,
        alpha: float | None = None, max_step: float = 20.0) -> np.ndarray:
    """Gauss-Newton on (x, y, b); with ``alpha``: IRLS towards the asymmetric L1 cost Σ α·r⁺ + r⁻."""
    x = np.array([x0[0], x0[1], b0], dtype=np.float64)
    for _ in range(iters):
        d = np.maximum(_dist(x, anchors, z), 1e-6)
        r = rho - (d + x[2])
        j = np.column_stack([(x[0] - anchors[:, 0]) / d, (x[1] - anchors[:, 1]) / d, np.ones(len(d))])
        if alpha is None:
            sw = np.ones(len(r))
        else:
            sw = np.sqrt(np.where(r > 0, alpha, 1.0) / np.maximum(np.abs(r), 0.05))
        step, *_ = np.linalg.lstsq(j * sw[:, None], r * sw, rcond=None)
        norm = np.linalg.norm(step[:2])
        if norm > max_step:  # trust region: the bias and the range direction are nearly collinear far out
            step = step * (max_step / norm)
        x += step
        if np.linalg.norm(step) < 1e-4:
            break
    return x


def localize_pseudoranges(anchors_m: np.ndarray, rho_m: np.ndarray, z_m: float,
                          config: LocalizeConfig | None = None) -> Fix:
    """Receiver (x, y) at known height ``z_m`` from pseudo-ranges ρ_i = ||p - a_i|| + b, b unknown (m).

    At least 3 anchors; the common bias b absorbs the clock offset, so only ToF differences matter (TDoA).
    NLOS-aware robust fit: a coarse grid over the anchors' box + ``margin_m`` with the asymmetric L1 cost
    Σ α·r⁺ + r⁻ (b in closed form: the α/(1+α) quantile of ρ - d), IRLS on that cost, then least squares on the
    anchors within ``reject_m`` of the robust fit (the rejected ones are flagged in ``used``).
    """
    cfg = config or LocalizeConfig()
    a = np.asarray(anchors_m, np.float64)
    rho = np.asarray(rho_m, np.float64)
    if a.ndim != 2 or a.shape[1] != 3 or len(a) != len(rho) or len(a) < 3:
        raise ValueError(f"need >= 3 anchors as (n, 3) positions with n pseudo-ranges, got {a.shape}, {rho.shape}")
    alpha = cfg.nlos_weight
    q = alpha / (1.0 + alpha)
    lo = a[:, :2].min(0) - cfg.margin_m
    hi = a[:, :2].max(0) + cfg.margin_m
    gx = np.arange(lo[0], hi[0] + cfg.grid_m, cfg.grid_m)
    gy = np.arange(lo[1], hi[1] + cfg.grid_m, cfg.grid_m)
    px, py = np.meshgrid(gx, gy, indexing="ij")
    pts = np.column_stack([px.ravel(), py.ravel()])
    d = np.sqrt(((pts[:, None, :] - a[None, :, :2]) ** 2).sum(-1) + (z_m - a[None, :, 2]) ** 2)
    b = np.quantile(rho[None, :] - d, q, axis=1)
    r = rho[None, :] - d - b[:, None]
    cost = np.where(r > 0, alpha * r, -r).sum(1)
    i = int(np.argmin(cost))
    xr = _gn(a, rho, z_m, pts[i], float(b[i]), 2 * cfg.iters, alpha=alpha)
    if not np.all(np.isfinite(xr)):
        xr = np.array([pts[i][0], pts[i][1], b[i]])
    resid_r = rho - (_dist(xr, a, z_m) + xr[2])
    used = np.abs(resid_r) <= cfg.reject_m
    if used.sum() < cfg.min_anchors:
        used = np.zeros(len(a), bool)
        used[np.argsort(np.abs(resid_r))[: cfg.min_anchors]] = True
    x = _gn(a[used], rho[used], z_m, xr[:2], float(xr[2]), cfg.iters)
    if not np.all(np.isfinite(x)) or np.linalg.norm(x[:2] - xr[:2]) > 2 * cfg.reject_m:
        x = xr  # the least-squares step ran away (poor geometry of the inliers): keep the robust fit
    resid = rho - (_dist(x, a, z_m) + x[2])
    return Fix(np.array(x[:2]), float(x[2]), used, resid)


def tof_to_m(t_s):
    """Seconds of flight to metres."""
    return np.asarray(t_s) * SPEED_OF_LIGHT
