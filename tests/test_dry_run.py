"""``--dry-run`` estimates the trace time (this build's measured rate, else the documented default of
twin.constants) and a plan of over LARGE_PLAN_PAIRS pairs is warned about."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.config import TraceConfig, to_dict
from twin.constants import DEFAULT_TRACE_LINKS_PER_S, LARGE_PLAN_PAIRS
from twin.render.stage import estimate_trace_seconds, format_duration

runner = CliRunner()


def test_estimate_uses_the_measured_rate_only_for_the_same_trace_config():
    cfg = TraceConfig()
    m = {"stages": {"trace": {"links_per_s": 10.0, "config": to_dict(cfg)}}}
    s, src = estimate_trace_seconds(500, m, cfg)
    assert s == pytest.approx(50.0) and "measured by this build" in src
    other = replace(cfg, max_depth=1)
    s, src = estimate_trace_seconds(500, m, other)
    assert s == pytest.approx(500 / DEFAULT_TRACE_LINKS_PER_S) and "default" in src and "yours differs" in src
    s, src = estimate_trace_seconds(500, None, cfg)
    assert s == pytest.approx(500 / DEFAULT_TRACE_LINKS_PER_S) and "yours differs" not in src
    assert format_duration(42) == "42 s" and format_duration(600) == "10 min" and format_duration(36000) == "10.0 h"


def test_dry_run_prints_an_estimate_and_warns_over_the_pair_threshold(tmp_path):
    out = tmp_path / "out"
    small = runner.invoke(app, ["build", "--city", "paris", "--offline", "--out", str(out), "--receivers", "5",
                                "--dry-run"])
    assert small.exit_code == 0, small.output
    m = re.search(r"(\d+) links \((\d+) to trace\); estimated trace time (\d+) s", small.stdout)
    assert m, small.stdout
    assert int(m.group(3)) == round(int(m.group(2)) / DEFAULT_TRACE_LINKS_PER_S)
    assert "warning" not in small.stdout
    n = LARGE_PLAN_PAIRS // 36 + 50  # the bundled Paris towers: 36 cells
    big = runner.invoke(app, ["build", "--city", "paris", "--offline", "--out", str(out), "--receivers", str(n),
                              "--dry-run"])
    assert big.exit_code == 0, big.output
    assert "estimated trace time" in big.stdout and f"over {LARGE_PLAN_PAIRS:,} pairs" in big.stdout
    assert not out.exists()


def test_a_build_of_a_large_plan_warns_before_tracing(tmp_path, monkeypatch, caplog):
    """The warning comes before any task runs: the tracing itself is replaced by an exception here."""
    import twin.render.stage as stage

    def no_trace(*a, **k):
        raise RuntimeError("tracing started")

    monkeypatch.setattr(stage, "execute_trace_tasks", no_trace)
    monkeypatch.setattr(stage, "LARGE_PLAN_PAIRS", 100)  # 5 receivers x 36 cells = 180 pairs
    from twin.config import BuildConfig, ReceiverConfig
    from twin.ingest.source import BuildingSource
    from twin.ingest.stage import run_ingest

    run_ingest(BuildingSource.from_options(city="paris", offline=True), tmp_path, name="p")
    cfg = BuildConfig(receivers=ReceiverConfig(count=5))
    with caplog.at_level(logging.WARNING, logger="twin.render.stage"), pytest.raises(RuntimeError, match="tracing"):
        stage.run_trace(tmp_path / "p", cfg)
    assert any("a large plan: 180 tower-receiver pairs" in r.getMessage() for r in caplog.records), caplog.text
