"""CP-OFDM modulation and demodulation with signed subcarrier indices (the views' signal synthesis)."""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft


def ofdm_modulate(symbols: np.ndarray, subcarriers: np.ndarray, n_fft: int, cp_len) -> np.ndarray:
    """CP-OFDM: ``x[n] = Σ_k X_k exp(j2π k n / n_fft)`` per symbol, preceded by its cyclic prefix.

    ``symbols`` (..., n_sym, K) complex values on the signed subcarrier indices ``subcarriers`` (K,) in
    [-n_fft/2, n_fft/2); ``cp_len`` an int or a sequence of n_sym ints (samples). Unnormalised IDFT, so the
    mean power per sample equals the summed power of the subcarriers. Returns (..., Σ(n_fft + cp)) complex128.
    """
    X = np.asarray(symbols)
    k = np.asarray(subcarriers, dtype=np.int64)
    n_sym = X.shape[-2]
    if np.any(k < -n_fft // 2) or np.any(k >= n_fft // 2):
        raise ValueError(f"subcarrier indices must lie in [-{n_fft // 2}, {n_fft // 2})")
    cps = np.broadcast_to(np.asarray(cp_len, dtype=np.int64), (n_sym,))
    ctype = np.complex64 if X.dtype == np.complex64 else np.complex128
    grid = np.zeros(X.shape[:-1] + (n_fft,), dtype=ctype)
    grid[..., k % n_fft] = X
    t = sfft.ifft(grid, axis=-1, overwrite_x=True, norm="forward")  # Σ_k X_k e^{j2πkn/N}, (..., n_sym, n_fft)
    out = np.empty(X.shape[:-2] + (int(cps.sum()) + n_sym * n_fft,), dtype=ctype)
    pos = 0
    for i in range(n_sym):
        c = int(cps[i])
        out[..., pos : pos + c] = t[..., i, n_fft - c :]
        out[..., pos + c : pos + c + n_fft] = t[..., i, :]
        pos += c + n_fft
    return out


def ofdm_demodulate(x: np.ndarray, subcarriers: np.ndarray, n_fft: int, cp_len, n_sym: int) -> np.ndarray:
    """Inverse of :func:`ofdm_modulate`: drop each CP, DFT, return (..., n_sym, K) subcarrier values."""
    k = np.asarray(subcarriers, dtype=np.int64)
    cps = np.broadcast_to(np.asarray(cp_len, dtype=np.int64), (n_sym,))
    out = []
    pos = 0
    for i in range(n_sym):
        pos += int(cps[i])
        seg = x[..., pos : pos + n_fft]
        out.append((np.fft.fft(seg, axis=-1) / n_fft)[..., k % n_fft])
        pos += n_fft
    return np.stack(out, axis=-2)


__all__ = ["ofdm_demodulate", "ofdm_modulate"]
