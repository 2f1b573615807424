"""3GPP channel numbers -> carrier frequency (Hz) and operating band, as tables (registries), not branches.

- LTE: EARFCN per TS 36.101 Table 5.7.3-1: F_DL = F_DL_low + 0.1 MHz (N_DL - N_Offs-DL), and
  F_UL = F_UL_low + 0.1 MHz (N_UL - N_Offs-UL) for uplink EARFCNs (recognised and reported as such).
- NR: NR-ARFCN per TS 38.104 §5.4.2.1 (global frequency raster, Table 5.4.2.1-1):
  F_REF = F_REF-Offs + ΔF_Global (N_REF - N_REF-Offs), with ΔF_Global = 5 / 15 / 60 kHz below 3 GHz /
  up to 24.25 GHz / up to 100 GHz; bands from the NR-ARFCN ranges of TS 38.104 Tables 5.4.2.3-1 (FR1)
  and 5.4.2.3-2 (FR2).
- UMTS: UARFCN per TS 25.101 §5.4.4 (Table 5.2): F = F_Offset + 0.2 MHz N (general channels).
- GSM: ARFCN per TS 45.005 §2 (P-/E-/R-GSM 900, DCS 1800, GSM 850).

All frequencies are carrier centre frequencies in Hz.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Direction = Literal["downlink", "uplink", "both"]
Duplex = Literal["FDD", "TDD", "SDL", "SUL"]


@dataclass(frozen=True)
class Carrier:
    """A carrier resolved from a channel number.

    ``frequency_hz``: centre frequency of the given channel number (Hz). ``band``: 3GPP operating band
    number (E-UTRA band, NR band n<band>, UTRA band, or 850/900/1800 for GSM). ``direction``:
    "downlink" or "uplink" for paired (FDD) or supplementary bands, "both" for TDD. ``duplex``: FDD | TDD |
    SDL (supplementary downlink) | SUL. ``arfcn``: the number given. ``rat``: LTE | NR | UMTS | GSM.
    ``downlink_arfcn``: the paired downlink channel number (itself for downlink/TDD; None where the band
    has no downlink). ``downlink_frequency_hz``: its frequency (Hz).
    """

    frequency_hz: float
    band: int
    direction: Direction
    duplex: Duplex
    arfcn: int = -1
    rat: str = "LTE"
    downlink_arfcn: int | None = None
    downlink_frequency_hz: float | None = None

    @property
    def band_name(self) -> str:
        """Short band label: 'B3' (LTE), 'n78' (NR), 'U1' (UMTS band I), 'GSM900'."""
        return {"LTE": f"B{self.band}", "NR": f"n{self.band}", "UMTS": f"U{self.band}"}.get(
            self.rat, f"GSM{self.band}"
        )

    @property
    def is_uplink(self) -> bool:
        return self.direction == "uplink"


# ------------------------------------------------------------------------------------------------- LTE


@dataclass(frozen=True)
class _Range:
    """One channel-number range: F = f_low_mhz + step_mhz (N - n_offs), N in [n_first, n_last]."""

    band: int
    direction: Direction
    duplex: Duplex
    f_low_mhz: float
    n_offs: int
    n_first: int
    n_last: int
    step_mhz: float = 0.1
    pair: tuple[float, int] | None = None  # (F_DL_low MHz, N_Offs-DL) of the paired downlink

    def frequency_hz(self, n: int) -> float:
        return round((self.f_low_mhz + self.step_mhz * (n - self.n_offs)) * 1e6, 3)


def _fdd(band, f_dl, n_dl, n_dl_last, f_ul, n_ul, n_ul_last) -> list[_Range]:
    """Rows of TS 36.101 Table 5.7.3-1 for a paired (FDD) band."""
    return [
        _Range(band, "downlink", "FDD", f_dl, n_dl, n_dl, n_dl_last),
        _Range(band, "uplink", "FDD", f_ul, n_ul, n_ul, n_ul_last, pair=(f_dl, n_dl)),
    ]


def _tdd(band, f_low, n_offs, n_last) -> list[_Range]:
    return [_Range(band, "both", "TDD", f_low, n_offs, n_offs, n_last)]


def _sdl(band, f_low, n_offs, n_last) -> list[_Range]:
    return [_Range(band, "downlink", "SDL", f_low, n_offs, n_offs, n_last)]


# TS 36.101 Table 5.7.3-1: band, F_DL_low (MHz), N_Offs-DL, last N_DL, F_UL_low (MHz), N_Offs-UL, last N_UL
LTE_BANDS: list[_Range] = [
    *_fdd(1, 2110.0, 0, 599, 1920.0, 18000, 18599),
    *_fdd(2, 1930.0, 600, 1199, 1850.0, 18600, 19199),
    *_fdd(3, 1805.0, 1200, 1949, 1710.0, 19200, 19949),
    *_fdd(4, 2110.0, 1950, 2399, 1710.0, 19950, 20399),
    *_fdd(5, 869.0, 2400, 2649, 824.0, 20400, 20649),
    *_fdd(6, 875.0, 2650, 2749, 830.0, 20650, 20749),
    *_fdd(7, 2620.0, 2750, 3449, 2500.0, 20750, 21449),
    *_fdd(8, 925.0, 3450, 3799, 880.0, 21450, 21799),
    *_fdd(9, 1844.9, 3800, 4149, 1749.9, 21800, 22149),
    *_fdd(10, 2110.0, 4150, 4749, 1710.0, 22150, 22749),
    *_fdd(11, 1475.9, 4750, 4949, 1427.9, 22750, 22949),
    *_fdd(12, 729.0, 5010, 5179, 699.0, 23010, 23179),
    *_fdd(13, 746.0, 5180, 5279, 777.0, 23180, 23279),
    *_fdd(14, 758.0, 5280, 5379, 788.0, 23280, 23379),
    *_fdd(17, 734.0, 5730, 5849, 704.0, 23730, 23849),
    *_fdd(18, 860.0, 5850, 5999, 815.0, 23850, 23999),
    *_fdd(19, 875.0, 6000, 6149, 830.0, 24000, 24149),
    *_fdd(20, 791.0, 6150, 6449, 832.0, 24150, 24449),
    *_fdd(21, 1495.9, 6450, 6599, 1447.9, 24450, 24599),
    *_fdd(22, 3510.0, 6600, 7399, 3410.0, 24600, 25399),
    *_fdd(23, 2180.0, 7500, 7699, 2000.0, 25500, 25699),
    *_fdd(24, 1525.0, 7700, 8039, 1626.5, 25700, 26039),
    *_fdd(25, 1930.0, 8040, 8689, 1850.0, 26040, 26689),
    *_fdd(26, 859.0, 8690, 9039, 814.0, 26690, 27039),
    *_fdd(27, 852.0, 9040, 9209, 807.0, 27040, 27209),
    *_fdd(28, 758.0, 9210, 9659, 703.0, 27210, 27659),
    *_sdl(29, 717.0, 9660, 9769),
    *_fdd(30, 2350.0, 9770, 9869, 2305.0, 27660, 27759),
    *_fdd(31, 462.5, 9870, 9919, 452.5, 27760, 27809),
    *_sdl(32, 1452.0, 9920, 10359),
    *_tdd(33, 1900.0, 36000, 36199),
    *_tdd(34, 2010.0, 36200, 36349),
    *_tdd(35, 1850.0, 36350, 36949),
    *_tdd(36, 1930.0, 36950, 37549),
    *_tdd(37, 1910.0, 37550, 37749),
    *_tdd(38, 2570.0, 37750, 38249),
    *_tdd(39, 1880.0, 38250, 38649),
    *_tdd(40, 2300.0, 38650, 39649),
    *_tdd(41, 2496.0, 39650, 41589),
    *_tdd(42, 3400.0, 41590, 43589),
    *_tdd(43, 3600.0, 43590, 45589),
    *_tdd(44, 703.0, 45590, 46589),
    *_tdd(45, 1447.0, 46590, 46789),
    *_tdd(46, 5150.0, 46790, 54539),
    *_tdd(47, 5855.0, 54540, 55239),
    *_tdd(48, 3550.0, 55240, 56739),
    *_fdd(65, 2110.0, 65536, 66435, 1920.0, 131072, 131971),
    *_fdd(66, 2110.0, 66436, 67335, 1710.0, 131972, 132671),
    *_sdl(67, 738.0, 67336, 67535),
    *_fdd(68, 753.0, 67536, 67835, 698.0, 132672, 132971),
    *_sdl(69, 2570.0, 67836, 68335),
    *_fdd(70, 1995.0, 68336, 68585, 1695.0, 132972, 133121),
    *_fdd(71, 617.0, 68586, 68935, 663.0, 133122, 133471),
]
# Band 66's downlink (2110-2200 MHz) is wider than its uplink; band 70's downlink 1995-2020 MHz pairs
# with 1695-1710 MHz, so not every downlink EARFCN of those bands has an uplink partner (irrelevant here).


def _lookup(table: list[_Range], n: int) -> list[_Range]:
    return [r for r in table if r.n_first <= n <= r.n_last]


def _check_int(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        try:
            f = float(n)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, got {n!r}") from None
        if not f.is_integer():
            raise ValueError(f"{name} must be an integer, got {n!r}")
        n = int(f)
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n


def _carrier(r: _Range, n: int, rat: str) -> Carrier:
    f = r.frequency_hz(n)
    if r.direction == "uplink":
        assert r.pair is not None
        f_dl, n_offs_dl = r.pair
        n_dl = n - r.n_offs + n_offs_dl  # same offset from the band's lower edge (fixed duplex spacing)
        f_dl_hz = round((f_dl + r.step_mhz * (n_dl - n_offs_dl)) * 1e6, 3)
        return Carrier(f, r.band, "uplink", r.duplex, n, rat, n_dl, f_dl_hz)
    return Carrier(f, r.band, r.direction, r.duplex, n, rat, n, f)


def earfcn_to_carrier(earfcn: int) -> Carrier:
    """LTE EARFCN -> :class:`Carrier` (TS 36.101 Table 5.7.3-1); frequency in Hz.

    Downlink EARFCNs give the downlink carrier; uplink EARFCNs are recognised and mapped too
    (``direction == "uplink"``, with the paired downlink in ``downlink_arfcn`` / ``downlink_frequency_hz``).
    Raises ``ValueError`` for a number in no band of the table.
    """
    n = _check_int("EARFCN", earfcn)
    hits = _lookup(LTE_BANDS, n)
    if not hits:
        raise ValueError(
            f"EARFCN {n} is in no E-UTRA band of TS 36.101 Table 5.7.3-1 known to twin "
            f"(bands {', '.join(str(b) for b in lte_bands())}); check the ARFCN column"
        )
    return _carrier(hits[0], n, "LTE")


def lte_bands() -> list[int]:
    """E-UTRA band numbers in the table."""
    return sorted({r.band for r in LTE_BANDS})


# -------------------------------------------------------------------------------------------------- NR


@dataclass(frozen=True)
class _Raster:
    """TS 38.104 Table 5.4.2.1-1: one frequency range of the global raster."""

    f_min_mhz: float
    f_max_mhz: float
    delta_f_global_khz: float
    f_ref_offs_mhz: float
    n_ref_offs: int
    n_first: int
    n_last: int


NR_GLOBAL_RASTER: list[_Raster] = [
    _Raster(0.0, 3000.0, 5.0, 0.0, 0, 0, 599_999),
    _Raster(3000.0, 24250.0, 15.0, 3000.0, 600_000, 600_000, 2_016_666),
    _Raster(24250.0, 100000.0, 60.0, 24250.08, 2_016_667, 2_016_667, 3_279_165),
]
NR_ARFCN_MAX = 3_279_165


def nr_arfcn_to_frequency_hz(n: int) -> float:
    """NR-ARFCN -> F_REF in Hz: F_REF = F_REF-Offs + ΔF_Global (N_REF - N_REF-Offs) (TS 38.104 §5.4.2.1)."""
    n = _check_int("NR-ARFCN", n)
    for r in NR_GLOBAL_RASTER:
        if r.n_first <= n <= r.n_last:
            # integer arithmetic in Hz avoids float round-off (ΔF_Global are whole kHz, offsets whole 10 kHz)
            return float(round(r.f_ref_offs_mhz * 1e6) + round(r.delta_f_global_khz * 1e3) * (n - r.n_ref_offs))
    raise ValueError(f"NR-ARFCN {n} is outside the global raster 0..{NR_ARFCN_MAX} of TS 38.104 Table 5.4.2.1-1")


def frequency_hz_to_nr_arfcn(frequency_hz: float) -> int:
    """Inverse of :func:`nr_arfcn_to_frequency_hz`, rounded to the nearest raster point (TS 38.104 §5.4.2.1)."""
    f_mhz = float(frequency_hz) / 1e6
    for r in NR_GLOBAL_RASTER:
        if r.f_min_mhz <= f_mhz < r.f_max_mhz or (r is NR_GLOBAL_RASTER[-1] and f_mhz == r.f_max_mhz):
            n = r.n_ref_offs + round((f_mhz - r.f_ref_offs_mhz) * 1e3 / r.delta_f_global_khz)
            return int(min(max(n, r.n_first), r.n_last))
    raise ValueError(f"frequency {frequency_hz} Hz is outside the NR global raster (0..100 GHz)")


@dataclass(frozen=True)
class _NRRange:
    band: int
    direction: Direction
    duplex: Duplex
    n_first: int
    n_last: int
    duplex_offset_hz: float = 0.0  # F_DL - F_UL for the paired downlink of an uplink range


def _nr_fdd(band, dl, ul, f_dl_low_mhz, f_ul_low_mhz) -> list[_NRRange]:
    """TS 38.104 Table 5.4.2.3-1: NR-ARFCN ranges (first, last) of a paired band's downlink and uplink."""
    return [
        _NRRange(band, "downlink", "FDD", *dl),
        _NRRange(band, "uplink", "FDD", *ul, duplex_offset_hz=(f_dl_low_mhz - f_ul_low_mhz) * 1e6),  # type: ignore[misc]  # ul: (first, last)
    ]


def _nr_tdd(band, first, last) -> list[_NRRange]:
    return [_NRRange(band, "both", "TDD", first, last)]


# TS 38.104 Tables 5.4.2.3-1 (FR1) and 5.4.2.3-2 (FR2): applicable NR-ARFCN ranges per band.
NR_BANDS: list[_NRRange] = [
    *_nr_fdd(1, (422000, 434000), (384000, 396000), 2110, 1920),
    *_nr_fdd(2, (386000, 398000), (370000, 382000), 1930, 1850),
    *_nr_fdd(3, (361000, 376000), (342000, 357000), 1805, 1710),
    *_nr_fdd(5, (173800, 178800), (164800, 169800), 869, 824),
    *_nr_fdd(7, (524000, 538000), (500000, 514000), 2620, 2500),
    *_nr_fdd(8, (185000, 192000), (176000, 183000), 925, 880),
    *_nr_fdd(12, (145800, 149200), (139800, 143200), 729, 699),
    *_nr_fdd(20, (158200, 164200), (166400, 172400), 791, 832),
    *_nr_fdd(25, (386000, 399000), (370000, 383000), 1930, 1850),
    *_nr_fdd(28, (151600, 160600), (140600, 149600), 758, 703),
    *_nr_fdd(66, (422000, 440000), (342000, 356000), 2110, 1710),
    *_nr_fdd(71, (123400, 130400), (132600, 139600), 617, 663),
    *_nr_tdd(38, 514000, 524000),
    *_nr_tdd(40, 460000, 480000),
    *_nr_tdd(41, 499200, 537999),
    *_nr_tdd(48, 636667, 646666),
    *_nr_tdd(77, 620000, 680000),
    *_nr_tdd(78, 620000, 653333),
    *_nr_tdd(79, 693334, 733333),
    *_nr_tdd(257, 2054166, 2104165),
    *_nr_tdd(258, 2016667, 2070832),
    *_nr_tdd(260, 2229166, 2279165),
    *_nr_tdd(261, 2070833, 2084999),
]


def nr_bands() -> list[int]:
    """NR band numbers (n<band>) in the table."""
    return sorted({r.band for r in NR_BANDS})


def nr_arfcn_to_carrier(n: int, band: int | None = None) -> Carrier:
    """NR-ARFCN -> :class:`Carrier` (frequency in Hz, NR band number, e.g. 78 for n78).

    NR bands overlap (n77 ⊃ n78, n41 ⊃ n38, n257 ⊃ n261, ...), so one number may sit in several bands.
    ``band`` picks one explicitly; otherwise downlink/TDD ranges win over uplink ranges and then the
    narrowest band wins (n78 over n77), which is how deployed carriers are usually declared.
    Raises ``ValueError`` when the number is in none of the tabulated bands (or not in ``band``).
    """
    n = _check_int("NR-ARFCN", n)
    f = nr_arfcn_to_frequency_hz(n)
    hits = [r for r in NR_BANDS if r.n_first <= n <= r.n_last]
    if band is not None:
        hits = [r for r in hits if r.band == band]
        if not hits:
            raise ValueError(f"NR-ARFCN {n} ({f / 1e6:.3f} MHz) is not in band n{band} of TS 38.104 Table 5.4.2.3")
    if not hits:
        raise ValueError(
            f"NR-ARFCN {n} ({f / 1e6:.3f} MHz) is in no NR band known to twin "
            f"({', '.join('n' + str(b) for b in nr_bands())}); check the ARFCN column"
        )
    hits.sort(key=lambda r: (r.direction == "uplink", r.n_last - r.n_first, r.band))
    r = hits[0]
    if r.direction == "uplink":
        f_dl = f + r.duplex_offset_hz
        n_dl = frequency_hz_to_nr_arfcn(f_dl)
        return Carrier(f, r.band, "uplink", r.duplex, n, "NR", n_dl, nr_arfcn_to_frequency_hz(n_dl))
    return Carrier(f, r.band, r.direction, r.duplex, n, "NR", n, f)


# ------------------------------------------------------------------------------------------------ UMTS

# TS 25.101 Table 5.2 (general UARFCNs): F = F_Offset + 0.2 MHz * N. (band, direction, F_Offset, first, last)
UMTS_BANDS: list[_Range] = [
    _Range(1, "downlink", "FDD", 0.0, 0, 10562, 10838, step_mhz=0.2),
    _Range(1, "uplink", "FDD", 0.0, 0, 9612, 9888, step_mhz=0.2, pair=(0.0, 950)),
    _Range(2, "downlink", "FDD", 0.0, 0, 9662, 9938, step_mhz=0.2),
    _Range(2, "uplink", "FDD", 0.0, 0, 9262, 9538, step_mhz=0.2, pair=(0.0, 400)),
    _Range(3, "downlink", "FDD", 1575.0, 0, 1162, 1513, step_mhz=0.2),
    _Range(3, "uplink", "FDD", 1525.0, 0, 937, 1288, step_mhz=0.2, pair=(1575.0, 225)),
    _Range(5, "downlink", "FDD", 0.0, 0, 4357, 4458, step_mhz=0.2),
    _Range(5, "uplink", "FDD", 0.0, 0, 4132, 4233, step_mhz=0.2, pair=(0.0, 225)),
    _Range(8, "downlink", "FDD", 340.0, 0, 2937, 3088, step_mhz=0.2),
    _Range(8, "uplink", "FDD", 340.0, 0, 2712, 2863, step_mhz=0.2, pair=(340.0, 225)),
]
# For UMTS, ``pair`` holds (F_Offset-DL, N_DL - N_UL): the downlink UARFCN is N_UL + that difference
# (TS 25.101 Table 5.0: duplex 190 MHz = 950 channels in band I, 80 MHz in II, 95 MHz in III, 45 in V, VIII).


def uarfcn_to_carrier(uarfcn: int) -> Carrier:
    """UMTS UARFCN -> :class:`Carrier` (TS 25.101 §5.4.4, general channels of bands I, II, III, V, VIII), Hz.

    A number that is both a downlink and an uplink channel (band II downlink overlaps band I uplink) is read
    as downlink. Raises ``ValueError`` for a number in none of these bands.
    """
    n = _check_int("UARFCN", uarfcn)
    hits = sorted(_lookup(UMTS_BANDS, n), key=lambda r: r.direction == "uplink")
    if not hits:
        raise ValueError(f"UARFCN {n} is in no UTRA band known to twin (I, II, III, V, VIII); check the ARFCN column")
    r = hits[0]
    f = r.frequency_hz(n)
    if r.direction == "uplink":
        assert r.pair is not None
        f_off_dl, dn = r.pair
        n_dl = n + dn
        return Carrier(f, r.band, "uplink", "FDD", n, "UMTS", n_dl, round((f_off_dl + 0.2 * n_dl) * 1e6, 3))
    return Carrier(f, r.band, "downlink", "FDD", n, "UMTS", n, f)


# ------------------------------------------------------------------------------------------------- GSM

# TS 45.005 §2: downlink F = f0 + 0.2 MHz (n - n0); uplink = downlink - duplex spacing. (band, f0, n0, first, last)
GSM_BANDS: list[_Range] = [
    _Range(900, "downlink", "FDD", 935.0, 0, 0, 124, step_mhz=0.2),  # P-GSM (n=0 is E-GSM's)
    _Range(900, "downlink", "FDD", 935.0, 1024, 940, 1023, step_mhz=0.2),  # E-GSM / R-GSM
    _Range(1800, "downlink", "FDD", 1805.2, 512, 512, 885, step_mhz=0.2),  # DCS 1800
    _Range(850, "downlink", "FDD", 869.2, 128, 128, 251, step_mhz=0.2),  # GSM 850
]


def gsm_arfcn_to_carrier(arfcn: int) -> Carrier:
    """GSM ARFCN -> downlink :class:`Carrier` (TS 45.005 §2), Hz. 512..810 are read as DCS 1800 (not PCS 1900).

    ``band`` is 850, 900 or 1800. Raises ``ValueError`` for numbers outside these bands.
    """
    n = _check_int("ARFCN", arfcn)
    hits = _lookup(GSM_BANDS, n)
    if not hits:
        raise ValueError(f"GSM ARFCN {n} is in no GSM band known to twin (850, 900, 1800); check the ARFCN column")
    r = hits[0]
    f = r.frequency_hz(n)
    return Carrier(f, r.band, "downlink", "FDD", n, "GSM", n, f)


# ------------------------------------------------------------------------------------------- by RAT

CARRIER_RESOLVERS: dict[str, Callable[[int], Carrier]] = {
    "LTE": earfcn_to_carrier,
    "NR": nr_arfcn_to_carrier,
    "UMTS": uarfcn_to_carrier,
    "GSM": gsm_arfcn_to_carrier,
}


def arfcn_to_carrier(rat: str, n: int) -> Carrier:
    """Resolve the channel number ``n`` of radio access technology ``rat`` (LTE | NR | UMTS | GSM)."""
    try:
        fn = CARRIER_RESOLVERS[rat.upper()]
    except KeyError:
        raise ValueError(f"no channel-number table for radio {rat!r}; known: {', '.join(CARRIER_RESOLVERS)}") from None
    return fn(n)


__all__ = [
    "Carrier",
    "earfcn_to_carrier",
    "nr_arfcn_to_frequency_hz",
    "frequency_hz_to_nr_arfcn",
    "nr_arfcn_to_carrier",
    "uarfcn_to_carrier",
    "gsm_arfcn_to_carrier",
    "arfcn_to_carrier",
    "lte_bands",
    "nr_bands",
    "CARRIER_RESOLVERS",
]
