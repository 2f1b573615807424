"""cir-taps view (VIn-Loc): sinc taps at 2B, global synchronisation, receive ULA and AoA-ToF image."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twin.datasets.cir_taps import CirTapsConfig
from twin.datasets.ofdm import make_cir_table, make_towers_table
from twin.datasets.registry import ViewInputs, get_view
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

    from twin.datasets.ofdm import cfr, taps
    from twin.datasets.spike_train import sionna_reference_paths

    paths, tau, a = sionna_reference_paths(12, max_depth=2, samples_per_src=10_000)
    assert np.count_nonzero(np.abs(a)) > 12
    f = (np.arange(1024) - 512) * 97.65625e3
    h_ref = np.asarray(paths.cfr(mi.Float(f), normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    scale = np.abs(a).sum(1).max()
    assert np.abs(cfr(tau, a, f) - h_ref).max() < 2e-5 * scale
    t_ref = np.asarray(paths.taps(200e6, 0, 255, normalize_delays=False, out_type="numpy"))[:, 0, 0, 0, 0, :]
    assert np.abs(taps(tau, a, 200e6, 256) - t_ref).max() < 2e-5 * scale
