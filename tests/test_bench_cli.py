"""Smoke tests of `twin bench` (tiny sizes): the commands run end to end and print their ratio lines.

Speed itself is never asserted in tests; the README quotes full-size runs.
"""

from __future__ import annotations

import re

from typer.testing import CliRunner

from twin.cli import app

runner = CliRunner()


def test_bench_trace_smoke():
    r = runner.invoke(app, ["bench", "trace", "--cells", "1", "--receivers", "4", "--naive-receivers", "2",
                            "--repeat", "1", "--samples-per-src", "10000"], catch_exceptions=False)
    assert r.exit_code == 0, r.output + r.stderr
    lines = r.output.strip().splitlines()
    assert re.fullmatch(r"ratio \d+\.\d{3}", lines[-1].strip())
    assert any("bare Sionna PathSolver" in ln for ln in lines) and any("naive loop" in ln for ln in lines)


def test_bench_views_smoke():
    r = runner.invoke(app, ["bench", "views", "--quick", "--only", "tb_fingerprint,spike_train"], catch_exceptions=False)
    assert r.exit_code == 0, r.output + r.stderr
    text = " ".join(r.output.split())
    assert "tb_fingerprint/view" in text and "speedup_vs_build_then_fft" in text
    assert "spike_train/cfr" in text and "speedup_vs_sionna" in text
    r = runner.invoke(app, ["bench", "views", "--only", "nope"], catch_exceptions=False)
    assert r.exit_code == 2 and "unknown bench" in r.stderr


def test_bench_calls_smoke():
    r = runner.invoke(app, ["bench", "calls", "--cells", "1", "--receivers", "4", "--per-call", "4,2",
                            "--samples-per-src", "10000"], catch_exceptions=False)
    assert r.exit_code == 0, r.output + r.stderr
    rows = [ln.split() for ln in r.output.strip().splitlines()[2:]]
    assert [int(x[0]) for x in rows] == [4, 2]
    assert all(0.0 <= float(x[4]) <= 1.5 and 0.0 <= float(x[5]) <= 1.0 for x in rows)
    r = runner.invoke(app, ["bench", "calls", "--per-call", "4,0"], catch_exceptions=False)
    assert r.exit_code == 2 and "--per-call" in r.stderr


def test_compare_to_reference_counts_missing_links_as_off():
    import pyarrow as pa
    import pytest

    from twin.bench import compare_to_reference

    ref = pa.table({"link_id": [1, 2, 3, 4], "num_paths": [5, 5, 5, 5], "path_gain_db": [-80.0, -90.0, -100.0, -110.0]})
    got = pa.table({"link_id": [1, 2, 3], "num_paths": [5, 4, 5], "path_gain_db": [-80.0, -91.5, -100.05]})
    paths, share, off1, off3, med = compare_to_reference(got, ref)
    assert paths == 14 and share == pytest.approx(0.7)
    assert off1 == pytest.approx(0.5) and off3 == pytest.approx(0.25)  # link 2 (1.5 dB) and the missing link 4
    assert med == pytest.approx((0.05 + 1.5) / 2)
