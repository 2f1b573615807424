"""The folded-LTE view (DeepSync, seeds/000): LTE downlinks through a square-law envelope detector at 1.92 MS/s.

Model (per receiver; every step in complex baseband, powers in W, times in seconds):

1. Each LTE cell reaching the receiver transmits frame structure type 1 with normal CP at its bandwidth
   (TS 36.211 §6.12 numerology, 1.4–20 MHz): PSS (§6.11.1) and SSS (§6.11.2) from its PCI in symbols 6 and 5
   of slot 0, full-load random QPSK/16QAM on every other resource element, the same energy per RE everywhere,
   total power = the cell's ``tx_power_dbm``. Cells are frame-synchronous (frames start at t = 0).
2. An ideal spectrum mask |f| ≤ bandwidth/2, then the link's CIR applied exactly in the frequency domain
   (fractional delays; ``a`` carries the carrier phase as traced), plus a random oscillator phase per cell.
3. Cells are summed at their carriers. Cells whose bands lie within the detector bandwidth of each other form
   a *cluster*, combined at complex baseband around the cluster centre. Between clusters the carrier
   differences exceed the detector band, so their square-law cross terms vanish in the low-pass and are dropped
   analytically. Thermal noise k·T0·F, white over each cluster's span (an RF pre-filter), is added.
4. Envelope detector: y = P + c3·P^(3/2)/√P_ref + c4·P²/P_ref, P the summed envelope power (inter-cluster
   baseband terms of P² kept exactly: (ΣP_i)² + 2Σ_{i<j}P_iP_j), then an ideal low-pass of one-sided bandwidth
   ``detector_bandwidth_hz``.
5. Sampling at 1.92 MS/s with no anti-alias filter: everything inside the detector band beyond ±0.96 MHz folds
   in. The receiver's sampling phase is random per receiver, and the sampling clock drifts by
   ``clock_drift_ppm`` (frame f is offset by f·19200·ppm·1e-6 samples). An ADC with AGC quantises.

Computation: when the detector band holds every product of a cluster (B_det ≥ m·span, m = 1 for the square
law, 2 with c3/c4 — the default case), the low-pass is the identity on the detector output and
y(t_n) = D(P(t_n)) exactly, so each cell's band-limited spectrum is read directly at the receiver's 1.92-MS/s
instants (spectral lines 1.92 MHz apart land on the same sample values: the folding). Otherwise the cluster
is simulated at K·1.92 MS/s ≥ m·span + B_det, detected, low-passed and sampled. With the square law the
clusters add after the detector, so this is decided per cluster (and per sync component): a narrow cluster is
read directly even when another cluster of the receiver needs K > 1; with c3/c4 every cluster uses the common K.

Cost (what keeps a 60-receiver city build's views cheaper than its tracing): cells of one bandwidth are
synthesised together in reused buffers (one OFDM modulation and one segment DFT per few cells), each link's
CFR over its own paths only; a cell's carrier offset df = (q + r)·Δ from the cluster centre (Δ = 1.92 MHz/1080,
the segment's line spacing) moves its lines by q bins and multiplies the time signal by exp(j2π r n/M), so all
cells (and the cluster's noise) sharing a residual r share one inverse DFT — one per distinct carrier grid
offset, not one per cell; the detector output is low-passed and sampled from its real-input DFT.

Only 1080 samples (0.56 ms) around the sync symbols of subframe 0 are simulated per frame (from slot 0 symbol
1, frame sample 138); the coarse matched filter searches every position of that segment where the window fits.
Output per (receiver, cell with a PCI): N frames' windows of
template length + 2·5 samples (274 + 10 = 284; DeepSync's 286 counts a 276-sample MATLAB template), the template
(SSS + PSS symbols with CPs at 1.92 MS/s through the same detector), the coarse index, and labels.
"""

from __future__ import annotations

import functools
import threading
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import scipy.fft as sfft

from twin.constants import SPEED_OF_LIGHT
from twin.datasets import lte
from twin.datasets.channel import cfr, first_path_delay_s, paths_from_cir
from twin.datasets.noise import dbm_to_w, link_rng, thermal_noise_w
from twin.datasets.registry import ViewInputs, register_view
from twin.datasets.tables import cell_attributes, view_table
from twin.errors import TwinInputError
from twin.schema import tensor_array, tensor_field

FS_OUT_HZ = 1.92e6  # DeepSync's sampling rate
SEG_START = 138  # first simulated 1.92-MS/s sample of the frame (slot 0, symbol 1)
SEG_GEN = 1097  # generated: slot 0 symbols 1..6 + slot 1 symbols 0..1 (6·137 + 138 + 137)
SEG_LEN = 1080  # kept (2^3·3^3·5: fast FFTs): 1.92-MS/s samples 138 … 1217 of the frame
SSS_START = 686  # 1.92-MS/s index of the SSS CP start in the frame (138 + 4·137)
TEMPLATE_LEN = 274  # SSS + PSS with their CPs at 1.92 MS/s
MAX_DELAY_S = 60e-6  # the segment's leading margin (137 samples = 71 µs) must hold the delay spread


@dataclass(frozen=True)
class FoldedLteConfig:
    """folded-LTE settings (defaults: DeepSync §5–6, TS 36.211)."""

    num_frames: int = 10  # N frames per example (DeepSync: 10)
    window_margin: int = 5  # samples before and after the template in each window (DeepSync: ±5)
    default_bandwidth_hz: float = 10e6  # cells without a bandwidth: 50 RB, 15.36 MS/s
    data_modulation: Literal["qpsk", "16qam"] = "qpsk"
    data_load: float = 1.0  # fraction of the non-sync REs carrying data (1: full load, DeepSync; 0: sync only)
    detector_bandwidth_hz: float = 45e6  # one-sided video bandwidth (DeepSync's hardware: 45 MHz)
    c3: float = 0.0  # third-order detector term, relative at P = P_ref
    c4: float = 0.0  # fourth-order detector term, relative at P = P_ref
    detector_ref_dbm: float = -20.0  # P_ref of the higher-order terms
    add_noise: bool = True
    noise_figure_db: float = 6.0
    adc_bits: int = 12  # 0: no quantisation
    adc_headroom_db: float = 3.0  # AGC: full scale this far above the capture's peak
    clock_drift_ppm: float = 0.0  # sampling-clock offset, parts per million
    # where each row's window is cut: "coarse" (the matched filter on the frame sum, DeepSync §5.1) or
    # "truth_jitter" (the true template start plus a uniform integer error in [-J, J]: DeepSync §8.2's training
    # protocol, J = jitter_max_samples = 10)
    window_placement: Literal["coarse", "truth_jitter"] = "coarse"
    jitter_max_samples: int = 10
    # template length: 274 = SSS + PSS with their CPs at 1.92 MS/s (TS 36.211 §6.12); DeepSync §6.1 uses a
    # 276-sample MATLAB template and 286-sample windows (template_len = 276 with window_margin = 5)
    template_len: int = TEMPLATE_LEN
    # detector (video-amplifier) noise: white Gaussian at the detector output, rms in dBm of detected power
    # (an assumption: a diode detector's noise floor ~10 dB under the -70 dBm sensitivity); None: none
    detector_noise_dbm: float | None = -80.0
    # receiver sensitivity (DeepSync §7: -70 dBm): a cell received weaker than this still adds to the signal
    # but gets no row; None: every cell with a PCI gets a row
    sensitivity_dbm: float | None = -70.0
    # carrier-frequency offset per cell, uniform in ±cfo_ppm·f (TS 36.104 §6.5.1: ±0.05 ppm wide-area BS),
    # fixed per cell (same at every receiver): co-channel cross terms rotate from frame to frame
    cfo_ppm: float = 0.05
    # captures per receiver: independent realisations of the same traced channels (data symbols, oscillator
    # phases, thermal/detector noise, the receiver's sampling phase and the truth_jitter error drawn afresh),
    # one row per (capture, detected cell), column ``capture``; capture 0 uses the random streams of captures = 1
    captures: int = 1
    # PCI detection (DeepSync §5: the PCI is extracted by matched filtering the aggregated frames): per row
    # ``detection_db`` = peak / median of the squared correlation of the frame sum with the cell's template over
    # every position of the segment (no truth used); with a threshold, rows below it are dropped (not detected)
    detection_min_db: float | None = None

    def __post_init__(self) -> None:
        if self.num_frames <= 0:
            raise ValueError(f"num_frames must be > 0, got {self.num_frames}")
        if not 0 <= self.window_margin <= 60:
            raise ValueError(f"window_margin must be in 0..60 samples, got {self.window_margin}")
        lte.numerology(self.default_bandwidth_hz)
        if not 0.0 <= self.data_load <= 1.0:
            raise ValueError(f"data_load must be in [0, 1], got {self.data_load}")
        if self.data_modulation not in ("qpsk", "16qam"):
            raise ValueError(f"data_modulation must be 'qpsk' or '16qam', got {self.data_modulation!r}")
        if self.detector_bandwidth_hz < FS_OUT_HZ / 2:
            raise ValueError(f"detector_bandwidth_hz must be >= 0.96e6 (the output Nyquist band), got {self.detector_bandwidth_hz}")
        if not 0 <= self.adc_bits <= 24:
            raise ValueError(f"adc_bits must be in 0..24, got {self.adc_bits}")
        if abs(self.clock_drift_ppm) > 1000:
            raise ValueError(f"clock_drift_ppm must be within ±1000, got {self.clock_drift_ppm}")
        if self.window_placement not in ("coarse", "truth_jitter"):
            raise ValueError(f"window_placement must be 'coarse' or 'truth_jitter', got {self.window_placement!r}")
        if not 0 <= self.jitter_max_samples <= 60:
            raise ValueError(f"jitter_max_samples must be in 0..60, got {self.jitter_max_samples}")
        if not TEMPLATE_LEN <= self.template_len <= TEMPLATE_LEN + 20:
            raise ValueError(f"template_len must be in {TEMPLATE_LEN}..{TEMPLATE_LEN + 20}, got {self.template_len}")
        if not 0 <= self.cfo_ppm <= 10:
            raise ValueError(f"cfo_ppm must be in [0, 10], got {self.cfo_ppm}")
        if not 1 <= self.captures <= 1000:
            raise ValueError(f"captures must be in 1..1000, got {self.captures}")

    @property
    def window_len(self) -> int:
        return self.template_len + 2 * self.window_margin

    @property
    def order(self) -> int:
        """m: the highest power of P in the detector (1 square law, 2 with c3/c4)."""
        return 2 if (self.c3 or self.c4) else 1


@dataclass
class _Cell:
    freq_hz: float
    num: lte.Numerology
    pci: int
    p_w: float
    tau_s: np.ndarray
    a: np.ndarray
    rng: np.random.Generator
    cfo_hz: float = 0.0  # the cell's carrier-frequency offset


# -------------------------------------------------------------------------------------------- synthesis


D_HZ = FS_OUT_HZ / SEG_LEN  # line spacing of the periodic segment (1.777… kHz)


@dataclass
class _Lines:
    """A band-limited periodic signal: contiguous lines j0, j0+1, … (multiples of D_HZ) around its own carrier,
    ``coef`` (frames or 1, B) complex64 in sqrt(W) (x(t) = Σ_j coef_j·exp(j2π j·D_HZ·t)), and its carrier offset
    ``df_hz`` from the frame in which it is read."""

    j0: int
    coef: np.ndarray
    df_hz: float = 0.0


_WORK = threading.local()


def _work(name: str, shape: tuple, dtype, zero: bool = False) -> np.ndarray:
    """A per-thread scratch buffer, reused across calls (fresh pages are slow to touch). The contents are
    undefined unless ``zero``; a buffer is only valid until the next request of the same name."""
    bufs = _WORK.__dict__.setdefault("bufs", {})
    size = int(np.prod(shape))
    key = (name, np.dtype(dtype).str)
    b = bufs.get(key)
    if b is None or b.size < size:
        b = bufs[key] = np.empty(max(size, 1), dtype=dtype)
    v = b[:size].reshape(shape)
    if zero:
        v.fill(0)
    return v


@functools.cache
def _band_layout(m_in: int, bandwidth_hz: float, kc: int) -> tuple[int, int, int]:
    """(first line index, number of negative lines, number of non-negative lines) of the mask |f| ≤ bandwidth/2
    on the DFT grid of the m_in-sample segment at kc·1.92 MS/s (lines D_HZ apart)."""
    f = sfft.fftfreq(m_in, 1.0 / (kc * FS_OUT_HZ))
    inb = np.flatnonzero(np.abs(f) <= bandwidth_hz / 2)
    n_neg = int(np.count_nonzero(f[inb] < 0))
    n_pos = inb.size - n_neg
    # contiguous: bins 0 … n_pos−1 and m_in − n_neg … m_in − 1
    assert np.array_equal(np.sort(inb), np.r_[np.arange(n_pos), np.arange(m_in - n_neg, m_in)])
    j0 = int(np.rint(f[m_in - n_neg] / D_HZ)) if n_neg else 0
    return j0, n_neg, n_pos


def _cfr_cells(cells: list[_Cell], idx: list[int], j0: int, nb: int) -> np.ndarray:
    """CFR (len(idx), nb) complex64 of each link at the lines j0 … j0+nb−1 (× D_HZ), over each link's own
    (non-padding) paths; links of similar path counts share one call (padding costs as much as paths)."""
    fb = (j0 + np.arange(nb)) * D_HZ
    H = np.zeros((len(idx), nb), dtype=np.complex64)
    keep = [np.flatnonzero(np.abs(cells[i].a) > 0) for i in idx]
    bucket: dict[int, list[int]] = {}
    for a, k in enumerate(keep):
        if k.size:
            bucket.setdefault(int(np.ceil(np.log(max(k.size, 8)) / np.log(1.25))), []).append(a)
    for rows in bucket.values():
        L = max(keep[a].size for a in rows)
        tau = np.zeros((len(rows), L))
        amp = np.zeros((len(rows), L), dtype=np.complex64)
        for r, a in enumerate(rows):
            k = keep[a]
            tau[r, : k.size] = cells[idx[a]].tau_s[k]
            amp[r, : k.size] = cells[idx[a]].a[k]
        H[rows] = cfr(tau, amp, fb)
    return H


def _spectra(cells: list[_Cell], frames: int, cfg: FoldedLteConfig, data: bool = True
             ) -> tuple[list[_Lines | None], list[_Lines]]:
    """Each cell's segment spectrum after its spectrum mask (|f| ≤ bandwidth/2) and CIR (exact fractional delays):
    the data signal (``frames`` frames, with the cell's oscillator phase; ``None`` when ``data`` is False) and its
    sync-only component (one frame, no oscillator phase). Cells of one bandwidth are synthesised together, a few
    at a time in reused buffers: the RE grid at unit energy, CP-OFDM at the native rate K_c·1.92 MS/s
    (K_c = N_FFT/128), one DFT of the segment; the power scale sqrt(P/N_sc) and the CFR multiply the in-band lines.
    Each cell's generator is drawn in the same order as per cell: oscillator phase, then data."""
    out_d: list[_Lines | None] = [None] * len(cells)
    out_s: list[_Lines | None] = [None] * len(cells)
    groups: dict[float, list[int]] = {}
    for i, c in enumerate(cells):
        groups.setdefault(c.num.bandwidth_hz, []).append(i)
    nd = frames if data else 0
    nf = nd + 1  # the last frame of each cell: its sync-only grid
    cps = [9, 9, 9, 9, 9, 9, 10, 9]  # slot 0 symbols 1..6, slot 1 symbols 0..1 (× K_c)
    for idx in groups.values():
        num = cells[idx[0]].num
        kc = num.n_fft // 128
        n_fft, n_sc, h = num.n_fft, num.n_sc, num.n_sc // 2
        m_in = SEG_LEN * kc
        centre, sync_cols = lte.sync_layout(n_sc)
        j0, n_neg, n_pos = _band_layout(m_in, num.bandwidth_hz, kc)
        nb = n_neg + n_pos
        H = _cfr_cells(cells, idx, j0, nb)
        scale = np.array([np.sqrt(cells[i].p_w / n_sc) / m_in for i in idx])
        osc = np.ones(len(idx), dtype=np.complex128)
        coef = np.empty((len(idx), nf, nb), dtype=np.complex64)
        chunk = max(1, 48 // nf)  # cells per pass: ~48 frames of buffers (a few MB)
        for c0 in range(0, len(idx), chunk):
            sub = idx[c0 : c0 + chunk]
            rows = len(sub) * nf
            g = _work("re", (len(sub), nf, 8, n_sc), np.complex64)
            for a, i in enumerate(sub):
                c = cells[i]
                if data:
                    osc[c0 + a] = np.exp(2j * np.pi * c.rng.random())  # the cell's oscillator phase
                    gd = lte.data_symbols(c.rng, (frames, 8, n_sc), cfg.data_modulation)
                    if cfg.data_load < 1.0:
                        gd *= c.rng.random(gd.shape) < cfg.data_load
                    g[a, :nd] = gd
                g[a, nd:] = 0.0
                n1, n2 = lte.pci_split(c.pci)
                for sym, seq in ((lte.SSS_SYMBOL - 1, lte.sss(n1, n2, 0)), (lte.PSS_SYMBOL - 1, lte.pss(n2))):
                    row = g[a, :, sym]  # (frames, n_sc) view
                    row[:, centre] = 0.0
                    row[:, sync_cols] = seq
            # CP-OFDM, unnormalised IDFT (x[n] = Σ_k X_k e^{j2πkn/N}); subcarriers −h…−1, 1…h; DC and guards 0
            grid = _work(f"grid{n_fft}", (rows * 8, n_fft), np.complex64)
            grid[:, h + 1 : n_fft - h] = 0.0
            grid[:, 0] = 0.0
            gv = g.reshape(rows * 8, n_sc)
            grid[:, n_fft - h :] = gv[:, :h]
            grid[:, 1 : h + 1] = gv[:, h:]
            t = sfft.ifft(grid, axis=-1, overwrite_x=True, norm="forward").reshape(rows, 8, n_fft)
            seg = _work("seg", (rows, m_in), np.complex64)
            pos = 0
            for s, cp in enumerate(cps):
                cp *= kc
                n = min(cp, m_in - pos)
                seg[:, pos : pos + n] = t[:, s, n_fft - cp : n_fft - cp + n]
                pos += n
                n = min(n_fft, m_in - pos)
                if n <= 0:
                    break
                seg[:, pos : pos + n] = t[:, s, :n]
                pos += n
            X = sfft.fft(seg, axis=-1, overwrite_x=True).reshape(len(sub), nf, m_in)
            cs = coef[c0 : c0 + len(sub)]
            cs[:, :, :n_neg] = X[:, :, m_in - n_neg :]
            cs[:, :, n_neg:] = X[:, :, :n_pos]
        for a, i in enumerate(idx):
            hs = H[a] * scale[a]
            if data:
                coef[a, :nd] *= (hs * osc[a]).astype(np.complex64)
                out_d[i] = _Lines(j0, coef[a, :nd])
            coef[a, nd:] *= hs.astype(np.complex64)
            out_s[i] = _Lines(j0, coef[a, nd:])
    return out_d, out_s  # type: ignore[return-value]


def _noise_lines(rng: np.random.Generator, span_hz: float, frames: int, cfg: FoldedLteConfig) -> _Lines:
    """Thermal noise k·T0·F white over ±span/2 around the cluster centre (an RF pre-filter of that width):
    complex lines of variance k·T0·F·Δ on the segment's frequency grid Δ."""
    nb = int(np.floor(span_hz / 2 / D_HZ))
    s = np.float32(np.sqrt(thermal_noise_w(D_HZ, cfg.noise_figure_db) / 2))
    coef = (rng.standard_normal((frames, 2 * nb + 1), dtype=np.float32)
            + 1j * rng.standard_normal((frames, 2 * nb + 1), dtype=np.float32)) * s
    return _Lines(-nb, coef, 0.0)


def _uniform(phase: np.ndarray) -> bool:
    return phase.size <= 1 or bool(np.all(phase == phase[0]))


def _cycles_rows(j: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """exp(j2π j·φ_i/SEG_LEN) (rows, B) complex64: phases reduced to cycles in float64 first."""
    cyc = np.multiply.outer(phase, j.astype(np.float64)) / SEG_LEN
    cyc -= np.rint(cyc)
    ang = (2 * np.pi * cyc).astype(np.float32)
    out = np.empty(ang.shape, dtype=np.complex64)
    np.cos(ang, out=out.real)
    np.sin(ang, out=out.imag)
    return out


@functools.lru_cache(maxsize=64)
def _ramp(r: float, m_out: int) -> np.ndarray:
    """exp(j2π r n/m_out), n = 0 … m_out − 1 (complex64, read-only)."""
    out = np.exp(2j * np.pi * r * np.arange(m_out) / m_out).astype(np.complex64)
    out.flags.writeable = False
    return out


def _read(parts: list[_Lines], k_out: int, phase: np.ndarray, frames: int) -> np.ndarray:
    """Σ of the parts at t = (n/k_out + φ_i)/1.92 MHz, n = 0 … SEG_LEN·k_out − 1, each moved by its carrier offset
    (×exp(j2π df t), t absolute: segment start SEG_START plus i frames), for each frame i. Exact for periodic
    band-limited parts: every line lands on the DFT grid of the reading (lines SEG_LEN·k_out bins apart fold onto
    the same bin: the aliasing of reading x at t_n); an offset df = (q + r)·Δ with r ∉ ℤ moves the lines by q bins
    and multiplies the time signal by exp(j2π r n/(SEG_LEN·k_out)) — parts sharing r share one inverse DFT.
    Returns (frames, SEG_LEN·k_out) complex64 (sqrt(W)) in a scratch buffer, valid until the next call."""
    m_out = SEG_LEN * k_out
    phase = np.asarray(phase, dtype=np.float64)
    uni = _uniform(phase)
    zero = uni and phase[0] == 0.0
    fidx = np.arange(frames, dtype=np.float64)
    rows: dict[tuple[int, int], np.ndarray] = {}
    classes: dict[float, np.ndarray] = {}
    for part in parts:
        qr = part.df_hz / D_HZ
        q = int(np.floor(qr))
        r = qr - q
        if r < 1e-9:
            r = 0.0
        elif r > 1 - 1e-9:
            q, r = q + 1, 0.0
        key = round(r, 9)
        Z = classes.get(key)
        if Z is None:
            Z = classes[key] = _work(f"class{len(classes)}", (frames, m_out), np.complex64, zero=True)
        B = part.coef.shape[-1]
        # carrier term of each frame: df·((SEG_START + φ_i)/fs + i·T_frame), in cycles
        if part.df_hz:
            e = np.mod(part.df_hz * (SEG_START + phase) / FS_OUT_HZ, 1.0) + np.mod(part.df_hz * lte.FRAME_S * fidx, 1.0)
            ecyc = np.exp(2j * np.pi * e).astype(np.complex64)[:, None]
        else:
            ecyc = None
        if zero:
            vals = part.coef * ecyc if ecyc is not None else np.broadcast_to(part.coef, (frames, B))
        else:
            rk = (part.j0, B)
            if uni:
                row = rows.get(rk)
                if row is None:
                    row = rows[rk] = _cycles_rows(part.j0 + np.arange(B), phase[:1])
            else:
                row = _cycles_rows(part.j0 + np.arange(B), phase)
            vals = part.coef * row
            if ecyc is not None:
                if vals.shape[0] == frames:
                    vals *= ecyc
                else:
                    vals = vals * ecyc
        if vals.shape[0] != frames:
            vals = np.broadcast_to(vals, (frames, B))
        s = (part.j0 + q) % m_out
        pos = 0
        while pos < B:  # contiguous lines, folded modulo m_out
            n = min(B - pos, m_out - s)
            Z[:, s : s + n] += vals[:, pos : pos + n]
            pos += n
            s = 0
    out = None
    for r, Z in classes.items():
        x = sfft.ifft(Z, axis=-1, overwrite_x=True, norm="forward")
        if r:
            x *= _ramp(r, m_out)
        if out is None:
            out = x
        else:
            out += x
    if out is None:
        out = np.zeros((frames, m_out), dtype=np.complex64)
    return out


def _detector(p_list: list[np.ndarray], cfg: FoldedLteConfig) -> np.ndarray:
    """Baseband detector output (W) of the clusters' envelope powers P_i (same shape each)."""
    p = p_list[0].copy() if len(p_list) == 1 else np.sum(p_list, axis=0)
    y = p.copy()
    pref = float(dbm_to_w(cfg.detector_ref_dbm))
    if cfg.c3:
        y += cfg.c3 * p**1.5 / np.sqrt(pref)
    if cfg.c4:
        sq = p * p
        for i in range(len(p_list)):
            for j in range(i + 1, len(p_list)):
                sq += 2.0 * p_list[i] * p_list[j]
        y += cfg.c4 * sq / pref
    return y


def _lowpass_spectrum(y: np.ndarray, K: int, cfg: FoldedLteConfig) -> np.ndarray:
    """DFT of the real detector output (..., n) with the ideal low-pass (one-sided ``detector_bandwidth_hz``)."""
    n = y.shape[-1]
    Y = sfft.fft(y, axis=-1)
    f = np.abs(sfft.fftfreq(n, 1.0 / (K * FS_OUT_HZ)))
    Y[..., f > cfg.detector_bandwidth_hz] = 0.0
    return Y


def _sample_spectrum(Y: np.ndarray, K: int, phase: np.ndarray) -> np.ndarray:
    """Sample the low-passed signal every K-th point of fs_sim, at per-frame fractional offsets ``phase``
    (1.92-MS/s samples). Done in the DFT domain: shift (×e^{j2πfφ/1.92M}), fold the n bins onto n/K
    (y[Kj] = (1/K)·IDFT_{n/K}(Σ_m Y[r + m·n/K])) — no anti-alias filter, this is the folding."""
    n = Y.shape[-1]
    m = n // K
    f = sfft.fftfreq(n, 1.0 / (K * FS_OUT_HZ)) / FS_OUT_HZ  # cycles per output sample
    phase = np.asarray(phase, dtype=np.float64)
    step = np.diff(phase)
    Z = np.empty(Y.shape[:-1] + (m,), dtype=Y.dtype)
    if phase.size > 2 and np.allclose(step, step[0], rtol=0, atol=1e-12):
        # arithmetic progression (clock drift): ph_f = base·rot^f, one exponential row each
        ph = np.exp(2j * np.pi * f * phase[0]).astype(Y.dtype)
        rot = np.exp(2j * np.pi * f * step[0]).astype(Y.dtype)
        for i in range(phase.size):
            np.sum((Y[i] * ph).reshape(K, m), axis=0, out=Z[i])
            ph *= rot
    else:
        for i in range(phase.size):
            np.sum((Y[i] * np.exp(2j * np.pi * f * phase[i])).reshape(K, m), axis=0, out=Z[i])
    return sfft.ifft(Z, axis=-1).real.astype(np.float64) / K


def _lowpass_sample(y: np.ndarray, K: int, cfg: FoldedLteConfig, phase: np.ndarray) -> np.ndarray:
    """Ideal low-pass (one-sided ``detector_bandwidth_hz``), then sample every K-th point of fs_sim at the
    fractional offsets ``phase`` (per frame, in 1.92-MS/s samples): no anti-alias filter, so it folds.
    Real-input DFT: only the kept bins 0 … k_max are shifted (×e^{j2π kφ/SEG_LEN}) and folded onto SEG_LEN bins;
    the negative ones are their conjugates."""
    n = y.shape[-1]
    m = n // K
    phase = np.asarray(phase, dtype=np.float64)
    f = np.abs(sfft.fftfreq(n, 1.0 / (K * FS_OUT_HZ)))
    kmax = int(np.count_nonzero(f[: n // 2 + 1] <= cfg.detector_bandwidth_hz)) - 1
    if 2 * kmax >= n - 1 or y.shape[0] != phase.size:  # the kept band reaches Nyquist: the plain complex path
        return _sample_spectrum(_lowpass_spectrum(y, K, cfg), K, phase)
    Y = sfft.rfft(y, axis=-1)[:, : kmax + 1]
    kk = np.arange(kmax + 1)
    if _uniform(phase):
        Y *= _cycles_rows(kk, phase[:1])
    else:
        Y *= _cycles_rows(kk, phase)
    width = -(-(kmax + 1) // m) * m
    W = np.zeros((Y.shape[0], width), dtype=Y.dtype)
    W[:, : kmax + 1] = Y
    A = W.reshape(Y.shape[0], width // m, m).sum(axis=1)  # Σ_{k ≥ 0, k ≡ r}
    A1 = A.copy()
    A1[:, 0] -= Y[:, 0]  # k ≥ 1
    Z = A + np.conj(np.roll(A1[:, ::-1], 1, axis=1))  # + Σ_{k ≥ 1, k ≡ −r} conj(W_k)
    return sfft.irfft(Z[:, : m // 2 + 1], n=m, axis=-1).astype(np.float64) / K


def _cluster_k(span_hz: float, cfg: FoldedLteConfig) -> int:
    """Simulation rate factor a cluster of this span needs: 1 when the detector band holds every product
    (B_det ≥ m·span: read the envelope at 1.92 MS/s), else K·1.92 MS/s ≥ m·span + B_det."""
    m = cfg.order
    if cfg.detector_bandwidth_hz >= m * span_hz:
        return 1
    need = m * span_hz + cfg.detector_bandwidth_hz
    return max(2, int(np.ceil(need / FS_OUT_HZ - 1e-9)))


def _plan(freqs: np.ndarray, bws: np.ndarray, cfg: FoldedLteConfig) -> tuple[list[list[int]], list[float], int]:
    """Clusters of cells whose mixing products can reach the detector band; their centres; the common K."""
    order = np.argsort(freqs, kind="stable")
    clusters: list[list[int]] = []
    hi = -np.inf  # upper band edge of the current cluster
    for i in order:
        if clusters and (freqs[i] - bws[i] / 2) - hi <= cfg.detector_bandwidth_hz:
            clusters[-1].append(int(i))
            hi = max(hi, freqs[i] + bws[i] / 2)
        else:
            clusters.append([int(i)])
            hi = freqs[i] + bws[i] / 2
    centres, spans = [], []
    for c in clusters:
        lo = min(freqs[i] - bws[i] / 2 for i in c)
        up = max(freqs[i] + bws[i] / 2 for i in c)
        centres.append((lo + up) / 2)
        spans.append(up - lo)
    return clusters, centres, _cluster_k(max(spans), cfg)


def _to_output(p_list: list[np.ndarray], k_out: int, cfg: FoldedLteConfig, phase: np.ndarray) -> np.ndarray:
    """Detector, then (general path, k_out > 1) the low-pass and the 1.92-MS/s sampling at the phases."""
    y = _detector(p_list, cfg)
    if k_out == 1:
        return y.astype(np.float64)
    return _lowpass_sample(y, k_out, cfg, phase)


def _sync_output(lines: _Lines, k: int, cfg: FoldedLteConfig, phase: np.ndarray, frames: int) -> np.ndarray:
    """A sync-only component (one frame of lines, no carrier offset) through the detector at 1.92 MS/s (frames,
    SEG_LEN): read directly at the instants (k = 1) or at k·1.92 MS/s, low-passed and sampled."""
    phase = np.asarray(phase, dtype=np.float64)
    if _uniform(phase):  # every frame is the same: compute one, repeat it
        rd = phase[:1] if k == 1 else np.zeros(1)
        xs = _read([lines], k, rd, 1)
        s = _to_output([xs.real**2 + xs.imag**2], k, cfg, phase[:1])
        return np.repeat(s, frames, axis=0)
    rd = phase if k == 1 else np.zeros(frames)
    xs = _read([lines], k, rd, frames) if k == 1 else np.repeat(_read([lines], k, np.zeros(1), 1), frames, axis=0)
    return _to_output([xs.real**2 + xs.imag**2], k, cfg, phase)


def _template(num: lte.Numerology, pci: int, K: int, cfg: FoldedLteConfig, p_w: float) -> np.ndarray:
    """The cell's sync template: SSS + PSS symbols (with CPs) alone, through the spectrum mask and the detector,
    at 1.92 MS/s (sampling phase 0); ``K`` is the simulation rate factor of :func:`_plan` (1: direct)."""
    cell = _Cell(0.0, num, pci, p_w, np.zeros(1), np.ones(1, complex), np.random.default_rng(0))
    _, sync = _spectra([cell], 1, cfg, data=False)
    if cfg.order == 1 and _cluster_k(num.bandwidth_hz, cfg) == 1:
        K = 1  # square law, band inside the detector's: reading at 1.92 MS/s is exact (same samples as any K)
    s = _sync_output(sync[0], K, cfg, np.zeros(1), 1)[0]
    off = SSS_START - SEG_START
    return s[off : off + cfg.template_len]


def _quantise(y: np.ndarray, cfg: FoldedLteConfig) -> np.ndarray:
    if cfg.adc_bits <= 0:
        return y
    fs = np.max(np.abs(y)) * 10 ** (cfg.adc_headroom_db / 20)
    if fs <= 0:
        return y
    q = 2.0 ** (cfg.adc_bits - 1)
    return np.clip(np.round(y / fs * q), -q, q - 1) * (fs / q)


def simulate_receiver(cells: list[_Cell], cfg: FoldedLteConfig, frames: int, phase: np.ndarray,
                      noise_rng: np.random.Generator | None) -> dict:
    """Detector output at 1.92 MS/s (frames, SEG_LEN) of the cells' sum, and each cell's sync-only component.

    ``phase`` (frames,) are the receiver's sampling offsets in 1.92-MS/s samples. When the detector band holds
    every mixing product of a cluster (B_det ≥ m·span, the default), the low-pass is the identity on the
    detector output, so y(t_n) = D(P(t_n)) exactly and each cell is read directly at the 1.92-MS/s instants;
    otherwise clusters are simulated at K·1.92 MS/s, detected, low-passed and then sampled (the folding).
    With the square law (c3 = c4 = 0) the clusters add after the detector, so this is decided per cluster (and
    per sync component); with c3/c4 every cluster uses the common K of :func:`_plan`.
    """
    freqs = np.array([c.freq_hz for c in cells])
    bws = np.array([c.num.bandwidth_hz for c in cells])  # after the spectrum-mask filter
    clusters, centres, K = _plan(freqs, bws, cfg)
    phase = np.asarray(phase, dtype=np.float64)
    linear = cfg.order == 1
    data, sync = _spectra(cells, frames, cfg)
    y = np.zeros((frames, SEG_LEN))
    p_list = []
    for c_idx, members in enumerate(clusters):
        lo = min(freqs[i] - bws[i] / 2 for i in members)
        hi = max(freqs[i] + bws[i] / 2 for i in members)
        k = 1 if K == 1 or (linear and _cluster_k(hi - lo, cfg) == 1) else K
        parts = []
        for i in members:
            d = data[i]
            assert d is not None
            parts.append(_Lines(d.j0, d.coef, cells[i].freq_hz + cells[i].cfo_hz - centres[c_idx]))
        if noise_rng is not None:
            parts.append(_noise_lines(noise_rng, hi - lo, frames, cfg))
        x = _read(parts, k, phase if k == 1 else np.zeros(frames), frames)
        p = x.real**2 + x.imag**2  # float32 envelope power, W
        del x
        if linear:
            y += p if k == 1 else _lowpass_sample(p, k, cfg, phase)
        else:
            p_list.append(p)
    if not linear:
        y = _to_output(p_list, K, cfg, phase)
    sync_parts: dict[int, np.ndarray] = {}
    for i, cell in enumerate(cells):
        k = 1 if K == 1 or (linear and _cluster_k(cell.num.bandwidth_hz, cfg) == 1) else K
        sync_parts[i] = _sync_output(sync[i], k, cfg, phase, frames)
    if noise_rng is not None and cfg.detector_noise_dbm is not None:  # video-amplifier noise, W rms
        y = y + noise_rng.standard_normal(y.shape) * float(dbm_to_w(cfg.detector_noise_dbm))
    return {"y": _quantise(y, cfg), "sync": sync_parts, "K": K}


def matched_filter(frame_sum: np.ndarray, template: np.ndarray, margin: int) -> tuple[int, np.ndarray]:
    """Coarse index (segment coordinates) maximising the correlation of the mean-removed frame sum with the
    mean-removed template, over every start n with the whole window n-margin … n+len+margin inside the segment
    after the 137-sample leading margin. Returns (n*, correlation over the searched starts)."""
    t = template - template.mean()
    s = frame_sum - frame_sum.mean()
    r = np.correlate(s, t, mode="valid")  # r[n] = Σ_m s[n+m] t[m]
    lo = (275 - SEG_START) + margin
    hi = SEG_LEN - len(template) - margin
    r = r[lo : hi + 1]
    return lo + int(np.argmax(r)), r


def detection_db(r: np.ndarray) -> float:
    """PCI detection statistic (dB) of a matched-filter output ``r`` over a segment's positions: the squared peak
    over the median squared value (a CFAR ratio; for white Gaussian noise over ~700 positions it is ~14.6 dB)."""
    r2 = np.asarray(r, dtype=np.float64) ** 2
    med = float(np.median(r2)) if r2.size else 0.0
    return float(10 * np.log10(r2.max() / med)) if med > 0 else float("nan")


def _snr_db(y: np.ndarray, sync: np.ndarray, starts: np.ndarray) -> float:
    """Folded sync SNR over the template span of each frame: AC power of the cell's own detected sync
    component over the AC power of everything else in the same samples."""
    starts = np.asarray(starts, dtype=np.int64)
    ok = np.flatnonzero((starts >= 0) & (starts + TEMPLATE_LEN <= y.shape[1]))
    if ok.size == 0:
        return float("nan")
    cols = starts[ok, None] + np.arange(TEMPLATE_LEN)
    t = sync[ok[:, None], cols]
    r = y[ok[:, None], cols] - t
    t -= t.mean(axis=1, keepdims=True)
    r -= r.mean(axis=1, keepdims=True)
    sig = float(np.sum(t * t))
    noi = float(np.sum(r * r))
    return 10 * np.log10(sig / noi) if noi > 0 and sig > 0 else float("nan")


def sync_snr_db(bandwidth_hz: float, seed: int = 0, rx_power_dbm: float | None = None) -> float:
    """Folded sync-code SNR (dB) of one noiseless, single-path (τ = 0, a = 1), fully loaded LTE cell.

    Definition: with the default detector (pure square law, 45 MHz video bandwidth, sampled at 1.92 MS/s,
    no thermal noise, no ADC), over the 274 samples of the SSS + PSS symbols of 20 frames of random QPSK data,
    SNR = Σ|t − t̄|² / Σ|e − ē|², where t is the detected sync code alone (|x_sync|² through the same low-pass and
    sampling) and e = y − t everything else the square law puts in those samples (data×data and sync×data
    intermodulation, folded). Means are removed because the DC carries no timing.

    With ``rx_power_dbm`` the cell is received at that power and the default receiver's impairments are on
    (thermal noise, detector noise, 12-bit ADC), so e also holds the noise.
    """
    num = lte.numerology(bandwidth_hz)
    noisy = rx_power_dbm is not None
    cfg = FoldedLteConfig(default_bandwidth_hz=num.bandwidth_hz, add_noise=noisy, adc_bits=12 if noisy else 0)
    rng = np.random.default_rng([int(seed), 7])
    p_w = float(dbm_to_w(rx_power_dbm)) if noisy else 1.0
    cell = _Cell(2.0e9, num, int(rng.integers(0, 504)), p_w, np.zeros(1), np.ones(1, complex), rng)
    frames = 20
    res = simulate_receiver([cell], cfg, frames, np.zeros(frames), np.random.default_rng([int(seed), 8]) if noisy else None)
    starts = np.full(frames, SSS_START - SEG_START)
    return _snr_db(res["y"], res["sync"][0], starts)


def cell_pci(pci, tx_id: str) -> int:
    """The cell's PCI; a cell without one (NaN, < 0, > 503) transmits with one fixed stand-in PCI derived from its
    id (the same at every receiver), so its interference is the same signal everywhere."""
    try:
        p = int(pci)
    except (TypeError, ValueError):
        p = -1
    return p if 0 <= p <= 503 else zlib.crc32(str(tx_id).encode()) % 504


def cell_cfo_hz(tx_id: str, freq_hz: float, cfo_ppm: float) -> float:
    """The cell's fixed carrier-frequency offset (Hz): uniform in ±cfo_ppm·f, drawn from the cell's id."""
    if cfo_ppm <= 0:
        return 0.0
    u = np.random.default_rng([zlib.crc32(str(tx_id).encode()), 11]).random()
    return float((2 * u - 1) * cfo_ppm * 1e-6 * freq_hz)


# ------------------------------------------------------------------------------------------------- view


class FoldedLteView:
    name = "folded_lte"
    config_cls = FoldedLteConfig
    granularity = "per_receiver_batch"

    def __call__(self, inputs: ViewInputs, config: FoldedLteConfig) -> pa.Table:
        cfg = config if config is not None else FoldedLteConfig()
        cir = inputs.cir
        N, W = cfg.num_frames, cfg.window_len
        paths = paths_from_cir(cir)
        tx_ids = [str(t) for t in cir.column("tx_id").to_pylist()]
        attrs = cell_attributes(inputs.towers, tx_ids, ("pci", "frequency_hz", "bandwidth_hz", "tx_power_dbm"),
                                view=self.name)
        radio = None
        if "radio" in inputs.towers.column_names:
            radio = cell_attributes(inputs.towers, tx_ids, ("radio",), view=self.name)["radio"]
        link_ids = np.asarray(cir.column("link_id").to_numpy(), dtype=np.uint64)
        rx_ids = np.asarray(cir.column("rx_id").to_numpy(), dtype=np.int64)
        los = np.asarray(cir.column("los").to_numpy(zero_copy_only=False), dtype=bool)
        los_delay = np.asarray(cir.column("los_distance_m").to_numpy(), dtype=np.float64) / SPEED_OF_LIGHT
        first = first_path_delay_s(paths["tau_s"], paths["a"])
        nums = []
        for i, bw in enumerate(attrs["bandwidth_hz"]):
            bw = float(bw) if bw is not None and np.isfinite(bw) and bw > 0 else cfg.default_bandwidth_hz
            try:
                nums.append(lte.numerology(bw))
            except ValueError as e:
                raise TwinInputError(str(e), file="towers.parquet", row=tx_ids[i], field="bandwidth_hz",
                                     fix="set the cell's bandwidth_hz to 1.4e6, 3e6, 5e6, 10e6, 15e6 or 20e6") from None
        too_late = set(np.flatnonzero(np.nanmax(np.where(np.abs(paths["a"]) > 0, paths["tau_s"], 0), axis=1) > MAX_DELAY_S).tolist())
        rows: dict[str, list] = {k: [] for k in (
            "link_id", "rx_id", "tx_id", "pci", "frequency_hz", "bandwidth_hz", "windows", "template",
            "coarse_index", "window_start", "true_start_samples", "true_offset_samples", "true_offset_per_frame",
            "coarse_error_samples", "truth_in_window", "first_path_delay_s", "los_delay_s", "los", "sync_snr_db",
            "rx_power_dbm", "num_cochannel", "sampling_phase_samples", "capture", "detection_db")}
        templates: dict[tuple, np.ndarray] = {}
        T = cfg.template_len
        for rx in np.unique(rx_ids):
            sel = [int(i) for i in np.flatnonzero(rx_ids == rx) if i not in too_late and np.isfinite(first[i])]
            if radio is not None:
                sel = [i for i in sel if str(radio[i]).upper() == "LTE"]
            if not sel:
                continue
            for cap in range(cfg.captures):
                self._capture(cfg, cap, rx, sel, rows, templates, inputs.seed, attrs, nums, tx_ids, link_ids, paths,
                              first, los_delay, los)
        n_rows = len(rows["link_id"])
        f_win = tensor_field("windows", (N, W), ("frame", "sample"), units="W (detector output, ADC-quantised)",
                             extra={"sample_rate_hz": FS_OUT_HZ, "margin": cfg.window_margin})
        f_tpl = tensor_field("template", (T,), ("sample",), units="relative (unit mean)",
                             extra={"sample_rate_hz": FS_OUT_HZ, "content": "SSS+PSS with CPs, subframe 0"})
        f_off = tensor_field("true_offset_per_frame", (N,), ("frame",), pa.float64(), units="samples at 1.92 MS/s")
        win = np.asarray(rows["windows"], dtype=np.float32).reshape(n_rows, N, W)
        tpl = np.asarray(rows["template"], dtype=np.float32).reshape(n_rows, T)
        off = np.asarray(rows["true_offset_per_frame"], dtype=np.float64).reshape(n_rows, N)

        def col(name, typ, units=None):
            md = {"units": units} if units else None
            return pa.field(name, typ, metadata=md), pa.array(rows[name], typ)

        cols = [
            col("link_id", pa.uint64()), col("rx_id", pa.int64()), col("tx_id", pa.string()), col("pci", pa.int32()),
            col("frequency_hz", pa.float64(), "Hz"), col("bandwidth_hz", pa.float64(), "Hz"),
            (f_win, tensor_array(win, f_win)),
            (f_tpl, tensor_array(tpl, f_tpl)),
            col("coarse_index", pa.int32(), "frame sample at 1.92 MS/s: the window's template start"),
            col("window_start", pa.int32(), "frame sample at 1.92 MS/s: the window's first sample"),
            col("true_start_samples", pa.float64(), "frame samples at 1.92 MS/s: the first path's SSS arrival, frame 0"),
            col("true_offset_samples", pa.float64(), "samples at 1.92 MS/s: true_start - window_start (the label)"),
            (f_off, tensor_array(off, f_off)),
            col("coarse_error_samples", pa.int32(), "samples: coarse_index - round(true_start_samples)"),
            col("truth_in_window", pa.bool_()),
            col("first_path_delay_s", pa.float64(), "s"), col("los_delay_s", pa.float64(), "s"), col("los", pa.bool_()),
            col("sync_snr_db", pa.float32(), "dB"), col("rx_power_dbm", pa.float64(), "dBm"),
            col("num_cochannel", pa.int32()), col("sampling_phase_samples", pa.float64(), "samples at 1.92 MS/s"),
            col("capture", pa.int32()),
            col("detection_db", pa.float32(), "dB: peak / median of the squared segment correlation"),
        ]
        return view_table(cols, cfg, self.name)


    def _capture(self, cfg: FoldedLteConfig, cap: int, rx, sel: list[int], rows: dict, templates: dict, seed,
                 attrs: dict, nums: list, tx_ids: list[str], link_ids: np.ndarray, paths: dict, first: np.ndarray,
                 los_delay: np.ndarray, los: np.ndarray) -> None:
        """One capture of receiver ``rx`` (cells ``sel``): simulate it and append a row per detected cell."""
        N, W, T = cfg.num_frames, cfg.window_len, cfg.template_len
        s0, r0 = int(seed) & 0xFFFFFFFFFFFFFFFF, int(rx) & 0xFFFFFFFFFFFFFFFF
        cells = []
        for i in sel:
            rng = link_rng(seed, int(link_ids[i]), 1 if cap == 0 else 1000 + cap)
            f_hz = float(attrs["frequency_hz"][i])
            cells.append(_Cell(f_hz, nums[i], cell_pci(attrs["pci"][i], tx_ids[i]),
                               float(dbm_to_w(attrs["tx_power_dbm"][i])), paths["tau_s"][i], paths["a"][i], rng,
                               cell_cfo_hz(tx_ids[i], f_hz, cfg.cfo_ppm)))
        rrng = np.random.default_rng([s0, r0, 2] if cap == 0 else [s0, r0, 2, cap])
        u = float(rrng.random())  # the receiver's sampling phase, 1.92-MS/s samples
        phase = u + np.arange(N) * lte.SAMPLES_PER_FRAME_1M92 * cfg.clock_drift_ppm * 1e-6
        jrng = np.random.default_rng([s0, r0, 3] if cap == 0 else [s0, r0, 3, cap])
        res = simulate_receiver(cells, cfg, N, phase, rrng if cfg.add_noise else None)
        y, K = res["y"], res["K"]
        fsum = y.sum(axis=0)
        for j, i in enumerate(sel):
            pci = int(attrs["pci"][i])
            if not 0 <= pci <= 503:
                continue  # transmits (with its fixed stand-in PCI) but has no label: no row
            c = cells[j]
            p_rx = c.p_w * float(np.sum(np.abs(c.a) ** 2))  # received power, W (sets the c3/c4 terms)
            p_rx_dbm = 10 * np.log10(max(p_rx, 1e-300)) + 30
            if cfg.sensitivity_dbm is not None and p_rx_dbm < cfg.sensitivity_dbm:
                continue  # below the receiver's sensitivity: adds to the signal, not detected
            key = (pci, c.num.bandwidth_hz, K, round(10 * np.log10(max(p_rx, 1e-300))) if cfg.order > 1 else 0)
            if key not in templates:
                templates[key] = _template(c.num, pci, K, cfg, p_rx if cfg.order > 1 else 1e-3)
            tmpl = templates[key]
            n_mf, r_mf = matched_filter(fsum, tmpl, cfg.window_margin)
            det_db = detection_db(r_mf)
            if cfg.detection_min_db is not None and not det_db >= cfg.detection_min_db:
                continue  # the PCI is not detected in this capture: no row
            true_start = SSS_START + first[i] * FS_OUT_HZ - SEG_START  # segment coords, before phase
            n_true = int(np.rint(true_start - phase[0]))  # the true template start, whole samples
            if cfg.window_placement == "coarse":
                n_star = n_mf
            else:
                J = cfg.jitter_max_samples
                n_star = n_true + int(jrng.integers(-J, J + 1))
            lo = (275 - SEG_START) + cfg.window_margin
            n_star = int(np.clip(n_star, lo, SEG_LEN - T - cfg.window_margin))
            w0 = n_star - cfg.window_margin
            offs = true_start - w0 - phase
            starts = np.rint(true_start - phase).astype(int)
            rows["windows"].append(y[:, w0 : w0 + W])
            rows["template"].append(tmpl / max(float(np.mean(tmpl)), 1e-300))
            rows["coarse_index"].append(SEG_START + n_star)
            rows["window_start"].append(SEG_START + w0)
            rows["true_start_samples"].append(float(SEG_START + true_start - phase[0]))
            rows["true_offset_samples"].append(float(offs[0]))
            rows["true_offset_per_frame"].append(offs)
            rows["coarse_error_samples"].append(n_star - n_true)
            rows["truth_in_window"].append(bool(0.0 <= offs[0] <= W - T))
            rows["sync_snr_db"].append(_snr_db(y, res["sync"][j], starts))
            rows["rx_power_dbm"].append(float(p_rx_dbm))
            f = attrs["frequency_hz"]
            rows["num_cochannel"].append(int(sum(1 for k in sel if k != i and abs(f[k] - f[i]) < 1e3)))
            rows["sampling_phase_samples"].append(u)
            rows["capture"].append(cap)
            rows["detection_db"].append(det_db)
            for k, v in (("link_id", int(link_ids[i])), ("rx_id", int(rx)), ("tx_id", tx_ids[i]), ("pci", pci),
                         ("frequency_hz", float(f[i])), ("bandwidth_hz", c.num.bandwidth_hz),
                         ("first_path_delay_s", float(first[i])), ("los_delay_s", float(los_delay[i])),
                         ("los", bool(los[i]))):
                rows[k].append(v)


VIEW = register_view(FoldedLteView())

# the view's bench (twin bench views) lives in its own module; importing it registers it
from twin.datasets import folded_lte_bench as _bench  # noqa: E402,F401
