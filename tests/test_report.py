"""twin report: the statistics against independent computations, the figures written for a synthetic build's
data (robust colour scale, one map per carrier), and CLI polish (--version, plain help, no emoji, -v filter)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from twin.cli import app

runner = CliRunner()


def test_rms_delay_spread_matches_the_two_path_closed_form():
    from twin.datasets.report import rms_delay_spread_s

    # two paths of powers p1, p2 at tau1, tau2: sigma = |tau2 - tau1| sqrt(p1 p2) / (p1 + p2)
    rng = np.random.default_rng(0)
    n = 50
    tau = rng.uniform(0, 2e-6, (n, 2))
    amp = rng.uniform(0.01, 1.0, (n, 2))
    ph = rng.uniform(0, 2 * np.pi, (n, 2))
    p = amp**2
    want = np.abs(tau[:, 1] - tau[:, 0]) * np.sqrt(p[:, 0] * p[:, 1]) / p.sum(1)
    got = rms_delay_spread_s(pa.array(tau.tolist()), pa.array((amp * np.cos(ph)).tolist()),
                             pa.array((amp * np.sin(ph)).tolist()))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-15)
    one = rms_delay_spread_s(pa.array([[1e-6], []]), pa.array([[0.5], []]), pa.array([[0.0], []]))
    assert one[0] == 0.0 and np.isnan(one[1])  # a single path spreads nothing; no path is undefined


def _data(n_rx: int = 60, seed: int = 1):
    import shapely

    from twin.datasets.report import ReportData

    rng = np.random.default_rng(seed)
    cells = pd.DataFrame({"cell_id": ["a1", "a2", "b1"], "site_id": ["A", "A", "B"], "x": [0.0, 0.0, 200.0],
                          "y": [0.0, 0.0, 150.0], "azimuth_deg": [0.0, 120.0, 240.0],
                          "frequency_hz": [796e6, 796e6, 2655e6]})
    rx = pd.DataFrame({"rx_id": np.arange(n_rx), "x": rng.uniform(-300, 300, n_rx), "y": rng.uniform(-300, 300, n_rx)})
    rows = []
    for r in rx.itertuples():
        for c in cells.itertuples():
            if rng.random() < 0.8:
                d = np.hypot(r.x - c.x, r.y - c.y) + 1.0
                rows.append({"rx_id": r.rx_id, "tx_id": c.cell_id, "frequency_hz": c.frequency_hz,
                             "path_gain_db": -20 * np.log10(d) - 40 + rng.normal(0, 3), "los": bool(rng.random() < 0.4),
                             "num_paths": int(rng.integers(1, 9)), "delay_spread_s": rng.uniform(0, 3e-7)})
    links = pd.DataFrame(rows)
    links.loc[0, "path_gain_db"] = -400.0  # one outlier must not stretch the colour scale
    fps = [shapely.box(50, 50, 90, 120), shapely.box(-150, -40, -100, 10)]
    return ReportData("synthetic", links, rx, cells, fps)


def test_best_server_and_coverage_against_a_loop():
    from twin.datasets.report import best_server, coverage_counts

    d = _data()
    bs = best_server(d, 796e6).set_index("rx_id")
    lk = d.links[d.links["frequency_hz"] == 796e6]
    for rx in d.receivers["rx_id"]:
        sel = lk[lk["rx_id"] == rx]
        if len(sel):
            assert bs.loc[rx, "gain_db"] == sel["path_gain_db"].max()
            assert bs.loc[rx, "cell_id"] == sel.loc[sel["path_gain_db"].idxmax(), "tx_id"]
        else:
            assert np.isnan(bs.loc[rx, "gain_db"])
    cov = coverage_counts(d).set_index("cell_id")
    for c in d.cells["cell_id"]:
        assert cov.loc[c, "reached"] == d.links.loc[d.links["tx_id"] == c, "rx_id"].nunique()
    # every reached receiver has exactly one best server per carrier
    for f in (796e6, 2655e6):
        ids = d.cells.loc[d.cells["frequency_hz"] == f, "cell_id"]
        assert cov.loc[ids, "best_server"].sum() == best_server(d, f)["gain_db"].notna().sum()


def test_robust_range_ignores_outliers():
    from twin.datasets.report import robust_range

    v = np.r_[np.linspace(-100, -60, 98), -400.0, np.nan]
    lo, hi = robust_range(v)
    assert lo == pytest.approx(np.percentile(v[np.isfinite(v)], 2)) and lo > -101
    assert hi == pytest.approx(np.percentile(v[np.isfinite(v)], 98))
    assert robust_range(np.array([-70.0, -70.0])) == (-71.0, -69.0)


def test_figures_of_synthetic_data(tmp_path: Path):
    from twin.datasets.report import write_carrier_maps, write_cdfs, write_coverage, write_path_gain_preview

    d = _data()
    maps = write_carrier_maps(d, tmp_path)
    assert [p.name for p, _ in maps] == ["pathgain_796MHz.png", "pathgain_2655MHz.png"]
    info = dict(maps[0][1])
    assert info["vmin_db"] > -200  # the -400 dB outlier saturates instead of setting the scale
    for p in [*(p for p, _ in maps), write_cdfs(d, tmp_path / "c.png"), write_coverage(d, tmp_path / "v.png"),
              write_path_gain_preview(d, tmp_path / "prev" / "path_gain.png")]:
        assert p.stat().st_size > 10_000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli_needs_a_build(tmp_path: Path):
    r = runner.invoke(app, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "not a twin directory" in r.output


# ------------------------------------------------------------------------------------------------- CLI polish


def test_version_and_plain_help():
    from twin import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"twin {__version__}"
    h = runner.invoke(app, ["build", "--help"])
    assert h.exit_code == 0 and "[ingest] [receivers]" in " ".join(h.output.split())


def test_error_text_is_not_markup_or_emoji(tmp_path: Path):
    bad = tmp_path / "t.csv"
    bad.write_text(":x:,[bold]col[/bold]\n1,2\n")
    r = runner.invoke(app, ["ingest", "--city", "paris", "--offline", "--towers", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert ":x:" in r.output and "\u274c" not in r.output and "[bold]col[/bold]" in r.output


def test_verbose_shows_twin_info_not_library_chatter():
    from twin.cli import _root

    _root(verbose=1, version=False)
    (h,) = logging.getLogger().handlers
    rec = lambda name, lvl: logging.LogRecord(name, lvl, __file__, 1, "m", None, None)  # noqa: E731
    assert h.filter(rec("twin.render.distributed", logging.INFO))
    assert not h.filter(rec("distributed.scheduler", logging.INFO))
    assert h.filter(rec("distributed.scheduler", logging.WARNING))
    _root(verbose=2, version=False)
    (h,) = logging.getLogger().handlers
    assert h.filter(rec("distributed.scheduler", logging.DEBUG))
    _root(verbose=0, version=False)
