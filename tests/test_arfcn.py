"""3GPP channel numbers -> carriers, against values written out from the specifications.

Oracles: TS 36.101 Table 5.5-1 (E-UTRA band edges) and Table 5.7.4-1 (TX-RX spacing), the EARFCN formula of
§5.7.3; TS 38.104 Table 5.4.2.1-1 (NR global raster) and the examples in the task; TS 25.101 §5.4.4
(UARFCN); TS 45.005 §2 (GSM ARFCN).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.ingest.arfcn import (
    LTE_BANDS,
    NR_BANDS,
    arfcn_to_carrier,
    earfcn_to_carrier,
    frequency_hz_to_nr_arfcn,
    gsm_arfcn_to_carrier,
    nr_arfcn_to_carrier,
    nr_arfcn_to_frequency_hz,
    uarfcn_to_carrier,
)

MHZ = 1e6


# ------------------------------------------------------------------------------------------------ LTE


@pytest.mark.parametrize(
    ("earfcn", "mhz"), [(1501, 1835.1), (1575, 1842.5), (1675, 1852.5), (1850, 1870.0)]
)
def test_acceptance_band3(earfcn, mhz):
    c = earfcn_to_carrier(earfcn)
    assert c.frequency_hz == pytest.approx(mhz * MHZ, abs=1.0)
    assert (c.band, c.direction, c.duplex, c.rat) == (3, "downlink", "FDD", "LTE")


# (EARFCN, MHz, band, duplex): first/last channel of bands, by hand from F_DL = F_DL_low + 0.1 (N - N_Offs-DL)
LTE_CASES = [
    (0, 2110.0, 1, "FDD"), (599, 2169.9, 1, "FDD"), (600, 1930.0, 2, "FDD"), (1199, 1989.9, 2, "FDD"),
    (1200, 1805.0, 3, "FDD"), (1949, 1879.9, 3, "FDD"), (1950, 2110.0, 4, "FDD"), (2400, 869.0, 5, "FDD"),
    (2750, 2620.0, 7, "FDD"), (3449, 2689.9, 7, "FDD"), (3450, 925.0, 8, "FDD"), (3799, 959.9, 8, "FDD"),
    (5010, 729.0, 12, "FDD"), (5180, 746.0, 13, "FDD"), (5280, 758.0, 14, "FDD"), (5730, 734.0, 17, "FDD"),
    (5850, 860.0, 18, "FDD"), (6000, 875.0, 19, "FDD"), (6150, 791.0, 20, "FDD"), (6300, 806.0, 20, "FDD"),
    (6449, 820.9, 20, "FDD"), (8040, 1930.0, 25, "FDD"), (8690, 859.0, 26, "FDD"), (9210, 758.0, 28, "FDD"),
    (9659, 802.9, 28, "FDD"), (9660, 717.0, 29, "SDL"), (9770, 2350.0, 30, "FDD"), (9920, 1452.0, 32, "SDL"),
    (10359, 1495.9, 32, "SDL"), (37750, 2570.0, 38, "TDD"), (38250, 1880.0, 39, "TDD"),
    (38650, 2300.0, 40, "TDD"), (39650, 2496.0, 41, "TDD"), (41589, 2689.9, 41, "TDD"),
    (41590, 3400.0, 42, "TDD"), (43590, 3600.0, 43, "TDD"), (46790, 5150.0, 46, "TDD"),
    (55240, 3550.0, 48, "TDD"), (66436, 2110.0, 66, "FDD"), (67335, 2199.9, 66, "FDD"),
    (68586, 617.0, 71, "FDD"), (68935, 651.9, 71, "FDD"),
]


@pytest.mark.parametrize(("earfcn", "mhz", "band", "duplex"), LTE_CASES)
def test_earfcn_table(earfcn, mhz, band, duplex):
    c = earfcn_to_carrier(earfcn)
    assert c.frequency_hz == pytest.approx(mhz * MHZ, abs=1.0)
    assert c.band == band and c.duplex == duplex
    assert c.direction == ("both" if duplex == "TDD" else "downlink")
    assert c.downlink_arfcn == earfcn


# TS 36.101 Table 5.5-1: downlink band edges (MHz) of the bands the task names.
LTE_DL_EDGES = {
    1: (2110, 2170), 2: (1930, 1990), 3: (1805, 1880), 4: (2110, 2155), 5: (869, 894), 7: (2620, 2690),
    8: (925, 960), 12: (729, 746), 13: (746, 756), 14: (758, 768), 17: (734, 746), 18: (860, 875),
    19: (875, 890), 20: (791, 821), 25: (1930, 1995), 26: (859, 894), 28: (758, 803), 29: (717, 728),
    30: (2350, 2360), 32: (1452, 1496), 38: (2570, 2620), 39: (1880, 1920), 40: (2300, 2400),
    41: (2496, 2690), 42: (3400, 3600), 43: (3600, 3800), 46: (5150, 5925), 48: (3550, 3700),
    66: (2110, 2200), 71: (617, 652),
}
# TS 36.101 Table 5.7.4-1: TX-RX (downlink minus uplink) carrier spacing, MHz.
LTE_DUPLEX_MHZ = {
    1: 190, 2: 80, 3: 95, 4: 400, 5: 45, 7: 120, 8: 45, 12: 30, 13: -31, 14: -30, 17: 30, 18: 45, 19: 45,
    20: -41, 25: 80, 26: 45, 28: 55, 30: 45, 66: 400, 71: -46,
}


@pytest.mark.parametrize("band", sorted(LTE_DL_EDGES))
def test_band_edges_match_table_5_5_1(band):
    lo, hi = LTE_DL_EDGES[band]
    rows = [r for r in LTE_BANDS if r.band == band and r.direction != "uplink"]
    assert len(rows) == 1
    r = rows[0]
    assert earfcn_to_carrier(r.n_first).frequency_hz == pytest.approx(lo * MHZ, abs=1.0)
    # the last channel number sits 100 kHz below the upper band edge
    assert earfcn_to_carrier(r.n_last).frequency_hz + 0.1 * MHZ == pytest.approx(hi * MHZ, abs=1.0)


@pytest.mark.parametrize("band", sorted(LTE_DUPLEX_MHZ))
def test_uplink_earfcn_maps_to_paired_downlink(band):
    ul = [r for r in LTE_BANDS if r.band == band and r.direction == "uplink"][0]
    for n in (ul.n_first, (ul.n_first + ul.n_last) // 2, ul.n_last):
        c = earfcn_to_carrier(n)
        assert c.direction == "uplink" and c.band == band and c.duplex == "FDD"
        dl = earfcn_to_carrier(c.downlink_arfcn)
        assert dl.direction == "downlink" and dl.band == band
        assert dl.frequency_hz - c.frequency_hz == pytest.approx(LTE_DUPLEX_MHZ[band] * MHZ, abs=1.0)
        assert c.downlink_frequency_hz == dl.frequency_hz


def test_uplink_examples():
    c = earfcn_to_carrier(18000)
    assert (c.frequency_hz, c.band, c.direction, c.downlink_arfcn) == (1920e6, 1, "uplink", 0)
    c = earfcn_to_carrier(19501)
    assert c.frequency_hz == pytest.approx(1740.1e6) and c.downlink_arfcn == 1501
    assert c.downlink_frequency_hz == pytest.approx(1835.1e6)
    c = earfcn_to_carrier(24300)  # band 20 uplink 847 MHz, reverse duplex
    assert c.frequency_hz == pytest.approx(847e6) and c.downlink_arfcn == 6300


def test_earfcn_ranges_do_not_overlap():
    spans = sorted((r.n_first, r.n_last, r.band) for r in LTE_BANDS)
    for (_a0, a1, ba), (b0, _b1, bb) in zip(spans, spans[1:], strict=False):
        assert a1 < b0, f"bands {ba} and {bb} overlap"


@pytest.mark.parametrize("bad", [5000, 10360, 35999, 200000, -1, 1.5, "abc", None])
def test_unknown_earfcn_raises_value_error(bad):
    with pytest.raises(ValueError, match="EARFCN"):
        earfcn_to_carrier(bad)


def test_earfcn_accepts_integral_float_and_string():
    assert earfcn_to_carrier(1501.0).frequency_hz == earfcn_to_carrier("1501").frequency_hz == pytest.approx(1835.1e6)


# ------------------------------------------------------------------------------------------------- NR


@pytest.mark.parametrize(
    ("n", "mhz"),
    [
        (620000, 3300.0), (632628, 3489.42), (2016667, 24250.08), (0, 0.0), (599999, 2999.995),
        (600000, 3000.0), (2016666, 24249.99), (3279165, 99999.96), (428000, 2140.0), (151600, 758.0),
    ],
)
def test_nr_arfcn_frequency(n, mhz):
    assert nr_arfcn_to_frequency_hz(n) == pytest.approx(mhz * MHZ, abs=1e-3)


def _oracle_nr_hz(n: int) -> Fraction:
    """TS 38.104 Table 5.4.2.1-1 written out: (ΔF_Global kHz, F_REF-Offs MHz, N_REF-Offs) per range."""
    if n < 600000:
        return Fraction(5000) * n
    if n < 2016667:
        return Fraction(3000) * 10**6 + Fraction(15000) * (n - 600000)
    return Fraction(2425008) * 10**4 + Fraction(60000) * (n - 2016667)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=3279165))
def test_nr_raster_formula_and_inverse(n):
    f = nr_arfcn_to_frequency_hz(n)
    assert f == float(_oracle_nr_hz(n))
    assert frequency_hz_to_nr_arfcn(f) == n


@pytest.mark.parametrize(
    ("n", "band", "direction"),
    [
        (428000, 1, "downlink"), (361000, 3, "downlink"), (173800, 5, "downlink"), (530000, 7, "downlink"),
        (185000, 8, "downlink"), (158200, 20, "downlink"), (151600, 28, "downlink"), (520000, 38, "both"),
        (460000, 40, "both"), (500000, 41, "both"), (632628, 78, "both"), (620000, 78, "both"),
        (660000, 77, "both"), (700000, 79, "both"), (2060000, 257, "both"), (2016667, 258, "both"),
        (2229166, 260, "both"), (2075000, 261, "both"),
    ],
)
def test_nr_band(n, band, direction):
    c = nr_arfcn_to_carrier(n)
    assert (c.band, c.direction, c.rat) == (band, direction, "NR")
    assert c.frequency_hz == nr_arfcn_to_frequency_hz(n)
    assert c.band_name == f"n{band}"


def test_nr_band_hint_and_uplink():
    assert nr_arfcn_to_carrier(632628, band=77).band == 77
    assert nr_arfcn_to_carrier(2075000, band=257).band == 257
    with pytest.raises(ValueError, match="n79"):
        nr_arfcn_to_carrier(632628, band=79)
    c = nr_arfcn_to_carrier(384000)  # n1 uplink 1920 MHz -> downlink 2110 MHz (190 MHz spacing)
    assert (c.band, c.direction, c.frequency_hz) == (1, "uplink", 1920e6)
    assert c.downlink_arfcn == 422000 and c.downlink_frequency_hz == 2110e6
    c = nr_arfcn_to_carrier(350000, band=3)  # n3 uplink 1750 MHz -> 1845 MHz
    assert c.direction == "uplink" and c.downlink_frequency_hz == 1845e6


@pytest.mark.parametrize("bad", [3279166, -5, 690000, 1000000, "x"])
def test_nr_unknown_raises(bad):
    with pytest.raises(ValueError, match="NR-ARFCN"):
        nr_arfcn_to_carrier(bad)


def test_nr_tables_consistent_with_raster():
    for r in NR_BANDS:
        assert nr_arfcn_to_frequency_hz(r.n_first) < nr_arfcn_to_frequency_hz(r.n_last)


# ----------------------------------------------------------------------------------------- UMTS / GSM


@pytest.mark.parametrize(
    ("n", "mhz", "band", "direction"),
    [
        (10562, 2112.4, 1, "downlink"), (10838, 2167.6, 1, "downlink"), (9612, 1922.4, 1, "uplink"),
        (2937, 927.4, 8, "downlink"), (3088, 957.6, 8, "downlink"), (1162, 1807.4, 3, "downlink"),
        (4357, 871.4, 5, "downlink"),
    ],
)
def test_uarfcn(n, mhz, band, direction):
    c = uarfcn_to_carrier(n)
    assert c.frequency_hz == pytest.approx(mhz * MHZ, abs=1.0)
    assert (c.band, c.direction, c.rat) == (band, direction, "UMTS")


def test_uarfcn_uplink_pairs_with_duplex_190mhz():
    c = uarfcn_to_carrier(9612)
    assert c.downlink_arfcn == 10562 and c.downlink_frequency_hz - c.frequency_hz == pytest.approx(190e6)


@pytest.mark.parametrize(
    ("n", "mhz", "band"),
    [(1, 935.2, 900), (124, 959.8, 900), (975, 925.2, 900), (512, 1805.2, 1800), (885, 1879.8, 1800), (128, 869.2, 850)],
)
def test_gsm_arfcn(n, mhz, band):
    c = gsm_arfcn_to_carrier(n)
    assert c.frequency_hz == pytest.approx(mhz * MHZ, abs=1.0) and c.band == band


def test_by_rat_registry():
    assert arfcn_to_carrier("lte", 1501).band == 3
    assert arfcn_to_carrier("NR", 632628).band == 78
    with pytest.raises(ValueError, match="CDMA"):
        arfcn_to_carrier("CDMA", 1)
    with pytest.raises(ValueError):
        gsm_arfcn_to_carrier(300)
    with pytest.raises(ValueError):
        uarfcn_to_carrier(5000)
