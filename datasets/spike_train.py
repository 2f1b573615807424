"""The spike-train view (ISLA, seeds/001): a MEMS spike-train filter + sub-sampling by P on a wideband OFDM channel.

Per link: the wideband channel H[n] = Σ_l a_l exp(-j2π nΔf τ_l), n ∈ [-N/2, N/2) (ISLA §5, 100 MHz at 3.5 GHz:
N = 4096, Δf = 24.414 kHz) from the CIR as traced (the CIR's delays and gains are used at the view's carrier:
frequency-flat materials assumption); a known unit-modulus preamble c[n]; receiver noise from the link budget
(cell power spread over the N subcarriers, k·T0·Δf·F per subcarrier) at the filter input; the spike-train filter
G[n] of Lemma 5.2 (P passbands of N/P² subcarriers, the first at the lowest subcarrier, spaced
ΔF = (N/P)(1 + 1/P)Δf), ideal or MEMS-like (2nd-order Butterworth resonator per passband) with a finite
stop-band floor; sub-sampling by P, which folds bin n onto n mod N/P (Lemma 5.1): Y[k] = (1/P) Σ_m X[k + mN/P].
Outputs: the capture Y (N/P bins), the channel recovered at the passed subcarriers Ĥ_j = P·Y[k_j]/(c_j G_j √p),
the plain narrowband channel of the central N/P subcarriers (a normal low-rate receiver), optionally the full
band (upper bound), and ToF labels (LOS, first path, relative to the receiver's reference anchor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from twin.datasets.bench import BenchResult, register_bench
from twin.datasets.ofdm import (
    SPEED_OF_LIGHT,
    cell_attributes,
    cfr,
    complex_to_pairs,
    dbm_to_w,
    first_path_delay_s,
    link_rng,
    paths_from_cir,
    thermal_noise_w,
    view_table,
)
from twin.datasets.registry import ViewInputs, register_view
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
    """Spike-train view settings (defaults: ISLA §5/§8, 100 MHz at 3.5 GHz)."""

    num_subcarriers: int = 4096  # N
    subcarrier_spacing_hz: float = 100e6 / 4096  # Δf = 24.414 kHz
    carrier_hz: float = 3.5e9  # the view's carrier (documentation; the CIR is used as traced)
    p: int = 16  # sub-sampling factor P (P² | N)
    passband_shape: Literal["ideal", "mems"] = "ideal"
    stopband_rejection_db: float = 40.0  # filter gain outside the passbands: -40 dB
    noise_figure_db: float = 7.0  # IoT receiver noise figure
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

    @property
    def narrowband_bins(self) -> int:
        return self.num_subcarriers // self.p


def filter_response(cfg: SpikeTrainConfig) -> np.ndarray:
    """Complex gain G[n] of the spike-train filter on subcarriers n = -N/2 … N/2-1 (index 0 is -N/2)."""
    n, p = cfg.num_subcarriers, cfg.p
    k = np.arange(-n // 2, n // 2)
    floor = 10.0 ** (-cfg.stopband_rejection_db / 20.0)
    g = np.full(n, floor, dtype=np.complex128)
    passed = passband_subcarriers(n, p)
    if cfg.passband_shape == "ideal":
        g[passed + n // 2] = 1.0
        return g
    # MEMS-like: each passband a 2nd-order Butterworth resonator, -3 dB at the passband edges
    width = n // (p * p)
    spacing = n // p + n // (p * p)
    for i in range(p):
        centre = -n // 2 + i * spacing + (width - 1) / 2.0
        s = 1j * (k - centre) / (width / 2.0)
        g += 1.0 / (s * s + np.sqrt(2.0) * s + 1.0)
    return g


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
        sigma = np.sqrt(thermal_noise_w(cfg.subcarrier_spacing_hz, cfg.noise_figure_db) / 2.0)
        capture = np.empty((nl, q), dtype=np.complex64)
        h_rec = np.empty((nl, q), dtype=np.complex64)
        h_full = np.empty((nl, n), dtype=np.complex64)
        for i in range(nl):
            rng = link_rng(inputs.seed, int(link_ids[i]))
            c = np.exp(0.5j * np.pi * (2 * rng.integers(0, 4, n) + 1))  # known QPSK preamble
            x = amp[i] * c * H[i]
            if cfg.add_noise:
                x = x + sigma * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
            h_full[i] = x / (amp[i] * c)
            yk = subsample_spectrum(x * g, p)
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
        for rx in np.unique(rx_ids):
            sel = np.flatnonzero(rx_ids == rx)
            r = sel[np.argmax(gain[sel])]  # reference anchor: the strongest cell at this receiver
            ref_tx[sel] = tx_ids[r]
            rel_first[sel] = first[sel] - first[r]
            rel_los[sel] = los_tof[sel] - los_tof[r]

        cplx = {"units": "unitless channel gain", "extra": {"complex": "trailing axis (re, im)"}}
        f_cap = tensor_field("capture", (q, 2), ("nb_bin", "complex"), units="sqrt(W) per bin",
                             extra={"bins": f"-{q // 2}..{q // 2 - 1}", "p": p})
        f_rec = tensor_field("h_recovered", (q, 2), ("passed_subcarrier", "complex"), units=cplx["units"],
                             extra={"subcarriers": passed.tolist()})
        f_nb = tensor_field("h_narrowband", (q, 2), ("subcarrier", "complex"), units=cplx["units"],
                            extra={"subcarriers": f"{-q // 2}..{q // 2 - 1}"})
        cols = [
            (pa.field("link_id", pa.uint64()), pa.array(link_ids, pa.uint64())),
            (pa.field("rx_id", pa.int64()), pa.array(rx_ids, pa.int64())),
            (pa.field("tx_id", pa.string()), pa.array(tx_ids, pa.string())),
            (f_cap, tensor_array(complex_to_pairs(capture), f_cap)),
            (f_rec, tensor_array(complex_to_pairs(h_rec), f_rec)),
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


def _best_of(fn, repeat: int) -> float:
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
    t_sionna = _best_of(lambda: paths.cfr(ff, normalize_delays=False, out_type="numpy"), 7)
    h_ref = np.asarray(paths.cfr(ff, normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    cfr(tau, a, freqs, out=out)
    t_ours = _best_of(lambda: cfr(tau, a, freqs, out=out), 15)
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
    t_view = _best_of(lambda: VIEW(vin, cfg), 2)
    res.append(BenchResult("spike_train/view", nl / t_view, "samples", t_view,
                           {"links": nl, "paths": 20, "ms_per_link": 1e3 * t_view / nl}))
    return res
