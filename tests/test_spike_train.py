"""Spike-train view (ISLA): Lemma 5.2 design, Lemma 5.1 recovery, labels, determinism."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twin.datasets.ofdm import cfr, make_cir_table, make_towers_table, paths_from_cir
from twin.datasets.registry import ViewInputs, get_view
from twin.datasets.spike_train import (
    SpikeTrainConfig,
    alias_bin,
    filter_response,
    passband_subcarriers,
    subsample_spectrum,
)
from twin.schema import tensor_to_numpy

C = 299_792_458.0


def _inputs(links, cells, seed=5):
    return ViewInputs(cir=make_cir_table(links), towers=make_towers_table(cells),
                      receivers=pa.table({"rx_id": pa.array([], pa.int64())}), scene_path="", seed=seed, manifest={})


def _cplx(table, name):
    v = tensor_to_numpy(table.column(name), table.schema.field(name))
    return v[..., 0] + 1j * v[..., 1]


def _scene(seed=0, n_rx=2, n_cells=3):
    rng = np.random.default_rng(seed)
    links, cells = [], [dict(cell_id=f"c{k}", tx_power_dbm=40.0 + k) for k in range(n_cells)]
    lid = 0
    for r in range(n_rx):
        for k in range(n_cells):
            tau = np.sort(rng.uniform(0.1e-6, 2e-6, 12))
            a = 1e-5 * (rng.standard_normal(12) + 1j * rng.standard_normal(12))
            links.append(dict(link_id=1000 + lid, tx_id=f"c{k}", rx_id=r, tau_s=tau, a=a,
                              los=bool(k % 2 == 0), los_distance_m=tau[0] * C))
            lid += 1
    return links, cells


def test_passband_design_all_valid_n_p():
    """Every (n, p) with p² | n, n ≤ 4096: n/p distinct indices in [-n/2, n/2), none equal modulo n/p."""
    checked = 0
    for n in range(1, 4097):
        p = 1
        while p * p <= n:
            if n % (p * p) == 0:
                idx = passband_subcarriers(n, p)
                q = n // p
                assert idx.size == q
                assert idx.min() >= -(n // 2) and idx.max() < n - n // 2
                assert np.unique(idx).size == q
                assert np.unique(idx % q).size == q  # no aliasing collision
                checked += 1
            p += 1
    assert checked > 4096


def test_passband_layout_lemma_5_2():
    idx = passband_subcarriers(4096, 16)
    bands = idx.reshape(16, 16)  # P passbands of N/P² subcarriers
    assert bands[0, 0] == -2048  # the first passband starts at the lowest subcarrier
    np.testing.assert_array_equal(np.diff(bands, axis=1), 1)
    np.testing.assert_array_equal(np.diff(bands[:, 0]), 4096 // 16 * (1 + 1 / 16))  # ΔF/Δf
    # the ISLA paper's worked example: N = 32, P = 4 aliases {-9, -1, 7, 15} onto bin -1
    assert set(alias_bin(np.array([-9, -1, 7, 15]), 32, 4)) == {-1}


@pytest.mark.parametrize("n,p", [(32, 3), (4096, 128), (100, 3), (48, 8)])
def test_passband_rejects_bad_p(n, p):
    with pytest.raises(ValueError, match="p²"):
        passband_subcarriers(n, p)
    with pytest.raises(ValueError):
        SpikeTrainConfig(num_subcarriers=n, p=p)


def test_subsample_spectrum_is_time_domain_decimation():
    rng = np.random.default_rng(1)
    n, p = 256, 4
    X = rng.standard_normal(n) + 1j * rng.standard_normal(n)  # centred order
    x = np.fft.ifft(np.fft.ifftshift(X))
    Y = np.fft.fftshift(np.fft.fft(x[::p]))  # the low-rate receiver's DFT
    np.testing.assert_allclose(subsample_spectrum(X, p), Y, atol=1e-12)


def test_lemma_5_1_exact_recovery_without_noise():
    links, cells = _scene()
    cfg = SpikeTrainConfig(add_noise=False, stopband_rejection_db=float("inf"))
    out = get_view("spike_train")(_inputs(links, cells), cfg)
    p = paths_from_cir(make_cir_table(links))
    H = cfr(p["tau_s"], p["a"], np.arange(-2048, 2048) * cfg.subcarrier_spacing_hz)
    idx = passband_subcarriers(4096, 16) + 2048
    rec = _cplx(out, "h_recovered")
    assert rec.shape == (len(links), 256)
    np.testing.assert_allclose(rec, H[:, idx], rtol=0, atol=1e-6 * np.abs(H).max())
    # the narrowband baseline is the central N/P subcarriers, the full band all of them
    np.testing.assert_allclose(_cplx(out, "h_narrowband"), H[:, 2048 - 128 : 2048 + 128], atol=1e-6 * np.abs(H).max())
    np.testing.assert_allclose(_cplx(out, "h_full"), H, atol=1e-6 * np.abs(H).max())
    meta = out.schema.field("h_recovered").metadata
    assert b"subcarriers" in meta and b"twin.view_config" in out.schema.metadata


def test_finite_rejection_and_noise_bound_the_error():
    links, cells = _scene(seed=3)
    p = paths_from_cir(make_cir_table(links))
    H = cfr(p["tau_s"], p["a"], np.arange(-2048, 2048) * (100e6 / 4096))[:, passband_subcarriers(4096, 16) + 2048]
    cfg = SpikeTrainConfig(add_noise=False, stopband_rejection_db=40.0)
    rec = _cplx(get_view("spike_train")(_inputs(links, cells), cfg), "h_recovered")
    rel = np.sqrt(np.mean(np.abs(rec - H) ** 2) / np.mean(np.abs(H) ** 2))
    # 15 blocked subcarriers at -40 dB fold onto each passed one: leakage ≈ sqrt(15)·1e-2 in amplitude
    assert 0.2 * np.sqrt(15) * 1e-2 < rel < 3 * np.sqrt(15) * 1e-2
    # link-budget noise: -174 dBm/Hz + 7 dB NF over 24.4 kHz against 40 dBm / 4096 subcarriers · |H|²
    noisy = _cplx(get_view("spike_train")(_inputs(links, cells), SpikeTrainConfig(stopband_rejection_db=float("inf"))),
                  "h_full")
    full = cfr(p["tau_s"], p["a"], np.arange(-2048, 2048) * (100e6 / 4096))
    err = np.mean(np.abs(noisy - full) ** 2, axis=1)
    n_w = 1.380649e-23 * 290 * (100e6 / 4096) * 10 ** 0.7
    p_sc = 10 ** ((np.array([40.0, 41.0, 42.0] * 2) - 30) / 10) / 4096
    np.testing.assert_allclose(err, n_w / p_sc, rtol=0.1)


def test_mems_shape_passes_band_centres():
    g = filter_response(SpikeTrainConfig(passband_shape="mems"))
    idx = passband_subcarriers(4096, 16) + 2048
    assert np.min(np.abs(g[idx])) > 10 ** (-3.5 / 20)  # ≥ -3 dB at the passband edges (Butterworth)
    gi = filter_response(SpikeTrainConfig())
    assert np.count_nonzero(np.abs(gi) == 1.0) == 256


def test_labels_and_relative_tof():
    links, cells = _scene(n_rx=2, n_cells=3)
    out = get_view("spike_train")(_inputs(links, cells), SpikeTrainConfig())
    t = out.to_pydict()
    for i, link in enumerate(links):
        assert t["first_path_tof_s"][i] == pytest.approx(min(link["tau_s"]))
        assert t["los_tof_s"][i] == pytest.approx(link["los_distance_m"] / C)
        assert t["los"][i] == link["los"]
    for r in (0, 1):
        rows = [i for i in range(len(links)) if t["rx_id"][i] == r]
        ref = [i for i in rows if t["tx_id"][i] == t["ref_tx_id"][i]]
        assert len(ref) == 1 and t["rel_first_path_tof_s"][ref[0]] == 0.0
        for i in rows:
            assert t["rel_first_path_tof_s"][i] == pytest.approx(t["first_path_tof_s"][i] - t["first_path_tof_s"][ref[0]])


def test_deterministic_for_a_seed():
    links, cells = _scene()
    v = get_view("spike_train")
    a = v(_inputs(links, cells, seed=9), SpikeTrainConfig())
    b = v(_inputs(list(reversed(links)), cells, seed=9), SpikeTrainConfig())
    c = v(_inputs(links, cells, seed=10), SpikeTrainConfig())
    assert a.equals(v(_inputs(links, cells, seed=9), SpikeTrainConfig()))
    # rows depend on (seed, link_id) only, not on the batch order
    bb = b.take(np.arange(b.num_rows)[::-1])
    np.testing.assert_array_equal(_cplx(a, "capture"), _cplx(bb, "capture"))
    assert not np.array_equal(_cplx(a, "capture"), _cplx(c, "capture"))


def test_unknown_cell_is_a_clear_input_error():
    from twin.errors import TwinInputError

    links, cells = _scene()
    with pytest.raises(TwinInputError, match="cell_id"):
        get_view("spike_train")(_inputs(links, cells[:1]), SpikeTrainConfig())
