"""Two-phase networked sensing, Phase I (seed ``002_*.txt`` §III): per (tx, rx) site pair, sparse channel
estimate (LASSO, eq. 12), STO from the type I path and the known site distance (eqs. 13-14), STO
compensation (eq. 15) and the range sets each site sends to the central processor (eq. 18).

Input per pair is the bistatic-echo view's ``h``: the least-squares estimate of the L-tap channel from
unit-modulus OFDM pilots, Y[k] = X[k] H[k] + W[k] -> h = (1/N_a) Σ_k X*[k] Y[k] e^{j2πkl/N_fft}
(:func:`received_pilots` and :func:`ls_taps` make that step explicit). LASSO is solved on h as
min_x ½||h - D x||² + μ||x||₁ (FISTA), D the dictionary:

* ``on_grid``: D = I, the seed's full-band model (eq. 4): with all N subcarriers active, eq. (12) on Y equals
  this problem up to a factor N (F has orthogonal columns), and its solution is the soft-thresholded h.
* ``leakage_aware``: the atoms are the tap kernel of the active subcarriers (``kernel_matrix`` of the view),
  on a grid of ``grid_step`` samples, so a path's guard-band leakage is explained by one atom (or two
  neighbours for a delay between grid points) instead of a string of spurious taps.
* ``off_grid``: the same kernel with continuous delays (greedy detection on the ``grid_step`` grid, each
  delay then refined on the continuum and all gains re-fitted by least squares, cyclically: Newtonized OMP,
  Mamandipoor et al., IEEE TSP 2016), stopping when no atom's correlation with the residual exceeds the same
  μ. Needed on ray-traced channels: a site's own near-field roof reflection is ~100 dB and a type I path
  ~70 dB above the tap noise (measured on the Paris build), so the -20 dB basis mismatch of any fixed grid
  leaves residues far above the noise, which LASSO on the grid explains with tens of spurious atoms per link
  (measured: 17-184 detections per link where 1-4 paths are above the noise). The search extends
  ``edge_taps`` beyond both ends of the window so that the sidelobes of a path just outside it are
  explained by that path (which is then dropped: it is not in the window).

μ is set from the noise: μ = σ ||d|| sqrt(ln(J / p_fa)), so that the probability that noise alone yields an
atom on a link is about ``false_alarm`` (a complex Gaussian correlation exceeds t with probability
exp(-t²/σ²||d||²)). Units: delays in samples at f_s, ranges in metres of path length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from twin.constants import SPEED_OF_LIGHT


@dataclass(frozen=True)
class PhaseIConfig:
    """Phase I settings. ``estimator``: ``on_grid`` (D = I) or ``leakage_aware`` (kernel dictionary);
    ``grid_step``: atom spacing of the leakage-aware dictionary (samples; 0.5 keeps the basis mismatch of an
    off-grid path below -20 dB); ``false_alarm``: noise-only atoms per link that μ allows (1e-3);
    ``iterations``: FISTA iterations (leakage-aware); ``min_gain_rel``: atoms below this fraction of μ are
    treated as zero (solver residue). ``off_grid``: at most ``max_paths`` paths per link, search grid
    extended by ``edge_taps`` on both sides of the window."""

    estimator: Literal["on_grid", "leakage_aware", "off_grid"] = "on_grid"
    grid_step: float = 0.5
    false_alarm: float = 1e-3
    iterations: int = 150
    min_gain_rel: float = 1e-3
    max_paths: int = 24
    edge_taps: int = 24

    def __post_init__(self) -> None:
        if self.estimator not in ("on_grid", "leakage_aware", "off_grid"):
            raise ValueError(f"estimator must be on_grid, leakage_aware or off_grid, got {self.estimator!r}")
        if self.max_paths < 1 or self.edge_taps < 0:
            raise ValueError(f"max_paths must be >= 1 and edge_taps >= 0, got {self.max_paths}, {self.edge_taps}")
        if not 0 < self.grid_step <= 1:
            raise ValueError(f"grid_step must be in (0, 1] samples, got {self.grid_step}")
        if not 0 < self.false_alarm < 1:
            raise ValueError(f"false_alarm must be in (0, 1), got {self.false_alarm}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")


# ------------------------------------------------------------------------------------------- pilots


def received_pilots(h: np.ndarray, ofdm, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """QPSK pilots X[k] on the active subcarriers and Y[k] = X[k] Σ_l h[l] e^{-j2πkl/N_fft} (seed eq. 11).

    Returns (X, Y), both (..., N_a) complex, subcarriers k = -⌊N_a/2⌋ .. N_a-1-⌊N_a/2⌋.
    """
    h = np.atleast_2d(h)
    na, n = ofdm.num_subcarriers, ofdm.fft_size
    k = np.arange(-(na // 2), na - na // 2)
    full = np.fft.fft(h, n=n, axis=-1)  # Σ_l h[l] e^{-j2πkl/N}
    x = np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, (h.shape[0], na))))
    return x, x * full[:, k % n]


def ls_taps(x: np.ndarray, y: np.ndarray, ofdm, num_taps: int) -> np.ndarray:
    """Least-squares taps from pilots: h[l] = (1/N_a) Σ_k X*[k] Y[k] e^{j2πkl/N_fft}, l < ``num_taps``."""
    na, n = ofdm.num_subcarriers, ofdm.fft_size
    k = np.arange(-(na // 2), na - na // 2) % n
    full = np.zeros((y.shape[0], n), np.complex128)
    full[:, k] = np.conj(x) * y
    return (np.fft.ifft(full, axis=-1) * (n / na))[:, :num_taps]


# -------------------------------------------------------------------------------------------- LASSO


@dataclass(frozen=True)
class Dictionary:
    """Atoms D (L, J), their delays (J,) in samples, the Gram matrix D^H D and its largest eigenvalue;
    ``ofdm`` and ``continuous`` (off-grid: delays refined on the continuum, see :func:`off_grid_paths`)."""

    atoms: np.ndarray
    delays: np.ndarray
    gram: np.ndarray
    lipschitz: float
    norms: np.ndarray
    ofdm: object = None
    continuous: bool = False
    max_paths: int = 24


def make_dictionary(ofdm, num_taps: int, config: PhaseIConfig) -> Dictionary:
    """The estimator's dictionary for an L-tap window (see the module docstring)."""
    if config.estimator == "on_grid":
        d = np.eye(num_taps, dtype=np.complex128)
        delays = np.arange(num_taps, dtype=np.float64)
    else:
        from twin.datasets.bistatic_echo import kernel_matrix

        e = config.edge_taps if config.estimator == "off_grid" else 0
        delays = np.arange(-float(e), num_taps + e - 0.5 + 1e-9, config.grid_step)
        d = kernel_matrix(ofdm, num_taps, delays)
    if config.estimator == "off_grid":  # no Gram matrix needed (no FISTA)
        return Dictionary(d, delays, np.zeros((0, 0)), 0.0, np.linalg.norm(d, axis=0), ofdm, True, config.max_paths)
    gram = d.conj().T @ d
    lip = float(np.linalg.eigvalsh(gram).max())
    return Dictionary(d, delays, gram, lip, np.linalg.norm(d, axis=0), ofdm)


def _atom(ofdm, num_taps: int, tau: float) -> np.ndarray:
    from twin.datasets.bistatic_echo import kernel_matrix

    return kernel_matrix(ofdm, num_taps, np.array([tau]))[:, 0]


def _refine(r: np.ndarray, ofdm, tau: float, half: float, tol: float = 1e-9) -> float:
    """The delay in [tau - half, tau + half] maximizing |d(τ)^H r|² / ||d(τ)||² (golden section)."""
    L = len(r)
    g = (math.sqrt(5) - 1) / 2

    def f(t: float) -> float:
        a = _atom(ofdm, L, t)
        return -abs(np.vdot(a, r)) ** 2 / float(np.vdot(a, a).real)

    lo, hi = tau - half, tau + half
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = f(x1), f(x2)
    while hi - lo > tol:
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = f(x2)
    return (lo + hi) / 2


def _varpro(h: np.ndarray, ofdm, taus: np.ndarray, free: np.ndarray, span: float) -> np.ndarray:
    """Joint least-squares refinement of the delays ``taus[free]`` (variable projection: all gains are
    eliminated, r(τ) = h - A(τ) A(τ)⁺ h), each within ``span`` samples of its start (scipy ``least_squares``)."""
    from scipy.optimize import least_squares

    from twin.datasets.bistatic_echo import kernel_matrix

    L = len(h)
    scale = max(float(np.linalg.norm(h)), 1e-300)
    hn = h / scale
    # the fixed atoms once: work in the orthogonal complement of their span (P⊥ = I - Q Q^H)
    q = np.linalg.qr(kernel_matrix(ofdm, L, taus[~free]))[0] if (~free).any() else np.zeros((L, 0))
    hp = hn - q @ (q.conj().T @ hn)

    def res(t: np.ndarray) -> np.ndarray:
        A = kernel_matrix(ofdm, L, t)
        A = A - q @ (q.conj().T @ A)
        r = hp - A @ np.linalg.lstsq(A, hp, rcond=None)[0]
        return np.concatenate([r.real, r.imag])

    t0 = taus[free]
    sol = least_squares(res, t0, bounds=(t0 - span, t0 + span), x_scale=0.1, xtol=1e-10, ftol=1e-14,
                        gtol=1e-14, max_nfev=20 * (len(t0) + 1))
    out = taus.copy()
    out[free] = sol.x
    return out


def _newton(r: np.ndarray, ofdm, tau: float, span: float, eps: float = 1e-3, steps: int = 8) -> float:
    """Newton steps on f(τ) = |d(τ)^H r|² / ||d(τ)||² (derivatives by central differences), within ``span``
    samples of ``tau``: the single-path refinement of Newtonized OMP."""
    L = len(r)

    def f(t: float) -> float:
        a = _atom(ofdm, L, t)
        return abs(np.vdot(a, r)) ** 2 / float(np.vdot(a, a).real)

    t = tau
    for _ in range(steps):
        f0, fm, fp = f(t), f(t - eps), f(t + eps)
        g, h2 = (fp - fm) / (2 * eps), (fp - 2 * f0 + fm) / eps**2
        step = -g / h2 if h2 < 0 else math.copysign(0.1, g)
        step = float(np.clip(step, -0.25, 0.25))
        t = float(np.clip(t + step, tau - span, tau + span))
        if abs(step) < 1e-8:
            break
    return t


def off_grid_paths(h: np.ndarray, mu: float, dic: Dictionary, rounds: int = 1, final_rounds: int = 3) -> np.ndarray:
    """Delays (samples, continuous) of the paths of one link's taps ``h`` (L,), Newtonized OMP: greedy
    detection on the grid atoms while max_j |d_j^H r| / ||d_j|| > μ / median ||d||; each new delay refined on
    the continuum (golden section on the residual), then jointly with its neighbours within 3 samples
    (:func:`_varpro`: paths closer than the main lobe), then ``rounds`` cyclic Newton refinements of every
    delay (:func:`_newton`) with the gains re-fitted by least squares; ``final_rounds`` more at the end.
    Atoms of two merged paths (closer than 0.05 sample) are kept once."""
    from twin.datasets.bistatic_echo import kernel_matrix

    L = len(h)
    o = dic.ofdm
    step = float(dic.delays[1] - dic.delays[0]) if len(dic.delays) > 1 else 1.0
    taus = np.zeros(0)
    r = h.copy()
    inv = 1.0 / np.maximum(dic.norms, 1e-300)
    gate = mu / float(np.median(dic.norms))

    def cyclic(taus: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        A = kernel_matrix(o, L, taus)
        g = np.linalg.lstsq(A, h, rcond=None)[0]
        for _ in range(n):
            for i in range(len(taus)):
                ri = h - A @ g + A[:, i] * g[i]
                taus[i] = _newton(ri, o, taus[i], 0.5)
                A[:, i] = _atom(o, L, taus[i])
                g[i] = np.vdot(A[:, i], ri) / np.vdot(A[:, i], A[:, i])
            g = np.linalg.lstsq(A, h, rcond=None)[0]
        return taus, h - A @ g

    for _ in range(dic.max_paths):
        c = np.abs(r @ dic.atoms.conj()) * inv
        j = int(np.argmax(c))
        if not c[j] > gate:
            break
        t_new = _refine(r, o, float(dic.delays[j]), step)
        taus = np.append(taus, t_new)
        near = np.abs(taus - t_new) < 3.0
        if near.sum() > 1:
            taus = _varpro(h, o, taus, near, 1.0)
        taus = np.sort(taus)
        taus = taus[np.append(True, np.diff(taus) > 0.05)]
        taus, r = cyclic(taus, rounds)
    if len(taus):
        taus, r = cyclic(taus, final_rounds)
    return np.sort(taus)


def lasso(h: np.ndarray, dic: Dictionary, mu: np.ndarray, iterations: int) -> np.ndarray:
    """argmin_x ½||h_b - D x_b||² + μ_b ||x_b||₁ for each row b of h (B, L); FISTA, (B, J) complex.

    The identity dictionary is solved in closed form (soft threshold).
    """
    h = np.atleast_2d(np.asarray(h, np.complex128))
    mu = np.broadcast_to(np.asarray(mu, np.float64), (h.shape[0],))[:, None]
    if dic.atoms.shape[0] == dic.atoms.shape[1] and np.array_equal(dic.atoms, np.eye(len(dic.delays))):
        return _soft(h, mu)
    b = h @ dic.atoms.conj()  # D^H h per row
    step = 1.0 / dic.lipschitz
    x = np.zeros_like(b)
    z = x.copy()
    t = 1.0
    gt = dic.gram.T
    for _ in range(iterations):
        x_new = _soft(z - step * (z @ gt - b), step * mu)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x


def _soft(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    mag = np.abs(v)
    return v * np.maximum(0.0, 1.0 - t / np.maximum(mag, 1e-300))


def threshold(noise_var: np.ndarray, dic: Dictionary, false_alarm: float) -> np.ndarray:
    """μ per link: σ · median atom norm · sqrt(ln(J / p_fa)) (zero for a noiseless link)."""
    j = len(dic.delays)
    return np.sqrt(np.asarray(noise_var, np.float64)) * float(np.median(dic.norms)) * math.sqrt(math.log(j / false_alarm))


def detect(x: np.ndarray, dic: Dictionary, floor: np.ndarray) -> list[np.ndarray]:
    """Detected paths per link: delays (samples) of the clusters of atoms with |x| > floor.

    On the on-grid dictionary each non-zero atom is one path; on a finer grid, atoms closer than 1.5 grid
    steps form one cluster whose delay is the |x|²-weighted mean.
    """
    out = []
    for b in range(x.shape[0]):
        idx = np.nonzero(np.abs(x[b]) > floor[b])[0]
        if len(idx) == 0:
            out.append(np.zeros(0))
            continue
        if np.all(np.diff(dic.delays) >= 1.0 - 1e-9):
            out.append(dic.delays[idx].copy())
            continue
        groups = np.split(idx, np.nonzero(np.diff(idx) > 1)[0] + 1)
        w = np.abs(x[b]) ** 2
        out.append(np.array([float(np.sum(w[g] * dic.delays[g]) / np.sum(w[g])) for g in groups]))
    return out


# ------------------------------------------------------------------------------------ STO and ranges


@dataclass
class PairEstimate:
    """One (tx n, rx m) link after Phase I: detected delays (samples, rx clock), STO estimate (samples),
    compensated echo taps (eq. 15, type I removed for n != m) and their path ranges (m)."""

    tx: int
    rx: int
    delays: np.ndarray
    sto: int | None
    taps: np.ndarray
    ranges_m: np.ndarray


def estimate_sto(delays: np.ndarray, los_delay_samples: float) -> int | None:
    """Eq. (13)-(14): the first detected path is the type I path; δ̂ = round(first - τ_I f_s). None if no path."""
    if len(delays) == 0:
        return None
    return int(round(float(np.min(delays)) - los_delay_samples))


def phase1(h: np.ndarray, noise_var: np.ndarray, tx: np.ndarray, rx: np.ndarray, los_delay_s: np.ndarray,
           fs_hz: float, dic: Dictionary, config: PhaseIConfig) -> list[PairEstimate]:
    """Phase I on a batch of links (rows of h, (B, L) complex): LASSO, detection, STO, compensation.

    For n = m (a site's own echoes) there is no type I path and no STO: every detected path is an echo.
    Range of a compensated tap l: l · c / f_s (path length, eq. 15).
    """
    mu = threshold(noise_var, dic, config.false_alarm)
    if dic.continuous:
        L = h.shape[1]
        dets = [d[(d > -0.5) & (d < L - 0.5)] for d in (off_grid_paths(hb, float(m), dic) for hb, m in zip(h, mu, strict=True))]
    else:
        x = lasso(h, dic, mu, config.iterations)
        floor = np.maximum(mu * config.min_gain_rel, 1e-300)
        dets = detect(x, dic, floor)
    out = []
    for b, d in enumerate(dets):
        n, m = int(tx[b]), int(rx[b])
        if n == m:
            sto: int | None = 0
            echo = d
        else:
            sto = estimate_sto(d, los_delay_s[b] * fs_hz)
            echo = d[d > np.min(d) + 0.5] if len(d) else d  # all but the type I path (eq. 15: l > first)
        taps = np.unique(np.rint(echo - (sto or 0)).astype(np.int64)) if len(echo) else np.zeros(0, np.int64)
        out.append(PairEstimate(n, m, d, sto, taps, taps * SPEED_OF_LIGHT / fs_hz))
    return out


def range_sets(pairs: list[PairEstimate], num_sites: int) -> tuple[list[np.ndarray], dict[tuple[int, int], np.ndarray]]:
    """Eq. (18): per site m the direct ranges |site m - target| (half its own echo ranges, m) and, per ordered
    pair (n, m), n != m, the sum ranges |n - target| + |target - m| (m)."""
    direct = [np.zeros(0) for _ in range(num_sites)]
    sums: dict[tuple[int, int], np.ndarray] = {}
    for p in pairs:
        if p.tx == p.rx:
            direct[p.rx] = np.sort(p.ranges_m / 2)
        else:
            sums[(p.tx, p.rx)] = np.sort(p.ranges_m)
    return direct, sums
