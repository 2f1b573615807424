"""Read tower CSVs (CellMapper or OpenCelliD layout) into a cell table (docs/architecture.md "Ingest", columns: ``TOWER_COLUMNS``).

Layouts are detected by header (any case, any of the delimiters ``, ; tab |``), and a headerless 13/14-column
OpenCelliD dump is recognised by its first field (GSM/UMTS/LTE/NR/CDMA). Optional columns in any layout:
azimuth (degrees clockwise from north), tilt (degrees down), height (metres above ground), power (dBm),
bandwidth (MHz or Hz), earfcn/arfcn, pci. Carriers come from the 3GPP channel-number tables of
:mod:`twin.ingest.arfcn`.

GSM and UMTS cells are kept with a ``legacy_rat_*`` quality flag and their carrier from the ARFCN/UARFCN
(their BSIC/PSC goes to ``pci``); CDMA and unknown radios are skipped. Uplink channel numbers are mapped to the
paired downlink (a repair).

Every data row gets a :class:`RowReport` (kept / repaired / skipped, with its 1-based line number, header =
line 1). With ``strict=True`` the first row that would be skipped or repaired raises ``TwinInputError``.
Cells of one operator within ``IngestConfig.site_merge_m`` metres form one site (one mast: the cells are moved
to the site's centroid); cells of a site without azimuth on one carrier are spread 360/k degrees apart.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from twin.config import IngestConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest.arfcn import CARRIER_RESOLVERS, Carrier
from twin.ingest.layouts import COMMON_OPTIONAL, LAYOUTS, Layout, register_layout
from twin.schema import TOWER_COLUMNS

Status = Literal["kept", "repaired", "skipped"]

# Columns of the cell table, in order (the GeoParquet geometry is added by towers_to_geodataframe / the writer).
CELL_COLUMNS: tuple[str, ...] = tuple(c for c in TOWER_COLUMNS if c != "geometry")
_DTYPES: dict[str, str] = {
    "mcc": "int32", "mnc": "int32", "tac": "int64", "cid": "int64", "pci": "int32", "earfcn": "int64",
    "band": "int32", "source_row": "int64",
}
_STR_COLUMNS = ("cell_id", "site_id", "radio", "height_source", "azimuth_source", "source_file", "quality_flags")

# Channel width (Hz) of the RATs whose width is fixed by the standard: GSM 200 kHz (TS 45.005), UMTS 5 MHz
# (TS 25.101); LTE and NR take the CSV's bandwidth or IngestConfig.default_bandwidth_hz.
FIXED_BANDWIDTH_HZ = {"GSM": 200e3, "UMTS": 5e6}
# Valid PCI (LTE TS 36.211 §6.11: 0..503; NR TS 38.211 §7.4.2: 0..1007), UMTS PSC 0..511, GSM BSIC 0..63.
PCI_RANGE = {"LTE": (0, 503), "NR": (0, 1007), "UMTS": (0, 511), "GSM": (0, 63)}
# Radio names seen in the wild -> the RAT (CellMapper `type`, OpenCelliD `radio`).
RADIO_ALIASES = {
    "LTE": "LTE", "4G": "LTE", "LTE-A": "LTE", "LTE+": "LTE", "LTE_A": "LTE", "EUTRA": "LTE",
    "NR": "NR", "5G": "NR", "NR-NSA": "NR", "NR-SA": "NR", "NR_NSA": "NR", "NR_SA": "NR",
    "UMTS": "UMTS", "3G": "UMTS", "WCDMA": "UMTS", "HSPA": "UMTS", "HSPA+": "UMTS",
    "GSM": "GSM", "2G": "GSM",
}
LEGACY_RATS = ("GSM", "UMTS")
OPENCELLID_RADIOS = ("GSM", "UMTS", "LTE", "NR", "CDMA")
DELIMITERS = {",": "comma ','", ";": "semicolon ';'", "\t": "tab", "|": "pipe '|'"}




# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class RowReport:
    """What happened to one data row: ``row`` is its 1-based line number in the file (header = line 1)."""

    row: int
    status: Status
    reason: str = ""
    field: str = ""  # the column (as named in the file) the reason is about
    cell_id: str = ""
    fix: str = ""  # how to correct the row


@dataclass(frozen=True)
class TowerTable:
    """Cells read from one tower CSV.

    ``cells``: pandas DataFrame with :data:`CELL_COLUMNS` (``TOWER_COLUMNS`` without geometry); x/y in metres
    of the local frame (NaN without a frame), z = height_m. ``reports``: one :class:`RowReport` per data row.
    ``counts``: rows kept / repaired / skipped, cells, sites.
    """

    cells: pd.DataFrame
    reports: list[RowReport]
    counts: dict[str, int]
    source_file: str
    layout: str
    delimiter: str

    def skipped(self) -> list[RowReport]:
        return [r for r in self.reports if r.status == "skipped"]

    def repaired(self) -> list[RowReport]:
        return [r for r in self.reports if r.status == "repaired"]

    def report(self, row: int) -> RowReport:
        """The report of line ``row`` (1-based)."""
        for r in self.reports:
            if r.row == row:
                return r
        raise KeyError(f"no data row at line {row}")


# ------------------------------------------------------------------------------------------ CSV reading


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise TwinInputError("is a directory, not a CSV file", file=path, fix="pass the tower CSV file") from None
    except OSError as e:
        raise TwinInputError(f"cannot read the file ({e.strerror})", file=path, fix="check the path and permissions") from None
    if b"\x00" in raw[:4096]:
        raise TwinInputError(
            "looks like a binary file, not a CSV", file=path, fix="pass a CellMapper or OpenCelliD CSV export"
        )
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1", errors="replace")  # pragma: no cover (latin-1 decodes any byte)


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(1-based line number, stripped fields) of every non-blank record."""
    out = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    start = 1
    try:
        for rec in reader:
            fields = [f.strip().strip("\ufeff") for f in rec]
            if any(fields):
                out.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as e:
        raise TwinInputError(f"unreadable CSV ({e})", row=reader.line_num, fix="check quoting on that line") from None
    return out


def _norm_header(h: str) -> str:
    return h.strip().strip('"').strip("'").strip().lower()


def _resolve(header: list[str], aliases: Mapping[str, tuple[str, ...]]) -> tuple[dict[str, int], list[str]]:
    """Map canonical fields to column indices; return (found, missing canonical fields)."""
    idx: dict[str, int] = {}
    for i, h in enumerate(header):
        idx.setdefault(_norm_header(h), i)
    found, missing = {}, []
    for canon, names in aliases.items():
        hit = next((idx[n] for n in names if n in idx), None)
        if hit is None:
            missing.append(canon)
        else:
            found[canon] = hit
    return found, missing


def _unknown_layout(path: Path, header: list[str], delimiter: str) -> TwinInputError:
    lacks = []
    for lay in LAYOUTS.values():
        _, missing = _resolve(header, lay.required)
        names = ["|".join(lay.required[m]) for m in missing]
        lacks.append(f"for {lay.name} it lacks {', '.join(names)}")
    accepted = "; ".join(f"{lay.name} ({lay.columns})" for lay in LAYOUTS.values())
    shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
    normed = {_norm_header(h) for h in header}
    hint = ""
    if {"x", "y"} <= normed or {"easting", "northing"} <= normed:
        hint = (
            " The file has projected x/y coordinates: convert them to WGS84 latitude/longitude first "
            "(e.g. pyproj Transformer.from_crs('EPSG:2154', 'EPSG:4326') for Lambert-93)."
        )
    return TwinInputError(
        f"unknown tower CSV layout: delimiter {DELIMITERS.get(delimiter, repr(delimiter))} seen, "
        f"columns [{shown}]; {'; '.join(lacks)}",
        file=path,
        fix=f"write the file in an accepted layout: {accepted}; headers in any case, "
        f"delimiter , ; tab or |.{hint}",
    )


# ------------------------------------------------------------------------------------------ row parsing


class _RowError(Exception):
    def __init__(self, canon: str, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.canon, self.reason, self.fix = canon, reason, fix


def _parse_float(s: str, delimiter: str) -> float:
    if delimiter != "," and "," in s and "." not in s:
        s = s.replace(",", ".")  # decimal comma, as spreadsheets in many locales write it
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(s)
    return v


def _parse_int(s: str, delimiter: str) -> int:
    v = _parse_float(s, delimiter)
    if not v.is_integer():
        raise ValueError(s)
    return int(v)


@dataclass
class _Ctx:
    path: Path
    delimiter: str
    cols: dict[str, int]
    names: dict[str, str]  # canonical -> header name as in the file
    config: IngestConfig
    default_earfcn: int | None
    default_radio: str | None  # layout without a radio column


def _get(ctx: _Ctx, fields: list[str], canon: str) -> str:
    i = ctx.cols.get(canon)
    if i is None or i >= len(fields):
        return ""
    return fields[i]


def _required_number(ctx, fields, canon, lo, hi, *, integer=False, what="") -> float:
    s = _get(ctx, fields, canon)
    name = ctx.names.get(canon, canon)
    if s == "":
        raise _RowError(canon, f"missing {name}", f"fill {name} ({what})")
    try:
        v = _parse_int(s, ctx.delimiter) if integer else _parse_float(s, ctx.delimiter)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise _RowError(canon, f"{name} {s!r} is not {kind}", f"write {name} as {kind} ({what})") from None
    if not lo <= v <= hi:
        raise _RowError(canon, f"{name} {s} is out of range {lo}..{hi}", f"write {name} within {lo}..{hi} ({what})")
    return v


def _optional_number(ctx, fields, canon, lo, hi, repairs, what) -> float | None:
    """An optional numeric value; a bad one is dropped (the default applies) and reported as a repair."""
    s = _get(ctx, fields, canon)
    if s == "":
        return None
    name = ctx.names.get(canon, canon)
    try:
        v = _parse_float(s, ctx.delimiter)
    except ValueError:
        repairs.append((canon, f"{name} {s!r} is not a number, default used", f"write {name} as a number ({what})"))
        return None
    if not lo <= v <= hi:
        repairs.append((canon, f"{name} {s} is out of range {lo}..{hi}, default used", f"keep {name} within {lo}..{hi} ({what})"))
        return None
    return v


def _parse_row(ctx: _Ctx, fields: list[str]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """One data row -> (record, repairs). Raises _RowError when the row cannot be used."""
    cfg = ctx.config
    repairs: list[tuple[str, str, str]] = []
    flags: list[str] = []

    # radio
    if "radio" in ctx.cols:
        raw_radio = _get(ctx, fields, "radio")
        name = ctx.names["radio"]
        if raw_radio == "":
            if ctx.default_radio is None:
                raise _RowError("radio", f"missing {name}", f"fill {name} with LTE, NR, UMTS or GSM")
            radio = ctx.default_radio
            repairs.append(("radio", f"{name} missing, {radio} assumed", f"fill {name} with LTE, NR, UMTS or GSM"))
        else:
            radio = RADIO_ALIASES.get(raw_radio.upper(), "")
            if not radio:
                raise _RowError(
                    "radio", f"radio {raw_radio!r} is not supported", f"twin reads {', '.join(CARRIER_RESOLVERS)} cells"
                )
    else:
        radio = ctx.default_radio or "LTE"

    lat = _required_number(ctx, fields, "lat", -90.0, 90.0, what="WGS84 degrees, -90..90")
    lon = _required_number(ctx, fields, "lon", -180.0, 180.0, what="WGS84 degrees, -180..180")
    mcc = int(_required_number(ctx, fields, "mcc", 1, 999, integer=True, what="mobile country code"))
    mnc = int(_required_number(ctx, fields, "mnc", 0, 999, integer=True, what="mobile network code"))
    tac = int(_required_number(ctx, fields, "tac", 0, 2**24 - 1, integer=True, what="LAC/TAC"))
    cid = int(_required_number(ctx, fields, "cid", 0, 2**36 - 1, integer=True, what="cell identity"))

    # carrier
    arfcn_name = ctx.names.get("arfcn", "ARFCN")
    s = _get(ctx, fields, "arfcn")
    if s == "":
        if radio == "LTE" and ctx.default_earfcn is not None:
            n = ctx.default_earfcn  # asked for by the caller: a flag, not a repair
            flags.append("earfcn_default")
        else:
            fix = f"fill {arfcn_name} with the cell's {_number_name(radio)}"
            if "arfcn" not in ctx.cols:
                fix = f"add an earfcn column or pass default_earfcn (LTE rows); the file has no {arfcn_name} column"
            raise _RowError("arfcn", f"missing {arfcn_name} ({_number_name(radio)})", fix)
    else:
        try:
            n = _parse_int(s, ctx.delimiter)
        except ValueError:
            raise _RowError("arfcn", f"{arfcn_name} {s!r} is not an integer", f"write the {_number_name(radio)} as an integer") from None
    try:
        carrier: Carrier = _resolve_carrier(radio, n)
    except ValueError:
        raise _RowError("arfcn", f"unknown {_number_name(radio)} {n}: in no {radio} band of twin's 3GPP tables",
                        f"check {arfcn_name}: the {_number_name(radio)} of a downlink carrier in a 3GPP band") from None
    if carrier.direction == "uplink":
        if carrier.downlink_arfcn is None:  # pragma: no cover (every tabulated uplink range is paired)
            raise _RowError("arfcn", f"{_number_name(radio)} {n} is an uplink-only channel", "give the downlink channel")
        repairs.append(
            ("arfcn", f"uplink {_number_name(radio)} {n} mapped to its paired downlink {carrier.downlink_arfcn}",
             f"give the downlink {_number_name(radio)} in {arfcn_name}")
        )
        flags.append("uplink_arfcn_mapped")
        carrier = _resolve_carrier(radio, carrier.downlink_arfcn)
    if radio in LEGACY_RATS:
        flags.append(f"legacy_rat_{radio.lower()}")

    # pci
    pci = -1
    lo, hi = PCI_RANGE[radio]
    if "pci" in ctx.cols:
        s = _get(ctx, fields, "pci")
        name = ctx.names["pci"]
        if s == "":
            if ctx.names["pci"].lower() == "unit":
                flags.append("pci_unknown")  # OpenCelliD leaves `unit` empty when unknown
            else:
                repairs.append(("pci", f"{name} missing, set to -1", f"fill {name} ({lo}..{hi})"))
                flags.append("pci_missing")
        else:
            try:
                v = _parse_int(s, ctx.delimiter)
            except ValueError:
                v = None
                repairs.append(("pci", f"{name} {s!r} is not an integer, set to -1", f"write {name} as an integer {lo}..{hi}"))
                flags.append("pci_invalid")
            if v is not None:
                if v == -1:
                    flags.append("pci_unknown")
                elif lo <= v <= hi:
                    pci = v
                else:
                    repairs.append(("pci", f"{name} {v} is out of range {lo}..{hi} for {radio}, set to -1", f"write {name} within {lo}..{hi}"))
                    flags.append("pci_invalid")
    else:
        flags.append("pci_unknown")

    # optional columns
    az = _optional_number(ctx, fields, "azimuth", -360.0, 720.0, repairs, "degrees clockwise from north")
    if az is not None and not 0.0 <= az <= 360.0:  # e.g. -30 or 720: wrapped, and said so
        name = ctx.names.get("azimuth", "azimuth")
        repairs.append(("azimuth", f"{name} {az:g} is outside 0..360, wrapped to {az % 360.0:g}",
                        f"write {name} within 0..360 degrees clockwise from north"))
        flags.append("azimuth_wrapped")
    tilt = _optional_number(ctx, fields, "tilt", -90.0, 90.0, repairs, "degrees, positive down")
    height = _optional_number(ctx, fields, "height", 0.0, 1000.0, repairs, "metres above ground")
    if height is not None and height == 0.0:
        flags.append("height_zero_ignored")  # exports write 0 for "unknown"
        height = None
    power = _optional_number(ctx, fields, "power", -50.0, 80.0, repairs, "dBm per cell")
    bw: float | None = None
    for canon, scale in (("bandwidth_hz", 1.0), ("bandwidth_mhz", 1e6), ("bandwidth", None)):
        bv = _optional_number(ctx, fields, canon, 0.0, 1e12, repairs, "channel bandwidth")
        if bv is not None and bv > 0:
            bw = bv * (scale if scale is not None else (1e6 if bv <= 1000 else 1.0))
            break
    if bw is not None and not 100e3 <= bw <= 400e6:
        repairs.append(("bandwidth", f"bandwidth {bw:g} Hz is outside 100 kHz..400 MHz, default used", "give MHz or Hz"))
        bw = None
    if radio in FIXED_BANDWIDTH_HZ:
        bw = FIXED_BANDWIDTH_HZ[radio]
    elif bw is None:
        bw = cfg.default_bandwidth_hz
    if repairs and "radio" in [r[0] for r in repairs]:
        flags.append("radio_assumed")

    rec = {
        "radio": radio, "mcc": mcc, "mnc": mnc, "tac": tac, "cid": cid, "pci": pci,
        "earfcn": carrier.arfcn, "band": carrier.band, "frequency_hz": carrier.frequency_hz,
        "bandwidth_hz": float(bw),
        "tx_power_dbm": float(power) if power is not None else cfg.default_tx_power_dbm,
        "azimuth_deg": float(az % 360.0) if az is not None else np.nan,
        "azimuth_source": "csv" if az is not None else "default_sectors",
        "tilt_deg": float(tilt) if tilt is not None else cfg.default_tilt_deg,
        "height_m": float(height) if height is not None else np.nan,
        "height_source": "csv" if height is not None else "default",
        "lat": lat, "lon": lon, "flags": flags,
        "cell_id": f"{mcc}-{mnc}-{tac}-{cid}",
    }
    return rec, repairs


@functools.lru_cache(maxsize=4096)
def _resolve_carrier(radio: str, n: int) -> Carrier:
    """Memoised table look-up (a CSV repeats a few carriers over many rows)."""
    return CARRIER_RESOLVERS[radio](n)


def _number_name(radio: str) -> str:
    return {"LTE": "EARFCN", "NR": "NR-ARFCN", "UMTS": "UARFCN", "GSM": "ARFCN"}.get(radio, "ARFCN")


# ------------------------------------------------------------------------------------------ sites


def _group_sites(df: pd.DataFrame, xy: np.ndarray, merge_m: float) -> np.ndarray:
    """Connected components of cells of one operator within ``merge_m`` metres -> component label per cell."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    labels = np.full(len(df), -1, dtype=np.int64)
    next_label = 0
    for _, idx in df.groupby(["mcc", "mnc"], sort=True).indices.items():
        pts = xy[idx]
        pairs = cKDTree(pts).query_pairs(r=merge_m + 1e-9, output_type="ndarray")
        n = len(idx)
        g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else coo_matrix((n, n))
        _, comp = connected_components(g, directed=False)
        labels[idx] = comp + next_label
        next_label += comp.max() + 1
    return labels


# ------------------------------------------------------------------------------------------ public API


def read_towers(
    path: str | Path,
    frame: LocalFrame | None = None,
    config: IngestConfig | None = None,
    *,
    strict: bool = False,
    area: Any = None,
    default_earfcn: int | None = None,
    allow_empty_area: bool = False,
) -> TowerTable:
    """Read a CellMapper or OpenCelliD tower CSV into a :class:`TowerTable` (docs/architecture.md "Ingest").

    ``frame``: local frame for x/y (metres); None leaves x/y NaN. ``config``: defaults (tx power dBm,
    bandwidth Hz, tilt degrees, site merge distance m); None uses ``IngestConfig()``. ``strict``: raise
    ``TwinInputError`` at the first row that would be skipped or repaired. ``area``: shapely Polygon or
    MultiPolygon in lon/lat degrees; towers farther than ``config.max_tower_outside_m`` outside it are
    skipped. ``default_earfcn``: EARFCN for LTE rows without one (OpenCelliD files have no ARFCN column);
    defaults to ``config.default_earfcn`` when the config has that field, else None (such rows are skipped).
    ``allow_empty_area``: when every usable row lies outside ``area``, return a table with no cells (each row
    reported as skipped) instead of raising; the ingest of a scene without towers still succeeds.
    A cell without a CSV height takes its site's CSV height, else ``config.default_tower_height_m`` with
    ``height_source`` 'default' (the roof rule of the scene builder may replace it later).
    """
    if config is None:
        config = IngestConfig()
    if not isinstance(config, IngestConfig):
        raise TypeError(f"read_towers: config must be an IngestConfig, got {type(config).__name__}")
    if frame is not None and not isinstance(frame, LocalFrame):
        raise TypeError(f"read_towers: frame must be a twin.frame.LocalFrame or None, got {type(frame).__name__}")
    if default_earfcn is None:
        cfg_e = getattr(config, "default_earfcn", None)
        default_earfcn = int(cfg_e) if cfg_e is not None and int(cfg_e) >= 0 else None
    if default_earfcn is not None:
        try:
            CARRIER_RESOLVERS["LTE"](default_earfcn)
        except ValueError as e:
            raise TwinInputError(str(e), field="default_earfcn", fix="give a downlink EARFCN of TS 36.101") from None
    area = _check_area(area)

    path = Path(path)
    if not path.exists():
        raise TwinInputError("tower CSV not found", file=path, fix="check the path given for the tower file")
    streamed = _stream_near_area(path, area, config) if area is not None else None
    if streamed is not None:
        rows, delimiter, far, n_data = streamed
    else:
        text = _decode(path)
        first = next((ln for ln in text.splitlines() if ln.strip().strip("\ufeff")), None)
        if first is None:
            raise TwinInputError("the tower CSV is empty", file=path, fix="export the towers again (CellMapper or OpenCelliD layout)")
        delimiter = _sniff_delimiter(first)
        try:
            rows = _read_rows(text, delimiter)
        except TwinInputError as e:
            raise TwinInputError(e.message, file=path, row=e.row, fix=e.fix) from None
        far = n_data = 0
    if far and not n_data:  # every data row lies far outside the area
        if not allow_empty_area:
            raise TwinInputError(
                f"all {far} tower rows lie more than {config.max_tower_outside_m:g} m outside the area",
                file=path, field="lat/lon",
                fix="pass a tower file of this area, widen the area, or raise [ingest] max_tower_outside_m",
            )
        empty = pd.DataFrame({c: pd.Series(dtype=object if c in _STR_COLUMNS else _DTYPES.get(c, "float64")) for c in CELL_COLUMNS})
        counts = {"kept": 0, "repaired": 0, "skipped": 0, "rows": 0, "cells": 0, "sites": 0, "far_outside": far}
        return TowerTable(empty, [], counts, str(path), "?", delimiter)

    layout, header, data, header_line = _detect(path, rows, delimiter)
    cols, _ = _resolve(header, layout.required)
    opt, _ = _resolve(header, {**layout.optional, **COMMON_OPTIONAL})
    for k, v in opt.items():
        cols.setdefault(k, v)
    names = {k: header[i].strip() for k, i in cols.items()}
    ctx = _Ctx(path, delimiter, cols, names, config, default_earfcn, None if "radio" in layout.required else "LTE")

    reports: dict[int, RowReport] = {}
    records: list[dict[str, Any]] = []
    seen: dict[tuple[int, int, int, int], int] = {}

    def fail(line: int, canon: str, reason: str, fix: str, status: Status, cell_id: str = "") -> None:
        fname = names.get(canon, canon)
        if strict:
            raise TwinInputError(reason, file=path, row=line, field=fname, fix=fix)
        reports[line] = RowReport(line, status, reason, fname, cell_id, fix)

    for line, fields in data:
        try:
            rec, repairs = _parse_row(ctx, fields)
        except _RowError as e:
            fail(line, e.canon, e.reason, e.fix, "skipped")
            continue
        key = (rec["mcc"], rec["mnc"], rec["tac"], rec["cid"])
        if key in seen:
            fail(line, "cid", f"duplicate cell {rec['cell_id']} (first at line {seen[key]}), dropped",
                 "remove the repeated row or fix its MCC/MNC/TAC/CID", "skipped", rec["cell_id"])
            continue
        seen[key] = line
        if repairs:
            canon, _, fix = repairs[0]
            reason = "; ".join(r[1] for r in repairs)
            fail(line, canon, reason, fix, "repaired", rec["cell_id"])
        else:
            reports[line] = RowReport(line, "kept", "", "", rec["cell_id"])
        rec["source_row"] = line
        records.append(rec)

    if area is not None and records:
        records = _filter_area(records, area, frame, config, reports, names)
        if not records and allow_empty_area:
            reps = [reports[k] for k in sorted(reports)]
            counts = dict(Counter(r.status for r in reps))
            counts = {s: counts.get(s, 0) for s in ("kept", "repaired", "skipped")}
            counts.update(rows=len(reps), cells=0, sites=0, **({"far_outside": far} if far else {}))
            empty = pd.DataFrame({c: pd.Series(dtype=object if c in _STR_COLUMNS else _DTYPES.get(c, "float64")) for c in CELL_COLUMNS})
            return TowerTable(empty, reps, counts, str(path), layout.name, delimiter)

    if not records:
        raise _nothing_usable(path, list(reports.values()))

    cells = _build_cells(records, frame, config, str(path))
    reps = [reports[k] for k in sorted(reports)]
    counts = dict(Counter(r.status for r in reps))
    counts = {s: counts.get(s, 0) for s in ("kept", "repaired", "skipped")}
    counts["rows"] = len(reps)
    counts["cells"] = len(cells)
    counts["sites"] = int(cells["site_id"].nunique())
    if far:
        counts["far_outside"] = far  # rows dropped unparsed by the streaming reader (far outside the area)
    return TowerTable(cells, reps, counts, str(path), layout.name, delimiter)


def check_tower_file(path: str | Path) -> str:
    """Cheap check of a tower file before any other work (the ingest reads it later): it exists, is a
    readable text file, and its first lines show an accepted layout with a data row. Returns the layout
    name; raises the same :class:`TwinInputError` (file, row, field, fix) that :func:`read_towers` would."""
    path = Path(path)
    if not path.exists():
        raise TwinInputError("tower CSV not found", file=path, fix="check the path given for the tower file")
    if path.is_dir():
        raise TwinInputError("is a directory, not a CSV file", file=path, fix="pass the tower CSV file")
    try:
        with open(path, "rb") as f:
            head = f.read(256 << 10)
            more = bool(f.read(1))
    except OSError as e:
        raise TwinInputError(f"cannot read the file ({e.strerror})", file=path, fix="check the path and permissions") from None
    if b"\x00" in head[:4096]:
        raise TwinInputError("looks like a binary file, not a CSV", file=path, fix="pass a CellMapper or OpenCelliD CSV export")
    text = next((head.decode(enc) for enc in ("utf-8-sig", "cp1252", "latin-1") if _decodes(head, enc)), "")
    lines = text.splitlines()
    if more and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    first = next((ln for ln in lines if ln.strip().strip("\ufeff")), None)
    if first is None:
        raise TwinInputError("the tower CSV is empty", file=path, fix="export the towers again (CellMapper or OpenCelliD layout)")
    delimiter = _sniff_delimiter(first)
    try:
        rows = _read_rows("\n".join(lines[:200]) + "\n", delimiter)
    except TwinInputError as e:
        raise TwinInputError(e.message, file=path, row=e.row, fix=e.fix) from None
    layout, *_ = _detect(path, rows, delimiter)
    return layout.name


def _decodes(raw: bytes, enc: str) -> bool:
    try:
        raw.decode(enc)
        return True
    except UnicodeDecodeError:
        return False


def _stream_near_area(path: Path, area: Any, config: IngestConfig) -> tuple[list[tuple[int, list[str]]], str, int, int] | None:
    """(rows, delimiter, rows dropped, data rows kept) of a large file read streaming (:mod:`twin.ingest.tower_stream`),
    keeping the header and the rows within the area's box widened by ``max_tower_outside_m``; None for a
    file small enough to parse whole, or one the streaming reader cannot read (the whole-file parser then
    reports its problem)."""
    import pyarrow as pa

    from twin.ingest import tower_stream

    try:
        if path.stat().st_size < tower_stream.STREAM_MIN_BYTES or not path.is_file():
            return None
        with open(path, "rb") as f:
            head = f.read(256 << 10)
    except OSError:
        return None
    if b"\x00" in head[:4096]:
        return None
    enc = tower_stream.sample_encoding(path)
    text = head.decode("utf-8" if enc == "utf8" else enc, errors="ignore")
    lines = text.splitlines()[:-1] or text.splitlines()  # the last sampled line may be cut
    first = next((ln for ln in lines if ln.strip().strip("\ufeff")), None)
    if first is None:
        return None
    delimiter = _sniff_delimiter(first)
    try:
        rows = _read_rows("\n".join(lines[:64]) + "\n", delimiter)
        layout, header, _, header_line = _detect(path, rows, delimiter)
    except TwinInputError:
        return None  # the whole-file parser gives the message
    idx = {h: i for i, h in reversed(list(enumerate(_norm_header(h) for h in header)))}
    lat_i = next((idx[n] for n in layout.required["lat"] if n in idx), None)
    lon_i = next((idx[n] for n in layout.required["lon"] if n in idx), None)
    if lat_i is None or lon_i is None:
        return None
    box = tower_stream.widened_box(area.bounds, config.max_tower_outside_m)
    try:
        res = tower_stream.stream_rows(
            path, delimiter=delimiter, num_columns=len(header) if header_line > 0 else len(rows[0][1]),
            first_data_line=header_line + 1,
            lat_col=lat_i, lon_col=lon_i, box=box, encoding=enc,
        )
    except (pa.ArrowException, UnicodeDecodeError, LookupError):
        return None
    head_rows = [(header_line, header)] if header_line > 0 else []
    return head_rows + res.rows, delimiter, res.far, len(res.rows)


def _detect(path: Path, rows: list[tuple[int, list[str]]], delimiter: str):
    """(layout, header, data rows, header line) by header; a headerless OpenCelliD dump by its first field."""
    if not rows:
        raise TwinInputError(
            "the tower CSV has no readable header or rows", file=path,
            fix="export the towers again (CellMapper or OpenCelliD layout)",
        )
    header_line, header = rows[0]
    if len(header) in (13, 14) and header[0].strip().upper() in OPENCELLID_RADIOS:
        lay = LAYOUTS["opencellid"]
        return lay, list(lay.headerless), rows, 0
    matches = []
    for lay in LAYOUTS.values():
        found, missing = _resolve(header, lay.required)
        if not missing:
            matches.append((len(found), lay))
    if not matches:
        raise _unknown_layout(path, header, delimiter)
    matches.sort(key=lambda m: -m[0])
    data = rows[1:]
    if not data:
        raise TwinInputError("the tower CSV has a header but no data rows", file=path, fix="add one row per cell")
    return matches[0][1], header, data, header_line


def _check_area(area: Any):
    if area is None:
        return None
    from shapely.geometry import MultiPolygon, Polygon

    if not isinstance(area, Polygon | MultiPolygon) or area.is_empty:
        raise TwinInputError(
            f"area must be a non-empty shapely Polygon or MultiPolygon in lon/lat degrees, got {type(area).__name__}",
            field="area",
            fix="pass e.g. shapely.geometry.box(west, south, east, north)",
        )
    b = area.bounds
    if not (-180 <= b[0] <= 180 and -180 <= b[2] <= 180 and -90 <= b[1] <= 90 and -90 <= b[3] <= 90):
        raise TwinInputError(
            f"area bounds {b} are not lon/lat degrees", field="area", fix="give the area in WGS84 lon/lat (EPSG:4326)"
        )
    return area


def _filter_area(records, area, frame, config, reports, names):
    """Skip (and report) records farther than ``config.max_tower_outside_m`` metres outside ``area``."""
    import shapely
    from shapely import ops

    fr = frame or LocalFrame(area.centroid.y, area.centroid.x)
    local_area = ops.transform(lambda x, y, z=None: fr.to_local(x, y), area)

    lon = np.array([r["lon"] for r in records])
    lat = np.array([r["lat"] for r in records])
    x, y = fr.to_local(lon, lat)
    dist = shapely.distance(local_area, shapely.points(np.atleast_1d(x), np.atleast_1d(y)))
    kept = []
    for r, d in zip(records, dist, strict=True):
        if d > config.max_tower_outside_m:
            line = r["source_row"]
            reports[line] = RowReport(
                line, "skipped", f"outside the area by {d:.0f} m (limit max_tower_outside_m = {config.max_tower_outside_m:g} m)",
                names.get("lat", "lat"), r["cell_id"], "widen the area or raise max_tower_outside_m",
            )
        else:
            if d > 0:
                r["flags"].append("outside_scene")  # serves the area from up to max_tower_outside_m outside it
            kept.append(r)
    return kept


def _nothing_usable(path: Path, reports: list[RowReport]) -> TwinInputError:
    reasons = Counter((r.field, r.reason.split(" (")[0].split(":")[0]) for r in reports if r.status == "skipped")
    summary = "; ".join(f"{n}x field '{f}': {why}" for (f, why), n in reasons.most_common(4))
    first = min((r for r in reports if r.status == "skipped"), key=lambda r: r.row, default=None)
    return TwinInputError(
        f"no usable tower rows: all {len(reports)} data rows were skipped ({summary})",
        file=path,
        row=first.row if first else None,
        field=first.field if first else None,
        fix=(first.fix if first and first.fix else "fix the rows named (see the reasons)"),
    )


def _build_cells(records: list[dict[str, Any]], frame: LocalFrame | None, config: IngestConfig, source: str) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records)
    lon = df["lon"].to_numpy(float)
    lat = df["lat"].to_numpy(float)
    fr = frame or LocalFrame(float(np.mean(lat)), float(np.mean(lon)))
    x, y = fr.to_local(lon, lat)
    xy = np.column_stack([np.atleast_1d(x), np.atleast_1d(y)]).astype(float)
    flags: list[list[str]] = list(df["flags"])

    # sites: operator + distance; one mast at the site centroid (labels are 0..L-1)
    labels = _group_sites(df, xy, config.site_merge_m)
    count = np.bincount(labels).astype(float)
    cx = (np.bincount(labels, weights=xy[:, 0]) / count)[labels]
    cy = (np.bincount(labels, weights=xy[:, 1]) / count)[labels]
    for i in np.flatnonzero(np.hypot(cx - xy[:, 0], cy - xy[:, 1]) > 0.01):
        flags[i].append("moved_to_site_centroid")
    slon, slat = fr.to_wgs84(cx, cy)
    df["lon"] = np.atleast_1d(slon)
    df["lat"] = np.atleast_1d(slat)

    # deterministic site ids: rank the sites of one operator by centroid (lat, lon), independent of row order
    first = np.unique(labels, return_index=True)[1]
    sites = pd.DataFrame({
        "label": labels[first], "mcc": df["mcc"].to_numpy()[first], "mnc": df["mnc"].to_numpy()[first],
        "lat": np.round(df["lat"].to_numpy()[first], 7), "lon": np.round(df["lon"].to_numpy()[first], 7),
    }).sort_values(["mcc", "mnc", "lat", "lon"], kind="stable")
    sites["k"] = sites.groupby(["mcc", "mnc"]).cumcount() + 1
    sid = dict(zip(sites["label"], [f"{m}-{n}-s{k:03d}" for m, n, k in zip(sites["mcc"], sites["mnc"], sites["k"], strict=True)], strict=True))
    df["site_id"] = [sid[lab] for lab in labels]

    # heights: a cell without one takes its site's CSV height (one mast), else the default
    site_h = df.groupby("site_id")["height_m"].transform("max")
    from_site = df["height_m"].isna() & site_h.notna()
    for i in np.flatnonzero(from_site.to_numpy()):
        flags[i].append("height_from_site")
    df.loc[from_site, "height_source"] = "csv"
    df["height_m"] = df["height_m"].fillna(site_h).fillna(config.default_tower_height_m)

    # default sectors: k cells of a site without azimuth on one carrier -> 0, 360/k, 2*360/k, ... (by cid)
    missing = df["azimuth_deg"].isna()
    if missing.any():
        m = df.loc[missing, ["site_id", "earfcn", "cid", "cell_id"]].sort_values(["site_id", "earfcn", "cid", "cell_id"])
        g = m.groupby(["site_id", "earfcn"], sort=False)
        j = g.cumcount().to_numpy(float)
        k = g["cid"].transform("size").to_numpy(float)
        df.loc[m.index, "azimuth_deg"] = 360.0 * j / k
    df["azimuth_source"] = np.where(missing, "default_sectors", "csv")

    df["x"], df["y"] = (cx, cy) if frame is not None else (np.nan, np.nan)
    df["z"] = df["height_m"].astype(float)
    df["source_file"] = source
    df["quality_flags"] = [",".join(f) for f in flags]
    df = df.drop(columns=["flags"])
    df = df.sort_values(["site_id", "earfcn", "cid"], kind="stable").reset_index(drop=True)
    out = df[list(CELL_COLUMNS)].copy()
    for c, t in _DTYPES.items():
        out[c] = out[c].astype(t)  # type: ignore[call-overload]  # a dtype name
    for c in CELL_COLUMNS:
        if c not in _DTYPES and c not in _STR_COLUMNS:
            out[c] = out[c].astype("float64")
    for c in _STR_COLUMNS:
        out[c] = out[c].astype(str)
    return out


def towers_to_geodataframe(table: TowerTable):
    """The cells as a ``geopandas.GeoDataFrame`` of points in EPSG:4326 (lon/lat degrees)."""
    import geopandas as gpd

    if not isinstance(table, TowerTable):
        raise TypeError(f"towers_to_geodataframe: expected a TowerTable, got {type(table).__name__}")
    cells = table.cells
    return gpd.GeoDataFrame(
        cells.copy(), geometry=gpd.points_from_xy(cells["lon"], cells["lat"]), crs="EPSG:4326"
    )


__all__ = [
    "CELL_COLUMNS",
    "LAYOUTS",
    "Layout",
    "RowReport",
    "TowerTable",
    "read_towers",
    "register_layout",
    "check_tower_file",
    "towers_to_geodataframe",
]
