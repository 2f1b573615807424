"""``twin bench scale``: growth exponents, size parsing, tower subsets, and one tiny two-size run (slow)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from twin.bench_scale import growth_exponent, parse_sizes, subset_towers
from twin.errors import TwinInputError


def test_growth_exponent_recovers_power_laws():
    sizes = [250, 1000, 4000]
    assert math.isclose(growth_exponent(sizes, [3.0 * s for s in sizes]), 1.0, abs_tol=1e-12)
    assert math.isclose(growth_exponent(sizes, [7.0 for _ in sizes]), 0.0, abs_tol=1e-12)
    assert math.isclose(growth_exponent(sizes, [0.5 * s**2 for s in sizes]), 2.0, abs_tol=1e-12)


@pytest.mark.parametrize("text", ["250", "250,100", "0,10", "a,b", "10,10"])
def test_parse_sizes_rejects_bad_lists(text):
    with pytest.raises(TwinInputError) as e:
        parse_sizes(text)
    assert "--receivers" in str(e.value)


def test_parse_sizes():
    assert parse_sizes("250, 1000,4e3") == [250, 1000, 4000]


def test_subset_towers_keeps_whole_sites(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("latitude,longitude,CID\n1,2,10\n1,2,11\n3,4,12\n3,4,13\n5,6,14\n")
    assert subset_towers(src, tmp_path / "o.csv", 2) == 4
    rows = (tmp_path / "o.csv").read_text().splitlines()
    assert rows[0] == "latitude,longitude,CID" and [r.split(",")[2] for r in rows[1:]] == ["10", "11", "12", "13"]


@pytest.mark.slow
def test_bench_scale_cli_two_sizes(tmp_path):
    from twin.cli import app

    cfg = tmp_path / "c.toml"
    cfg.write_text("[trace]\nsamples_per_src = 5000\nmax_depth = 1\n")
    js, png = tmp_path / "s.json", tmp_path / "s.png"
    r = CliRunner().invoke(app, ["bench", "scale", "--receivers", "8,16", "--sites", "1", "--config", str(cfg),
                                 "--workdir", str(tmp_path / "w"), "--json", str(js), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    doc = json.loads(js.read_text())
    assert [s["receivers"] for s in doc["sizes"]] == [8, 16]
    assert all(s["pairs"] == 3 * s["receivers"] for s in doc["sizes"])
    assert all(s["client_peak_rss_mb"] > 50 and s["worker_peak_rss_mb"] > 50 for s in doc["sizes"])
    assert png.stat().st_size > 10_000 and "time_exponent" in doc
