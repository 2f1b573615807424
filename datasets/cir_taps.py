"""The cir-taps view (VIn-Loc, seeds/003): per receiver, the band-limited CIRs of every cell that reaches it.

Per receiver (one row): up to ``max_cells`` cells (the strongest first, ``cell_mask`` marks the real ones), each
with D taps (default 256) at the tap rate 2B (default B = 100 MHz, VIn-Loc Table 3), sinc-interpolated from the
paths with Sionna's convention h[l] = Σ_k a_k sinc(l − 2B·τ_k) and absolute delays: the cells are globally
synchronised, tap 0 is the transmission time (VIn-Loc "use of time of arrival"), so taps cover 0 … D/(2B)
(1.28 µs, 384 m by default; later paths fall outside). Beside the taps: their magnitude (VIn-Loc's third input
channel |h|) and the cells' positions. Optionally a receive ULA of N_u elements at λ/2 (VIn-Loc scenario 2:
N_u = 8; steering a(θ)_n = exp(jπ n cos θ), θ the angle between the arrival direction and the array axis) and
its AoA-ToF representation: the FFT over the array axis of the per-antenna taps (equivalently the 2-D FFT of the
antenna × subcarrier CSI), magnitude, fftshift-ed so the middle bin is broadside. Label: receiver position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from twin.datasets.bench import BenchResult, register_bench
from twin.datasets.ofdm import cell_attributes, complex_to_pairs, paths_from_cir, taps, view_table
from twin.datasets.registry import ViewInputs, register_view
from twin.schema import tensor_array, tensor_field


@dataclass(frozen=True)
class CirTapsConfig:
    """cir-taps settings (defaults: VIn-Loc §Experiments, Table 3)."""

    num_taps: int = 256  # D
    bandwidth_hz: float = 100e6  # B; taps are 1/(2B) apart
    max_cells: int = 16  # cells kept per receiver (strongest first); the rest are dropped
    rx_array: bool = False  # synthesise the N_u-element receive ULA and the AoA-ToF image
    num_rx_antennas: int = 8  # N_u (scenario 2)
    array_azimuth_deg: float = 0.0  # ULA axis, degrees counter-clockwise from +x (east), horizontal
    aoa_bins: int = 8  # FFT size over the array axis (>= num_rx_antennas zero-pads)
    snr_db: float | None = None  # None: perfect CIR (VIn-Loc); else white noise per tap at this SNR per cell

    def __post_init__(self) -> None:
        for n in ("num_taps", "max_cells", "num_rx_antennas", "aoa_bins"):
            if getattr(self, n) <= 0:
                raise ValueError(f"{n} must be > 0, got {getattr(self, n)}")
        if self.bandwidth_hz <= 0:
            raise ValueError(f"bandwidth_hz must be > 0, got {self.bandwidth_hz}")
        if self.rx_array and self.aoa_bins < self.num_rx_antennas:
            raise ValueError(f"aoa_bins ({self.aoa_bins}) must be >= num_rx_antennas ({self.num_rx_antennas})")

    @property
    def tap_rate_hz(self) -> float:
        return 2.0 * self.bandwidth_hz


class CirTapsView:
    name = "cir_taps"
    config_cls = CirTapsConfig
    granularity = "per_receiver_batch"

    def __call__(self, inputs: ViewInputs, config: CirTapsConfig) -> pa.Table:
        cfg = config if config is not None else CirTapsConfig()
        cir = inputs.cir
        D, M = cfg.num_taps, cfg.max_cells
        nu = cfg.num_rx_antennas if cfg.rx_array else 1
        paths = paths_from_cir(cir, ("theta_r", "phi_r") if cfg.rx_array else ())
        tau, a = paths["tau_s"], paths["a"]
        nl = cir.num_rows
        tx_ids = [str(t) for t in cir.column("tx_id").to_pylist()]
        cell_attributes(inputs.towers, tx_ids, (), view=self.name)  # every cell must be known
        link_ids = np.asarray(cir.column("link_id").to_numpy(), dtype=np.uint64)
        rx_ids = np.asarray(cir.column("rx_id").to_numpy(), dtype=np.int64)
        gain = np.asarray(cir.column("path_gain_db").to_numpy(), dtype=np.float64)
        txp = np.stack([np.asarray(cir.column(c).to_numpy(), dtype=np.float64) for c in ("tx_x", "tx_y", "tx_z")], 1)
        rxp = np.stack([np.asarray(cir.column(c).to_numpy(), dtype=np.float64) for c in ("rx_x", "rx_y", "rx_z")], 1)

        # per-antenna path coefficients (ULA phase per path), then one batched taps call over (link, antenna)
        if cfg.rx_array:
            az = np.deg2rad(cfg.array_azimuth_deg)
            cos_psi = np.sin(paths["theta_r"]) * np.cos(paths["phi_r"] - az)  # direction · axis
            n = np.arange(nu)
            steer = np.exp(1j * np.pi * n[None, :, None] * cos_psi[:, None, :])  # (links, nu, L)
            a_ant = (a[:, None, :] * steer).astype(np.complex64).reshape(nl * nu, -1)
            tau_ant = np.repeat(tau[:, None, :], nu, axis=1).reshape(nl * nu, -1)
        else:
            a_ant, tau_ant = a, tau
        h = taps(tau_ant, a_ant, cfg.tap_rate_hz, D).reshape(nl, nu, D)
        if cfg.snr_db is not None:
            for i in range(nl):
                rng = np.random.default_rng([inputs.seed, int(link_ids[i]), 3])
                p_sig = float(np.mean(np.abs(h[i]) ** 2))
                s = np.sqrt(p_sig * 10 ** (-cfg.snr_db / 10) / 2)
                h[i] += (s * (rng.standard_normal(h[i].shape) + 1j * rng.standard_normal(h[i].shape))).astype(np.complex64)

        rx_order = np.unique(rx_ids)
        R = len(rx_order)
        cir_out = np.zeros((R, M, nu, D), dtype=np.complex64)
        mask = np.zeros((R, M), dtype=bool)
        pos = np.zeros((R, M, 3), dtype=np.float32)
        rx_pos = np.zeros((R, 3), dtype=np.float64)
        cells: list[list[str]] = []
        links: list[list[int]] = []
        counts = np.zeros(R, dtype=np.int32)
        for r, rx in enumerate(rx_order):
            sel = np.flatnonzero(rx_ids == rx)
            sel = sel[np.argsort(-gain[sel], kind="stable")][:M]
            k = len(sel)
            cir_out[r, :k] = h[sel]
            mask[r, :k] = True
            pos[r, :k] = txp[sel]
            rx_pos[r] = rxp[sel[0]]
            counts[r] = int(np.sum(rx_ids == rx))
            cells.append([tx_ids[i] for i in sel])
            links.append([int(link_ids[i]) for i in sel])

        f_cir = tensor_field("cir", (M, nu, D, 2), ("cell", "rx_antenna", "tap", "complex"), units="unitless",
                             extra={"tap_spacing_s": 1.0 / cfg.tap_rate_hz, "tap0": "transmission time"})
        f_mag = tensor_field("cir_magnitude", (M, nu, D), ("cell", "rx_antenna", "tap"), units="unitless")
        f_mask = tensor_field("cell_mask", (M,), ("cell",), pa.bool_())
        f_pos = tensor_field("cell_position", (M, 3), ("cell", "xyz"), units="m, local frame")
        cols = [
            (pa.field("rx_id", pa.int64()), pa.array(rx_order, pa.int64())),
            (pa.field("link_ids", pa.list_(pa.uint64())), pa.array(links, pa.list_(pa.uint64()))),
            (pa.field("tx_ids", pa.list_(pa.string())), pa.array(cells, pa.list_(pa.string()))),
            (pa.field("num_cells", pa.int32()), pa.array(mask.sum(1).astype(np.int32))),
            (pa.field("num_cells_reaching", pa.int32()), pa.array(counts)),
            (f_cir, tensor_array(complex_to_pairs(cir_out), f_cir)),
            (f_mag, tensor_array(np.abs(cir_out).astype(np.float32), f_mag)),
            (f_mask, tensor_array(mask, f_mask)),
            (f_pos, tensor_array(pos, f_pos)),
        ]
        if cfg.rx_array:
            img = np.fft.fftshift(np.fft.fft(cir_out, n=cfg.aoa_bins, axis=2), axes=2)
            f_img = tensor_field("aoa_tof", (M, cfg.aoa_bins, D), ("cell", "aoa_bin", "tap"), units="unitless",
                                 extra={"aoa_bin_centre": "broadside", "spatial_frequency": "cos(theta)/2 per bin"})
            cols.append((f_img, tensor_array(np.abs(img).astype(np.float32), f_img)))
        cols += [
            (pa.field("rx_x", pa.float64()), pa.array(rx_pos[:, 0])),
            (pa.field("rx_y", pa.float64()), pa.array(rx_pos[:, 1])),
            (pa.field("rx_z", pa.float64()), pa.array(rx_pos[:, 2])),
        ]
        return view_table(cols, cfg, self.name)


VIEW = register_view(CirTapsView())


@register_bench("cir_taps")
def bench(quick: bool = False) -> list[BenchResult]:
    """taps kernel vs Sionna ``Paths.taps`` on the same traced paths (256 taps at 200 MS/s), and the view."""
    from twin.datasets.spike_train import _best_of, sionna_reference_paths, synthetic_cir

    num_rx = 64 if quick else 256
    paths, tau, a = sionna_reference_paths(num_rx, max_depth=3 if quick else 5)
    W, D = 200e6, 256
    out = np.empty((num_rx, D), np.complex64)
    paths.taps(W, 0, D - 1, normalize_delays=False, out_type="numpy")  # JIT warm-up
    t_sionna = _best_of(lambda: paths.taps(W, 0, D - 1, normalize_delays=False, out_type="numpy"), 7)
    h_ref = np.asarray(paths.taps(W, 0, D - 1, normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    taps(tau, a, W, D, out=out)
    t_ours = _best_of(lambda: taps(tau, a, W, D, out=out), 15)
    err = float(np.abs(out - h_ref).max() / max(np.abs(h_ref).max(), 1e-30))
    entries = num_rx * D
    notes = {"links": num_rx, "paths": int(tau.shape[1]), "taps": D, "max_rel_err_vs_sionna": err,
             "speedup_vs_sionna": t_sionna / t_ours}
    res = [
        BenchResult("cir_taps/taps", entries / t_ours, "complex entries", t_ours, notes),
        BenchResult("cir_taps/sionna_taps", entries / t_sionna, "complex entries", t_sionna, notes),
    ]
    nl = 64 if quick else 1024
    cir, towers = synthetic_cir(nl, 20)
    vin = ViewInputs(cir=cir, towers=towers, receivers=pa.table({"rx_id": pa.array([], pa.int64())}),
                     scene_path="", seed=1, manifest={})
    for label, cfg in (("view", CirTapsConfig()), ("view_array", CirTapsConfig(rx_array=True))):
        VIEW(vin, cfg)
        t_view = _best_of(lambda cfg=cfg: VIEW(vin, cfg), 2)
        n_rx = len(np.unique(cir.column("rx_id").to_numpy()))
        res.append(BenchResult(f"cir_taps/{label}", n_rx / t_view, "samples (receivers)", t_view,
                               {"links": nl, "receivers": n_rx, "ms_per_link": 1e3 * t_view / nl}))
    return res
