"""LTE sequences (TS 36.211 §6.11) and the shared OFDM/CIR kernels, against oracles written out here."""

from __future__ import annotations

import numpy as np
import pytest

from twin.datasets import lte
from twin.datasets.channel import apply_cir, cfr, paths_from_cir, taps
from twin.datasets.modem import ofdm_demodulate, ofdm_modulate
from twin.datasets.synthetic import make_cir_table

# ----------------------------------------------------------------------------- independent oracles


def zadoff_chu_63(u: int) -> np.ndarray:
    """Length-63 Zadoff-Chu sequence exp(-jπ u n (n+1) / 63), n = 0..62."""
    n = np.arange(63)
    return np.exp(-1j * np.pi * u * n * (n + 1) / 63)


def oracle_pss(n_id2: int) -> np.ndarray:
    """PSS = the root-u ZC sequence of length 63 punctured at its centre (n = 31, the DC subcarrier)."""
    u = {0: 25, 1: 29, 2: 34}[n_id2]
    z = zadoff_chu_63(u)
    return np.delete(z, 31)


def lfsr(feedback: list[int]) -> np.ndarray:
    """x(i+5) = XOR of x(i+t), t in feedback; x(0..4) = 0,0,0,0,1; mapped 0 -> +1, 1 -> -1."""
    x = [0, 0, 0, 0, 1]
    while len(x) < 31:
        i = len(x) - 5
        v = 0
        for t in feedback:
            v ^= x[i + t]
        x.append(v)
    return np.array([1 if b == 0 else -1 for b in x])


def table_m0_m1() -> list[tuple[int, int]]:
    """TS 36.211 Table 6.11.2.1-1 rebuilt from its structure: runs of (m0, m0 + d) for d = 1, 2, …,
    m0 = 0 … 30 - d, listed in N_ID1 order (30 + 29 + 28 + 27 + 26 + 25 + 3 = 168 rows)."""
    rows = []
    d = 1
    while len(rows) < 168:
        for m0 in range(0, 31 - d):
            rows.append((m0, m0 + d))
            if len(rows) == 168:
                break
        d += 1
    return rows


def oracle_sss(n_id1: int, n_id2: int, subframe: int) -> np.ndarray:
    s = lfsr([2, 0])
    c = lfsr([3, 0])
    z = lfsr([4, 2, 1, 0])
    m0, m1 = table_m0_m1()[n_id1]
    out = np.zeros(62)
    for n in range(31):
        s0 = s[(n + m0) % 31]
        s1 = s[(n + m1) % 31]
        c0 = c[(n + n_id2) % 31]
        c1 = c[(n + n_id2 + 3) % 31]
        z1_m0 = z[(n + (m0 % 8)) % 31]
        z1_m1 = z[(n + (m1 % 8)) % 31]
        if subframe == 0:
            out[2 * n] = s0 * c0
            out[2 * n + 1] = s1 * c1 * z1_m0
        else:
            out[2 * n] = s1 * c0
            out[2 * n + 1] = s0 * c1 * z1_m1
    return out


# --------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("n_id2", [0, 1, 2])
def test_pss_is_punctured_zadoff_chu(n_id2):
    d = lte.pss(n_id2)
    assert d.shape == (62,) and np.iscomplexobj(d)
    np.testing.assert_allclose(d, oracle_pss(n_id2), atol=1e-12)
    np.testing.assert_allclose(np.abs(d), 1.0, atol=1e-12)


def test_sss_table_rows():
    table = table_m0_m1()
    assert table[0] == (0, 1) and table[30] == (0, 2) and table[167] == (2, 9)
    for n_id1 in range(168):
        assert lte.sss_indices(n_id1) == table[n_id1]


def test_sss_all_cells_both_subframes():
    for n_id1 in range(168):
        for n_id2 in range(3):
            for sf in (0, 5):
                np.testing.assert_array_equal(lte.sss(n_id1, n_id2, sf), oracle_sss(n_id1, n_id2, sf))
    # the two subframes differ (that is how frame timing is found)
    assert not np.array_equal(lte.sss(10, 1, 0), lte.sss(10, 1, 5))


def test_sequence_argument_errors():
    with pytest.raises(ValueError, match="n_id2"):
        lte.pss(3)
    with pytest.raises(ValueError, match="n_id1"):
        lte.sss(168, 0, 0)
    with pytest.raises(ValueError, match="subframe"):
        lte.sss(0, 0, 1)
    with pytest.raises(ValueError, match="LTE channel bandwidth"):
        lte.numerology(7e6)


def test_numerology_cp_and_rates():
    n = lte.numerology(10e6)
    assert (n.n_rb, n.n_fft, n.fs_hz) == (50, 1024, 15.36e6)
    assert n.cp_lengths().tolist() == [80, 72, 72, 72, 72, 72, 72]
    # a slot is 0.5 ms at every bandwidth
    for num in lte.NUMEROLOGY.values():
        assert (num.cp_lengths().sum() + 7 * num.n_fft) / num.fs_hz == pytest.approx(0.5e-3)
    assert lte.numerology(1.4e6).cp_lengths().tolist() == [10, 9, 9, 9, 9, 9, 9]


@pytest.mark.parametrize("bw", [1.4e6, 10e6])
def test_ofdm_round_trip(bw):
    num = lte.numerology(bw)
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((3, 7, num.n_sc)) + 1j * rng.standard_normal((3, 7, num.n_sc))) / np.sqrt(2)
    x = ofdm_modulate(X, num.subcarriers(), num.n_fft, num.cp_lengths())
    assert x.shape == (3, num.cp_lengths().sum() + 7 * num.n_fft)
    np.testing.assert_allclose(ofdm_demodulate(x, num.subcarriers(), num.n_fft, num.cp_lengths(), 7), X, atol=1e-10)
    # the cyclic prefix is a copy of the symbol's tail
    cp0 = num.cp_lengths()[0]
    np.testing.assert_allclose(x[:, :cp0], x[:, num.n_fft : num.n_fft + cp0], atol=1e-12)
    # unnormalised IDFT: mean sample power = summed subcarrier power
    assert np.mean(np.abs(x) ** 2) == pytest.approx(np.mean(np.sum(np.abs(X) ** 2, -1)), rel=0.05)


def test_cfr_matches_direct_sum_uniform_and_not():
    rng = np.random.default_rng(2)
    tau = rng.uniform(0, 5e-6, (7, 13))
    a = (rng.standard_normal((7, 13)) + 1j * rng.standard_normal((7, 13))).astype(np.complex64)
    a[:, 10:] = 0  # padding
    for f in ((np.arange(4096) - 2048) * 24.414e3, np.sort(rng.uniform(-5e7, 5e7, 300)), np.arange(1001) * 1e4 + 3e5):
        ref = (a[:, :, None] * np.exp(-2j * np.pi * f[None, None, :] * tau[:, :, None])).sum(1)
        got = cfr(tau, a, f)
        assert np.abs(got - ref).max() <= 2e-5 * np.abs(a).sum(1).max()
    # Parseval over a full DFT grid: mean |H|² = Σ|a|² when delays sit on the grid's time bins
    n, df = 512, 1e5
    tau = np.arange(5)[None, :] / (n * df) * 3
    a = np.ones((1, 5), np.complex64)
    H = cfr(tau, a, np.arange(n) * df)
    assert np.mean(np.abs(H) ** 2) == pytest.approx(5.0, rel=1e-5)


def test_taps_sionna_convention():
    rng = np.random.default_rng(3)
    W = 200e6
    tau = rng.uniform(0, 1e-6, (5, 9))
    tau[0, 0] = 17 / W  # exactly on a tap
    a = (rng.standard_normal((5, 9)) + 1j * rng.standard_normal((5, 9))).astype(np.complex64)
    ref = (a[:, :, None] * np.sinc(np.arange(256)[None, None, :] - W * tau[:, :, None])).sum(1)
    got = taps(tau, a, W, 256)
    assert np.abs(got - ref).max() <= 1e-5 * np.abs(a).sum(1).max()
    one = taps(np.array([17 / W]), np.array([0.5 - 0.5j]), W, 64)
    assert np.argmax(np.abs(one)) == 17 and one[17] == pytest.approx(0.5 - 0.5j, abs=1e-6)
    with pytest.raises(ValueError, match="bandwidth_hz"):
        taps(tau, a, 0.0, 4)


def test_apply_cir_integer_and_fractional_delay():
    rng = np.random.default_rng(4)
    fs = 10e6
    n = 400
    # band-limited test signal
    X = np.zeros(n, complex)
    X[:60] = rng.standard_normal(60) + 1j * rng.standard_normal(60)
    X[-60:] = rng.standard_normal(60) + 1j * rng.standard_normal(60)
    x = np.fft.ifft(X)
    y = apply_cir(x, fs, np.array([7 / fs]), np.array([2.0 + 0j]))
    np.testing.assert_allclose(y, 2 * np.roll(x, 7), atol=1e-6 * np.abs(x).max())
    # a half-sample delay applied twice is a one-sample delay
    h = apply_cir(apply_cir(x, fs, np.array([0.5 / fs]), np.array([1.0])), fs, np.array([0.5 / fs]), np.array([1.0]))
    np.testing.assert_allclose(h, np.roll(x, 1), atol=1e-5 * np.abs(x).max())


def test_paths_from_cir_pads():
    t = make_cir_table([
        dict(link_id=1, tx_id="a", rx_id=0, tau_s=[1e-6, 2e-6, 3e-6], a=[1, 2, 3]),
        dict(link_id=2, tx_id="b", rx_id=0, tau_s=[4e-6], a=[1j]),
    ])
    p = paths_from_cir(t, ("theta_r",))
    assert p["tau_s"].shape == (2, 3) and p["num_paths"].tolist() == [3, 1]
    assert p["a"][1].tolist() == [1j, 0, 0]
    assert p["theta_r"].shape == (2, 3)
