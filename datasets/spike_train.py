"""The spike-train view (ISLA, seeds/001): a MEMS spike-train filter + sub-sampling by P on a wideband OFDM channel.

Per link (one capture of one anchor cell): the wideband channel H[n] = Σ_l a_l exp(-j2π nΔf τ_l),
n ∈ [-N/2, N/2) (ISLA §8 numerology, 100 MHz at 3.5 GHz: N = 4096, Δf = 24.414 kHz) from the CIR as traced
(the CIR's delays and gains at the view's carrier: frequency-flat materials assumption); a known unit-modulus
preamble c[n] (ISLA §5, "the preamble which contains known bits"); the spike-train filter G[n] of ISLA Lemma 5.2
(P passbands of N/P² subcarriers, the first at the lowest subcarrier, spaced ΔF = (N/P)(1 + 1/P)Δf), ideal or
MEMS-like (:func:`filter_response`); sub-sampling by P, which folds bin n onto n mod N/P (ISLA Lemma 5.1,
eq. 2): Y[k] = (1/P) Σ_m X[k + mN/P].

Impairments (all settings, each with a label column):
- noise, in two places. The antenna's thermal noise (k·T_ant·Δf per subcarrier) enters *before* the filter and
  is shaped by it. The receiver's own noise after the filter (LNA + ADC input, k·T0·Δf·(F-1) per subcarrier) is
  white over the sampler's whole analog input band B, so sub-sampling by P folds P bands of it onto every bin:
  the recovered channel carries P times the noise power of a full-rate receiver at the same noise figure
  (the cost of sub-sampling). ``adc_bits`` adds uniform quantisation of the low-rate I/Q samples.
- a timing offset per capture, common to the anchors a receiver hears in one capture window (the IoT clock is
  not synchronised to the network, ISLA §1: "infeasible to measure the absolute time-of-flight"), plus an
  optional per-cell synchronisation error; and a carrier frequency offset per link, which over one OFDM symbol
  rotates the whole capture by a common phase (inter-carrier interference neglected: residual CFO << Δf).
  Absolute ToF is therefore not observable; ToF differences across a receiver's anchors are.

Outputs: the capture Y (N/P bins), the channel recovered at the passed subcarriers Ĥ_j = P·Y[k_j]/(c_j G_j √p)
with their frequencies (``passed_freq_hz``) and filter gains (``passed_gain_db``), the plain narrowband channel
of the central N/P subcarriers (a normal low-rate receiver with an anti-alias filter: no folding), optionally the
full band (upper bound), ToF labels (LOS, first path, relative to the receiver's reference anchor) and the
receiver's anchor set (cells ranked by path gain, ``anchor_rank``; positions in ``tx_x/y/z``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from twin.constants import BOLTZMANN, SPEED_OF_LIGHT
from twin.datasets.bench import BenchResult, register_bench
from twin.datasets.channel import cfr, first_path_delay_s, paths_from_cir
from twin.datasets.noise import dbm_to_w, link_rng, thermal_noise_w
from twin.datasets.registry import ViewInputs, register_view
from twin.datasets.tables import cell_attributes, complex_to_pairs, view_table
from twin.schema import tensor_array, tensor_field


def _check_np(n: int, p: int) -> None:
    if n <= 0 or p <= 0:
        raise ValueError(f"n and p must be positive, got n={n}, p={p}")
    if n % (p * p):
        raise ValueError(
            f"the spike-train design of ISLA Lemma 5.2 needs p² to divide n: p={p}, p²={p * p} does not divide n={n}"
        )


def passband_subcarriers(n: int, p: int) -> np.ndarray:
    """Subcarrier indices in [-n/2, n/2) passed by the Lemma 5.2 spike-train filter (sorted, int64).

    Passband i (0 ≤ i < p) starts at -n/2 + i·(n/p)(1 + 1/p) and covers n/p² consecutive subcarriers, so the
    n/p indices land on distinct bins modulo n/p (no aliasing collision after sub-sampling by p).
    Raises ValueError when p² does not divide n.
    """
    n, p = int(n), int(p)
    _check_np(n, p)
    width = n // (p * p)
    spacing = n // p + n // (p * p)  # ΔF/Δf = (n/p)(1 + 1/p)
    start = -(n // 2) + np.arange(p)[:, None] * spacing  # -n/2 (rounded up for odd n)
    return (start + np.arange(width)[None, :]).reshape(-1).astype(np.int64)


def alias_bin(idx: np.ndarray, n: int, p: int) -> np.ndarray:
    """The narrowband bin (in [-n/2p, n/2p)) onto which wideband subcarrier ``idx`` folds after sub-sampling by p."""
    q = n // p
    return (np.asarray(idx) + q // 2) % q - q // 2


def subsample_spectrum(x: np.ndarray, p: int) -> np.ndarray:
    """Spectrum seen after sub-sampling by p (Lemma 5.1): Y[k] = (1/p) Σ_m X[k + m·n/p].

    ``x`` (..., n) is a wideband spectrum in centred order (index 0 is subcarrier -n/2); returns (..., n/p) in
    centred order (index 0 is bin -n/(2p)). Equals the (n/p)-point DFT of every p-th sample of the n-point IDFT.
    """
    n = x.shape[-1]
    if n % p:
        raise ValueError(f"p={p} must divide the number of subcarriers n={n} (Lemma 5.1)")
    q = n // p
    xf = np.roll(x, -(n // 2), axis=-1)  # DFT order: index 0 is subcarrier 0
    y = xf.reshape(x.shape[:-1] + (p, q)).sum(axis=-2) / p
    return np.roll(y, q // 2, axis=-1)


@dataclass(frozen=True)
class SpikeTrainConfig:
    """Spike-train view settings (defaults: ISLA §5/§8, 100 MHz at 3.5 GHz, P = 16).

    Filter: ``passband_shape`` "ideal" (gain 1 on the passed subcarriers, ``stopband_rejection_db`` below it
    elsewhere) or "mems" (a Butterworth resonator of order ``mems_order`` per passband whose skirt is
    ``mems_rejection_db`` down at the first blocked subcarrier on either side, i.e. at every subcarrier that
    folds onto a neighbouring passband's bins, plus the ``stopband_rejection_db`` feed-through floor).
    Noise: antenna temperature ``antenna_noise_temperature_k`` (K) before the filter; ``noise_figure_db`` (dB)
    of the chain after it (its excess noise folds P-fold); ``adc_bits`` (None: no quantisation) with the ADC
    full scale ``adc_backoff_db`` above the rms input. Timing: a common offset per receiver capture, uniform in
    [0, ``timing_offset_max_s``) s, plus a per-link N(0, ``bs_sync_error_std_s``²) cell synchronisation error;
    CFO per link uniform in ±``cfo_max_hz`` Hz with a uniform start phase.
    """

    num_subcarriers: int = 4096  # N
    subcarrier_spacing_hz: float = 100e6 / 4096  # Δf = 24.414 kHz
    carrier_hz: float = 3.5e9  # the view's carrier (documentation; the CIR is used as traced)
    p: int = 16  # sub-sampling factor P (P² | N)
    passband_shape: Literal["ideal", "mems"] = "ideal"
    stopband_rejection_db: float = 40.0  # filter gain far outside the passbands: -40 dB
    mems_order: int = 4  # resonators per passband (Butterworth order)
    mems_rejection_db: float = 30.0  # rejection at the first blocked subcarrier beside each passband
    noise_figure_db: float = 7.0  # IoT receiver noise figure (chain after the filter)
    antenna_noise_temperature_k: float = 290.0
    adc_bits: int | None = None  # None: no quantisation
    adc_backoff_db: float = 12.0
    timing_offset_max_s: float = 1e-6  # receiver clock offset per capture, common to its anchors
    bs_sync_error_std_s: float = 0.0  # per-cell synchronisation error (0: a synchronised network)
    cfo_max_hz: float = 350.0  # residual CFO after coarse correction (0.1 ppm at 3.5 GHz)
    tx_power_dbm: float | None = None  # None: each cell's tx_power_dbm from the towers table
    add_noise: bool = True
    include_full_band: bool = True  # also emit the full N-subcarrier channel (upper bound)

    def __post_init__(self) -> None:
        _check_np(self.num_subcarriers, self.p)
        if self.subcarrier_spacing_hz <= 0:
            raise ValueError(f"subcarrier_spacing_hz must be > 0, got {self.subcarrier_spacing_hz}")
        if self.carrier_hz <= 0:
            raise ValueError(f"carrier_hz must be > 0, got {self.carrier_hz}")
        if self.passband_shape not in ("ideal", "mems"):
            raise ValueError(f"passband_shape must be 'ideal' or 'mems', got {self.passband_shape!r}")
        if self.stopband_rejection_db < 0:
            raise ValueError(f"stopband_rejection_db must be >= 0, got {self.stopband_rejection_db}")
        if self.mems_order < 1:
            raise ValueError(f"mems_order must be >= 1, got {self.mems_order}")
        if self.passband_shape == "mems" and not 0 < self.mems_rejection_db < self.stopband_rejection_db:
            raise ValueError(f"mems_rejection_db ({self.mems_rejection_db}) must lie in (0, stopband_rejection_db="
                             f"{self.stopband_rejection_db}): the feed-through floor bounds the skirt")
        for name in ("timing_offset_max_s", "bs_sync_error_std_s", "cfo_max_hz", "antenna_noise_temperature_k",
                     "adc_backoff_db"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.adc_bits is not None and not 1 <= self.adc_bits <= 32:
            raise ValueError(f"adc_bits must be in 1..32 or None, got {self.adc_bits}")

    @property
    def narrowband_bins(self) -> int:
        return self.num_subcarriers // self.p


def filter_response(cfg: SpikeTrainConfig) -> np.ndarray:
    """Complex gain G[n] of the spike-train filter on subcarriers n = -N/2 … N/2-1 (index 0 is -N/2).

    "mems": each passband is an order-m Butterworth band-pass (m = ``mems_order`` coupled resonators, low-pass
    prototype 1/Π(s - p_k) with s = j(n - centre)/x0) whose -``mems_rejection_db`` point lies on the first blocked
    subcarrier beside the passband (x = (W+1)/2 from its centre, W = N/P² subcarriers); x0 is chosen so that
    skirt + feed-through floor stays at or below that rejection there. Passed subcarriers near a passband's edges
    are attenuated (their gain is known and divided out at recovery; their SNR is lower).
    """
    n, p = cfg.num_subcarriers, cfg.p
    k = np.arange(-n // 2, n // 2)
    floor = 10.0 ** (-cfg.stopband_rejection_db / 20.0)
    g = np.full(n, floor, dtype=np.complex128)
    passed = passband_subcarriers(n, p)
    if cfg.passband_shape == "ideal":
        g[passed + n // 2] = 1.0
        return g
    m = cfg.mems_order
    width = n // (p * p)
    spacing = n // p + n // (p * p)
    target = 10.0 ** (-cfg.mems_rejection_db / 20.0) - floor  # skirt amplitude allowed at the first blocked bin
    x_b = (width + 1) / 2.0
    x0 = x_b / (target ** -2.0 - 1.0) ** (1.0 / (2 * m))
    poles = np.exp(1j * np.pi * (2 * np.arange(1, m + 1) + m - 1) / (2 * m))
    for i in range(p):
        centre = -n // 2 + i * spacing + (width - 1) / 2.0
        s = 1j * (k - centre) / x0
        g += 1.0 / np.prod(s[:, None] - poles[None, :], axis=1)
    return g


def quantise(y: np.ndarray, bits: int, full_scale: float) -> np.ndarray:
    """Uniform mid-rise quantiser of ``bits`` bits per I and Q over ±``full_scale`` (clipped)."""
    step = 2.0 * full_scale / 2**bits
    def q(v):
        return np.clip((np.floor(v / step) + 0.5) * step, -full_scale + step / 2, full_scale - step / 2)
    return q(y.real) + 1j * q(y.imag)


def spike_train_capture(x_in: np.ndarray, g: np.ndarray, p: int, post_noise: np.ndarray | None = None,
                        adc_bits: int | None = None, adc_backoff_db: float = 12.0) -> np.ndarray:
    """The sub-sampling receiver: filter, add the chain's noise, sample at B/P, (quantise), Q-point DFT.

    ``x_in`` (..., N) is the spectrum at the filter input (signal + antenna noise) in N-point-DFT units, centred
    order; ``post_noise`` (..., N) the receiver's own noise after the filter on every subcarrier of the sampled
    band (it is not filtered, so all P of its bands fold onto each bin). Returns Y (..., N/P), centred order.
    """
    y = subsample_spectrum(x_in * g + (0 if post_noise is None else post_noise), p)
    if adc_bits is None:
        return y
    q = y.shape[-1]
    yt = np.fft.ifft(np.fft.ifftshift(y, axes=-1), axis=-1)  # the low-rate time samples
    rms = np.sqrt(np.mean(np.abs(yt) ** 2, axis=-1, keepdims=True) / 2.0)  # per I/Q component
    fs = np.maximum(rms * 10 ** (adc_backoff_db / 20.0), 1e-300)
    yq = np.empty_like(yt)
    for i in np.ndindex(yt.shape[:-1]):
        yq[i] = quantise(yt[i], adc_bits, float(fs[i][0]))
    del q
    return np.fft.fftshift(np.fft.fft(yq, axis=-1), axes=-1)


class SpikeTrainView:
    name = "spike_train"
    config_cls = SpikeTrainConfig
    granularity = "per_receiver_batch"

    def __call__(self, inputs: ViewInputs, config: SpikeTrainConfig) -> pa.Table:
        cfg = config if config is not None else SpikeTrainConfig()
        cir = inputs.cir
        n, p = cfg.num_subcarriers, cfg.p
        q = n // p
        nl = cir.num_rows
        paths = paths_from_cir(cir)
        tau, a = paths["tau_s"], paths["a"]
        link_ids = np.asarray(cir.column("link_id").to_numpy(), dtype=np.uint64)
        rx_ids = np.asarray(cir.column("rx_id").to_numpy(), dtype=np.int64)
        tx_ids = [str(t) for t in cir.column("tx_id").to_pylist()]
        if cfg.tx_power_dbm is None:
            p_dbm = cell_attributes(inputs.towers, tx_ids, ("tx_power_dbm",), view=self.name)["tx_power_dbm"]
        else:
            p_dbm = np.full(nl, cfg.tx_power_dbm)
        amp = np.sqrt(dbm_to_w(p_dbm.astype(np.float64)) / n)  # sqrt(W) per subcarrier
        freqs = np.arange(-n // 2, n // 2) * cfg.subcarrier_spacing_hz
        H = cfr(tau, a, freqs)  # (links, N) complex64
        g = filter_response(cfg)
        passed = passband_subcarriers(n, p)
        pidx = passed + n // 2
        bins = alias_bin(passed, n, p) + q // 2  # narrowband bin of each passed subcarrier
        # per-subcarrier noise std per real component: antenna (before the filter) and the chain's excess noise
        sig_ant = np.sqrt(BOLTZMANN * cfg.antenna_noise_temperature_k * cfg.subcarrier_spacing_hz / 2.0)
        f_lin = 10.0 ** (cfg.noise_figure_db / 10.0)
        sig_rx = np.sqrt(thermal_noise_w(cfg.subcarrier_spacing_hz, 0.0) * max(f_lin - 1.0, 0.0) / 2.0)
        # timing offset: common per receiver capture, plus a per-cell sync error; CFO and start phase per link
        t_rx = {int(r): link_rng(inputs.seed, int(r), stream=31).uniform(0.0, cfg.timing_offset_max_s)
                for r in np.unique(rx_ids)}
        capture = np.empty((nl, q), dtype=np.complex64)
        h_rec = np.empty((nl, q), dtype=np.complex64)
        h_full = np.empty((nl, n), dtype=np.complex64)
        t_off = np.empty(nl)
        cfo = np.empty(nl)
        phase = np.empty(nl)
        t_sym = 1.0 / cfg.subcarrier_spacing_hz
        for i in range(nl):
            rng = link_rng(inputs.seed, int(link_ids[i]))
            c = np.exp(0.5j * np.pi * (2 * rng.integers(0, 4, n) + 1))  # known QPSK preamble
            rng_imp = link_rng(inputs.seed, int(link_ids[i]), stream=32)
            t_off[i] = t_rx[int(rx_ids[i])] + (rng_imp.normal(0.0, cfg.bs_sync_error_std_s)
                                               if cfg.bs_sync_error_std_s > 0 else 0.0)
            cfo[i] = rng_imp.uniform(-cfg.cfo_max_hz, cfg.cfo_max_hz) if cfg.cfo_max_hz > 0 else 0.0
            phi0 = rng_imp.uniform(0.0, 2 * np.pi) if cfg.cfo_max_hz > 0 else 0.0
            phase[i] = (phi0 + np.pi * cfo[i] * t_sym) % (2 * np.pi)  # common phase error over one symbol
            hi = H[i] * np.exp(-2j * np.pi * freqs * t_off[i] + 1j * phase[i])
            x = amp[i] * c * hi
            post = None
            if cfg.add_noise:
                x = x + sig_ant * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
                post = sig_rx * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
            # a full-rate receiver sees the same antenna and chain noise per subcarrier, without folding
            h_full[i] = (x if post is None else x + post) / (amp[i] * c)
            yk = spike_train_capture(x, g, p, post, cfg.adc_bits, cfg.adc_backoff_db)
            capture[i] = yk
            h_rec[i] = p * yk[bins] / (amp[i] * c[pidx] * g[pidx])
        h_nb = h_full[:, n // 2 - q // 2 : n // 2 + q // 2]

        first = first_path_delay_s(tau, a)
        los = np.asarray(cir.column("los").to_numpy(zero_copy_only=False), dtype=bool)
        los_tof = np.asarray(cir.column("los_distance_m").to_numpy(), dtype=np.float64) / SPEED_OF_LIGHT
        gain = np.asarray(cir.column("path_gain_db").to_numpy(), dtype=np.float64)
        ref_tx = np.empty(nl, dtype=object)
        rel_first = np.empty(nl)
        rel_los = np.empty(nl)
        rank = np.empty(nl, dtype=np.int16)
        n_anchor = np.empty(nl, dtype=np.int16)
        anchors: list[list[str]] = [[] for _ in range(nl)]
        for rx in np.unique(rx_ids):
            sel = np.flatnonzero(rx_ids == rx)
            order = sel[np.lexsort((np.array([tx_ids[j] for j in sel]), -gain[sel]))]  # strongest first
            r = order[0]  # reference anchor: the strongest cell at this receiver
            ref_tx[sel] = tx_ids[r]
            rel_first[sel] = first[sel] - first[r]
            rel_los[sel] = los_tof[sel] - los_tof[r]
            rank[order] = np.arange(order.size)
            n_anchor[sel] = order.size
            ids = [tx_ids[j] for j in order]
            for j in sel:
                anchors[j] = ids

        cplx = {"units": "unitless channel gain", "extra": {"complex": "trailing axis (re, im)"}}
        f_cap = tensor_field("capture", (q, 2), ("nb_bin", "complex"), units="sqrt(W) per bin",
                             extra={"bins": f"-{q // 2}..{q // 2 - 1}", "p": p})
        f_rec = tensor_field("h_recovered", (q, 2), ("passed_subcarrier", "complex"), units=cplx["units"],
                             extra={"subcarriers": passed.tolist()})
        f_nb = tensor_field("h_narrowband", (q, 2), ("subcarrier", "complex"), units=cplx["units"],
                            extra={"subcarriers": f"{-q // 2}..{q // 2 - 1}"})
        pf = pa.array([passed * cfg.subcarrier_spacing_hz] * nl, pa.list_(pa.float64(), q))
        gdb = (20 * np.log10(np.abs(g[pidx]))).astype(np.float32)
        cols = [
            (pa.field("link_id", pa.uint64()), pa.array(link_ids, pa.uint64())),
            (pa.field("rx_id", pa.int64()), pa.array(rx_ids, pa.int64())),
            (pa.field("tx_id", pa.string()), pa.array(tx_ids, pa.string())),
            (f_cap, tensor_array(complex_to_pairs(capture), f_cap)),
            (f_rec, tensor_array(complex_to_pairs(h_rec), f_rec)),
            (tensor_field("passed_freq_hz", (q,), ("subcarrier",), pa.float64(),
                          units="Hz, baseband offset from the carrier of each h_recovered entry"), pf),
            (tensor_field("passed_gain_db", (q,), ("subcarrier",), pa.float32(),
                          units="dB, filter gain |G| at each h_recovered entry"),
             pa.array([gdb] * nl, pa.list_(pa.float32(), q))),
            (f_nb, tensor_array(complex_to_pairs(h_nb), f_nb)),
        ]
        if cfg.include_full_band:
            f_full = tensor_field("h_full", (n, 2), ("subcarrier", "complex"), units=cplx["units"],
                                  extra={"subcarriers": f"{-n // 2}..{n // 2 - 1}"})
            cols.append((f_full, tensor_array(complex_to_pairs(h_full), f_full)))
        cols += [
            (pa.field("los", pa.bool_()), pa.array(los)),
            (pa.field("los_tof_s", pa.float64()), pa.array(los_tof)),
            (pa.field("first_path_tof_s", pa.float64()), pa.array(first)),
            (pa.field("ref_tx_id", pa.string()), pa.array(list(ref_tx), pa.string())),
            (pa.field("rel_first_path_tof_s", pa.float64()), pa.array(rel_first)),
            (pa.field("rel_los_tof_s", pa.float64()), pa.array(rel_los)),
            (pa.field("timing_offset_s", pa.float64()), pa.array(t_off)),
            (pa.field("cfo_hz", pa.float64()), pa.array(cfo)),
            (pa.field("phase_offset_rad", pa.float64()), pa.array(phase)),
            (pa.field("anchor_rank", pa.int16()), pa.array(rank, pa.int16())),
            (pa.field("rx_num_anchors", pa.int16()), pa.array(n_anchor, pa.int16())),
            (pa.field("anchor_tx_ids", pa.list_(pa.string())), pa.array(anchors, pa.list_(pa.string()))),
            (pa.field("tx_x", pa.float64()), cir.column("tx_x").combine_chunks()),
            (pa.field("tx_y", pa.float64()), cir.column("tx_y").combine_chunks()),
            (pa.field("tx_z", pa.float64()), cir.column("tx_z").combine_chunks()),
            (pa.field("rx_x", pa.float64()), cir.column("rx_x").combine_chunks()),
            (pa.field("rx_y", pa.float64()), cir.column("rx_y").combine_chunks()),
            (pa.field("rx_z", pa.float64()), cir.column("rx_z").combine_chunks()),
        ]
        return view_table(cols, cfg, self.name)


VIEW = register_view(SpikeTrainView())


# ------------------------------------------------------------------------------------------------ bench


def synthetic_cir(num_links: int, num_paths: int = 20, seed: int = 0, num_rx: int | None = None,
                  carrier_hz: float = 3.5e9) -> tuple[pa.Table, pa.Table]:
    """Synthetic CIR rows (``twin.schema.CIR_SCHEMA``) and their towers table, ~urban delays (0.1–3 µs)."""
    from twin.schema import CIR_SCHEMA

    rng = np.random.default_rng(seed)
    num_rx = num_rx or max(1, num_links // 4)
    n_cells = max(1, -(-num_links // num_rx))
    rx = np.arange(num_links) // n_cells
    cell = np.arange(num_links) % n_cells
    tau = np.sort(rng.uniform(1e-7, 3e-6, (num_links, num_paths)), axis=1)
    amp = 1e-4 * np.exp(-tau / 1e-6) * rng.rayleigh(1.0, tau.shape)
    ph = rng.uniform(0, 2 * np.pi, tau.shape)
    los_d = tau[:, 0] * SPEED_OF_LIGHT
    cols = {
        "link_id": pa.array(np.arange(num_links, dtype=np.uint64)),
        "tx_id": pa.array([f"cell-{c}" for c in cell]),
        "rx_id": pa.array(rx.astype(np.int64)),
        "tx_x": pa.array(cell * 100.0), "tx_y": pa.array(np.zeros(num_links)), "tx_z": pa.array(np.full(num_links, 25.0)),
        "rx_x": pa.array(rx * 5.0), "rx_y": pa.array(np.zeros(num_links)), "rx_z": pa.array(np.full(num_links, 1.5)),
        "frequency_hz": pa.array(np.full(num_links, carrier_hz)),
        "num_paths": pa.array(np.full(num_links, num_paths, dtype=np.int32)),
        "tau_s": pa.array(list(tau)),
        "a_re": pa.array(list((amp * np.cos(ph)).astype(np.float32)), pa.list_(pa.float32())),
        "a_im": pa.array(list((amp * np.sin(ph)).astype(np.float32)), pa.list_(pa.float32())),
    }
    ang = [pa.array(list(rng.uniform(0, np.pi, tau.shape).astype(np.float32)), pa.list_(pa.float32()))
           for _ in range(4)]
    for name, arr in zip(("theta_t", "phi_t", "theta_r", "phi_r"), ang, strict=True):
        cols[name] = arr
    cols["doppler_hz"] = pa.array(list(np.zeros(tau.shape, np.float32)), pa.list_(pa.float32()))
    cols["interactions"] = pa.array([[[1]] * num_paths] * num_links, pa.list_(pa.list_(pa.uint8())))
    cols["los"] = pa.array(np.ones(num_links, bool))
    cols["los_distance_m"] = pa.array(los_d)
    cols["path_gain_db"] = pa.array((10 * np.log10((amp**2).sum(1))).astype(np.float32))
    table = pa.table([cols[f.name] for f in CIR_SCHEMA], schema=CIR_SCHEMA)
    towers = pa.table({
        "cell_id": [f"cell-{c}" for c in range(n_cells)],
        "pci": pa.array(np.arange(n_cells, dtype=np.int32) * 7 % 504),
        "frequency_hz": np.full(n_cells, carrier_hz),
        "bandwidth_hz": np.full(n_cells, 10e6),
        "tx_power_dbm": np.full(n_cells, 46.0),
        "x": np.arange(n_cells) * 100.0, "y": np.zeros(n_cells), "z": np.full(n_cells, 25.0),
    })
    return table, towers


def sionna_reference_paths(num_rx: int, max_depth: int, samples_per_src: int = 100_000):
    """Trace Sionna's ``simple_street_canyon`` with one iso transmitter and ``num_rx`` receivers.

    Returns (paths, tau_s (num_rx, L) float64, a (num_rx, L) complex64) with absolute delays.
    """
    from twin.llvm import setup_mitsuba

    setup_mitsuba()
    import sionna.rt as rt

    scene = rt.load_scene(rt.scene.simple_street_canyon)
    scene.frequency = 3.5e9
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.add(rt.Transmitter("tx", position=[-30.0, 0.0, 20.0]))
    rng = np.random.default_rng(0)
    for i in range(num_rx):
        scene.add(rt.Receiver(f"rx{i}", position=[float(rng.uniform(-40, 40)), float(rng.uniform(-5, 5)), 1.5]))
    paths = rt.PathSolver()(scene, max_depth=max_depth, samples_per_src=samples_per_src,
                            max_num_paths_per_src=samples_per_src, synthetic_array=True)
    a, tau = paths.cir(normalize_delays=False, out_type="numpy")
    a = np.asarray(a)[:, 0, 0, 0, :, 0]
    tau = np.asarray(tau)[:, 0, :].astype(np.float64)
    tau = np.where(np.abs(a) > 0, tau, 0.0)
    return paths, tau, a.astype(np.complex64)


def best_of(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@register_bench("spike_train")
def bench(quick: bool = False) -> list[BenchResult]:
    """cfr kernel vs Sionna ``Paths.cfr`` on the same traced paths (4096 subcarriers), and the whole view."""
    import mitsuba as mi

    num_rx = 64 if quick else 256
    paths, tau, a = sionna_reference_paths(num_rx, max_depth=3 if quick else 5)
    n = 4096
    freqs = (np.arange(n) - n // 2) * (100e6 / n)
    out = np.empty((num_rx, n), np.complex64)
    ff = mi.Float(freqs)
    paths.cfr(ff, normalize_delays=False, out_type="numpy")  # JIT warm-up
    t_sionna = best_of(lambda: paths.cfr(ff, normalize_delays=False, out_type="numpy"), 7)
    h_ref = np.asarray(paths.cfr(ff, normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    cfr(tau, a, freqs, out=out)
    t_ours = best_of(lambda: cfr(tau, a, freqs, out=out), 15)
    err = float(np.abs(out - h_ref).max() / max(np.abs(h_ref).max(), 1e-30))
    entries = num_rx * n
    notes = {"links": num_rx, "paths": int(tau.shape[1]), "subcarriers": n, "max_rel_err_vs_sionna": err,
             "speedup_vs_sionna": t_sionna / t_ours}
    res = [
        BenchResult("spike_train/cfr", entries / t_ours, "complex entries", t_ours, notes),
        BenchResult("spike_train/sionna_cfr", entries / t_sionna, "complex entries", t_sionna, notes),
    ]
    nl = 64 if quick else 512
    cir, towers = synthetic_cir(nl, 20)
    from twin.datasets.registry import ViewInputs

    vin = ViewInputs(cir=cir, towers=towers, receivers=pa.table({"rx_id": pa.array([], pa.int64())}),
                     scene_path="", seed=1, manifest={})
    cfg = SpikeTrainConfig()
    VIEW(vin, cfg)
    t_view = best_of(lambda: VIEW(vin, cfg), 2)
    res.append(BenchResult("spike_train/view", nl / t_view, "samples", t_view,
                           {"links": nl, "paths": 20, "ms_per_link": 1e3 * t_view / nl}))
    return res
