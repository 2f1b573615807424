"""Issue 9: large tower files are read streaming and filtered to the area early, with the same result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from twin.config import IngestConfig
from twin.errors import TwinInputError
from twin.frame import LocalFrame
from twin.ingest import tower_stream
from twin.ingest.towers import read_towers

FIX = Path(__file__).parent / "fixtures" / "towers"
FRAME = LocalFrame(48.87378, 2.29503)
EVERYWHERE = box(2.25, 48.85, 2.35, 48.90)
NEAR = box(2.2955, 48.8735, 2.2965, 48.8745)


def both(path: Path, area, monkeypatch, **kw):
    whole = read_towers(path, FRAME, IngestConfig(), area=area, **kw)
    monkeypatch.setattr(tower_stream, "STREAM_MIN_BYTES", 0)
    streamed = read_towers(path, FRAME, IngestConfig(), area=area, **kw)
    monkeypatch.setattr(tower_stream, "STREAM_MIN_BYTES", 4 << 20)
    return whole, streamed


@pytest.mark.parametrize("name", ["cellmapper_mixed.csv", "opencellid.csv"])
@pytest.mark.parametrize("area", [EVERYWHERE, NEAR])
def test_streaming_gives_the_same_cells_and_reports(name, area, monkeypatch):
    kw = {"default_earfcn": 1501} if "opencellid" in name else {}
    whole, streamed = both(FIX / name, area, monkeypatch, **kw)
    pd.testing.assert_frame_equal(whole.cells, streamed.cells)
    far = streamed.counts.get("far_outside", 0)
    if far == 0:
        assert whole.reports == streamed.reports and whole.counts == streamed.counts
    else:  # the rows dropped early are those the whole parse reports as outside the area
        assert set(streamed.reports) <= set(whole.reports)
        assert len(whole.reports) - len(streamed.reports) == far


def test_line_numbers_survive_blank_malformed_and_quoted_rows(tmp_path, monkeypatch):
    lines = ["latitude;longitude;MCC;MNC;LAC;CID;ARFCN;PCI", "", "48,8740;2,2960;208;1;751;1;1501;10",
             "48,8740;2,2960;208;1;751", "   ", '"48,8741";2,2961;208;1;751;2;1501;11',
             "0;0;208;1;751;3;1501;12", "48,8742;x;208;1;751;4;1501;13", "48,8743;2,2962;208;1;751;5;1501;14;extra"]
    p = tmp_path / "t.csv"
    p.write_text("\n".join(lines) + "\n", encoding="cp1252")
    whole, streamed = both(p, EVERYWHERE, monkeypatch)
    pd.testing.assert_frame_equal(whole.cells, streamed.cells)
    assert streamed.counts["far_outside"] == 1  # line 7 (0, 0) is dropped unparsed
    by_line = {r.row: r for r in streamed.reports}
    assert by_line[3].status == "kept" and by_line[6].status == "kept"
    assert by_line[4].status == "skipped" and "missing" in by_line[4].reason  # 5 fields: CID etc. missing
    assert by_line[8].status == "skipped" and by_line[8].field == "longitude"
    assert by_line[9].status in ("kept", "repaired")
    assert 7 not in by_line and {r.row: r for r in whole.reports}[7].status == "skipped"


def test_all_rows_far_outside(tmp_path, monkeypatch):
    p = tower_stream.write_synthetic_opencellid(tmp_path / "t.csv", 2000, center=(10.0, 10.0), spread_deg=0.5)
    monkeypatch.setattr(tower_stream, "STREAM_MIN_BYTES", 0)
    with pytest.raises(TwinInputError, match="all 2000 tower rows lie more than 150 m outside") as ei:
        read_towers(p, FRAME, IngestConfig(default_earfcn=1501), area=EVERYWHERE)
    assert "max_tower_outside_m" in ei.value.fix
    t = read_towers(p, FRAME, IngestConfig(default_earfcn=1501), area=EVERYWHERE, allow_empty_area=True)
    assert len(t.cells) == 0 and t.counts["far_outside"] == 2000


def test_valid_row_lines_oracle():
    bad = [4, 5, 9]
    lines = [ln for ln in range(2, 30) if ln not in bad]  # the well-formed lines, by brute force
    idx = np.arange(len(lines))
    assert tower_stream.valid_row_lines(idx, 2, bad).tolist() == lines


def test_widened_box_covers_the_margin():
    from twin.frame import LocalFrame as LF

    w, s, e, n = tower_stream.widened_box((2.29, 48.87, 2.30, 48.88), 150.0)
    fr = LF(48.875, 2.295)
    x0, _ = fr.to_local(w, 48.88)
    xw, _ = fr.to_local(2.29, 48.88)
    _, y0 = fr.to_local(2.29, s)
    _, ys = fr.to_local(2.29, 48.87)
    assert xw - x0 >= 150.0 and ys - y0 >= 150.0
