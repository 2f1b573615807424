"""Read a large tower CSV streaming (pyarrow.csv), keeping only the rows near the area, with their line numbers.

Real OpenCelliD exports hold millions of rows of which a scene uses a few hundred. The row parser of
:mod:`twin.ingest.towers` costs tens of microseconds per row in Python, so a whole country file is filtered
first, in Arrow: the file is read in blocks of 4 MiB with every column as a string, latitude and longitude are
parsed as numbers in C++, and only rows inside the area's bounding box widened by the margin go on to the row
parser (which then applies the exact distance to the area). Rows whose latitude or longitude is not a plain
number are kept too, so the row parser names their problem; rows with the wrong number of fields come back as
their raw text with their line number. Memory stays at a few blocks plus the kept rows.

Line numbers are 1-based as an editor shows them (header = line 1): empty lines are read as rows
(``ignore_empty_lines=False``) and malformed lines are reported by number, so a kept row knows its line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: files at least this large (bytes) are pre-filtered streaming; smaller ones are parsed whole
STREAM_MIN_BYTES = 4 << 20
BLOCK_BYTES = 4 << 20
#: metres per degree of latitude (WGS84 mean, rounded down so the box errs on the wide side)
_M_PER_DEG_LAT = 110_000.0
_NUMBER_RE = r"^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?$"


@dataclass(frozen=True)
class StreamResult:
    """Rows kept by :func:`stream_rows`: ``rows`` = (1-based line, stripped fields), in line order.

    ``total`` = data rows read, ``far`` = rows dropped because they lie outside the widened box.
    """

    rows: list[tuple[int, list[str]]]
    total: int
    far: int


def sample_encoding(path: Path, nbytes: int = 1 << 20) -> str:
    """The encoding for pyarrow: UTF-8 when the first ``nbytes`` decode as UTF-8, else cp1252."""
    with open(path, "rb") as f:
        head = f.read(nbytes)
    # a multi-byte character cut at the sample's end is not an error
    for cut in range(4):
        try:
            head[: len(head) - cut].decode("utf-8")
            return "utf8"
        except UnicodeDecodeError:
            continue
    return "cp1252"


def widened_box(
    bounds: tuple[float, float, float, float], margin_m: float
) -> tuple[float, float, float, float]:
    """(west, south, east, north) degrees widened by at least ``margin_m`` metres on every side."""
    w, s, e, n = bounds
    dlat = (margin_m + 10.0) / _M_PER_DEG_LAT
    lat_far = min(89.0, max(abs(s), abs(n)) + dlat)
    dlon = (margin_m + 10.0) / (_M_PER_DEG_LAT * math.cos(math.radians(lat_far)))
    return (w - dlon, s - dlat, e + dlon, n + dlat)


def _as_degrees(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values in degrees, True where the text is a plain number) of a string column."""
    s = pc.utf8_trim_whitespace(col)
    s = pc.utf8_trim(s, characters="\"'")
    ok = pc.fill_null(pc.match_substring_regex(s, _NUMBER_RE), False)
    s = pc.if_else(ok, pc.replace_substring(s, ",", "."), pa.scalar("nan"))
    v = pc.cast(s, pa.float64()).to_numpy(zero_copy_only=False)
    return v, np.asarray(ok.to_numpy(zero_copy_only=False), bool)


def stream_rows(
    path: str | Path,
    *,
    delimiter: str,
    num_columns: int,
    first_data_line: int,
    lat_col: int,
    lon_col: int,
    box: tuple[float, float, float, float],
    encoding: str = "utf8",
) -> StreamResult:
    """The data rows of ``path`` (from ``first_data_line``) whose lat/lon lie in ``box`` (W, S, E, N degrees).

    ``num_columns``: fields per row (the header's); ``lat_col``/``lon_col``: 0-based column indices. Rows whose
    lat or lon is not a number are kept (the row parser reports them); malformed rows (another field count)
    are kept as parsed by :mod:`csv`. Raises ``pyarrow.ArrowInvalid`` on a file pyarrow cannot read (the
    caller then falls back to the whole-file parser).
    """
    from pyarrow import csv as pacsv

    path = Path(path)
    w, s, e, n = box
    names = [f"c{i}" for i in range(num_columns)]
    bad: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        bad.append((int(row.number), row.text))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            use_threads=False, block_size=BLOCK_BYTES, skip_rows=first_data_line - 1, column_names=names,
            encoding=encoding,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, ignore_empty_lines=False, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    kept_idx: list[int] = []  # index among the well-formed rows (line numbers are known only at the end)
    kept_fields: list[list[str]] = []
    total = far = 0
    valid_seen = 0
    for batch in reader:
        m = batch.num_rows
        if m == 0:
            continue
        lat, lat_ok = _as_degrees(batch.column(lat_col))
        lon, lon_ok = _as_degrees(batch.column(lon_col))
        blank = _blank_rows(batch)
        inside = (lat >= s) & (lat <= n) & (lon >= w) & (lon <= e)
        keep = (inside | ~lat_ok | ~lon_ok) & ~blank
        total += int((~blank).sum())
        far += int((~keep & ~blank).sum())
        idx = np.flatnonzero(keep)
        if len(idx):
            sub = batch.take(pa.array(idx))
            cols = [sub.column(i).to_pylist() for i in range(num_columns)]
            kept_idx.extend(int(valid_seen + k) for k in idx)
            kept_fields.extend([str(c[j]).strip().strip("\ufeff") for c in cols] for j in range(len(idx)))
        valid_seen += m
    lines = valid_row_lines(np.asarray(kept_idx, dtype=np.int64), first_data_line, [b[0] for b in bad])
    kept = [(int(ln), f) for ln, f in zip(lines, kept_fields, strict=True)]
    for line, text in bad:
        fields = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True), [])
        fields = [f.strip().strip("\ufeff") for f in fields]
        if any(fields):
            kept.append((line, fields))
            total += 1
    kept.sort(key=lambda r: r[0])
    return StreamResult(kept, total, far)


def valid_row_lines(index: np.ndarray, first_line: int, bad_lines: list[int]) -> np.ndarray:
    """Line numbers of the well-formed rows number ``index`` (0-based), lines from ``first_line`` on,
    when the lines ``bad_lines`` were malformed (skipped by the reader): the fixed point of
    ``line = first_line + index + #(bad lines <= line)``."""
    bad = np.sort(np.asarray(bad_lines, dtype=np.int64))
    line = first_line + index
    if len(bad) == 0 or len(index) == 0:
        return line
    while True:
        nxt = first_line + index + np.searchsorted(bad, line, side="right")
        if np.array_equal(nxt, line):
            return line
        line = nxt


def _blank_rows(batch: pa.RecordBatch) -> np.ndarray:
    """True for rows whose every field is empty or whitespace (blank lines)."""
    blank = np.ones(batch.num_rows, dtype=bool)
    for col in batch.columns:
        blank &= np.asarray(pc.equal(pc.utf8_trim_whitespace(col), "").to_numpy(zero_copy_only=False), bool)
        if not blank.any():
            break
    return blank


# ------------------------------------------------------------------------------------------- benchmark


def write_synthetic_opencellid(path: str | Path, rows: int, *, center: tuple[float, float] = (48.8738, 2.2950),
                               spread_deg: float = 3.0, seed: int = 0) -> Path:
    """An OpenCelliD-layout CSV of ``rows`` LTE cells spread uniformly over +-``spread_deg`` around ``center``.

    For the streaming benchmark (``twin bench towers``); written with pyarrow in blocks, so it costs little memory.
    """
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    path = Path(path)
    header = "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal,earfcn"
    block = 200_000
    with open(path, "wb") as f:
        f.write((header + "\n").encode())
        for start in range(0, rows, block):
            k = min(block, rows - start)
            ids = np.arange(start, start + k)
            t = pa.table({
                "radio": pa.array(["LTE"] * k),
                "mcc": np.full(k, 208), "net": (ids % 4 + 1), "area": 700 + ids // 1000,
                "cell": ids, "unit": ids % 504,
                "lon": np.round(center[1] + rng.uniform(-spread_deg, spread_deg, k), 6),
                "lat": np.round(center[0] + rng.uniform(-spread_deg, spread_deg, k), 6),
                "range": np.full(k, 1000), "samples": np.full(k, 5), "changeable": np.ones(k, int),
                "created": np.full(k, 1500000000), "updated": np.full(k, 1700000000),
                "averageSignal": np.zeros(k, int), "earfcn": np.full(k, 1501),
            })
            buf = pa.BufferOutputStream()
            pacsv.write_csv(t, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
            f.write(buf.getvalue().to_pybytes())
    return path


_BENCH_CHILD = """
import json, resource, sys, time
from shapely.geometry import box
from twin.config import IngestConfig
from twin.frame import LocalFrame
from twin.ingest.towers import read_towers
w, s, e, n = map(float, sys.argv[2:6])
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
t = read_towers(sys.argv[1], LocalFrame((s + n) / 2, (w + e) / 2), IngestConfig(default_earfcn=1501), area=box(w, s, e, n))
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mb": rss0 / 1024, "counts": t.counts}))
"""


def bench_stream(rows: int, workdir: str | Path, *, area: tuple[float, float, float, float] = (2.289, 48.870, 2.301, 48.877)) -> dict:
    """Write a ``rows``-row OpenCelliD-style file (cells spread over +-3 degrees around Paris) and read it
    for ``area`` (W, S, E, N degrees) in a fresh Python process: seconds, peak resident memory (MB), counts."""
    import json
    import subprocess
    import sys
    import time

    path = Path(workdir) / f"opencellid_{rows}.csv"
    t0 = time.perf_counter()
    write_synthetic_opencellid(path, rows)
    written = time.perf_counter() - t0
    r = subprocess.run([sys.executable, "-c", _BENCH_CHILD, str(path), *map(str, area)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"tower read benchmark failed: {r.stderr.strip().splitlines()[-1:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out.update(rows=rows, file_mb=path.stat().st_size / 1e6, write_seconds=written)
    return out
