"""folded-LTE view (DeepSync): sync SNR vs bandwidth, matched-filter timing, folding, labels, determinism."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twin.datasets import folded_lte as fl
from twin.datasets import lte
from twin.datasets.registry import ViewInputs, get_view
from twin.datasets.synthetic import make_cir_table, make_towers_table
from twin.errors import TwinInputError
from twin.schema import tensor_to_numpy

FS = 1.92e6
SSS_IN_SEGMENT = fl.SSS_START - fl.SEG_START  # 548


def _cell(bw, tau_s, freq=2.0e9, pci=101, seed=0, a=1.0):
    return fl._Cell(freq, lte.numerology(bw), pci, 1.0, np.atleast_1d(np.asarray(tau_s, float)),
                    np.atleast_1d(np.asarray(a, complex)), np.random.default_rng(seed))


def _inputs(links, cells, seed=3):
    return ViewInputs(cir=make_cir_table(links), towers=make_towers_table(cells),
                      receivers=pa.table({"rx_id": pa.array([], pa.int64())}), scene_path="", seed=seed, manifest={})


def test_sync_snr_falls_with_bandwidth():
    snr = [fl.sync_snr_db(bw) for bw in (1.4e6, 3e6, 5e6, 10e6, 15e6, 20e6)]
    assert all(b < a for a, b in zip(snr, snr[1:], strict=False)), snr
    # square-law oracle: sync AC power ~ N_s², interference ~ N_d² + 2 N_s N_d (N_s = 62 sync subcarriers,
    # N_d data subcarriers), so from 5 to 20 MHz the SNR drops by about 10·log10 of the ratio of the two
    ratio = [(nd * nd + 2 * 62 * nd) for nd in (300 - 72, 1200 - 72)]
    assert snr[2] - snr[5] == pytest.approx(10 * np.log10(ratio[1] / ratio[0]), abs=2.0)
    assert fl.sync_snr_db(10e6, seed=0) == fl.sync_snr_db(10e6, seed=0)


@pytest.mark.parametrize("bw,load,d", [(1.4e6, 1.0, 0), (1.4e6, 1.0, 23), (10e6, 0.0, 7), (20e6, 0.0, 40)])
def test_integer_delay_puts_matched_filter_peak_on_the_index(bw, load, d):
    cfg = fl.FoldedLteConfig(add_noise=False, adc_bits=0, data_load=load)
    res = fl.simulate_receiver([_cell(bw, d / FS)], cfg, 10, np.zeros(10), None)
    tmpl = fl._template(lte.numerology(bw), 101, res["K"], cfg, 1e-3)
    n_star, _ = fl.matched_filter(res["y"].sum(axis=0), tmpl, 5)
    assert n_star == SSS_IN_SEGMENT + d


@pytest.mark.parametrize("delta", [0.25, 0.5, 0.81])
def test_fractional_delay_is_a_sub_sample_shift(delta):
    """A path at (d + δ) samples gives exactly the samples of a path at d samples read δ samples earlier
    (sampling phase −δ): the template sits δ samples after the integer index."""
    cfg = fl.FoldedLteConfig(add_noise=False, adc_bits=0, data_load=0.0)
    d = 12
    y_frac = fl.simulate_receiver([_cell(10e6, (d + delta) / FS)], cfg, 1, np.zeros(1), None)["y"][0]
    y_int = fl.simulate_receiver([_cell(10e6, d / FS)], cfg, 1, np.array([-delta]), None)["y"][0]
    sl = slice(SSS_IN_SEGMENT - 20, SSS_IN_SEGMENT + 300)
    np.testing.assert_allclose(y_frac[sl], y_int[sl], atol=1e-5 * np.abs(y_int).max())
    # and a sub-sample interpolation of the correlation peak lands near d + δ
    tmpl = fl._template(lte.numerology(10e6), 101, 11, cfg, 1e-3)
    n_star, r = fl.matched_filter(y_frac, tmpl, 5)
    i = n_star - (137 + 5)
    frac = 0.5 * (r[i - 1] - r[i + 1]) / (r[i - 1] - 2 * r[i] + r[i + 1])
    assert n_star + frac - SSS_IN_SEGMENT == pytest.approx(d + delta, abs=0.2)


def test_template_is_the_squared_sync_symbols():
    """Oracle: SSS + PSS OFDM symbols built here at 1.92 MS/s (128-point IFFT, 9-sample CPs), squared."""
    num = lte.numerology(1.4e6)
    grid = np.zeros((2, 128), complex)
    k = np.concatenate([np.arange(-31, 0), np.arange(1, 32)])
    grid[0, k % 128] = lte.sss(33, 2, 0)
    grid[1, k % 128] = lte.pss(2)
    sym = np.fft.ifft(grid, axis=1) * 128
    wave = np.concatenate([sym[0, -9:], sym[0], sym[1, -9:], sym[1]])
    expect = np.abs(wave) ** 2
    tmpl = fl._template(num, 101, 2, fl.FoldedLteConfig(), 1e-3)
    assert tmpl.shape == (274,)
    rho = np.corrcoef(tmpl, expect)[0, 1]
    assert rho > 0.95


def test_cells_far_apart_add_in_power_near_ones_mix():
    """Cross terms at carrier differences beyond the detector band vanish; inside the band they fold in."""
    cfg = fl.FoldedLteConfig(add_noise=False, adc_bits=0, detector_bandwidth_hz=20e6)

    def run(cells):
        return fl.simulate_receiver(cells, cfg, 2, np.zeros(2), None)["y"]

    for df, separate in ((200e6, True), (12e6, False)):
        def a():
            return _cell(5e6, 1e-7, freq=2.0e9, pci=10, seed=1)

        def b(df=df):
            return _cell(5e6, 3e-7, freq=2.0e9 + df, pci=20, seed=2)

        both = run([a(), b()])
        clusters, _, K = fl._plan(np.array([2.0e9, 2.0e9 + df]), np.array([5e6, 5e6]), cfg)
        assert (len(clusters) == 2) == separate
        if separate:
            np.testing.assert_allclose(both, run([a()]) + run([b()]), rtol=0, atol=1e-5 * np.abs(both).max())
        else:
            assert np.abs(both - (run([a()]) + run([b()]))).max() > 0.05 * both.std()


def _links(n_rx=2, cells=("c0", "c1", "c2"), delay=(0.4e-6, 0.9e-6, 1.3e-6)):
    out = []
    for r in range(n_rx):
        for j, c in enumerate(cells):
            out.append(dict(link_id=100 * r + j, tx_id=c, rx_id=r, tau_s=[delay[j] + 1e-7 * r, delay[j] + 5e-7],
                            a=[2e-4, 5e-5j], los=j == 0, los_distance_m=(delay[j] + 1e-7 * r) * 299_792_458.0))
    return out


def test_view_rows_shapes_labels():
    cells = [dict(cell_id="c0", pci=7, bandwidth_hz=1.4e6, frequency_hz=1.9e9),
             dict(cell_id="c1", pci=301, bandwidth_hz=1.4e6, frequency_hz=1.9e9),
             dict(cell_id="c2", pci=-1, bandwidth_hz=1.4e6, frequency_hz=2.1e9)]
    cfg = fl.FoldedLteConfig(num_frames=4, clock_drift_ppm=20.0)
    out = get_view("folded_lte")(_inputs(_links(), cells), cfg)
    d = out.to_pydict()
    assert out.num_rows == 4  # c2 has no PCI: it transmits but gets no row
    assert set(d["tx_id"]) == {"c0", "c1"} and d["num_cochannel"] == [1, 1, 1, 1]
    win = tensor_to_numpy(out.column("windows"), out.schema.field("windows"))
    assert win.shape == (4, 4, 284)
    tpl = tensor_to_numpy(out.column("template"), out.schema.field("template"))
    assert tpl.shape == (4, 274) and np.allclose(tpl.mean(axis=1), 1.0)
    offs = tensor_to_numpy(out.column("true_offset_per_frame"), out.schema.field("true_offset_per_frame"))
    # drift: frame f is read f·19200·20e-6 samples later, so the template sits that much earlier
    np.testing.assert_allclose(np.diff(offs, axis=1), -19200 * 20e-6, atol=1e-9)
    for i in range(4):
        assert d["first_path_delay_s"][i] == pytest.approx(0.4e-6 + 1e-7 * d["rx_id"][i] + (0.5e-6 if d["tx_id"][i] == "c1" else 0))
        # the true offset is the first path's SSS arrival minus the window start, in 1.92-MS/s samples
        w0 = d["coarse_index"][i] - cfg.window_margin
        expect = fl.SSS_START + d["first_path_delay_s"][i] * FS - w0 - d["sampling_phase_samples"][i]
        assert d["true_offset_samples"][i] == pytest.approx(expect)
        # 1.4 MHz: strong folded SNR, so the coarse matched filter lands within a sample or so of the first
        # path (the second path, one sample later, and the co-channel cell pull it a little)
        assert abs(d["true_offset_samples"][i] - cfg.window_margin) < 2.0
        # an equally strong co-channel cell is the main interference: far below the lone-cell 1.4 MHz figure
        assert -20 < d["sync_snr_db"][i] < fl.sync_snr_db(1.4e6) - 10
    assert d["los"] == [True, False, True, False]
    assert b"twin.view_config" in out.schema.metadata


def test_view_is_deterministic_for_a_seed():
    cells = [dict(cell_id="c0", pci=7, bandwidth_hz=3e6), dict(cell_id="c1", pci=8, bandwidth_hz=3e6),
             dict(cell_id="c2", pci=9, bandwidth_hz=3e6)]
    v = get_view("folded_lte")
    cfg = fl.FoldedLteConfig(num_frames=2)
    a = v(_inputs(_links(n_rx=1), cells, seed=1), cfg)
    assert a.equals(v(_inputs(_links(n_rx=1), cells, seed=1), cfg))
    b = v(_inputs(_links(n_rx=1), cells, seed=2), cfg)
    wa = tensor_to_numpy(a.column("windows"), a.schema.field("windows"))
    wb = tensor_to_numpy(b.column("windows"), b.schema.field("windows"))
    assert not np.array_equal(wa, wb)


def test_bad_inputs_are_named():
    cells = [dict(cell_id="c0", pci=7, bandwidth_hz=7e6), dict(cell_id="c1", pci=8), dict(cell_id="c2", pci=9)]
    with pytest.raises(TwinInputError) as e:
        get_view("folded_lte")(_inputs(_links(n_rx=1), cells), fl.FoldedLteConfig(num_frames=1))
    assert e.value.field == "bandwidth_hz" and e.value.row == "c0" and "20e6" in e.value.fix
    with pytest.raises(ValueError, match="detector_bandwidth_hz"):
        fl.FoldedLteConfig(detector_bandwidth_hz=1e5)
    with pytest.raises(ValueError, match="LTE channel bandwidth"):
        fl.FoldedLteConfig(default_bandwidth_hz=4e6)


def test_fourth_order_cross_cluster_term_matches_time_average():
    """Baseband of |x1 + x2·e^{jΔωt}|⁴ with Δω outside the detector band = (P1 + P2)² + 2·P1·P2 (time average)."""
    cfg = fl.FoldedLteConfig(c4=0.3, detector_ref_dbm=0.0)
    p1, p2 = 0.7, 1.9
    t = np.arange(4096) / 4096
    x = np.sqrt(p1) + np.sqrt(p2) * np.exp(2j * np.pi * 37 * t)
    avg4 = np.mean(np.abs(x) ** 4)
    y = fl._detector([np.array([p1]), np.array([p2])], cfg)[0]
    assert y == pytest.approx(p1 + p2 + 0.3 * avg4 / 1e-3, rel=1e-9)
    # and the view runs with higher-order terms (templates through the same non-linearity)
    cells = [dict(cell_id="c0", pci=7, bandwidth_hz=1.4e6), dict(cell_id="c1", pci=8, bandwidth_hz=1.4e6,
                                                                  frequency_hz=2.4e9)]
    links = [dict(link_id=j, tx_id=c, rx_id=0, tau_s=[3e-7 * (j + 1)], a=[1e-4]) for j, c in enumerate(("c0", "c1"))]
    out = get_view("folded_lte")(_inputs(links, cells), fl.FoldedLteConfig(num_frames=2, c3=0.1, c4=0.05))
    assert out.num_rows == 2 and np.all(np.isfinite(out.column("sync_snr_db").to_numpy()))


def test_direct_reading_equals_oversampled_detector_path(monkeypatch):
    """With the detector band holding every product, reading the envelope at the 1.92-MS/s instants equals
    simulating at K·1.92 MS/s, low-passing and sampling (the general path used for narrow detectors)."""
    cfg = fl.FoldedLteConfig(add_noise=False, adc_bits=0, clock_drift_ppm=30.0)
    phase = 0.3 + np.arange(3) * 19200 * 30e-6

    def run(k_force):
        cells = [_cell(1.4e6, [2e-7, 9e-7], a=[1.0, 0.4j], seed=4),
                 _cell(1.4e6, 5e-7, freq=2.0e9 + 1.6e6, pci=44, seed=5, a=0.7)]
        if k_force:  # every cluster and sync component at k_force·1.92 MS/s
            monkeypatch.setattr(fl, "_cluster_k", lambda span, c: k_force)
        out = fl.simulate_receiver(cells, cfg, 3, phase, None)
        monkeypatch.undo()
        return out

    direct, over = run(None), run(4)
    assert direct["K"] == 1 and over["K"] == 4
    np.testing.assert_allclose(over["y"], direct["y"], rtol=0, atol=2e-5 * np.abs(direct["y"]).max())
    np.testing.assert_allclose(over["sync"][1], direct["sync"][1], rtol=0, atol=2e-5 * np.abs(direct["sync"][1]).max())
    # a detector narrower than the products low-passes them: different samples, less AC power
    narrow = fl.simulate_receiver([_cell(1.4e6, 2e-7, seed=4)], fl.FoldedLteConfig(
        add_noise=False, adc_bits=0, detector_bandwidth_hz=0.96e6), 3, phase, None)
    wide = fl.simulate_receiver([_cell(1.4e6, 2e-7, seed=4)], fl.FoldedLteConfig(add_noise=False, adc_bits=0),
                                3, phase, None)
    assert narrow["K"] > 1 and np.std(narrow["y"]) < np.std(wide["y"])


def test_read_is_the_band_limited_signal_at_the_instants():
    """Oracle: Σ_j c_j·exp(j2π(j·Δ + df)·t) evaluated directly at t = (n/k + φ_i)/1.92 MHz (absolute: segment start
    and frame index included), for carrier offsets on and off the line grid Δ and a drifting sampling phase."""
    rng = np.random.default_rng(3)
    frames, k = 3, 2
    phase = 0.37 + np.arange(frames) * 0.29
    d = FS / fl.SEG_LEN
    parts = [fl._Lines(-40, (rng.standard_normal((frames, 81)) + 1j * rng.standard_normal((frames, 81))).astype(np.complex64), df)
             for df in (0.0, 700 * d, -1234.25 * d, 0.5e6 + 0.3 * d)]
    parts.append(fl._Lines(-1500, (rng.standard_normal((1, 3001)) + 0j).astype(np.complex64), 0.6 * d))  # folds (B > m)
    got = fl._read(parts, k, phase, frames).copy()
    n = np.arange(fl.SEG_LEN * k)
    want = np.zeros_like(got, dtype=np.complex128)
    for p in parts:
        f = (p.j0 + np.arange(p.coef.shape[1])) * d
        for i in range(frames):
            t_rel = (n / k + phase[i]) / FS  # the lines' own time (periodic segment)
            t_abs = (n / k + fl.SEG_START + phase[i]) / FS + i * lte.FRAME_S  # the carrier offset's
            c = p.coef[min(i, p.coef.shape[0] - 1)].astype(np.complex128)
            want[i] += np.exp(2j * np.pi * np.outer(t_rel, f)) @ c * np.exp(2j * np.pi * p.df_hz * t_abs)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())


def test_real_lowpass_sampling_matches_the_complex_reference():
    """The real-input low-pass + sampling equals the plain complex-DFT version (shift, fold, inverse DFT)."""
    rng = np.random.default_rng(5)
    K, frames = 6, 4
    y = rng.random((frames, fl.SEG_LEN * K)).astype(np.float32)
    cfg = fl.FoldedLteConfig(detector_bandwidth_hz=4.1e6)
    for phase in (np.full(frames, 0.3), 0.3 + np.arange(frames) * 0.17):
        ref = fl._sample_spectrum(fl._lowpass_spectrum(y, K, cfg), K, phase)
        np.testing.assert_allclose(fl._lowpass_sample(y, K, cfg, phase), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_narrow_clusters_read_directly_beside_an_oversampled_one(monkeypatch):
    """Square law: a cluster whose products fit the detector band is read at 1.92 MS/s even when another cluster
    of the receiver needs K > 1; the sum equals simulating every cluster at that K."""
    cfg = fl.FoldedLteConfig(add_noise=False, adc_bits=0, detector_bandwidth_hz=6e6)
    phase = np.full(2, 0.45)

    def cells():
        return [_cell(5e6, 2e-7, freq=1.8e9, pci=1, seed=1), _cell(5e6, 4e-7, freq=1.8e9 + 7.3e6, pci=2, seed=2),
                _cell(1.4e6, 3e-7, freq=2.6e9, pci=3, seed=3)]

    mixed = fl.simulate_receiver(cells(), cfg, 2, phase, None)
    K = mixed["K"]
    assert K > 1
    monkeypatch.setattr(fl, "_cluster_k", lambda span, c: K)
    every = fl.simulate_receiver(cells(), cfg, 2, phase, None)
    np.testing.assert_allclose(mixed["y"], every["y"], rtol=0, atol=2e-5 * np.abs(every["y"]).max())
    for i in range(3):
        np.testing.assert_allclose(mixed["sync"][i], every["sync"][i], rtol=0, atol=2e-5 * np.abs(every["sync"][i]).max())


def _placement_rows(placement, **kw):
    cells = [dict(cell_id="c0", pci=7, bandwidth_hz=5e6, frequency_hz=1.9e9),
             dict(cell_id="c1", pci=301, bandwidth_hz=5e6, frequency_hz=1.9e9),
             dict(cell_id="c2", pci=44, bandwidth_hz=5e6, frequency_hz=2.1e9)]
    cfg = fl.FoldedLteConfig(num_frames=3, window_placement=placement, **kw)
    out = get_view("folded_lte")(_inputs(_links(n_rx=4), cells), cfg)
    return out, out.to_pydict(), cfg


def test_truth_jitter_windows_hold_the_truth_within_j():
    out, d, cfg = _placement_rows("truth_jitter", jitter_max_samples=10)
    assert out.num_rows == 12
    err = np.array(d["coarse_error_samples"])
    assert np.all(np.abs(err) <= 10) and len(set(err.tolist())) > 3  # uniform integers, not all equal
    for i in range(out.num_rows):
        # the label is the true template start inside the stored window: margin - error + the sub-sample part
        true_start = d["true_start_samples"][i]
        assert d["true_offset_samples"][i] == pytest.approx(true_start - d["window_start"][i])
        frac = true_start - np.rint(true_start)
        assert d["true_offset_samples"][i] == pytest.approx(cfg.window_margin - err[i] + frac)
        assert d["coarse_index"][i] - d["window_start"][i] == cfg.window_margin


def test_coarse_error_and_truth_in_window_match_a_recomputation():
    out, d, cfg = _placement_rows("coarse", template_len=276, detector_noise_dbm=None)
    win = tensor_to_numpy(out.column("windows"), out.schema.field("windows"))
    assert win.shape[-1] == 286 and cfg.window_len == 286  # DeepSync §6.1 sizes
    fs = 1.92e6
    for i in range(out.num_rows):
        # independent: the first path's SSS arrival in frame samples, from the stored delay and sampling phase
        start = fl.SSS_START + d["first_path_delay_s"][i] * fs - d["sampling_phase_samples"][i]
        assert d["true_start_samples"][i] == pytest.approx(start)
        assert d["coarse_error_samples"][i] == d["coarse_index"][i] - int(np.rint(start))
        w0, w1 = d["window_start"][i], d["window_start"][i] + 286
        assert d["truth_in_window"][i] == (w0 <= start and start + 276 <= w1)
        assert d["true_offset_samples"][i] == pytest.approx(start - w0)


def test_missing_pci_is_fixed_and_weak_cells_get_no_row():
    assert fl.cell_pci(-1, "cellA") == fl.cell_pci(-1, "cellA") and 0 <= fl.cell_pci(-1, "x") <= 503
    assert fl.cell_pci(17, "cellA") == 17
    cells = [dict(cell_id="c0", pci=7, bandwidth_hz=1.4e6, frequency_hz=1.9e9),
             dict(cell_id="c1", pci=8, bandwidth_hz=1.4e6, frequency_hz=1.9e9)]
    links = _links(n_rx=1, cells=("c0", "c1"), delay=(0.4e-6, 0.9e-6))
    links[1]["a"] = [1e-9, 0j]  # -134 dBm at 46 dBm: far under the -70 dBm sensitivity
    d = get_view("folded_lte")(_inputs(links, cells), fl.FoldedLteConfig(num_frames=2)).to_pydict()
    assert d["tx_id"] == ["c0"] and d["rx_power_dbm"][0] > -70


def test_cfo_decorrelates_cochannel_cross_terms_across_frames():
    """Two co-channel cells: without CFO the cross term |x1 + x2|² − |x1|² − |x2|² has the same phase in every
    frame (the oscillator phase is one per cell), so its frame sum grows as N; with a CFO of ~100 Hz it rotates
    by 2π·Δf·10 ms per frame and the sum grows as √N."""
    cfg = fl.FoldedLteConfig(add_noise=False, adc_bits=0, data_load=0.0)
    n = 16

    def cross_sum(df):
        a = _cell(5e6, 1e-7, pci=10, seed=1)
        b = _cell(5e6, 3e-7, pci=20, seed=2)
        b.cfo_hz = df
        both = fl.simulate_receiver([a, b], cfg, n, np.zeros(n), None)["y"]
        a2 = fl.simulate_receiver([_cell(5e6, 1e-7, pci=10, seed=1)], cfg, n, np.zeros(n), None)["y"]
        b1 = _cell(5e6, 3e-7, pci=20, seed=2)
        b1.cfo_hz = df
        b2 = fl.simulate_receiver([b1], cfg, n, np.zeros(n), None)["y"]
        x = both - a2 - b2
        return np.abs(x.sum(axis=0)).sum() / np.abs(x).sum(axis=1).mean()

    assert cross_sum(0.0) == pytest.approx(n, rel=1e-3)
    assert cross_sum(37.0) < 0.5 * n
    assert abs(fl.cell_cfo_hz("c0", 2e9, 0.05)) <= 100.0 and fl.cell_cfo_hz("c0", 2e9, 0.05) == fl.cell_cfo_hz("c0", 2e9, 0.05)


def test_captures_are_independent_realisations_of_the_same_channels():
    cells = [dict(cell_id="c0", pci=7, bandwidth_hz=1.4e6, frequency_hz=1.9e9),
             dict(cell_id="c1", pci=301, bandwidth_hz=1.4e6, frequency_hz=1.9e9)]
    v = get_view("folded_lte")
    one = v(_inputs(_links(n_rx=1, cells=("c0", "c1"), delay=(0.4e-6, 0.9e-6)), cells), fl.FoldedLteConfig(num_frames=2))
    cfg = fl.FoldedLteConfig(num_frames=2, captures=3, window_placement="truth_jitter")
    out = v(_inputs(_links(n_rx=1, cells=("c0", "c1"), delay=(0.4e-6, 0.9e-6)), cells), cfg)
    d = out.to_pydict()
    assert out.num_rows == 3 * one.num_rows and sorted(set(d["capture"])) == [0, 1, 2]
    win = tensor_to_numpy(out.column("windows"), out.schema.field("windows"))
    for c in ("c0", "c1"):
        rows = [i for i in range(out.num_rows) if d["tx_id"][i] == c]
        assert len({d["link_id"][i] for i in rows}) == 1  # the same traced link ...
        # ... a new sampling phase per capture, and the label follows it exactly
        assert len({round(d["sampling_phase_samples"][i], 9) for i in rows}) == 3
        for i in rows:
            expect = fl.SSS_START + d["first_path_delay_s"][i] * FS - d["sampling_phase_samples"][i]
            assert d["true_start_samples"][i] == pytest.approx(expect)
            assert d["true_offset_samples"][i] == pytest.approx(expect - d["window_start"][i])
        # fresh data symbols and noise: the captures' windows differ
        assert not np.allclose(win[rows[0]], win[rows[1]])
    # 1.4 MHz, strong cells: detected well above the ~14.6 dB noise-only CFAR ratio; a threshold drops rows
    assert min(d["detection_db"]) > 15
    hi = v(_inputs(_links(n_rx=1, cells=("c0", "c1"), delay=(0.4e-6, 0.9e-6)), cells),
           fl.FoldedLteConfig(num_frames=2, captures=3, detection_min_db=max(d["detection_db"]) - 1e-3))
    assert 0 < hi.num_rows < out.num_rows


def test_detection_ratio_of_white_noise_and_of_a_peak():
    r = np.random.default_rng(0).standard_normal(700)
    assert 11 < fl.detection_db(r) < 19  # max of 700 chi-square(1) over their median: ~14.6 dB
    r[300] = 100.0
    assert fl.detection_db(r) > 40
    with pytest.raises(ValueError, match="captures"):
        fl.FoldedLteConfig(captures=0)
