"""The cir-taps view (VIn-Loc, seeds/003): per receiver, the band-limited CIRs of every cell that reaches it.

Per receiver (one row): up to ``max_cells`` cells (the strongest first, ``cell_mask`` marks the real ones), each
with D taps (default 256) at the tap rate 2B (default B = 100 MHz; VIn-Loc Table 3 and Section 2, "sampling rate
of 2B Hz"), sinc-interpolated from the paths with Sionna's convention h[l] = Σ_k a_k sinc(l − 2B·τ_k) (Tse &
Viswanath 2005, eq. 2.34) and absolute delays: the cells are globally synchronised, tap 0 is the transmission time
(VIn-Loc Section 4, "Use of time of arrival"), so taps cover 0 … D/(2B) (1.28 µs, 384 m by default).

Window: a cell whose first path lies past the last tap (first-path delay · 2B > D − 1) carries only sinc tails of
paths outside the window; it is never passed as a channel: ``out_of_window = "drop"`` removes it from the set
(counted in ``num_cells_out_of_window``), ``"mask"`` keeps its slot with ``cell_mask`` False, zero taps and
``first_path_in_window`` False. ``window = "cover_scene"`` raises D (to a multiple of 16, the UNet's 4 poolings)
until the window covers the largest tower-to-area-corner distance of the build (the same D in every batch), so no
receiver of the area can fall outside it; ``window_m`` and ``max_distance_m`` are in the field metadata.

Noise (VIn-Loc eq. 1, n ~ N(0, σ² I)): ``noise_variance`` (σ² per complex tap, in channel-gain units, one value
for every cell, so weak cells sink in the noise) or ``thermal_noise`` (σ² = k·T0·2B·F / P_tx, the thermal noise at
the 2B sampling rate referred to the transmit power), or ``snr_db`` (white noise per cell at that SNR, each cell
scaled to its own power). None of them: perfect CIR (VIn-Loc Section 2, "perfect CIR information").

Beside the taps: their magnitude (VIn-Loc's third input channel |h|), the cells' positions (the TRP set of
the receiver) and first-path delays. Optionally a receive ULA of N_u elements at λ/2 (VIn-Loc scenario 2:
N_u = 8; steering a(θ)_n = exp(jπ n cos θ), θ the angle between the arrival direction and the array axis) and
its AoA-ToF representation: the FFT over the array axis of the per-antenna taps (equivalently the 2-D FFT of the
antenna × subcarrier CSI), magnitude, fftshift-ed so the middle bin is broadside. Label: receiver position.

Cost: one sort of the batch's links by (receiver, gain), then contiguous groups: linear in the links (no scan of
all links per receiver).
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from twin.constants import SPEED_OF_LIGHT
from twin.datasets.bench import BenchResult, register_bench
from twin.datasets.channel import first_path_delay_s, paths_from_cir, taps
from twin.datasets.noise import dbm_to_w, link_rng, thermal_noise_w
from twin.datasets.registry import ViewInputs, register_view
from twin.datasets.tables import cell_attributes, complex_to_pairs, view_table
from twin.schema import tensor_array, tensor_field

#: taps added after the largest delay in ``cover_scene`` mode (the sinc main lobe and its first side lobes)
COVER_GUARD_TAPS = 8
#: D is rounded up to a multiple of this in ``cover_scene`` mode (VIn-Loc Table 1: the UNet has 4 poolings)
TAP_MULTIPLE = 16


@dataclass(frozen=True)
class CirTapsConfig:
    """cir-taps settings (defaults: VIn-Loc Section 4 and Table 3)."""

    num_taps: int = 256  # D (the least D in cover_scene mode)
    bandwidth_hz: float = 100e6  # B; taps are 1/(2B) apart
    max_cells: int = 16  # cells kept per receiver (strongest first); the rest are dropped
    window: typing.Literal["fixed", "cover_scene"] = "fixed"
    out_of_window: typing.Literal["drop", "mask"] = "drop"
    rx_array: bool = False  # synthesise the N_u-element receive ULA and the AoA-ToF image
    num_rx_antennas: int = 8  # N_u (scenario 2)
    array_azimuth_deg: float = 0.0  # ULA axis, degrees counter-clockwise from +x (east), horizontal
    aoa_bins: int = 8  # FFT size over the array axis (>= num_rx_antennas zero-pads)
    snr_db: float | None = None  # white noise per tap at this SNR per cell (each cell its own power)
    noise_variance: float | None = None  # σ² per complex tap, common to all cells (channel-gain units)
    thermal_noise: bool = False  # σ² = k·T0·2B·F / P_tx, common to all cells
    tx_power_dbm: float = 30.0  # P_tx for thermal_noise
    noise_figure_db: float = 7.0  # F for thermal_noise

    def __post_init__(self) -> None:
        for n in ("num_taps", "max_cells", "num_rx_antennas", "aoa_bins"):
            if getattr(self, n) <= 0:
                raise ValueError(f"{n} must be > 0, got {getattr(self, n)}")
        if self.bandwidth_hz <= 0:
            raise ValueError(f"bandwidth_hz must be > 0, got {self.bandwidth_hz}")
        if self.rx_array and self.aoa_bins < self.num_rx_antennas:
            raise ValueError(f"aoa_bins ({self.aoa_bins}) must be >= num_rx_antennas ({self.num_rx_antennas})")
        if self.window not in ("fixed", "cover_scene"):
            raise ValueError(f"window must be 'fixed' or 'cover_scene', got {self.window!r}")
        if self.out_of_window not in ("drop", "mask"):
            raise ValueError(f"out_of_window must be 'drop' or 'mask', got {self.out_of_window!r}")
        given = [n for n in ("snr_db", "noise_variance") if getattr(self, n) is not None] + (
            ["thermal_noise"] if self.thermal_noise else [])
        if len(given) > 1:
            raise ValueError(f"choose one noise model, got {', '.join(given)}")
        if self.noise_variance is not None and self.noise_variance < 0:
            raise ValueError(f"noise_variance must be >= 0, got {self.noise_variance}")

    @property
    def tap_rate_hz(self) -> float:
        return 2.0 * self.bandwidth_hz

    def common_noise_variance(self) -> float | None:
        """σ² per complex tap shared by all cells (channel-gain units), or None when the noise is not common."""
        if self.noise_variance is not None:
            return float(self.noise_variance)
        if self.thermal_noise:
            return thermal_noise_w(self.tap_rate_hz, self.noise_figure_db) / float(dbm_to_w(self.tx_power_dbm))
        return None


def max_tower_distance_m(bounds_local, tower_xyz: np.ndarray) -> float:
    """Largest distance (m) from any tower to any ground point of the area box ``(xmin, ymin, xmax, ymax)``.

    The farthest point of a box from a point is one of its corners, so this bounds every tower-receiver
    distance of the area (receivers are above ground, towers above receivers: the ground corner is farther).
    """
    x0, y0, x1, y1 = (float(v) for v in bounds_local)
    xyz = np.asarray(tower_xyz, dtype=np.float64).reshape(-1, 3)
    if len(xyz) == 0:
        return 0.0
    dx = np.maximum(np.abs(xyz[:, 0] - x0), np.abs(xyz[:, 0] - x1))
    dy = np.maximum(np.abs(xyz[:, 1] - y0), np.abs(xyz[:, 1] - y1))
    return float(np.sqrt(dx**2 + dy**2 + xyz[:, 2] ** 2).max())


def taps_to_cover(distance_m: float, tap_rate_hz: float, least: int, *, guard: int = COVER_GUARD_TAPS,
                  multiple: int = TAP_MULTIPLE) -> int:
    """The least tap count >= ``least`` (a multiple of ``multiple``) whose window holds a path of ``distance_m``."""
    need = math.ceil(distance_m / SPEED_OF_LIGHT * tap_rate_hz) + 1 + guard
    d = max(int(least), need)
    return int(math.ceil(d / multiple) * multiple)


def window_taps(cfg: CirTapsConfig, inputs: ViewInputs) -> tuple[int, float | None]:
    """(D, max tower distance in m or None) for this build: ``num_taps`` or, in cover_scene mode, enough taps."""
    if cfg.window == "fixed":
        return cfg.num_taps, None
    area = (inputs.manifest or {}).get("area", {})
    if "bounds_local" not in area:
        raise ValueError("window = 'cover_scene' needs the build manifest's area.bounds_local")
    t = inputs.towers
    xyz = np.stack([np.asarray(t.column(c).to_numpy(), dtype=np.float64) for c in ("x", "y", "z")], 1)
    d = max_tower_distance_m(area["bounds_local"], xyz)
    return taps_to_cover(d, cfg.tap_rate_hz, cfg.num_taps), d


def group_links(rx_ids: np.ndarray, gain_db: np.ndarray, keep: np.ndarray, max_cells: int):
    """Per receiver, its kept links strongest first, capped at ``max_cells`` — one sort, no per-receiver scan.

    Returns (receivers (R,) sorted, order of kept link indices, slot of each (0-based within its receiver),
    receiver index of each, count of links per receiver (all of them, kept or not)).
    """
    idx = np.flatnonzero(keep)
    order = idx[np.lexsort((-gain_db[idx], rx_ids[idx]))]  # by receiver, then strongest first
    rx_all, all_counts = np.unique(rx_ids, return_counts=True)
    r_of = np.searchsorted(rx_all, rx_ids[order])
    starts = np.searchsorted(rx_ids[order], rx_all, side="left")
    slot = np.arange(len(order)) - starts[r_of] if len(order) else np.zeros(0, np.int64)
    sel = slot < max_cells
    return rx_all, order[sel], slot[sel], r_of[sel], all_counts


class CirTapsView:
    name = "cir_taps"
    config_cls = CirTapsConfig
    granularity = "per_receiver_batch"

    def __call__(self, inputs: ViewInputs, config: CirTapsConfig) -> pa.Table:
        cfg = config if config is not None else CirTapsConfig()
        cir = inputs.cir
        D, d_max = window_taps(cfg, inputs)
        M = cfg.max_cells
        rate = cfg.tap_rate_hz
        nu = cfg.num_rx_antennas if cfg.rx_array else 1
        paths = paths_from_cir(cir, ("theta_r", "phi_r") if cfg.rx_array else ())
        tau, a = paths["tau_s"], paths["a"]
        tx_ids = np.asarray([str(t) for t in cir.column("tx_id").to_pylist()], dtype=object)
        cell_attributes(inputs.towers, list(tx_ids), (), view=self.name)  # every cell must be known
        link_ids = np.asarray(cir.column("link_id").to_numpy(), dtype=np.uint64)
        rx_ids = np.asarray(cir.column("rx_id").to_numpy(), dtype=np.int64)
        gain = np.asarray(cir.column("path_gain_db").to_numpy(), dtype=np.float64)
        txp = np.stack([np.asarray(cir.column(c).to_numpy(), dtype=np.float64) for c in ("tx_x", "tx_y", "tx_z")], 1)
        rxp = np.stack([np.asarray(cir.column(c).to_numpy(), dtype=np.float64) for c in ("rx_x", "rx_y", "rx_z")], 1)

        t_first = first_path_delay_s(tau, a)  # NaN: no path
        in_win = np.isfinite(t_first) & (np.nan_to_num(t_first, nan=np.inf) * rate <= D - 1)
        keep = in_win if cfg.out_of_window == "drop" else np.isfinite(t_first)
        rx_order, sel, slot, r_of, counts_all = group_links(rx_ids, gain, keep, M)
        out_counts = np.bincount(np.searchsorted(rx_order, rx_ids[~in_win]), minlength=len(rx_order))
        R = len(rx_order)

        # taps of the selected in-window links only; per-antenna path coefficients (ULA phase per path)
        tsel = sel[in_win[sel]]
        a_s, tau_s = a[tsel], tau[tsel]
        if cfg.rx_array:
            az = np.deg2rad(cfg.array_azimuth_deg)
            cos_psi = np.sin(paths["theta_r"][tsel]) * np.cos(paths["phi_r"][tsel] - az)  # direction · axis
            n = np.arange(nu)
            steer = np.exp(1j * np.pi * n[None, :, None] * cos_psi[:, None, :])  # (links, nu, L)
            a_s = (a_s[:, None, :] * steer).astype(np.complex64).reshape(len(tsel) * nu, -1)
            tau_s = np.repeat(tau_s[:, None, :], nu, axis=1).reshape(len(tsel) * nu, -1)
        h = taps(tau_s, a_s, rate, D).reshape(len(tsel), nu, D)
        sigma2 = cfg.common_noise_variance()
        if cfg.snr_db is not None or sigma2 is not None:
            for i, li in enumerate(tsel):
                rng = link_rng(inputs.seed, int(link_ids[li]), 3)
                if sigma2 is None:
                    var = float(np.mean(np.abs(h[i]) ** 2)) * 10 ** (-cfg.snr_db / 10)
                else:
                    var = sigma2
                s = np.sqrt(var / 2)
                h[i] += (s * (rng.standard_normal(h[i].shape) + 1j * rng.standard_normal(h[i].shape))).astype(np.complex64)

        cir_out = np.zeros((R, M, nu, D), dtype=np.complex64)
        mask = np.zeros((R, M), dtype=bool)
        fpw = np.zeros((R, M), dtype=bool)
        fpd = np.zeros((R, M), dtype=np.float64)  # 0 in padding slots (no cell)
        pos = np.zeros((R, M, 3), dtype=np.float32)
        tsel_pos = np.flatnonzero(in_win[sel])
        cir_out[r_of[tsel_pos], slot[tsel_pos]] = h
        mask[r_of, slot] = in_win[sel]
        fpw[r_of, slot] = in_win[sel]
        fpd[r_of, slot] = t_first[sel]
        pos[r_of, slot] = txp[sel]
        first_row = np.searchsorted(np.sort(rx_ids), rx_order)  # any link of the receiver gives its position
        rx_pos = rxp[np.argsort(rx_ids, kind="stable")][first_row]
        cells: list[list[str]] = [[] for _ in range(R)]
        links: list[list[int]] = [[] for _ in range(R)]
        for r, li in zip(r_of.tolist(), sel.tolist(), strict=True):  # sel is grouped by receiver, slots ascending
            cells[r].append(str(tx_ids[li]))
            links[r].append(int(link_ids[li]))

        extra = {"tap_spacing_s": 1.0 / rate, "tap0": "transmission time", "window_m": D * SPEED_OF_LIGHT / rate}
        if d_max is not None:
            extra["max_distance_m"] = d_max
        if sigma2 is not None:
            extra["noise_variance"] = sigma2
        f_cir = tensor_field("cir", (M, nu, D, 2), ("cell", "rx_antenna", "tap", "complex"), units="unitless",
                             extra=extra)
        f_mag = tensor_field("cir_magnitude", (M, nu, D), ("cell", "rx_antenna", "tap"), units="unitless")
        f_mask = tensor_field("cell_mask", (M,), ("cell",), pa.bool_())
        f_fpw = tensor_field("first_path_in_window", (M,), ("cell",), pa.bool_())
        f_fpd = tensor_field("first_path_delay_s", (M,), ("cell",), pa.float64(), units="s")
        f_pos = tensor_field("cell_position", (M, 3), ("cell", "xyz"), units="m, local frame")
        cols = [
            (pa.field("rx_id", pa.int64()), pa.array(rx_order, pa.int64())),
            (pa.field("link_ids", pa.list_(pa.uint64())), pa.array(links, pa.list_(pa.uint64()))),
            (pa.field("tx_ids", pa.list_(pa.string())), pa.array(cells, pa.list_(pa.string()))),
            (pa.field("num_cells", pa.int32()), pa.array(mask.sum(1).astype(np.int32))),
            (pa.field("num_cells_reaching", pa.int32()), pa.array(counts_all.astype(np.int32))),
            (pa.field("num_cells_out_of_window", pa.int32()), pa.array(out_counts.astype(np.int32))),
            (f_cir, tensor_array(complex_to_pairs(cir_out), f_cir)),
            (f_mag, tensor_array(np.abs(cir_out).astype(np.float32), f_mag)),
            (f_mask, tensor_array(mask, f_mask)),
            (f_fpw, tensor_array(fpw, f_fpw)),
            (f_fpd, tensor_array(fpd, f_fpd)),
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
    from twin.datasets.spike_train import best_of, sionna_reference_paths, synthetic_cir

    num_rx = 64 if quick else 256
    paths, tau, a = sionna_reference_paths(num_rx, max_depth=3 if quick else 5)
    W, D = 200e6, 256
    out = np.empty((num_rx, D), np.complex64)
    paths.taps(W, 0, D - 1, normalize_delays=False, out_type="numpy")  # JIT warm-up
    t_sionna = best_of(lambda: paths.taps(W, 0, D - 1, normalize_delays=False, out_type="numpy"), 7)
    h_ref = np.asarray(paths.taps(W, 0, D - 1, normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    taps(tau, a, W, D, out=out)
    t_ours = best_of(lambda: taps(tau, a, W, D, out=out), 15)
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
        t_view = best_of(lambda cfg=cfg: VIEW(vin, cfg), 2)
        n_rx = len(np.unique(cir.column("rx_id").to_numpy()))
        res.append(BenchResult(f"cir_taps/{label}", n_rx / t_view, "samples (receivers)", t_view,
                               {"links": nl, "receivers": n_rx, "ms_per_link": 1e3 * t_view / nl}))
    return res
