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
