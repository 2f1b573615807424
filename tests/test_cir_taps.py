"""cir-taps view (VIn-Loc): sinc taps at 2B, global synchronisation, receive ULA and AoA-ToF image."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twin.datasets.cir_taps import CirTapsConfig
from twin.datasets.registry import ViewInputs, get_view
from twin.datasets.synthetic import make_cir_table, make_towers_table
from twin.schema import tensor_to_numpy


def _inputs(links, cells, seed=1):
    return ViewInputs(cir=make_cir_table(links), towers=make_towers_table(cells),
                      receivers=pa.table({"rx_id": pa.array([], pa.int64())}), scene_path="", seed=seed, manifest={})


def _col(t, name):
    return tensor_to_numpy(t.column(name), t.schema.field(name))


def _cplx(t, name):
    v = _col(t, name)
    return v[..., 0] + 1j * v[..., 1]


@pytest.mark.parametrize("tau", [250e-9, 251.7e-9, 1.0e-6 + 2.4e-9])
def test_single_path_peak_and_energy(tau):
    a = 0.3 - 0.4j
    out = get_view("cir_taps")(_inputs([dict(link_id=1, tx_id="c0", rx_id=7, tau_s=[tau], a=[a])],
                                       [dict(cell_id="c0")]), CirTapsConfig())
    h = _cplx(out, "cir")[0, 0, 0]  # (receiver, cell, antenna, tap)
    assert h.shape == (256,)
    assert np.argmax(np.abs(h)) == round(tau * 200e6)  # tap 0 is t = 0, taps 5 ns apart (2B = 200 MHz)
    # Parseval for the sinc interpolator: Σ_l sinc²(l - x) = 1 (the window holds all but the far tails)
    assert np.sum(np.abs(h) ** 2) == pytest.approx(abs(a) ** 2, rel=5e-3)
    if float(tau * 200e6).is_integer():
        assert h[round(tau * 200e6)] == pytest.approx(a, abs=1e-6)
    np.testing.assert_allclose(_col(out, "cir_magnitude")[0, 0, 0], np.abs(h), atol=1e-7)


def test_per_receiver_sets_sorted_padded_with_positions():
    links = [
        dict(link_id=1, tx_id="c0", rx_id=1, tau_s=[300e-9], a=[1e-3], tx=(0, 0, 30), rx=(5, 6, 1.5)),
        dict(link_id=2, tx_id="c1", rx_id=1, tau_s=[400e-9], a=[3e-3], tx=(50, 0, 30), rx=(5, 6, 1.5)),
        dict(link_id=3, tx_id="c2", rx_id=1, tau_s=[500e-9], a=[2e-3], tx=(0, 60, 30), rx=(5, 6, 1.5)),
        dict(link_id=4, tx_id="c0", rx_id=2, tau_s=[200e-9], a=[1e-3], tx=(0, 0, 30), rx=(9, 9, 1.5)),
    ]
    cells = [dict(cell_id=c) for c in ("c0", "c1", "c2")]
    out = get_view("cir_taps")(_inputs(links, cells), CirTapsConfig(max_cells=2))
    d = out.to_pydict()
    assert d["rx_id"] == [1, 2]
    assert d["tx_ids"] == [["c1", "c2"], ["c0"]]  # strongest first, capped at max_cells
    assert d["num_cells"] == [2, 1] and d["num_cells_reaching"] == [3, 1]
    mask = _col(out, "cell_mask")
    assert mask.tolist() == [[True, True], [True, False]]
    pos = _col(out, "cell_position")
    np.testing.assert_allclose(pos[0], [[50, 0, 30], [0, 60, 30]])
    assert (d["rx_x"], d["rx_y"]) == ([5.0, 9.0], [6.0, 9.0])
    h = _cplx(out, "cir")
    assert np.all(h[1, 1] == 0)  # padding
    assert np.argmax(np.abs(h[0, 0, 0])) == 80  # 400 ns · 200 MHz: globally synchronised
    assert b"twin.view_config" in out.schema.metadata


def test_rx_array_steering_and_aoa_peak():
    # a single path arriving horizontally at 60° from the array axis (+x): cos ψ = 0.5
    theta, phi = np.pi / 2, np.pi / 3
    links = [dict(link_id=1, tx_id="c0", rx_id=0, tau_s=[100e-9], a=[1.0], theta_r=[theta], phi_r=[phi])]
    cfg = CirTapsConfig(rx_array=True, num_rx_antennas=8, aoa_bins=8)
    out = get_view("cir_taps")(_inputs(links, [dict(cell_id="c0")]), cfg)
    h = _cplx(out, "cir")[0, 0]  # (antenna, tap)
    assert h.shape == (8, 256)
    n = np.arange(8)
    np.testing.assert_allclose(h[:, 20], np.exp(1j * np.pi * n * 0.5), atol=1e-5)  # a(θ)_n = e^{jπ n cos θ}
    img = _col(out, "aoa_tof")[0, 0]  # (aoa bin, tap), fftshift-ed
    b, tap = np.unravel_index(np.argmax(img), img.shape)
    assert tap == 20
    assert b - 4 == round(8 * 0.5 / 2)  # spatial frequency cos ψ / 2 cycles per element
    assert img[b, tap] == pytest.approx(8.0, rel=1e-5)


def test_config_validation_and_determinism():
    with pytest.raises(ValueError, match="num_taps"):
        CirTapsConfig(num_taps=0)
    with pytest.raises(ValueError, match="aoa_bins"):
        CirTapsConfig(rx_array=True, num_rx_antennas=8, aoa_bins=4)
    links = [dict(link_id=k, tx_id=f"c{k}", rx_id=0, tau_s=[1e-7 * (k + 1), 3e-7], a=[1e-3, 1e-4j]) for k in range(3)]
    cells = [dict(cell_id=f"c{k}") for k in range(3)]
    v = get_view("cir_taps")
    cfg = CirTapsConfig(snr_db=10.0)
    assert v(_inputs(links, cells, 4), cfg).equals(v(_inputs(links, cells, 4), cfg))
    assert not v(_inputs(links, cells, 4), cfg).equals(v(_inputs(links, cells, 5), cfg))


def test_kernels_match_sionna_on_traced_paths():
    """cfr and taps equal Sionna RT's Paths.cfr / Paths.taps (absolute delays) on a traced street canyon."""
    import mitsuba as mi

    from twin.datasets.channel import cfr, taps
    from twin.datasets.spike_train import sionna_reference_paths

    paths, tau, a = sionna_reference_paths(12, max_depth=2, samples_per_src=10_000)
    assert np.count_nonzero(np.abs(a)) > 12
    f = (np.arange(1024) - 512) * 97.65625e3
    h_ref = np.asarray(paths.cfr(mi.Float(f), normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    scale = np.abs(a).sum(1).max()
    assert np.abs(cfr(tau, a, f) - h_ref).max() < 2e-5 * scale
    t_ref = np.asarray(paths.taps(200e6, 0, 255, normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    assert np.abs(taps(tau, a, 200e6, 256) - t_ref).max() < 2e-5 * scale


def _first_path_oracle(links, rate_hz, num_taps):
    """(rx_id, tx_id) -> in window, from the link dicts directly: min delay · rate <= D - 1."""
    return {(d["rx_id"], d["tx_id"]): min(d["tau_s"]) * rate_hz <= num_taps - 1 for d in links}


@pytest.mark.parametrize("mode", ["drop", "mask"])
def test_first_path_in_window_matches_recomputation(mode):
    rng = np.random.default_rng(3)
    links, lid = [], 0
    for rx in range(30):
        for c in range(4):
            t0 = rng.uniform(0.2e-6, 2.0e-6)  # window = 256 / 200 MHz = 1.28 µs: about half lie past it
            lid += 1
            links.append(dict(link_id=lid, tx_id=f"c{c}", rx_id=rx, tau_s=[t0, t0 + 0.1e-6],
                              a=[rng.uniform(1e-4, 1e-3), 1e-4], tx=(10.0 * c, 0, 30)))
    cells = [dict(cell_id=f"c{c}") for c in range(4)]
    out = get_view("cir_taps")(_inputs(links, cells), CirTapsConfig(max_cells=4, out_of_window=mode))
    oracle = _first_path_oracle(links, 200e6, 256)
    d = out.to_pydict()
    fpw, mask, h = _col(out, "first_path_in_window"), _col(out, "cell_mask"), _cplx(out, "cir")
    fpd = _col(out, "first_path_delay_s")
    n_checked = 0
    for r, rx in enumerate(d["rx_id"]):
        want_in = [tx for (rr, tx), ok in oracle.items() if rr == rx and ok]
        want_out = [tx for (rr, tx), ok in oracle.items() if rr == rx and not ok]
        assert d["num_cells_out_of_window"][r] == len(want_out)
        assert sorted(t for t, m in zip(d["tx_ids"][r], mask[r], strict=False) if m) == sorted(want_in)
        for k, tx in enumerate(d["tx_ids"][r]):
            assert fpw[r, k] == oracle[(rx, tx)] and mask[r, k] == oracle[(rx, tx)]
            tau0 = next(x["tau_s"][0] for x in links if x["rx_id"] == rx and x["tx_id"] == tx)
            assert fpd[r, k] == pytest.approx(tau0)
            if not oracle[(rx, tx)]:
                assert np.all(h[r, k] == 0)  # never sinc tails of paths past the window
            n_checked += 1
        if mode == "drop":
            assert not set(d["tx_ids"][r]) & set(want_out)
        else:
            assert sorted(d["tx_ids"][r]) == sorted(want_in + want_out)
    assert n_checked > 30 and 0 < sum(d["num_cells_out_of_window"]) < len(links)


def test_cover_scene_window_holds_the_farthest_receiver():
    from twin.constants import SPEED_OF_LIGHT
    from twin.datasets.cir_taps import max_tower_distance_m, taps_to_cover

    bounds = (-300.0, -200.0, 300.0, 200.0)
    cells = [dict(cell_id="c0", x=-290.0, y=-190.0, z=30.0), dict(cell_id="c1", x=0.0, y=0.0, z=20.0)]
    d_far = float(np.hypot(590.0, 390.0))  # c0 to the opposite corner (300, 200, 0): horizontal part
    assert max_tower_distance_m(bounds, [[-290, -190, 30], [0, 0, 20]]) == pytest.approx(np.hypot(d_far, 30.0))
    # a LOS receiver at the far corner: its only path arrives after the default 1.28 µs (384 m) window
    tau = np.hypot(d_far, 28.5) / SPEED_OF_LIGHT
    links = [dict(link_id=1, tx_id="c0", rx_id=0, tau_s=[tau], a=[1e-3], tx=(-290, -190, 30), rx=(300, 200, 1.5))]
    vin = ViewInputs(cir=make_cir_table(links), towers=make_towers_table(cells),
                     receivers=pa.table({"rx_id": pa.array([], pa.int64())}), scene_path="", seed=1,
                     manifest={"area": {"bounds_local": list(bounds)}})
    fixed = get_view("cir_taps")(vin, CirTapsConfig())
    assert fixed.column("num_cells").to_pylist() == [0] and fixed.column("num_cells_out_of_window").to_pylist() == [1]
    cover = get_view("cir_taps")(vin, CirTapsConfig(window="cover_scene"))
    h = _cplx(cover, "cir")[0, 0, 0]
    D = h.shape[0]
    assert D == taps_to_cover(max_tower_distance_m(bounds, [[-290, -190, 30], [0, 0, 20]]), 200e6, 256)
    assert D % 16 == 0 and D * SPEED_OF_LIGHT / 200e6 >= np.hypot(d_far, 30.0)
    assert np.argmax(np.abs(h)) == round(tau * 200e6) and _col(cover, "first_path_in_window")[0, 0]
    meta = cover.schema.field("cir").metadata
    assert float(meta[b"window_m"]) == pytest.approx(D * SPEED_OF_LIGHT / 200e6)
    assert float(meta[b"max_distance_m"]) == pytest.approx(np.hypot(d_far, 30.0))
    with pytest.raises(ValueError, match="bounds_local"):
        get_view("cir_taps")(_inputs(links, cells), CirTapsConfig(window="cover_scene"))


def test_common_noise_variance_is_the_same_for_every_cell():
    from twin.datasets.noise import thermal_noise_w

    links = [dict(link_id=1, tx_id="c0", rx_id=0, tau_s=[100e-9], a=[1e-2]),
             dict(link_id=2, tx_id="c1", rx_id=0, tau_s=[200e-9], a=[1e-5])]
    cells = [dict(cell_id="c0"), dict(cell_id="c1")]
    sigma2 = 1e-8
    out = get_view("cir_taps")(_inputs(links, cells), CirTapsConfig(noise_variance=sigma2))
    h = _cplx(out, "cir")[0, :, 0]  # (cell, tap)
    far = np.r_[0:10, 60:256]  # taps away from both paths' main lobes
    for k in range(2):
        assert np.mean(np.abs(h[k, far]) ** 2) == pytest.approx(sigma2, rel=0.25)
    per_cell = _cplx(get_view("cir_taps")(_inputs(links, cells), CirTapsConfig(snr_db=10.0)), "cir")[0, :, 0]
    v = [np.mean(np.abs(per_cell[k, far]) ** 2) for k in range(2)]
    assert v[0] / v[1] == pytest.approx(1e6, rel=0.5)  # per-cell SNR: noise follows each cell's power
    cfg = CirTapsConfig(thermal_noise=True, tx_power_dbm=30.0, noise_figure_db=7.0)
    assert cfg.common_noise_variance() == pytest.approx(1.380649e-23 * 290 * 200e6 * 10**0.7 / 1.0)
    assert cfg.common_noise_variance() == pytest.approx(thermal_noise_w(200e6, 7.0))
    with pytest.raises(ValueError, match="one noise model"):
        CirTapsConfig(snr_db=10.0, noise_variance=1e-9)


def test_group_links_matches_naive_and_is_not_quadratic():
    import time

    from twin.datasets.cir_taps import group_links

    rng = np.random.default_rng(0)
    rx = rng.integers(0, 50, 400)
    gain = rng.normal(-100, 10, 400)
    keep = rng.random(400) < 0.8
    rx_all, sel, slot, r_of, counts = group_links(rx, gain, keep, 3)
    for r, x in enumerate(rx_all):
        naive = np.flatnonzero((rx == x) & keep)
        naive = naive[np.argsort(-gain[naive])][:3]
        np.testing.assert_array_equal(sel[r_of == r], naive)
        np.testing.assert_array_equal(slot[r_of == r], np.arange(len(naive)))
        assert counts[r] == np.sum(rx == x)
    n = 400_000  # 100k receivers x 4 cells: a quadratic scan would take minutes
    rx = np.repeat(np.arange(100_000), 4)
    t0 = time.perf_counter()
    rx_all, sel, slot, r_of, counts = group_links(rx, rng.normal(size=n), np.ones(n, bool), 16)
    assert len(rx_all) == 100_000 and len(sel) == n and time.perf_counter() - t0 < 5.0
