"""Bistatic-echo view (networked device-free sensing, seed ``002_*.txt``): site-to-site delay-domain channels.

Every site (one radio per mast) transmits and receives. K passive targets (3GPP TR 38.901 §7.9 sensing
targets: pedestrians and cars) stand at random street-level points outside buildings, in several independent
placements (snapshots). Sionna RT traces, on the build's own scene, the site-to-site paths (``PathSolver``,
the targets are absorbers there) and the target echoes (``RCSSolver`` with ``TR38901SensingTarget``: the
RCS/CPM of TR 38.901 §7.9.2). For each snapshot and ordered site pair (n -> m, n = m included) the view
stores the L-tap delay-domain channel at the OFDM sampling rate as site m's clock sees it: the sites carry
integer sampling-timing offsets (STO) whose pair differences are bounded as the seed's §V-A bounds the pair
STO (|δ_mn| <= 10 samples), so a path of delay τ lands at τ·f_s + δ_mn samples (seed eqs. 3-5), plus thermal
noise from the link budget.

Window: L taps with L + max STO <= N_CP (seed §III, the condition under eq. 8: all ISI inside the CP); the
default L is the largest such window, and a build whose largest site-to-site distance does not fit in it is
refused. Two channel models (``channel_model``): ``on_grid`` is the seed's sparse whole-tap model (eq. 4,
full band: each path on the tap nearest its delay) and ``band_limited`` the physics of the N_a active
subcarriers (seed eq. 11: leakage into neighbouring taps; the tap kernel ships with the table as the
dictionary of a leakage-aware estimator, and the noise is drawn on the active subcarriers, so taps are
correlated). Ground truth per path: type I (site-to-site line of sight), II (site -> target -> site, both
legs line of sight) or III (anything else), the target id, the true delay, the gain, its tap and whether it
lies in the window or aliases into it; per row the site-to-site line of sight and, per target, the sites
that see it (buildings-only Mitsuba ray tests).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from twin.config import positive
from twin.constants import BOLTZMANN, SPEED_OF_LIGHT
from twin.datasets.bench import BenchResult, register_bench
from twin.datasets.registry import ViewInputs, register_view
from twin.errors import TwinInputError
from twin.schema import META_VIEW, tensor_array, tensor_field

PATH_TYPE_I, PATH_TYPE_II, PATH_TYPE_III = 1, 2, 3
_SENSING = 16  # sionna.rt.constants.InteractionType.SENSING


@dataclass(frozen=True)
class Numerology:
    """OFDM numerology: carrier (Hz), subcarrier spacing (Hz), FFT size, active subcarriers, CP (samples)."""

    carrier_frequency_hz: float
    subcarrier_spacing_hz: float
    fft_size: int
    num_subcarriers: int
    cp_length: int

    @property
    def sampling_rate_hz(self) -> float:
        return self.fft_size * self.subcarrier_spacing_hz


#: 5G NR numerologies. FR1: 100 MHz at 30 kHz, 273 PRB (TS 38.101-1 Table 5.3.2-1), 3.5 GHz (n78), FFT 4096
#: -> 122.88 MS/s, normal CP 288 samples (TS 38.211 §5.3.1). FR2: 400 MHz at 120 kHz, 264 PRB
#: (TS 38.101-2 Table 5.3.2-1), 28 GHz (n257), FFT 4096 -> 491.52 MS/s (the seed's mmWave 400 MHz case).
NUMEROLOGIES: dict[str, Numerology] = {
    "nr_fr1_100mhz": Numerology(3.5e9, 30e3, 4096, 3276, 288),
    "nr_fr2_400mhz": Numerology(28e9, 120e3, 4096, 3168, 288),
}

#: Sensing-target kinds -> (TR 38.901 object type, RCS model); single scattering point each, so one target
#: is one echo point (Table 7.9.2.1-1 human model 1, Table 7.9.2.1-4 vehicle model 2).
TARGET_MODELS: dict[str, tuple[str, int]] = {
    "human": ("human", 1),
    "vehicle": ("vehicle-single-sp", 2),
}


@dataclass(frozen=True)
class BistaticEchoConfig:
    """Bistatic-echo settings; every default is documented in ``datasets/bistatic_echo_and_tb_fingerprint.md``.

    ``numerology``: key of :data:`NUMEROLOGIES`. ``num_taps``: L delay taps kept (samples at f_s); None =
    N_CP - ``max_sto_samples``, the largest window with L + max STO <= N_CP (seed §III; 278 taps = 678 m of
    path at FR1, 170 m at FR2); a larger value is refused. ``channel_model``: ``on_grid`` (seed eq. 4: each
    path on its nearest tap, full band, i.i.d. tap noise) or ``band_limited`` (seed eq. 11 over the active
    subcarriers, noise drawn there). ``num_targets``: K targets per snapshot (seed §V: 2-7), kinds cycling
    through ``target_kinds``. ``num_snapshots``: independent placements per build (32: enough for error
    probabilities of a few per cent; ~10 s each on a 2-core CPU at 6 sites). ``max_sto_samples``: bound on
    the pair STO |o_m - o_n| (seed §V-A: 10). ``tx_power_dbm``:
    per site, None = the strongest of its cells. ``noise_figure_db``: receiving site (5 dB, TS 38.104 class
    wide-area BS). ``max_depth``: interactions per path, the scattering on a target included. ``sites``: the
    site ids to use (a layout such as the seed's M base stations placed among the build's towers); empty =
    every site of the towers table. ``min_los_sites``: placement rule, a target is only placed where at least
    this many sites see its scattering point (buildings-only ray tests) with their own echo of it inside the
    window (the seed's footnote 1 assumes every target is detected by >= 3 base stations); 0 = anywhere on
    the street.
    """

    numerology: Literal["nr_fr1_100mhz", "nr_fr2_400mhz"] = "nr_fr1_100mhz"
    num_taps: int | None = None
    channel_model: Literal["on_grid", "band_limited"] = "band_limited"
    num_targets: int = 5
    num_snapshots: int = 32
    target_kinds: tuple[str, ...] = ("human", "vehicle")
    max_sto_samples: int = 10
    tx_power_dbm: float | None = None
    noise_figure_db: float = 5.0
    temperature_k: float = 290.0
    max_depth: int = 2
    samples_per_src: int = 100_000
    samples_per_sp: int = 100_000
    target_margin_m: float = 100.0
    target_clearance_m: float = 1.0
    ground_tolerance_m: float = 0.5
    store_clean: bool = True
    sites: tuple[str, ...] = ()
    min_los_sites: int = 0

    def __post_init__(self) -> None:
        if self.numerology not in NUMEROLOGIES:
            raise ValueError(f"numerology must be one of {', '.join(NUMEROLOGIES)}, got {self.numerology!r}")
        if self.channel_model not in ("on_grid", "band_limited"):
            raise ValueError(f"channel_model must be on_grid or band_limited, got {self.channel_model!r}")
        if self.num_taps is not None:
            positive("num_taps", self.num_taps)
        for n in ("num_snapshots", "max_depth", "samples_per_src", "samples_per_sp", "temperature_k"):
            positive(n, getattr(self, n))
        for n in ("num_targets", "max_sto_samples", "target_margin_m", "target_clearance_m", "ground_tolerance_m",
                  "min_los_sites"):
            positive(n, getattr(self, n), allow_zero=True)
        cp = NUMEROLOGIES[self.numerology].cp_length
        if self.max_sto_samples >= cp:
            raise ValueError(f"max_sto_samples ({self.max_sto_samples}) must be < the CP ({cp} samples)")
        if self.num_taps is not None and self.num_taps + self.max_sto_samples > cp:
            raise ValueError(f"num_taps ({self.num_taps}) + max_sto_samples ({self.max_sto_samples}) must fit in "
                             f"the CP ({cp} samples at {self.numerology}; seed §III: L + max STO <= N_CP)")
        bad = [k for k in self.target_kinds if k not in TARGET_MODELS]
        if bad or not self.target_kinds:
            raise ValueError(f"target_kinds must be a non-empty list of {', '.join(TARGET_MODELS)}, got "
                             f"{list(self.target_kinds)!r}")

    @property
    def ofdm(self) -> Numerology:
        return NUMEROLOGIES[self.numerology]

    @property
    def taps(self) -> int:
        """L, the window in samples (``num_taps`` or N_CP - max STO)."""
        return self.num_taps if self.num_taps is not None else self.ofdm.cp_length - self.max_sto_samples

    @property
    def window_m(self) -> float:
        """Path length (m) that the window holds: L / f_s · c."""
        return self.taps / self.ofdm.sampling_rate_hz * SPEED_OF_LIGHT


# ------------------------------------------------------------------------------------------ geometry


@dataclass(frozen=True)
class Site:
    site_id: str
    position: tuple[float, float, float]
    tx_power_dbm: float


def sites_from_towers(towers: pa.Table, default_power_dbm: float | None = None) -> list[Site]:
    """One radio per site (mast): the first cell's position, the strongest cell's power (dBm)."""
    need = ("site_id", "x", "y", "z", "tx_power_dbm")
    missing = [c for c in need if c not in towers.column_names]
    if missing:
        raise TwinInputError(f"the towers table lacks column(s) {', '.join(missing)}", file="towers.parquet",
                             field=missing[0], fix="rebuild it with `twin ingest`")
    by: dict[str, dict] = {}
    for i, r in enumerate(towers.to_pylist()):
        for f in ("x", "y", "z"):
            v = r[f]
            if v is None or not math.isfinite(v):
                raise TwinInputError(f"tower has no finite {f}", file="towers.parquet", row=r.get("cell_id", i + 1),
                                     field=f, fix="give the tower a position (re-run ingest)")
        s = by.setdefault(str(r["site_id"]), {"pos": (r["x"], r["y"], r["z"]), "p": -math.inf})
        if r["tx_power_dbm"] is not None:
            s["p"] = max(s["p"], float(r["tx_power_dbm"]))
    out = []
    for sid in sorted(by):
        p = by[sid]["p"] if default_power_dbm is None else default_power_dbm
        out.append(Site(sid, tuple(float(v) for v in by[sid]["pos"]), p if math.isfinite(p) else 46.0))
    return out


def line_of_sight(mi_scene, p, q) -> np.ndarray:
    """Whether the segments p[i] -> q[i] (metres, shape (N, 3)) cross no surface of ``mi_scene``."""
    import mitsuba as mi

    p = np.atleast_2d(np.asarray(p, np.float64))
    q = np.atleast_2d(np.asarray(q, np.float64))
    d = q - p
    dist = np.linalg.norm(d, axis=1)
    u = d / np.maximum(dist, 1e-12)[:, None]
    ray = mi.Ray3f(o=mi.Point3f(*(p.T.astype(np.float32))), d=mi.Vector3f(*(u.T.astype(np.float32))))
    ray.maxt = mi.Float((dist * (1 - 1e-5) - 1e-3).astype(np.float32))
    return ~np.asarray(mi_scene.ray_test(ray).numpy(), bool)


def _down_hits(mi_scene, xy: np.ndarray, top: float) -> tuple[np.ndarray, np.ndarray]:
    import mitsuba as mi

    n = len(xy)
    ray = mi.Ray3f(o=mi.Point3f(xy[:, 0].astype(np.float32), xy[:, 1].astype(np.float32), np.full(n, top, np.float32)),
                   d=mi.Vector3f(np.zeros(n, np.float32), np.zeros(n, np.float32), -np.ones(n, np.float32)))
    si = mi_scene.ray_intersect(ray)
    return np.asarray(si.is_valid().numpy(), bool), np.asarray(si.p.z.numpy(), np.float64)


def _clear_around(mi_scene, pts: np.ndarray, radius: float) -> np.ndarray:
    """No surface within ``radius`` (m) of the vertical axis at ``pts`` (8 horizontal rays at 2 heights)."""
    ok = np.ones(len(pts), bool)
    for dz in (0.3, 1.2):
        for a in np.arange(8) * np.pi / 4:
            o = pts + np.array([0.0, 0.0, dz])
            q = o + radius * np.array([math.cos(a), math.sin(a), 0.0])
            ok &= line_of_sight(mi_scene, o, q)
    return ok


def _target_size(kind: str) -> tuple[float, float, float]:
    from sionna.rt.rcs.tr38901.parameters import get_target_parameters

    obj, model = TARGET_MODELS[kind]
    return tuple(float(v) for v in get_target_parameters(obj, model).dimensions)


def place_targets(mi_scene, sites: list[Site], kinds: list[str], rng: np.random.Generator,
                  config: BistaticEchoConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Random street-level target centres (K, 3) and yaws (K,), radians, outside buildings; and the ground z.

    Candidates are drawn in the sites' bounding box grown by ``target_margin_m`` (clipped to the scene);
    a candidate is kept when a downward ray meets the ground (within ``ground_tolerance_m`` of the scene's
    ground level, the 1st percentile of hit heights), no surface lies within the target's half-diagonal +
    ``target_clearance_m`` of it, and it keeps that distance from the other targets and the sites.
    """
    bb = mi_scene.bbox()
    lo, hi = np.array(bb.min, np.float64), np.array(bb.max, np.float64)
    sp = np.array([s.position for s in sites], np.float64)
    x0, y0 = max(lo[0], sp[:, 0].min() - config.target_margin_m), max(lo[1], sp[:, 1].min() - config.target_margin_m)
    x1, y1 = min(hi[0], sp[:, 0].max() + config.target_margin_m), min(hi[1], sp[:, 1].max() + config.target_margin_m)
    if not (x1 > x0 and y1 > y0):
        raise TwinInputError("the towers lie outside the scene", file="towers.parquet", field="x",
                             fix="use towers inside the build area")
    top = float(hi[2]) + 10.0
    probe = np.column_stack([rng.uniform(x0, x1, 1024), rng.uniform(y0, y1, 1024)])
    v, z = _down_hits(mi_scene, probe, top)
    if not v.any():
        raise TwinInputError("no ground found under the sites' area", file="scene.xml", field="ground",
                             fix="rebuild the scene with a ground plane")
    ground = float(np.percentile(z[v], 1))
    if config.min_los_sites > len(sites):
        raise TwinInputError(f"min_los_sites = {config.min_los_sites} but the layout has {len(sites)} sites",
                             file="towers.parquet", field="min_los_sites",
                             fix="lower min_los_sites or use more sites in the bistatic_echo view config")
    reach_sto_m = config.max_sto_samples / config.ofdm.sampling_rate_hz * SPEED_OF_LIGHT
    centres: list[np.ndarray] = []
    yaws: list[float] = []
    for kind in kinds:
        length, width, height = _target_size(kind)
        radius = 0.5 * math.hypot(length, width)
        found = False
        for _ in range(50):
            cand = np.column_stack([rng.uniform(x0, x1, 256), rng.uniform(y0, y1, 256)])
            v, z = _down_hits(mi_scene, cand, top)
            ok = v & (z <= ground + config.ground_tolerance_m)
            if not ok.any():
                continue
            pts = np.column_stack([cand[ok], np.full(ok.sum(), ground)])
            far = np.ones(len(pts), bool)
            for c in centres:
                far &= np.hypot(*(pts[:, :2] - c[:2]).T) > 2 * radius + config.target_clearance_m + 5.0
            far &= np.min(np.hypot(pts[:, None, 0] - sp[None, :, 0], pts[:, None, 1] - sp[None, :, 1]), axis=1) > radius + 2
            pts = pts[far]
            if len(pts) == 0:
                continue
            pts = pts[:64]
            ok = _clear_around(mi_scene, pts, radius + config.target_clearance_m)
            if config.min_los_sites > 0 and ok.any():
                yaw = float(rng.uniform(0, 2 * np.pi))
                # the scattering point this target would have (centre + rotated TR 38.901 offset), seen by >= N sites
                spt = pts[ok] + np.array([0.0, 0.0, height / 2]) + _rot_z(yaw) @ _scattering_point_lcs(kind)
                n = len(spt)
                vis = line_of_sight(mi_scene, np.repeat(sp, n, axis=0), np.tile(spt, (len(sp), 1))).reshape(len(sp), n)
                # and the site's own echo (2 d) fits in the window with the largest STO, so the site can range it
                vis &= 2 * np.linalg.norm(sp[:, None] - spt[None], axis=-1) < config.window_m - reach_sto_m
                ok[np.nonzero(ok)[0]] = vis.sum(axis=0) >= config.min_los_sites
            if ok.any():
                c = pts[np.argmax(ok)]
                centres.append(np.array([c[0], c[1], ground + height / 2]))
                yaws.append(yaw if config.min_los_sites > 0 else float(rng.uniform(0, 2 * np.pi)))
                found = True
                break
        if not found:
            seen = f" seen by >= {config.min_los_sites} sites" if config.min_los_sites else ""
            raise TwinInputError(f"found no free street-level spot{seen} for a {kind} target near the towers",
                                 file="scene.xml", field="min_los_sites" if seen else "num_targets",
                                 fix="lower num_targets or min_los_sites, or raise target_margin_m in the "
                                     "bistatic_echo view config")
    return np.array(centres).reshape(-1, 3), np.array(yaws), ground


# ---------------------------------------------------------------------------------------- channels


def delay_taps(a: np.ndarray, delay_samples: np.ndarray, ofdm: Numerology, num_taps: int) -> np.ndarray:
    """L-tap channel h[l] = (1/N_a) Σ_k H[k] e^{j2πkl/N_fft} over the active subcarriers (seed eq. 11).

    ``H[k] = Σ_p a_p e^{-j2π k d_p / N_fft}``, k = -⌊N_a/2⌋ .. N_a-1-⌊N_a/2⌋, ``delay_samples`` d_p = τ_p·f_s
    (may include an STO). Summed in closed form (Dirichlet kernel): Σ_k e^{jθk} = e^{jθ(k0+(N_a-1)/2)}
    sin(N_a θ/2)/sin(θ/2), θ = 2π(l - d_p)/N_fft. An integer delay d gives h[d] = a exactly; taps are
    circular modulo N_fft.
    """
    if len(a) == 0:
        return np.zeros(num_taps, np.complex128)
    return kernel_matrix(ofdm, num_taps, delay_samples) @ np.asarray(a, np.complex128)


def kernel_matrix(ofdm: Numerology, num_taps: int, delay_samples: np.ndarray) -> np.ndarray:
    """(L, P): tap l's response to a unit path of delay d_p samples, (1/N_a) Σ_k e^{j2πk(l - d_p)/N_fft}.

    The columns are the atoms of a leakage-aware (off-grid) dictionary; see :func:`delay_taps`.
    """
    n, na = ofdm.fft_size, ofdm.num_subcarriers
    k0 = -(na // 2)
    theta = 2 * np.pi * (np.arange(num_taps)[:, None] - np.asarray(delay_samples, np.float64)[None, :]) / n
    half = theta / 2
    s = np.sin(half)
    near = np.abs(s) < 1e-9
    ratio = np.where(near, na * np.cos(na * half) / np.where(near, np.cos(half), 1.0),
                     np.sin(na * half) / np.where(near, 1.0, s))
    return np.exp(1j * theta * (k0 + (na - 1) / 2)) * ratio / na


def noise_variance_per_tap(tx_power_dbm: float, config: BistaticEchoConfig) -> float:
    """Tap-domain noise variance of the channel estimate (linear, relative to unit channel gain).

    Per subcarrier the estimate's noise variance is N0·Δf·NF / (P_tx/N_a) (thermal kTB, TS 38.104 NF);
    the 1/N_a-normalised IDFT divides it by N_a: σ²_tap = k T NF Δf / P_tx = kTB·NF/(P_tx N_a) with B = N_a Δf.
    """
    o = config.ofdm
    p_w = 10 ** ((tx_power_dbm - 30) / 10)
    nf = 10 ** (config.noise_figure_db / 10)
    return BOLTZMANN * config.temperature_k * nf * o.subcarrier_spacing_hz / p_w


def on_grid_taps(a: np.ndarray, delay_samples: np.ndarray, ofdm: Numerology, num_taps: int) -> np.ndarray:
    """The seed's sparse whole-tap channel (eq. 4 with eqs. 3-5): h[l] = Σ_{p: round(d_p) ≡ l mod N_fft} a_p.

    Full band (all N_fft subcarriers, no guard band): a whole-sample delay excites one tap only. Each path's
    delay d_p = τ_p·f_s + δ (samples) is rounded to the nearest sample (the seed's eq. 4 writes the floor of
    the site-to-site delay; the nearest tap halves the worst-case range error to c / (2 f_s)). Circular
    modulo N_fft, as the DFT makes it; taps >= ``num_taps`` are dropped.
    """
    h = np.zeros(num_taps, np.complex128)
    if len(a) == 0:
        return h
    idx = np.rint(np.asarray(delay_samples, np.float64)).astype(np.int64) % ofdm.fft_size
    keep = idx < num_taps
    np.add.at(h, idx[keep], np.asarray(a, np.complex128)[keep])
    return h


def tap_kernel(ofdm: Numerology, num_taps: int, channel_model: str = "band_limited") -> np.ndarray:
    """g[n], n = -(L-1) .. L-1 (index n + L - 1): tap l's response to a unit path on tap l - n.

    Band-limited: g[n] = (1/N_a) Σ_k e^{j2πkn/N_fft} over the active subcarriers (the Dirichlet kernel of
    :func:`delay_taps`), so h = G x with G[l, l'] = g[l - l'] for a channel x on whole taps: the dictionary of
    a leakage-aware estimator. On-grid: g = δ[n].
    """
    n = np.arange(-(num_taps - 1), num_taps)
    if channel_model == "on_grid":
        return (n == 0).astype(np.complex128)
    na, nf = ofdm.num_subcarriers, ofdm.fft_size
    x = np.zeros(nf, np.complex128)
    x[np.arange(-(na // 2), na - na // 2) % nf] = 1.0
    return (np.fft.ifft(x) * (nf / na))[n % nf]


def tap_dictionary(kernel: np.ndarray) -> np.ndarray:
    """The L x L Toeplitz matrix G[l, l'] = g[l - l'] of a kernel from :func:`tap_kernel`."""
    L = (len(kernel) + 1) // 2
    i = np.arange(L)
    return kernel[(i[:, None] - i[None, :]) + L - 1]


def channel_taps(a: np.ndarray, delay_samples: np.ndarray, config: BistaticEchoConfig) -> np.ndarray:
    """The noiseless L-tap channel of ``config.channel_model`` (see :func:`on_grid_taps`, :func:`delay_taps`)."""
    if config.channel_model == "on_grid":
        return on_grid_taps(a, delay_samples, config.ofdm, config.taps)
    return delay_taps(a, delay_samples, config.ofdm, config.taps)


def draw_noise(rng: np.random.Generator, noise_var: float, config: BistaticEchoConfig, size: int = 1) -> np.ndarray:
    """Noise of the channel estimate, (size, L) complex, variance ``noise_var`` per tap.

    On-grid (full band): i.i.d. CN(0, σ²) taps. Band-limited: W[k] ~ CN(0, N_a σ²) on each active subcarrier,
    w[l] = (1/N_a) Σ_k W[k] e^{j2πkl/N_fft}: same per-tap variance, correlated taps (the kernel's shape).
    """
    L = config.taps
    if config.channel_model == "on_grid":
        return (rng.standard_normal((size, L)) + 1j * rng.standard_normal((size, L))) * math.sqrt(noise_var / 2)
    o = config.ofdm
    na, n = o.num_subcarriers, o.fft_size
    k = np.arange(-(na // 2), na - na // 2) % n
    w = np.zeros((size, n), np.complex128)
    w[:, k] = (rng.standard_normal((size, na)) + 1j * rng.standard_normal((size, na))) * math.sqrt(na * noise_var / 2)
    return (np.fft.ifft(w, axis=1) * (n / na))[:, :L]


def path_window_flags(delay_samples: np.ndarray, config: BistaticEchoConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per path: tap (nearest sample, -1 when outside), ``in_window`` (0 <= round(d) < L) and ``aliased``
    (outside the window, but its delay modulo N_fft lands inside it: the DFT wraps it onto a wrong tap)."""
    r = np.rint(np.asarray(delay_samples, np.float64)).astype(np.int64)
    L, n = config.taps, config.ofdm.fft_size
    inw = (r >= 0) & (r < L)
    aliased = ~inw & (r % n < L)
    return np.where(inw, r, -1), inw, aliased


def draw_sto(rng: np.random.Generator, num_sites: int, max_pair: int) -> np.ndarray:
    """Per-site integer STOs o_n whose pair differences o_m - o_n all lie in [-max_pair, max_pair].

    The seed (§V-A) draws the pair STO in [-10, 10]; clock offsets are per site, so a base offset b is drawn
    in [-max_pair, 0] and o_n = b + U{0..max_pair}: any two differ by at most ``max_pair``.
    """
    base = int(rng.integers(-max_pair, 1))
    return base + rng.integers(0, max_pair + 1, num_sites)


def check_window(sites: list[Site], config: BistaticEchoConfig) -> float:
    """The largest site-to-site distance (m); TwinInputError when its type I path plus the STO misses the window."""
    if len(sites) < 2:
        return 0.0
    p = np.array([s.position for s in sites], np.float64)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    dmax = float(d[i, j])
    need = dmax / SPEED_OF_LIGHT * config.ofdm.sampling_rate_hz + config.max_sto_samples
    if need >= config.taps:
        raise TwinInputError(
            f"sites {sites[i].site_id} and {sites[j].site_id} are {dmax:.0f} m apart: their line-of-sight path "
            f"(+ {config.max_sto_samples} samples of STO) needs {need:.0f} taps, but the window holds "
            f"{config.taps} taps = {config.window_m:.0f} m at {config.numerology} (CP {config.ofdm.cp_length} samples)",
            file="towers.parquet", field="numerology",
            fix="use sites closer together, or the FR1 numerology (its CP covers a longer path)")
    return dmax


def classify(inter: list[int], objs: list[int], same_site: bool) -> tuple[int, int]:
    """(type, target id) of a path from its interaction codes and object ids (Sionna order, zeros ignored).

    Type I: no interaction and two distinct sites. Type II: exactly one interaction, the scattering on
    target t (both legs unobstructed). Type III: anything else; keeps the target id when a target scatters.
    """
    codes = [int(c) for c in inter if int(c) != 0]
    target = -1
    for c, o in zip(inter, objs, strict=True):
        if int(c) == _SENSING:
            target = int(o)
    if not codes:
        return (PATH_TYPE_I if not same_site else PATH_TYPE_III), -1
    if codes == [_SENSING]:
        return PATH_TYPE_II, target
    return PATH_TYPE_III, target


def _extract(paths, with_objects: bool):
    """Valid paths per (rx, tx): tau (s), a, interactions (depth lists), objects, vertices."""
    tau = np.asarray(paths.tau.numpy(), np.float64)
    are, aim = (np.asarray(x.numpy()) for x in paths.a)
    a = (are + 1j * aim)[:, 0, :, 0, :]
    valid = np.asarray(paths.valid.numpy(), bool)
    inter = np.asarray(paths.interactions.numpy())
    objs = np.asarray(paths.objects.numpy()) if with_objects else np.zeros_like(inter)
    verts = np.asarray(paths.vertices.numpy(), np.float64)
    return tau, a, valid, inter, objs, verts


# --------------------------------------------------------------------------------------------- view


class BistaticEchoView:
    """Registered view "bistatic_echo": rows = (snapshot, tx site, rx site); see the module docstring."""

    name = "bistatic_echo"
    config_cls = BistaticEchoConfig
    granularity = "per_build"
    reads_cir = False  # traces the scene itself: the pipeline hands it no CIR shard

    def schema(self, config: BistaticEchoConfig) -> pa.Schema:
        o = config.ofdm
        L = config.taps
        g = tap_kernel(o, L, config.channel_model)
        extra = {"sampling_rate_hz": o.sampling_rate_hz, "fft_size": o.fft_size,
                 "num_subcarriers": o.num_subcarriers, "carrier_frequency_hz": o.carrier_frequency_hz,
                 "cp_length": o.cp_length, "max_sto_samples": config.max_sto_samples,
                 "channel_model": config.channel_model,
                 "tap_0": "receiving site's clock: a path of delay tau sits at tau*f_s + sto_diff_samples",
                 "kernel_lags": [-(L - 1), L - 1],
                 "kernel_re": [float(f"{v:.9g}") for v in g.real], "kernel_im": [float(f"{v:.9g}") for v in g.imag]}
        noise = ("i.i.d. CN(0, noise_var) per tap" if config.channel_model == "on_grid" else
                 "CN(0, N_a noise_var) on each active subcarrier: noise_var per tap, taps correlated by the kernel")
        h = tensor_field("h", (L, 2), ("delay", "complex"), units="linear channel gain (re, im)",
                         extra={**extra, "noise": noise})
        fl = pa.list_(pa.float64())
        fields = [
            pa.field("snapshot", pa.int32()),
            pa.field("tx_site", pa.string()), pa.field("rx_site", pa.string()),
            pa.field("tx_x", pa.float64()), pa.field("tx_y", pa.float64()), pa.field("tx_z", pa.float64()),
            pa.field("rx_x", pa.float64()), pa.field("rx_y", pa.float64()), pa.field("rx_z", pa.float64()),
            pa.field("sto_tx_samples", pa.int32()), pa.field("sto_rx_samples", pa.int32()),
            pa.field("sto_diff_samples", pa.int32()),  # rx - tx: what the pair sees
            pa.field("los_delay_s", pa.float64()),  # site distance / c
            pa.field("site_los", pa.bool_()),  # no building between the two sites (ray test; n = m: True)
            pa.field("tx_power_dbm", pa.float64()),
            pa.field("noise_var", pa.float64()),
            h,
        ]
        if config.store_clean:
            fields.append(tensor_field("h_clean", (L, 2), ("delay", "complex"),
                                       units="linear channel gain (re, im), noiseless", extra=extra))
        fields += [
            pa.field("path_type", pa.list_(pa.uint8())),  # 1: I, 2: II, 3: III
            pa.field("path_target", pa.list_(pa.int32())),  # target id, -1 none
            pa.field("path_tau_s", fl),  # true propagation delay
            pa.field("path_observed_samples", fl),  # tau*f_s + sto_diff (where the tap sits)
            pa.field("path_tap", pa.list_(pa.int32())),  # round(observed) when in the window, else -1
            pa.field("path_in_window", pa.list_(pa.bool_())),
            pa.field("path_aliased", pa.list_(pa.bool_())),  # outside, but wraps (mod N_fft) into the window
            pa.field("path_a_re", pa.list_(pa.float32())), pa.field("path_a_im", pa.list_(pa.float32())),
            pa.field("path_interactions", pa.list_(pa.list_(pa.uint8()))),
            pa.field("target_id", pa.list_(pa.int32())),
            pa.field("target_kind", pa.list_(pa.string())),
            pa.field("target_x", fl), pa.field("target_y", fl), pa.field("target_z", fl),  # box centre
            pa.field("target_sp_x", fl), pa.field("target_sp_y", fl), pa.field("target_sp_z", fl),  # scattering pt
            pa.field("target_yaw", fl),
            pa.field("target_los_sites", pa.list_(pa.list_(pa.string()))),  # per target: sites in LOS of its sp
        ]
        meta = {META_VIEW: self.name, "twin.view_config": json.dumps(asdict(config), sort_keys=True)}
        return pa.schema(fields, metadata=meta)

    def __call__(self, inputs: ViewInputs, config: BistaticEchoConfig) -> pa.Table:
        if not isinstance(config, BistaticEchoConfig):
            raise TypeError(f"config must be a BistaticEchoConfig, got {type(config).__name__}")
        schema = self.schema(config)
        sites = sites_from_towers(inputs.towers, config.tx_power_dbm)
        if config.sites:
            known = {s.site_id for s in sites}
            bad = [s for s in config.sites if s not in known]
            if bad:
                raise TwinInputError(f"unknown site id(s) {', '.join(bad)}", file="towers.parquet", field="sites",
                                     fix=f"[views.bistatic_echo] sites: ids of towers.parquet ({', '.join(sorted(known))})")
            sites = [s for s in sites if s.site_id in set(config.sites)]
        if not sites:
            return schema.empty_table()
        return self.to_table(self.trace(inputs.scene_path, sites, config, inputs.seed), config)

    def to_table(self, rows: list[dict], config: BistaticEchoConfig) -> pa.Table:
        """The view table of the rows :meth:`trace` returns."""
        schema = self.schema(config)
        cols = {f.name: [r[f.name] for r in rows] for f in schema}
        arrays = []
        for f in schema:
            if f.name in ("h", "h_clean"):
                v = np.stack(cols[f.name]) if rows else np.zeros((0, config.taps), complex)
                arrays.append(tensor_array(np.stack([v.real, v.imag], axis=-1), f))
            else:
                arrays.append(pa.array(cols[f.name], type=f.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    def trace(self, scene_path: str, sites: list[Site], config: BistaticEchoConfig, seed: int,
              placements: list[tuple[np.ndarray, np.ndarray]] | None = None) -> list[dict]:
        """Trace every snapshot; one dict per (snapshot, tx site, rx site), column names of :meth:`schema`.

        ``placements``: per snapshot, target box centres (K, 3) in metres and yaws (K,) in radians; drawn by
        :func:`place_targets` from ``seed`` when None (given ones are for hand-built scenes and tests).
        """
        from twin.llvm import setup_mitsuba

        setup_mitsuba()
        import mitsuba as mi
        from sionna.rt import PlanarArray, Receiver, Transmitter
        from sionna.rt.rcs import RCSSolver, TR38901SensingTarget

        from twin.config import SolverSettings
        from twin.render.scene_cache import load_scene_copy
        from twin.render.solver import path_solver as make_path_solver

        # the trace stage's loading and ITU materials; a private copy, as the targets edit the scene
        scene = load_scene_copy(str(scene_path), config.ofdm.carrier_frequency_hz)
        check_window(sites, config)
        o = config.ofdm
        fs = o.sampling_rate_hz
        scene.frequency = o.carrier_frequency_hz
        scene.tx_array = PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
        scene.rx_array = scene.tx_array
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xEC40])
        kinds = [config.target_kinds[k % len(config.target_kinds)] for k in range(config.num_targets)]
        # all placements first, in the scene without targets (targets would block the probing rays)
        if placements is None:
            placements = [place_targets(scene.mi_scene, sites, kinds, rng, config)[:2]
                          for _ in range(config.num_snapshots)]
        elif len(placements) != config.num_snapshots or any(len(c) != len(kinds) for c, _ in placements):
            raise ValueError(f"placements: need {config.num_snapshots} snapshots of {len(kinds)} targets")
        placements = [(np.asarray(c, np.float64).reshape(-1, 3), np.asarray(y, np.float64)) for c, y in placements]
        # line-of-sight labels on the buildings alone (targets not yet in the scene)
        spos = np.array([s.position for s in sites], np.float64)
        ns = len(sites)
        ii, jj = np.meshgrid(np.arange(ns), np.arange(ns), indexing="ij")
        site_los = line_of_sight(scene.mi_scene, spos[ii.ravel()], spos[jj.ravel()]).reshape(ns, ns) | (ii == jj)
        sp_lcs_kind = {k: _scattering_point_lcs(k) for k in set(kinds)}
        sp_all = [np.array([c[k] + _rot_z(y[k]) @ sp_lcs_kind[kinds[k]] for k in range(len(kinds))]).reshape(-1, 3)
                  for c, y in placements]
        tlos = []
        for sp in sp_all:
            if len(sp) == 0:
                tlos.append([])
                continue
            vis = line_of_sight(scene.mi_scene, np.repeat(spos, len(sp), axis=0), np.tile(sp, (ns, 1))).reshape(ns, len(sp))
            tlos.append([[sites[i].site_id for i in range(ns) if vis[i, k]] for k in range(len(sp))])
        for i, s in enumerate(sites):
            scene.add(Transmitter(name=f"tx-{i}", position=mi.Point3f(*map(float, s.position))))
            scene.add(Receiver(name=f"rx-{i}", position=mi.Point3f(*map(float, s.position))))
        targets = []
        for k, kind in enumerate(kinds):
            obj, model = TARGET_MODELS[kind]
            c, yaw = placements[0][0][k], placements[0][1][k]
            t = TR38901SensingTarget(name=f"target-{k}", object_type=obj, model_type=model,
                                     position=mi.Point3f(*map(float, c)),
                                     orientation=mi.Point3f(float(yaw), 0.0, 0.0))
            scene.add(t)
            targets.append(t)
        names = list(scene.sensing_targets)
        order = [names.index(f"target-{k}") for k in range(len(kinds))]  # solver index -> our id
        sp_lcs = [np.asarray(t.scattering_model.spst.lcs_positions.numpy(), np.float64).reshape(-1, 3)[0]
                  for t in targets]
        for k, kind in enumerate(kinds):
            if not np.allclose(sp_lcs[k], sp_lcs_kind[kind]):
                raise RuntimeError(f"scattering point of {kind}: {sp_lcs[k]} != {sp_lcs_kind[kind]}")
        (path_solver, _), rcs_solver = make_path_solver(), RCSSolver()
        noise = [noise_variance_per_tap(s.tx_power_dbm, config) for s in sites]
        rows: list[dict] = []
        for snap, (centres, yaws) in enumerate(placements):
            for k, t in enumerate(targets):
                t.position = mi.Point3f(*map(float, centres[k]))
                t.orientation = mi.Point3f(float(yaws[k]), 0.0, 0.0)
            sp_world = np.array([centres[k] + _rot_z(yaws[k]) @ sp_lcs[k] for k in range(len(targets))]).reshape(-1, 3)
            sto = draw_sto(rng, len(sites), config.max_sto_samples)
            solver_seed = int(rng.integers(1 << 31))
            static = path_solver(scene, **SolverSettings(
                max_depth=config.max_depth, max_num_paths_per_src=200_000, samples_per_src=config.samples_per_src,
                synthetic_array=True, los=True, specular_reflection=True, diffuse_reflection=False, refraction=True,
                diffraction=False, seed=solver_seed).kwargs())
            parts = [(_extract(static, False), False)]
            if targets:
                echo = rcs_solver(scene, max_depth=config.max_depth, samples_per_sp=config.samples_per_sp,
                                  buffer_size_per_sp=200_000, synthetic_array=True, seed=solver_seed)
                parts.append((_extract(echo, True), True))
            for n, sn in enumerate(sites):
                for m, sm in enumerate(sites):
                    row = self._pair(snap, n, m, sn, sm, parts, order, sto, noise[n], config, fs, rng,
                                     kinds, centres, yaws, sp_world)
                    row["site_los"] = bool(site_los[n, m])
                    row["target_los_sites"] = tlos[snap]
                    rows.append(row)
        return rows

    @staticmethod
    def _pair(snap, n, m, sn, sm, parts, order, sto, noise_var, config, fs, rng, kinds, centres, yaws, sp_world):
        ptype, ptarget, ptau, pa_, pint = [], [], [], [], []
        for (tau, a, valid, inter, objs, _), is_echo in parts:
            for p in np.nonzero(valid[m, n])[0]:
                t = float(tau[m, n, p])
                if not is_echo and n == m and t * fs < 1e-3:
                    continue  # a site's zero-length path to itself
                il = [int(c) for c in inter[:, m, n, p]]
                ol = [int(c) for c in objs[:, m, n, p]]
                ty, tg = classify(il, ol, n == m)
                if tg >= 0:
                    tg = order.index(tg)
                ptype.append(ty)
                ptarget.append(tg)
                ptau.append(t)
                pa_.append(complex(a[m, n, p]))
                pint.append([c for c in il if c != 0])
        srt = np.argsort(np.array(ptau), kind="stable") if ptau else np.zeros(0, int)
        ptype, ptarget, ptau = [ptype[i] for i in srt], [ptarget[i] for i in srt], [ptau[i] for i in srt]
        pa_, pint = [pa_[i] for i in srt], [pint[i] for i in srt]
        diff = int(sto[m] - sto[n])
        obs = [t * fs + diff for t in ptau]
        h_clean = channel_taps(np.array(pa_, complex), np.array(obs), config)
        w = draw_noise(rng, noise_var, config)[0]
        tap, inw, ali = path_window_flags(np.array(obs), config)
        row = dict(
            snapshot=snap, tx_site=sn.site_id, rx_site=sm.site_id,
            tx_x=sn.position[0], tx_y=sn.position[1], tx_z=sn.position[2],
            rx_x=sm.position[0], rx_y=sm.position[1], rx_z=sm.position[2],
            sto_tx_samples=int(sto[n]), sto_rx_samples=int(sto[m]), sto_diff_samples=diff,
            los_delay_s=math.dist(sn.position, sm.position) / SPEED_OF_LIGHT, tx_power_dbm=sn.tx_power_dbm,
            noise_var=noise_var, h=h_clean + w, h_clean=h_clean,
            path_type=ptype, path_target=ptarget, path_tau_s=ptau, path_observed_samples=obs,
            path_tap=[int(v) for v in tap], path_in_window=[bool(v) for v in inw], path_aliased=[bool(v) for v in ali],
            path_a_re=[v.real for v in pa_], path_a_im=[v.imag for v in pa_], path_interactions=pint,
            target_id=list(range(len(kinds))), target_kind=list(kinds),
            target_x=list(centres[:, 0]), target_y=list(centres[:, 1]), target_z=list(centres[:, 2]),
            target_sp_x=list(sp_world[:, 0]), target_sp_y=list(sp_world[:, 1]), target_sp_z=list(sp_world[:, 2]),
            target_yaw=list(yaws),
        )
        return row


def _scattering_point_lcs(kind: str) -> np.ndarray:
    """The target's scattering point in its own frame (m), TR 38.901 §7.9.2 (one point per kind here)."""
    import mitsuba as mi
    from sionna.rt.rcs import TR38901SensingTarget

    obj, model = TARGET_MODELS[kind]
    t = TR38901SensingTarget(name=f"probe-{kind}", object_type=obj, model_type=model, position=mi.Point3f(0, 0, 0))
    return np.asarray(t.scattering_model.spst.lcs_positions.numpy(), np.float64).reshape(-1, 3)[0]


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


VIEW = register_view(BistaticEchoView())


def rooftop_sites(mi_scene, n: int = 6, seed: int = 0, min_roof_m: float = 10.0, spacing_m: float = 150.0,
                  mast_m: float = 3.0) -> list[Site]:
    """n rooftop sites (roof > ``min_roof_m`` above z = 0, mast ``mast_m``), at least ``spacing_m`` apart.

    For benches and tests on a bare scene (e.g. Sionna's Paris) that has no tower table.
    """
    rng = np.random.default_rng(seed)
    bb = mi_scene.bbox()
    lo, hi = np.array(bb.min, np.float64), np.array(bb.max, np.float64)
    m = 0.1 * (hi - lo)
    xy = np.column_stack([rng.uniform(lo[0] + m[0], hi[0] - m[0], 4000), rng.uniform(lo[1] + m[1], hi[1] - m[1], 4000)])
    ok, z = _down_hits(mi_scene, xy, float(hi[2]) + 10)
    chosen: list[int] = []
    for i in np.nonzero(ok & (z > min_roof_m))[0]:
        if all(np.hypot(*(xy[i] - xy[j])) > spacing_m for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n:
            break
    return [Site(f"S{k}", (float(xy[i, 0]), float(xy[i, 1]), float(z[i] + mast_m)), 46.0)
            for k, i in enumerate(chosen)]


@register_bench("bistatic_echo")
def bench(quick: bool = False) -> list[BenchResult]:
    """The view on Sionna's Paris scene, and its tap kernel against the direct DFT sum, same run.

    Full: 6 rooftop sites, 4 snapshots x 5 targets. Quick: 3 sites, 1 snapshot,
    2 targets. Kernel: 40 paths -> L taps at FR1 by FFT (:func:`delay_taps`) vs the explicit sum
    h[l] = (1/N_a) Σ_p a_p Σ_k e^{j2πk(l - d_p)/N_fft}.
    """
    import time

    from twin.llvm import setup_mitsuba

    setup_mitsuba()
    import sionna.rt

    path = sionna.rt.scene.etoile
    scene = sionna.rt.load_scene(path)
    sites = rooftop_sites(scene.mi_scene, 3 if quick else 6)
    cfg = BistaticEchoConfig(num_snapshots=1, num_targets=2) if quick else BistaticEchoConfig(num_snapshots=4)
    t0 = time.perf_counter()
    rows = BistaticEchoView().trace(path, sites, cfg, seed=0)
    t_view = time.perf_counter() - t0
    o = cfg.ofdm
    rng = np.random.default_rng(0)
    a = rng.standard_normal(40) + 1j * rng.standard_normal(40)
    d = rng.uniform(0, 400, 40)
    t0 = time.perf_counter()
    for _ in range(20):
        fast = delay_taps(a, d, o, cfg.taps)
    t_fast = (time.perf_counter() - t0) / 20
    k = np.arange(-(o.num_subcarriers // 2), o.num_subcarriers - o.num_subcarriers // 2)
    t0 = time.perf_counter()
    ref = (np.exp(2j * np.pi * np.outer(np.arange(cfg.taps), k) / o.fft_size)
           @ np.exp(-2j * np.pi * np.outer(k, d) / o.fft_size) @ a) / o.num_subcarriers
    t_ref = time.perf_counter() - t0
    err = float(np.max(np.abs(fast - ref)) / np.max(np.abs(ref)))
    notes = {"sites": len(sites), "snapshots": cfg.num_snapshots, "targets": cfg.num_targets}
    return [
        BenchResult("bistatic_echo/view", len(rows) / t_view, "site pairs", t_view, notes),
        BenchResult("bistatic_echo/taps_direct_sum", 1 / t_ref, "links", t_ref, {"paths": 40, "taps": cfg.taps}),
        BenchResult("bistatic_echo/taps", 1 / t_fast, "links", t_fast,
                    {"paths": 40, "taps": cfg.taps, "speedup_vs_direct_sum": t_ref / t_fast, "max_rel_error": err}),
    ]
