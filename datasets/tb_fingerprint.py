"""TB-fingerprint view (LOA-Net, seed ``004_*.txt``): triple-beam (angle-delay-Doppler) power tensors.

A tower sector carries a uniform planar array (UPA) in the vertical plane facing the sector azimuth
(LOA-Net §II-A: 128 antennas, λ/2). The uplink space-frequency-time (SFT) channel of a receiver is built
from each traced path's tower-side angles (``theta_t/phi_t``: uplink reciprocity), delay and Doppler
(receiver velocity against the path direction at the receiver, ``theta_r/phi_r``), over N_c subcarriers
and T OFDM symbols (LOA-Net eqs. 1-10). The triple-beam transform (eqs. 12-15) is a unitary 2-D DFT over
the array, an IDFT over subcarriers keeping the taps inside the CP, and a DFT over symbols; the stored
fingerprint is its power tensor (eq. 20), cropped to documented ranges.

Every path's SFT contribution is an outer product of an antenna, a subcarrier and a symbol vector, so the
transform equals (angle terms) @ (delay ⊗ Doppler terms): one small matrix product instead of building the
N_ant x N_c x T tensor and FFT-ing it (:func:`triple_beam_from_paths`; the bench compares both).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from twin.config import positive
from twin.constants import SPEED_OF_LIGHT
from twin.datasets.bench import BenchResult, register_bench
from twin.datasets.registry import ViewInputs, register_view
from twin.errors import TwinInputError
from twin.schema import META_VIEW, tensor_array, tensor_field

# ----------------------------------------------------------------------------------------- transforms


def triple_beam(h: np.ndarray, keep_taps: int | None = None) -> np.ndarray:
    """Triple-beam transform of an SFT channel ``h`` of shape (rows, cols, subcarriers, symbols).

    Unitary 2-D DFT over the array axes (``fft2``, norm "ortho"), unitary IDFT over subcarriers (delay
    taps l = τ·N_c·Δf), unitary DFT over symbols (Doppler bin ν = f_D·T·T_sym mod T); LOA-Net eqs. 12-15.
    Bins are in plain DFT order (no fftshift). ``keep_taps`` keeps delay taps 0..keep_taps-1 (the CP);
    with ``None`` all taps are kept and the transform is unitary (Parseval holds).
    """
    h = np.asarray(h)
    if h.ndim != 4:
        raise ValueError(f"triple_beam: h must have shape (rows, cols, subcarriers, symbols), got {h.shape}")
    n_sc = h.shape[2]
    if keep_taps is not None and not (1 <= int(keep_taps) <= n_sc):
        raise ValueError(f"triple_beam: keep_taps must be in 1..{n_sc} (subcarriers), got {keep_taps}")
    x = np.fft.ifft(h, axis=2, norm="ortho")
    if keep_taps is not None:
        x = x[:, :, : int(keep_taps), :]
    x = np.fft.fft2(x, axes=(0, 1), norm="ortho")
    return np.fft.fft(x, axis=3, norm="ortho")


@dataclass(frozen=True)
class PathTerms:
    """Per-path factors of the SFT channel: antenna (P, R, C), subcarrier (P, K) and symbol (P, T) vectors."""

    rows: np.ndarray
    cols: np.ndarray
    freq: np.ndarray
    time: np.ndarray


def path_terms(
    u_row: np.ndarray,
    u_col: np.ndarray,
    tau_s: np.ndarray,
    doppler_hz: np.ndarray,
    *,
    num_rows: int,
    num_cols: int,
    spacing_wavelengths: float,
    num_subcarriers: int,
    subcarrier_spacing_hz: float,
    num_symbols: int,
    symbol_duration_s: float,
    dtype: type = np.complex128,
) -> PathTerms:
    """Steering vectors of P paths (LOA-Net eqs. 1-3, 8, 9).

    ``u_row``/``u_col``: direction cosines of each path at the tower along the array's row (vertical) and
    column (horizontal) axes; antenna (r, c) gets phase 2π·d/λ·(r·u_row + c·u_col). Subcarrier k gets
    exp(-j2π k Δf τ) (k = 0..N_c-1), symbol t gets exp(+j2π f_D t T_sym). ``dtype``: complex64 or complex128.
    """
    r = np.arange(num_rows)
    c = np.arange(num_cols)
    k = np.arange(num_subcarriers)
    t = np.arange(num_symbols)
    two_pi_d = 2 * np.pi * spacing_wavelengths
    rows = np.exp(1j * two_pi_d * np.outer(u_row, r))
    cols = np.exp(1j * two_pi_d * np.outer(u_col, c))
    freq = np.exp(-2j * np.pi * subcarrier_spacing_hz * np.outer(tau_s, k))
    tim = np.exp(2j * np.pi * symbol_duration_s * np.outer(doppler_hz, t))
    return PathTerms(*(v.astype(dtype, copy=False) for v in (rows, cols, freq, tim)))


def build_sft(gain: np.ndarray, terms: PathTerms) -> np.ndarray:
    """The SFT channel H[r, c, k, t] = Σ_p g_p a_r a_c f_k w_t (LOA-Net eq. 10), shape (R, C, K, T)."""
    p = len(gain)
    gain = np.asarray(gain).astype(terms.rows.dtype, copy=False)
    ang = (gain[:, None, None] * terms.rows[:, :, None] * terms.cols[:, None, :]).reshape(p, -1)
    ft = (terms.freq[:, :, None] * terms.time[:, None, :]).reshape(p, -1)
    r, c = terms.rows.shape[1], terms.cols.shape[1]
    return (ang.T @ ft).reshape(r, c, terms.freq.shape[1], terms.time.shape[1])


def triple_beam_from_paths(
    gain: np.ndarray,
    terms: PathTerms,
    keep_taps: int | None = None,
    doppler_bins: np.ndarray | None = None,
) -> np.ndarray:
    """``triple_beam(build_sft(gain, terms), keep_taps)[..., doppler_bins]`` from per-path transforms.

    Each path's transform is the outer product of the FFTs of its own antenna, subcarrier and symbol
    vectors, so the sum over paths is one matrix product (R·C x P) @ (P x L·V). ``doppler_bins``: DFT-order
    Doppler bin indices to keep (all when None).
    """
    gain = np.asarray(gain).astype(terms.rows.dtype, copy=False)
    p = len(gain)
    n_rows, n_cols = terms.rows.shape[1], terms.cols.shape[1]
    ar = np.fft.fft(terms.rows, axis=1, norm="ortho")
    ac = np.fft.fft(terms.cols, axis=1, norm="ortho")
    dl = np.fft.ifft(terms.freq, axis=1, norm="ortho")
    if keep_taps is not None:
        dl = dl[:, : int(keep_taps)]
    dp = np.fft.fft(terms.time, axis=1, norm="ortho")
    if doppler_bins is not None:
        dp = dp[:, np.asarray(doppler_bins)]
    ang = (gain[:, None, None] * ar[:, :, None] * ac[:, None, :]).reshape(p, -1)
    dd = (dl[:, :, None] * dp[:, None, :]).reshape(p, -1)
    return (ang.T @ dd).reshape(n_rows, n_cols, dl.shape[1], dp.shape[1])


def expected_tb_power(
    gain: np.ndarray,
    terms: PathTerms,
    keep_taps: int | None = None,
    doppler_bins: np.ndarray | None = None,
) -> np.ndarray:
    """E[|TB|²] over independent uniform path phases (LOA-Net eqs. 19-20, Appendix B): Σ_p |g_p|² |T_p|².

    The cross terms of |Σ_p g_p T_p|² average to zero when the paths' phases are independent and uniform, so the
    expected power tensor is one real matrix product (R·C x P) @ (P x L·V) of the per-path transforms' powers.
    Same bins and order as :func:`triple_beam_from_paths`.
    """
    ang, dl = expected_angle_delay_factors(gain, terms, keep_taps)
    return expected_from_factors(ang, dl, terms.time, doppler_bins, terms.rows.shape[1], terms.cols.shape[1])


def expected_angle_delay_factors(gain: np.ndarray, terms: PathTerms, keep_taps: int | None = None
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """The velocity-independent factors of :func:`expected_tb_power`: |g_p|² |A_p|² (P, R·C) and |D_p|² (P, L)."""
    g2 = np.abs(np.asarray(gain)) ** 2
    p = len(g2)
    ar = np.abs(np.fft.fft(terms.rows, axis=1, norm="ortho")) ** 2
    ac = np.abs(np.fft.fft(terms.cols, axis=1, norm="ortho")) ** 2
    dl = np.abs(np.fft.ifft(terms.freq, axis=1, norm="ortho")) ** 2
    if keep_taps is not None:
        dl = dl[:, : int(keep_taps)]
    return (g2[:, None, None] * ar[:, :, None] * ac[:, None, :]).reshape(p, -1), dl


def expected_from_factors(ang: np.ndarray, dl: np.ndarray, time_terms: np.ndarray, doppler_bins: np.ndarray | None,
                          n_rows: int, n_cols: int) -> np.ndarray:
    """:func:`expected_tb_power` from :func:`expected_angle_delay_factors` and the symbol factors (P, T) of one
    velocity (the Doppler factor is the only one that changes with the motion)."""
    dp = np.abs(np.fft.fft(time_terms, axis=1, norm="ortho")) ** 2
    if doppler_bins is not None:
        dp = dp[:, np.asarray(doppler_bins)]
    dd = (dl[:, :, None] * dp[:, None, :]).reshape(len(dl), -1)
    return (ang.T @ dd).reshape(n_rows, n_cols, dl.shape[1], dp.shape[1])


def sft_energy(gain: np.ndarray, terms: PathTerms) -> float:
    """||H||² of the SFT channel without building it: g^H G g with the separable Gram matrix G."""
    g = np.asarray(gain, dtype=np.complex128)
    gram = (
        (terms.rows.conj() @ terms.rows.T)
        * (terms.cols.conj() @ terms.cols.T)
        * (terms.freq.conj() @ terms.freq.T)
        * (terms.time.conj() @ terms.time.T)
    )
    return float(np.real(g.conj() @ gram @ g))


# ------------------------------------------------------------------------------------------------ view


@dataclass(frozen=True)
class TBFingerprintConfig:
    """TB-fingerprint settings; defaults follow LOA-Net §V-A Table II (3GPP LTE numerology).

    Array: ``num_rows`` x ``num_cols`` UPA (rows vertical), element spacing in wavelengths of the traced
    carrier. OFDM: ``num_subcarriers`` at ``subcarrier_spacing_hz``, CP of ``cp_length`` samples, frames of
    ``num_slots`` x ``symbols_per_slot`` symbols. Motion: ``speed_kmh`` (km/h) for every receiver unless
    ``use_receiver_speed`` keeps a route receiver's own |v|; direction classes: ``num_directions`` sectors
    centred on multiples of 360°/num_directions from +x (east), counter-clockwise. Crop: delay taps
    0..cp_length-1, ``doppler_bins`` Doppler bins centred on 0 Hz. ``snr_db``: AWGN on the SFT channel
    (LOA-Net: 20 dB), None for none. ``cell_selection``: "strongest" cell per receiver, or "all" links.

    ``power``: "expected" (default, LOA-Net eqs. 19-20: E[|TB|²] over independent path phases plus the noise
    power σ² per bin) or "instantaneous" (|TB + noise|² of the traced phases, one realisation).
    Crop check: rows whose noiseless crop holds less than ``min_crop_energy_fraction`` of the link's energy
    (delays beyond the CP) are dropped (``low_crop = "drop"``) or kept with ``crop_ok = false`` ("flag").
    Storage: ``storage = "float32"`` (power / row peak) or "db" (10·log10(power / row peak), float16: ±0.03 dB at
    -60 dB); both keep the noise floor. Orientations: ``orientations = "one"`` (one direction per receiver, as
    below) or "all" (one row per class centre, ``num_directions`` rows per link: LOA-Net's training protocol,
    §V-A "TBFs from 16 distinct orientations"). ``blas_threads``: BLAS threads inside the view (threadpoolctl;
    1 avoids oversubscription in Dask workers; None leaves the library default).
    """

    num_rows: int = 8
    num_cols: int = 16
    spacing_wavelengths: float = 0.5
    num_subcarriers: int = 2048
    subcarrier_spacing_hz: float = 15e3
    cp_length: int = 144
    num_slots: int = 8
    symbols_per_slot: int = 14
    speed_kmh: float = 5.0
    num_directions: int = 16
    random_direction: Literal["class_centres", "uniform"] = "class_centres"
    use_receiver_speed: bool = False
    doppler_bins: int = 9
    snr_db: float | None = 20.0
    cell_selection: Literal["strongest", "all"] = "strongest"
    power: Literal["expected", "instantaneous"] = "expected"
    min_crop_energy_fraction: float = 0.5
    low_crop: Literal["drop", "flag"] = "drop"
    storage: Literal["float32", "db"] = "float32"
    orientations: Literal["one", "all"] = "one"
    blas_threads: int | None = 1

    def __post_init__(self) -> None:
        for n in ("num_rows", "num_cols", "num_subcarriers", "cp_length", "num_slots", "symbols_per_slot",
                  "num_directions", "doppler_bins", "spacing_wavelengths", "subcarrier_spacing_hz"):
            positive(n, getattr(self, n))
        positive("speed_kmh", self.speed_kmh, allow_zero=True)
        if self.cp_length > self.num_subcarriers:
            raise ValueError(f"cp_length ({self.cp_length}) must be <= num_subcarriers ({self.num_subcarriers})")
        if self.doppler_bins > self.num_symbols:
            raise ValueError(f"doppler_bins ({self.doppler_bins}) must be <= num_slots*symbols_per_slot "
                             f"({self.num_symbols})")
        if self.random_direction not in ("class_centres", "uniform"):
            raise ValueError(f"random_direction must be 'class_centres' or 'uniform', got {self.random_direction!r}")
        if self.cell_selection not in ("strongest", "all"):
            raise ValueError(f"cell_selection must be 'strongest' or 'all', got {self.cell_selection!r}")
        for name, allowed in (("power", ("expected", "instantaneous")), ("low_crop", ("drop", "flag")),
                              ("storage", ("float32", "db")), ("orientations", ("one", "all"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {getattr(self, name)!r}")
        if not 0.0 <= self.min_crop_energy_fraction <= 1.0:
            raise ValueError(f"min_crop_energy_fraction must be in [0, 1], got {self.min_crop_energy_fraction}")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ValueError(f"blas_threads must be >= 1 or None, got {self.blas_threads}")

    @property
    def num_symbols(self) -> int:
        return self.num_slots * self.symbols_per_slot

    @property
    def symbol_duration_s(self) -> float:
        """OFDM symbol with CP, seconds: (N_c + CP) / (N_c Δf)."""
        return (self.num_subcarriers + self.cp_length) / (self.num_subcarriers * self.subcarrier_spacing_hz)

    @property
    def tap_s(self) -> float:
        """Delay-tap spacing, seconds: 1 / (N_c Δf)."""
        return 1.0 / (self.num_subcarriers * self.subcarrier_spacing_hz)

    @property
    def doppler_bin_hz(self) -> float:
        """Doppler-bin spacing, Hz: 1 / (T T_sym)."""
        return 1.0 / (self.num_symbols * self.symbol_duration_s)

    def doppler_bin_indices(self) -> np.ndarray:
        """DFT-order indices of the kept Doppler bins, ascending in frequency (bins -(V//2) .. V-1-V//2)."""
        v = self.doppler_bins
        return np.arange(-(v // 2), v - v // 2) % self.num_symbols


def direction_class(direction_rad: np.ndarray, num_directions: int) -> np.ndarray:
    """Motion-direction class: sector i is centred on i·2π/num_directions from +x (LOA-Net §IV-C, 16 x 22.5°)."""
    w = 2 * np.pi / num_directions
    return (np.round(np.mod(direction_rad, 2 * np.pi) / w).astype(np.int64) % num_directions).astype(np.int16)


def _r_hat(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    st = np.sin(theta)
    return np.stack([st * np.cos(phi), st * np.sin(phi), np.cos(theta)], axis=-1)


def array_axes(azimuth_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boresight, column axis, row axis) unit vectors of a vertical UPA facing ``azimuth_deg``.

    Azimuth in degrees clockwise from north (DESIGN §3); local frame x east, y north. Columns run to the
    right of the boresight (seen from behind the array), rows run up (+z).
    """
    a = math.radians(azimuth_deg)
    bore = np.array([math.sin(a), math.cos(a), 0.0])
    col = np.array([math.cos(a), -math.sin(a), 0.0])
    return bore, col, np.array([0.0, 0.0, 1.0])


def _require(table: pa.Table, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in table.column_names]
    if missing:
        raise TwinInputError(f"the {what} table lacks column(s) {', '.join(missing)}", file=what,
                             field=missing[0], fix="rebuild it with the current twin version")


class TBFingerprintView:
    """Registered view "tb_fingerprint": one row per (receiver, cell) link, see module docstring."""

    name = "tb_fingerprint"
    config_cls = TBFingerprintConfig
    granularity = "per_receiver_batch"

    def schema(self, config: TBFingerprintConfig) -> pa.Schema:
        v0 = -(config.doppler_bins // 2)
        tb = tensor_field(
            "tb_power",
            (config.num_rows, config.num_cols, config.cp_length, config.doppler_bins),
            ("angle_row", "angle_col", "delay", "doppler"),
            pa.float32() if config.storage == "float32" else pa.float16(),
            units=("power normalised to max 1 per row; absolute = value * 10**(tb_scale_db/10)"
                   if config.storage == "float32" else
                   "dB re the row's max bin; absolute power = 10**((value + tb_scale_db)/10)"),
            extra={
                "angle_row_bins": "fftshifted: bin i <-> direction cosine (i - R/2)/(R*spacing) along +z",
                "angle_col_bins": "fftshifted: bin i <-> direction cosine (i - C/2)/(C*spacing) along the column axis",
                "delay_crop": [0, config.cp_length],
                "delay_tap_s": config.tap_s,
                "doppler_crop_bins": [v0, v0 + config.doppler_bins],
                "doppler_bin_hz": config.doppler_bin_hz,
                "spacing_wavelengths": config.spacing_wavelengths,
                "power": config.power,
                "storage": config.storage,
            },
        )
        fields = [
            pa.field("link_id", pa.uint64()),
            pa.field("rx_id", pa.int64()),
            pa.field("tx_id", pa.string()),
            pa.field("x", pa.float64()), pa.field("y", pa.float64()), pa.field("z", pa.float64()),
            pa.field("vx", pa.float64()), pa.field("vy", pa.float64()), pa.field("vz", pa.float64()),
            pa.field("speed_mps", pa.float64()),
            pa.field("direction_rad", pa.float64()),
            pa.field("direction_class", pa.int16()),
            pa.field("orientation_index", pa.int16()),
            pa.field("tower_x", pa.float64()), pa.field("tower_y", pa.float64()), pa.field("tower_z", pa.float64()),
            pa.field("azimuth_deg", pa.float64()),
            pa.field("frequency_hz", pa.float64()),
            pa.field("num_paths", pa.int32()),
            pa.field("tb_scale_db", pa.float32()),
            pa.field("crop_energy_fraction", pa.float32()),
            pa.field("crop_ok", pa.bool_()),
            pa.field("snr_db", pa.float32()),
            pa.field("noise_power_db", pa.float32()),
            tb,
        ]
        meta = {META_VIEW: self.name, "twin.view_config": json.dumps(asdict(config), sort_keys=True)}
        return pa.schema(fields, metadata=meta)

    def __call__(self, inputs: ViewInputs, config: TBFingerprintConfig) -> pa.Table:
        if not isinstance(config, TBFingerprintConfig):
            raise TypeError(f"config must be a TBFingerprintConfig, got {type(config).__name__}")
        if config.blas_threads is None:
            return self._rows(inputs, config)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=config.blas_threads, user_api="blas"):
            return self._rows(inputs, config)

    def _rows(self, inputs: ViewInputs, config: TBFingerprintConfig) -> pa.Table:
        schema = self.schema(config)
        cir, towers, rx = inputs.cir, inputs.towers, inputs.receivers
        _require(cir, ("link_id", "tx_id", "rx_id", "frequency_hz", "tau_s", "a_re", "a_im", "theta_t", "phi_t",
                       "theta_r", "phi_r", "path_gain_db", "tx_x", "tx_y", "tx_z"), "cir")
        _require(towers, ("cell_id", "azimuth_deg"), "towers.parquet")
        _require(rx, ("rx_id", "x", "y", "z", "kind", "vx", "vy", "vz"), "receivers.parquet")
        if cir.num_rows == 0:
            return schema.empty_table()
        az = dict(zip(towers.column("cell_id").to_pylist(), towers.column("azimuth_deg").to_pylist(), strict=True))
        rxd = {r["rx_id"]: r for r in rx.to_pylist()}
        links = cir.select([c for c in cir.column_names if c != "interactions"]).to_pylist()
        if config.cell_selection == "strongest":
            best: dict[int, dict] = {}
            for ln in links:
                if ln["rx_id"] not in best or ln["path_gain_db"] > best[ln["rx_id"]]["path_gain_db"]:
                    best[ln["rx_id"]] = ln
            links = [best[k] for k in sorted(best)]
        else:
            links.sort(key=lambda ln: (ln["rx_id"], ln["tx_id"]))
        motion = {}
        out = {f.name: [] for f in schema}
        tb_rows = []
        dbins = config.doppler_bin_indices()
        for ln in links:
            cell, rid = ln["tx_id"], ln["rx_id"]
            if cell not in az:
                raise TwinInputError(f"CIR link {ln['link_id']} names cell {cell!r}, absent from the towers table",
                                     file="towers.parquet", row=cell, field="cell_id",
                                     fix="rebuild the CIR shards from the current towers.parquet")
            if rid not in rxd:
                raise TwinInputError(f"CIR link {ln['link_id']} names receiver {rid}, absent from the receivers",
                                     file="receivers.parquet", row=rid, field="rx_id",
                                     fix="rebuild the CIR shards from the current receivers.parquet")
            if rid not in motion:
                motion[rid] = self._motion(rxd[rid], config, inputs.seed)
            if config.orientations == "all":
                w = 2 * np.pi / config.num_directions
                speed = motion[rid][1]
                moves = [(np.array([speed * math.cos(i * w), speed * math.sin(i * w), 0.0]), speed, i * w)
                         for i in range(config.num_directions)]
            else:
                moves = [motion[rid]]
            results = self._link_tb(ln, float(az[cell] or 0.0), [m[0] for m in moves], config, dbins, inputs.seed)
            r = rxd[rid]
            for k_or, ((vel, speed, direction), (tb, scale_db, frac, snr, noise_db)) in enumerate(
                    zip(moves, results, strict=True)):
                ok = frac >= config.min_crop_energy_fraction
                if not ok and config.low_crop == "drop":
                    continue
                cls = int(direction_class(np.array([direction]), config.num_directions)[0])
                vals = dict(link_id=ln["link_id"], rx_id=rid, tx_id=cell, x=r["x"], y=r["y"], z=r["z"],
                            vx=vel[0], vy=vel[1], vz=vel[2], speed_mps=speed, direction_rad=direction,
                            direction_class=cls, orientation_index=k_or if config.orientations == "all" else cls,
                            tower_x=ln["tx_x"], tower_y=ln["tx_y"], tower_z=ln["tx_z"],
                            azimuth_deg=float(az[cell] or 0.0), frequency_hz=ln["frequency_hz"],
                            num_paths=len(ln["tau_s"]), tb_scale_db=scale_db, crop_energy_fraction=frac,
                            crop_ok=ok, snr_db=snr, noise_power_db=noise_db)
                for k, v in vals.items():
                    out[k].append(v)
                tb_rows.append(tb)
        arrays = []
        for f in schema:
            if f.name == "tb_power":
                shape = (0, config.num_rows, config.num_cols, config.cp_length, config.doppler_bins)
                dtype = np.float32 if config.storage == "float32" else np.float16
                arrays.append(tensor_array(np.stack(tb_rows) if tb_rows else np.zeros(shape, dtype), f))
            else:
                arrays.append(pa.array(out[f.name], type=f.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    @staticmethod
    def _motion(r: dict, config: TBFingerprintConfig, seed: int) -> tuple[np.ndarray, float, float]:
        """Velocity (m/s), speed (m/s), direction (radians from +x) of a receiver."""
        v_cfg = config.speed_kmh / 3.6
        vx, vy = float(r.get("vx") or 0.0), float(r.get("vy") or 0.0)
        if r.get("kind") == "route" and math.hypot(vx, vy) > 0:
            direction = math.atan2(vy, vx)
            speed = math.hypot(vx, vy) if config.use_receiver_speed else v_cfg
        else:
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(r["rx_id"]) & 0xFFFFFFFFFFFF, 0x7B])
            w = 2 * np.pi / config.num_directions
            if config.random_direction == "class_centres":
                direction = float(rng.integers(config.num_directions) * w)
            else:
                direction = float(rng.uniform(0, 2 * np.pi))
            speed = v_cfg
        vel = np.array([speed * math.cos(direction), speed * math.sin(direction), 0.0])
        return vel, speed, direction

    @staticmethod
    def _link_tb(ln: dict, azimuth_deg: float, velocities: list[np.ndarray], config: TBFingerprintConfig,
                 dbins: np.ndarray, seed: int) -> list[tuple[np.ndarray, float, float, float, float]]:
        """Per velocity: the stored TB power tensor of one link, its scale (dB), crop energy share, SNR, noise (dB).

        The array and delay factors are shared by all velocities; only the symbol (Doppler) factor changes.
        """
        gain = np.asarray(ln["a_re"], np.float64) + 1j * np.asarray(ln["a_im"], np.float64)
        tau = np.asarray(ln["tau_s"], np.float64)
        k_t = _r_hat(np.asarray(ln["theta_t"], np.float64), np.asarray(ln["phi_t"], np.float64))
        k_r = _r_hat(np.asarray(ln["theta_r"], np.float64), np.asarray(ln["phi_r"], np.float64))
        lam = SPEED_OF_LIGHT / float(ln["frequency_hz"])
        _, col_ax, row_ax = array_axes(azimuth_deg)
        base = path_terms(
            k_t @ row_ax, k_t @ col_ax, tau, np.zeros(len(tau)),
            num_rows=config.num_rows, num_cols=config.num_cols, spacing_wavelengths=config.spacing_wavelengths,
            num_subcarriers=config.num_subcarriers, subcarrier_spacing_hz=config.subcarrier_spacing_hz,
            num_symbols=config.num_symbols, symbol_duration_s=config.symbol_duration_s,
        )
        t = np.arange(config.num_symbols)
        n_entries = config.num_rows * config.num_cols * config.num_subcarriers * config.num_symbols
        out = []
        factors = (expected_angle_delay_factors(gain, base, keep_taps=config.cp_length)
                   if config.power == "expected" else None)
        for vel in velocities:
            fd = (k_r @ vel) / lam
            terms = PathTerms(base.rows, base.cols, base.freq,
                              np.exp(2j * np.pi * config.symbol_duration_s * np.outer(fd, t)))
            if factors is not None:  # power == "expected": the angle and delay factors are shared by all motions
                p = expected_from_factors(*factors, terms.time, dbins, config.num_rows, config.num_cols)
                total = float(np.sum(np.abs(gain) ** 2)) * n_entries  # E||H||²: unit-modulus steering factors
                crop = float(p.sum())
            else:
                tb = triple_beam_from_paths(gain, terms, keep_taps=config.cp_length, doppler_bins=dbins)
                total = sft_energy(gain, terms)
                crop = float(np.sum(np.abs(tb) ** 2))
            frac = crop / total if total > 0 else 0.0
            snr, noise_db = float("nan"), float("-inf")
            if config.snr_db is not None and total > 0:
                # AWGN of variance σ² on every SFT entry maps to AWGN of σ² on every TB bin (unitary transform)
                sigma2 = total / n_entries / 10 ** (config.snr_db / 10)
                if config.power == "expected":
                    p = p + sigma2
                else:
                    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(ln["link_id"]), 0xAB,
                                                 int(1e6 * (math.atan2(vel[1], vel[0]) % (2 * np.pi)))])
                    tb = tb + rng.standard_normal((*tb.shape, 2)) @ np.array([1.0, 1j]) * math.sqrt(sigma2 / 2)
                snr, noise_db = float(config.snr_db), 10 * math.log10(sigma2)
            if config.power == "instantaneous":
                p = np.abs(tb) ** 2
            # angle axes and Doppler ascending in physical value (fftshift on the array axes; bins already ordered)
            p = np.fft.fftshift(p, axes=(0, 1))
            peak = float(p.max())
            if peak <= 0:
                empty = np.full(p.shape, -np.inf if config.storage == "db" else 0.0)
                out.append((empty.astype(np.float16 if config.storage == "db" else np.float32), float("-inf"),
                            frac, snr, noise_db))
                continue
            rel = p / peak
            if config.storage == "db":
                stored = (10 * np.log10(np.maximum(rel, 1e-30))).astype(np.float16)
            else:
                stored = rel.astype(np.float32)
            out.append((stored, 10 * math.log10(peak), frac, snr, noise_db))
        return out


VIEW = register_view(TBFingerprintView())


# ----------------------------------------------------------------------------------------------- bench


def _random_paths(rng: np.random.Generator, p: int, config: TBFingerprintConfig, dtype: type = np.complex64):
    gain = (rng.standard_normal(p) + 1j * rng.standard_normal(p)) * 1e-5
    u_row = rng.uniform(-1, 1, p)
    u_col = rng.uniform(-1, 1, p) * np.sqrt(1 - u_row**2)
    tau = rng.uniform(0.2e-6, 0.9 * config.cp_length * config.tap_s, p)
    fd = rng.uniform(-1, 1, p) * (config.speed_kmh / 3.6) * 3.5e9 / SPEED_OF_LIGHT
    terms = path_terms(u_row, u_col, tau, fd, num_rows=config.num_rows, num_cols=config.num_cols,
                       spacing_wavelengths=config.spacing_wavelengths, num_subcarriers=config.num_subcarriers,
                       subcarrier_spacing_hz=config.subcarrier_spacing_hz, num_symbols=config.num_symbols,
                       symbol_duration_s=config.symbol_duration_s, dtype=dtype)
    return gain.astype(dtype), terms


@register_bench("tb_fingerprint")
def bench(quick: bool = False) -> list[BenchResult]:
    """Build-then-FFT (SFT tensor, then :func:`triple_beam`) vs the view's per-path transforms, same run.

    LOA-Net sizes (8 x 16 antennas, 2048 subcarriers, 8 x 14 symbols, CP 144) unless ``quick``; 40 paths
    per user (a typical Paris link), complex64 throughout (the SFT tensor is then 235 MB). Both keep the CP taps; "view_full_doppler" keeps every Doppler bin,
    "view" the stored Doppler crop. Errors are max |difference| / max |TB| on the common bins.
    """
    cfg = TBFingerprintConfig() if not quick else TBFingerprintConfig(num_rows=4, num_cols=8, num_subcarriers=256,
                                                                      cp_length=18, num_slots=2)
    users, p = (2, 40) if quick else (3, 40)
    rng = np.random.default_rng(1)
    cases = [_random_paths(rng, p, cfg) for _ in range(users)]
    dbins = cfg.doppler_bin_indices()

    def timed(fn):
        out, best = None, float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            out = [fn(g, t) for g, t in cases]
            best = min(best, time.perf_counter() - t0)
        return out, best / users

    ref, t_ref = timed(lambda g, t: triple_beam(build_sft(g, t), keep_taps=cfg.cp_length))
    full, t_full = timed(lambda g, t: triple_beam_from_paths(g, t, keep_taps=cfg.cp_length))
    crop, t_crop = timed(lambda g, t: triple_beam_from_paths(g, t, keep_taps=cfg.cp_length, doppler_bins=dbins))
    err_full = max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for a, b in zip(ref, full, strict=True))
    err_crop = max(float(np.max(np.abs(a[..., dbins] - b)) / np.max(np.abs(a))) for a, b in zip(ref, crop, strict=True))
    sizes = {"antennas": cfg.num_rows * cfg.num_cols, "subcarriers": cfg.num_subcarriers,
             "symbols": cfg.num_symbols, "cp_taps": cfg.cp_length, "paths": p, "users": users}
    return [
        BenchResult("tb_fingerprint/build_then_fft", 1 / t_ref, "users", t_ref, dict(sizes)),
        BenchResult("tb_fingerprint/view_full_doppler", 1 / t_full, "users", t_full,
                    {**sizes, "speedup_vs_build_then_fft": t_ref / t_full, "max_rel_error": err_full}),
        BenchResult("tb_fingerprint/view", 1 / t_crop, "users", t_crop,
                    {**sizes, "doppler_bins": cfg.doppler_bins, "speedup_vs_build_then_fft": t_ref / t_crop,
                     "max_rel_error": err_crop}),
    ]
