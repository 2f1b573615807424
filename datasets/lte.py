"""LTE downlink pieces (3GPP TS 36.211): synchronisation sequences, numerology, frame-type-1 sync positions.

- :func:`pss` — primary synchronisation sequence d_u(n), §6.11.1.1 (Zadoff-Chu, roots 25, 29, 34).
- :func:`sss` — secondary synchronisation sequence d(n), §6.11.2.1 (interleaved m-sequences).
- :data:`NUMEROLOGY` — channel bandwidth -> resource blocks, FFT size, sample rate (TS 36.101 Table 5.6-1,
  sample rates 1.92·N_FFT/128 MS/s).
- :func:`sync_subcarriers` — the 62 signed subcarrier indices carrying PSS/SSS (§6.11.1.2, §6.11.2.2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SUBCARRIER_SPACING_HZ = 15e3
SAMPLES_PER_FRAME_1M92 = 19200  # 10 ms at 1.92 MS/s
FRAME_S = 10e-3
PSS_ROOTS = {0: 25, 1: 29, 2: 34}  # TS 36.211 Table 6.11.1.1-1


@dataclass(frozen=True)
class Numerology:
    """One LTE channel bandwidth: ``n_rb`` resource blocks, ``n_fft`` FFT size, ``fs_hz`` sample rate (Hz)."""

    bandwidth_hz: float
    n_rb: int
    n_fft: int

    @property
    def fs_hz(self) -> float:
        return self.n_fft * SUBCARRIER_SPACING_HZ

    @property
    def n_sc(self) -> int:
        return 12 * self.n_rb

    def cp_lengths(self) -> np.ndarray:
        """Normal-CP lengths (samples) of the 7 symbols of a slot: 160 then 6×144 at N_FFT = 2048 (§6.12)."""
        s = self.n_fft / 2048
        return np.array([round(160 * s)] + [round(144 * s)] * 6, dtype=np.int64)

    def subcarriers(self) -> np.ndarray:
        """Signed indices of the occupied subcarriers, DC excluded (§6.12): -n_sc/2..-1, 1..n_sc/2."""
        h = self.n_sc // 2
        return np.concatenate([np.arange(-h, 0), np.arange(1, h + 1)])


NUMEROLOGY: dict[float, Numerology] = {
    n.bandwidth_hz: n
    for n in (
        Numerology(1.4e6, 6, 128),
        Numerology(3e6, 15, 256),
        Numerology(5e6, 25, 512),
        Numerology(10e6, 50, 1024),
        Numerology(15e6, 75, 1536),
        Numerology(20e6, 100, 2048),
    )
}


def numerology(bandwidth_hz: float) -> Numerology:
    """The :class:`Numerology` of an LTE channel bandwidth (Hz); ValueError naming the valid ones otherwise."""
    for bw, n in NUMEROLOGY.items():
        if abs(float(bandwidth_hz) - bw) < 1.0:
            return n
    raise ValueError(
        f"bandwidth_hz={bandwidth_hz} is not an LTE channel bandwidth; use one of "
        + ", ".join(f"{b:g}" for b in NUMEROLOGY)
    )


def pss(n_id2: int) -> np.ndarray:
    """PSS d_u(n), n = 0..61, TS 36.211 §6.11.1.1: exp(-jπu n(n+1)/63) for n ≤ 30, exp(-jπu(n+1)(n+2)/63) after."""
    if n_id2 not in PSS_ROOTS:
        raise ValueError(f"n_id2 must be 0, 1 or 2, got {n_id2}")
    u = PSS_ROOTS[int(n_id2)]
    n = np.arange(62)
    m = np.where(n <= 30, n * (n + 1), (n + 1) * (n + 2))
    return np.exp(-1j * np.pi * u * m / 63.0)


def _msequence(taps: tuple[int, ...]) -> np.ndarray:
    """±1 sequence 1 − 2x(i) of length 31 with x(i+5) = Σ_{t in taps} x(i+t) mod 2, x(0..4) = 0,0,0,0,1."""
    x = np.zeros(31, dtype=np.int64)
    x[4] = 1
    for i in range(26):
        x[i + 5] = sum(x[i + t] for t in taps) % 2
    return 1 - 2 * x


_S_TILDE = _msequence((2, 0))
_C_TILDE = _msequence((3, 0))
_Z_TILDE = _msequence((4, 2, 1, 0))


def sss_indices(n_id1: int) -> tuple[int, int]:
    """(m0, m1) of TS 36.211 §6.11.2.1 (the closed form behind Table 6.11.2.1-1)."""
    qp = n_id1 // 30
    q = (n_id1 + qp * (qp + 1) // 2) // 30
    mp = n_id1 + q * (q + 1) // 2
    m0 = mp % 31
    m1 = (m0 + mp // 31 + 1) % 31
    return m0, m1


def sss(n_id1: int, n_id2: int, subframe: int) -> np.ndarray:
    """SSS d(0..61) (real ±1 values) for subframe 0 or 5, TS 36.211 §6.11.2.1."""
    if not 0 <= int(n_id1) <= 167:
        raise ValueError(f"n_id1 must be in 0..167, got {n_id1}")
    if n_id2 not in (0, 1, 2):
        raise ValueError(f"n_id2 must be 0, 1 or 2, got {n_id2}")
    if subframe not in (0, 5):
        raise ValueError(f"subframe must be 0 or 5, got {subframe}")
    m0, m1 = sss_indices(int(n_id1))
    n = np.arange(31)
    s0 = _S_TILDE[(n + m0) % 31]
    s1 = _S_TILDE[(n + m1) % 31]
    c0 = _C_TILDE[(n + n_id2) % 31]
    c1 = _C_TILDE[(n + n_id2 + 3) % 31]
    z0 = _Z_TILDE[(n + m0 % 8) % 31]
    z1 = _Z_TILDE[(n + m1 % 8) % 31]
    d = np.empty(62)
    if subframe == 0:
        d[0::2] = s0 * c0
        d[1::2] = s1 * c1 * z0
    else:
        d[0::2] = s1 * c0
        d[1::2] = s0 * c1 * z1
    return d


def sync_subcarriers() -> np.ndarray:
    """Signed subcarrier indices of d(0..61): d(n) sits at n − 31 for n < 31 and n − 30 after (DC skipped)."""
    n = np.arange(62)
    return np.where(n < 31, n - 31, n - 30)


def pci_split(pci: int) -> tuple[int, int]:
    """PCI = 3·N_ID1 + N_ID2 (§6.11) -> (N_ID1, N_ID2)."""
    if not 0 <= int(pci) <= 503:
        raise ValueError(f"an LTE PCI is in 0..503, got {pci}")
    return int(pci) // 3, int(pci) % 3


# Frame structure type 1 (FDD), normal CP: SSS in symbol 5 and PSS in symbol 6 of slots 0 and 10 (§6.11.1.2).
SSS_SYMBOL = 5
PSS_SYMBOL = 6


# ------------------------------------------------------------------------------- resource-element content

_QPSK = (np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / np.sqrt(2)).astype(np.complex64)
_QAM16 = ((np.array([-3, -1, 1, 3])[:, None] + 1j * np.array([-3, -1, 1, 3])[None, :]).reshape(-1)
          / np.sqrt(10)).astype(np.complex64)


def data_symbols(rng: np.random.Generator, shape, modulation: str) -> np.ndarray:
    """Unit-energy random QPSK or 16QAM symbols (TS 36.211 §7.1.2, §7.1.3 constellations; the bit mapping does
    not matter for random data), complex64 of ``shape``."""
    if modulation not in ("qpsk", "16qam"):
        raise ValueError(f"modulation must be 'qpsk' or '16qam', got {modulation!r}")
    lut = _QPSK if modulation == "qpsk" else _QAM16
    return lut[rng.integers(0, lut.size, shape, dtype=np.uint8)]


@functools.cache
def sync_layout(n_sc: int) -> tuple[np.ndarray, np.ndarray]:
    """For the ``n_sc`` occupied subcarriers ordered −n_sc/2 … −1, 1 … n_sc/2: (mask of the 72 central ones, the
    62 carrying PSS/SSS and the 10 reserved around them, §6.11.1.2; the positions of d(0 … 61) in that order)."""
    h = n_sc // 2
    k = np.concatenate([np.arange(-h, 0), np.arange(1, h + 1)])
    pos = {int(v): i for i, v in enumerate(k)}
    return np.abs(k) <= 36, np.array([pos[int(v)] for v in sync_subcarriers()])


__all__ = [
    "FRAME_S",
    "NUMEROLOGY",
    "Numerology",
    "PSS_ROOTS",
    "SUBCARRIER_SPACING_HZ",
    "data_symbols",
    "numerology",
    "pci_split",
    "pss",
    "sss",
    "sss_indices",
    "sync_layout",
    "sync_subcarriers",
]
