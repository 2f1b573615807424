"""TB-fingerprint view (LOA-Net): Parseval, bin placement of a single path, fast path == build-then-FFT."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from twin.config import from_mapping
from twin.datasets.registry import ViewInputs, get_view
from twin.datasets.tb_fingerprint import (
    SPEED_OF_LIGHT,
    TBFingerprintConfig,
    build_sft,
    direction_class,
    path_terms,
    triple_beam,
    triple_beam_from_paths,
)
from twin.errors import TwinInputError
from twin.schema import CIR_SCHEMA, RECEIVER_SCHEMA, tensor_to_numpy


@pytest.mark.parametrize("shape", [(8, 16, 64, 14), (3, 5, 33, 7), (1, 1, 8, 1)])
def test_triple_beam_parseval(shape):
    rng = np.random.default_rng(0)
    h = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    tb = triple_beam(h)
    assert tb.shape == shape
    assert abs(np.sum(np.abs(tb) ** 2) - np.sum(np.abs(h) ** 2)) <= 1e-5 * np.sum(np.abs(h) ** 2)
    # cropping the taps keeps at most the energy, and the kept bins are the unitary bins
    tbc = triple_beam(h, keep_taps=5)
    assert np.allclose(tbc, tb[:, :, :5, :])


def test_triple_beam_rejects_bad_input():
    with pytest.raises(ValueError, match="rows, cols, subcarriers, symbols"):
        triple_beam(np.zeros((4, 4, 8)))
    with pytest.raises(ValueError, match="keep_taps"):
        triple_beam(np.zeros((2, 2, 8, 2)), keep_taps=9)


def _oracle_sft(g, u_row, u_col, tau, fd, R, C, K, T, d, df, tsym):
    """SFT channel written out from LOA-Net eqs. 1-10 with explicit broadcasting (independent of the module)."""
    r = np.arange(R)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    k = np.arange(K)[None, None, :, None]
    t = np.arange(T)[None, None, None, :]
    return g * np.exp(2j * np.pi * d * (r * u_row + c * u_col)) * np.exp(-2j * np.pi * k * df * tau) * np.exp(
        2j * np.pi * fd * t * tsym
    )


def test_single_path_lands_in_its_bin():
    R, C, K, T, d, df, cp = 8, 16, 256, 28, 0.5, 15e3, 18
    tsym = (K + cp) / (K * df)
    # on-grid: direction cosines on DFT bins, delay on a tap, Doppler on a bin
    q_row, q_col, tap, nu = 3, 13, 7, 25  # nu = 25 ≡ -3 (negative Doppler)
    u_row = q_row / (R * d)
    u_col = (q_col - C) / (C * d)  # negative direction cosine, aliases to bin 13
    tau = tap / (K * df)
    fd = (nu - T) / (T * tsym)
    h = _oracle_sft(0.3 - 0.2j, u_row, u_col, tau, fd, R, C, K, T, d, df, tsym)
    tb = triple_beam(h, keep_taps=cp)
    peak = np.unravel_index(np.argmax(np.abs(tb)), tb.shape)
    assert peak == (q_row, q_col, tap, nu)
    # all the energy sits in that one bin (on-grid path), equal to |g|^2 * R*C*K*T
    total = np.sum(np.abs(h) ** 2)
    assert np.abs(tb[peak]) ** 2 == pytest.approx(total, rel=1e-9)
    # off-grid: the peak is the nearest bin
    tau2 = (tap + 0.3) / (K * df)
    fd2 = (2.2) / (T * tsym)
    h2 = _oracle_sft(1.0, (q_row + 0.2) / (R * d), 0.0, tau2, fd2, R, C, K, T, d, df, tsym)
    peak2 = np.unravel_index(np.argmax(np.abs(triple_beam(h2, keep_taps=cp))), (R, C, cp, T))
    assert peak2 == (q_row, 0, tap, 2)


def test_fast_path_equals_build_then_fft():
    rng = np.random.default_rng(3)
    R, C, K, T, cp = 4, 8, 128, 14, 20
    tsym = (K + cp) / (K * 15e3)
    p = 12
    g = rng.standard_normal(p) + 1j * rng.standard_normal(p)
    u_row, u_col = rng.uniform(-1, 1, p), rng.uniform(-0.5, 0.5, p)
    tau, fd = rng.uniform(0, cp / (K * 15e3), p), rng.uniform(-300, 300, p)
    terms = path_terms(u_row, u_col, tau, fd, num_rows=R, num_cols=C, spacing_wavelengths=0.5, num_subcarriers=K,
                       subcarrier_spacing_hz=15e3, num_symbols=T, symbol_duration_s=tsym)
    h = build_sft(g, terms)
    h_oracle = sum(_oracle_sft(g[i], u_row[i], u_col[i], tau[i], fd[i], R, C, K, T, 0.5, 15e3, tsym) for i in range(p))
    assert np.allclose(h, h_oracle, rtol=0, atol=1e-10 * np.abs(h_oracle).max())
    ref = triple_beam(h, keep_taps=cp)
    fast = triple_beam_from_paths(g, terms, keep_taps=cp)
    assert np.max(np.abs(fast - ref)) <= 1e-10 * np.max(np.abs(ref))
    bins = np.array([12, 13, 0, 1, 2])
    fast_crop = triple_beam_from_paths(g, terms, keep_taps=cp, doppler_bins=bins)
    assert np.max(np.abs(fast_crop - ref[..., bins])) <= 1e-10 * np.max(np.abs(ref))


def test_direction_classes():
    w = 2 * np.pi / 16
    assert list(direction_class(np.arange(16) * w, 16)) == list(range(16))
    assert direction_class(np.array([-0.4 * w, 15.6 * w, 0.49 * w]), 16).tolist() == [0, 0, 0]


# ------------------------------------------------------------------------------------------------ view


def _tables(kind="route", vel=(0.0, 0.0, 0.0), theta_t=None, tau=None):
    """One tower (azimuth 90°: boresight +x) at the origin, 25 m up; one receiver due east, LOS path."""
    tower = dict(cell_id="c1", site_id="s1", x=0.0, y=0.0, z=25.0, azimuth_deg=90.0, tilt_deg=0.0,
                 frequency_hz=3.5e9, tx_power_dbm=46.0)
    towers = pa.Table.from_pylist([tower])
    rx = dict(rx_id=7, x=200.0, y=0.0, z=1.5, kind=kind, route_id=1 if kind == "route" else -1, t_s=0.0,
              vx=vel[0], vy=vel[1], vz=vel[2])
    receivers = pa.Table.from_pylist([rx], schema=RECEIVER_SCHEMA)
    d = math.dist((0, 0, 25), (200, 0, 1.5))
    th_t = theta_t if theta_t is not None else math.acos((1.5 - 25) / d)
    row = dict(link_id=11, tx_id="c1", rx_id=7, tx_x=0.0, tx_y=0.0, tx_z=25.0, rx_x=200.0, rx_y=0.0, rx_z=1.5,
               frequency_hz=3.5e9, num_paths=1, tau_s=[tau if tau is not None else d / SPEED_OF_LIGHT],
               a_re=[1e-4], a_im=[0.0], theta_t=[th_t], phi_t=[0.0], theta_r=[math.pi - th_t], phi_r=[math.pi],
               doppler_hz=[0.0], interactions=[[]], los=True, los_distance_m=d, path_gain_db=-80.0)
    cir = pa.Table.from_pylist([row], schema=CIR_SCHEMA)
    return ViewInputs(cir=cir, towers=towers, receivers=receivers, scene_path="", seed=5, manifest={})


def test_view_places_a_path_and_labels_motion():
    view = get_view("tb_fingerprint")
    cfg = TBFingerprintConfig(snr_db=None, use_receiver_speed=True)
    R, C = cfg.num_rows, cfg.num_cols
    # elevation on a row bin: cos(theta_t) = -2/(R*0.5) -> shifted row index R/2 - 2
    th = math.acos(-2 / (R * 0.5))
    tap = 40
    lam = SPEED_OF_LIGHT / 3.5e9
    # receiver moving west (towards the tower, along the arrival direction) at 2 Doppler bins
    speed = 2 * cfg.doppler_bin_hz * lam / math.sin(math.pi - th)
    inputs = _tables(vel=(-speed, 0.0, 0.0), theta_t=th, tau=tap * cfg.tap_s)
    table = view(inputs, cfg)
    assert table.num_rows == 1
    f = table.schema.field("tb_power")
    p = tensor_to_numpy(table.column("tb_power"), f)[0].astype(np.float64)
    assert p.shape == (R, C, cfg.cp_length, cfg.doppler_bins)
    peak = np.unravel_index(np.argmax(p), p.shape)
    # broadside (u_col = 0) -> shifted col C/2; Doppler bin +2 -> crop index doppler_bins//2 + 2
    assert peak == (R // 2 - 2, C // 2, tap, cfg.doppler_bins // 2 + 2)
    assert p[peak] == 1.0
    row = table.to_pylist()[0]
    assert row["direction_class"] == 8  # moving west: 180°
    assert row["speed_mps"] == pytest.approx(speed)
    assert row["crop_energy_fraction"] == pytest.approx(1.0, rel=1e-6)
    meta = json.loads(f.metadata[b"doppler_crop_bins"])
    assert meta == [-(cfg.doppler_bins // 2), cfg.doppler_bins - cfg.doppler_bins // 2]
    assert json.loads(table.schema.metadata[b"twin.view_config"])["num_rows"] == 8


def test_view_random_receivers_are_seeded():
    view = get_view("tb_fingerprint")
    cfg = TBFingerprintConfig()
    a = view(_tables(kind="random"), cfg).to_pylist()[0]
    b = view(_tables(kind="random"), cfg).to_pylist()[0]
    assert a == b  # deterministic for the seed
    w = 2 * math.pi / 16
    assert a["speed_mps"] == pytest.approx(5 / 3.6)
    assert a["direction_rad"] == pytest.approx(a["direction_class"] * w)
    assert math.hypot(a["vx"], a["vy"]) == pytest.approx(5 / 3.6)
    assert a["snr_db"] == pytest.approx(20.0)


def test_view_noise_level_follows_snr():
    """AWGN of SNR s on the SFT entries: each TB bin gets variance mean|H|^2 / s (unitary transform)."""
    view = get_view("tb_fingerprint")
    base = TBFingerprintConfig(num_subcarriers=512, cp_length=36)
    n = base.num_rows * base.num_cols * base.num_subcarriers * base.num_symbols
    snr_db = -10 * math.log10(1e-3 * n)  # noise per bin at 1e-3 of the peak: the peak stays the path
    cfg = TBFingerprintConfig(snr_db=snr_db, use_receiver_speed=True, num_subcarriers=512, cp_length=36)
    th = math.acos(-2 / (cfg.num_rows * 0.5))
    lam = SPEED_OF_LIGHT / 3.5e9
    speed = 2 * cfg.doppler_bin_hz * lam / math.sin(math.pi - th)
    table = view(_tables(vel=(-speed, 0.0, 0.0), theta_t=th, tau=10 * cfg.tap_s), cfg)
    p = tensor_to_numpy(table.column("tb_power"), table.schema.field("tb_power"))[0].astype(np.float64)
    # on-grid path: peak power = |g|^2 n; noise variance per bin = |g|^2 / 10^(snr/10)
    expected = 10 ** (-snr_db / 10) / n
    rest = np.delete(p.ravel(), np.argmax(p))
    assert rest.mean() == pytest.approx(expected, rel=0.05)


def test_view_errors_name_the_culprit():
    view = get_view("tb_fingerprint")
    inputs = _tables()
    bad = ViewInputs(cir=inputs.cir, towers=pa.Table.from_pylist([{"cell_id": "other", "azimuth_deg": 0.0}]),
                     receivers=inputs.receivers, scene_path="", seed=0, manifest={})
    with pytest.raises(TwinInputError, match="cell_id"):
        view(bad, TBFingerprintConfig())
    with pytest.raises(TwinInputError, match="doppler_bins"):
        from_mapping(TBFingerprintConfig, {"doppler_bins": 500})
    with pytest.raises(TwinInputError, match="cell_selection"):
        from_mapping(TBFingerprintConfig, {"cell_selection": "best"})


# ---------------------------------------------------------------------- expected power, crop, storage, protocol


def _multipath_tables(n_paths=40, seed=0, tau_max=None, kind="grid"):
    """One tower facing +x, one receiver, ``n_paths`` random paths inside the CP (or up to ``tau_max``)."""
    rng = np.random.default_rng(seed)
    base = _tables(kind=kind)
    row = base.cir.to_pylist()[0]
    cfg = TBFingerprintConfig()
    tmax = tau_max if tau_max is not None else 0.8 * cfg.cp_length * cfg.tap_s
    row.update(num_paths=n_paths, tau_s=list(rng.uniform(0.05e-6, tmax, n_paths)),
               a_re=list(1e-5 * rng.standard_normal(n_paths)), a_im=list(1e-5 * rng.standard_normal(n_paths)),
               theta_t=list(rng.uniform(1.2, 2.0, n_paths)), phi_t=list(rng.uniform(-1.0, 1.0, n_paths)),
               theta_r=list(rng.uniform(1.2, 2.0, n_paths)), phi_r=list(rng.uniform(-np.pi, np.pi, n_paths)),
               doppler_hz=[0.0] * n_paths, interactions=[[]] * n_paths)
    cir = pa.Table.from_pylist([row], schema=CIR_SCHEMA)
    return ViewInputs(cir=cir, towers=base.towers, receivers=base.receivers, scene_path="", seed=5, manifest={})


def test_expected_power_is_the_average_of_random_phase_realisations():
    """LOA-Net eqs. 19-20: E[|TB|²] over independent uniform path phases, against a Monte-Carlo average."""
    from twin.datasets.tb_fingerprint import expected_tb_power

    rng = np.random.default_rng(2)
    R, C, K, T, cp, p = 2, 4, 32, 8, 8, 6
    tsym = (K + cp) / (K * 15e3)
    g = rng.standard_normal(p) + 1j * rng.standard_normal(p)
    terms = path_terms(rng.uniform(-1, 1, p), rng.uniform(-0.5, 0.5, p), rng.uniform(0, cp / (K * 15e3), p),
                       rng.uniform(-300, 300, p), num_rows=R, num_cols=C, spacing_wavelengths=0.5, num_subcarriers=K,
                       subcarrier_spacing_hz=15e3, num_symbols=T, symbol_duration_s=tsym)
    exp_p = expected_tb_power(g, terms, keep_taps=cp)
    n_mc = 2000
    acc = np.zeros_like(exp_p)
    for _ in range(n_mc):
        ph = np.exp(2j * np.pi * rng.uniform(size=p))
        acc += np.abs(triple_beam(build_sft(g * ph, terms), keep_taps=cp)) ** 2
    mc = acc / n_mc
    rel = np.linalg.norm(mc - exp_p) / np.linalg.norm(exp_p)
    assert rel < 0.05  # Monte-Carlo error ~ 1/sqrt(n_mc) of the cross terms
    one = np.abs(triple_beam(build_sft(g, terms), keep_taps=cp)) ** 2  # one coherent realisation differs
    assert np.linalg.norm(one - exp_p) / np.linalg.norm(exp_p) > 4 * rel


def test_view_expected_vs_instantaneous_and_noise_floor_kept():
    view = get_view("tb_fingerprint")
    inputs = _multipath_tables()
    ex = view(inputs, TBFingerprintConfig())
    inst = view(inputs, TBFingerprintConfig(power="instantaneous"))
    f = ex.schema.field("tb_power")
    raw = tensor_to_numpy(ex.column("tb_power"), f)[0]
    assert raw.dtype == np.float32
    pe = raw.astype(np.float64)
    pi_ = tensor_to_numpy(inst.column("tb_power"), inst.schema.field("tb_power"))[0].astype(np.float64)
    assert np.linalg.norm(pe - pi_) / np.linalg.norm(pe) > 0.05  # coherent sum != expected power
    # the noise floor is kept: no zeros, no float16 subnormals; the floor sits at σ² / peak
    row = ex.to_pylist()[0]
    floor = 10 ** ((row["noise_power_db"] - row["tb_scale_db"]) / 10)
    assert floor * (1 - 1e-5) <= pe.min() < 1.01 * floor  # σ² plus the faintest leakage
    assert np.count_nonzero(pi_ == 0) == 0
    db = view(inputs, TBFingerprintConfig(storage="db"))
    pdb = tensor_to_numpy(db.column("tb_power"), db.schema.field("tb_power"))[0].astype(np.float64)
    np.testing.assert_allclose(pdb, 10 * np.log10(pe), atol=0.06)


def test_low_crop_rows_dropped_or_flagged():
    view = get_view("tb_fingerprint")
    cfg = TBFingerprintConfig()
    far = _multipath_tables(tau_max=3 * cfg.cp_length * cfg.tap_s, seed=1)  # most energy beyond the CP
    flagged = view(far, TBFingerprintConfig(low_crop="flag")).to_pylist()
    assert len(flagged) == 1 and not flagged[0]["crop_ok"] and flagged[0]["crop_energy_fraction"] < 0.5
    assert view(far, cfg).num_rows == 0  # default: dropped
    near = view(_multipath_tables(), cfg).to_pylist()
    assert near[0]["crop_ok"] and near[0]["crop_energy_fraction"] > 0.99


def test_all_orientations_protocol_covers_16_classes():
    view = get_view("tb_fingerprint")
    table = view(_multipath_tables(), TBFingerprintConfig(orientations="all"))
    rows = table.to_pylist()
    assert len(rows) == 16
    assert sorted(r["direction_class"] for r in rows) == list(range(16))
    assert [r["orientation_index"] for r in rows] == list(range(16))
    w = 2 * math.pi / 16
    for r in rows:
        assert r["direction_rad"] == pytest.approx(r["orientation_index"] * w)
        assert math.hypot(r["vx"], r["vy"]) == pytest.approx(5 / 3.6)
    p = tensor_to_numpy(table.column("tb_power"), table.schema.field("tb_power")).astype(np.float64)
    # the angle-delay part is (up to the 9-bin Doppler crop) the same for every orientation, the Doppler part is not
    ad = p.sum(axis=-1)
    np.testing.assert_allclose(ad / ad.max(axis=(1, 2, 3), keepdims=True),
                               np.broadcast_to(ad[:1] / ad[:1].max(), ad.shape), rtol=0.02, atol=1e-6)  # crop leakage
    dop = p.sum(axis=(1, 2, 3))
    dop = dop / dop.sum(axis=1, keepdims=True)
    # reversing the motion mirrors the Doppler spectrum; at 5 km/h (16 Hz << the 125 Hz bin) the asymmetry that
    # carries the direction is small but present
    np.testing.assert_allclose(dop[8], dop[0][::-1], rtol=1e-6, atol=1e-12)
    assert np.abs(dop[0] - dop[0][::-1]).max() > 1e-5


def test_blas_threads_setting_leaves_results_unchanged():
    view = get_view("tb_fingerprint")
    inputs = _multipath_tables()
    a = view(inputs, TBFingerprintConfig(blas_threads=1))
    b = view(inputs, TBFingerprintConfig(blas_threads=None))
    pa_ = tensor_to_numpy(a.column("tb_power"), a.schema.field("tb_power"))
    pb = tensor_to_numpy(b.column("tb_power"), b.schema.field("tb_power"))
    np.testing.assert_allclose(pa_, pb, rtol=1e-5, atol=1e-7)
    with pytest.raises(TwinInputError, match="power"):
        from_mapping(TBFingerprintConfig, {"power": "mean"})


def test_doppler_information_does_not_depend_on_the_array():
    """Fusion-TDC's input D = Σ_angles P (LOA-Net eq. 30) of a 1 x 1 array equals the 8 x 16 array's D / 128
    (the unitary angle DFT keeps each path's energy; the noise per SFT entry is the same): twin reproduce loanet
    builds its Fusion-TDC variant that way."""
    from twin.baselines.loanet_models import preprocess

    view = get_view("tb_fingerprint")
    inputs = _multipath_tables()
    full = view(inputs, TBFingerprintConfig(orientations="all"))
    one = view(inputs, TBFingerprintConfig(orientations="all", num_rows=1, num_cols=1))
    pf = tensor_to_numpy(full.column("tb_power"), full.schema.field("tb_power")).astype(np.float64)
    p1 = tensor_to_numpy(one.column("tb_power"), one.schema.field("tb_power")).astype(np.float64)
    assert p1.shape[1:3] == (1, 1) and pf.shape[1:3] == (8, 16)
    df = pf.sum(axis=(1, 2)) * 10 ** (full.column("tb_scale_db").to_numpy()[:, None, None] / 10)
    d1 = p1.sum(axis=(1, 2)) * 10 ** (one.column("tb_scale_db").to_numpy()[:, None, None] / 10)
    np.testing.assert_allclose(df, 128 * d1, rtol=1e-4)
    _, _, dn_full = preprocess(pf)
    _, _, dn_one = preprocess(p1)
    np.testing.assert_allclose(dn_full.numpy(), dn_one.numpy(), rtol=1e-4, atol=1e-7)
    assert full.column("direction_class").to_pylist() == one.column("direction_class").to_pylist()
