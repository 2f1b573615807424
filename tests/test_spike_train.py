"""Spike-train view (ISLA): Lemma 5.2 design, Lemma 5.1 recovery, labels, determinism."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twin.datasets.channel import cfr, paths_from_cir
from twin.datasets.registry import ViewInputs, get_view
from twin.datasets.spike_train import (
    SpikeTrainConfig,
    alias_bin,
    filter_response,
    passband_subcarriers,
    subsample_spectrum,
)
from twin.datasets.synthetic import make_cir_table, make_towers_table
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


def _observed(out, links):
    """The wideband channel each capture saw: H·exp(-j2πf·t_off + jφ) from the view's impairment labels."""
    p = paths_from_cir(make_cir_table(links))
    f = np.arange(-2048, 2048) * (100e6 / 4096)
    H = cfr(p["tau_s"], p["a"], f)
    t = out.to_pydict()
    rot = np.exp(-2j * np.pi * f[None, :] * np.array(t["timing_offset_s"])[:, None]
                 + 1j * np.array(t["phase_offset_rad"])[:, None])
    return H * rot


def test_lemma_5_1_exact_recovery_without_noise():
    links, cells = _scene()
    cfg = SpikeTrainConfig(add_noise=False, stopband_rejection_db=float("inf"))
    out = get_view("spike_train")(_inputs(links, cells), cfg)
    H = _observed(out, links)
    idx = passband_subcarriers(4096, 16) + 2048
    rec = _cplx(out, "h_recovered")
    assert rec.shape == (len(links), 256)
    np.testing.assert_allclose(rec, H[:, idx], rtol=0, atol=1e-6 * np.abs(H).max())
    # the narrowband baseline is the central N/P subcarriers, the full band all of them
    np.testing.assert_allclose(_cplx(out, "h_narrowband"), H[:, 2048 - 128 : 2048 + 128], atol=1e-6 * np.abs(H).max())
    np.testing.assert_allclose(_cplx(out, "h_full"), H, atol=1e-6 * np.abs(H).max())
    meta = out.schema.field("h_recovered").metadata
    assert b"subcarriers" in meta and b"twin.view_config" in out.schema.metadata
    # passed-subcarrier frequencies and gains as columns
    pf = np.array(out.column("passed_freq_hz").to_pylist())
    np.testing.assert_allclose(pf, np.broadcast_to((idx - 2048) * (100e6 / 4096), pf.shape))
    np.testing.assert_allclose(np.array(out.column("passed_gain_db").to_pylist()), 0.0)


def test_only_relative_tof_is_observable():
    """A common timing offset per receiver capture, a CFO phase per link: the labels explain the capture."""
    links, cells = _scene(n_rx=3, n_cells=3)
    out = get_view("spike_train")(_inputs(links, cells), SpikeTrainConfig(add_noise=False))
    t = out.to_pydict()
    off = {}
    for r, o in zip(t["rx_id"], t["timing_offset_s"], strict=True):
        off.setdefault(r, set()).add(o)
    assert all(len(v) == 1 for v in off.values())  # common to a receiver's anchors
    assert len({next(iter(v)) for v in off.values()}) == 3  # differs between captures
    assert all(0 <= next(iter(v)) < 1e-6 for v in off.values())
    assert np.all(np.abs(t["cfo_hz"]) <= 350.0) and len(set(t["cfo_hz"])) == len(links)
    p = paths_from_cir(make_cir_table(links))
    f = np.arange(-2048, 2048) * (100e6 / 4096)
    H = cfr(p["tau_s"], p["a"], f)
    full = _cplx(out, "h_full")
    # the capture is not the true channel (absolute delay hidden) but its ratio is the labelled rotation
    assert np.abs(full - H).max() > 0.5 * np.abs(H).max()
    ratio = full / H
    expect = np.exp(-2j * np.pi * f * t["timing_offset_s"][0] + 1j * t["phase_offset_rad"][0])
    np.testing.assert_allclose(ratio[0], expect, atol=1e-4)


def test_finite_rejection_and_noise_bound_the_error():
    links, cells = _scene(seed=3)
    cfg = SpikeTrainConfig(add_noise=False, stopband_rejection_db=40.0)
    out = get_view("spike_train")(_inputs(links, cells), cfg)
    H = _observed(out, links)[:, passband_subcarriers(4096, 16) + 2048]
    rec = _cplx(out, "h_recovered")
    rel = np.sqrt(np.mean(np.abs(rec - H) ** 2) / np.mean(np.abs(H) ** 2))
    # 15 blocked subcarriers at -40 dB fold onto each passed one: leakage ≈ sqrt(15)·1e-2 in amplitude
    assert 0.2 * np.sqrt(15) * 1e-2 < rel < 3 * np.sqrt(15) * 1e-2
    # link-budget noise of a full-rate receiver: -174 dBm/Hz + 7 dB NF over 24.4 kHz against 40 dBm / 4096
    # subcarriers · |H|² (antenna noise at 290 K plus the chain's excess noise)
    out = get_view("spike_train")(_inputs(links, cells), SpikeTrainConfig(stopband_rejection_db=float("inf")))
    err = np.mean(np.abs(_cplx(out, "h_full") - _observed(out, links)) ** 2, axis=1)
    n_w = 1.380649e-23 * 290 * (100e6 / 4096) * 10 ** 0.7
    p_sc = 10 ** ((np.array([40.0, 41.0, 42.0] * 2) - 30) / 10) / 4096
    np.testing.assert_allclose(err, n_w / p_sc, rtol=0.1)


def _many_links(n_links, seed=0):
    rng = np.random.default_rng(seed)
    links = []
    for i in range(n_links):
        tau = np.sort(rng.uniform(0.1e-6, 1e-6, 6))
        links.append(dict(link_id=i, tx_id="c0", rx_id=i, tau_s=tau, a=1e-6 * (rng.standard_normal(6) + 1j)))
    return links, [dict(cell_id="c0", tx_power_dbm=30.0)]


@pytest.mark.parametrize("where", ["after_filter", "before_filter"])
def test_noise_folds_p_fold_against_time_domain_simulation(where):
    """Wideband noise added between the filter and the sampler appears P-fold in each recovered bin.

    Oracle: a direct time-domain simulation (N-sample filtered OFDM symbol + white noise at the full rate, every
    P-th sample kept, N/P-point DFT), independent of the view's spectral folding. Noise before the filter
    (antenna) is filtered and does not fold.
    """
    n, p, q = 4096, 16, 256
    links, cells = _many_links(48)
    if where == "after_filter":  # only the chain's own noise (antenna at 0 K), NF 10 dB
        cfg = SpikeTrainConfig(antenna_noise_temperature_k=0.0, noise_figure_db=10.0, cfo_max_hz=0.0,
                               stopband_rejection_db=float("inf"))
        var_sc = 1.380649e-23 * 290 * (100e6 / n) * (10.0 - 1.0)
    else:  # only antenna noise (noiseless chain, NF 0 dB)
        cfg = SpikeTrainConfig(antenna_noise_temperature_k=290.0, noise_figure_db=0.0, cfo_max_hz=0.0,
                               stopband_rejection_db=float("inf"))
        var_sc = 1.380649e-23 * 290 * (100e6 / n)
    out = get_view("spike_train")(_inputs(links, cells), cfg)
    H = _observed(out, links)
    idx = passband_subcarriers(n, p) + n // 2
    amp2 = 1.0 / n  # 30 dBm = 1 W over N subcarriers, W per subcarrier
    view_var = np.mean(np.abs(_cplx(out, "h_recovered") - H[:, idx]) ** 2)
    full_var = np.mean(np.abs(_cplx(out, "h_full") - H) ** 2)
    # direct time-domain simulation of the same receiver
    rng = np.random.default_rng(123)
    g = filter_response(cfg)
    errs = []
    for i in range(len(links)):
        c = np.exp(0.5j * np.pi * (2 * rng.integers(0, 4, n) + 1))
        X = np.sqrt(amp2) * c * H[i]
        s = np.sqrt(var_sc / n / 2)  # per-sample std so that the N-point DFT has var_sc per subcarrier
        w = s * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
        if where == "after_filter":
            x_t = np.fft.ifft(np.fft.ifftshift(X * g)) + w
        else:
            x_t = np.fft.ifft(np.fft.ifftshift((X + np.fft.fftshift(np.fft.fft(w))) * g))
        Y = np.fft.fftshift(np.fft.fft(x_t[::p]))
        bins = alias_bin(idx - n // 2, n, p) + q // 2
        rec = p * Y[bins] / (np.sqrt(amp2) * c[idx] * g[idx])
        errs.append(np.abs(rec - H[i, idx]) ** 2)
    td_var = np.mean(errs)
    np.testing.assert_allclose(view_var, td_var, rtol=0.1)
    fold = p if where == "after_filter" else 1
    np.testing.assert_allclose(view_var, fold * var_sc / amp2, rtol=0.1)
    np.testing.assert_allclose(full_var, var_sc / amp2, rtol=0.1)  # a full-rate receiver: no folding


def test_mems_shape_meets_its_rejection_and_bounds_recovery_error():
    n, p = 4096, 16
    cfg = SpikeTrainConfig(passband_shape="mems", add_noise=False)
    g = filter_response(cfg)
    idx = passband_subcarriers(n, p) + n // 2
    blocked = np.setdiff1d(np.arange(n), idx)
    # every blocked subcarrier (each folds onto a neighbouring passband's bins) meets the stated rejection
    assert 20 * np.log10(np.abs(g[blocked]).max()) <= -cfg.mems_rejection_db + 1e-6
    assert np.abs(g[idx]).max() == pytest.approx(1.0, abs=0.05)  # passband centres at ~0 dB
    # recovery error without noise: gain-weighted (as an SNR-weighted estimator uses the bins) and per bin
    links, cells = _scene(seed=4)
    out = get_view("spike_train")(_inputs(links, cells), cfg)
    H = _observed(out, links)[:, idx]
    e = _cplx(out, "h_recovered") - H
    w = np.abs(g[idx]) ** 2
    rel_w = np.sqrt(np.sum(w * np.abs(e) ** 2) / np.sum(w * np.abs(H) ** 2))
    # prediction: the blocked power folded onto each bin against that bin's passed power
    pred = np.sqrt(np.sum(np.abs(g[blocked]) ** 2) / np.sum(w))
    assert 0.3 * pred < rel_w < 3 * pred and rel_w < 0.1
    central = np.abs(g[idx]) > 10 ** (-1 / 20)  # bins within 1 dB of the passband peak
    assert np.sqrt(np.mean(np.abs(e[:, central]) ** 2) / np.mean(np.abs(H[:, central]) ** 2)) < 0.1
    gdb = np.array(out.column("passed_gain_db").to_pylist()[0])
    np.testing.assert_allclose(gdb, 20 * np.log10(np.abs(g[idx])), atol=1e-4)
    # a 2nd-order skirt at -3 dB on the passband edges (the former design) leaks ~50% onto neighbouring bins
    with pytest.raises(ValueError, match="mems_rejection_db"):
        SpikeTrainConfig(passband_shape="mems", mems_rejection_db=50.0)


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
        assert t["anchor_rank"][ref[0]] == 0 and sorted(t["anchor_rank"][i] for i in rows) == [0, 1, 2]
        assert all(t["rx_num_anchors"][i] == 3 for i in rows)
        by_rank = sorted(rows, key=lambda i: t["anchor_rank"][i])
        assert t["anchor_tx_ids"][rows[0]] == [t["tx_id"][i] for i in by_rank]
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


def test_adc_quantisation_noise_matches_sqnr():
    """b-bit I/Q quantisation, full scale 12 dB above the rms: error Δ²/12 per component, 6.02b + 4.77 - 12 dB down."""
    links, cells = _scene(seed=6)
    idx = passband_subcarriers(4096, 16) + 2048
    for bits in (4, 6):
        cfg = SpikeTrainConfig(add_noise=False, adc_bits=bits, stopband_rejection_db=float("inf"))
        out = get_view("spike_train")(_inputs(links, cells), cfg)
        H = _observed(out, links)[:, idx]
        rel_db = 10 * np.log10(np.mean(np.abs(_cplx(out, "h_recovered") - H) ** 2) / np.mean(np.abs(H) ** 2))
        assert rel_db == pytest.approx(-(6.02 * bits + 4.77 - 12.0), abs=1.5)
