"""CIR -> channel kernels shared by the views: padded path arrays, CFR, sinc taps, applying a CIR to a signal.

Conventions (as Sionna RT, docs/architecture.md "Contracts"): a CIR is a set of paths with absolute delays
``tau_s`` (seconds) and complex coefficients ``a`` that already include the carrier phase, so the complex-baseband
channel is ``h(t) = Σ_l a_l δ(t - τ_l)`` and its frequency response at baseband frequency ``f`` (Hz, relative to
the carrier) is ``H(f) = Σ_l a_l exp(-j2π f τ_l)``.

Batches of links use a *padded path axis*: ``tau_s`` of shape (links, L) and ``a`` of shape (links, L) with
``a = 0`` on padding entries (their delay is irrelevant). Public functions:

- :func:`paths_from_cir` — padded (tau_s, a) arrays from CIR rows (``twin.schema.CIR_SCHEMA``).
- :func:`first_path_delay_s` — the earliest path of each link.
- :func:`cfr` — channel frequency response at arbitrary frequencies (fast path for uniform grids).
- :func:`taps` — sinc-interpolated discrete taps, Sionna's ``Paths.taps`` convention.
- :func:`apply_cir` — apply a CIR exactly (fractional delays) to a sampled baseband signal (circularly).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import scipy.fft as sfft


def _list_values(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(flat values, offsets) of a list column (one chunk)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    offsets = np.asarray(col.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = np.asarray(col.values.to_numpy(zero_copy_only=False))
    return values[offsets[0] : offsets[-1]], offsets - offsets[0]


def _pad(values: np.ndarray, offsets: np.ndarray, width: int, dtype, fill=0) -> np.ndarray:
    n = len(offsets) - 1
    out = np.full((n, width), fill, dtype=dtype)
    counts = np.diff(offsets)
    if n == 0 or width == 0:
        return out
    row = np.repeat(np.arange(n), counts)
    pos = np.arange(len(values)) - np.repeat(offsets[:-1], counts)
    keep = pos < width
    out[row[keep], pos[keep]] = values[keep]
    return out


def paths_from_cir(cir: pa.Table, columns: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Padded path arrays of the CIR rows.

    Returns ``tau_s`` (links, L) float64 seconds, ``a`` (links, L) complex64 (0 on padding), ``num_paths``
    (links,) int, and for each name in ``columns`` (e.g. ``"theta_r"``) a (links, L) float32 array.
    L is the largest path count of the batch (at least 1).
    """
    tau, off = _list_values(cir.column("tau_s"))
    counts = np.diff(off)
    width = max(1, int(counts.max()) if len(counts) else 1)
    are, _ = _list_values(cir.column("a_re"))
    aim, _ = _list_values(cir.column("a_im"))
    out = {
        "tau_s": _pad(tau.astype(np.float64), off, width, np.float64),
        "a": _pad(are.astype(np.float32) + 1j * aim.astype(np.float32), off, width, np.complex64),
        "num_paths": counts.astype(np.int64),
    }
    for name in columns:
        v, o = _list_values(cir.column(name))
        out[name] = _pad(v.astype(np.float32), o, width, np.float32)
    return out


def first_path_delay_s(tau_s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Smallest delay among the non-padding paths of each link (seconds); NaN for a link without paths."""
    t = np.where(np.abs(a) > 0, tau_s, np.inf)
    m = t.min(axis=-1)
    return np.where(np.isfinite(m), m, np.nan)


def _as_batch(tau_s, a):
    tau = np.asarray(tau_s, dtype=np.float64)
    aa = np.asarray(a)
    if not np.iscomplexobj(aa):
        aa = aa.astype(np.complex64)
    if tau.shape != aa.shape:
        raise ValueError(f"tau_s {tau.shape} and a {aa.shape} must have the same shape (links, paths)")
    single = tau.ndim == 1
    if single:
        tau, aa = tau[None], aa[None]
    if tau.ndim != 2:
        raise ValueError(f"tau_s must be (paths,) or (links, paths), got shape {tau.shape}")
    return tau, aa, single


def _split(n: int) -> tuple[int, int]:
    """n = n1·n0 with n0 the divisor of n closest to sqrt(n) (n0 >= 1)."""
    r = int(np.sqrt(n))
    for d in range(r, 0, -1):
        if n % d == 0:
            return n // d, d
    return n, 1


def _gemm_single_thread(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[i] = a[i] @ b[i] for a stack of small float32 products, in row blocks of at most 2^18 multiply-adds.

    OpenBLAS splits a product over threads above ~2^18·2 m·n·k; for these small products the threads cost far
    more than they save, and on a loaded machine they busy-wait for cores (measured 30× slower: 7.5 ms instead of
    0.2 ms for a 150×100 by 100×75 product on 2 shared cores). The same dot products, so the same values."""
    m, k = a.shape[1], a.shape[2]
    n = b.shape[2]
    rows = max(1, (1 << 18) // max(1, n * k))
    for i in range(a.shape[0]):
        if rows >= m:
            np.matmul(a[i], b[i], out=out[i])
        else:
            for r in range(0, m, rows):
                np.matmul(a[i, r : r + rows], b[i], out=out[i, r : r + rows])


def cfr(tau_s, a, freqs_hz, out: np.ndarray | None = None, *, chunk: int = 32) -> np.ndarray:
    """Channel frequency response ``H[b, n] = Σ_l a[b, l] exp(-j2π f_n τ[b, l])`` (complex, unitless).

    ``tau_s`` (links, L) seconds, ``a`` (links, L) complex (padding: a = 0), ``freqs_hz`` (N,) baseband
    frequencies in Hz. Returns (links, N) complex64 (written into ``out`` when given; ``out`` may be complex64
    or complex128). A uniform grid f_n = f_0 + nΔf is computed as a batched matrix product: with n = n1·n0' + i
    the exponential factors into exp(-j2π(f_0 + n1·n0'·Δf)τ)·exp(-j2π iΔf τ), so only L·(n1 + n0') exponentials
    per link are evaluated (phases in float64) and the sum over paths is a (n1 × L)·(L × n0') product.
    A 1-D ``tau_s``/``a`` gives a 1-D result.
    """
    tau, aa, single = _as_batch(tau_s, a)
    f = np.asarray(freqs_hz, dtype=np.float64).reshape(-1)
    nb, npath = tau.shape
    nf = f.size
    if out is None:
        out = np.empty((nb, nf), dtype=np.complex64)
    elif out.shape != (nb, nf) or not np.iscomplexobj(out):
        raise ValueError(f"out must be a complex array of shape {(nb, nf)}, got {out.dtype} {out.shape}")
    if nb == 0 or nf == 0:
        return out[0] if single else out
    df = (f[-1] - f[0]) / (nf - 1) if nf > 1 else 0.0
    uniform = nf >= 16 and df != 0.0 and np.allclose(np.diff(f), df, rtol=1e-9, atol=1e-9 * abs(df))
    ctype = np.complex64 if out.dtype == np.complex64 else np.complex128
    if ctype == np.complex128:
        uniform = False  # double precision requested: evaluate every exponential in float64
    two_pi = 2.0 * np.pi
    if uniform:
        n1, n0 = _split(nf)
        if n0 < 8:  # (nearly) prime length: pad the grid to a square
            n0 = int(np.ceil(np.sqrt(nf)))
            n1 = int(np.ceil(nf / n0))
        i0 = (np.arange(n0, dtype=np.float64) * (-two_pi * df)).astype(np.float32)  # (n0,) rad/s
        i1 = -two_pi * (f[0] + np.arange(n1, dtype=np.float64) * (n0 * df))  # (n1,) rad/s
        b0 = min(chunk, nb)
        # real block form of the complex product (OpenBLAS sgemm; numpy's complex batched matmul is slow):
        # [Hr; Hi] = [[C, -S], [S, C]] @ [c; s]
        mat = np.empty((b0, 2 * n1, 2 * npath), dtype=np.float32)
        vec = np.empty((b0, 2 * npath, n0), dtype=np.float32)
        res = np.empty((b0, 2 * n1, n0), dtype=np.float32)
        ph0 = np.empty((b0, npath, n0), dtype=np.float32)
        amp = np.abs(aa).astype(np.float32)
        arg = np.angle(aa).astype(np.float64)
        for s in range(0, nb, chunk):
            e = min(nb, s + chunk)
            b = e - s
            np.multiply(tau[s:e, :, None].astype(np.float32), i0[None, None, :], out=ph0[:b])
            np.cos(ph0[:b], out=vec[:b, :npath])
            np.sin(ph0[:b], out=vec[:b, npath:])
            ph1 = tau[s:e, None, :] * i1[None, :, None] + arg[s:e, None, :]  # (b, n1, L) float64
            np.remainder(ph1, two_pi, out=ph1)
            ph1 = ph1.astype(np.float32)
            c1 = np.cos(ph1)
            c1 *= amp[s:e, None, :]
            s1 = np.sin(ph1)
            s1 *= amp[s:e, None, :]
            mat[:b, :n1, :npath] = c1
            np.negative(s1, out=mat[:b, :n1, npath:])
            mat[:b, n1:, :npath] = s1
            mat[:b, n1:, npath:] = c1
            _gemm_single_thread(mat[:b], vec[:b], res[:b])
            o = out[s:e]
            o2 = o.reshape(b, -1)
            if n1 * n0 == nf:
                o2.real = res[:b, :n1].reshape(b, nf)
                o2.imag = res[:b, n1:].reshape(b, nf)
            else:
                o2.real = res[:b, :n1].reshape(b, -1)[:, :nf]
                o2.imag = res[:b, n1:].reshape(b, -1)[:, :nf]
    else:
        for s in range(0, nb, chunk):
            e = min(nb, s + chunk)
            ph = np.exp((-two_pi * tau[s:e, :, None]) * f[None, None, :] * 1j).astype(ctype)  # (b, L, N)
            out[s:e] = np.matmul(aa[s:e, None, :].astype(ctype), ph)[:, 0]
    return out[0] if single else out


_THREADS = max(1, os.cpu_count() or 1)


_POOL = None


def _pool():
    """A process-wide thread pool for the kernels (created on first use)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="twin-kernel")
    return _POOL


def taps(tau_s, a, bandwidth_hz: float, num_taps: int, out: np.ndarray | None = None, *, l_min: int = 0,
         chunk: int = 32) -> np.ndarray:
    """Sinc-interpolated taps ``h[b, l] = Σ_k a[b, k] sinc(l − W τ[b, k])`` for l = l_min … l_min+num_taps−1.

    Sionna's ``Paths.taps`` convention (Tse & Viswanath eq. 2.34) with W = ``bandwidth_hz`` (also the tap rate,
    taps are 1/W seconds apart) and *absolute* delays (tap 0 is t = 0; Sionna's ``normalize_delays=False``).
    Returns (links, num_taps) complex64. Kernel: with x = Wτ = m + δ (m integer, |δ| ≤ 1/2),
    sinc(l − x) = (−1)^(l+m) sin(πδ) / (π (x − l)), so the sum over paths is a product of the weights
    a·(−1)^m·sin(πδ)/π with the Cauchy matrix 1/(m − l + δ); δ = 0 is nudged to 1e-7 (error < 1e-7).
    """
    tau, aa, single = _as_batch(tau_s, a)
    if bandwidth_hz <= 0:
        raise ValueError(f"bandwidth_hz must be > 0, got {bandwidth_hz}")
    num_taps = int(num_taps)
    if num_taps <= 0:
        raise ValueError(f"num_taps must be > 0, got {num_taps}")
    nb, npath = tau.shape
    if out is None:
        out = np.empty((nb, num_taps), dtype=np.complex64)
    elif out.shape != (nb, num_taps) or out.dtype != np.complex64:
        raise ValueError(f"out must be complex64 of shape {(nb, num_taps)}, got {out.dtype} {out.shape}")
    if nb == 0:
        return out[0] if single else out
    x = tau * float(bandwidth_hz)
    m = np.rint(x)
    d = x - m
    d = np.where(np.abs(d) < 1e-7, np.where(d < 0, -1e-7, 1e-7), d)
    sign = 1.0 - 2.0 * np.mod(m, 2.0)  # (-1)^m
    w = aa.astype(np.complex64) * (sign * np.sin(np.pi * d) / np.pi).astype(np.float32)  # (b, L)
    l_sign = (1.0 - 2.0 * (np.arange(l_min, l_min + num_taps) % 2)).astype(np.float32)  # (-1)^l
    ls = np.arange(l_min, l_min + num_taps, dtype=np.float32)
    mf = m.astype(np.float32)
    df = d.astype(np.float32)

    def work(starts: range) -> None:
        # per-thread scratch; numpy's ufuncs and matmul release the GIL, so chunks run on all cores
        wri = np.empty((min(chunk, nb), 2, npath), dtype=np.float32)
        res = np.empty((min(chunk, nb), 2, num_taps), dtype=np.float32)
        cauchy = np.empty((min(chunk, nb), npath, num_taps), dtype=np.float32)
        for s in starts:
            e = min(nb, s + chunk)
            b = e - s
            # m - l exactly (integers in float32 up to 2^24), then + δ: keeps δ's precision near the peak
            cm = np.subtract(mf[s:e, :, None], ls[None, None, :], out=cauchy[:b])
            cm += df[s:e, :, None]
            np.reciprocal(cm, out=cm)
            wri[:b, 0] = w[s:e].real
            wri[:b, 1] = w[s:e].imag
            np.matmul(wri[:b], cm, out=res[:b])
            res[:b] *= l_sign
            out[s:e].real = res[:b, 0]
            out[s:e].imag = res[:b, 1]

    starts = range(0, nb, chunk)
    n_threads = min(_THREADS, len(starts))
    if n_threads <= 1:
        work(starts)
    else:
        list(_pool().map(work, [starts[i::n_threads] for i in range(n_threads)]))
    return out[0] if single else out


def apply_cir(x: np.ndarray, fs_hz: float, tau_s: np.ndarray, a: np.ndarray, band_hz: float | None = None) -> np.ndarray:
    """Pass the sampled complex-baseband signal ``x`` (..., n) at ``fs_hz`` through the CIR, circularly.

    y = IDFT(DFT(x)·H(f)) with H(f) = Σ a_l exp(-j2π f τ_l) at the DFT frequencies (exact for fractional
    delays of a signal band-limited to ±fs/2; the last max(τ)·fs samples wrap to the start, so callers keep a
    leading margin). ``tau_s``/``a`` are (L,) for one link. Keeps complex64 input in single precision. ``band_hz``: also apply an ideal band-limiting
    filter |f| ≤ band_hz/2 (a transmitter's spectrum mask). H is evaluated in single precision (rel. 1e-6).
    """
    n = x.shape[-1]
    f = (np.arange(n) - n // 2) * (fs_hz / n)
    H = cfr(np.asarray(tau_s, dtype=np.float64).reshape(1, -1), np.asarray(a, dtype=np.complex64).reshape(1, -1), f)[0]
    if band_hz is not None:
        H[np.abs(f) > band_hz / 2] = 0.0
    H = np.fft.ifftshift(H)
    if x.dtype != np.complex64:
        H = H.astype(np.complex128)
    X = sfft.fft(x, axis=-1)
    X *= H
    return sfft.ifft(X, axis=-1, overwrite_x=True)


__all__ = ["apply_cir", "cfr", "first_path_delay_s", "paths_from_cir", "taps"]
